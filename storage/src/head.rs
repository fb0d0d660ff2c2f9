//! The head: recent samples in memory, sharded by series so that writers scale with cores.
//!
//! A series lives in the shard chosen by its label hash; its id encodes the shard
//! (`id = local * shards + shard`), so reads go from id to shard without a lookup table.
//! Locks: a shard mutex guards its series; `symbols` and `postings` have their own locks and are
//! always taken after a shard lock, never before one (reads release `postings` before locking
//! shards). New series become visible to queries once their postings are added, at the end of
//! the batch that created them.

mod keymap;
mod limits;
mod mapped;
mod open;
mod packed_labels;
mod prefetch;
mod series;
mod series_log;
mod table;

use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use croaring::Bitmap;
use parking_lot::{Mutex, RwLock};

use crate::api::{
    AppendOutcome, RejectReason, Series, SeriesRef, WriteBatch, MAX_OUTCOME_MESSAGES,
};
use crate::error::Result;
use crate::index::{self, MemPostings, Symbols};
use crate::label_tails::LabelTails;
use crate::labels::{hash_label_pairs128, Labels, Matcher};
use crate::series_key::{display_pairs, KeyScratch, SeriesKey};

pub use keymap::mix64;
pub use limits::SeriesLimitOptions;
pub use mapped::MappedChunkStats;
use mapped::MappedChunks;
use packed_labels::PackedLabels;
use series::{AppendLimits, Appended, MemSeries, Scratch};
pub use series_log::{SeriesLog, SeriesPairs};
use table::{Entry, SeriesTable};

/// Head configuration.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// How far (ms) behind a series' newest sample an older sample is still accepted.
    pub ooo_window_ms: i64,
    /// Number of shards (rounded up to a power of two).
    pub shards: usize,
    /// Limits on new series (active in total and per metric, created per hour in total and
    /// per metric); a refused series' samples are rejected with `series_limit`.
    pub limits: SeriesLimitOptions,
    /// Whether a database keeps full head chunks in files under `<data>/chunks_head/` (read
    /// through memory maps) instead of on the heap. A head made by [`Head::new`] alone keeps
    /// everything on the heap; see [`Head::with_chunk_dir`].
    pub chunks_on_disk: bool,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            ooo_window_ms: 10 * 60 * 1000,
            shards: 128,
            limits: SeriesLimitOptions::default(),
            chunks_on_disk: true,
        }
    }
}

#[derive(Default)]
struct Shard {
    series: SeriesTable,
    next_local: u32,
    scratch: Scratch,
}

/// Head statistics.
#[derive(Debug, Clone, Default)]
pub struct HeadStats {
    /// Active series.
    pub series: u64,
    /// Oldest sample time (ms), `i64::MAX` when empty.
    pub min_t: i64,
    /// Newest sample time (ms), `i64::MIN` when empty.
    pub max_t: i64,
    /// Samples appended since start.
    pub samples_appended: u64,
    /// Series created since start.
    pub series_created: u64,
    /// Series removed by garbage collection since start.
    pub series_removed: u64,
}

/// The in-memory head.
pub struct Head {
    limits: limits::SeriesLimits,
    shards: Box<[Mutex<Shard>]>,
    shard_bits: u32,
    symbols: RwLock<Symbols>,
    postings: RwLock<MemPostings>,
    chunks: MappedChunks,
    opts: HeadOptions,
    min_valid_t: AtomicI64,
    min_t: AtomicI64,
    max_t: AtomicI64,
    num_series: AtomicU64,
    samples_appended: AtomicU64,
    series_created: AtomicU64,
    series_removed: AtomicU64,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Selections of at least this many series are read from the head by several threads.
const PARALLEL_READ_SERIES: u64 = 4096;

/// Threads for reading large selections: the cores this process may use, asked once (on Linux
/// the answer reads cgroup files).
fn read_threads() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Samples of head series copied out by [`Head::select_columns`]: flat columns, and the
/// series (labels, range in the columns) in the order they were read.
#[derive(Debug, Default)]
pub struct HeadColumns {
    /// Timestamps of all series, one after the other.
    pub ts: Vec<i64>,
    /// Values parallel to `ts`.
    pub vals: Vec<f64>,
    /// Filled while reading; `select_columns` moves these into its sorted list.
    series: Vec<(Labels, std::ops::Range<usize>)>,
}

/// What [`Head::select_columns`] returns: the parts read, and per series (sorted by labels)
/// its labels, part and range in that part's columns.
pub type HeadSelection = (
    Vec<HeadColumns>,
    Vec<(Labels, usize, std::ops::Range<usize>)>,
);

/// What one append did, in the form the WAL needs: the new series and the stored samples.
#[derive(Debug, Default)]
pub struct AppendLog {
    /// Series created by this batch.
    pub new_series: SeriesLog,
    /// Existing series whose earlier WAL record was lost to a failed write: logged again.
    pub relogged_series: SeriesLog,
    /// Series id of each stored sample.
    pub refs: Vec<u32>,
    /// Timestamps of stored samples.
    pub ts: Vec<i64>,
    /// Values of stored samples.
    pub vals: Vec<f64>,
    /// The append's own lists, kept with the log so a thread that appends batch after batch
    /// allocates them once (allocated and freed per batch, they were ~70 KB each for a
    /// 2,000-series request, and glibc consolidates its free lists on every free that large).
    scratch: AppendScratch,
}

/// Batch series kept in [`AppendLog`] between appends at most (then the lists are dropped).
const MAX_RETAINED_PENDING: usize = 1 << 16;

/// `Pending::pos` of a series without a known position.
const NO_POS: u32 = u32::MAX;

/// Series a block write visits between unmapping the head chunk files' pages, so the pages its
/// reads map in stay bounded by what this many series' chunks touch: a series' few chunks lie
/// on a few 4 KiB pages, usually not those of its neighbours in label order.
const RELEASE_CHUNK_PAGES_EVERY: usize = 4096;

/// One batch series on its way into the head (32 bytes: its shard is the key's low bits).
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    key: u128,
    /// Index in the batch.
    index: u32,
    /// The entry's position in its shard: the writer's hint at first, then (after the touch
    /// pass) the position found, or [`NO_POS`].
    pos: u32,
    /// The series' range in the batch's sample columns, copied here so that the shard-ordered
    /// append loop does not reach into the batch's series list at random (perf: that load
    /// missed the CPU caches often enough to be an eighth of `Head::append`).
    samples: (u32, u32),
}

impl Pending {
    /// Its shard among `shards` (a power of two), as [`Head`] chooses it.
    #[inline]
    fn shard(&self, shards: usize) -> usize {
        (self.key as usize) & (shards - 1)
    }
}

#[derive(Debug, Default)]
struct AppendScratch {
    /// Batch series in batch order.
    pending: Vec<Pending>,
    /// The same, grouped by shard.
    grouped: Vec<Pending>,
    /// Per shard, where its group starts in `grouped` (a counting sort's offsets).
    starts: Vec<usize>,
    /// Each shard with series in the batch, and their range in `grouped`.
    groups: Vec<(usize, std::ops::Range<usize>)>,
}

impl AppendScratch {
    /// Fills `grouped` with `pending` reordered so each shard's series are contiguous, in
    /// ascending shard order and, within a shard, in batch order (a counting sort: one pass to
    /// count, one to place; the comparison sort it replaced was 4 % of remote_write's cost).
    /// `shards` is a power of two.
    fn group_by_shard(&mut self, shards: usize) {
        let starts = &mut self.starts;
        starts.clear();
        starts.resize(shards + 1, 0);
        for p in &self.pending {
            starts[p.shard(shards) + 1] += 1;
        }
        for s in 0..shards {
            starts[s + 1] += starts[s];
        }
        self.grouped.clear();
        self.grouped.resize(self.pending.len(), Pending::default());
        for &p in &self.pending {
            let at = &mut starts[p.shard(shards)];
            self.grouped[*at] = p;
            *at += 1;
        }
        // Each `starts[s]` is now the end of shard `s`'s group.
        self.groups.clear();
        let mut begin = 0;
        for (s, &end) in starts[..shards].iter().enumerate() {
            if end > begin {
                self.groups.push((s, begin..end));
            }
            begin = end;
        }
    }
}

impl AppendLog {
    /// Empties the log, keeping capacity.
    pub fn clear(&mut self) {
        self.new_series.clear();
        self.relogged_series.clear();
        self.refs.clear();
        self.ts.clear();
        self.vals.clear();
    }
}

impl Head {
    /// An empty head that keeps all its chunks on the heap.
    pub fn new(opts: HeadOptions) -> Self {
        Self::build(opts, None)
    }

    /// An empty head that moves full chunks into files in `dir` (deleting whatever files an
    /// earlier process left there: the WAL replay writes them anew).
    pub fn with_chunk_dir(opts: HeadOptions, dir: &std::path::Path) -> Result<Self> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::error::Error::io("clear head chunk dir", dir, e)),
        }
        Ok(Self::build(opts, Some(dir.to_path_buf())))
    }

    fn build(opts: HeadOptions, chunk_dir: Option<std::path::PathBuf>) -> Self {
        let n = opts.shards.max(1).next_power_of_two();
        let shards = (0..n).map(|_| Mutex::new(Shard::default())).collect();
        Head {
            limits: limits::SeriesLimits::new(opts.limits),
            shards,
            shard_bits: n.trailing_zeros(),
            symbols: RwLock::new(Symbols::new()),
            postings: RwLock::new(MemPostings::new()),
            chunks: MappedChunks::new(chunk_dir),
            opts,
            min_valid_t: AtomicI64::new(i64::MIN),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            num_series: AtomicU64::new(0),
            samples_appended: AtomicU64::new(0),
            series_created: AtomicU64::new(0),
            series_removed: AtomicU64::new(0),
        }
    }

    /// The options the head was built with.
    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    fn shard_of_key(&self, key: u128) -> usize {
        (key as usize) & (self.shards.len() - 1)
    }

    fn shard_of_id(&self, id: u32) -> usize {
        (id as usize) & (self.shards.len() - 1)
    }

    /// Samples older than this are rejected as too old (they belong to blocks).
    pub fn min_valid_t(&self) -> i64 {
        self.min_valid_t.load(Ordering::Acquire)
    }

    /// Raises the minimum valid time (after the head was cut into a block).
    pub fn set_min_valid_t(&self, t: i64) {
        self.min_valid_t.fetch_max(t, Ordering::AcqRel);
    }

    /// Appends a batch: canonicalises each series' labels in place, creates missing series and
    /// stores the samples that pass the checks. Records what was stored in `log` (for the WAL)
    /// and returns counts of accepted and rejected samples.
    pub fn append(&self, batch: &mut WriteBatch<'_>, log: &mut AppendLog) -> Result<AppendOutcome> {
        let mut outcome = AppendOutcome::default();
        let mut rejected: [u64; 5] = [0; 5];
        let mut limits = AppendLimits {
            ooo_window: self.opts.ooo_window_ms,
            min_valid_t: self.min_valid_t(),
        };
        // Canonicalise and key every series, then visit shards in order so each is locked once.
        let mut scratch = std::mem::take(&mut log.scratch);
        scratch.pending.clear();
        let mut key_scratch = KeyScratch::default();
        for i in 0..batch.series.len() {
            let s = &batch.series[i];
            let (key, hint) = match s.key {
                Some(key) => (Ok(key), s.series_ref.map_or(NO_POS, |r| r.pos() as u32)),
                None => (
                    SeriesKey::of(batch.series_labels(i), &mut key_scratch),
                    NO_POS,
                ),
            };
            match key.map(SeriesKey::get) {
                Ok(key) => scratch.pending.push(Pending {
                    key,
                    index: i as u32,
                    pos: hint,
                    samples: s.samples,
                }),
                Err(msg) => {
                    let n = batch.series_samples(i).0.len() as u64;
                    rejected[reason_slot(RejectReason::InvalidLabels)] += n;
                    push_message(&mut outcome.messages, || msg);
                }
            }
        }
        scratch.group_by_shard(self.shards.len());
        let (grouped, groups) = (&mut scratch.grouped, &scratch.groups);
        let mut min_t = i64::MAX;
        let mut max_t = i64::MIN;
        let mut stored = 0u64;
        // Start loading the first cache line of every entry the writer named, for the whole
        // batch before any append: by the time the loop below reaches a shard, its entries are
        // in the CPU's caches instead of ~100 ns away each. (Per shard, just before its
        // appends, the loads were still mostly exposed: perf put the wait for them at ~7 % of
        // remote_write's samples.) The positions are only hints; the loop below checks each one.
        for (shard_no, group) in groups {
            if grouped[group.clone()].iter().any(|p| p.pos != NO_POS) {
                let shard = self.shards[*shard_no].lock();
                for p in &grouped[group.clone()] {
                    if p.pos != NO_POS {
                        shard.series.prefetch_at(p.pos as usize);
                    }
                }
            }
        }
        for &(shard_no, ref group) in groups {
            let (start, end) = (group.start, group.end);
            let mut shard = self.shards[shard_no].lock();
            let shard = &mut *shard;
            let new_before = log.new_series.len();
            // Read under the shard lock: a head cut raises the minimum valid time before it
            // reads each shard, so a sample for the window being cut is either in the block or
            // rejected as too old, never accepted and then truncated away.
            limits.min_valid_t = self.min_valid_t();
            // Find every series of this shard first and start loading the end of its open
            // buffer (which only the entry knows), where its append writes. The loads overlap
            // this way; in the append loop below each miss would wait behind a whole append.
            // A series the writer sent with a still valid reference skips the hash table
            // (two more dependent misses: its control bytes and its position).
            for p in &mut grouped[start..end] {
                let pos = if p.pos != NO_POS && shard.series.holds_at(p.pos as usize, p.key) {
                    Some(p.pos as usize)
                } else {
                    shard.series.position(p.key)
                };
                p.pos = NO_POS;
                if let Some((pos, e)) = pos.and_then(|pos| Some((pos, shard.series.at(pos)?))) {
                    e.series.prefetch_open_tail();
                    p.pos = pos as u32;
                }
            }
            for p in &grouped[start..end] {
                let i = p.index as usize;
                let (a, b) = (p.samples.0 as usize, p.samples.1 as usize);
                if a == b {
                    continue;
                }
                // Positions found above stay valid: nothing is removed under this lock, and
                // a series created by this batch goes to the end.
                let found = match p.pos {
                    NO_POS => shard.series.position(p.key),
                    pos => Some(pos as usize),
                };
                let pos = match found {
                    Some(pos) => pos,
                    None if batch.series_labels(i).is_empty() => {
                        // A keyed series sent without its labels, which this head does not
                        // hold (any more): the caller appends it again with its labels.
                        outcome.unresolved.push(i as u32);
                        continue;
                    }
                    None => {
                        let metric = metric_of(batch.series_labels(i));
                        if let Err(why) = self.limits.admit(
                            metric,
                            self.num_series.load(Ordering::Relaxed),
                            now_ms(),
                        ) {
                            rejected[reason_slot(RejectReason::SeriesLimit)] += (b - a) as u64;
                            push_message(&mut outcome.messages, || {
                                format!(
                                    "{why}; new series {} rejected",
                                    display_pairs(batch.series_labels(i))
                                )
                            });
                            continue;
                        }
                        let id = (shard.next_local << self.shard_bits) | shard_no as u32;
                        shard.next_local += 1;
                        let pairs = sorted_pairs(batch.series_labels(i));
                        debug_assert!(
                            batch.series[i].key.is_none()
                                || SeriesKey::of(batch.series_labels(i), &mut key_scratch)
                                    .ok()
                                    .map(SeriesKey::get)
                                    == Some(p.key),
                            "a series' key does not match its labels"
                        );
                        let labels = self.intern(&pairs);
                        log.new_series.push(id, canonical(&pairs));
                        self.num_series.fetch_add(1, Ordering::Relaxed);
                        shard.series.insert(Entry::new(p.key, id, labels))
                    }
                };
                batch.series[i].series_ref = SeriesRef::at(pos);
                let Some(entry) = shard.series.at_mut(pos) else {
                    continue;
                };
                let (ts, vals) = (&batch.timestamps[a..b], &batch.values[a..b]);
                if !entry.wal_logged {
                    if let Some(labels) = entry.labels.resolve(&self.symbols.read()) {
                        log.relogged_series.push(entry.id, labels.pairs());
                    }
                    entry.wal_logged = true;
                }
                for (&t, &v) in ts.iter().zip(vals) {
                    match entry
                        .series
                        .append(t, v, limits, &mut shard.scratch, &self.chunks)?
                    {
                        Appended::Stored => {
                            log.refs.push(entry.id);
                            log.ts.push(t);
                            log.vals.push(v);
                            stored += 1;
                            min_t = min_t.min(t);
                            max_t = max_t.max(t);
                            outcome.accepted += 1;
                        }
                        Appended::Duplicate => {
                            // Logged again: the first copy may be from a batch whose WAL write
                            // failed (and which the client is now retrying).
                            log.refs.push(entry.id);
                            log.ts.push(t);
                            log.vals.push(v);
                            outcome.accepted += 1;
                        }
                        Appended::Rejected(r) => {
                            rejected[reason_slot(r)] += 1;
                            push_message(&mut outcome.messages, || {
                                reject_message(
                                    r,
                                    batch.series_labels(i),
                                    t,
                                    entry.series.max_t(),
                                    limits,
                                )
                            });
                        }
                    }
                }
            }
            // Published before the shard lock is released: a head cut that raises the minimum
            // valid time and then reads this shard either waited for this batch (and sees its
            // series in the postings) or made it reject the samples it would have dropped.
            self.publish_new_series(log.new_series.iter_from(new_before));
        }
        // A one-off huge batch should not pin its lists in every ingest thread.
        if scratch.pending.capacity() <= MAX_RETAINED_PENDING {
            log.scratch = scratch;
        }
        self.note_times(min_t, max_t, stored);
        outcome.new_series = log.new_series.len() as u64;
        outcome.rejected = ALL_REASONS
            .iter()
            .zip(rejected)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
            .collect();
        Ok(outcome)
    }

    fn note_times(&self, min_t: i64, max_t: i64, samples: u64) {
        if samples > 0 {
            self.min_t.fetch_min(min_t, Ordering::AcqRel);
            self.max_t.fetch_max(max_t, Ordering::AcqRel);
            self.samples_appended.fetch_add(samples, Ordering::Relaxed);
        }
    }

    fn intern(&self, sorted: &[(&str, &str)]) -> PackedLabels {
        let mut symbols = self.symbols.write();
        PackedLabels::new(canonical(sorted).map(|(n, v)| (symbols.intern(n), symbols.intern(v))))
    }

    fn publish_new_series<'a, P>(&self, new: impl ExactSizeIterator<Item = (u32, P)>)
    where
        P: IntoIterator<Item = (&'a str, &'a str)>,
    {
        if new.len() == 0 {
            return;
        }
        self.series_created
            .fetch_add(new.len() as u64, Ordering::Relaxed);
        let mut postings = self.postings.write();
        for (id, pairs) in new {
            postings.add_pairs(id, pairs);
        }
    }

    /// Recreates a series from the WAL. Returns the id the series has now: the WAL's id when
    /// it is free and fits this head's shard layout, else an existing or fresh id (the caller
    /// maps the WAL's id onto it).
    pub fn restore_series(&self, wal_id: u32, labels: &Labels) -> u32 {
        let key = SeriesKey::from_hash(hash_label_pairs128(labels.pairs())).get();
        let shard_no = self.shard_of_key(key);
        let mut shard = self.shards[shard_no].lock();
        if let Some(e) = shard.series.get(key) {
            return e.id;
        }
        let id = if self.shard_of_id(wal_id) == shard_no && shard.series.by_id(wal_id).is_none() {
            wal_id
        } else {
            (shard.next_local << self.shard_bits) | shard_no as u32
        };
        shard.next_local = shard.next_local.max((id >> self.shard_bits) + 1);
        let interned = {
            let mut symbols = self.symbols.write();
            PackedLabels::new(
                labels
                    .iter()
                    .map(|l| (symbols.intern(&l.name), symbols.intern(&l.value))),
            )
        };
        shard.series.insert(Entry::new(key, id, interned));
        self.num_series.fetch_add(1, Ordering::Relaxed);
        drop(shard);
        self.publish_new_series(std::iter::once((id, labels.pairs())));
        id
    }

    /// Appends samples by series id (WAL replay): any order is accepted, except data older than
    /// the minimum valid time (already in blocks). Unknown ids are counted and skipped.
    pub fn append_by_ref(&self, refs: &[u32], ts: &[i64], vals: &[f64]) -> Result<ReplayCounts> {
        let limits = AppendLimits {
            ooo_window: i64::MAX,
            min_valid_t: self.min_valid_t(),
        };
        let mut counts = ReplayCounts::default();
        let mut min_t = i64::MAX;
        let mut max_t = i64::MIN;
        for ((&id, &t), &v) in refs.iter().zip(ts).zip(vals) {
            let mut shard = self.shards[self.shard_of_id(id)].lock();
            let shard = &mut *shard;
            let Some(entry) = shard.series.by_id_mut(id) else {
                counts.unknown_series += 1;
                continue;
            };
            match entry
                .series
                .append(t, v, limits, &mut shard.scratch, &self.chunks)?
            {
                Appended::Stored => {
                    counts.stored += 1;
                    min_t = min_t.min(t);
                    max_t = max_t.max(t);
                }
                Appended::Duplicate => counts.duplicate += 1,
                Appended::Rejected(_) => counts.rejected += 1,
            }
        }
        self.note_times(min_t, max_t, counts.stored);
        Ok(counts)
    }

    /// Marks series whose WAL record was in a failed write: the next append that touches
    /// one of them logs its record again (see [`AppendLog::relogged_series`]).
    pub fn mark_unlogged(&self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            let mut shard = self.shards[self.shard_of_id(id)].lock();
            let shard = &mut *shard;
            if let Some(entry) = shard.series.by_id_mut(id) {
                entry.wal_logged = false;
            }
        }
    }

    /// Newest sample time (ms), `i64::MIN` when empty.
    pub fn max_t(&self) -> i64 {
        self.max_t.load(Ordering::Acquire)
    }

    /// Head statistics.
    pub fn stats(&self) -> HeadStats {
        HeadStats {
            series: self.num_series.load(Ordering::Relaxed),
            min_t: self.min_t.load(Ordering::Acquire),
            max_t: self.max_t.load(Ordering::Acquire),
            samples_appended: self.samples_appended.load(Ordering::Relaxed),
            series_created: self.series_created.load(Ordering::Relaxed),
            series_removed: self.series_removed.load(Ordering::Relaxed),
        }
    }

    /// Ids of series matching all matchers (all series when empty).
    pub fn select_ids(&self, matchers: &[Matcher]) -> Result<Bitmap> {
        let postings = self.postings.read();
        if matchers.is_empty() {
            return index::PostingsSource::all(&*postings);
        }
        index::select(&*postings, matchers)
    }

    /// Visits the series `ids` shard by shard: `f(id, labels, series, scratch)`. Labels are
    /// resolved through the symbol table.
    fn for_each_series(&self, ids: &Bitmap, f: &mut SeriesReader<'_>) -> Result<()> {
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); self.shards.len()];
        for id in ids.iter() {
            by_shard[self.shard_of_id(id)].push(id);
        }
        for (shard_no, ids) in by_shard.iter().enumerate().filter(|(_, v)| !v.is_empty()) {
            let mut shard = self.shards[shard_no].lock();
            let shard = &mut *shard;
            let symbols = self.symbols.read();
            for &id in ids {
                let Some(entry) = shard.series.by_id(id) else {
                    continue;
                };
                let Some(labels) = entry.labels.resolve(&symbols) else {
                    continue;
                };
                f(id, labels, &entry.series, &mut shard.scratch, &self.chunks)?;
            }
        }
        Ok(())
    }

    /// Series matching `matchers` with samples in `[mint, maxt]`, sorted by labels.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        let ids = self.select_ids(matchers)?;
        let mut out = Vec::new();
        self.for_each_series(&ids, &mut |_, labels, s, scratch, store| {
            if s.max_t() < mint || s.min_t() > maxt {
                return Ok(());
            }
            let mut series = Series {
                labels,
                timestamps: Vec::new(),
                values: Vec::new(),
            };
            s.read(
                mint,
                maxt,
                &mut series.timestamps,
                &mut series.values,
                scratch,
                store,
            )?;
            if !series.timestamps.is_empty() {
                out.push(series);
            }
            Ok(())
        })?;
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Reads the samples in `[mint, maxt]` of the series matching `matchers` into flat
    /// columns (nothing is allocated per series). Large selections are read by several
    /// threads, each taking a share of the shards into its own [`HeadColumns`]. Returns the
    /// parts and, sorted by labels, each series' labels, part and range in that part's
    /// columns; series without samples in the range are left out.
    pub fn select_columns(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<HeadSelection> {
        let ids = self.select_ids(matchers)?;
        let threads = if ids.cardinality() >= PARALLEL_READ_SERIES {
            read_threads()
        } else {
            1
        };
        let mut parts: Vec<HeadColumns> = if threads <= 1 {
            vec![self.read_columns(&ids, mint, maxt)?]
        } else {
            // Shard `k` goes to thread `k % threads`: each thread locks only its own shards.
            let mut shares = vec![Bitmap::new(); threads];
            for id in ids.iter() {
                shares[self.shard_of_id(id) % threads].add(id);
            }
            std::thread::scope(|sc| {
                let handles: Vec<_> = shares
                    .iter()
                    .map(|share| sc.spawn(move || self.read_columns(share, mint, maxt)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| match h.join() {
                        Ok(r) => r,
                        Err(panic) => std::panic::resume_unwind(panic),
                    })
                    .collect::<Result<Vec<_>>>()
            })?
        };
        let mut all = Vec::with_capacity(parts.iter().map(|p| p.series.len()).sum());
        for (pi, part) in parts.iter_mut().enumerate() {
            all.extend(part.series.drain(..).map(|(l, r)| (l, pi, r)));
        }
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok((parts, all))
    }

    /// Reads series `ids` into one [`HeadColumns`].
    fn read_columns(&self, ids: &Bitmap, mint: i64, maxt: i64) -> Result<HeadColumns> {
        let mut part = HeadColumns::default();
        let HeadColumns { ts, vals, series } = &mut part;
        self.for_each_series(ids, &mut |_, labels, s, scratch, store| {
            if s.max_t() < mint || s.min_t() > maxt {
                return Ok(());
            }
            let from = ts.len();
            s.read(mint, maxt, ts, vals, scratch, store)?;
            if ts.len() > from {
                series.push((labels, from..ts.len()));
            }
            Ok(())
        })?;
        Ok(part)
    }

    /// Label sets of series matching `matchers` with samples in `[mint, maxt]`, sorted.
    pub fn series_labels(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Labels>> {
        let ids = self.select_ids(matchers)?;
        let mut out = Vec::new();
        self.for_each_series(&ids, &mut |_, labels, s, _, _| {
            if s.max_t() >= mint && s.min_t() <= maxt {
                out.push(labels);
            }
            Ok(())
        })?;
        out.sort_unstable();
        Ok(out)
    }

    /// Ids of series matching `matchers` that have data in `[mint, maxt]`.
    fn ids_in_range(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Bitmap> {
        let ids = self.select_ids(matchers)?;
        let mut keep = Bitmap::new();
        self.for_each_series(&ids, &mut |id, _, s, _, _| {
            if s.max_t() >= mint && s.min_t() <= maxt {
                keep.add(id);
            }
            Ok(())
        })?;
        Ok(keep)
    }

    /// Sorted label names of matching series with data in `[mint, maxt]`.
    pub fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        let ids = self.ids_in_range(matchers, mint, maxt)?;
        index::label_names(&*self.postings.read(), Some(&ids))
    }

    /// Sorted values of `name` among matching series with data in `[mint, maxt]`.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let ids = self.ids_in_range(matchers, mint, maxt)?;
        index::label_values(&*self.postings.read(), name, Some(&ids))
    }

    /// Visits every series in label order with its samples in `[mint, maxt)` (half-open: the
    /// block range), unmapping the head chunk files' pages every [`RELEASE_CHUNK_PAGES_EVERY`]
    /// series. Used to write blocks; `f` gets labels and the sample columns.
    pub fn for_each_sorted(
        &self,
        mint: i64,
        maxt_exclusive: i64,
        f: &mut SeriesVisitor<'_>,
    ) -> Result<()> {
        // Snapshot ids and labels from the shards themselves (not the postings), so a series
        // created by an append that is still running is not missed; sort outside any lock,
        // then read samples series by series.
        let mut table = LabelTable::default();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for entry in shard.series.iter() {
                let s = &entry.series;
                if s.max_t() >= mint && s.min_t() < maxt_exclusive {
                    table.push(entry.labels.iter(), entry.id);
                }
            }
        }
        // Every symbol the snapshot refers to exists now (symbols are never removed).
        table.rank_symbols(&self.symbols.read());
        let order = table.sorted();
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        for (n, &k) in order.iter().enumerate() {
            // Reading maps the chunk files' pages in; without this a cut at a million series
            // held up to 1.2 GiB of them in the server's RSS until it ended.
            if n > 0 && n % RELEASE_CHUNK_PAGES_EVERY == 0 {
                self.chunks.release_pages();
            }
            let id = table.id(k);
            ts.clear();
            vals.clear();
            {
                let mut shard = self.shards[self.shard_of_id(id)].lock();
                let shard = &mut *shard;
                let Some(entry) = shard.series.by_id(id) else {
                    continue;
                };
                entry.series.read(
                    mint,
                    maxt_exclusive - 1,
                    &mut ts,
                    &mut vals,
                    &mut shard.scratch,
                    &self.chunks,
                )?;
            }
            if !ts.is_empty() {
                let Some(labels) = table.labels(k, &self.symbols.read()) else {
                    continue;
                };
                f(&labels, &ts, &vals)?;
            }
        }
        Ok(())
    }

    /// Drops samples older than `t` and removes series left empty. Returns removed ids.
    pub fn truncate_before(&self, t: i64) -> Result<Bitmap> {
        self.set_min_valid_t(t);
        let mut removed = Bitmap::new();
        let mut new_min = i64::MAX;
        for (n, shard) in self.shards.iter().enumerate() {
            // Truncating re-encodes the chunks that straddle `t`, reading them through the
            // maps: at a million series that left ~0.5 GiB of pages mapped by the end of a cut.
            if n > 0 {
                self.chunks.release_pages();
            }
            let mut shard = shard.lock();
            let shard = &mut *shard;
            let mut gone = Vec::new();
            for e in shard.series.iter_mut() {
                if e.series
                    .truncate_before(t, &mut shard.scratch, &self.chunks)?
                {
                    gone.push((e.key(), e.id));
                } else {
                    new_min = new_min.min(e.series.min_t());
                }
            }
            let gone_empty = gone.is_empty();
            for (key, id) in gone {
                if let Some(e) = shard.series.remove(key) {
                    if self.limits.tracks_metrics() {
                        let symbols = self.symbols.read();
                        let name_sym = symbols.get(crate::labels::METRIC_NAME);
                        let metric = e
                            .labels
                            .iter()
                            .find(|(n, _)| Some(*n) == name_sym)
                            .and_then(|(_, v)| symbols.resolve(v));
                        self.limits.release(metric.unwrap_or(""));
                    }
                }
                removed.add(id);
            }
            if !gone_empty {
                shard.series.shrink();
            }
        }
        if !removed.is_empty() {
            self.postings.write().remove(&removed);
            let n = removed.cardinality();
            self.num_series.fetch_sub(n, Ordering::Relaxed);
            self.series_removed.fetch_add(n, Ordering::Relaxed);
        }
        self.min_t.store(new_min, Ordering::Release);
        if new_min == i64::MAX {
            self.max_t.store(i64::MIN, Ordering::Release);
        }
        // Every shard has dropped its chunks older than `t`: files holding only those go.
        self.chunks.remove_before(t);
        // The cut that precedes a truncation read every chunk of its window through the maps.
        self.chunks.release_pages();
        Ok(removed)
    }

    /// Compresses and frees the open sample buffers of series without samples since `before`
    /// (series of a restarted Flink job stop receiving samples but stay until the head is cut;
    /// their buffers are better spent on live series). Returns how many series freed a buffer.
    pub fn release_idle_buffers(&self, before: i64) -> Result<u64> {
        let mut released = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let shard = &mut *shard;
            for e in shard.series.iter_mut() {
                if e.series.max_t() < before
                    && e.series.release_buffers(&mut shard.scratch, &self.chunks)?
                {
                    released += 1;
                }
            }
        }
        Ok(released)
    }

    /// Counters of the files holding full head chunks.
    pub fn mapped_chunk_stats(&self) -> MappedChunkStats {
        self.chunks.stats()
    }

    /// Number of shards (see [`for_each_series_in_shard`](Self::for_each_series_in_shard)).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Visits every series of shard `shard_no` with its id and `(name, value)` pairs, under
    /// that shard's lock (keep `f` short: appends to the shard wait). For WAL checkpoints:
    /// nothing is copied per series, where a list of every live series' [`Labels`] was the
    /// largest allocation of a head cut (~1.2 KB per series).
    pub fn for_each_series_in_shard(&self, shard_no: usize, f: &mut SeriesPairsVisitor<'_>) {
        let Some(shard) = self.shards.get(shard_no) else {
            return;
        };
        let shard = shard.lock();
        let symbols = self.symbols.read();
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for entry in shard.series.iter() {
            pairs.clear();
            let mut all = 0;
            for (n, v) in entry.labels.iter() {
                all += 1;
                match (symbols.resolve(n), symbols.resolve(v)) {
                    (Some(n), Some(v)) => pairs.push((n, v)),
                    // Cannot happen for a live series; a series with a lost symbol is left
                    // out rather than logged with wrong labels.
                    _ => break,
                }
            }
            if pairs.len() == all {
                f(entry.id, &pairs);
            }
        }
    }

    /// Cardinality statistics of the head (for `/api/v1/status/tsdb`), top `limit` of each list.
    pub fn cardinality(&self, limit: usize) -> Result<Cardinality> {
        use index::PostingsSource;
        let postings = self.postings.read();
        let mut out = Cardinality::default();
        let mut pairs: Vec<(String, u64)> = Vec::new();
        for name in postings.names()? {
            let (mut values, mut bytes) = (0u64, 0u64);
            postings.for_each_value(&name, "", &mut |_| true, &mut |value, ids| {
                let n = ids.cardinality();
                values += 1;
                bytes += value.len() as u64 * n;
                if name == crate::labels::METRIC_NAME {
                    out.series_by_metric.push((value.to_string(), n));
                }
                pairs.push((format!("{name}={value}"), n));
                std::ops::ControlFlow::Continue(())
            })?;
            out.num_label_pairs += values;
            out.values_by_label.push((name.clone(), values));
            out.bytes_by_label.push((name, bytes));
        }
        out.series_by_pair = pairs;
        for list in [
            &mut out.series_by_metric,
            &mut out.values_by_label,
            &mut out.bytes_by_label,
            &mut out.series_by_pair,
        ] {
            list.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            list.truncate(limit);
        }
        Ok(out)
    }

    /// Approximate heap bytes used by samples, series entries and the index.
    pub fn memory_bytes(&self) -> usize {
        let mut bytes = 0;
        for shard in self.shards.iter() {
            let shard = shard.lock();
            bytes += shard.series.heap_bytes();
            for e in shard.series.iter() {
                bytes += e.labels.heap_bytes() + e.series.heap_bytes();
            }
        }
        bytes + self.symbols.read().string_bytes()
    }
}

/// Reads one head series: `(id, labels, series, shard scratch, chunk files)`.
type SeriesReader<'a> =
    dyn FnMut(u32, Labels, &MemSeries, &mut Scratch, &MappedChunks) -> Result<()> + 'a;

/// Receives one series' id and `(name, value)` pairs (see [`Head::for_each_series_in_shard`]).
pub type SeriesPairsVisitor<'a> = dyn FnMut(u32, &[(&str, &str)]) + 'a;

/// Receives one series' labels and sample columns (see [`Head::for_each_sorted`]).
pub type SeriesVisitor<'a> = dyn FnMut(&Labels, &[i64], &[f64]) -> Result<()> + 'a;

/// Top-N cardinality lists of the head, largest first.
#[derive(Debug, Clone, Default)]
pub struct Cardinality {
    /// Distinct `name=value` pairs.
    pub num_label_pairs: u64,
    /// Series per metric name.
    pub series_by_metric: Vec<(String, u64)>,
    /// Distinct values per label name.
    pub values_by_label: Vec<(String, u64)>,
    /// Bytes of label values per label name, summed over series.
    pub bytes_by_label: Vec<(String, u64)>,
    /// Series per `name=value` pair.
    pub series_by_pair: Vec<(String, u64)>,
}

/// What WAL replay did with a samples record.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayCounts {
    /// Samples stored.
    pub stored: u64,
    /// Samples already present with the same value.
    pub duplicate: u64,
    /// Samples rejected (older than the head's minimum valid time, or conflicting).
    pub rejected: u64,
    /// Samples for ids with no series record.
    pub unknown_series: u64,
}

const ALL_REASONS: [RejectReason; 5] = [
    RejectReason::OutOfOrder,
    RejectReason::DuplicateTimestamp,
    RejectReason::TooOld,
    RejectReason::InvalidLabels,
    RejectReason::SeriesLimit,
];

fn reason_slot(r: RejectReason) -> usize {
    ALL_REASONS.iter().position(|x| *x == r).unwrap_or(0)
}

fn push_message(messages: &mut Vec<String>, f: impl FnOnce() -> String) {
    if messages.len() < MAX_OUTCOME_MESSAGES {
        messages.push(f());
    }
}

fn reject_message(
    r: RejectReason,
    labels: &[(Cow<'_, str>, Cow<'_, str>)],
    t: i64,
    max_t: i64,
    l: AppendLimits,
) -> String {
    let series = display_pairs(labels);
    match r {
        RejectReason::OutOfOrder => format!(
            "out of order sample for series {series}: timestamp {t} is more than {} ms older than the newest sample {max_t}",
            l.ooo_window
        ),
        RejectReason::DuplicateTimestamp => {
            format!("duplicate sample for timestamp {t} with a different value for series {series}")
        }
        RejectReason::TooOld => format!(
            "sample for series {series} at timestamp {t} is too old: data before {} is already in blocks",
            l.min_valid_t
        ),
        RejectReason::InvalidLabels | RejectReason::SeriesLimit => format!("{} for series {series}", r.as_str()),
    }
}

fn metric_of<'p>(pairs: &'p [(Cow<'_, str>, Cow<'_, str>)]) -> &'p str {
    pairs
        .iter()
        .find(|(n, _)| n == crate::labels::METRIC_NAME)
        .map_or("", |(_, v)| v.as_ref())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A sorted label set without its empty values (which Prometheus treats as absent).
fn canonical<'s, 'p>(
    sorted: &'s [(&'p str, &'p str)],
) -> impl Iterator<Item = (&'p str, &'p str)> + 's {
    sorted.iter().copied().filter(|(_, v)| !v.is_empty())
}

/// The label sets of a head cut's series, as symbol ids in one vector. A cut sorts every
/// series of its window by labels: the series' strings were copied for that (packed into one
/// buffer, ~600 B per Flink series, 100 MB for the 173 k series of `compare.sh --medium`);
/// now the symbols are ranked once in string order and series compare by ranks, and each
/// series' strings are looked up when it is written. A series keeps its first pair, a tail
/// number and its id (20 bytes; the tails once each, see `label_tails`), where a vector of
/// every series' pairs took ~110 bytes per Flink series: ~0.2 GB of a cut at a million series.
#[derive(Default)]
struct LabelTable {
    /// Symbol ids, then (after `rank_symbols`) ranks.
    series: Vec<CutSeries>,
    tails: LabelTails,
    /// Scratch for the series being pushed.
    scratch: Vec<(u32, u32)>,
    /// The symbol id of each rank.
    by_rank: Vec<u32>,
}

/// One series of a head cut, for sorting (see [`LabelTable`]).
#[derive(Clone, Copy)]
struct CutSeries {
    /// The first `(name, value)` pair (`None` without labels).
    first: Option<(u32, u32)>,
    /// The pairs after the first, in `LabelTable::tails`.
    tail: u32,
    id: u32,
}

impl LabelTable {
    fn push(&mut self, pairs: impl IntoIterator<Item = (u32, u32)>, id: u32) {
        self.scratch.clear();
        self.scratch.extend(pairs);
        let (first, tail) = self.tails.split(&self.scratch);
        self.series.push(CutSeries { first, tail, id });
    }

    /// Replaces symbol ids by their rank among all symbols in string order, so that comparing
    /// ranks compares the strings.
    fn rank_symbols(&mut self, symbols: &Symbols) {
        let n = symbols.len() as u32;
        let mut by_rank: Vec<u32> = (0..n).collect();
        by_rank.sort_unstable_by(|&a, &b| symbols.resolve(a).cmp(&symbols.resolve(b)));
        let mut rank = vec![0u32; by_rank.len()];
        for (r, &sym) in by_rank.iter().enumerate() {
            rank[sym as usize] = r as u32;
        }
        let of = |sym: u32| rank.get(sym as usize).copied().unwrap_or(u32::MAX);
        let pair = |p: (u32, u32)| (of(p.0), of(p.1));
        for s in &mut self.series {
            s.first = s.first.map(pair);
        }
        self.tails.map_pairs(pair);
        self.by_rank = by_rank;
    }

    fn id(&self, k: usize) -> u32 {
        self.series[k].id
    }

    /// Series `k`'s labels, built for the one series being written (`None` if a symbol is
    /// missing, which cannot happen for a live series).
    fn labels(&self, k: usize, symbols: &Symbols) -> Option<Labels> {
        let string = |r: u32| {
            self.by_rank
                .get(r as usize)
                .and_then(|&sym| symbols.resolve(sym))
        };
        let CutSeries { first, tail, .. } = self.series[k];
        let tail = self.tails.get(tail);
        let mut pairs = Vec::with_capacity(1 + tail.len());
        for &(n, v) in first.iter().chain(tail) {
            pairs.push((string(n)?, string(v)?));
        }
        Some(Labels::from_sorted_pairs_unchecked(pairs))
    }

    /// Indices of the series in label order (as `Labels` sort): the first pairs, then the
    /// tails, which is how their concatenations compare.
    fn sorted(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.series.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (self.series[a], self.series[b]);
            a.first.cmp(&b.first).then_with(|| {
                if a.tail == b.tail {
                    std::cmp::Ordering::Equal
                } else {
                    self.tails.get(a.tail).cmp(self.tails.get(b.tail))
                }
            })
        });
        order
    }
}

/// A series' pairs in name order (for a new series; its labels passed [`series_key`]).
fn sorted_pairs<'p>(labels: &'p [(Cow<'_, str>, Cow<'_, str>)]) -> Vec<(&'p str, &'p str)> {
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(n, v)| (n.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable_by(|x, y| x.0.cmp(y.0));
    pairs
}

#[cfg(test)]
mod tests;
