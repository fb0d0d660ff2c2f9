//! The keyed line protocol decoder (label-run memory) against the plain one: with nothing
//! known it must produce the plain batch exactly; once its misses are remembered, every
//! keyable line must hit, and the hits, given their labels back (from the remembered keys, and
//! by `parse_series_again` from the body), must be the plain batch again. Bodies mix Flink
//! shapes (gauges, meters, histograms, boolean strings, escaped task names), plain
//! measurements, escapes, string fields, repeated lines and bad lines. `PROPTEST_CASES=N` scales the campaign.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;

use eddy_ingest::influx::{
    parse_body, parse_body_keyed, parse_series_again, FlinkNames, InfluxOptions, InfluxScratch,
    KeyedLines,
};
use eddy_ingest::key_cache::RunKeyMap;
use eddy_storage::{KeyScratch, SeriesKey, WriteBatch};
use proptest::prelude::*;

type Labels = Vec<(String, String)>;

/// A decoded batch as plain data: per series its labels (as emitted) and its samples.
fn dump(batch: &WriteBatch<'_>) -> Vec<(Labels, Vec<i64>, Vec<u64>)> {
    (0..batch.series.len())
        .map(|i| {
            let labels = batch
                .series_labels(i)
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let (ts, vs) = batch.series_samples(i);
            (
                labels,
                ts.to_vec(),
                vs.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

/// Stats that must not depend on the path: lines, bad lines, samples, skipped strings, and
/// the error messages.
fn summary(stats: &eddy_ingest::influx::InfluxStats) -> (u64, u64, u64, u64, Option<String>) {
    (
        stats.lines,
        stats.bad_lines,
        stats.samples,
        stats.string_fields_skipped,
        stats.error_message(),
    )
}

fn line() -> impl Strategy<Value = String> {
    let flink_gauge = (0..3u8, 0..3u8, -5i64..5).prop_map(|(tm, task, v)| {
        format!("taskmanager_job_task_busyTimeMsPerSecond,host=h{tm},task_name=t{task} value={v}")
    });
    let flink_meter = (0..3u8, 0..100u32).prop_map(|(tm, c)| {
        format!("taskmanager_job_task_numRecordsIn,host=h{tm} count={c}i,rate=0.{c}")
    });
    let flink_histogram = (0..2u8, 0..50u32).prop_map(|(tm, c)| {
        format!(
            "taskmanager_job_latency,host=h{tm} count=500i,min=1,max={c},mean=2.5,p50=2,p99={c}.5,p999=9"
        )
    });
    let flink_bool = (0..2u8, any::<bool>()).prop_map(|(tm, b)| {
        format!("taskmanager_job_task_isBackPressured,host=h{tm} value=\"{b}\"")
    });
    let plain = (0..3u8, 0..3u8, any::<bool>()).prop_map(|(a, b, s)| {
        let extra = if s { ",note=\"hi there\"" } else { "" };
        format!("cpu,host=h{a},db=x{b} usage_user={a}.{b}{extra},up=true")
    });
    let escaped = (0..2u8,).prop_map(|(a,)| format!("disk\\ io,path=/a\\,b{a} used={a}i"));
    // As Flink writes task names; and a backslash before a backslash, and one before a letter
    // (kept literally).
    let flink_escaped = (0..2u8,).prop_map(|(a,)| {
        format!("taskmanager_job_task_busyTimeMsPerSecond,task_name=Source:\\ gen\\ ->\\ map{a},x=a\\\\b\\q value={a}")
    });
    let strings_only = (0..2u8,).prop_map(|(a,)| format!("log,host=h{a} msg=\"x{a}\""));
    let bad = prop_oneof![
        Just("cpu,host value=1".to_string()),
        Just("cpu,host=a,host=b value=1".to_string()),
        Just("cpu,host=a value=".to_string()),
        Just("cpu,host=a value=1,x".to_string()),
        Just(",cpu value=1".to_string()),
        Just("cpu,host=a value=1 12x".to_string()),
        Just("cpu,a=b=c value=1".to_string()),
        Just("cpu,__name__=x value=1".to_string()),
        Just("cpu,host=a\\ b value=x".to_string()),
        Just("cpu,host=a\\".to_string()),
    ];
    // A string field over two lines: later line numbers (of errors) must still be right.
    let multi_line = (0..2u8,).prop_map(|(a,)| format!("note,host=h{a} text=\"two\nlines\",v={a}"));
    let ts = prop_oneof![
        Just(String::new()),
        (1_700_000_000i64..1_700_000_100).prop_map(|t| format!(" {t}")),
        Just(" 99999999999999999".to_string()),
    ];
    (
        prop_oneof![
            3 => flink_gauge,
            2 => flink_meter,
            1 => flink_histogram,
            1 => flink_bool,
            2 => plain,
            1 => escaped,
            1 => flink_escaped,
            1 => strings_only,
            1 => multi_line,
            1 => bad,
        ],
        ts,
    )
        .prop_map(|(l, t)| format!("{l}{t}"))
}

fn options() -> impl Strategy<Value = InfluxOptions> {
    (
        prop_oneof![
            Just(FlinkNames::Off),
            Just(FlinkNames::Auto),
            Just(FlinkNames::On)
        ],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(flink_names, sanitize, prom, db)| InfluxOptions {
            precision: eddy_ingest::influx::Precision::S,
            now_ms: 1_234_567,
            extra_labels: if db {
                vec![("db".to_string(), "flink".to_string())]
            } else {
                Vec::new()
            },
            flink_names,
            flink_sanitize_tag_values: sanitize,
            prom_names: prom,
        })
}

proptest! {
    #[test]
    fn keyed_decoding_is_the_plain_decoding(
        lines in prop::collection::vec(line(), 1..24),
        opts in options(),
    ) {
        let body = lines.join("\n");
        let body = body.as_bytes();

        let mut plain_scratch = InfluxScratch::new();
        let mut plain = WriteBatch::new();
        let plain_stats = parse_body(body, &opts, &mut plain_scratch, &mut plain).unwrap();
        let want = dump(&plain);

        // Nothing known: the plain batch, with every series of a keyable line a miss.
        let mut known = RunKeyMap::default();
        let mut keyed = KeyedLines::default();
        let mut scratch = InfluxScratch::new();
        let mut first = WriteBatch::new();
        let stats = parse_body_keyed(body, &opts, &mut scratch, &mut first, &known, &mut keyed)
            .unwrap();
        prop_assert_eq!(summary(&stats), summary(&plain_stats));
        prop_assert_eq!(&dump(&first), &want);
        prop_assert!(keyed.hits.is_empty());
        // Remember the misses as the server does, and the labels of each key.
        let mut key_scratch = KeyScratch::default();
        let mut labels_of: HashMap<SeriesKey, Labels> = HashMap::new();
        let mut unkeyable = 0;
        for &(i, hash) in &keyed.misses {
            match SeriesKey::of(first.series_labels(i as usize), &mut key_scratch) {
                Ok(key) => {
                    known.insert(hash, key);
                    labels_of.insert(key, want[i as usize].0.clone());
                }
                Err(_) => unkeyable += 1,
            }
        }
        // Points with a string over several lines are left to the full scan, unkeyed.
        let multi_line = want
            .iter()
            .filter(|(l, _, _)| l.iter().any(|(k, v)| k == "__name__" && v.contains("note")))
            .count();
        prop_assert_eq!(keyed.misses.len() + multi_line, want.len());

        // Everything known: keyable lines hit, and their series are the plain ones.
        let mut scratch = InfluxScratch::new();
        let mut second = WriteBatch::new();
        let stats = parse_body_keyed(body, &opts, &mut scratch, &mut second, &known, &mut keyed)
            .unwrap();
        prop_assert_eq!(summary(&stats), summary(&plain_stats));
        prop_assert_eq!(second.series.len(), want.len());
        prop_assert_eq!(keyed.misses.len(), unkeyable);
        prop_assert_eq!(keyed.hits.len() + unkeyable + multi_line, want.len());
        let got = dump(&second);
        for (i, (labels, ts, vs)) in got.iter().enumerate() {
            prop_assert_eq!((ts, vs), (&want[i].1, &want[i].2));
            if let Some(key) = second.series[i].key.filter(|_| labels.is_empty()) {
                prop_assert_eq!(&labels_of[&key], &want[i].0);
            } else {
                prop_assert_eq!(labels, &want[i].0);
            }
        }

        // The hits decoded again from their lines, as after a head cut.
        let which: Vec<u32> = keyed.hits.iter().map(|h| h.0).collect();
        let mut again_scratch = InfluxScratch::new();
        let mut again = WriteBatch::new();
        let complete = parse_series_again(body, &opts, &mut again_scratch, &mut again, &keyed, &which)
            .unwrap();
        prop_assert!(complete);
        let again = dump(&again);
        prop_assert_eq!(again.len(), which.len());
        for (series, &i) in again.iter().zip(&which) {
            prop_assert_eq!(series, &want[i as usize]);
        }
    }
}

#[test]
fn a_series_not_sent_keyed_cannot_be_decoded_again() {
    let body = b"cpu,host=a value=1 1\n";
    let opts = InfluxOptions::default();
    let known = RunKeyMap::default();
    let mut keyed = KeyedLines::default();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    parse_body_keyed(body, &opts, &mut scratch, &mut batch, &known, &mut keyed).unwrap();
    assert_eq!(keyed.misses.len(), 1);
    let mut again_scratch = InfluxScratch::new();
    let mut again = WriteBatch::new();
    let complete =
        parse_series_again(body, &opts, &mut again_scratch, &mut again, &keyed, &[0]).unwrap();
    assert!(!complete);
    assert!(again.series.is_empty());
}

/// A real InfluxdbReporter report (Flink 2.3, `../shared/flink/sample-influx.lp`): task and
/// operator names with escaped spaces included, every line is remembered the first time and
/// hits the second, with the plain decoder's samples.
#[test]
fn a_real_flink_report_hits_on_every_line_the_second_time() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/flink/sample-influx.lp"
    );
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    assert!(
        body.windows(2).any(|w| w == b"\\ "),
        "the sample has escaped spaces"
    );
    let opts = InfluxOptions::default();
    let mut plain_scratch = InfluxScratch::new();
    let mut plain = WriteBatch::new();
    let plain_stats = parse_body(&body, &opts, &mut plain_scratch, &mut plain).unwrap();
    // The capture separates request bodies by their request lines, which fail as lines.
    assert_eq!(plain_stats.bad_lines, 2);

    let mut known = RunKeyMap::default();
    let mut keyed = KeyedLines::default();
    let mut scratch = InfluxScratch::new();
    let mut first = WriteBatch::new();
    parse_body_keyed(&body, &opts, &mut scratch, &mut first, &known, &mut keyed).unwrap();
    assert_eq!(keyed.misses.len(), plain.series.len());
    let mut key_scratch = KeyScratch::default();
    for &(i, hash) in &keyed.misses {
        let key = SeriesKey::of(first.series_labels(i as usize), &mut key_scratch).unwrap();
        known.insert(hash, key);
    }
    let mut scratch = InfluxScratch::new();
    let mut second = WriteBatch::new();
    parse_body_keyed(&body, &opts, &mut scratch, &mut second, &known, &mut keyed).unwrap();
    assert!(keyed.misses.is_empty());
    assert_eq!(keyed.hits.len(), plain.series.len());
    assert_eq!(second.timestamps, plain.timestamps);
    assert_eq!(
        second
            .values
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        plain.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

/// A line whose tags are bad but whose fields hold a string over two lines: the full scan
/// ends it at its first line (the error), so the keyed decoder must not take the string's
/// second line as part of it (found by the fuzzer).
#[test]
fn a_bad_line_with_a_multi_line_string_ends_where_the_full_scan_ends_it() {
    let body = b"cpu,host v=\"x\nok v=1\" 5\nnext v=2\n";
    let opts = InfluxOptions::default();
    let mut plain_scratch = InfluxScratch::new();
    let mut plain = WriteBatch::new();
    let want = parse_body(body, &opts, &mut plain_scratch, &mut plain).unwrap();
    assert_eq!((want.lines, want.bad_lines), (1, 2));
    let known = RunKeyMap::default();
    let mut keyed = KeyedLines::default();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let got = parse_body_keyed(body, &opts, &mut scratch, &mut batch, &known, &mut keyed).unwrap();
    assert_eq!(summary(&got), summary(&want));
    assert_eq!(dump(&batch), dump(&plain));
}
