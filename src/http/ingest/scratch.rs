//! The ingest handlers' reused request memory: a pool of scratch sets (body, decompression
//! buffer, batch, decoder state), one lent to each request in flight. The pool keeps only a
//! few idle sets, and each set gives back what its recent requests did not need.
//!
//! Why a pool and not one set per blocking thread: tokio starts a blocking thread whenever all
//! are busy, and any of them may run the next request, so per-thread buffers end up in every
//! thread the pool ever grew to (nine 4.5 MB sets, 40 MB, at `compare.sh --medium`). Here the
//! number of sets follows the requests actually in flight, and the idle ones are capped.

use std::sync::atomic::{AtomicU64, Ordering};

use eddy_ingest::influx::InfluxScratch;
use eddy_ingest::otlp::OtlpScratch;
use eddy_ingest::remote_write::SnappyBuffer;
use eddy_storage::WriteBatch;
use parking_lot::Mutex;

use super::{KeyedInflux, KeyedRequest};

/// A set is trimmed after this many of its requests, to what the largest of them needed.
const TRIM_EVERY: u32 = 16;

/// A buffer is trimmed only if it holds more than twice its window's need plus this much, so
/// that small buffers and normal variation between requests never cause a reallocation.
const TRIM_SLACK_BYTES: usize = 64 << 10;

/// A set holding more than this after a request is dropped at once rather than kept until its
/// next trim, so that one huge request does not pin memory in an idle set.
const MAX_SET_BYTES: usize = 64 << 20;

/// Everything one ingest request decodes into. Fields not used by a request's format stay
/// empty (a set serves every format).
#[derive(Default)]
pub(super) struct ScratchSet {
    /// The request body as it arrived (compressed, for remote_write).
    pub(super) wire: Vec<u8>,
    /// The body after `Content-Encoding: gzip`.
    pub(super) body: Vec<u8>,
    /// remote_write's snappy output.
    pub(super) snappy: SnappyBuffer,
    /// The batch's vectors, between requests (see [`ScratchSet::lend_batch`]).
    pub(super) batch: WriteBatch<'static>,
    pub(super) keyed: KeyedRequest,
    pub(super) keyed_lines: KeyedInflux,
    pub(super) influx: InfluxScratch,
    pub(super) otlp: OtlpScratch,
    /// The most each buffer held in the requests since the last trim.
    peaks: Peaks,
}

/// Lengths, in elements; `request` is the decoded body in bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    requests: u32,
    request: usize,
    wire: usize,
    body: usize,
    labels: usize,
    series: usize,
    samples: usize,
}

impl std::fmt::Debug for ScratchSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchSet")
            .field("retained_bytes", &self.retained_bytes())
            .field("peaks", &self.peaks)
            .finish_non_exhaustive()
    }
}

impl ScratchSet {
    /// Runs `f` with the set's batch, empty and free to borrow from the set's other buffers
    /// (`WriteBatch::recycle` moves the vectors across lifetimes), and keeps the vectors.
    pub(super) fn lend_batch<'a, R>(
        kept: &mut WriteBatch<'static>,
        f: impl FnOnce(&mut WriteBatch<'a>) -> R,
    ) -> (R, BatchUse) {
        let mut batch: WriteBatch<'a> = std::mem::take(kept).recycle();
        let r = f(&mut batch);
        let used = BatchUse {
            labels: batch.labels.len(),
            series: batch.series.len(),
            samples: batch.timestamps.len(),
        };
        *kept = batch.recycle();
        (r, used)
    }

    /// Records what a request used: the decoded body's length and the batch's lengths.
    pub(super) fn note(&mut self, request_bytes: usize, batch: BatchUse) {
        let p = &mut self.peaks;
        p.requests += 1;
        p.request = p.request.max(request_bytes);
        p.wire = p.wire.max(self.wire.len());
        p.body = p.body.max(self.body.len());
        p.labels = p.labels.max(batch.labels);
        p.series = p.series.max(batch.series);
        p.samples = p.samples.max(batch.samples);
    }

    /// Heap bytes the set keeps between requests.
    pub(super) fn retained_bytes(&self) -> usize {
        let b = &self.batch;
        self.wire.capacity()
            + self.body.capacity()
            + self.snappy.capacity()
            + b.allocated_bytes()
            + self.keyed.seen.retained_bytes()
            + self.keyed.fresh.retained_bytes()
            + self.keyed_lines.lines.retained_bytes()
            + self.keyed_lines.fresh.retained_bytes()
            + self.influx.retained_bytes()
            + self.otlp.retained_bytes()
    }

    /// Gives back what the requests since the last trim did not need: a vector keeps its
    /// window's peak length plus a quarter; decoder state, which cannot shrink in place, is
    /// dropped and regrows on the next request that needs it.
    fn trim(&mut self) {
        let p = std::mem::take(&mut self.peaks);
        shrink(&mut self.wire, p.wire);
        shrink(&mut self.body, p.body);
        shrink(&mut self.batch.labels, p.labels);
        shrink(&mut self.batch.series, p.series);
        shrink(&mut self.batch.timestamps, p.samples);
        shrink(&mut self.batch.values, p.samples);
        // The decompressed body is the request, so its peak is `p.request` (for remote_write).
        if oversized(self.snappy.capacity(), p.request) {
            self.snappy = SnappyBuffer::new();
        }
        // Per-series and per-line decoder state is far smaller than the body bytes it
        // describes, so the body's peak bounds it.
        let keyed = self.keyed.seen.retained_bytes() + self.keyed.fresh.retained_bytes();
        if oversized(keyed, p.request) {
            self.keyed = KeyedRequest::default();
        }
        let lines =
            self.keyed_lines.lines.retained_bytes() + self.keyed_lines.fresh.retained_bytes();
        if oversized(lines, p.request) {
            self.keyed_lines = KeyedInflux::default();
        }
        if oversized(self.influx.retained_bytes(), p.request) {
            self.influx = InfluxScratch::new();
        }
        if oversized(self.otlp.retained_bytes(), p.request) {
            self.otlp = OtlpScratch::new();
        }
    }
}

/// How much of the batch a request filled (its lengths before it was emptied).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct BatchUse {
    labels: usize,
    series: usize,
    samples: usize,
}

fn oversized(held_bytes: usize, needed_bytes: usize) -> bool {
    held_bytes > 2 * needed_bytes + TRIM_SLACK_BYTES
}

fn shrink<T>(v: &mut Vec<T>, peak_len: usize) {
    let size = std::mem::size_of::<T>().max(1);
    if oversized(v.capacity() * size, peak_len * size) {
        v.shrink_to(peak_len + peak_len / 4);
    }
}

/// Scratch sets shared by all ingest requests. Checking a set out and in is one uncontended
/// lock each; a set is never shared by two requests.
#[derive(Debug)]
pub struct ScratchPool {
    idle: Mutex<Vec<Box<ScratchSet>>>,
    max_idle: usize,
    created: AtomicU64,
    checkouts: AtomicU64,
    /// `checkouts` at the last [`ScratchPool::release_if_unused`].
    checkouts_seen: AtomicU64,
}

impl ScratchPool {
    /// A pool that keeps at most `max_idle` sets between requests; more requests in flight
    /// get new sets, dropped when they finish.
    pub fn new(max_idle: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
            created: AtomicU64::new(0),
            checkouts: AtomicU64::new(0),
            checkouts_seen: AtomicU64::new(0),
        }
    }

    /// One idle set per core, and at least two: decode and append are CPU work, so more
    /// requests than cores in flight means some wait for a core (or for a WAL fsync) anyway.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(n) = std::env::var("EDDY_SCRATCH_SETS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return Self::new(n); // EXPERIMENT, remove
        }
        Self::new(cores.max(2))
    }

    /// A set for one request: the most recently returned one (its memory is the most likely
    /// to be resident), or a new empty one.
    pub(super) fn checkout(&self) -> Box<ScratchSet> {
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        if let Some(set) = self.idle.lock().pop() {
            return set;
        }
        self.created.fetch_add(1, Ordering::Relaxed);
        Box::default()
    }

    /// Takes a set back after its request, trimming it every [`TRIM_EVERY`] requests; drops
    /// it if the pool already keeps enough or it holds more than [`MAX_SET_BYTES`].
    pub(super) fn checkin(&self, mut set: Box<ScratchSet>) {
        if set.peaks.requests >= TRIM_EVERY {
            set.trim();
        }
        if set.retained_bytes() > MAX_SET_BYTES {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(set);
        }
    }

    /// Drops every idle set if no request checked one out since the last call (the server
    /// calls this every few seconds). True if anything was dropped.
    pub fn release_if_unused(&self) -> bool {
        let now = self.checkouts.load(Ordering::Relaxed);
        if self.checkouts_seen.swap(now, Ordering::Relaxed) != now {
            return false;
        }
        let dropped = std::mem::take(&mut *self.idle.lock());
        !dropped.is_empty()
    }

    /// Idle sets kept.
    pub fn idle_sets(&self) -> usize {
        self.idle.lock().len()
    }

    /// Heap bytes held by the idle sets.
    pub fn idle_bytes(&self) -> usize {
        self.idle.lock().iter().map(|s| s.retained_bytes()).sum()
    }

    /// Sets created since start (each one a request that found no idle set).
    pub fn sets_created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set that looks as if it had served a request of `bytes` bytes.
    fn used_set(pool: &ScratchPool, bytes: usize) -> Box<ScratchSet> {
        let mut set = pool.checkout();
        set.wire.clear();
        set.wire.resize(bytes, 7);
        let mut batch = std::mem::take(&mut set.batch);
        let ((), used) = ScratchSet::lend_batch(&mut batch, |b| {
            for i in 0..bytes / 64 {
                b.start_series();
                b.push_label("__name__", "m");
                b.push_sample(i as i64, 1.0);
            }
        });
        set.batch = batch;
        set.note(bytes, used);
        set
    }

    #[test]
    fn a_returned_set_is_lent_again_with_its_memory() {
        let pool = ScratchPool::new(2);
        let set = used_set(&pool, 100_000);
        let held = set.retained_bytes();
        assert!(held >= 100_000, "{held}");
        pool.checkin(set);
        assert_eq!(pool.idle_sets(), 1);
        assert_eq!(pool.idle_bytes(), held);
        let again = pool.checkout();
        assert_eq!(again.retained_bytes(), held);
        assert_eq!(pool.sets_created(), 1);
        assert_eq!(pool.idle_sets(), 0);
    }

    #[test]
    fn the_pool_keeps_at_most_max_idle_sets() {
        let pool = ScratchPool::new(2);
        let sets: Vec<_> = (0..5).map(|_| used_set(&pool, 1000)).collect();
        assert_eq!(pool.sets_created(), 5);
        for set in sets {
            pool.checkin(set);
        }
        assert_eq!(pool.idle_sets(), 2);
        let _a = pool.checkout();
        let _b = pool.checkout();
        let _c = pool.checkout();
        assert_eq!(pool.sets_created(), 6);
    }

    #[test]
    fn a_set_gives_back_what_its_last_requests_did_not_need() {
        let pool = ScratchPool::new(1);
        pool.checkin(used_set(&pool, 4 << 20));
        let big = pool.idle_bytes();
        assert!(big > 4 << 20, "{big}");
        // The big request's window ends with small requests: kept until the trim.
        for _ in 1..TRIM_EVERY - 1 {
            pool.checkin(used_set(&pool, 10_000));
            assert_eq!(pool.idle_bytes(), big);
        }
        pool.checkin(used_set(&pool, 10_000));
        let after_big_window = pool.idle_bytes();
        // The window held the big request, so nothing was given back yet.
        assert!(after_big_window >= 4 << 20, "{after_big_window}");
        for _ in 0..TRIM_EVERY {
            pool.checkin(used_set(&pool, 10_000));
        }
        let small = pool.idle_bytes();
        assert!(small < 1 << 20, "kept {small} bytes for 10 kB requests");
        assert_eq!(pool.sets_created(), 1);
        // Steady requests of one size do not reallocate at each trim.
        let set = pool.checkout();
        let ptr = set.wire.as_ptr();
        pool.checkin(set);
        for _ in 0..3 * TRIM_EVERY {
            pool.checkin(used_set(&pool, 10_000));
        }
        assert_eq!(pool.idle_bytes(), small);
        let set = pool.checkout();
        assert_eq!(set.wire.as_ptr(), ptr);
    }

    #[test]
    fn a_set_past_the_hard_cap_is_dropped_at_once() {
        let pool = ScratchPool::new(2);
        let mut set = pool.checkout();
        set.wire.reserve(MAX_SET_BYTES + 1);
        pool.checkin(set);
        assert_eq!(pool.idle_sets(), 0);
        pool.checkin(used_set(&pool, 1000));
        assert_eq!(pool.idle_sets(), 1);
    }

    #[test]
    fn idle_sets_are_released_only_after_a_look_without_requests() {
        let pool = ScratchPool::new(2);
        pool.checkin(used_set(&pool, 1000));
        // Requests since the last look: keep.
        assert!(!pool.release_if_unused());
        assert_eq!(pool.idle_sets(), 1);
        // None since: release.
        assert!(pool.release_if_unused());
        assert_eq!(pool.idle_sets(), 0);
        assert!(!pool.release_if_unused());
    }

    #[test]
    fn a_lent_batch_is_empty_and_keeps_its_vectors() {
        let mut kept = WriteBatch::new();
        let text = String::from("value");
        let ((), used) = ScratchSet::lend_batch(&mut kept, |b| {
            b.start_series();
            b.push_label("__name__", text.as_str());
            b.push_sample(1, 2.0);
            b.push_sample(2, 3.0);
        });
        assert_eq!((used.labels, used.series, used.samples), (1, 1, 2));
        let held = kept.allocated_bytes();
        assert!(held > 0);
        let ((), used) = ScratchSet::lend_batch(&mut kept, |b| {
            assert!(b.series.is_empty() && b.labels.is_empty() && b.timestamps.is_empty());
        });
        assert_eq!((used.labels, used.series, used.samples), (0, 0, 0));
        assert_eq!(kept.allocated_bytes(), held);
    }
}
