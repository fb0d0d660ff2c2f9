//! Property tests: arbitrary bytes never panic, and points written with line protocol escaping
//! parse back to exactly what was written. `PROPTEST_CASES=N` scales the campaign.

use eddy_ingest::influx::{parse_body, parse_lines, FlinkNames, InfluxOptions, InfluxScratch};
use eddy_storage::WriteBatch;
use proptest::prelude::*;

fn escape(s: &str, specials: &[char]) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if specials.contains(&c) || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Keys and values: printable text with the characters that need escaping, no newlines (line
/// protocol cannot carry them outside strings), not starting with `#`.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,=\\\\\"é_.:-]{1,12}".prop_filter("not a comment", |s| !s.starts_with('#'))
}

#[derive(Debug, Clone)]
struct Point {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, f64)>,
    ts: i64,
}

fn point() -> impl Strategy<Value = Point> {
    (
        text().prop_filter("measurement cannot start with space", |m| {
            !m.starts_with(' ')
        }),
        prop::collection::btree_map(text(), text(), 0..5),
        prop::collection::btree_map(text(), -1e12f64..1e12, 1..4),
        any::<i64>(),
    )
        .prop_map(|(measurement, tags, fields, ts)| Point {
            measurement,
            tags: tags.into_iter().filter(|(k, _)| k != "__name__").collect(),
            fields: fields.into_iter().collect(),
            ts,
        })
}

fn render(p: &Point) -> String {
    let mut line = escape(&p.measurement, &[',', ' ']);
    for (k, v) in &p.tags {
        line.push_str(&format!(
            ",{}={}",
            escape(k, &[',', '=', ' ']),
            escape(v, &[',', '=', ' '])
        ));
    }
    line.push(' ');
    let fields: Vec<String> = p
        .fields
        .iter()
        .map(|(k, v)| format!("{}={v:?}", escape(k, &[',', '=', ' '])))
        .collect();
    line.push_str(&fields.join(","));
    line.push_str(&format!(" {}", p.ts));
    line
}

proptest! {
    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let o = InfluxOptions { flink_names: FlinkNames::On, ..Default::default() };
        let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
        if let Ok(stats) = parse_body(&body, &o, &mut scratch, &mut batch) {
            prop_assert_eq!(stats.samples as usize, batch.sample_count());
            prop_assert!(stats.errors.len() <= 16);
        }
    }

    #[test]
    fn line_protocol_alphabet_never_panics(body in "[a-z ,=\\\\\"#\n\r0-9.eEit-]{0,200}") {
        let o = InfluxOptions::default();
        let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
        let stats = parse_lines(&body, &o, &mut scratch, &mut batch).unwrap();
        prop_assert_eq!(stats.samples as usize, batch.sample_count());
        for e in &stats.errors {
            let line = e.line().unwrap() as usize;
            prop_assert!(line >= 1 && line <= body.split('\n').count());
        }
    }

    #[test]
    fn escaped_points_round_trip(points in prop::collection::vec(point(), 1..6), crlf in any::<bool>()) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let body = points.iter().map(render).collect::<Vec<_>>().join(sep);
        let o = InfluxOptions { flink_names: FlinkNames::Off, ..Default::default() };
        let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
        let stats = parse_lines(&body, &o, &mut scratch, &mut batch).unwrap();
        prop_assert!(stats.errors.is_empty(), "{:?}\n{}", stats.errors, body);
        let mut i = 0;
        for p in &points {
            for (field, value) in &p.fields {
                let labels = batch.series_labels(i);
                prop_assert_eq!(labels[0].1.as_ref(), format!("{}_{}", p.measurement, field));
                let tags: Vec<(String, String)> =
                    labels[1..].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                prop_assert_eq!(&tags, &p.tags);
                let (ts, vs) = batch.series_samples(i);
                prop_assert_eq!(ts[0], p.ts.div_euclid(1_000_000));
                prop_assert_eq!(vs[0], *value);
                i += 1;
            }
        }
        prop_assert_eq!(i, batch.series.len());
    }
}
