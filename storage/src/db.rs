//! The database: one data directory holding the WAL, the head and the blocks, and the
//! maintenance that moves data between them (head cut, WAL checkpoint, compaction, retention).
//!
//! Layout of the data directory:
//! ```text
//! <dir>/wal/          write-ahead log segments and checkpoint
//! <dir>/chunks_head/  full head chunks moved off the heap (rebuilt from the WAL at start-up)
//! <dir>/blocks/<id>/  immutable blocks (meta.json, index, chunks)
//! <dir>/blocks/quarantine/  blocks that failed verification
//! <dir>/snapshots/<name>/   hard-linked copies of blocks
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::api::{AppendOutcome, Querier, Series, SeriesSet, WriteBatch};
use crate::block::{self, Block, BlockId, BlockWriter, ChunkMeta};
use crate::chunk::encode_chunk;
use crate::error::{Error, Result};
use crate::head::{AppendLog, Head, HeadOptions, HeadStats};
use crate::labels::{Labels, Matcher, Projection};
use crate::querier::{for_each_series_of_blocks, merge_sorted, LazySelection};
use crate::wal::{self, SamplesRecord, Wal, WalOptions};

/// Samples per chunk in a block: a day at 10 s fits one chunk; longer series get several.
const MAX_BLOCK_CHUNK_SAMPLES: usize = 8640;
/// A head series without samples for this long (behind the head's newest sample) has its raw
/// sample buffer compressed and freed by maintenance.
const IDLE_SERIES_MS: i64 = 10 * 60 * 1000;
/// Idle series are looked for whenever the head's newest sample has moved this far since the
/// last look, besides every maintenance run: a backfill or a client catching up sends hours of
/// samples in minutes, and the series its restarts replaced would otherwise keep their buffers
/// until the next maintenance tick.
const IDLE_SWEEP_EVERY_MS: i64 = 5 * 60 * 1000;
/// A thread keeps WAL encoding buffers up to this size between batches; larger ones (the series
/// records of a batch that created thousands of series) are freed after use.
const MAX_RETAINED_WAL_SCRATCH: usize = 256 << 10;
/// Samples per WAL samples record (keeps records far below the WAL's record size limit).
const MAX_RECORD_SAMPLES: usize = 1 << 20;

/// Database configuration.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Head settings (out-of-order window, shards, series limit).
    pub head: HeadOptions,
    /// WAL settings (fsync policy, segment size).
    pub wal: WalOptions,
    /// Time span of a block cut from the head (ms). Default 2 h.
    pub block_range_ms: i64,
    /// Largest block that compaction builds (ms). Default 54 h (2 h × 3³), capped at a tenth of
    /// retention like Prometheus.
    pub max_block_range_ms: i64,
    /// Blocks whose newest sample is older than the newest data minus this are deleted (ms).
    /// Default 15 days.
    pub retention_ms: i64,
    /// Backfill mode (`eddy import`): the head accepts samples older than existing blocks; the
    /// blocks it writes may overlap older ones, which queries and compaction merge.
    pub backfill: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            head: HeadOptions::default(),
            wal: WalOptions::default(),
            block_range_ms: 2 * 3600 * 1000,
            max_block_range_ms: 54 * 3600 * 1000,
            retention_ms: 15 * 24 * 3600 * 1000,
            backfill: false,
        }
    }
}

/// Counters of the database's background work, for `/metrics`.
#[derive(Debug, Default)]
pub struct DbMetrics {
    /// Blocks written from the head.
    pub head_cuts: AtomicU64,
    /// Blocks written by compaction.
    pub compactions: AtomicU64,
    /// Blocks deleted by retention.
    pub retention_deletions: AtomicU64,
    /// Total ms spent cutting the head.
    pub head_cut_ms: AtomicU64,
    /// Total ms spent compacting.
    pub compaction_ms: AtomicU64,
    /// WAL checkpoints written.
    pub wal_checkpoints: AtomicU64,
    /// WAL append failures (each failed a request).
    pub wal_failures: AtomicU64,
    /// Blocks quarantined at start-up.
    pub quarantined_blocks: AtomicU64,
    /// Looks for idle series that freed sample buffers (each frees many small allocations:
    /// a moment to give memory back to the system).
    pub idle_releases: AtomicU64,
}

/// What start-up found.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Blocks opened.
    pub blocks: usize,
    /// Blocks moved to quarantine, with the reason.
    pub quarantined: Vec<String>,
    /// WAL records replayed.
    pub wal_records: u64,
    /// Samples restored into the head.
    pub wal_samples: u64,
    /// Where a torn WAL tail was cut, if it was.
    pub wal_truncated: Option<(PathBuf, u64)>,
    /// Samples in the WAL for which no series record exists (dropped).
    pub wal_orphan_samples: u64,
}

/// The database. `Send + Sync`; share it with `Arc`.
pub struct Db {
    dir: PathBuf,
    blocks_dir: PathBuf,
    opts: DbOptions,
    head: Head,
    wal: Wal,
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    /// One maintenance task (cut, compaction, retention, snapshot) at a time.
    maintenance: Mutex<()>,
    /// WAL series ids that replay mapped onto other head ids; needed until the segments that
    /// use them are checkpointed away.
    wal_remap: Mutex<HashMap<u32, u32>>,
    /// The head's newest sample time at the last look for idle series.
    idle_swept_at: AtomicI64,
    metrics: DbMetrics,
    open_report: OpenReport,
    /// Held for the life of the `Db`: two writers on one WAL would interleave its records.
    _dir_lock: fs::File,
}

/// Takes the data directory's exclusive lock (`<dir>/lock`, an advisory `flock` that the
/// kernel releases when the process ends, even on `kill -9`).
fn lock_dir(dir: &Path) -> Result<fs::File> {
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::DirInUse {
            dir: dir.to_path_buf(),
            lock: path,
        }),
        Err(fs::TryLockError::Error(e)) => Err(Error::io("lock data directory", &path, e)),
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.dir)
            .field("head", &self.head)
            .finish()
    }
}

thread_local! {
    static APPEND_SCRATCH: RefCell<(AppendLog, Vec<u8>, Vec<u8>)> = RefCell::new(Default::default());
}

impl Db {
    /// Opens (or creates) the database in `dir`: opens blocks (quarantining corrupt ones),
    /// replays the WAL into the head, and opens the WAL for appends.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db> {
        let blocks_dir = dir.join("blocks");
        fs::create_dir_all(&blocks_dir)
            .map_err(|e| Error::io("create blocks dir", &blocks_dir, e))?;
        let dir_lock = lock_dir(dir)?;
        let mut report = OpenReport::default();
        let metrics = DbMetrics::default();
        let (blocks, quarantined) = block::open_blocks(&blocks_dir)?;
        for q in &quarantined {
            report.quarantined.push(format!("{}: {}", q.name, q.error));
        }
        metrics
            .quarantined_blocks
            .store(quarantined.len() as u64, Ordering::Relaxed);
        report.blocks = blocks.len();
        let head = if opts.head.chunks_on_disk {
            Head::with_chunk_dir(opts.head.clone(), &dir.join("chunks_head"))?
        } else {
            Head::new(opts.head.clone())
        };
        if let Some(max_t) = blocks
            .iter()
            .map(|b| b.meta().max_t)
            .max()
            .filter(|_| !opts.backfill)
        {
            head.set_min_valid_t(max_t.saturating_add(1));
        }
        let wal_dir = dir.join("wal");
        let remap = replay_wal(&wal_dir, &head, &mut report)?;
        let wal = Wal::open(&wal_dir, opts.wal)?;
        let blocks = blocks.into_iter().map(Arc::new).collect();
        Ok(Db {
            dir: dir.to_path_buf(),
            blocks_dir,
            opts,
            head,
            wal,
            blocks: RwLock::new(Arc::new(blocks)),
            maintenance: Mutex::new(()),
            wal_remap: Mutex::new(remap),
            idle_swept_at: AtomicI64::new(i64::MIN),
            metrics,
            open_report: report,
            _dir_lock: dir_lock,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the database runs with.
    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    /// What start-up found (blocks, quarantine, WAL replay).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// Background-work counters.
    pub fn metrics(&self) -> &DbMetrics {
        &self.metrics
    }

    /// The head, for statistics.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// WAL counters (records, group-commit batches, bytes, fsyncs, failures).
    pub fn wal_stats(&self) -> wal::WalStats {
        self.wal.stats()
    }

    /// Head statistics.
    pub fn head_stats(&self) -> HeadStats {
        self.head.stats()
    }

    /// The blocks currently served, oldest first.
    pub fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks.read().clone()
    }

    /// Appends a batch: stores what passes the checks in the head, then writes it to the WAL.
    /// Returns once the WAL write is done (and fsynced, per the sync policy); an error means
    /// nothing of this batch may be acknowledged.
    pub fn append(&self, batch: &mut WriteBatch<'_>) -> Result<AppendOutcome> {
        let outcome = APPEND_SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let (log, series_rec, samples_rec) = &mut *scratch;
            log.clear();
            let outcome = self.head.append(batch, log)?;
            let res = self.log_to_wal(log, series_rec, samples_rec);
            if res.is_err() {
                self.metrics.wal_failures.fetch_add(1, Ordering::Relaxed);
                // The head keeps the samples (a retry finds them as duplicates and logs them
                // again); the series records must be logged again too, or a later sample of
                // these series would replay without its series.
                self.head.mark_unlogged(
                    log.new_series
                        .ids()
                        .iter()
                        .chain(log.relogged_series.ids())
                        .copied(),
                );
            }
            // Large one-off batches should not pin their buffers in every thread forever
            // (measured: ~1.2 MB of series records kept by each of 9 ingest threads).
            for v in [&mut *series_rec, &mut *samples_rec] {
                if v.capacity() > MAX_RETAINED_WAL_SCRATCH {
                    *v = Vec::new();
                }
            }
            res.map(|()| outcome)
        })?;
        self.release_idle_if_due();
        Ok(outcome)
    }

    /// Frees the buffers of idle series when the head's newest sample moved
    /// [`IDLE_SWEEP_EVERY_MS`] since the last look; one appending thread does it.
    fn release_idle_if_due(&self) {
        let newest = self.head.max_t();
        let last = self.idle_swept_at.load(Ordering::Relaxed);
        if newest == i64::MIN || newest < last.saturating_add(IDLE_SWEEP_EVERY_MS) {
            return;
        }
        if self
            .idle_swept_at
            .compare_exchange(last, newest, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        match self
            .head
            .release_idle_buffers(newest.saturating_sub(IDLE_SERIES_MS))
        {
            Ok(n) if n > 0 => {
                self.metrics.idle_releases.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(released = n, "freed the sample buffers of idle series");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "freeing the sample buffers of idle series failed")
            }
        }
    }

    fn log_to_wal(
        &self,
        log: &AppendLog,
        series_rec: &mut Vec<u8>,
        samples_rec: &mut Vec<u8>,
    ) -> Result<()> {
        let mut records: Vec<Vec<u8>> = Vec::new();
        series_rec.clear();
        if !log.new_series.is_empty() || !log.relogged_series.is_empty() {
            wal::begin_series(series_rec);
            for (id, pairs) in log.new_series.iter().chain(log.relogged_series.iter()) {
                wal::push_series(series_rec, id, pairs);
            }
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        if !series_rec.is_empty() {
            parts.push(series_rec);
        }
        samples_rec.clear();
        if log.refs.len() <= MAX_RECORD_SAMPLES {
            if !log.refs.is_empty() {
                wal::encode_samples(samples_rec, &log.refs, &log.ts, &log.vals);
                parts.push(samples_rec);
            }
        } else {
            for start in (0..log.refs.len()).step_by(MAX_RECORD_SAMPLES) {
                let end = (start + MAX_RECORD_SAMPLES).min(log.refs.len());
                let mut rec = Vec::new();
                wal::encode_samples(
                    &mut rec,
                    &log.refs[start..end],
                    &log.ts[start..end],
                    &log.vals[start..end],
                );
                records.push(rec);
            }
            parts.extend(records.iter().map(|r| r.as_slice()));
        }
        if parts.is_empty() {
            return Ok(());
        }
        self.wal.append_all(&parts)
    }

    /// Runs due maintenance: cuts the head into blocks when it spans 1.5 block ranges,
    /// compacts finished time windows, applies retention.
    pub fn maintain(&self) -> Result<()> {
        let _one = self.maintenance.lock();
        let range = self.opts.block_range_ms;
        loop {
            let stats = self.head.stats();
            if stats.series == 0 || stats.min_t == i64::MAX {
                break;
            }
            let start = stats.min_t.div_euclid(range) * range;
            if stats.max_t - start < range + range / 2 {
                break;
            }
            self.cut(start, start + range)?;
        }
        let newest = self.head.stats().max_t;
        if newest != i64::MIN {
            let released = self
                .head
                .release_idle_buffers(newest.saturating_sub(IDLE_SERIES_MS))?;
            if released > 0 {
                self.metrics.idle_releases.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(released, "freed the sample buffers of idle series");
            }
        }
        self.compact()?;
        self.apply_retention()
    }

    /// Writes everything in the head into blocks now and empties the head, so the data is in
    /// its compressed, indexed on-disk form. Samples older than the newest flushed one are
    /// rejected as too old afterwards.
    pub fn flush(&self) -> Result<Vec<BlockId>> {
        let _one = self.maintenance.lock();
        let range = self.opts.block_range_ms;
        let mut ids = Vec::new();
        loop {
            let stats = self.head.stats();
            if stats.min_t == i64::MAX || stats.max_t == i64::MIN {
                break;
            }
            let start = stats.min_t.div_euclid(range) * range;
            let end = (start + range).min(stats.max_t.saturating_add(1));
            if let Some(id) = self.cut(start, end)? {
                ids.push(id);
            }
        }
        self.compact()?;
        Ok(ids)
    }

    /// Writes the head's samples in `[start, end)` as a block, serves it, truncates the head
    /// and checkpoints the WAL.
    fn cut(&self, start: i64, end: i64) -> Result<Option<BlockId>> {
        let began = Instant::now();
        // From here on the head rejects samples for the window being cut (see Head::append).
        self.head.set_min_valid_t(end);
        let written = write_head_block(&self.head, &self.blocks_dir, start, end)?;
        let id = match written {
            Some(path) => {
                let block = Arc::new(Block::open(&path)?);
                let id = block.meta().id;
                self.add_blocks(vec![block], &[]);
                Some(id)
            }
            None => None,
        };
        self.head.truncate_before(end)?;
        self.checkpoint_wal(end)?;
        self.metrics.head_cuts.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .head_cut_ms
            .fetch_add(began.elapsed().as_millis() as u64, Ordering::Relaxed);
        tracing::info!(start, end, block = ?id, took_ms = began.elapsed().as_millis() as u64, "head cut into block");
        Ok(id)
    }

    fn add_blocks(&self, add: Vec<Arc<Block>>, remove: &[BlockId]) {
        let mut guard = self.blocks.write();
        let mut list: Vec<Arc<Block>> = guard
            .iter()
            .filter(|b| !remove.contains(&b.meta().id))
            .cloned()
            .chain(add)
            .collect();
        list.sort_by_key(|b| (b.meta().min_t, b.meta().id));
        *guard = Arc::new(list);
    }

    /// Replaces the WAL segments written so far with a checkpoint of the live series and the
    /// samples at or after `keep_from` that they hold.
    fn checkpoint_wal(&self, keep_from: i64) -> Result<()> {
        let before = self.wal.cut_segment()?;
        let remap = self.wal_remap.lock().clone();
        let wal_dir = self.dir.join("wal");
        let head = &self.head;
        std::thread::scope(|sc| -> Result<()> {
            let (tx, rx) = crossbeam::channel::bounded::<Vec<u8>>(64);
            let reader = sc.spawn(move || -> Result<()> {
                // The live series, read a shard at a time straight into series records (no
                // copy of every series' labels first: that list was a head cut's largest
                // allocation).
                let mut rec = Vec::new();
                let mut in_rec = 0usize;
                for shard in 0..head.shard_count() {
                    if rec.is_empty() {
                        wal::begin_series(&mut rec);
                    }
                    head.for_each_series_in_shard(shard, &mut |id, pairs| {
                        wal::push_series(&mut rec, id, pairs.iter().copied());
                        in_rec += 1;
                    });
                    if in_rec >= 10_000 {
                        in_rec = 0;
                        if tx.send(std::mem::take(&mut rec)).is_err() {
                            return Ok(());
                        }
                    }
                }
                if in_rec > 0 && tx.send(rec).is_err() {
                    return Ok(());
                }
                let mut samples = SamplesRecord::default();
                let mut keep = SamplesRecord::default();
                wal::replay_before(&wal_dir, before, &mut |rec| {
                    if wal::record_type(rec)? != wal::RecordType::Samples {
                        return Ok(());
                    }
                    samples.decode(rec)?;
                    keep.reset();
                    for i in 0..samples.len() {
                        if samples.ts[i] >= keep_from {
                            let id = samples.refs[i];
                            keep.refs.push(*remap.get(&id).unwrap_or(&id));
                            keep.ts.push(samples.ts[i]);
                            keep.vals.push(samples.vals[i]);
                        }
                    }
                    if !keep.is_empty() {
                        let mut out = Vec::new();
                        wal::encode_samples(&mut out, &keep.refs, &keep.ts, &keep.vals);
                        // A closed channel means the checkpoint writer failed; it reports why.
                        let _ = tx.send(out);
                    }
                    Ok(())
                })?;
                Ok(())
            });
            let written = self.wal.checkpoint(before, &mut rx.iter());
            // A writer that stopped early leaves the reader's sends failing, not blocked.
            drop(rx);
            let read = reader
                .join()
                .map_err(|_| Error::Closed("WAL checkpoint reader panicked"))?;
            read?;
            written
        })?;
        self.wal_remap.lock().clear();
        self.metrics.wal_checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The compaction windows (ms), smallest first: the block range times 3, 9, … up to
    /// `max_block_range_ms` and a tenth of the retention.
    fn compaction_windows(&self) -> Vec<i64> {
        let max = self
            .opts
            .max_block_range_ms
            .min((self.opts.retention_ms / 10).max(self.opts.block_range_ms));
        let mut windows = vec![];
        let mut window = self.opts.block_range_ms;
        while window <= max {
            windows.push(window);
            window *= 3;
        }
        windows
    }

    /// The current blocks grouped by the window of width `w` they lie in (a block that
    /// crosses a window boundary belongs to none), by window start.
    fn blocks_by_window(&self, w: i64) -> HashMap<i64, Vec<Arc<Block>>> {
        let mut groups: HashMap<i64, Vec<Arc<Block>>> = HashMap::new();
        for b in self.blocks().iter() {
            let m = b.meta();
            let start = m.min_t.div_euclid(w) * w;
            if m.max_t < start + w {
                groups.entry(start).or_default().push(b.clone());
            }
        }
        groups
    }

    /// Merges blocks that share a finished compaction window, smallest windows first.
    fn compact(&self) -> Result<()> {
        for w in self.compaction_windows() {
            loop {
                let done_before = self.head.min_valid_t();
                let Some((start, group)) = self
                    .blocks_by_window(w)
                    .into_iter()
                    .filter(|(start, g)| g.len() > 1 && start + w <= done_before)
                    .min_by_key(|(start, _)| *start)
                else {
                    break;
                };
                self.merge_blocks(&group, start, start + w - 1)?;
            }
        }
        Ok(())
    }

    /// Merges the blocks of each window of the largest compaction level into one block now,
    /// finished or not (as VictoriaMetrics' `force_merge` merges a monthly partition), so that
    /// data already written takes its most compact form: each series' labels, index entry and
    /// chunk framing once per window instead of once per 2 h block. Returns the new blocks.
    ///
    /// A window merged early may still receive data (newer head cuts); those land in new
    /// blocks, which the regular compaction merges with this one once the window is finished.
    /// The merged block's time range is that of its sources, not the whole window.
    pub fn compact_all(&self) -> Result<Vec<BlockId>> {
        let _one = self.maintenance.lock();
        let Some(&w) = self.compaction_windows().last() else {
            return Ok(Vec::new());
        };
        let mut groups: Vec<(i64, Vec<Arc<Block>>)> = self
            .blocks_by_window(w)
            .into_iter()
            .filter(|(_, g)| g.len() > 1)
            .collect();
        groups.sort_unstable_by_key(|(start, _)| *start);
        let mut ids = Vec::with_capacity(groups.len());
        for (_, group) in groups {
            let min_t = group.iter().map(|b| b.meta().min_t).min().unwrap_or(0);
            let max_t = group.iter().map(|b| b.meta().max_t).max().unwrap_or(0);
            ids.push(self.merge_blocks(&group, min_t, max_t)?);
        }
        Ok(ids)
    }

    fn merge_blocks(&self, group: &[Arc<Block>], min_t: i64, max_t: i64) -> Result<BlockId> {
        let began = Instant::now();
        let level = group
            .iter()
            .map(|b| b.meta().compaction.level)
            .max()
            .unwrap_or(1)
            + 1;
        let parents: Vec<BlockId> = group.iter().map(|b| b.meta().id).collect();
        let mut writer = BlockWriter::new(
            &self.blocks_dir,
            BlockId::generate(),
            min_t,
            max_t,
            level,
            parents.clone(),
        )?;
        // One series in memory at a time: a 6 h window of a million series is ~1.5 G samples,
        // and their label sets alone ~1 GB.
        let mut bytes = Vec::new();
        for_each_series_of_blocks(group, &mut |labels, ts, vals| {
            add_series_chunks(&mut writer, &mut bytes, labels, ts, vals)
        })?;
        let path = writer.finish()?;
        let block = Arc::new(Block::open(&path)?);
        let id = block.meta().id;
        self.add_blocks(vec![block], &parents);
        for b in group {
            remove_block_dir(b.dir());
        }
        self.metrics.compactions.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .compaction_ms
            .fetch_add(began.elapsed().as_millis() as u64, Ordering::Relaxed);
        tracing::info!(
            sources = group.len(),
            level,
            min_t,
            max_t,
            took_ms = began.elapsed().as_millis() as u64,
            "compacted blocks"
        );
        Ok(id)
    }

    fn apply_retention(&self) -> Result<()> {
        let blocks = self.blocks();
        let newest = blocks
            .iter()
            .map(|b| b.meta().max_t)
            .chain([self.head.stats().max_t])
            .max()
            .unwrap_or(i64::MIN);
        if newest == i64::MIN {
            return Ok(());
        }
        let cutoff = newest.saturating_sub(self.opts.retention_ms);
        let expired: Vec<BlockId> = blocks
            .iter()
            .filter(|b| b.meta().max_t < cutoff)
            .map(|b| b.meta().id)
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        self.add_blocks(Vec::new(), &expired);
        for b in blocks.iter().filter(|b| expired.contains(&b.meta().id)) {
            tracing::info!(block = %b.meta().id, max_t = b.meta().max_t, cutoff, "retention: deleting block");
            remove_block_dir(b.dir());
        }
        self.metrics
            .retention_deletions
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Takes a snapshot into `<dir>/snapshots/<name>/`: the blocks are hard-linked (cheap,
    /// immutable) and, with `with_head`, the head's current data is written as an extra block
    /// there, so the snapshot holds everything acknowledged so far. Returns the directory.
    pub fn snapshot(&self, name: &str, with_head: bool) -> Result<PathBuf> {
        let _one = self.maintenance.lock();
        let dst = self.dir.join("snapshots").join(name);
        fs::create_dir_all(&dst).map_err(|e| Error::io("create snapshot dir", &dst, e))?;
        for b in self.blocks().iter() {
            let to = dst.join(b.meta().id.to_string());
            fs::create_dir_all(&to).map_err(|e| Error::io("create snapshot block dir", &to, e))?;
            for f in [block::META_FILE, block::INDEX_FILE, block::CHUNKS_FILE] {
                let (src, dstf) = (b.dir().join(f), to.join(f));
                if fs::hard_link(&src, &dstf).is_err() {
                    fs::copy(&src, &dstf)
                        .map_err(|e| Error::io("copy block file into snapshot", &src, e))?;
                }
            }
        }
        let stats = self.head.stats();
        if with_head && stats.min_t != i64::MAX {
            write_head_block(&self.head, &dst, stats.min_t, stats.max_t.saturating_add(1))?;
        }
        Ok(dst)
    }

    /// Fsyncs and closes the WAL.
    pub fn close(&self) -> Result<()> {
        self.wal.close()
    }

    /// Starts a thread that runs [`Db::maintain`] every `every` until the returned guard drops.
    pub fn start_maintenance(self: &Arc<Self>, every: Duration) -> MaintenanceHandle {
        let (stop_tx, stop_rx) = crossbeam::channel::bounded::<()>(1);
        let db = Arc::downgrade(self);
        let handle = std::thread::Builder::new()
            .name("eddy-maintenance".into())
            .spawn(move || loop {
                match stop_rx.recv_timeout(every) {
                    Err(crossbeam::channel::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let Some(db) = db.upgrade() else { return };
                if let Err(e) = db.maintain() {
                    tracing::error!(error = %e, "storage maintenance failed; will retry");
                }
            })
            .ok();
        MaintenanceHandle {
            stop: Some(stop_tx),
            handle,
        }
    }
}

/// Stops the maintenance thread when dropped.
#[derive(Debug)]
pub struct MaintenanceHandle {
    stop: Option<crossbeam::channel::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn remove_block_dir(dir: &Path) {
    // Readers holding the block keep their mmaps valid after the unlink.
    if let Err(e) = fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not delete block directory");
    }
}

/// Encodes a series' samples as block chunks and adds it to `writer`.
fn add_series_chunks(
    writer: &mut BlockWriter,
    bytes: &mut Vec<u8>,
    labels: &Labels,
    ts: &[i64],
    vals: &[f64],
) -> Result<()> {
    bytes.clear();
    let mut metas = Vec::new();
    for (t, v) in ts
        .chunks(MAX_BLOCK_CHUNK_SAMPLES)
        .zip(vals.chunks(MAX_BLOCK_CHUNK_SAMPLES))
    {
        let from = bytes.len();
        encode_chunk(bytes, t, v);
        metas.push((
            ChunkMeta {
                min_t: t[0],
                max_t: t[t.len() - 1],
                count: t.len() as u32,
            },
            from..bytes.len(),
        ));
    }
    let chunks: Vec<(ChunkMeta, &[u8])> = metas.into_iter().map(|(m, r)| (m, &bytes[r])).collect();
    writer.add_series(labels, &chunks)
}

/// Writes the head's samples in `[start, end)` as a level-1 block under `parent`; `None` if the
/// head has no samples there.
fn write_head_block(head: &Head, parent: &Path, start: i64, end: i64) -> Result<Option<PathBuf>> {
    let mut writer: Option<BlockWriter> = None;
    let mut bytes = Vec::new();
    head.for_each_sorted(start, end, &mut |labels, ts, vals| {
        if writer.is_none() {
            writer = Some(BlockWriter::new(
                parent,
                BlockId::generate(),
                start,
                end - 1,
                1,
                Vec::new(),
            )?);
        }
        match writer.as_mut() {
            Some(w) => add_series_chunks(w, &mut bytes, labels, ts, vals),
            None => Ok(()),
        }
    })?;
    writer.map(|w| w.finish()).transpose()
}

impl Db {
    /// The merged lazy selection: the head is read now, blocks when a series is read.
    /// With `keep`, series' label sets hold only the kept names.
    fn lazy_select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        keep: Option<&Projection>,
    ) -> Result<LazySelection> {
        LazySelection::new(&self.head, || self.blocks(), matchers, mint, maxt, keep)
    }
}

fn overlapping(blocks: &[Arc<Block>], mint: i64, maxt: i64) -> impl Iterator<Item = &Arc<Block>> {
    blocks
        .iter()
        .filter(move |b| b.meta().max_t >= mint && b.meta().min_t <= maxt)
}

// Reads take the head first and the block list second. A head cut adds its block to the list
// before it truncates the head, so a reader that misses samples in the head (already truncated)
// is guaranteed to find the new block in its list; samples seen in both are de-duplicated by the
// merge. Taking the list first would let a reader miss a window entirely.
impl Querier for Db {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        let set = self.lazy_select(matchers, mint, maxt, None)?;
        let mut columns = Vec::with_capacity(set.len());
        for i in 0..set.len() {
            let (mut ts, mut vals) = (Vec::new(), Vec::new());
            set.read(i, &mut ts, &mut vals)?;
            columns.push((ts, vals));
        }
        Ok(Box::new(set)
            .into_labels()
            .into_iter()
            .zip(columns)
            .filter(|(_, (ts, _))| !ts.is_empty())
            .map(|(labels, (timestamps, values))| Series {
                labels,
                timestamps,
                values,
            })
            .collect())
    }

    fn select_lazy(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn SeriesSet + '_>> {
        Ok(Box::new(self.lazy_select(matchers, mint, maxt, None)?))
    }

    fn select_lazy_projected(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        keep: &Projection,
    ) -> Result<Box<dyn SeriesSet + '_>> {
        Ok(Box::new(self.lazy_select(
            matchers,
            mint,
            maxt,
            Some(keep),
        )?))
    }

    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Labels>> {
        let head = self.head.series_labels(matchers, mint, maxt)?;
        let blocks = self.blocks();
        let mut sets = Vec::new();
        for b in overlapping(&blocks, mint, maxt) {
            let ords = b.select_in_range(matchers, mint, maxt)?;
            let mut v = Vec::with_capacity(ords.cardinality() as usize);
            for ord in ords.iter() {
                v.push(b.series_labels(ord)?);
            }
            sets.push(v);
        }
        sets.push(head);
        Ok(merge_sorted(sets))
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        let head = self.head.label_names(matchers, mint, maxt)?;
        let blocks = self.blocks();
        let mut sets = Vec::new();
        for b in overlapping(&blocks, mint, maxt) {
            let filter = b.select_in_range(matchers, mint, maxt)?;
            sets.push(b.label_names(Some(&filter))?);
        }
        sets.push(head);
        Ok(merge_sorted(sets))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let head = self.head.label_values(name, matchers, mint, maxt)?;
        let blocks = self.blocks();
        let mut sets = Vec::new();
        for b in overlapping(&blocks, mint, maxt) {
            let filter = b.select_in_range(matchers, mint, maxt)?;
            sets.push(b.label_values(name, Some(&filter))?);
        }
        sets.push(head);
        Ok(merge_sorted(sets))
    }
}

/// Replays the WAL into the head. Returns the WAL ids that were mapped onto other head ids.
fn replay_wal(dir: &Path, head: &Head, report: &mut OpenReport) -> Result<HashMap<u32, u32>> {
    let mut remap: HashMap<u32, u32> = HashMap::new();
    // Samples can reach the WAL before the series record of a concurrent writer; hold them.
    let mut pending: HashMap<u32, Vec<(i64, f64)>> = HashMap::new();
    let mut known: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let mut samples = SamplesRecord::default();
    let mut ids = Vec::new();
    let r = wal::replay(dir, &mut |rec| {
        match wal::record_type(rec)? {
            wal::RecordType::Series => {
                let entries = wal::decode_series(rec)?;
                for e in entries {
                    let labels = e.to_labels();
                    let id = head.restore_series(e.series_ref, &labels);
                    if id != e.series_ref {
                        remap.insert(e.series_ref, id);
                    }
                    known.insert(e.series_ref);
                    if let Some(held) = pending.remove(&e.series_ref) {
                        let (t, v): (Vec<i64>, Vec<f64>) = held.into_iter().unzip();
                        let c = head.append_by_ref(&vec![id; t.len()], &t, &v)?;
                        report.wal_samples += c.stored;
                    }
                }
            }
            wal::RecordType::Samples => {
                samples.decode(rec)?;
                ids.clear();
                for i in 0..samples.len() {
                    let wal_id = samples.refs[i];
                    if !known.contains(&wal_id) {
                        pending
                            .entry(wal_id)
                            .or_default()
                            .push((samples.ts[i], samples.vals[i]));
                    }
                    ids.push(*remap.get(&wal_id).unwrap_or(&wal_id));
                }
                let c = head.append_by_ref(&ids, &samples.ts, &samples.vals)?;
                report.wal_samples += c.stored;
            }
        }
        Ok(())
    })?;
    report.wal_records = r.records;
    report.wal_truncated = r.truncated;
    report.wal_orphan_samples = pending.values().map(|v| v.len() as u64).sum();
    if report.wal_orphan_samples > 0 {
        tracing::warn!(
            samples = report.wal_orphan_samples,
            "WAL replay: samples without a series record were dropped"
        );
    }
    Ok(remap)
}

#[cfg(test)]
mod tests;
