//! Allocation discipline of the line protocol decoder: a body costs a few allocations however
//! many samples it holds (metric names and unescaped tags go into the reused scratch), checked
//! at two sizes so that a per-sample allocation cannot hide. Throughput is measured by
//! `cargo run --release -p eddy-benches --bin ingest_decode` (docs/benchmarks.md).

#[path = "common/alloc_count.rs"]
mod alloc_count;

use alloc_count::{allocations, roomy_batch};
use eddy_ingest::influx::{parse_lines, FlinkNames, InfluxOptions, InfluxScratch};

/// A TaskManager report as Flink's InfluxdbReporter sends it: operator counters, meters
/// (`count` + `rate`) and histograms, with escaped task and operator names; `lines` lines.
fn flink_body(lines: usize) -> String {
    let tags = "host=localhost,job_id=7558b34cd0bfc2a45af2943e88730acd,job_name=metrics-probe-job,\
                operator_name=Source:\\ datagen-source,task_name=Source:\\ datagen-source\\ ->\\ double-map,\
                tm_id=localhost:38283-419116";
    let mut body = String::new();
    for i in 0..lines {
        let sub = i % 64;
        let line = match i % 4 {
            0 => format!("taskmanager_job_task_operator_numRecordsIn,{tags},subtask_index={sub} count={i}i"),
            1 => format!("taskmanager_job_task_operator_numRecordsInPerSecond,{tags},subtask_index={sub} count={i}i,rate=1000.5"),
            2 => format!("taskmanager_job_task_mailboxLatencyMs,{tags},subtask_index={sub} count=60i,max=1i,mean=0.06,min=0i,p50=0.0,p75=0.0,p95=1.0,p98=1.0,p99=1.0,p999=1.0,stddev=0.25"),
            _ => format!("cpu.load,host=h{sub},region=eu\\ west usage-idle={i}.5,usage-user=1i"),
        };
        body.push_str(&line);
        body.push_str(" 1795617818784000000\n");
    }
    body
}

/// Allocations of decoding `body` with a fresh scratch and with one already used once.
fn cold_and_warm(body: &str, o: &InfluxOptions) -> (u64, u64, u64) {
    let lines = body.lines().count();
    let mut scratch = InfluxScratch::new();
    let mut batch = roomy_batch(lines * 11);
    let (stats, cold) =
        allocations(|| parse_lines(body, o, &mut scratch, &mut batch).expect("decode"));
    assert_eq!(stats.bad_lines, 0);
    drop(batch);
    let mut batch = roomy_batch(lines * 11);
    let (again, warm) =
        allocations(|| parse_lines(body, o, &mut scratch, &mut batch).expect("decode"));
    assert_eq!(again.samples, stats.samples);
    (stats.samples, cold, warm)
}

#[test]
fn allocations_do_not_grow_with_samples() {
    let small = flink_body(800);
    let large = flink_body(8_000);
    for flink in [FlinkNames::Auto, FlinkNames::Off] {
        for prom_names in [false, true] {
            let o = InfluxOptions {
                flink_names: flink,
                flink_sanitize_tag_values: true,
                prom_names,
                extra_labels: vec![("db".into(), "flink".into())],
                ..Default::default()
            };
            let (n_small, cold_small, warm_small) = cold_and_warm(&small, &o);
            let (n_large, cold_large, warm_large) = cold_and_warm(&large, &o);
            let case = format!("{flink:?}, prom_names {prom_names}");
            assert_eq!(n_large, 10 * n_small, "{case}");
            assert!(n_large > 10_000, "{case}: {n_large} samples");
            eprintln!(
                "{case}: cold {cold_small} / {cold_large}, warm {warm_small} / {warm_large} \
                 allocations for {n_small} / {n_large} samples"
            );
            // Warm: the scanner's two tag/field vectors and the extra-label flags, nothing
            // that depends on the body's size.
            assert!(
                warm_small <= 4 && warm_large <= 4,
                "{case}: warm {warm_small} / {warm_large}"
            );
            assert_eq!(warm_small, warm_large, "{case}");
            // Cold: the scratch grows to size (a doubling vector: a log of the sample count).
            assert!(
                cold_large <= 48,
                "{case}: cold {cold_large} for {n_large} samples"
            );
            assert!(
                cold_large <= cold_small + 16,
                "{case}: cold {cold_small} / {cold_large}"
            );
        }
    }
}
