//! A proptest random-input campaign for the text parser and the Pushgateway path parser (the
//! stable-toolchain counterpart of `ingest/fuzz`): syntax-heavy random text never panics, and
//! rendered series (escapes, special values, timestamps) parse back exactly.
//! Case counts scale with `PROPTEST_CASES`.

#![allow(clippy::type_complexity)] // test tables spell their shapes out

use eddy_ingest::pushgateway::parse_grouping_path;
use eddy_ingest::text::{parse_text, TextOptions};
use eddy_storage::WriteBatch;
use proptest::prelude::*;

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn parse_checked(body: &str, openmetrics: bool) {
    let opts = TextOptions {
        default_timestamp_ms: 0,
        openmetrics,
    };
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    let res = parse_text(body, &opts, &mut batch, &mut meta);
    // Whatever happened, the batch holds whole series: one sample each, labels in range.
    assert_eq!(batch.sample_count(), batch.series.len());
    for s in &batch.series {
        assert!(s.labels.1 as usize <= batch.labels.len());
    }
    if let Ok(stats) = res {
        assert_eq!(stats.series, batch.series.len());
    }
}

/// Text made mostly of the grammar's own characters, so the parser's branches are exercised.
fn syntaxy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\\".to_string()),
        Just("# ".to_string()),
        Just("# HELP ".to_string()),
        Just("# TYPE ".to_string()),
        Just("# EOF".to_string()),
        Just("NaN".to_string()),
        Just("+Inf".to_string()),
        Just("1.5E3".to_string()),
        Just("_created".to_string()),
        Just("é".to_string()),
        Just("@base64/".to_string()),
        Just("job/".to_string()),
        Just("%2F".to_string()),
        "[a-z_:]{1,6}",
        "[0-9.eE+-]{1,6}",
        "\\PC{1,3}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn random_text_never_panics(body in syntaxy()) {
        parse_checked(&body, false);
        parse_checked(&body, true);
        let _ = parse_grouping_path(&body);
    }

    #[test]
    fn rendered_series_parse_back_exactly(
        rows in prop::collection::vec((
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
            prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,10}", "\\PC{0,12}|[\\\\\"\n]{1,4}", 0..5),
            any::<u64>().prop_map(f64::from_bits),
            prop::option::of(any::<i64>()),
            any::<bool>(),
        ), 1..10)
    ) {
        let mut body = String::new();
        for (name, labels, v, ts, trailing_comma) in &rows {
            body.push_str(name);
            body.push('{');
            let parts: Vec<String> = labels.iter().filter(|(n, _)| *n != "__name__")
                .map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect();
            body.push_str(&parts.join(","));
            if *trailing_comma && !parts.is_empty() { body.push(','); }
            body.push_str(&format!("}} {v}"));
            if let Some(t) = ts { body.push_str(&format!(" {t}")); }
            body.push('\n');
        }
        let mut batch = WriteBatch::new();
        let opts = TextOptions { default_timestamp_ms: 42, openmetrics: false };
        parse_text(&body, &opts, &mut batch, &mut Vec::new()).unwrap();
        prop_assert_eq!(batch.series.len(), rows.len());
        for (i, (name, labels, v, ts, _)) in rows.iter().enumerate() {
            let mut want = vec![("__name__".to_string(), name.clone())];
            want.extend(labels.iter().filter(|(n, _)| *n != "__name__").map(|(n, v)| (n.clone(), v.clone())));
            let got: Vec<(String, String)> =
                batch.series_labels(i).iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            prop_assert_eq!(got, want);
            let (t, val) = batch.series_samples(i);
            prop_assert_eq!(t[0], ts.unwrap_or(42));
            if v.is_nan() { prop_assert!(val[0].is_nan()); } else { prop_assert_eq!(val[0].to_bits(), v.to_bits()); }
        }
    }

    #[test]
    fn base64_grouping_values_round_trip(job in "\\PC{1,20}", value in "\\PC{0,30}") {
        let path = format!("job@base64/{}/v@base64/{}", b64url(job.as_bytes()), b64url(value.as_bytes()));
        let got = parse_grouping_path(&path).unwrap();
        prop_assert_eq!(got, vec![("job".to_string(), job), ("v".to_string(), value)]);
    }
}

/// Test-side base64url encoder (unpadded; `=` for the empty value as Pushgateway clients do).
fn b64url(src: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if src.is_empty() {
        return "=".to_string();
    }
    let mut out = String::new();
    for chunk in src.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
