//! The in-process storage benchmark: appends a Flink workload through `Db::append` (one batch
//! per TaskManager scrape, as one remote_write request would be), then flushes and compacts,
//! and measures append speed, resident memory per active series, bytes per sample on disk and
//! the decode speed of a compacted block.
//!
//! Time runs in segments of scrape rounds. The first round (which creates every series) and
//! the rest of the first segment run on one thread; later segments run on `threads` threads,
//! each owning a partition of the TaskManagers, so every series is still appended in time
//! order. Between segments the main thread runs `Db::maintain` (head cuts, compaction), as the
//! server's maintenance loop would; it is timed apart from appends.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use eddy_storage::{block, chunk, Db, DbOptions, KeyScratch, SeriesKey, WriteBatch};

use crate::flink::{Config, Scrape, Workload};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workload.
    pub workload: Config,
    /// Threads for the multi-threaded phase.
    pub threads: usize,
    /// Database directory (created; should be empty).
    pub dir: PathBuf,
    /// Scrape rounds per segment (maintenance runs between segments). Default: one hour.
    pub segment_rounds: u64,
    /// Append series with their keys known, as the server does for remote_write series it
    /// has seen before ([`KeyMemo`]); the memo's hashing is outside the timed append.
    pub keyed: bool,
}

impl Options {
    /// Options with one-hour segments.
    pub fn new(workload: Config, threads: usize, dir: PathBuf) -> Self {
        let segment_rounds = (3_600_000 / workload.interval_ms.max(1)).max(1) as u64;
        Options {
            workload,
            threads,
            dir,
            segment_rounds,
            keyed: false,
        }
    }
}

/// Append throughput of one phase.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// Threads used.
    pub threads: usize,
    /// Samples appended (accepted).
    pub samples: u64,
    /// Wall-clock time of the phase, workload generation included.
    pub wall: Duration,
    /// Time spent inside `Db::append`, summed over threads.
    pub append: Duration,
}

impl Phase {
    /// Samples per second of `Db::append` time: the per-core append rate.
    pub fn per_core(&self) -> f64 {
        self.samples as f64 / self.append.as_secs_f64().max(1e-9)
    }

    /// Samples per second of wall time (generation included).
    pub fn wall_rate(&self) -> f64 {
        self.samples as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Everything measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Whether series were appended with their keys known ([`Options::keyed`]).
    pub keyed: bool,
    /// Active series at any time.
    pub active_series: u64,
    /// Series the head created in total (restarts add series).
    pub series_created: u64,
    /// Samples the workload produced.
    pub samples: u64,
    /// Samples rejected by the database.
    pub rejected: u64,
    /// First scrape round: creates every series.
    pub first_round: Phase,
    /// Single-threaded appends after the first round.
    pub single: Phase,
    /// Multi-threaded appends.
    pub multi: Phase,
    /// Time in `Db::maintain` between segments.
    pub maintain: Duration,
    /// VmRSS (bytes) before opening the database.
    pub rss_start: u64,
    /// VmRSS after the first round (every series holds one sample).
    pub rss_first_round: u64,
    /// VmRSS after the first segment.
    pub rss_first_segment: u64,
    /// Active head series when `rss_first_segment` was read.
    pub series_first_segment: u64,
    /// The head's own estimate of its heap bytes after the first segment.
    pub head_bytes_first_segment: u64,
    /// VmHWM (peak RSS) at the end of appends.
    pub rss_peak: u64,
    /// VmRSS at the end of appends (before the flush).
    pub rss_end: u64,
    /// Head series at the end of appends (active and not yet cut away).
    pub series_end: u64,
    /// The head's estimate of its heap bytes at the end of appends.
    pub head_bytes_end: u64,
    /// Bytes of full head chunks in files (`chunks_head/`) at the end of appends.
    pub head_file_bytes_end: u64,
    /// Time `Db::flush` took (head cut + compaction).
    pub flush: Duration,
    /// Peak RSS during `Db::flush` (VmHWM reset just before it; 0 where the kernel does not
    /// allow the reset).
    pub rss_flush_peak: u64,
    /// Blocks after the flush.
    pub blocks: usize,
    /// Samples in blocks.
    pub block_samples: u64,
    /// Bytes of all `chunks` files.
    pub chunks_bytes: u64,
    /// Bytes of all `index` files.
    pub index_bytes: u64,
    /// Of `chunks_bytes`: bytes of timestamp columns (each stored column counted once).
    pub ts_bytes: u64,
    /// Of `chunks_bytes`: bytes of value columns and chunk version bytes.
    pub value_bytes: u64,
    /// Chunks in all blocks.
    pub chunks: u64,
    /// Of `chunks`: those stored without their timestamp column (it is shared).
    pub shared_chunks: u64,
    /// Samples decoded from the largest block and the time it took.
    pub decode_samples: u64,
    /// Decode time of the largest block (single thread, best of 3), each shared timestamp
    /// column decoded once (`ChunkDecoder`).
    pub decode: Duration,
    /// The same, decoding every chunk's timestamp column anew (`StoredChunk::decode`).
    pub decode_uncached: Duration,
    /// Span (h) of the largest block.
    pub decode_block_hours: f64,
}

/// Reads a `kB` field of `/proc/self/status` in bytes (0 where /proc is unavailable).
pub fn proc_status_bytes(field: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resets VmHWM to the current RSS (`5` to `/proc/self/clear_refs`, Linux ≥ 4.0), so a later
/// read of VmHWM is the peak of what ran in between. False where the write is refused.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The bench's stand-in for the server's remote_write label-run memory: label sets already
/// seen (by the hash of their pairs in arrival order) and their series keys.
#[derive(Debug, Default)]
pub struct KeyMemo {
    keys: HashMap<u128, SeriesKey>,
    bytes: Vec<u8>,
    scratch: KeyScratch,
    /// Entries kept before the memo starts again (series replaced by restarts leave theirs).
    limit: usize,
}

impl KeyMemo {
    /// A memo for a partition of `series` active series.
    pub fn new(series: u64) -> Self {
        KeyMemo {
            limit: (series as usize).saturating_mul(2) + (1 << 16),
            ..KeyMemo::default()
        }
    }

    /// Gives every series of `batch` its key; labels stay (a series new to the head needs them).
    pub fn key_batch(&mut self, batch: &mut WriteBatch<'_>) {
        if self.keys.len() > self.limit {
            self.keys.clear();
        }
        for i in 0..batch.series.len() {
            self.bytes.clear();
            for (n, v) in batch.series_labels(i) {
                self.bytes.extend_from_slice(n.as_bytes());
                self.bytes.push(0xff);
                self.bytes.extend_from_slice(v.as_bytes());
                self.bytes.push(0xff);
            }
            let hash = xxhash_rust::xxh3::xxh3_128(&self.bytes);
            let key = match self.keys.get(&hash) {
                Some(&k) => Some(k),
                None => SeriesKey::of(batch.series_labels(i), &mut self.scratch)
                    .ok()
                    .inspect(|&k| {
                        self.keys.insert(hash, k);
                    }),
            };
            batch.series[i].key = key;
        }
    }
}

/// Appends scrapes of `w` until it reaches round `until`; returns (samples accepted,
/// samples rejected, time in append).
fn append_until(
    db: &Db,
    w: &mut Workload,
    until: u64,
    scrape: &mut Scrape,
    memo: &mut Option<KeyMemo>,
) -> anyhow::Result<(u64, u64, Duration)> {
    let (mut ok, mut bad, mut spent) = (0u64, 0u64, Duration::ZERO);
    // One batch's vectors for every scrape, as a server thread keeps them between requests:
    // a new batch per scrape grew its label vector past the mmap threshold each time, and
    // its page faults were a third of the `--full` run's CPU time (all in the generator).
    let mut kept: WriteBatch<'static> = WriteBatch::new();
    while w.round() < until {
        if !w.next_scrape(scrape) {
            break;
        }
        let mut batch = std::mem::take(&mut kept).recycle();
        scrape.fill_batch(&mut batch);
        if let Some(m) = memo {
            m.key_batch(&mut batch);
        }
        let t = Instant::now();
        let out = db.append(&mut batch).context("append a scrape")?;
        spent += t.elapsed();
        ok += out.accepted;
        bad += out.rejected_total();
        kept = batch.recycle();
    }
    Ok((ok, bad, spent))
}

/// Runs the benchmark.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let cfg = &opts.workload;
    let threads = opts.threads.max(1);
    let mut rep = Report {
        keyed: opts.keyed,
        active_series: cfg.active_series(),
        samples: cfg.total_samples(),
        rss_start: proc_status_bytes("VmRSS"),
        ..Report::default()
    };
    let db = Db::open(&opts.dir, DbOptions::default())
        .with_context(|| format!("open database in {}", opts.dir.display()))?;
    let mut parts: Vec<(Workload, Scrape, Option<KeyMemo>)> = (0..threads)
        .map(|k| {
            let memo = opts
                .keyed
                .then(|| KeyMemo::new(cfg.active_series() / threads as u64));
            (
                Workload::partition(cfg.clone(), k, threads),
                Scrape::default(),
                memo,
            )
        })
        .collect();
    let rounds = cfg.rounds();
    let seg = opts.segment_rounds.max(1).min(rounds.div_ceil(2).max(1));
    let mut round = 0u64;
    // Single thread: the first round, then the rest of the first segment.
    for (target, phase) in [(1u64, 0), (seg, 1)] {
        let began = Instant::now();
        let mut p = Phase {
            threads: 1,
            ..Phase::default()
        };
        for (w, s, m) in parts.iter_mut() {
            let (ok, bad, spent) = append_until(&db, w, target.min(rounds), s, m)?;
            p.samples += ok;
            rep.rejected += bad;
            p.append += spent;
        }
        p.wall = began.elapsed();
        if phase == 0 {
            rep.first_round = p;
            rep.rss_first_round = proc_status_bytes("VmRSS");
        } else {
            rep.single = p;
        }
        round = target.min(rounds);
    }
    rep.rss_first_segment = proc_status_bytes("VmRSS");
    rep.series_first_segment = db.head_stats().series;
    rep.head_bytes_first_segment = db.head().memory_bytes() as u64;
    let t = Instant::now();
    db.maintain().context("maintain")?;
    // As the server does after maintenance (`eddy::allocator`).
    eddy::allocator::release_freed_memory();
    rep.maintain += t.elapsed();
    // Multi-threaded segments.
    rep.multi.threads = threads;
    while round < rounds {
        let target = (round + seg).min(rounds);
        let began = Instant::now();
        let results: Vec<anyhow::Result<(u64, u64, Duration)>> = std::thread::scope(|sc| {
            let handles: Vec<_> = parts
                .iter_mut()
                .map(|(w, s, m)| {
                    let db = &db;
                    sc.spawn(move || append_until(db, w, target, s, m))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("append thread panicked")))
                })
                .collect()
        });
        rep.multi.wall += began.elapsed();
        for r in results {
            let (ok, bad, spent) = r?;
            rep.multi.samples += ok;
            rep.rejected += bad;
            rep.multi.append += spent;
        }
        let t = Instant::now();
        db.maintain().context("maintain")?;
        eddy::allocator::release_freed_memory();
        rep.maintain += t.elapsed();
        round = target;
    }
    rep.rss_peak = proc_status_bytes("VmHWM");
    rep.rss_end = proc_status_bytes("VmRSS");
    rep.series_end = db.head_stats().series;
    rep.head_bytes_end = db.head().memory_bytes() as u64;
    rep.head_file_bytes_end = db.head().mapped_chunk_stats().bytes;
    rep.series_created = db.head_stats().series_created;
    let hwm_reset = reset_peak_rss();
    let t = Instant::now();
    db.flush().context("flush")?;
    rep.flush = t.elapsed();
    if hwm_reset {
        rep.rss_flush_peak = proc_status_bytes("VmHWM");
    }
    measure_blocks(&db, &mut rep)?;
    db.close().context("close")?;
    Ok(rep)
}

/// Fills the on-disk and decode figures from the database's blocks.
fn measure_blocks(db: &Db, rep: &mut Report) -> anyhow::Result<()> {
    let blocks = db.blocks();
    rep.blocks = blocks.len();
    for b in blocks.iter() {
        let m = b.meta();
        rep.block_samples += m.stats.num_samples;
        rep.chunks_bytes += m.file(block::CHUNKS_FILE).map_or(0, |f| f.size);
        rep.index_bytes += m.file(block::INDEX_FILE).map_or(0, |f| f.size);
        for ord in 0..b.num_series() {
            for (_, c) in b.series_chunks(ord)? {
                let stored = c.stored_bytes();
                rep.chunks += 1;
                if c.shared_timestamps().is_some() {
                    rep.shared_chunks += 1;
                    rep.value_bytes += stored.len() as u64;
                } else {
                    let ts_len = chunk::split_chunk(stored)?.timestamps.len();
                    rep.ts_bytes += ts_len as u64;
                    rep.value_bytes += (stored.len() - ts_len) as u64;
                }
            }
        }
    }
    let Some(big) = blocks.iter().max_by_key(|b| b.meta().stats.num_samples) else {
        return Ok(());
    };
    rep.decode_block_hours = (big.meta().max_t - big.meta().min_t) as f64 / 3_600_000.0;
    // Best of three passes each: with the per-query column cache (how reads run), and
    // decoding every chunk's timestamp column again (what each chunk cost before sharing).
    let (mut ts, mut vals) = (Vec::new(), Vec::new());
    let mut n = 0u64;
    let mut pass = |cached: bool| -> anyhow::Result<Duration> {
        let t = Instant::now();
        n = 0;
        let mut dec = block::ChunkDecoder::new();
        for ord in 0..big.num_series() {
            for (_, c) in big.series_chunks(ord)? {
                ts.clear();
                vals.clear();
                n += if cached {
                    dec.decode(&c, &mut ts, &mut vals)?
                } else {
                    c.decode(&mut ts, &mut vals)?
                } as u64;
            }
        }
        Ok(t.elapsed())
    };
    let mut best = |cached: bool| -> anyhow::Result<Duration> {
        let mut d = pass(cached)?;
        for _ in 0..2 {
            d = d.min(pass(cached)?);
        }
        Ok(d)
    };
    rep.decode_uncached = best(false)?;
    rep.decode = best(true)?;
    rep.decode_samples = n;
    if n != big.meta().stats.num_samples {
        bail!(
            "decoded {n} samples from block {}, its meta says {}",
            big.meta().id,
            big.meta().stats.num_samples
        );
    }
    Ok(())
}

fn mb(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        if self.keyed {
            writeln!(
                f,
                "appends keyed            series keys known after first sight (--keyed)"
            )?;
        }
        writeln!(f, "active series            {}", self.active_series)?;
        writeln!(f, "series created           {}", self.series_created)?;
        writeln!(
            f,
            "samples                  {} ({} rejected)",
            self.samples, self.rejected
        )?;
        for (name, p) in [
            ("first round (new series)", &self.first_round),
            ("single thread", &self.single),
            ("multi thread", &self.multi),
        ] {
            writeln!(
                f,
                "{name:<24} {:>2} thr  {:>12} samples  {:>8.3} M appends/s/core (append time)  {:>8.3} M/s wall incl. generation",
                p.threads,
                p.samples,
                p.per_core() / 1e6,
                p.wall_rate() / 1e6
            )?;
        }
        writeln!(
            f,
            "maintenance (cuts)       {:.1} s",
            self.maintain.as_secs_f64()
        )?;
        let grown = |rss: u64| rss.saturating_sub(self.rss_start);
        writeln!(
            f,
            "RSS start {:.0} MiB; after first round {:.0} MiB ({:.0} B/series); after first segment {:.0} MiB ({:.0} B/series, {} series; head estimate {:.0} B/series); peak {:.0} MiB",
            mb(self.rss_start),
            mb(self.rss_first_round),
            per(grown(self.rss_first_round), self.active_series),
            mb(self.rss_first_segment),
            per(grown(self.rss_first_segment), self.series_first_segment),
            self.series_first_segment,
            per(self.head_bytes_first_segment, self.series_first_segment),
            mb(self.rss_peak)
        )?;
        writeln!(
            f,
            "RSS at end of appends    {:.0} MiB ({:.0} B per active series, {:.0} B per head series; {} head series, head estimate {:.0} B/series; {:.0} MiB of full chunks in chunks_head/ files)",
            mb(self.rss_end),
            per(grown(self.rss_end), self.active_series),
            per(grown(self.rss_end), self.series_end),
            self.series_end,
            per(self.head_bytes_end, self.series_end),
            mb(self.head_file_bytes_end)
        )?;
        writeln!(
            f,
            "flush + compaction       {:.1} s -> {} blocks, {} samples; peak RSS during it {:.0} MiB",
            self.flush.as_secs_f64(),
            self.blocks,
            self.block_samples,
            mb(self.rss_flush_peak)
        )?;
        writeln!(
            f,
            "on disk                  chunks {:.3} B/sample, index {:.3} B/sample, total {:.3} B/sample",
            per(self.chunks_bytes, self.block_samples),
            per(self.index_bytes, self.block_samples),
            per(self.chunks_bytes + self.index_bytes, self.block_samples)
        )?;
        writeln!(
            f,
            "chunk columns            timestamps {:.3} B/sample, values {:.3} B/sample (rest: per-series CRCs, headers); {} of {} chunks share their timestamp column",
            per(self.ts_bytes, self.block_samples),
            per(self.value_bytes, self.block_samples),
            self.shared_chunks,
            self.chunks,
        )?;
        write!(
            f,
            "decode                   {} samples of a {:.1} h block in {:.3} s = {:.1} M samples/s (1 thread, best of 3; {:.1} M samples/s decoding every chunk's timestamps)",
            self.decode_samples,
            self.decode_block_hours,
            self.decode.as_secs_f64(),
            self.decode_samples as f64 / self.decode.as_secs_f64().max(1e-9) / 1e6,
            self.decode_samples as f64 / self.decode_uncached.as_secs_f64().max(1e-9) / 1e6
        )
    }
}
