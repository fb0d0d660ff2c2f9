//! The scraper wired into the server: `--config.file` with `scrape_configs` pulls a
//! PrometheusReporter-style endpoint (a real Flink scrape served on loopback), and the data is
//! queryable with `job`/`instance` labels and `up`; `/api/v1/targets` reports the target.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve_scrape(body: String) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_scrape_configs_pull_a_flink_endpoint() {
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/flink/sample-scrape.prom"
    ))
    .unwrap();
    let target = serve_scrape(body).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("eddy.yml");
    std::fs::write(
        &cfg,
        format!("scrape_configs:\n  - job_name: flink\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let (st, _data) = support::state(&["--config.file", cfg.to_str().unwrap()]);
    eddy::server::reload_config(&st).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let instance = target.to_string();
    loop {
        let (_, b) = support::get(&st, "/api/v1/query?query=up").await;
        if b.contains(r#""job":"flink""#) && b.contains(&instance) && b.contains(r#""1"]"#) {
            break;
        }
        assert!(Instant::now() < deadline, "no up=1 from the scraper: {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, b) = support::get(&st, "/api/v1/query?query=flink_jobmanager_taskSlotsTotal").await;
    assert!(
        b.contains(r#""job":"flink""#) && b.contains(r#""host":"localhost""#),
        "{b}"
    );
    // The scrape's samples are appended before its status is recorded (as in Prometheus), so
    // the target may still read "unknown" for a moment after `up` is queryable.
    loop {
        let (_, t) = support::get(&st, "/api/v1/targets").await;
        if t.contains(r#""health":"up""#) && t.contains(r#""scrapePool":"flink""#) {
            break;
        }
        assert!(Instant::now() < deadline, "target never reported up: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A broken config is refused with a message naming the file; the scraper keeps running.
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: flink\n    scrape_interval: soon\n",
    )
    .unwrap();
    let err = eddy::server::reload_config(&st).unwrap_err();
    assert!(err.contains("eddy.yml"), "{err}");
    let scraper = st.scraper.lock().take().unwrap();
    tokio::task::spawn_blocking(move || scraper.stop())
        .await
        .unwrap();
}
