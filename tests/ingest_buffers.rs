//! The ingest path's reused buffers and workers: requests in flight at once, of different
//! sizes and formats, each decode into their own scratch; bodies that arrive in many pieces
//! decode as one; the body limit holds however the body arrives.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use eddy::http::SharedState;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T0_MS: i64 = 1_700_000_000_000;

/// A series' labels and samples.
type OwnedSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// `n` series of request `r`: long label values, so a request of many series is megabytes
/// once decompressed.
fn series_of_request(r: usize, n: usize) -> Vec<OwnedSeries> {
    (0..n)
        .map(|i| {
            let labels = vec![
                (
                    "__name__".to_string(),
                    "flink_taskmanager_job_task_operator_numRecordsIn".to_string(),
                ),
                ("request".to_string(), r.to_string()),
                ("subtask_index".to_string(), i.to_string()),
                (
                    "task_name".to_string(),
                    format!("{}-{i}", "Source: kafka -> Map -> Filter".repeat(8)),
                ),
            ];
            (labels, vec![(T0_MS + r as i64, (r * 1_000_000 + i) as f64)])
        })
        .collect()
}

fn remote_write_request(series: &[OwnedSeries]) -> Request<Body> {
    let specs: Vec<SeriesSpec<'_>> = series
        .iter()
        .map(|(l, s)| {
            (
                l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
                s.clone(),
            )
        })
        .collect();
    Request::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(Body::from(remote_write_body(&specs)))
        .unwrap()
}

/// The value of a one-element instant vector answer.
fn scalar_of(answer: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(answer).unwrap();
    let value = &v["data"]["result"][0]["value"][1];
    value
        .as_str()
        .unwrap_or_else(|| panic!("no value in {answer}"))
        .parse()
        .unwrap()
}

async fn query_scalar(st: &SharedState, promql: &str, at_s: i64) -> f64 {
    let uri = format!(
        "/api/v1/query?query={}&time={at_s}",
        promql
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace('=', "%3D")
            .replace('+', "%2B")
    );
    let (s, b) = get(st, &uri).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    scalar_of(&b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_at_once_of_mixed_sizes_all_decode() {
    let (st, _dir) = state(&["--ingest.workers", "2"]);
    // Large and small remote_write requests and line protocol bodies, all at once: more
    // requests than workers, so sets are handed from request to request while others wait.
    let mut tasks = Vec::new();
    for r in 0..24usize {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let (s, _, b) = if r % 3 == 2 {
                let lines: String = (0..(if r % 2 == 0 { 3000 } else { 2 }))
                    .map(|i| {
                        format!(
                            "lp_probe,request={r},subtask_index={i} value={i} {}\n",
                            T0_MS + r as i64
                        )
                    })
                    .collect();
                let req = Request::post("/write?precision=ms")
                    .body(Body::from(lines))
                    .unwrap();
                send(&st, req).await
            } else {
                let n = if r % 2 == 0 { 2000 } else { 3 };
                send(&st, remote_write_request(&series_of_request(r, n))).await
            };
            assert_eq!(s, StatusCode::NO_CONTENT, "request {r}: {b}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let at = T0_MS / 1000 + 10;
    let mut want_rw = 0.0;
    let mut want_rw_sum = 0.0;
    let mut want_lp = 0.0;
    for r in 0..24usize {
        let n = if r % 2 == 0 { 2000 } else { 3 };
        if r % 3 == 2 {
            want_lp += if r % 2 == 0 { 3000.0 } else { 2.0 };
        } else {
            want_rw += n as f64;
            want_rw_sum += (0..n).map(|i| (r * 1_000_000 + i) as f64).sum::<f64>();
        }
    }
    let rw = "flink_taskmanager_job_task_operator_numRecordsIn";
    assert_eq!(
        query_scalar(&st, &format!("count({rw})"), at).await,
        want_rw
    );
    assert_eq!(
        query_scalar(&st, &format!("sum({rw})"), at).await,
        want_rw_sum
    );
    assert_eq!(
        query_scalar(&st, "count(lp_probe_value)", at).await,
        want_lp
    );
    assert_eq!(
        query_scalar(&st, "count({request=~\".+\"})", at).await,
        want_rw + want_lp
    );
    // No more sets than workers were ever made or kept.
    let (_, m) = get(&st, "/metrics").await;
    let metric = |name: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing in {m}"))
    };
    assert!(
        metric("eddy_ingest_buffer_sets_created_total ") <= 2.0,
        "{m}"
    );
    assert!(metric("eddy_ingest_buffer_sets_idle ") <= 2.0, "{m}");
    // Steady small requests from now on: the set they use is trimmed to what they need, and
    // the one they leave idle is given back at the next look.
    let big = metric("eddy_ingest_buffer_idle_bytes ");
    st.ingest_scratch.release_unused();
    for r in 100..140usize {
        let (s, _, b) = send(&st, remote_write_request(&series_of_request(r, 2))).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    }
    assert!(st.ingest_scratch.release_unused());
    assert_eq!(st.ingest_scratch.idle_sets(), 1);
    let (_, m) = get(&st, "/metrics").await;
    let small: f64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("eddy_ingest_buffer_idle_bytes ")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap();
    assert!(
        small < big / 4.0 && small < 1e6,
        "kept {small} bytes after small requests (was {big})"
    );
}

/// How a request body is framed on the wire.
#[derive(Clone, Copy)]
enum Framing {
    /// `Content-Length` with this value (which may differ from the bytes sent).
    Length(usize),
    /// Chunked transfer encoding, ended with the last chunk.
    Chunked,
    /// Chunked, and the client stops without the last chunk (waiting for an early answer).
    ChunkedUnfinished,
}

/// Sends `body` to the live server at `addr` as HTTP/1.1, in pieces of `piece` bytes with a
/// pause after each (so hyper hands the body over in several frames). Returns the answer.
async fn send_in_pieces(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &str,
    body: &[u8],
    piece: usize,
    framing: Framing,
) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let chunked = !matches!(framing, Framing::Length(_));
    let length = match framing {
        Framing::Length(n) => format!("content-length: {n}\r\n"),
        _ => "transfer-encoding: chunked\r\n".to_string(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{headers}{length}\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    for part in body.chunks(piece) {
        out.clear();
        if chunked {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(part);
        }
        conn.write_all(&out).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if matches!(framing, Framing::Chunked) {
        conn.write_all(b"0\r\n\r\n").await.unwrap();
    }
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_in_many_pieces_decode_as_one() {
    let (st, _dir) = state(&[]);
    let addr = serve(st.clone()).await;
    let lines: String = (0..400)
        .map(|i| format!("pieces_probe,subtask_index={i} value={i} {}\n", T0_MS))
        .collect();
    for framing in [Framing::Length(lines.len()), Framing::Chunked] {
        let answer = send_in_pieces(
            addr,
            "/write?precision=ms",
            "",
            lines.as_bytes(),
            997,
            framing,
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    }
    let series = series_of_request(7, 300);
    let req = remote_write_request(&series);
    let body = http_body_util::BodyExt::collect(req.into_body())
        .await
        .unwrap()
        .to_bytes();
    let answer = send_in_pieces(
        addr,
        "/api/v1/write",
        "content-type: application/x-protobuf\r\ncontent-encoding: snappy\r\n",
        &body,
        1000,
        Framing::Chunked,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let at = T0_MS / 1000 + 10;
    assert_eq!(
        query_scalar(&st, "count({subtask_index=~\".+\",request=\"7\"})", at).await,
        300.0
    );
    let sum: f64 = (0..400).map(f64::from).sum();
    assert_eq!(query_scalar(&st, "sum(pieces_probe_value)", at).await, sum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_holds_however_the_body_arrives() {
    let (st, _dir) = state(&["--ingest.max-body-bytes", "10000"]);
    let addr = serve(st.clone()).await;
    let lines: String = (0..1000)
        .map(|i| format!("limit_probe,subtask_index={i} value={i} {}\n", T0_MS))
        .collect();
    assert!(lines.len() > 10_000);
    // Announced too long: refused before any of the body is read.
    let answer = send_in_pieces(
        addr,
        "/write?precision=ms",
        "",
        &[],
        4000,
        Framing::Length(lines.len()),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked, so only counting the bytes finds it: refused once past the limit.
    let answer = send_in_pieces(
        addr,
        "/write?precision=ms",
        "",
        &lines.as_bytes()[..12_000],
        4000,
        Framing::ChunkedUnfinished,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Just under the limit, in pieces: accepted.
    let cut = lines[..9_990].rfind('\n').unwrap() + 1;
    let answer = send_in_pieces(
        addr,
        "/write?precision=ms",
        "",
        &lines.as_bytes()[..cut],
        1000,
        Framing::Chunked,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let (s, b) = get(
        &st,
        "/api/v1/query?query=count(limit_probe_value)&time=1700000010",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(scalar_of(&b), lines[..cut].lines().count() as f64);
}
