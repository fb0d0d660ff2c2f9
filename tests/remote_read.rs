//! Remote read through the router: both response types decode to exactly the stored samples.
#![allow(clippy::unwrap_used)] // Tests fail loudly on any unexpected error.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use eddy::http::app;
use eddy::http::remote_read::{xor, STREAMED_CONTENT_TYPE};
use eddy_ingest::remote_write::wire::{
    put_bytes, put_tag, put_varint, Reader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT,
};
use eddy_storage::api::STALE_NAN_BITS;
use http_body_util::BodyExt;
use support::*;
use tower::ServiceExt;

/// `(labels, [(t, value bits)])`, labels sorted.
type Decoded = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

/// A query as (start, end, matchers); a matcher as (type, name, value) with type 0 EQ, 1 NEQ,
/// 2 RE, 3 NRE.
type Query<'a> = (i64, i64, Vec<(u64, &'a str, &'a str)>);

fn read_request(queries: &[Query<'_>], accepted: &[u64]) -> Vec<u8> {
    let mut req = Vec::new();
    for (start, end, matchers) in queries {
        let mut q = Vec::new();
        put_tag(&mut q, 1, WIRE_VARINT);
        put_varint(&mut q, *start as u64);
        put_tag(&mut q, 2, WIRE_VARINT);
        put_varint(&mut q, *end as u64);
        for (ty, name, value) in matchers {
            let mut m = Vec::new();
            if *ty != 0 {
                put_tag(&mut m, 1, WIRE_VARINT);
                put_varint(&mut m, *ty);
            }
            put_bytes(&mut m, 2, name.as_bytes());
            put_bytes(&mut m, 3, value.as_bytes());
            put_bytes(&mut q, 3, &m);
        }
        put_bytes(&mut req, 1, &q);
    }
    if !accepted.is_empty() {
        let mut packed = Vec::new();
        for &a in accepted {
            put_varint(&mut packed, a);
        }
        put_bytes(&mut req, 2, &packed);
    }
    snappy(&req)
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    eddy_ingest::remote_write::compress_snappy(raw, &mut out).unwrap();
    out
}

async fn post_read(st: &SharedStateAlias, body: Vec<u8>) -> (StatusCode, String, String, Vec<u8>) {
    let req = Request::post("/api/v1/read")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-read-version", "0.1.0")
        .body(Body::from(body))
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (ct, ce) = (h("content-type"), h("content-encoding"));
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ct, ce, body)
}

type SharedStateAlias = eddy::http::SharedState;

fn labels_of(mut r: Reader<'_>) -> (String, String) {
    let (mut n, mut v) = (String::new(), String::new());
    while let Some(f) = r.field().unwrap() {
        let s = String::from_utf8(r.bytes().unwrap().to_vec()).unwrap();
        if f.num == 1 {
            n = s;
        } else {
            v = s;
        }
    }
    (n, v)
}

/// Decodes a SAMPLES response body (snappy) into one `Decoded` per query.
fn decode_samples(body: &[u8]) -> Vec<Decoded> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    let mut out = Vec::new();
    let mut r = Reader::new(&raw);
    while let Some(f) = r.field().unwrap() {
        assert_eq!((f.num, f.wire), (1, WIRE_LEN));
        let mut qr = r.sub().unwrap();
        let mut result = Vec::new();
        while let Some(f) = qr.field().unwrap() {
            assert_eq!(f.num, 1);
            let mut ts = qr.sub().unwrap();
            let (mut labels, mut samples) = (Vec::new(), Vec::new());
            while let Some(f) = ts.field().unwrap() {
                let mut sub = ts.sub().unwrap();
                match f.num {
                    1 => labels.push(labels_of(sub)),
                    2 => {
                        let (mut t, mut v) = (0i64, 0u64);
                        while let Some(f) = sub.field().unwrap() {
                            match (f.num, f.wire) {
                                (1, WIRE_FIXED64) => v = sub.fixed64().unwrap(),
                                (2, WIRE_VARINT) => t = sub.varint().unwrap() as i64,
                                other => panic!("unexpected sample field {other:?}"),
                            }
                        }
                        samples.push((t, v));
                    }
                    n => panic!("unexpected series field {n}"),
                }
            }
            result.push((labels, samples));
        }
        out.push(result);
    }
    out
}

/// Decodes a streamed body: checks each frame's CRC, decodes the XOR chunks, and merges
/// consecutive frames of the same series. Returns one `Decoded` per query index seen, and the
/// number of frames.
fn decode_streamed(body: &[u8], queries: usize) -> (Vec<Decoded>, usize) {
    let mut out: Vec<Decoded> = vec![Vec::new(); queries];
    let mut frames = 0;
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let len = r.varint().unwrap() as usize;
        let rest = r.remaining();
        let crc = u32::from_be_bytes(rest[..4].try_into().unwrap());
        let msg = &rest[4..4 + len];
        assert_eq!(crc, crc32c::crc32c(msg), "frame {frames} checksum");
        frames += 1;
        let mut m = Reader::new(msg);
        let mut qi = 0usize;
        let mut series = Vec::new();
        while let Some(f) = m.field().unwrap() {
            match f.num {
                1 => {
                    let mut cs = m.sub().unwrap();
                    let (mut labels, mut samples) = (Vec::new(), Vec::new());
                    while let Some(f) = cs.field().unwrap() {
                        let mut sub = cs.sub().unwrap();
                        match f.num {
                            1 => labels.push(labels_of(sub)),
                            2 => {
                                let (mut mint, mut maxt, mut ty, mut data) = (0, 0, 0, Vec::new());
                                while let Some(f) = sub.field().unwrap() {
                                    match f.num {
                                        1 => mint = sub.varint().unwrap() as i64,
                                        2 => maxt = sub.varint().unwrap() as i64,
                                        3 => ty = sub.varint().unwrap(),
                                        4 => data = sub.bytes().unwrap().to_vec(),
                                        n => panic!("unexpected chunk field {n}"),
                                    }
                                }
                                assert_eq!(ty, 1, "chunk encoding must be XOR");
                                let got = xor::decode_chunk(&data).unwrap();
                                assert!(got.len() <= 120, "chunk of {} samples", got.len());
                                assert_eq!(
                                    (mint, maxt),
                                    (got[0].0, got[got.len() - 1].0),
                                    "chunk time range"
                                );
                                samples.extend(got);
                            }
                            n => panic!("unexpected chunked series field {n}"),
                        }
                    }
                    series.push((labels, samples));
                }
                2 => qi = m.varint().unwrap() as usize,
                n => panic!("unexpected frame field {n}"),
            }
        }
        for s in series {
            match out[qi].last_mut() {
                Some(last) if last.0 == s.0 => last.1.extend(s.1),
                _ => out[qi].push(s),
            }
        }
        r = Reader::new(&rest[4 + len..]);
    }
    (out, frames)
}

fn pairs(l: &[(&str, &str)]) -> Vec<(String, String)> {
    l.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

const T0: i64 = 1_700_000_000_000;

/// Stores: `up` for two jobs over 300 samples (with NaN and a stale marker), and `other`.
async fn load() -> (
    SharedStateAlias,
    tempfile::TempDir,
    Vec<(i64, f64)>,
    Vec<(i64, f64)>,
) {
    let (st, dir) = state(&[]);
    let mut a: Vec<(i64, f64)> = (0..300)
        .map(|i| (T0 + i * 15_000 + (i % 3), (i as f64).sqrt()))
        .collect();
    a[10].1 = f64::NAN;
    a[11].1 = f64::from_bits(0x7ff8_0000_0000_0001);
    a[299].1 = f64::from_bits(STALE_NAN_BITS);
    let b: Vec<(i64, f64)> = (0..5)
        .map(|i| (T0 + i * 60_000, -1e300 * i as f64))
        .collect();
    let (s, body) = remote_write(
        &st,
        &[
            (
                vec![("__name__", "up"), ("job", "b"), ("instance", "x:1")],
                b.clone(),
            ),
            (vec![("__name__", "up"), ("job", "a")], a.clone()),
            (vec![("__name__", "other"), ("job", "a")], vec![(T0, 7.0)]),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    (st, dir, a, b)
}

#[tokio::test]
async fn samples_response_holds_exactly_the_stored_samples() {
    let (st, _dir, a, b) = load().await;
    let end = T0 + 10 * 3600 * 1000;
    let body = read_request(&[(T0, end, vec![(0, "__name__", "up")])], &[]);
    let (s, ct, ce, resp) = post_read(&st, body).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(
        (ct.as_str(), ce.as_str()),
        ("application/x-protobuf", "snappy")
    );
    let got = decode_samples(&resp);
    assert_eq!(
        got,
        vec![vec![
            // Label sets compare pair by pair: `instance` < `job`.
            (
                pairs(&[("__name__", "up"), ("instance", "x:1"), ("job", "b")]),
                bits(&b)
            ),
            (pairs(&[("__name__", "up"), ("job", "a")]), bits(&a)),
        ]]
    );
}

#[tokio::test]
async fn streamed_chunks_decode_to_the_stored_samples() {
    let (st, _dir, a, b) = load().await;
    let end = T0 + 10 * 3600 * 1000;
    // The client prefers streaming, as Prometheus does; a second query checks query_index.
    let body = read_request(
        &[
            (T0, end, vec![(2, "__name__", "up|nothing")]),
            (T0, end, vec![(0, "__name__", "other")]),
        ],
        &[1, 0],
    );
    let (s, ct, ce, resp) = post_read(&st, body).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&resp));
    assert_eq!((ct.as_str(), ce.as_str()), (STREAMED_CONTENT_TYPE, ""));
    let (got, frames) = decode_streamed(&resp, 2);
    assert_eq!(frames, 3);
    assert_eq!(
        got,
        vec![
            vec![
                (
                    pairs(&[("__name__", "up"), ("instance", "x:1"), ("job", "b")]),
                    bits(&b)
                ),
                (pairs(&[("__name__", "up"), ("job", "a")]), bits(&a)),
            ],
            vec![(
                pairs(&[("__name__", "other"), ("job", "a")]),
                bits(&[(T0, 7.0)])
            )],
        ]
    );
}

#[test]
fn streamed_frames_split_a_long_series_at_the_frame_size() {
    let ts: Vec<i64> = (0..1000).map(|i| i * 1000).collect();
    let vs: Vec<f64> = (0..1000).map(|i| (i as f64) * 1.37).collect();
    let series = eddy_storage::Series {
        labels: eddy_storage::Labels::from_pairs([("__name__", "m")]),
        timestamps: ts.clone(),
        values: vs.clone(),
    };
    // Any frame limit below one chunk gives one chunk per frame: 1000 / 120 → 9 frames.
    let body = eddy::http::remote_read::encode_streamed(&[vec![series]], 1);
    let (got, frames) = decode_streamed(&body, 1);
    assert_eq!(frames, 9);
    let want: Vec<(i64, f64)> = ts.into_iter().zip(vs).collect();
    assert_eq!(got, vec![vec![(pairs(&[("__name__", "m")]), bits(&want))]]);
}

#[tokio::test]
async fn time_range_and_matchers_are_honoured() {
    let (st, _dir, a, b) = load().await;
    // [T0+30s, T0+120s] inclusive; job!="a" and instance=~"x:.*" keep only job b.
    let (start, end) = (T0 + 30_000, T0 + 120_000);
    for accepted in [&[][..], &[1][..]] {
        let body = read_request(
            &[
                (
                    start,
                    end,
                    vec![
                        (0, "__name__", "up"),
                        (1, "job", "a"),
                        (2, "instance", "x:.*"),
                    ],
                ),
                (start, end, vec![(3, "job", "b"), (0, "__name__", "up")]),
                (start, end, vec![(0, "__name__", "absent")]),
            ],
            accepted,
        );
        let (s, _, _, resp) = post_read(&st, body).await;
        assert_eq!(s, StatusCode::OK);
        let got = if accepted.is_empty() {
            decode_samples(&resp)
        } else {
            decode_streamed(&resp, 3).0
        };
        let in_range = |v: &[(i64, f64)]| -> Vec<(i64, u64)> {
            bits(v)
                .into_iter()
                .filter(|&(t, _)| t >= start && t <= end)
                .collect()
        };
        assert_eq!(
            got,
            vec![
                vec![(
                    pairs(&[("__name__", "up"), ("instance", "x:1"), ("job", "b")]),
                    in_range(&b)
                )],
                vec![(pairs(&[("__name__", "up"), ("job", "a")]), in_range(&a))],
                vec![],
            ],
            "accepted {accepted:?}"
        );
        assert_eq!(in_range(&b).len(), 2);
    }
}

#[tokio::test]
async fn bad_requests_are_400_with_a_message() {
    let (st, _dir, _, _) = load().await;
    let (s, _, _, resp) = post_read(&st, b"not snappy at all".to_vec()).await;
    let msg = String::from_utf8_lossy(&resp).into_owned();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{msg}");
    assert!(msg.contains("decompress remote read request"), "{msg}");

    // Valid snappy around a truncated protobuf: a query whose length runs past the end.
    let (s, _, _, resp) = post_read(&st, snappy(&[0x0a, 0x20, 0x08])).await;
    let msg = String::from_utf8_lossy(&resp).into_owned();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{msg}");
    assert!(msg.contains("decode remote read request at byte"), "{msg}");

    let body = read_request(&[(0, 1, vec![(2, "job", "(")])], &[]);
    let (s, _, _, resp) = post_read(&st, body).await;
    let msg = String::from_utf8_lossy(&resp).into_owned();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{msg}");
    assert!(msg.contains("regex"), "{msg}");

    let body = read_request(&[(0, 1, vec![(7, "job", "a")])], &[]);
    let (s, _, _, resp) = post_read(&st, body).await;
    let msg = String::from_utf8_lossy(&resp).into_owned();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{msg}");
    assert!(msg.contains("invalid matcher type 7"), "{msg}");

    let body = read_request(&[(0, 1, vec![(0, "job", "a")])], &[5]);
    let (s, _, _, resp) = post_read(&st, body).await;
    let msg = String::from_utf8_lossy(&resp).into_owned();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{msg}");
    assert!(
        msg.contains("does not support any of the requested response types"),
        "{msg}"
    );
}
