//! Real client: Prometheus's `promtool query …` against eddy served on a loopback socket.
//! Needs `promtool` (Debian: `apt-get install prometheus`); fails, never skips, without it.

mod support;

use std::net::SocketAddr;
use std::process::Command;

use axum::http::StatusCode;
use support::*;

/// Serves `st` on 127.0.0.1 with a free port.
async fn serve(st: eddy::http::SharedState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, eddy::http::app(st)).await.unwrap();
    });
    addr
}

fn promtool_path() -> String {
    let path = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    match Command::new(&path).arg("--version").output() {
        Ok(o) if o.status.success() => path,
        other => panic!(
            "promtool is required for this test but `{path} --version` failed ({other:?}); \
             install it with `apt-get install -y prometheus` (or set PROMTOOL=/path/to/promtool)"
        ),
    }
}

/// Runs `promtool query <args>` off the async threads; returns stdout, failing on a non-zero exit.
async fn promtool(bin: &str, args: Vec<String>) -> String {
    let bin = bin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&bin)
            .arg("query")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "promtool query failed: {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout
}

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_eddy() {
    let bin = promtool_path();
    let (st, _dir) = state(&[]);
    // numRecordsIn counts up by 150 every 15s on subtask 0 and by 300 on subtask 1.
    let series: Vec<(Vec<(&str, &str)>, Vec<(i64, f64)>)> = ["0", "1"]
        .iter()
        .enumerate()
        .map(|(k, sub)| {
            (
                vec![
                    ("__name__", "flink_taskmanager_job_task_numRecordsIn"),
                    ("job_name", "etl"),
                    ("subtask_index", *sub),
                ],
                (0..41)
                    .map(|i| (T0 + i * 15_000, (i * 150 * (k as i64 + 1)) as f64))
                    .collect(),
            )
        })
        .collect();
    let (s, b) = remote_write(&st, &series).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let url = format!("http://{}", serve(st).await);
    let t = |ms: i64| format!("{}", ms / 1000);

    let out = promtool(
        &bin,
        vec![
            "instant".into(),
            url.clone(),
            "sum by (job_name) (flink_taskmanager_job_task_numRecordsIn)".into(),
            format!("--time={}", t(T0 + 300_000)),
        ],
    )
    .await;
    // 20 steps in: 3000 + 6000.
    assert_eq!(out, "{job_name=\"etl\"} => 9000 @[1700000300]\n");

    let out = promtool(
        &bin,
        vec![
            "range".into(),
            url.clone(),
            "flink_taskmanager_job_task_numRecordsIn{subtask_index=\"1\"}".into(),
            format!("--start={}", t(T0 + 60_000)),
            format!("--end={}", t(T0 + 90_000)),
            "--step=15s".into(),
        ],
    )
    .await;
    assert_eq!(
        out,
        "flink_taskmanager_job_task_numRecordsIn{job_name=\"etl\", subtask_index=\"1\"} =>\n\
         1200 @[1700000060]\n\
         1500 @[1700000075]\n\
         1800 @[1700000090]\n"
    );

    let out = promtool(
        &bin,
        vec![
            "series".into(),
            url.clone(),
            "--match=flink_taskmanager_job_task_numRecordsIn".into(),
            format!("--start={}", t(T0)),
            format!("--end={}", t(T0 + 600_000)),
        ],
    )
    .await;
    assert_eq!(
        out,
        "{__name__=\"flink_taskmanager_job_task_numRecordsIn\", job_name=\"etl\", subtask_index=\"0\"}\n\
         {__name__=\"flink_taskmanager_job_task_numRecordsIn\", job_name=\"etl\", subtask_index=\"1\"}\n"
    );

    // Without --start/--end promtool asks for the last 5 minutes only.
    let range = [
        format!("--start={}", t(T0)),
        format!("--end={}", t(T0 + 600_000)),
    ];
    let labels = |name: &str| {
        let mut v = vec!["labels".to_string(), url.clone(), name.to_string()];
        v.extend(range.iter().cloned());
        v
    };
    let out = promtool(&bin, labels("subtask_index")).await;
    assert_eq!(out, "0\n1\n");
    let out = promtool(&bin, labels("__name__")).await;
    assert_eq!(out, "flink_taskmanager_job_task_numRecordsIn\n");
    let out = promtool(&bin, labels("absent_label")).await;
    assert_eq!(out, "");
}
