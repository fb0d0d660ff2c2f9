//! Parse throughput of the text exposition on the real Flink scrape (`data/`), repeated to a
//! TaskManager-sized body. Run with:
//! `cargo test --release -p eddy-ingest --test text_perf -- --ignored --nocapture`

use std::hint::black_box;
use std::time::{Duration, Instant};

use eddy_ingest::text::{parse_text, TextOptions};
use eddy_storage::WriteBatch;

const SCRAPE: &str = include_str!("data/flink-sample-scrape.prom");

/// CPU time of this thread in ns (`/proc/thread-self/schedstat`); the machine is shared.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn flink_scrape_parse_throughput() {
    let body = SCRAPE.repeat(8);
    let opts = TextOptions {
        default_timestamp_ms: 1,
        openmetrics: false,
    };
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    let mut samples = 0usize;
    let start = Instant::now();
    let cpu0 = thread_cpu_ns();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(2) {
        batch.clear();
        meta.clear();
        samples = parse_text(black_box(&body), &opts, &mut batch, &mut meta)
            .expect("parse")
            .series;
        n += 1;
    }
    let wall = start.elapsed() / n;
    let cpu = thread_cpu_ns()
        .zip(cpu0)
        .map(|(b, a)| Duration::from_nanos((b - a) / u64::from(n)));
    let rate = |d: Duration| samples as f64 / d.as_secs_f64() / 1e6;
    println!("body: {} B, {samples} samples", body.len());
    println!(
        "wall {wall:.1?} per body ({:.2} M samples/s, {:.0} MB/s)",
        rate(wall),
        body.len() as f64 / wall.as_secs_f64() / 1e6
    );
    if let Some(c) = cpu {
        println!(
            "cpu  {c:.1?} per body ({:.2} M samples/s/core, {:.0} MB/s)",
            rate(c),
            body.len() as f64 / c.as_secs_f64() / 1e6
        );
    }
}
