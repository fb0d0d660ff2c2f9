//! The ingest handlers' reused request memory and their concurrency: a pool of scratch sets
//! (decompression buffer, batch, decoder state), one lent to each request being decoded, at
//! most one per ingest worker; and spare body buffers for requests still arriving, as many as
//! were being read at once lately (one per sending connection). Each buffer gives back what
//! its recent requests did not need, and an idle server gives back all.
//!
//! Why a bounded pool and not one set per blocking thread: tokio starts a blocking thread
//! whenever all are busy, and any of them may run the next request, so per-thread buffers end
//! up in every thread the pool ever grew to (nine 4.5 MB sets, 40 MB, at `compare.sh
//! --medium`). Decoding and appending are CPU work, so more of them at once than cores only
//! adds sets (and contention), not throughput; the workers bound both. Bodies are read before
//! a request waits for a worker, so a slow sender holds a body buffer, not a worker.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use eddy_ingest::influx::InfluxScratch;
use eddy_ingest::otlp::OtlpScratch;
use eddy_ingest::remote_write::SnappyBuffer;
use eddy_storage::WriteBatch;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{KeyedInflux, KeyedRequest};

/// A set is trimmed after this many of its requests, to what the largest of them needed.
const TRIM_EVERY: u32 = 16;

/// A buffer is trimmed only if it holds more than twice its window's need plus this much, so
/// that small buffers and normal variation between requests never cause a reallocation.
const TRIM_SLACK_BYTES: usize = 64 << 10;

/// A set holding more than this after a request is dropped at once rather than kept until its
/// next trim, so that one huge request does not pin memory in an idle set.
const MAX_SET_BYTES: usize = 64 << 20;

/// At most this many spare body buffers (or the worker count, if larger), however many
/// connections send at once.
const MAX_SPARE_WIRES: usize = 32;

/// Everything one ingest request decodes into. Fields not used by a request's format stay
/// empty (a set serves every format).
#[derive(Default)]
pub(super) struct ScratchSet {
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
    /// Lent since the last [`ScratchPool::release_unused`].
    lent_since_look: bool,
}

/// Lengths, in elements; `request` is the decoded body in bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    requests: u32,
    request: usize,
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
        p.body = p.body.max(self.body.len());
        p.labels = p.labels.max(batch.labels);
        p.series = p.series.max(batch.series);
        p.samples = p.samples.max(batch.samples);
    }

    /// Heap bytes the set keeps between requests.
    pub(super) fn retained_bytes(&self) -> usize {
        let b = &self.batch;
        self.body.capacity()
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

/// A request body as it arrived (compressed, for remote_write), in a reused buffer.
#[derive(Debug, Default)]
pub(super) struct WireBuf {
    pub(super) bytes: Vec<u8>,
    uses: u32,
    peak: usize,
    /// Lent since the last [`ScratchPool::release_unused`].
    lent_since_look: bool,
    /// The pool's count of body buffers: held while this one exists, however it ends.
    counted: Option<Arc<()>>,
}

impl WireBuf {
    /// Records this request's length and trims every [`TRIM_EVERY`] requests, as a set does.
    fn note_and_trim(&mut self) {
        self.uses += 1;
        self.peak = self.peak.max(self.bytes.len());
        if self.uses >= TRIM_EVERY {
            shrink(&mut self.bytes, self.peak);
            (self.uses, self.peak) = (0, 0);
        }
        self.bytes.clear();
    }
}

/// A scratch set lent to one request, with its place among the workers.
#[derive(Debug)]
pub(super) struct Lent {
    pub(super) set: ScratchSet,
    _worker: OwnedSemaphorePermit,
}

/// Scratch sets and body buffers shared by all ingest requests, and the ingest workers: at
/// most `workers` requests decode and append at once, each with a set of its own.
#[derive(Debug)]
pub struct ScratchPool {
    workers: Arc<Semaphore>,
    worker_count: usize,
    idle: Mutex<Vec<ScratchSet>>,
    spare_wire: Mutex<Vec<WireBuf>>,
    /// One reference per body buffer in existence (spare or reading), plus the pool's own.
    wires: Arc<()>,
    /// The most body buffers lent at once since the last [`ScratchPool::release_unused`].
    wires_lent_peak: AtomicUsize,
    created: AtomicU64,
}

impl ScratchPool {
    /// A pool with `workers` ingest workers (at least one); as many sets and spare body
    /// buffers are kept between requests.
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            workers: Arc::new(Semaphore::new(workers)),
            worker_count: workers,
            idle: Mutex::new(Vec::new()),
            spare_wire: Mutex::new(Vec::new()),
            wires: Arc::new(()),
            wires_lent_peak: AtomicUsize::new(0),
            created: AtomicU64::new(0),
        }
    }

    /// The default number of workers: one per core the process may run on, since decoding and
    /// appending are CPU work (measured at `compare.sh --medium`, server on one core: one
    /// worker took 6 MB less than two at the same CPU per sample). When every append waits
    /// for an fsync (`wal_waits`), at least eight and four per core, since a worker then
    /// mostly waits and group commit shares one fsync among all the appends in flight.
    pub fn default_workers(wal_waits: bool) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if wal_waits {
            (4 * cores).max(8)
        } else {
            cores
        }
    }

    /// Ingest workers.
    pub fn workers(&self) -> usize {
        self.worker_count
    }

    /// A buffer to read a request body into: a spare one, or a new empty one.
    pub(super) fn wire(&self) -> WireBuf {
        let mut spare = self.spare_wire.lock();
        let mut wire = spare.pop().unwrap_or_default();
        wire.counted.get_or_insert_with(|| self.wires.clone());
        let lent = self.wires_lent(spare.len());
        drop(spare);
        self.wires_lent_peak.fetch_max(lent, Ordering::Relaxed);
        wire.lent_since_look = true;
        wire
    }

    /// Body buffers lent now, given the spare ones (`spare`, under the lock).
    fn wires_lent(&self, spare: usize) -> usize {
        (Arc::strong_count(&self.wires) - 1).saturating_sub(spare)
    }

    /// Takes back a body buffer whose request ended before it got a worker.
    pub(super) fn return_wire(&self, mut wire: WireBuf) {
        wire.note_and_trim();
        self.keep_wire(wire);
    }

    /// Keeps a body buffer for the next request if fewer are spare than were lately read at
    /// once: with one per worker only, each further connection's body went into a new buffer,
    /// whose pages were faulted in by the copy (page faults took ~10 % of line protocol
    /// ingest's server time at four connections and one worker; `docs/benchmarks.md`).
    fn keep_wire(&self, wire: WireBuf) {
        if wire.bytes.capacity() > MAX_SET_BYTES {
            return;
        }
        let limit = self
            .wires_lent_peak
            .load(Ordering::Relaxed)
            .clamp(self.worker_count, self.worker_count.max(MAX_SPARE_WIRES));
        let mut spare = self.spare_wire.lock();
        // Over the limit, the least recently used spare makes way (spares are lent from the
        // end), so that the buffers kept are the ones in use.
        let evicted = (spare.len() >= limit).then(|| spare.remove(0));
        spare.push(wire);
        drop(spare);
        drop(evicted);
    }

    /// Waits for a worker and lends it a set: the most recently returned one (its memory is
    /// the most likely to be resident), or a new empty one.
    pub(super) async fn checkout(&self) -> Option<Lent> {
        let worker = self.workers.clone().acquire_owned().await.ok()?;
        let mut set = self.idle.lock().pop().unwrap_or_else(|| {
            self.created.fetch_add(1, Ordering::Relaxed);
            ScratchSet::default()
        });
        set.lent_since_look = true;
        Some(Lent {
            set,
            _worker: worker,
        })
    }

    /// Takes a set and its request's body buffer back and frees the worker. The set is
    /// trimmed every [`TRIM_EVERY`] requests and dropped if it holds more than
    /// [`MAX_SET_BYTES`].
    pub(super) fn checkin(&self, lent: Lent, mut wire: WireBuf) {
        let Lent { mut set, _worker } = lent;
        wire.note_and_trim();
        self.keep_wire(wire);
        if set.peaks.requests >= TRIM_EVERY {
            set.trim();
        }
        if set.retained_bytes() <= MAX_SET_BYTES {
            let mut idle = self.idle.lock();
            if idle.len() < self.worker_count {
                idle.push(set);
            }
        }
        // The worker is freed last, so the next request finds this set idle.
        drop(_worker);
    }

    /// Drops the idle sets and spare body buffers that no request used since the last call
    /// (the server calls this every few seconds): the ones a burst of requests needed and
    /// steady traffic does not, or all of them when ingest stopped. True if any was dropped.
    pub fn release_unused(&self) -> bool {
        let mut dropped = false;
        self.idle.lock().retain_mut(|set| {
            let keep = std::mem::take(&mut set.lent_since_look);
            dropped |= !keep;
            keep
        });
        let mut spare = self.spare_wire.lock();
        spare.retain_mut(|wire| {
            let keep = std::mem::take(&mut wire.lent_since_look);
            dropped |= !keep;
            keep
        });
        // The next window's peak starts from the bodies being read now.
        let lent = self.wires_lent(spare.len());
        drop(spare);
        self.wires_lent_peak.store(lent, Ordering::Relaxed);
        dropped
    }

    /// Idle sets kept.
    pub fn idle_sets(&self) -> usize {
        self.idle.lock().len()
    }

    /// Heap bytes held by the idle sets and spare body buffers.
    pub fn idle_bytes(&self) -> usize {
        let sets: usize = self.idle.lock().iter().map(|s| s.retained_bytes()).sum();
        let wires: usize = self
            .spare_wire
            .lock()
            .iter()
            .map(|w| w.bytes.capacity())
            .sum();
        sets + wires
    }

    /// Sets created since start.
    pub fn sets_created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Fills a lent set and a body buffer as a request of `bytes` bytes would.
    fn use_set(lent: &mut Lent, wire: &mut WireBuf, bytes: usize) {
        wire.bytes.resize(bytes, 7);
        let set = &mut lent.set;
        let ((), used) = ScratchSet::lend_batch(&mut set.batch, |b| {
            for i in 0..bytes / 64 {
                b.start_series();
                b.push_label("__name__", "m");
                b.push_sample(i as i64, 1.0);
            }
        });
        set.note(bytes, used);
    }

    /// One request of `bytes` bytes through the pool.
    async fn request(pool: &ScratchPool, bytes: usize) {
        let mut wire = pool.wire();
        let mut lent = pool.checkout().await.expect("pool open");
        use_set(&mut lent, &mut wire, bytes);
        pool.checkin(lent, wire);
    }

    #[tokio::test]
    async fn a_returned_set_is_lent_again_with_its_memory() {
        let pool = ScratchPool::new(2);
        request(&pool, 100_000).await;
        let held = pool.idle_bytes();
        assert!(held >= 200_000, "{held}");
        assert_eq!(pool.idle_sets(), 1);
        let wire = pool.wire();
        let lent = pool.checkout().await.expect("pool open");
        assert!(wire.bytes.capacity() >= 100_000);
        assert_eq!(lent.set.retained_bytes() + wire.bytes.capacity(), held);
        assert_eq!(pool.sets_created(), 1);
        assert_eq!(pool.idle_sets(), 0);
    }

    #[tokio::test]
    async fn no_more_requests_than_workers_hold_a_set() {
        let pool = ScratchPool::new(2);
        let a = pool.checkout().await.expect("pool open");
        let b = pool.checkout().await.expect("pool open");
        let waiting = tokio::time::timeout(Duration::from_millis(50), pool.checkout()).await;
        assert!(waiting.is_err(), "a third request got a worker");
        pool.checkin(a, WireBuf::default());
        let c = tokio::time::timeout(Duration::from_secs(5), pool.checkout())
            .await
            .expect("a freed worker is handed on")
            .expect("pool open");
        assert_eq!(pool.sets_created(), 2, "the returned set is lent again");
        pool.checkin(b, WireBuf::default());
        pool.checkin(c, WireBuf::default());
        assert_eq!(pool.idle_sets(), 2);
    }

    /// Lends `n` body buffers at once, each filled with `bytes` bytes, and returns them.
    fn read_bodies_at_once(pool: &ScratchPool, n: usize, bytes: usize) {
        let wires: Vec<WireBuf> = (0..n)
            .map(|_| {
                let mut w = pool.wire();
                w.bytes.resize(bytes, 1);
                w
            })
            .collect();
        for w in wires {
            pool.return_wire(w);
        }
    }

    #[tokio::test]
    async fn spare_body_buffers_follow_the_bodies_read_at_once() {
        let pool = ScratchPool::new(2);
        // Five connections sending at once: five buffers kept, though there are two workers.
        read_bodies_at_once(&pool, 5, 1000);
        assert_eq!(pool.idle_bytes(), 5 * 1000);
        let wire = pool.wire();
        assert!(wire.bytes.is_empty(), "a spare buffer comes back empty");
        pool.return_wire(wire);
        assert!(!pool.release_unused(), "all five were used since the start");
        // Then one connection: its buffer stays, and the four it no longer needs go (one at
        // its return, since the limit is now the worker count; the rest at the next look).
        read_bodies_at_once(&pool, 1, 1000);
        assert_eq!(pool.idle_bytes(), 4 * 1000);
        assert!(pool.release_unused());
        assert_eq!(pool.idle_bytes(), 1000);
        // Many at once: kept up to the cap (the first returned, the old 1000-byte one, made
        // way for the last).
        read_bodies_at_once(&pool, MAX_SPARE_WIRES + 8, 10);
        assert_eq!(pool.idle_bytes(), MAX_SPARE_WIRES * 10);
        // A buffer that ends without being returned (a client gone mid-body) is not counted.
        drop(pool.wire());
        assert_eq!(pool.wires_lent(pool.spare_wire.lock().len()), 0);
        assert!(!pool.release_unused(), "all were used since the last look");
        read_bodies_at_once(&pool, 1, 10);
        assert!(pool.release_unused());
        assert_eq!(pool.idle_bytes(), 10);
    }

    #[tokio::test]
    async fn a_set_gives_back_what_its_last_requests_did_not_need() {
        let pool = ScratchPool::new(1);
        request(&pool, 4 << 20).await;
        let big = pool.idle_bytes();
        assert!(big > 8 << 20, "{big}");
        // Small requests in the big one's window: it keeps its memory until the trim.
        for _ in 1..TRIM_EVERY - 1 {
            request(&pool, 10_000).await;
            assert_eq!(pool.idle_bytes(), big);
        }
        request(&pool, 10_000).await;
        // That trim's window held the big request, so nothing was given back yet.
        assert!(pool.idle_bytes() > 8 << 20);
        for _ in 0..TRIM_EVERY {
            request(&pool, 10_000).await;
        }
        let small = pool.idle_bytes();
        assert!(small < 1 << 20, "kept {small} bytes for 10 kB requests");
        assert_eq!(pool.sets_created(), 1);
        // Requests of one size do not reallocate at each trim.
        let wire = pool.wire();
        let ptr = wire.bytes.as_ptr();
        pool.return_wire(wire);
        for _ in 0..3 * TRIM_EVERY {
            request(&pool, 10_000).await;
        }
        assert_eq!(pool.idle_bytes(), small);
        assert_eq!(pool.wire().bytes.as_ptr(), ptr);
    }

    #[tokio::test]
    async fn a_set_past_the_hard_cap_is_dropped_at_once() {
        let pool = ScratchPool::new(2);
        let mut lent = pool.checkout().await.expect("pool open");
        lent.set.body.reserve(MAX_SET_BYTES + 1);
        pool.checkin(lent, WireBuf::default());
        assert_eq!(pool.idle_sets(), 0);
        request(&pool, 1000).await;
        assert_eq!(pool.idle_sets(), 1);
    }

    #[tokio::test]
    async fn memory_unused_between_two_looks_is_released() {
        let pool = ScratchPool::new(2);
        // A burst needs both sets.
        let a = pool.checkout().await.expect("pool open");
        let b = pool.checkout().await.expect("pool open");
        pool.checkin(a, pool.wire());
        pool.checkin(b, pool.wire());
        assert_eq!(pool.idle_sets(), 2);
        // Used since the last look: kept.
        assert!(!pool.release_unused());
        assert_eq!(pool.idle_sets(), 2);
        // Steady traffic needs one; the other is given back at the next look.
        request(&pool, 1000).await;
        request(&pool, 1000).await;
        assert!(pool.release_unused());
        assert_eq!(pool.idle_sets(), 1);
        // No traffic: all of it.
        assert!(pool.release_unused());
        assert_eq!((pool.idle_sets(), pool.idle_bytes()), (0, 0));
        assert!(!pool.release_unused());
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
