//! Real client: a Prometheus server (Debian's 2.42) reads eddy through `remote_read`, and its
//! query API must answer with exactly eddy's values for a series only eddy has.
//! Needs `prometheus` (Debian: `apt-get install prometheus`); fails, never skips, without it.
#![allow(clippy::unwrap_used)] // Tests fail loudly on any unexpected error.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use support::*;

/// Kills the Prometheus process when the test ends, also on a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.0 GET (so the server closes the connection and sends no chunked body).
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

async fn get_json(addr: String, path: String) -> serde_json::Value {
    let (status, body) = tokio::task::spawn_blocking(move || http_get(&addr, &path).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_eddy_through_remote_read() {
    let bin = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".to_string());
    if !matches!(Command::new(&bin).arg("--version").output(), Ok(o) if o.status.success()) {
        panic!(
            "the prometheus server binary is required for this test but `{bin} --version` \
             failed; install it with `apt-get install -y prometheus` (or set PROMETHEUS=/path)"
        );
    }
    let (st, _dir) = state(&[]);
    // Values with long fractions, a NaN and negative zero, at uneven timestamps.
    let samples: Vec<(i64, f64)> = (0..400)
        .map(|i| {
            (
                T0 + i * 15_000 + (i % 7) * 3,
                (i as f64 * 0.1).sin() * 1e3 + 0.1,
            )
        })
        .collect();
    let mut other = samples.clone();
    other[100].1 = f64::NAN;
    other[101].1 = -0.0;
    let (s, b) = remote_write(
        &st,
        &[
            (
                vec![("__name__", "eddy_only_metric"), ("job", "a")],
                samples.clone(),
            ),
            (vec![("__name__", "eddy_only_metric"), ("job", "b")], other),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    // Recent samples for the federation scrape: two live series and one ended by a stale marker.
    let now = eddy::http::now_ms();
    let (s, b) = remote_write(
        &st,
        &[
            (
                vec![("__name__", "federated_metric"), ("k", "1")],
                vec![(now - 20_000, 1.5)],
            ),
            (
                vec![("__name__", "federated_metric"), ("k", "2")],
                vec![(now - 20_000, 2e6)],
            ),
            (
                vec![("__name__", "federated_metric"), ("k", "gone")],
                vec![
                    (now - 20_000, 1.0),
                    (now - 10_000, eddy_storage::stale_nan()),
                ],
            ),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let eddy_addr = serve(st).await;

    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1h\n\
             remote_read:\n  - url: http://{eddy_addr}/api/v1/read\n    read_recent: true\n\
             scrape_configs:\n  - job_name: federate\n    honor_labels: true\n    scrape_interval: 1s\n\
             \x20   metrics_path: /federate\n    params:\n      'match[]': ['{{__name__=\"federated_metric\"}}']\n\
             \x20   static_configs:\n      - targets: ['{eddy_addr}']\n"
        ),
    )
    .unwrap();
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let log_path = tmp.path().join("prometheus.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut prom = KillOnDrop(child);

    let began = Instant::now();
    loop {
        let a = prom_addr.clone();
        let ready = tokio::task::spawn_blocking(move || http_get(&a, "/-/ready"))
            .await
            .unwrap();
        if matches!(ready, Ok((200, _))) {
            break;
        }
        let exited = prom.0.try_wait().unwrap();
        if exited.is_some() || began.elapsed() > Duration::from_secs(60) {
            panic!(
                "prometheus did not become ready ({exited:?}); its log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let instant = "/api/v1/query?query=eddy_only_metric&time=1700003000";
    let range = "/api/v1/query_range?query=eddy_only_metric&start=1700001000&end=1700002500&step=7";
    let agg = "/api/v1/query?query=sum(eddy_only_metric)&time=1700002000.5";
    for path in [instant, range, agg] {
        let from_prom = get_json(prom_addr.clone(), path.to_string()).await;
        let from_eddy = get_json(eddy_addr.to_string(), path.to_string()).await;
        let result = &from_prom["data"]["result"];
        assert!(
            result.as_array().is_some_and(|r| !r.is_empty()),
            "prometheus returned no data for {path}: {from_prom}\nits log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        assert_eq!(
            from_prom["data"], from_eddy["data"],
            "prometheus and eddy differ for {path}"
        );
    }
    // Exact value check independent of eddy's own query engine: the raw sample at its time.
    let t = samples[200].0;
    let path = format!(
        "/api/v1/query?query=eddy_only_metric%7Bjob%3D%22a%22%7D&time={}.{:03}",
        t / 1000,
        t % 1000
    );
    let v = get_json(prom_addr.clone(), path).await;
    let got = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(got.parse::<f64>().unwrap(), samples[200].1, "{v}");

    // Prometheus scrapes eddy's /federate: the exposition must parse (up == 1) and carry the two
    // live series (the stale one is left out).
    let began = Instant::now();
    loop {
        let q = "/api/v1/query?query=scrape_samples_scraped%7Bjob%3D%22federate%22%7D%20and%20on()%20up%7Bjob%3D%22federate%22%7D%3D%3D1";
        let v = get_json(prom_addr.clone(), q.to_string()).await;
        if let Some(got) = v["data"]["result"][0]["value"][1].as_str() {
            assert_eq!(got, "2", "{v}");
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "prometheus has not scraped /federate successfully: {v}\nits log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(prom);
}
