//! Replays the requests Grafana's Prometheus data source makes (Grafana cannot be installed
//! here), and runs every panel of the shipped Flink dashboard (`docs/grafana/`) against eddy
//! loaded with a real Flink scrape.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use axum::http::StatusCode;
use eddy_ingest::text::{parse_text, TextOptions};
use eddy_storage::WriteBatch;
use support::*;

const T0: i64 = 1_700_000_000; // seconds
const STEPS: i64 = 40;

fn load_flink_scrapes(st: &eddy::http::SharedState) -> usize {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/flink/sample-scrape.prom"
    );
    let body = std::fs::read_to_string(path)
        .expect("../shared/flink/sample-scrape.prom beside the checkout");
    let mut series = 0;
    for i in 0..STEPS {
        let opts = TextOptions {
            default_timestamp_ms: (T0 + i * 15) * 1000,
            openmetrics: false,
        };
        let mut batch = WriteBatch::new();
        let mut meta = Vec::new();
        parse_text(&body, &opts, &mut batch, &mut meta).unwrap();
        st.metadata.update(&meta);
        series = batch.series.len();
        let o = st.db.append(&mut batch).unwrap();
        assert_eq!(o.rejected_total(), 0, "{:?}", o.messages);
    }
    series
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

fn ok_json(s: StatusCode, body: &str) -> serde_json::Value {
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    v
}

#[tokio::test]
async fn grafana_data_source_requests() {
    let (st, _dir) = state(&[]);
    assert_eq!(load_flink_scrapes(&st), 249);
    let (start, end) = (T0.to_string(), (T0 + STEPS * 15).to_string());
    // "Save & test": an instant query, then build info.
    let (s, b) = post_form(&st, "/api/v1/query", "query=1%2B1&time=4").await;
    assert_eq!(
        ok_json(s, &b)["data"]["result"],
        serde_json::json!([4, "2"])
    );
    let (s, b) = get(&st, "/api/v1/status/buildinfo").await;
    assert!(ok_json(s, &b)["data"]["version"]
        .as_str()
        .unwrap()
        .starts_with('3'));
    // Metric browser and variable queries.
    let (s, b) = get(
        &st,
        &format!("/api/v1/label/__name__/values?start={start}&end={end}"),
    )
    .await;
    let names = ok_json(s, &b);
    assert!(
        names["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "flink_jobmanager_job_numRestarts"),
        "{b}"
    );
    let (s, b) = get(&st, &format!("/api/v1/labels?start={start}&end={end}")).await;
    assert!(ok_json(s, &b)["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "task_attempt_id"));
    let q = form(&[
        ("match[]", "flink_jobmanager_job_numRestarts"),
        ("start", &start),
        ("end", &end),
    ]);
    let (s, b) = get(&st, &format!("/api/v1/label/job_name/values?{q}")).await;
    assert_eq!(
        ok_json(s, &b)["data"],
        serde_json::json!(["metrics_probe_job"])
    );
    let q = form(&[
        ("match[]", "{__name__=~\"flink_taskmanager_job_task_.*\"}"),
        ("start", &start),
        ("end", &end),
        ("limit", "40000"),
    ]);
    let (s, b) = post_form(&st, "/api/v1/series", &q).await;
    let series = ok_json(s, &b);
    assert!(series["data"].as_array().unwrap().len() > 100, "{b}");
    let (s, b) = get(
        &st,
        "/api/v1/metadata?metric=flink_jobmanager_job_numRestarts",
    )
    .await;
    assert_eq!(
        ok_json(s, &b)["data"]["flink_jobmanager_job_numRestarts"][0]["type"],
        "gauge",
        "{b}"
    );
    let (s, b) = get(&st, &format!("/api/v1/series?match[]=flink_jobmanager_taskSlotsTotal&start={start}&end={end}&limit=1")).await;
    let v = ok_json(s, &b);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_dashboard_panel_answers_with_data() {
    let (st, _dir) = state(&[]);
    load_flink_scrapes(&st);
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/grafana/flink-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let var_query = dash["templating"]["list"][0]["definition"]
        .as_str()
        .unwrap();
    assert_eq!(
        var_query,
        "label_values(flink_jobmanager_job_numRestarts, job_name)"
    );
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            // What Grafana sends with "All" selected and a 15 s scrape interval.
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$job_name", ".+")
                .replace("$__rate_interval", "1m");
            let q = form(&[
                ("query", &expr),
                ("start", &(T0 + 300).to_string()),
                ("end", &(T0 + STEPS * 15).to_string()),
                ("step", "15"),
            ]);
            let (s, b) = post_form(&st, "/api/v1/query_range", &q).await;
            let v = ok_json(s, &b);
            let result = v["data"]["result"].as_array().unwrap();
            assert!(
                !result.is_empty(),
                "panel {:?} ({expr}) returned no series",
                p["title"]
            );
            assert!(result
                .iter()
                .all(|s| !s["values"].as_array().unwrap().is_empty()));
        }
    }
}
