//! Decode throughput of eddy's push formats on Flink-shaped requests: InfluxDB line protocol,
//! OTLP/HTTP protobuf and remote_write (snappy + protobuf), one TaskManager report per request.
//! Run with: cargo run --release -p eddy-benches --bin ingest_decode [-- --tms 4 --secs 2
//! --real /work/shared/flink/sample-influx.lp]
//!
//! Requests come from the `flinkgen` workload (benches/src/flink.rs): one TM scrape (2,188
//! series with 4 slots) becomes one Influx body (a line per series, `value=` field, ns
//! timestamps, as Flink's InfluxdbReporter sends), one OTLP request (a `Metric` per series,
//! dotted names, counters as DELTA sums, as Flink's OpenTelemetry reporter sends) and one
//! remote_write request. `--real FILE` adds a real InfluxdbReporter body.
//!
//! Plain timing loops on the thread's CPU time (the machine is shared): each case decodes its
//! requests in turn, each into a new batch (a batch borrows its request, as in the server)
//! made with enough capacity up front, and a counting global allocator reports heap
//! allocations per request (4 of them are the batch's own vectors). Rates are samples per
//! CPU-second of one core.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use eddy_benches::alloc_count::{allocations, CountingAlloc};
use eddy_benches::args::Args;
use eddy_benches::flink::{Config, Scrape, Workload};
use eddy_ingest::influx::{self, InfluxOptions, InfluxScratch};
use eddy_ingest::otlp::encode::{
    AnyValue, Data, Metric, NumberPoint, Request, ResourceMetrics, ScopeMetrics, Temporality,
};
use eddy_ingest::otlp::{self, DeltaAccumulator, OtlpOptions, OtlpScratch, FLINK_SCOPE};
use eddy_ingest::remote_write;
use eddy_storage::WriteBatch;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// CPU time of this thread (ns), from `/proc/thread-self/schedstat`; wall time elsewhere.
fn cpu_ns(wall: Instant) -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos() as u64)
}

/// Runs `round` (one pass over a case's requests, returning its sample count) until `secs` of
/// CPU time have passed; returns (samples per CPU-second, allocations per request).
fn measure(secs: f64, requests: usize, mut round: impl FnMut() -> u64) -> (f64, f64) {
    round(); // warm-up: buffers reach their steady size
    let wall = Instant::now();
    let (cpu0, allocs0) = (cpu_ns(wall), allocations());
    let (mut samples, mut rounds) = (0u64, 0u64);
    loop {
        samples += round();
        rounds += 1;
        let spent = (cpu_ns(wall) - cpu0) as f64 / 1e9;
        if spent >= secs {
            let allocs = (allocations() - allocs0) as f64;
            return (
                samples as f64 / spent,
                allocs / (rounds * requests as u64) as f64,
            );
        }
    }
}

/// One TM scrape as line protocol: measurement = Prometheus name without `flink_`, labels as
/// tags, one `value` field (integers with `i`), ns timestamps.
fn influx_body(s: &Scrape) -> String {
    let mut out = String::new();
    for i in 0..s.len() {
        let mut labels = s.labels(i);
        let name = labels.next().map_or("", |(_, v)| v);
        out.push_str(name.strip_prefix("flink_").unwrap_or(name));
        for (k, v) in labels {
            let _ = write!(out, ",{k}={}", v.replace(' ', "\\ "));
        }
        let v = s.value(i);
        if v.fract() == 0.0 && v.abs() < 9e15 {
            let _ = writeln!(out, " value={}i {}", v as i64, s.ts * 1_000_000);
        } else {
            let _ = writeln!(out, " value={v:?} {}", s.ts * 1_000_000);
        }
    }
    out
}

/// Flink counters (`numRecordsIn`, `numBytesOut`…; not the `PerSecond` meters) go out as DELTA
/// sums; the rest as gauges.
fn is_counter(prom_name: &str) -> bool {
    let last = prom_name.rsplit('_').next().unwrap_or("");
    last.starts_with("num") && !last.ends_with("PerSecond")
}

/// One TM scrape as Flink's OpenTelemetry reporter sends it: a `Metric` per series, dotted
/// names, string attributes. `prev` holds the previous scrape's values (for the deltas).
fn otlp_body(s: &Scrape, prev: &[f64]) -> Vec<u8> {
    let time_ns = s.ts as u64 * 1_000_000;
    let metrics = (0..s.len())
        .map(|i| {
            let mut labels = s.labels(i);
            let name = labels.next().map_or("", |(_, v)| v);
            let attributes = labels
                .map(|(k, v)| (k.to_string(), AnyValue::Str(v.to_string())))
                .collect();
            let v = s.value(i);
            let point = |double| NumberPoint {
                attributes,
                start_ns: time_ns - 15_000_000_000,
                time_ns,
                int: None,
                double,
                flags: 0,
            };
            let data = if is_counter(name) {
                let delta = (v - prev.get(i).copied().unwrap_or(0.0)).max(0.0);
                Data::Sum {
                    points: vec![point(delta)],
                    temporality: Temporality::Delta,
                    monotonic: true,
                }
            } else {
                Data::Gauge(vec![point(v)])
            };
            Metric {
                name: name.replacen("flink_", "flink.", 1).replace('_', "."),
                unit: String::new(),
                data,
            }
        })
        .collect();
    Request {
        resource_metrics: vec![ResourceMetrics {
            resource: eddy_ingest::otlp::encode::attrs(&[("service.name", "unknown_service:java")]),
            scope_metrics: vec![ScopeMetrics {
                name: FLINK_SCOPE.into(),
                version: String::new(),
                metrics,
            }],
        }],
    }
    .encode()
}

/// Requests of every format for `rounds` scrape rounds of `tms` TaskManagers.
struct Inputs {
    influx: Vec<String>,
    otlp: Vec<Vec<u8>>,
    remote_write: Vec<Vec<u8>>,
    samples_per_round: usize,
}

fn inputs(tms: usize, rounds: usize) -> anyhow::Result<Inputs> {
    let cfg = Config {
        tms,
        hours: rounds as f64 * 15.0 / 3600.0,
        ..Default::default()
    };
    let mut wl = Workload::new(cfg);
    let mut s = Scrape::default();
    let mut prev: Vec<Vec<f64>> = vec![Vec::new(); tms];
    let mut out = Inputs {
        influx: Vec::new(),
        otlp: Vec::new(),
        remote_write: Vec::new(),
        samples_per_round: 0,
    };
    while wl.next_scrape(&mut s) {
        out.influx.push(influx_body(&s));
        out.otlp.push(otlp_body(&s, &prev[s.tm]));
        prev[s.tm] = (0..s.len()).map(|i| s.value(i)).collect();
        let mut pb = Vec::new();
        s.encode_remote_write(&mut pb);
        let mut snappy = Vec::new();
        remote_write::compress_snappy(&pb, &mut snappy).context("snappy")?;
        out.remote_write.push(snappy);
        if out.influx.len() <= tms {
            out.samples_per_round += s.len();
        }
    }
    Ok(out)
}

/// A batch that holds a TM report without growing: 4 allocations.
fn batch<'a>() -> WriteBatch<'a> {
    WriteBatch {
        labels: Vec::with_capacity(1 << 16),
        series: Vec::with_capacity(1 << 12),
        timestamps: Vec::with_capacity(1 << 12),
        values: Vec::with_capacity(1 << 12),
    }
}

fn report(name: &str, requests: &[usize], (rate, allocs): (f64, f64), samples: usize) {
    let bytes: usize = requests.iter().sum();
    println!(
        "{name:<28} {:>8.2} M samples/s  {:>7.1} allocs/request  {:>6.1} B/sample",
        rate / 1e6,
        allocs,
        bytes as f64 / samples as f64
    );
}

fn main() -> anyhow::Result<()> {
    let a = Args::from_env()?;
    let tms: usize = a.num("tms", 4)?;
    let rounds: usize = a.num("rounds", 4)?;
    let secs: f64 = a.num("secs", 2.0)?;
    // `--only influx|otlp|remote_write` runs one case (for `perf record`).
    let only = a.get("only");
    let want = |case: &str| only.is_none_or(|o| o == case);
    let inp = inputs(tms, rounds)?;
    let n_req = inp.influx.len();
    let samples = inp.samples_per_round * rounds;
    println!(
        "{n_req} requests ({tms} TMs x {rounds} rounds), {} samples each on average; {secs} CPU-s per case",
        samples / n_req
    );

    let opts = InfluxOptions {
        extra_labels: vec![("db".into(), "flink".into())],
        ..Default::default()
    };
    let mut scratch = InfluxScratch::new();
    if want("influx") {
        influx_case(secs, &inp, &opts, &mut scratch, samples);
    }
    if let Some(path) = a.get("real").filter(|_| want("influx")) {
        let body = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
        let mut n = 0;
        let r = measure(secs, 1, || {
            let mut batch = batch();
            n = influx::parse_lines(black_box(&body), &opts, &mut scratch, &mut batch)
                .map(|s| s.samples)
                .unwrap_or(0);
            n
        });
        report("influx (real Flink body)", &[body.len()], r, n as usize);
    }

    if want("otlp") {
        otlp_case(secs, &inp, samples);
    }
    if want("remote_write") {
        remote_write_case(secs, &inp, samples);
    }
    Ok(())
}

fn influx_case(
    secs: f64,
    inp: &Inputs,
    opts: &InfluxOptions,
    scratch: &mut InfluxScratch,
    samples: usize,
) {
    let r = measure(secs, inp.influx.len(), || {
        let mut n = 0;
        for body in &inp.influx {
            let mut batch = batch();
            n += influx::parse_lines(black_box(body), opts, scratch, &mut batch)
                .map(|s| s.samples)
                .unwrap_or(0);
        }
        n
    });
    let sizes: Vec<usize> = inp.influx.iter().map(String::len).collect();
    report("influx (flinkgen)", &sizes, r, samples);
}

fn otlp_case(secs: f64, inp: &Inputs, samples: usize) {
    let n_req = inp.otlp.len();
    let o = OtlpOptions::default();
    let mut acc = DeltaAccumulator::default();
    let mut scratch = OtlpScratch::new();
    let r = measure(secs, n_req, || {
        // A fresh accumulator per pass: the same requests replayed would be out of order.
        acc = DeltaAccumulator::default();
        let mut n = 0;
        for body in &inp.otlp {
            let mut batch = batch();
            n += otlp::decode_metrics_request(
                black_box(body),
                &o,
                &mut acc,
                &mut scratch,
                &mut batch,
            )
            .map(|s| s.samples)
            .unwrap_or(0);
        }
        n
    });
    let sizes: Vec<usize> = inp.otlp.iter().map(Vec::len).collect();
    report("otlp (flinkgen, deltas)", &sizes, r, samples);
}

fn remote_write_case(secs: f64, inp: &Inputs, samples: usize) {
    let n_req = inp.remote_write.len();
    let mut raw = Vec::new();
    let r = measure(secs, n_req, || {
        let mut n = 0;
        for body in &inp.remote_write {
            raw.clear();
            if remote_write::decompress_snappy(black_box(body), &mut raw, 64 << 20).is_err() {
                continue;
            }
            let (mut batch, mut meta) = (batch(), Vec::new());
            n += remote_write::decode_write_request(&raw, &mut batch, &mut meta)
                .map(|s| s.samples as u64)
                .unwrap_or(0);
        }
        n
    });
    let sizes: Vec<usize> = inp.remote_write.iter().map(Vec::len).collect();
    report("remote_write (snappy+pb)", &sizes, r, samples);
}
