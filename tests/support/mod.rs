//! Test helpers: a server state on a temporary data directory and one-shot requests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use eddy::config::ServeArgs;
use eddy::http::{app, SharedState};
use eddy_storage::Db;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Default serve flags plus `extra` (e.g. `["--ingest.drop-label", "x"]`).
pub fn args(extra: &[&str]) -> ServeArgs {
    let mut v = vec!["eddy"];
    v.extend_from_slice(extra);
    Args::parse_from(v).serve
}

/// A server state on a fresh temp dir (kept alive by the returned guard).
pub fn state(extra: &[&str]) -> (SharedState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let a = args(extra);
    let db = Arc::new(Db::open(dir.path(), eddy::server::db_options(&a)).unwrap());
    (eddy::server::state(db, &a), dir)
}

/// Sends a request through the router; returns status, content-type and body text.
pub async fn send(st: &SharedState, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

pub async fn get(st: &SharedState, uri: &str) -> (StatusCode, String) {
    let (s, _, b) = send(st, Request::get(uri).body(Body::empty()).unwrap()).await;
    (s, b)
}

pub async fn post_form(st: &SharedState, uri: &str, form: &str) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    let (s, _, b) = send(st, req).await;
    (s, b)
}

/// `POST /api/v1/admin/flush`: the head cut into blocks. Returns status and body.
pub async fn flush(st: &SharedState) -> (StatusCode, String) {
    let req = Request::post("/api/v1/admin/flush")
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = send(st, req).await;
    (s, b)
}

/// One series to write: labels and samples.
pub type SeriesSpec<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// A snappy-compressed remote_write body.
pub fn remote_write_body(series: &[SeriesSpec<'_>]) -> Vec<u8> {
    let mut raw = Vec::new();
    eddy_ingest::remote_write::encode_write_request(series, &mut raw);
    let mut out = Vec::new();
    eddy_ingest::remote_write::compress_snappy(&raw, &mut out).unwrap();
    out
}

pub async fn remote_write(st: &SharedState, series: &[SeriesSpec<'_>]) -> (StatusCode, String) {
    let req = Request::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(Body::from(remote_write_body(series)))
        .unwrap();
    let (s, _, b) = send(st, req).await;
    (s, b)
}

/// A loopback TCP port that was free a moment ago (for starting a real server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves `st` on a free loopback port; returns its address.
pub async fn serve(st: SharedState) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app(st)).await.unwrap();
    });
    addr
}
