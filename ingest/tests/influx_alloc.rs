//! Allocation discipline and throughput of the line protocol decoder. A counting allocator
//! checks that a body costs one allocation per sample (its metric name) and no more; the
//! ignored `throughput` test prints speed (run with `--release -- --ignored --nocapture`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use eddy_ingest::influx::{parse_lines, FlinkNames, InfluxOptions};
use eddy_storage::WriteBatch;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the measuring thread counts: the test harness allocates on its own threads.
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNT_HERE.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Allocations made by `f` on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNT_HERE.with(|c| c.set(true));
    let out = f();
    COUNT_HERE.with(|c| c.set(false));
    (out, ALLOCS.load(Ordering::Relaxed) - before)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn flink_body(lines: usize) -> String {
    let mut body = String::new();
    for i in 0..lines {
        body.push_str(&format!(
            "taskmanager_job_task_operator_numRecordsIn,host=localhost,job_id=7558b34cd0bfc2a45af2943e88730acd,\
             operator_name=double-map,subtask_index={i},tm_id=localhost:38283-419116 count={i}i 1795617818784000000\n\
             taskmanager_job_task_operator_numRecordsInPerSecond,host=localhost,subtask_index={i} count={i}i,rate=1000.5 1795617818784000000\n"
        ));
    }
    body
}

#[test]
fn one_allocation_per_sample() {
    let body = flink_body(500);
    for flink in [FlinkNames::Auto, FlinkNames::Off] {
        let o = InfluxOptions {
            flink_names: flink,
            extra_labels: vec![("db".into(), "flink".into())],
            ..Default::default()
        };
        let mut batch = WriteBatch::new();
        batch.labels.reserve(20_000);
        batch.series.reserve(2_000);
        batch.timestamps.reserve(2_000);
        batch.values.reserve(2_000);
        let (stats, allocs) = allocations(|| parse_lines(&body, &o, &mut batch).unwrap());
        assert_eq!(stats.samples, 1500);
        // One metric name per sample, plus the scanner's scratch vectors growing once.
        eprintln!(
            "{flink:?}: {allocs} allocations for {} samples",
            stats.samples
        );
        assert!(
            allocs <= stats.samples + 8,
            "{flink:?}: {allocs} allocations for {} samples",
            stats.samples
        );
    }
}

#[test]
#[ignore]
fn throughput() {
    let body = flink_body(20_000);
    let o = InfluxOptions {
        extra_labels: vec![("db".into(), "flink".into())],
        ..Default::default()
    };
    let mut batch = WriteBatch::new();
    let rounds = 20;
    let start = Instant::now();
    let cpu0 = cpu_secs(start);
    let mut samples = 0;
    for _ in 0..rounds {
        batch.clear();
        samples += parse_lines(&body, &o, &mut batch).unwrap().samples;
    }
    let secs = cpu_secs(start) - cpu0;
    println!(
        "influx: {:.1} MB/s, {:.2} M samples/s per CPU-second ({} bytes/body)",
        (body.len() * rounds) as f64 / secs / 1e6,
        samples as f64 / secs / 1e6,
        body.len()
    );
}

/// CPU time of this thread in seconds (Linux), so that the numbers mean something on a
/// loaded machine; wall time elsewhere.
fn cpu_secs(wall: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or_else(|| wall.elapsed().as_secs_f64(), |ns| ns / 1e9)
}
