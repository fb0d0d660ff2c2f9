//! Text exposition 0.0.4 / OpenMetrics parsing: each accepted feature with exact labels and
//! values, metadata, and errors with their line and column.

#![allow(clippy::type_complexity)] // test tables spell their shapes out

use std::borrow::Cow;

use eddy_ingest::remote_write::{MetricMetadata, MetricType};
use eddy_ingest::text::{parse_text, TextOptions, TextStats};
use eddy_ingest::Error;
use eddy_storage::{is_stale_nan, WriteBatch};

const NOW: i64 = 1_700_000_000_000;
const PROM: TextOptions = TextOptions {
    default_timestamp_ms: NOW,
    openmetrics: false,
};
const OM: TextOptions = TextOptions {
    default_timestamp_ms: NOW,
    openmetrics: true,
};

fn parse<'a>(
    body: &'a str,
    opts: &TextOptions,
) -> (WriteBatch<'a>, Vec<MetricMetadata<'a>>, TextStats) {
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    let stats = parse_text(body, opts, &mut batch, &mut meta).expect("parse");
    (batch, meta, stats)
}

/// Series as (labels in written order, timestamp, value bits).
fn rows(batch: &WriteBatch<'_>) -> Vec<(Vec<(String, String)>, i64, u64)> {
    (0..batch.series.len())
        .map(|i| {
            let l = batch
                .series_labels(i)
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let (t, v) = batch.series_samples(i);
            assert_eq!(t.len(), 1);
            (l, t[0], v[0].to_bits())
        })
        .collect()
}

fn row(labels: &[(&str, &str)], ts: i64, v: f64) -> (Vec<(String, String)>, i64, u64) {
    (
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        ts,
        v.to_bits(),
    )
}

#[track_caller]
fn parse_err(body: &str, opts: &TextOptions, want_line: usize, want_col: usize, want_msg: &str) {
    let mut batch = WriteBatch::new();
    match parse_text(body, opts, &mut batch, &mut Vec::new()) {
        Err(Error::Parse { line, col, msg }) => {
            assert_eq!(
                (line, col, msg.as_str()),
                (want_line, want_col, want_msg),
                "body {body:?}"
            )
        }
        other => panic!("body {body:?}: want a parse error, got {other:?}"),
    }
}

#[test]
fn flink_style_lines_trailing_comma_unsorted_labels() {
    let body = "flink_m{tm_id=\"localhost:38283_419116\",host=\"localhost\",} 1.13625088E8\nup 1\nempty{} 0\n";
    let (batch, meta, stats) = parse(body, &PROM);
    assert!(meta.is_empty());
    assert_eq!(
        stats,
        TextStats {
            sample_lines: 3,
            series: 3,
            ..Default::default()
        }
    );
    assert_eq!(
        rows(&batch),
        vec![
            row(
                &[
                    ("__name__", "flink_m"),
                    ("tm_id", "localhost:38283_419116"),
                    ("host", "localhost")
                ],
                NOW,
                1.13625088E8
            ),
            row(&[("__name__", "up")], NOW, 1.0),
            row(&[("__name__", "empty")], NOW, 0.0),
        ]
    );
}

#[test]
fn special_values_are_exact() {
    let body = "a NaN\nb +Inf\nc -Inf\nd -9.223372036854776E18\ne 1e-3\nf 42\ng -0.0\nh 1.795617769014E12\n";
    let (batch, _, _) = parse(body, &PROM);
    let v = &batch.values;
    assert!(v[0].is_nan() && !is_stale_nan(v[0]));
    assert_eq!(v[1], f64::INFINITY);
    assert_eq!(v[2], f64::NEG_INFINITY);
    assert_eq!(v[3], -9.223372036854776E18);
    assert_eq!(v[4], 0.001);
    assert_eq!(v[5], 42.0);
    assert_eq!(v[6].to_bits(), (-0.0f64).to_bits());
    assert_eq!(v[7], 1_795_617_769_014.0);
}

#[test]
fn timestamps_are_milliseconds_in_text_and_seconds_in_openmetrics() {
    let (batch, _, _) = parse("a 1 1700000000123\nb 2 -5\nc 3\n", &PROM);
    assert_eq!(batch.timestamps, vec![1_700_000_000_123, -5, NOW]);
    let (batch, _, _) = parse("a 1 1700000000.123\nb 2 1520879607\nc 3\n# EOF\n", &OM);
    assert_eq!(
        batch.timestamps,
        vec![1_700_000_000_123, 1_520_879_607_000, NOW]
    );
}

#[test]
fn escaped_label_values_are_unescaped_and_only_they_are_copied() {
    let body = r#"m{path="C:\\dir\\f",q="say \"hi\"",nl="a\nb",keep="tab\t",plain="ü ✓"} 1"#;
    let (batch, _, _) = parse(body, &PROM);
    let l = batch.series_labels(0);
    assert_eq!(l[1].1, "C:\\dir\\f");
    assert_eq!(l[2].1, "say \"hi\"");
    assert_eq!(l[3].1, "a\nb");
    assert_eq!(l[4].1, "tab\\t", "unknown escapes are kept as written");
    assert_eq!(l[5].1, "ü ✓");
    let owned: Vec<bool> = l.iter().map(|(_, v)| matches!(v, Cow::Owned(_))).collect();
    assert_eq!(owned, vec![false, true, true, true, true, false]);
    assert!(l.iter().all(|(n, _)| matches!(n, Cow::Borrowed(_))));
}

#[test]
fn whitespace_blank_lines_and_crlf() {
    let body = "\n  m { a = \"1\" ,\tb=\"2\" , }  \t 3.5 \t 17  \r\n\n\t\nn\t4\r\n";
    let (batch, _, stats) = parse(body, &PROM);
    assert_eq!(stats.series, 2);
    assert_eq!(
        rows(&batch),
        vec![
            row(&[("__name__", "m"), ("a", "1"), ("b", "2")], 17, 3.5),
            row(&[("__name__", "n")], NOW, 4.0)
        ]
    );
}

#[test]
fn help_and_type_become_metadata_per_family() {
    let body = "# HELP flink_a A (scope: jobmanager)\n# TYPE flink_a gauge\nflink_a 1\n\
                # a plain comment\n#another\n# TYPE b_total counter\n# HELP b_total line\\nwith \\\\ escapes\n\
                b_total 2\n# TYPE u untyped\n# HELP only_help\n";
    let (batch, meta, stats) = parse(body, &PROM);
    assert_eq!(stats.metadata, 4);
    assert_eq!(batch.series.len(), 2);
    assert_eq!(
        meta,
        vec![
            MetricMetadata {
                family: "flink_a".into(),
                metric_type: MetricType::Gauge,
                help: "A (scope: jobmanager)".into(),
                unit: "".into()
            },
            MetricMetadata {
                family: "b_total".into(),
                metric_type: MetricType::Counter,
                help: "line\nwith \\ escapes".into(),
                unit: "".into()
            },
            MetricMetadata {
                family: "u".into(),
                metric_type: MetricType::Unknown,
                ..Default::default()
            },
            MetricMetadata {
                family: "only_help".into(),
                ..Default::default()
            },
        ]
    );
    assert!(matches!(meta[0].help, Cow::Borrowed(_)));
}

#[test]
fn openmetrics_exemplars_created_unit_and_eof() {
    let body = "# TYPE foo counter\n# UNIT foo seconds\n# HELP foo Foo.\n\
                foo_total 17.0 1520879607.789 # {trace_id=\"oHg5}SJYRHA0\"} 9.8 1520879607.789\n\
                foo_created 1520879607.789 1520879607.789\n\
                # TYPE g gauge\ng_created 5\n\
                # TYPE s summary\ns_count 1\ns_created 1.5\n# EOF\n";
    let (batch, meta, stats) = parse(body, &OM);
    assert_eq!(
        stats,
        TextStats {
            sample_lines: 5,
            series: 3,
            created_skipped: 2,
            exemplars: 1,
            metadata: 3
        }
    );
    assert_eq!(
        rows(&batch),
        vec![
            row(&[("__name__", "foo_total")], 1_520_879_607_789, 17.0),
            row(&[("__name__", "g_created")], NOW, 5.0),
            row(&[("__name__", "s_count")], NOW, 1.0),
        ]
    );
    assert_eq!(meta[0].unit, "seconds");
    assert_eq!(meta[0].help, "Foo.");
    assert_eq!(meta[0].metric_type, MetricType::Counter);
}

#[test]
fn quoted_utf8_names() {
    let body =
        "# TYPE \"my.metric\" gauge\n{\"my.metric\", \"label.with.dots\"=\"v\", plain=\"x\"} 1\n\
                {zone=\"a\",\"esc\\\"aped\"} 2\nm{\"quoted.label\"=\"q\"} 3\n";
    let (batch, meta, _) = parse(body, &PROM);
    assert_eq!(meta[0].family, "my.metric");
    assert_eq!(meta[0].metric_type, MetricType::Gauge);
    assert_eq!(
        rows(&batch),
        vec![
            row(
                &[
                    ("__name__", "my.metric"),
                    ("label.with.dots", "v"),
                    ("plain", "x")
                ],
                NOW,
                1.0
            ),
            row(&[("zone", "a"), ("__name__", "esc\"aped")], NOW, 2.0),
            row(&[("__name__", "m"), ("quoted.label", "q")], NOW, 3.0),
        ]
    );
}

#[test]
fn content_type_selects_the_dialect() {
    let om = TextOptions::for_content_type(
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        5,
    );
    assert_eq!(
        om,
        TextOptions {
            default_timestamp_ms: 5,
            openmetrics: true
        }
    );
    assert!(
        !TextOptions::for_content_type(Some("text/plain; version=0.0.4; charset=utf-8"), 5)
            .openmetrics
    );
    assert!(!TextOptions::for_content_type(None, 5).openmetrics);
    assert!(TextOptions::for_content_type(Some("Application/OpenMetrics-Text"), 5).openmetrics);
}

#[test]
fn errors_name_line_and_column() {
    parse_err(
        "m{a=\"1\" 1",
        &PROM,
        1,
        9,
        "expected ',' or '}' after a label, found '1'",
    );
    parse_err(
        "m{a=1} 1",
        &PROM,
        1,
        5,
        "expected '\"' to open the value of label \"a\", found '1'",
    );
    parse_err("m 1x", &PROM, 1, 3, "invalid value \"1x\"");
    parse_err("m 1 1.5", &PROM, 1, 5, "invalid timestamp \"1.5\"");
    parse_err(
        "m{a=\"x\",a=\"y\"} 1",
        &PROM,
        1,
        9,
        "duplicate label name \"a\"",
    );
    parse_err(
        "m",
        &PROM,
        1,
        2,
        "expected whitespace before the value, found end of line",
    );
    parse_err("1m 1", &PROM, 1, 1, "expected metric name, found '1'");
    parse_err(
        "# TYPE m bogus",
        &PROM,
        1,
        10,
        "unknown metric type \"bogus\"",
    );
    parse_err(
        "m{a=\"unterminated} 1",
        &PROM,
        1,
        5,
        "unterminated quoted string",
    );
    parse_err("m 1 2 3", &PROM, 1, 7, "unexpected '3' after the sample");
    parse_err("{a=\"b\"} 1", &PROM, 1, 1, "missing metric name");
    parse_err(
        "m{a=\"é\"é} 1",
        &PROM,
        1,
        9,
        "expected ',' or '}' after a label, found 'é'",
    );
    parse_err(
        "m 1 # {a=\"b\"} 1",
        &PROM,
        1,
        5,
        "unexpected '#' after the sample",
    );
    parse_err("ok 1\nok 2\n  m 1x\n", &PROM, 3, 5, "invalid value \"1x\"");
    parse_err("m{,} 1", &PROM, 1, 3, "expected label name, found ','");
    parse_err("m{\"\"=\"v\"} 1", &PROM, 1, 3, "empty label name");
    parse_err(
        "# HELP",
        &PROM,
        1,
        7,
        "expected a metric name after \"# HELP\", found end of line",
    );
    parse_err(
        "m 1\n",
        &OM,
        2,
        1,
        "missing \"# EOF\" at the end of an OpenMetrics exposition",
    );
    parse_err(
        "m 1\n# EOF\nx 1\n",
        &OM,
        3,
        1,
        "unexpected content after \"# EOF\"",
    );
    parse_err(
        "m 1 2 # {a=\"b\"} x",
        &OM,
        1,
        17,
        "invalid exemplar value \"x\"",
    );
    parse_err(
        "m 1 # a",
        &OM,
        1,
        7,
        "expected '{' to open an exemplar, found 'a'",
    );
    parse_err("m 1 NaN\n# EOF", &OM, 1, 5, "invalid timestamp \"NaN\"");
}

#[test]
fn error_keeps_earlier_series_and_display_names_the_place() {
    let mut batch = WriteBatch::new();
    let err = parse_text(
        "a 1\nb{x=\"1\"} 2\nc{x=\"1\" 3\n",
        &PROM,
        &mut batch,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "parse text exposition at line 3, column 9: expected ',' or '}' after a label, found '3'"
    );
    assert_eq!(batch.series.len(), 2, "complete series before the bad line");
    assert_eq!(
        batch.labels.len(),
        3,
        "the bad line's labels are rolled back"
    );
    assert_eq!(batch.sample_count(), 2);
}

#[test]
fn appends_after_existing_batch_and_metadata() {
    let mut batch = WriteBatch::new();
    batch.add_series([("__name__", "before")], &[(1, 1.0)]);
    let mut meta = vec![MetricMetadata {
        family: "fam".into(),
        help: "old".into(),
        ..Default::default()
    }];
    let stats = parse_text("# HELP fam new\nfam 7\n", &PROM, &mut batch, &mut meta).unwrap();
    assert_eq!(stats.metadata, 1);
    assert_eq!(
        meta.len(),
        2,
        "an entry from an earlier body is not updated"
    );
    assert_eq!(
        (meta[0].help.as_ref(), meta[1].help.as_ref()),
        ("old", "new")
    );
    assert_eq!(batch.series.len(), 2);
    assert_eq!(batch.series_samples(1), (&[NOW][..], &[7.0][..]));
}
