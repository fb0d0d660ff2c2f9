//! Allocation discipline and throughput of the OTLP decoder on Flink-shaped requests (one
//! Metric per series). Run the ignored `throughput` test with `--release -- --ignored
//! --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use eddy_ingest::otlp::encode::{
    attrs, Data, Metric, NumberPoint, Request, ResourceMetrics, ScopeMetrics, Temporality,
};
use eddy_ingest::otlp::{decode_metrics_request, DeltaAccumulator, OtlpOptions};
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

fn flink_request(series: usize, delta: bool, time_ns: u64) -> Vec<u8> {
    let metrics = (0..series)
        .map(|i| {
            let idx = (i % 4).to_string();
            let p = NumberPoint {
                attributes: attrs(&[
                    ("host", "localhost"),
                    ("job_id", "7558b34cd0bfc2a45af2943e88730acd"),
                    ("operator_name", "double-map"),
                    ("subtask_index", &idx),
                    ("tm_id", "localhost:38283-419116"),
                ]),
                start_ns: time_ns - 15_000_000_000,
                time_ns,
                int: Some(i as i64),
                ..Default::default()
            };
            let name = format!("flink.taskmanager.job.task.operator.metric{}", i / 4);
            let data = if delta {
                Data::Sum {
                    points: vec![p],
                    temporality: Temporality::Delta,
                    monotonic: true,
                }
            } else {
                Data::Gauge(vec![p])
            };
            Metric {
                name,
                unit: String::new(),
                data,
            }
        })
        .collect();
    Request {
        resource_metrics: vec![ResourceMetrics {
            resource: attrs(&[("service.name", "unknown_service:java")]),
            scope_metrics: vec![ScopeMetrics {
                name: "io.confluent.flink.common.metrics".into(),
                version: String::new(),
                metrics,
            }],
        }],
    }
    .encode()
}

#[test]
fn gauges_cost_one_allocation_per_sample() {
    let body = flink_request(400, false, 1_795_617_818_784_000_000);
    let o = OtlpOptions::default();
    let mut acc = DeltaAccumulator::default();
    let mut batch = WriteBatch::new();
    batch.labels.reserve(10_000);
    batch.series.reserve(1_000);
    batch.timestamps.reserve(1_000);
    batch.values.reserve(1_000);
    let (stats, allocs) =
        allocations(|| decode_metrics_request(&body, &o, &mut acc, &mut batch).unwrap());
    assert_eq!(stats.samples, 400);
    // Flink names contain dots, so each is rebuilt once (one String per metric = per sample
    // here); attribute labels are borrowed; the decoder's scratch vectors grow a few times.
    eprintln!("{allocs} allocations for {} samples", stats.samples);
    assert!(
        allocs <= stats.samples + 12,
        "{allocs} allocations for {} samples",
        stats.samples
    );
}

#[test]
#[ignore]
fn throughput() {
    let o = OtlpOptions::default();
    for delta in [false, true] {
        let mut acc = DeltaAccumulator::default();
        let mut batch = WriteBatch::new();
        let rounds = 50u64;
        let bodies: Vec<Vec<u8>> = (0..rounds)
            .map(|r| {
                flink_request(
                    10_000,
                    delta,
                    1_795_617_818_784_000_000 + r * 15_000_000_000,
                )
            })
            .collect();
        let start = Instant::now();
        let cpu0 = cpu_secs(start);
        let mut samples = 0;
        for body in &bodies {
            batch.clear();
            samples += decode_metrics_request(body, &o, &mut acc, &mut batch)
                .unwrap()
                .samples;
        }
        let secs = cpu_secs(start) - cpu0;
        let bytes: usize = bodies.iter().map(Vec::len).sum();
        println!(
            "otlp ({}): {:.1} MB/s, {:.2} M samples/s per CPU-second ({} bytes/request of 10k series)",
            if delta { "delta sums" } else { "gauges" },
            bytes as f64 / secs / 1e6,
            samples as f64 / secs / 1e6,
            bodies[0].len()
        );
    }
}

/// CPU time of this thread in seconds (Linux), so that the numbers mean something on a
/// loaded machine; wall time elsewhere.
fn cpu_secs(wall: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or_else(|| wall.elapsed().as_secs_f64(), |ns| ns / 1e9)
}
