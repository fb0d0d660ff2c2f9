//! Decode throughput of a Flink-shaped remote_write request: 2,000 series × 1 sample, each with
//! `__name__` plus the 11 labels of a Flink operator metric (as in FLINK.md §2.1).
//! Run with:
//! `cargo test --release -p eddy-ingest --test remote_write_perf -- --ignored --nocapture`

#![allow(clippy::type_complexity)] // test tables spell their shapes out

use std::hint::black_box;
use std::time::{Duration, Instant};

use eddy_ingest::remote_write::{
    compress_snappy, decode_write_request, decompress_snappy, encode_write_request,
};
use eddy_storage::WriteBatch;

const SERIES: usize = 2_000;

/// Fixed, Flink-shaped label sets: 50 metric names × 40 subtasks.
fn flink_request() -> Vec<u8> {
    let metrics = [
        "numRecordsIn",
        "numRecordsOut",
        "numRecordsInPerSecond",
        "numRecordsOutPerSecond",
        "numBytesIn",
        "currentInputWatermark",
        "currentOutputWatermark",
        "busyTimeMsPerSecond",
        "idleTimeMsPerSecond",
        "backPressuredTimeMsPerSecond",
    ];
    let mut owned: Vec<Vec<(String, String)>> = Vec::with_capacity(SERIES);
    for i in 0..SERIES {
        let subtask = i % 40;
        let name = format!(
            "flink_taskmanager_job_task_operator_{}_{}",
            metrics[i % metrics.len()],
            i / 400
        );
        owned.push(vec![
            ("__name__".into(), name),
            ("job_id".into(), "7558b34cd0bfc2a45af2943e88730acd".into()),
            ("task_id".into(), "cbc357ccb763df2852fee8c4fc7d55f2".into()),
            (
                "task_attempt_id".into(),
                format!(
                    "bb821fc08b42bdf0f3909aa05fd5813a_cbc357ccb763df2852fee8c4fc7d55f2_{subtask}_0"
                ),
            ),
            ("host".into(), "localhost".into()),
            (
                "operator_id".into(),
                "7eaffe7b7605b5bda43bc45518bb2879".into(),
            ),
            ("operator_name".into(), "double_map".into()),
            (
                "task_name".into(),
                "Source:_datagen_source____double_map".into(),
            ),
            ("task_attempt_num".into(), "0".into()),
            ("job_name".into(), "metrics_probe_job".into()),
            ("tm_id".into(), "localhost:38283_419116".into()),
            ("subtask_index".into(), subtask.to_string()),
        ]);
    }
    let series: Vec<(&[(String, String)], [(i64, f64); 1])> = owned
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_slice(), [(1_795_617_769_014, i as f64 * 1.5)]))
        .collect();
    let mut body = Vec::new();
    encode_write_request(&series, &mut body);
    body
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (ns). The machine is shared,
/// so wall time overstates the cost; CPU time is what a dedicated core would spend.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` repeatedly for about `budget` of wall time; returns the mean wall time and mean
/// CPU time (if known) per call.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> (Duration, Option<Duration>) {
    f();
    let start = Instant::now();
    let cpu0 = thread_cpu_ns();
    let mut n = 0u32;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    let wall = start.elapsed() / n;
    let cpu = thread_cpu_ns()
        .zip(cpu0)
        .map(|(b, a)| Duration::from_nanos((b - a) / u64::from(n)));
    (wall, cpu)
}

#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn flink_shaped_decode_throughput() {
    let body = flink_request();
    let mut compressed = Vec::new();
    compress_snappy(&body, &mut compressed).expect("compress");
    println!(
        "request: {SERIES} series x 1 sample, 12 labels each; {} B protobuf ({} B/sample), {} B snappy",
        body.len(),
        body.len() / SERIES,
        compressed.len()
    );

    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    let decode = time_per_call(Duration::from_secs(2), || {
        batch.clear();
        meta.clear();
        let stats = decode_write_request(black_box(&body), &mut batch, &mut meta).expect("decode");
        assert_eq!(stats.samples, SERIES);
    });
    drop(batch);

    let mut buf = Vec::with_capacity(body.len());
    let snappy = time_per_call(Duration::from_secs(2), || {
        buf.clear();
        decompress_snappy(black_box(&compressed), &mut buf, 64 << 20).expect("decompress");
    });

    let both = time_per_call(Duration::from_secs(2), || {
        buf.clear();
        decompress_snappy(black_box(&compressed), &mut buf, 64 << 20).expect("decompress");
        // The batch borrows `buf`, so it lives for one request: sized once per batch.
        let mut b = batch_with_capacity(SERIES, SERIES * 12);
        let mut m = Vec::new();
        let stats = decode_write_request(&buf, &mut b, &mut m).expect("decode");
        assert_eq!(stats.samples, SERIES);
    });
    let rate = |d: Duration| SERIES as f64 / d.as_secs_f64() / 1e6;
    let show = |what: &str, (wall, cpu): (Duration, Option<Duration>)| {
        let cpu = cpu.map_or("cpu n/a".to_string(), |c| {
            format!("cpu {c:>8.1?} = {:>6.2} M samples/s/core", rate(c))
        });
        println!(
            "{what:<18} wall {wall:>8.1?} per request ({:>6.2} M samples/s); {cpu}",
            rate(wall)
        );
    };
    show("protobuf decode:", decode);
    show("snappy decompress:", snappy);
    show("snappy + decode:", both);
}

fn batch_with_capacity<'a>(series: usize, labels: usize) -> WriteBatch<'a> {
    let mut b = WriteBatch::new();
    b.labels.reserve(labels);
    b.series.reserve(series);
    b.timestamps.reserve(series);
    b.values.reserve(series);
    b
}
