//! PromQL evaluation speed: samples scanned per second for `rate`, `sum by`,
//! `max_over_time` and `quantile_over_time` over N series × H hours of Flink-shaped counters and
//! gauges, read from compacted blocks.
//!
//! Run with: cargo run --release -p eddy-benches --bin query_bench -- [--series 100000] [--hours 6]
//! `--dir PATH` keeps the loaded database in PATH and reuses it on the next run with the same
//! shape (loading dominates the run time); `--repeat N` runs each query N times and reports the
//! fastest; `--span-hours H --step-s S` query only the last H hours with step S (dashboard
//! shape: `--span-hours 1 --step-s 15`); `--no-flush` leaves the last hours in the head (as a running server holds them)
//! instead of flushing everything into blocks; `--threads N` limits the threads a query uses (default: one per core).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use eddy_query::engine::{Engine, EngineOptions};
use eddy_storage::{Db, DbOptions, WriteBatch};

fn arg(name: &str, default: i64) -> i64 {
    str_arg(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn str_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Writes `series` Flink-shaped series over `[start, end)` at `interval_ms` through
/// `Db::append`, cutting blocks every hour; returns the samples stored.
fn load(
    db: &Db,
    series: usize,
    start: i64,
    end: i64,
    interval_ms: i64,
    flush: bool,
) -> anyhow::Result<u64> {
    let names: Vec<(String, String)> = (0..series)
        .map(|i| (format!("tm-{}", i / 2000), format!("{}", i % 2000)))
        .collect();
    let mut total = 0u64;
    let mut state: Vec<f64> = (0..series).map(|i| (i % 1000) as f64).collect();
    let mut t = start;
    while t < end {
        let mut b = WriteBatch::new();
        for (i, (tm, sub)) in names.iter().enumerate() {
            // Counters with per-series rates; every 97th series is a noisy gauge instead.
            let v = if i % 97 == 0 {
                ((t / 1000 + i as i64) % 1000) as f64 * 0.5
            } else {
                state[i] += ((i % 16) + 1) as f64 * 10.0;
                state[i]
            };
            b.add_series(
                [
                    (
                        "__name__",
                        "flink_taskmanager_job_task_operator_numRecordsIn",
                    ),
                    ("tm_id", tm.as_str()),
                    ("subtask_index", sub.as_str()),
                ],
                &[(t, v)],
            );
        }
        total += db.append(&mut b)?.accepted;
        t += interval_ms;
        if (t - start) % 3_600_000 == 0 {
            db.maintain()?;
        }
    }
    if flush {
        db.flush()?;
    }
    Ok(total)
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` (Linux, 10 ms ticks); `None` elsewhere. On a shared machine wall time
/// depends on the load, CPU time much less.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() -> anyhow::Result<()> {
    let series = arg("--series", 100_000) as usize;
    let hours = arg("--hours", 6);
    let interval_ms = arg("--interval-s", 10) * 1000;
    let repeat = arg("--repeat", 1).max(1);
    let only = str_arg("--query");
    let flush = !std::env::args().any(|a| a == "--no-flush");
    // The queried span (the last `--span-hours`) and step; by default the whole data set with
    // 5 m steps, so every stored sample is scanned once by the 5 m windows.
    let span_hours = arg("--span-hours", hours).clamp(1, hours);
    let step_ms = arg("--step-s", 300).max(1) * 1000;
    let start = 1_764_000_000_000i64 / 3_600_000 * 3_600_000;
    let end = start + hours * 3_600_000;
    let tmp = tempfile::tempdir()?;
    let dir: PathBuf = match str_arg("--dir") {
        Some(d) => Path::new(&d).join(format!(
            "s{series}-h{hours}-i{interval_ms}{}",
            if flush { "" } else { "-head" }
        )),
        None => tmp.path().to_path_buf(),
    };
    let done_marker = dir.join("query_bench.loaded");
    let db = Db::open(&dir, DbOptions::default())?;
    let began = Instant::now();
    let total = if let Ok(s) = std::fs::read_to_string(&done_marker) {
        s.trim().parse()?
    } else {
        let total = load(&db, series, start, end, interval_ms, flush)?;
        std::fs::write(&done_marker, total.to_string())?;
        total
    };
    eprintln!(
        "{total} samples of {series} series ready in {:.1} s; {} blocks",
        began.elapsed().as_secs_f64(),
        db.blocks().len()
    );
    let engine = Engine::new(EngineOptions {
        max_samples: usize::MAX / 2,
        threads: arg("--threads", 0) as usize,
        ..Default::default()
    });
    let cancel = AtomicBool::new(false);
    // Samples inside the queried span (the windows reach 5 m further back).
    let total = total * span_hours as u64 / hours as u64;
    let queries = [
        "rate(flink_taskmanager_job_task_operator_numRecordsIn[5m])",
        "sum by (tm_id) (rate(flink_taskmanager_job_task_operator_numRecordsIn[5m]))",
        "max_over_time(flink_taskmanager_job_task_operator_numRecordsIn[5m])",
        "quantile_over_time(0.9, flink_taskmanager_job_task_operator_numRecordsIn[5m])",
    ];
    println!("| query | samples in range | seconds | M samples/s | CPU seconds | M samples/s per CPU second |");
    println!("|---|---|---|---|---|---|");
    for q in queries {
        if only.as_deref().is_some_and(|o| !q.contains(o)) {
            continue;
        }
        let expr = eddy_query::parser::parse(q)?;
        let mut best = f64::INFINITY;
        let cpu0 = cpu_seconds();
        let from = (end - span_hours * 3_600_000).max(start + 300_000);
        for _ in 0..repeat {
            let t0 = Instant::now();
            let r = engine.range(&db, &expr, from, end, step_ms, &cancel)?;
            best = best.min(t0.elapsed().as_secs_f64());
            std::hint::black_box(&r.value);
        }
        let cpu = cpu0
            .zip(cpu_seconds())
            .map(|(a, b)| (b - a) / repeat as f64);
        println!(
            "| `{q}` | {total} | {best:.2} | {:.1} | {} | {} |",
            total as f64 / best / 1e6,
            cpu.map_or("?".into(), |c| format!("{c:.2}")),
            cpu.map_or("?".into(), |c| format!("{:.1}", total as f64 / c / 1e6)),
        );
    }
    Ok(())
}
