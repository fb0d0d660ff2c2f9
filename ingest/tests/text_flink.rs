//! The text parser on a real Flink 2.3.0 scrape (`data/flink-sample-scrape.prom`, a copy of
//! shared/flink/sample-scrape.prom): every line decodes, with exact spot checks.

use std::borrow::Cow;

use eddy_ingest::remote_write::MetricType;
use eddy_ingest::text::{parse_text, TextOptions, TextStats};
use eddy_storage::WriteBatch;

const SCRAPE: &str = include_str!("data/flink-sample-scrape.prom");
const NOW: i64 = 1_795_617_770_000;

fn find(batch: &WriteBatch<'_>, want: &[(&str, &str)]) -> Vec<usize> {
    (0..batch.series.len())
        .filter(|&i| {
            let l = batch.series_labels(i);
            want.iter()
                .all(|(n, v)| l.iter().any(|(ln, lv)| ln == n && lv == v))
        })
        .collect()
}

#[test]
fn every_line_of_the_flink_scrape_decodes() {
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    let opts = TextOptions {
        default_timestamp_ms: NOW,
        openmetrics: false,
    };
    let stats = parse_text(SCRAPE, &opts, &mut batch, &mut meta).unwrap();
    let sample_lines = SCRAPE
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(sample_lines, 249);
    assert_eq!(
        stats,
        TextStats {
            sample_lines: 249,
            series: 249,
            created_skipped: 0,
            exemplars: 0,
            metadata: 119
        }
    );
    assert_eq!(batch.series.len(), 249);
    assert_eq!(batch.sample_count(), 249);
    assert!(
        batch.timestamps.iter().all(|&t| t == NOW),
        "no timestamps in Flink output"
    );

    // Every label is borrowed: Flink filters values to [a-zA-Z0-9:_], so nothing is escaped.
    assert!(batch
        .labels
        .iter()
        .all(|(n, v)| matches!((n, v), (Cow::Borrowed(_), Cow::Borrowed(_)))));

    // Metadata: one entry per family, HELP and TYPE merged; the last HELP has no TYPE.
    assert_eq!(meta.len(), 119);
    assert_eq!(
        meta.iter()
            .filter(|m| m.metric_type == MetricType::Gauge)
            .count(),
        117
    );
    assert_eq!(
        meta.iter()
            .filter(|m| m.metric_type == MetricType::Summary)
            .count(),
        1
    );
    let m = meta
        .iter()
        .find(|m| m.family == "flink_jobmanager_numRegisteredTaskManagers")
        .unwrap();
    assert_eq!(m.help, "numRegisteredTaskManagers (scope: jobmanager)");
    assert_eq!(m.metric_type, MetricType::Gauge);
    let last = meta.last().unwrap();
    assert_eq!(
        last.family,
        "flink_taskmanager_job_task_Shuffle_Netty_Input_Buffers_inputQueueLength"
    );
    assert_eq!(last.metric_type, MetricType::Unknown);

    // Spot checks.
    let i = find(
        &batch,
        &[("__name__", "flink_jobmanager_numRegisteredTaskManagers")],
    );
    assert_eq!(i.len(), 1);
    assert_eq!(batch.series_labels(i[0]).len(), 2);
    assert_eq!(batch.series_samples(i[0]).1, &[1.0]);

    let i = find(
        &batch,
        &[
            (
                "__name__",
                "flink_taskmanager_job_task_operator_split_watermark_currentWatermark",
            ),
            ("split", "1"),
        ],
    );
    assert_eq!(i.len(), 1);
    assert_eq!(batch.series_samples(i[0]).1, &[-9.223372036854776E18]);
    let labels = batch.series_labels(i[0]);
    assert_eq!(labels.len(), 13, "__name__ + split + 11 operator variables");
    assert_eq!(
        labels[1],
        (Cow::Borrowed("split"), Cow::Borrowed("1")),
        "label order kept as written"
    );
    assert!(labels.contains(&(
        Cow::Borrowed("task_name"),
        Cow::Borrowed("Source:_datagen_source____double_map")
    )));

    let i = find(
        &batch,
        &[(
            "__name__",
            "flink_jobmanager_job_lastCheckpointRestoreTimestamp",
        )],
    );
    assert_eq!(batch.series_samples(i[0]).1, &[1.795617716971E12]);

    let q = find(&batch, &[("quantile", "0.99"), ("subtask_index", "1")]);
    assert!(!q.is_empty());
    let summary = find(
        &batch,
        &[
            (
                "__name__",
                "flink_taskmanager_job_task_operator_valueMod1000",
            ),
            ("subtask_index", "1"),
        ],
    );
    let values: Vec<f64> = summary
        .iter()
        .map(|&i| batch.series_samples(i).1[0])
        .collect();
    assert_eq!(values, vec![749.5, 874.75, 974.95, 989.98, 994.99, 999.0]);
}
