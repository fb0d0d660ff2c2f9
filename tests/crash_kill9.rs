//! Crash safety: runs the real `eddy` binary as a child, `kill -9`s it in the middle of
//! ingest 20 times, restarts it on the same data directory each time, and proves that every
//! sample whose request was acknowledged is there afterwards.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy_storage::{Db, DbOptions, Querier};

fn start(dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .args(["--storage.wal.sync", "interval:1s"])
        .env("EDDY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eddy")
}

/// One HTTP/1.1 request on a fresh connection; returns the status code.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let line = String::from_utf8_lossy(&resp);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response {line:?}")))
}

fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(200) = http(port, "GET", "/-/ready", &[], b"") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("eddy exited during start-up: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("eddy did not become ready within 60 s");
}

const SERIES: usize = 20;

type OwnedSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

#[test]
fn every_acknowledged_sample_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // (series, timestamp) -> value of every acknowledged sample.
    let acked: Arc<Mutex<BTreeMap<(usize, i64), f64>>> = Arc::default();
    let base = 1_700_000_000_000i64;
    let mut seq = 0i64;
    for round in 0..20u64 {
        let port = support::free_port();
        let mut child = start(dir.path(), port);
        wait_ready(port, &mut child);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, acked) = (stop.clone(), acked.clone());
            let first = seq;
            std::thread::spawn(move || {
                let mut n = first;
                while !stop.load(Ordering::Relaxed) {
                    let ts = base + n * 1000;
                    let series: Vec<OwnedSeries> = (0..SERIES)
                        .map(|i| {
                            (
                                vec![
                                    ("__name__".into(), "crash_probe".into()),
                                    ("series".into(), i.to_string()),
                                ],
                                vec![(ts, (n * 31 + i as i64) as f64 + 0.25)],
                            )
                        })
                        .collect();
                    let refs: Vec<support::SeriesSpec<'_>> = series
                        .iter()
                        .map(|(l, s)| {
                            (
                                l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect(),
                                s.clone(),
                            )
                        })
                        .collect();
                    let body = support::remote_write_body(&refs);
                    let headers = [
                        ("Content-Type", "application/x-protobuf"),
                        ("Content-Encoding", "snappy"),
                    ];
                    match http(port, "POST", "/api/v1/write", &headers, &body) {
                        Ok(204) => {
                            let mut a = acked.lock().unwrap();
                            for (i, (_, s)) in series.iter().enumerate() {
                                a.insert((i, s[0].0), s[0].1);
                            }
                        }
                        Ok(code) => panic!("unexpected status {code}"),
                        Err(_) => {} // the server died mid-request: not acknowledged
                    }
                    n += 1;
                }
                n
            })
        };
        // Kill at a different point of the ingest stream every round.
        std::thread::sleep(Duration::from_millis(80 + (round * 37) % 200));
        child.kill().expect("kill -9");
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        seq = writer.join().unwrap() + 1;
    }
    // Every round must have acknowledged something, or the test proves nothing.
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 20 * SERIES,
        "only {} samples acknowledged",
        acked.len()
    );
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    let got = db
        .select(
            &[eddy_storage::Matcher::equal("__name__", "crash_probe")],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    let mut stored: BTreeMap<(usize, i64), f64> = BTreeMap::new();
    for s in &got {
        let i: usize = s.labels.get("series").unwrap().parse().unwrap();
        for (t, v) in s.timestamps.iter().zip(&s.values) {
            stored.insert((i, *t), *v);
        }
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|(k, v)| stored.get(k) != Some(v))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged samples missing or wrong, e.g. {missing:?}",
        acked
            .iter()
            .filter(|(k, v)| stored.get(k) != Some(v))
            .count()
    );
}
