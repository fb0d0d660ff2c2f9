//! End to end through the router: ingest in every format, then the query API.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::*;

#[tokio::test]
async fn remote_write_then_instant_and_range_query() {
    let (st, _dir) = state(&[]);
    let samples: Vec<(i64, f64)> = (0..60)
        .map(|i| (1_700_000_000_000 + i * 10_000, (i * 100) as f64))
        .collect();
    let (s, b) = remote_write(
        &st,
        &[
            (
                vec![
                    (
                        "__name__",
                        "flink_taskmanager_job_task_operator_numRecordsIn",
                    ),
                    ("job_name", "j"),
                    ("subtask_index", "0"),
                ],
                samples.clone(),
            ),
            (
                vec![
                    (
                        "__name__",
                        "flink_taskmanager_job_task_operator_numRecordsIn",
                    ),
                    ("job_name", "j"),
                    ("subtask_index", "1"),
                ],
                samples.clone(),
            ),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = get(
        &st,
        "/api/v1/query?query=sum(flink_taskmanager_job_task_operator_numRecordsIn)&time=1700000590",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000590,"11800"]}]}}"#
    );
    let (s, b) = post_form(
        &st,
        "/api/v1/query_range",
        "query=rate(flink_taskmanager_job_task_operator_numRecordsIn%7Bsubtask_index%3D%220%22%7D%5B1m%5D)&start=1700000300&end=1700000320&step=10",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job_name":"j","subtask_index":"0"},"values":[[1700000300,"10"],[1700000310,"10"],[1700000320,"10"]]}]},"infos":["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"flink_taskmanager_job_task_operator_numRecordsIn\""]}"#
    );
    let (s, b) = get(&st, "/api/v1/label/subtask_index/values").await;
    assert_eq!(
        (s, b.as_str()),
        (StatusCode::OK, r#"{"status":"success","data":["0","1"]}"#)
    );
    let (s, b) = get(&st, "/api/v1/series?match[]=%7Bsubtask_index%3D%221%22%7D").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b.contains(r#""subtask_index":"1""#) && !b.contains(r#""subtask_index":"0""#),
        "{b}"
    );
}

#[tokio::test]
async fn remote_write_rejects_bad_requests_with_clear_errors() {
    let (st, _dir) = state(&[]);
    let req = Request::post("/api/v1/write")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (s, _, b) = send(&st, req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    let req = Request::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(Body::from(vec![0xff, 0xff, 0xff, 0x01, 0x02]))
        .unwrap();
    let (s, _, b) = send(&st, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("snappy"), "{b}");
    // A valid series is stored even when another one in the request is out of order.
    let (s, _) = remote_write(&st, &[(vec![("__name__", "m")], vec![(10_000_000, 1.0)])]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = remote_write(
        &st,
        &[
            (vec![("__name__", "m")], vec![(1_000, 2.0)]),
            (vec![("__name__", "n")], vec![(10_000_000, 3.0)]),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("out_of_order") && b.contains("1 stored"), "{b}");
    let (_, b) = get(&st, "/api/v1/query?query=n&time=10000").await;
    assert!(b.contains(r#""value":[10000,"3"]"#), "{b}");
}

#[tokio::test]
async fn influx_line_protocol_as_flink_sends_it() {
    let (st, _dir) = state(&[]);
    let body = "taskmanager_job_task_operator_numRecordsIn,host=localhost,job_name=metrics-probe-job,subtask_index=1 count=42i 1700000000000000000\n\
                taskmanager_job_task_isBackPressured,host=localhost value=\"false\" 1700000000000000000\n";
    let req = Request::post("/write?db=flink&rp=&precision=n&consistency=one")
        .body(Body::from(body))
        .unwrap();
    let (s, _, b) = send(&st, req).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, b) = get(
        &st,
        "/api/v1/query?query=flink_taskmanager_job_task_operator_numRecordsIn&time=1700000000",
    )
    .await;
    assert!(b.contains(r#""value":[1700000000,"42"]"#), "{b}");
    assert!(b.contains(r#""job_name":"metrics-probe-job""#), "{b}");
    let req = Request::post("/write?precision=n")
        .body(Body::from("bad line without fields\n"))
        .unwrap();
    let (s, ct, b) = send(&st, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(ct, "application/json");
    assert!(b.contains("\"error\"") && b.contains("line 1"), "{b}");
}

#[tokio::test]
async fn pushgateway_put_replaces_group_with_stale_markers_and_delete_ends_it() {
    let (st, _dir) = state(&[]);
    let put = |body: &'static str| {
        Request::put("/metrics/job/flinkprobe0123/cluster/probe")
            .header("content-type", "text/plain; version=0.0.4")
            .body(Body::from(body))
            .unwrap()
    };
    let (s, _, b) = send(&st, put("a{x=\"1\"} 1\nb 2\n")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = get(&st, "/api/v1/query?query=a").await;
    assert!(
        b.contains(r#""cluster":"probe""#) && b.contains(r#""job":"flinkprobe0123""#),
        "{b}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (s, _, _) = send(&st, put("b 3\n")).await;
    assert_eq!(s, StatusCode::OK);
    // `a` got a stale marker, so an instant query no longer returns it.
    let (_, b) = get(&st, "/api/v1/query?query=a").await;
    assert!(b.contains(r#""result":[]"#), "{b}");
    let (_, b) = get(&st, "/api/v1/query?query=b").await;
    assert!(b.contains(r#""3"]"#), "{b}");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let req = Request::delete("/metrics/job/flinkprobe0123/cluster/probe")
        .body(Body::empty())
        .unwrap();
    let (s, _, _) = send(&st, req).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, b) = get(&st, "/api/v1/query?query=b").await;
    assert!(b.contains(r#""result":[]"#), "{b}");
    let req = Request::put("/metrics/job/")
        .body(Body::from("a 1\n"))
        .unwrap();
    let (s, _, _) = send(&st, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn query_api_errors_match_prometheus() {
    let (st, _dir) = state(&[]);
    let (s, b) = get(&st, "/api/v1/query?query=sum(").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b.starts_with(
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": "#
        ),
        "{b}"
    );
    let (s, b) = get(&st, "/api/v1/query_range?query=1&start=0&end=100000&step=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b.contains("exceeded maximum resolution of 11,000 points"),
        "{b}"
    );
    let (s, b) = get(&st, "/api/v1/query_range?query=1&start=10&end=0&step=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = get(&st, "/api/v1/query_range?query=1&start=0&end=10&step=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = get(&st, "/api/v1/query?query=1&time=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("invalid parameter \\\"time\\\""), "{b}");
    let (s, b) = get(&st, "/api/v1/series").await;
    assert_eq!(
        (s, b.contains("no match[] parameter provided")),
        (StatusCode::BAD_REQUEST, true)
    );
    // Grafana's health check.
    let (s, b) = post_form(&st, "/api/v1/query", "query=1%2B1&time=4").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
    let (s, b) = get(&st, "/api/v1/status/buildinfo").await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.contains(r#""version":"3.5.0""#), "{b}");
    let req = Request::delete("/api/v1/query")
        .body(Body::empty())
        .unwrap();
    let (s, _, _) = send(&st, req).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn ready_metrics_flush_and_snapshot() {
    let (st, dir) = state(&[]);
    let (s, _) = get(&st, "/-/ready").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = remote_write(
        &st,
        &[(
            vec![("__name__", "m")],
            vec![(1_000, 1.0), (2_000, 2.0), (7_300_000, 3.0)],
        )],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = flush(&st).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.contains(r#""blocks":[""#), "{b}");
    let (_, b) = get(&st, "/api/v1/query?query=m&time=2").await;
    assert!(b.contains(r#""2"]"#), "{b}");
    assert_eq!(st.db.blocks().len(), 2, "one block per 2 h partition");
    let compact = || {
        Request::post("/api/v1/admin/compact")
            .body(Body::empty())
            .unwrap()
    };
    let (s, _, b) = send(&st, compact()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let merged = st.db.blocks();
    assert_eq!(merged.len(), 1, "both merged into one: {b}");
    assert_eq!(v["data"]["blocks"][0], merged[0].meta().id.to_string());
    let (_, _, b) = send(&st, compact()).await;
    assert!(b.contains(r#""blocks":[]"#), "nothing left to merge: {b}");
    for (t, want) in [(2, r#""2"]"#), (7_300, r#""3"]"#)] {
        let (_, b) = get(&st, &format!("/api/v1/query?query=m&time={t}")).await;
        assert!(b.contains(want), "{b}");
    }
    let (s, _, b) = send(
        &st,
        Request::post("/api/v1/admin/tsdb/snapshot")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let name = v["data"]["name"].as_str().unwrap();
    assert!(dir.path().join("snapshots").join(name).is_dir());
    let (s, b) = get(&st, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b.contains("eddy_ingest_samples_total{format=\"remote_write\"} 3"),
        "{b}"
    );
}

#[tokio::test]
async fn series_limits_reject_with_a_named_limit_and_count() {
    let (st, _dir) = state(&[
        "--storage.max-series-per-metric",
        "2",
        "--storage.max-new-series-per-hour",
        "5",
    ]);
    let s = |i: &'static str| {
        (
            vec![("__name__", "flink_numRecordsIn"), ("task_attempt_id", i)],
            vec![(1_000, 1.0)],
        )
    };
    let (code, _) = remote_write(&st, &[s("a"), s("b")]).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, b) = remote_write(
        &st,
        &[s("c"), (vec![("__name__", "other")], vec![(1_000, 1.0)])],
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let err: serde_json::Value = serde_json::from_str(&b).unwrap();
    let err = err["error"].as_str().unwrap();
    assert!(
        err.contains("limit of 2 active series for metric \"flink_numRecordsIn\" reached")
            && err.contains("1 stored"),
        "{err}"
    );
    let (_, m) = get(&st, "/metrics").await;
    assert!(
        m.contains(
            "eddy_ingest_rejected_samples_total{format=\"remote_write\",reason=\"series_limit\"} 1"
        ),
        "{m}"
    );
}

#[tokio::test]
async fn bad_input_of_every_kind_gets_a_clear_4xx() {
    let (st, _dir) = state(&["--ingest.max-body-bytes", "1000"]);
    // Oversized ingest bodies: 413 before decoding.
    let big = vec![b'a'; 5000];
    let req = Request::post("/write").body(Body::from(big)).unwrap();
    let (s, _, _) = send(&st, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // A snappy block announcing more than the limit after decompression.
    let long = "x".repeat(900);
    let series: Vec<SeriesSpec<'_>> = vec![
        (
            vec![("__name__", "m"), ("v", long.as_str())],
            vec![(1, 1.0)]
        );
        3
    ];
    let req = Request::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(Body::from(remote_write_body(&series)))
        .unwrap();
    let (s, _, b) = send(&st, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert!(b.contains("exceeds the limit"), "{b}");
    // Query parameters: unknown ones are ignored (as Prometheus), bad ones are named.
    let (s, _) = get(&st, "/api/v1/query?query=1&nonsense=2").await;
    assert_eq!(s, StatusCode::OK);
    for (uri, needle) in [
        ("/api/v1/query?query=1&time=NaN", "time"),
        ("/api/v1/query?query=1&timeout=forever", "timeout"),
        ("/api/v1/query_range?query=1&start=0&end=10&step=-5", "step"),
        ("/api/v1/query_range?query=1&start=x&end=10&step=1", "start"),
        ("/api/v1/query?query=rate(m)", "range vector"),
        ("/api/v1/query?query=%7Ba%3D~%22(%22%7D", "regex"),
        ("/api/v1/labels?limit=-1", "limit"),
        ("/api/v1/series?match[]=rate(m%5B1m%5D)", "match[]"),
        ("/api/v1/query", "query"),
    ] {
        let (s, b) = get(&st, uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {b}");
        assert!(
            b.contains(r#""errorType":"bad_data""#) && b.contains(needle),
            "{uri}: {b}"
        );
    }
    // Invalid UTF-8 in a line-protocol body names the line.
    let req = Request::post("/write")
        .body(Body::from(vec![b'm', b' ', b'v', b'=', 0xff, b'\n']))
        .unwrap();
    let (s, _, b) = send(&st, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("line 1"), "{b}");
    // Garbage OTLP protobuf names the byte offset.
    let req = Request::post("/v1/metrics")
        .header("content-type", "application/x-protobuf")
        .body(Body::from(vec![0x0a, 0xff, 0xff]))
        .unwrap();
    let (s, _, b) = send(&st, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Nothing accepted before is lost by all of that.
    let (s, _) = remote_write(&st, &[(vec![("__name__", "kept")], vec![(1_000, 5.0)])]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, b) = get(&st, "/api/v1/query?query=kept&time=1").await;
    assert!(b.contains(r#""5"]"#), "{b}");
}

#[tokio::test]
async fn status_tsdb_and_empty_rule_endpoints_have_prometheus_shapes() {
    let (st, _dir) = state(&[]);
    let (s, _) = remote_write(
        &st,
        &[
            (
                vec![("__name__", "flink_busy"), ("task_attempt_id", "a")],
                vec![(1_000, 1.0)],
            ),
            (
                vec![("__name__", "flink_busy"), ("task_attempt_id", "b")],
                vec![(1_000, 1.0)],
            ),
            (
                vec![("__name__", "flink_idle"), ("task_attempt_id", "a")],
                vec![(1_000, 1.0)],
            ),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = get(&st, "/api/v1/status/tsdb").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["data"]["headStats"]["numSeries"], 3, "{b}");
    assert_eq!(
        v["data"]["seriesCountByMetricName"][0],
        serde_json::json!({"name": "flink_busy", "value": 2}),
        "{b}"
    );
    assert_eq!(
        v["data"]["labelValueCountByLabelName"][0],
        serde_json::json!({"name": "__name__", "value": 2}),
        "{b}"
    );
    for (uri, want) in [
        (
            "/api/v1/rules",
            r#"{"status":"success","data":{"groups":[]}}"#,
        ),
        (
            "/api/v1/alerts",
            r#"{"status":"success","data":{"alerts":[]}}"#,
        ),
        (
            "/api/v1/query_exemplars?query=flink_busy",
            r#"{"status":"success","data":[]}"#,
        ),
    ] {
        let (s, b) = get(&st, uri).await;
        assert_eq!((s, b.as_str()), (StatusCode::OK, want), "{uri}");
    }
}

#[tokio::test]
async fn query_answers_are_gzipped_when_asked_and_metrics_cover_the_wal() {
    let (st, _dir) = state(&[]);
    let (s, _) = remote_write(&st, &[(vec![("__name__", "m")], vec![(1_000, 1.0)])]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let req = Request::get("/api/v1/query?query=m&time=1")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(eddy::http::app(st.clone()), req)
        .await
        .unwrap();
    assert_eq!(
        resp.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    let (_, m) = get(&st, "/metrics").await;
    assert!(
        m.contains("eddy_wal_records_total 2") && m.contains("eddy_wal_group_commits_total"),
        "{m}"
    );
}

/// remote_write series seen before skip their labels; one that left the head since (here by
/// a flush) is stored again from its labels; label drops apply on both paths.
#[tokio::test]
async fn repeated_remote_write_series_are_stored_after_the_head_lets_them_go() {
    let (st, _dir) = state(&["--ingest.drop-label", "task_attempt_id"]);
    let series = |attempt: &'static str, t: i64, v: f64| {
        (
            vec![
                ("__name__", "flink_numRecordsIn"),
                ("task_attempt_id", attempt),
                ("subtask_index", "0"),
            ],
            vec![(t, v)],
        )
    };
    let created = || st.db.head_stats().series_created;
    let (s, b) = remote_write(&st, &[series("a", 1_000, 1.0)]).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!((created(), st.series_keys.len()), (1, 1));
    // The same label bytes again: a cache hit that the head resolves.
    let (s, b) = remote_write(&st, &[series("a", 2_000, 2.0)]).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!((created(), st.series_keys.len()), (1, 1));
    // Another attempt id, dropped at ingest: the same series, under its own cache entry.
    let (s, b) = remote_write(&st, &[series("b", 3_000, 3.0)]).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!((created(), st.series_keys.len()), (1, 2));
    // A flush moves everything into a block and the head forgets the series.
    let (s, b) = flush(&st).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(st.db.head_stats().series, 0);
    // Known bytes, unknown to the head: appended again with labels (a new head series).
    let (s, b) = remote_write(&st, &[series("a", 7_200_000 * 2, 4.0)]).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(created(), 2);
    let (s, b) = remote_write(&st, &[series("b", 7_200_000 * 2 + 1_000, 5.0)]).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(created(), 2);
    let (_, b) = get(
        &st,
        "/api/v1/query?query=count_over_time(flink_numRecordsIn[5h])&time=14401",
    )
    .await;
    assert!(
        b.contains(r#""metric":{"subtask_index":"0"},"value":[14401,"5"]"#),
        "{b}"
    );
    let (_, m) = get(&st, "/metrics").await;
    assert!(
        m.contains("eddy_ingest_samples_total{format=\"remote_write\"} 5")
            && m.contains("eddy_ingest_series_key_cache_entries 2"),
        "{m}"
    );
}

/// Line protocol points seen before skip their tags; a series that left the head since is
/// stored again from its line; label drops and the `db` label apply on both paths, and the
/// same line under another `db` is another series.
#[tokio::test]
async fn repeated_influx_lines_are_stored_after_the_head_lets_them_go() {
    let (st, _dir) = state(&["--ingest.drop-label", "task_attempt_id"]);
    let write = |db: &'static str, attempt: &'static str, t_s: i64, v: f64| {
        let body = format!(
            "taskmanager_job_task_numRecordsIn,task_attempt_id={attempt},subtask_index=0 count={v},rate=0.5 {t_s}\n"
        );
        let req = Request::post(format!("/write?db={db}&precision=s"))
            .body(Body::from(body))
            .unwrap();
        let st = st.clone();
        async move { send(&st, req).await }
    };
    let created = || st.db.head_stats().series_created;
    // A meter: two series (`count` and the rate under the meter's name) per line.
    let (s, _, b) = write("flink", "a", 1, 1.0).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!((created(), st.series_keys.len()), (2, 2));
    let (s, _, b) = write("flink", "a", 2, 2.0).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!((created(), st.series_keys.len()), (2, 2));
    // Another attempt id, dropped at ingest: the same series, under their own entries.
    let (s, _, b) = write("flink", "b", 3, 3.0).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!((created(), st.series_keys.len()), (2, 4));
    // Another db: other series.
    let (s, _, b) = write("other", "a", 3, 3.0).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!((created(), st.series_keys.len()), (4, 6));
    let (s, b) = flush(&st).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(st.db.head_stats().series, 0);
    // Known lines, unknown to the head: appended again with labels.
    let (s, _, b) = write("flink", "a", 14_400, 4.0).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(created(), 6);
    let (s, _, b) = write("flink", "b", 14_401, 5.0).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(created(), 6);
    let (_, b) = get(
        &st,
        "/api/v1/query?query=count_over_time(flink_taskmanager_job_task_numRecordsIn%7Bdb=%22flink%22%7D[5h])&time=14401",
    )
    .await;
    assert!(
        b.contains(r#""metric":{"db":"flink","subtask_index":"0"},"value":[14401,"5"]"#),
        "{b}"
    );
    let (_, b) = get(
        &st,
        "/api/v1/query?query=flink_taskmanager_job_task_numRecordsIn_count&time=14401",
    )
    .await;
    assert!(b.contains(r#""value":[14401,"5"]"#), "{b}");
    let (_, m) = get(&st, "/metrics").await;
    assert!(
        m.contains("eddy_ingest_samples_total{format=\"influx\"} 12"),
        "{m}"
    );
}
