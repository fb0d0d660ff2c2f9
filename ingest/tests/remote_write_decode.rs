//! remote_write decoding: exact round trips through the encoder, hand-written protobuf bytes,
//! unknown fields, wire errors with offsets, per-series validation, and size extremes.

#![allow(clippy::type_complexity)] // test tables spell their shapes out

use std::borrow::Cow;

use eddy_ingest::remote_write::{
    decode_write_request, encode_metadata, encode_write_request, DecodeStats, MetricMetadata,
    MetricType, MAX_INVALID_MESSAGES,
};
use eddy_ingest::Error;
use eddy_storage::api::STALE_NAN_BITS;
use eddy_storage::WriteBatch;

type Owned = Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>;

fn decode(body: &[u8]) -> (WriteBatch<'_>, Vec<MetricMetadata<'_>>, DecodeStats) {
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    let stats = decode_write_request(body, &mut batch, &mut meta).expect("decode");
    (batch, meta, stats)
}

/// The batch as owned series, with values as bit patterns so NaNs compare exactly.
fn owned(batch: &WriteBatch<'_>) -> Vec<(Vec<(String, String)>, Vec<(i64, u64)>)> {
    (0..batch.series.len())
        .map(|i| {
            let l = batch
                .series_labels(i)
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let (ts, vs) = batch.series_samples(i);
            (
                l,
                ts.iter().zip(vs).map(|(&t, v)| (t, v.to_bits())).collect(),
            )
        })
        .collect()
}

fn series(
    labels: &[(&str, &str)],
    samples: &[(i64, f64)],
) -> (Vec<(String, String)>, Vec<(i64, f64)>) {
    (
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        samples.to_vec(),
    )
}

fn bits(s: &Owned) -> Vec<(Vec<(String, String)>, Vec<(i64, u64)>)> {
    s.iter()
        .map(|(l, ss)| {
            (
                l.clone(),
                ss.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
            )
        })
        .collect()
}

#[test]
fn round_trip_exact_values_and_borrowed_labels() {
    let input: Owned = vec![
        series(
            &[
                ("job", "flink"),
                ("__name__", "flink_taskmanager_Status_JVM_CPU_Load"),
                ("host", ""),
            ],
            &[(1_795_617_769_014, 0.1004), (1_795_617_784_014, f64::NAN)],
        ),
        series(
            &[("__name__", "specials"), ("é", "ünïcode ✓")],
            &[
                (-5, f64::INFINITY),
                (0, f64::NEG_INFINITY),
                (1, f64::from_bits(STALE_NAN_BITS)),
                (2, -0.0),
                (3, -9.223_372_036_854_776E18),
                (i64::MIN, f64::MIN_POSITIVE),
                (i64::MAX, 0.0),
            ],
        ),
        series(&[("__name__", "no_samples_kept_out")], &[]),
    ];
    let mut body = Vec::new();
    encode_write_request(&input, &mut body);
    let (batch, meta, stats) = decode(&body);
    assert!(meta.is_empty());
    assert_eq!(
        stats,
        DecodeStats {
            series: 2,
            samples: 9,
            ..Default::default()
        },
        "a series without samples is not appended"
    );
    assert_eq!(owned(&batch), bits(&input[..2].to_vec()));
    // Labels borrow from the body: no allocation per label.
    for (n, v) in &batch.labels {
        assert!(matches!(n, Cow::Borrowed(_)) && matches!(v, Cow::Borrowed(_)));
    }
    assert_eq!(batch.values[4].to_bits(), STALE_NAN_BITS);
}

/// `{__name__="up"} 1 @1000`, written out byte by byte.
const HAND_UP: &[u8] = &[
    0x0a, 0x1e, // WriteRequest.timeseries, 30 bytes
    0x0a, 0x0e, // TimeSeries.labels, 14 bytes
    0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', // Label.name
    0x12, 0x02, b'u', b'p', // Label.value
    0x12, 0x0c, // TimeSeries.samples, 12 bytes
    0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // Sample.value = 1.0
    0x10, 0xe8, 0x07, // Sample.timestamp = 1000
];

#[test]
fn hand_written_bytes_decode_and_encoder_matches_them() {
    let (batch, _, stats) = decode(HAND_UP);
    assert_eq!(stats.series, 1);
    assert_eq!(
        owned(&batch),
        vec![(
            vec![("__name__".into(), "up".into())],
            vec![(1000, 1f64.to_bits())]
        )]
    );
    let mut enc = Vec::new();
    encode_write_request(
        &[(&[("__name__", "up")][..], &[(1000i64, 1.0f64)][..])],
        &mut enc,
    );
    assert_eq!(enc, HAND_UP);
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped_and_defaults_apply() {
    let body: &[u8] = &[
        0x78, 0x96, 0x01, // 0: field 15 varint 150 (request level)
        0x0a, 0x1f, // 3: timeseries, 31 bytes
        0x0a, 0x0b, // 5: labels, 11 bytes
        0x1d, 1, 2, 3, 4, // 7: Label field 3 fixed32 (unknown)
        0x0a, 0x01, b'a', // name "a"
        0x12, 0x01, b'b', // value "b"
        0x0a, 0x05, // 18: labels, 5 bytes
        0x0a, 0x01, b'c', 0x12, 0x00, // name "c", empty value
        0x12, 0x00, // 25: a sample with no fields: ts 0, value 0
        0x21, 0, 0, 0, 0, 0, 0, 0, 0, // 27: field 4 as fixed64
        0x12, 0x00, // 36: request field 2 (reserved), empty bytes
    ];
    // Field 4 with wire type 1 is a schema mismatch (histograms are messages): an error.
    let mut b = WriteBatch::new();
    let err = decode_write_request(body, &mut b, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Protobuf { offset: 27, .. }), "{err}");
    assert!(b.is_empty(), "rolled back");

    // Same with an unknown field number 9 instead: skipped.
    let mut body = body.to_vec();
    body[27] = (9 << 3) | 1;
    let (batch, _, stats) = decode(&body);
    assert_eq!(stats.invalid_series, 1, "no __name__");
    assert!(
        stats.invalid[0].starts_with("series 0 {a=\"b\", c=\"\"}: missing metric name"),
        "{:?}",
        stats.invalid
    );
    assert!(batch.is_empty());

    // Give it a name (append a label "__name__"="m" to the series) and it is kept.
    let mut req = Vec::new();
    let extra: &[u8] = &[
        0x0a, 0x0d, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x01, b'm',
    ];
    req.extend_from_slice(&[0x0a, 0x1f + extra.len() as u8]);
    req.extend_from_slice(&body[5..36]);
    req.extend_from_slice(extra);
    let (batch, _, stats) = decode(&req);
    assert_eq!(stats.series, 1, "{:?}", stats.invalid);
    assert_eq!(
        owned(&batch),
        vec![(
            vec![
                ("a".into(), "b".into()),
                ("c".into(), "".into()),
                ("__name__".into(), "m".into())
            ],
            vec![(0, 0f64.to_bits())]
        )]
    );
}

#[track_caller]
fn wire_error(body: &[u8], want_offset: usize) {
    let mut batch = WriteBatch::new();
    batch.add_series([("__name__", "before")], &[(1, 1.0)]);
    let mut meta = vec![MetricMetadata::default()];
    match decode_write_request(body, &mut batch, &mut meta) {
        Err(Error::Protobuf { offset, reason }) => {
            assert_eq!(offset, want_offset, "{reason}");
        }
        other => panic!("want a wire error, got {other:?}"),
    }
    assert_eq!(batch.series.len(), 1, "earlier batch contents survive");
    assert_eq!(batch.labels.len(), 1);
    assert_eq!(meta.len(), 1);
}

#[test]
fn wire_errors_name_the_byte_offset() {
    wire_error(&[0x0b], 0); // field 1 as start-group
    wire_error(&[0x00, 0x00], 0); // field number 0
    wire_error(&[0x0a, 0x05, 0x0a], 1); // length past the end (offset of the length)
    wire_error(&[0x08, 0x01], 0); // timeseries as varint: wrong wire type
    wire_error(&HAND_UP[..20], 1); // series length runs past the end
    let mut bad = HAND_UP.to_vec();
    bad[20] = 0x0d; // Sample.value as fixed32
    wire_error(&bad, 20);
    wire_error(&[0x78, 0x80], 1); // truncated varint after a valid tag
    wire_error(&[0x79, 1, 2, 3], 1); // truncated fixed64
    wire_error(&[0x7d, 1, 2], 1); // truncated fixed32
    wire_error(
        &[
            0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
        1,
    ); // > 64 bits
}

#[test]
fn truncation_at_every_offset_errors_or_yields_a_prefix_never_panics() {
    let input: Owned = (0..4)
        .map(|i| {
            series(
                &[
                    ("__name__", "flink_taskmanager_job_task_numRecordsIn"),
                    ("subtask_index", &i.to_string()),
                ],
                &[(1000 + i, i as f64), (2000 + i, f64::NAN)],
            )
        })
        .collect();
    let mut body = Vec::new();
    encode_write_request(&input, &mut body);
    let mut boundaries = vec![0];
    for s in &input {
        let mut one = Vec::new();
        encode_write_request(std::slice::from_ref(s), &mut one);
        boundaries.push(boundaries.last().unwrap() + one.len());
    }
    for cut in 0..body.len() {
        let mut batch = WriteBatch::new();
        let res = decode_write_request(&body[..cut], &mut batch, &mut Vec::new());
        match boundaries.iter().position(|&b| b == cut) {
            Some(n) => assert_eq!(res.unwrap().series, n, "cut at series boundary {cut}"),
            None => {
                match res {
                    Err(Error::Protobuf { offset, .. }) => {
                        assert!(offset <= cut, "offset {offset} at cut {cut}")
                    }
                    other => panic!("cut {cut}: want a wire error, got {other:?}"),
                }
                assert!(batch.is_empty() && batch.labels.is_empty() && batch.timestamps.is_empty());
            }
        }
    }
}

/// Encodes one series whose labels are given as raw bytes, to build invalid UTF-8.
fn raw_series(labels: &[(&[u8], &[u8])], ts: i64) -> Vec<u8> {
    let mut inner = Vec::new();
    for (n, v) in labels {
        let mut l = vec![0x0a, n.len() as u8];
        l.extend_from_slice(n);
        l.extend_from_slice(&[0x12, v.len() as u8]);
        l.extend_from_slice(v);
        inner.extend_from_slice(&[0x0a, l.len() as u8]);
        inner.extend_from_slice(&l);
    }
    let mut s = vec![0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10];
    s.push(ts as u8);
    inner.extend_from_slice(&[0x12, s.len() as u8]);
    inner.extend_from_slice(&s);
    let mut out = vec![0x0a, inner.len() as u8];
    out.extend_from_slice(&inner);
    out
}

#[test]
fn invalid_series_are_left_out_and_named_the_rest_is_kept() {
    let mut body = Vec::new();
    body.extend(raw_series(&[(b"__name__", b"ok0")], 1));
    body.extend(raw_series(
        &[(b"__name__", b"bad_value"), (b"k", b"\xff\xfe")],
        2,
    ));
    body.extend(raw_series(
        &[(b"__name__", b"bad_name"), (b"k\xc3", b"v")],
        3,
    ));
    body.extend(raw_series(&[(b"__name__", b"empty_name"), (b"", b"v")], 4));
    body.extend(raw_series(
        &[(b"__name__", b"dup"), (b"job", b"a"), (b"job", b"b")],
        5,
    ));
    body.extend(raw_series(&[(b"job", b"no_name")], 6));
    body.extend(raw_series(
        &[(b"__name__", b""), (b"job", b"empty_metric_name")],
        7,
    ));
    body.extend(raw_series(
        &[(b"__name__", b"ok7"), (b"utf8.name/\xe2\x9c\x93", b"v")],
        8,
    ));
    let (batch, _, stats) = decode(&body);
    assert_eq!(stats.series, 2);
    assert_eq!(stats.samples, 2);
    assert_eq!(stats.invalid_series, 6);
    assert_eq!(
        stats.invalid,
        vec![
            "series 1 {__name__=\"bad_value\"}: label 1 has a value that is not valid UTF-8",
            "series 2 {__name__=\"bad_name\"}: label 1 has a name that is not valid UTF-8",
            "series 3 {__name__=\"empty_name\", =\"v\"}: label 1 has an empty name",
            "series 4 {__name__=\"dup\", job=\"a\", job=\"b\"}: duplicate label name \"job\"",
            "series 5 {job=\"no_name\"}: missing metric name (label \"__name__\")",
            "series 6 {__name__=\"\", job=\"empty_metric_name\"}: missing metric name (label \"__name__\")",
        ]
    );
    assert_eq!(
        owned(&batch),
        vec![
            (
                vec![("__name__".into(), "ok0".into())],
                vec![(1, 1f64.to_bits())]
            ),
            (
                vec![
                    ("__name__".into(), "ok7".into()),
                    ("utf8.name/✓".into(), "v".into())
                ],
                vec![(8, 1f64.to_bits())]
            ),
        ]
    );
}

#[test]
fn invalid_messages_are_bounded_but_all_counted() {
    let mut body = Vec::new();
    for i in 0..25 {
        body.extend(raw_series(&[(b"job", b"x")], i));
    }
    let (_, _, stats) = decode(&body);
    assert_eq!(stats.invalid_series, 25);
    assert_eq!(stats.invalid.len(), MAX_INVALID_MESSAGES);
    assert!(stats.invalid[9].starts_with("series 9 "));
}

#[test]
fn histograms_and_exemplars_are_counted_and_skipped() {
    // Series A: one sample, one exemplar, two histograms → kept. Series B: only a histogram → dropped.
    let mut a = raw_series(&[(b"__name__", b"a")], 1);
    let tail: &[u8] = &[
        0x1a, 0x02, 0x10, 0x05, 0x22, 0x03, 0x08, 0x01, 0x00, 0x22, 0x00,
    ];
    a[1] += tail.len() as u8;
    a.extend_from_slice(tail);
    let b: &[u8] = &[
        0x0a, 0x14, 0x0a, 0x0d, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12,
        0x01, b'b', 0x22, 0x03, 0x08, 0x01, 0x00,
    ];
    let mut body = a.clone();
    body.extend_from_slice(b);
    let mut batch = WriteBatch::new();
    let stats = decode_write_request(&body, &mut batch, &mut Vec::new()).unwrap();
    assert_eq!(
        stats,
        DecodeStats {
            series: 1,
            samples: 1,
            histograms: 3,
            exemplars: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        owned(&batch),
        vec![(
            vec![("__name__".into(), "a".into())],
            vec![(1, 1f64.to_bits())]
        )]
    );
}

#[test]
fn metadata_round_trips() {
    let meta = vec![
        MetricMetadata {
            family: "flink_jobmanager_numRunningJobs".into(),
            metric_type: MetricType::Gauge,
            help: "numRunningJobs (scope: jobmanager)".into(),
            unit: "".into(),
        },
        MetricMetadata {
            family: "http_requests".into(),
            metric_type: MetricType::Counter,
            help: "".into(),
            unit: "requests".into(),
        },
        MetricMetadata {
            family: "x".into(),
            ..Default::default()
        },
    ];
    let mut body = Vec::new();
    encode_metadata(&meta[..1], &mut body);
    encode_write_request(
        &[(&[("__name__", "up")][..], &[(5i64, 1.0f64)][..])],
        &mut body,
    );
    encode_metadata(&meta[1..], &mut body);
    let (batch, got, stats) = decode(&body);
    assert_eq!(stats.series, 1);
    assert_eq!(batch.series.len(), 1);
    assert_eq!(got, meta);
    for t in 0..8 {
        assert_eq!(MetricType::from_proto(t).to_proto(), t);
        let ty = MetricType::from_proto(t);
        assert_eq!(MetricType::from_text(ty.as_str()), Some(ty));
    }
    assert_eq!(MetricType::from_proto(99), MetricType::Unknown);
}

#[test]
fn decoding_appends_after_existing_batch_contents() {
    let mut batch = WriteBatch::new();
    batch.add_series([("__name__", "first")], &[(1, 1.0), (2, 2.0)]);
    let mut meta = Vec::new();
    let stats = decode_write_request(HAND_UP, &mut batch, &mut meta).unwrap();
    assert_eq!(stats.series, 1);
    assert_eq!(batch.series.len(), 2);
    assert_eq!(batch.series_labels(1)[0].1, "up");
    assert_eq!(batch.series_samples(1), (&[1000i64][..], &[1.0f64][..]));
}

#[test]
fn one_mebibyte_label_value() {
    let big = "v".repeat(1 << 20);
    let mut body = Vec::new();
    encode_write_request(
        &[(
            vec![("__name__", "big"), ("payload", big.as_str())],
            vec![(7i64, 7.0f64)],
        )],
        &mut body,
    );
    let (batch, _, stats) = decode(&body);
    assert_eq!(stats.series, 1);
    assert_eq!(batch.series_labels(0)[1].1.len(), 1 << 20);
    assert_eq!(batch.series_labels(0)[1].1, big);
}

#[test]
fn ten_thousand_labels_on_one_series_and_a_duplicate_among_them() {
    let names: Vec<String> = (0..10_000).map(|i| format!("label_{i:05}")).collect();
    let mut labels: Vec<(&str, &str)> = vec![("__name__", "wide")];
    labels.extend(names.iter().map(|n| (n.as_str(), "x")));
    let mut body = Vec::new();
    encode_write_request(&[(labels.clone(), vec![(1i64, 1.0f64)])], &mut body);
    let (batch, _, stats) = decode(&body);
    assert_eq!(stats.series, 1);
    assert_eq!(batch.series_labels(0).len(), 10_001);
    assert_eq!(batch.series_labels(0)[10_000].0, "label_09999");

    labels.push(("label_04321", "again"));
    let mut body = Vec::new();
    encode_write_request(&[(labels, vec![(1i64, 1.0f64)])], &mut body);
    let (batch, _, stats) = decode(&body);
    assert!(batch.is_empty());
    assert_eq!(stats.invalid_series, 1);
    assert!(
        stats.invalid[0].ends_with("duplicate label name \"label_04321\""),
        "{}",
        stats.invalid[0]
    );
    assert!(stats.invalid[0].len() < 400, "message stays short");
}

/// Labels outside the common `0x0a len name 0x12 len value` shape (which has a fast path)
/// decode the same through the general field walk: value before name, a repeated field
/// (the last one wins, as in protobuf), a name of 2-byte length, a missing value.
#[test]
fn labels_in_every_field_layout_decode_alike() {
    let long = "n".repeat(200);
    let mut labels_bytes: Vec<Vec<u8>> = vec![
        vec![
            0x0a, 8, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 1, b'm',
        ],
        vec![0x12, 1, b'v', 0x0a, 1, b'a'],
        vec![0x0a, 1, b'x', 0x12, 1, b'1', 0x0a, 1, b'b', 0x12, 1, b'2'],
        vec![0x0a, 1, b'c'],
    ];
    let mut l = vec![0x0a, 0xc8, 0x01];
    l.extend_from_slice(long.as_bytes());
    l.extend_from_slice(&[0x12, 1, b'w']);
    labels_bytes.push(l);
    let mut inner = Vec::new();
    for l in &labels_bytes {
        inner.push(0x0a);
        inner.extend_from_slice(&[l.len() as u8 | 0x80, (l.len() >> 7) as u8]);
        inner.extend_from_slice(l);
    }
    inner.extend_from_slice(&[0x12, 0x02, 0x10, 0x07]);
    let mut body = vec![0x0a];
    body.extend_from_slice(&[inner.len() as u8 | 0x80, (inner.len() >> 7) as u8]);
    body.extend_from_slice(&inner);
    let (batch, _, stats) = decode(&body);
    assert_eq!(stats.series, 1, "{:?}", stats.invalid);
    assert_eq!(
        owned(&batch),
        vec![(
            vec![
                ("__name__".into(), "m".into()),
                ("a".into(), "v".into()),
                ("b".into(), "2".into()),
                ("c".into(), "".into()),
                (long.clone(), "w".into()),
            ],
            vec![(7, 0f64.to_bits())]
        )]
    );
    // A short label whose value runs past its message is a wire error, not a fast-path read.
    let bad: &[u8] = &[
        0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x01, b'a', 0x12, 0x03, b'b', b'c',
    ];
    let mut b = WriteBatch::new();
    assert!(decode_write_request(bad, &mut b, &mut Vec::new()).is_err());
    assert!(b.is_empty());
}
