//! `/federate` through the router: latest sample per series within the lookback, text format.
#![allow(clippy::unwrap_used)] // Tests fail loudly on any unexpected error.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use eddy::http::federate::TEXT_CONTENT_TYPE;
use eddy_storage::stale_nan;
use support::*;

#[tokio::test]
async fn federate_sends_the_latest_sample_of_each_matching_series() {
    let (st, _dir) = state(&[]);
    let now = eddy::http::now_ms();
    let (t1, t2) = (now - 60_000, now - 30_000);
    let (s, b) = remote_write(
        &st,
        &[
            (
                vec![("__name__", "flink_up"), ("job", "a"), ("instance", "h:1")],
                vec![(t1, 1.0), (t2, 2.5)],
            ),
            (
                vec![("__name__", "flink_up"), ("job", "b")],
                vec![(t1, 1234567.0)],
            ),
            // Ended by a stale marker: not federated.
            (
                vec![("__name__", "flink_up"), ("job", "gone")],
                vec![(t1, 1.0), (t2, stale_nan())],
            ),
            // Last sample older than the 5m lookback: not federated.
            (
                vec![("__name__", "flink_up"), ("job", "old")],
                vec![(now - 400_000, 1.0)],
            ),
            (
                vec![("__name__", "a_metric"), ("path", "C:\\x \"q\"")],
                vec![(t2, -0.00001)],
            ),
            (vec![("__name__", "unmatched")], vec![(t2, 1.0)]),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let want = format!(
        "# TYPE a_metric untyped\n\
         a_metric{{path=\"C:\\\\x \\\"q\\\"\",instance=\"\"}} -1e-05 {t2}\n\
         # TYPE flink_up untyped\n\
         flink_up{{instance=\"h:1\",job=\"a\"}} 2.5 {t2}\n\
         flink_up{{job=\"b\",instance=\"\"}} 1.234567e+06 {t1}\n"
    );
    // Overlapping selectors send each series once.
    let req = Request::get(
        "/federate?match[]=%7B__name__%3D~%22flink_.%2A%22%7D&match[]=flink_up%7Bjob%3D%22a%22%7D&match[]=a_metric",
    )
    .body(Body::empty())
    .unwrap();
    let (s, ct, body) = send(&st, req).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, TEXT_CONTENT_TYPE));
    assert_eq!(body, want);

    let (s, body) = post_form(
        &st,
        "/federate",
        "match[]=%7Bjob%3D%22b%22%7D&match[]=a_metric",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        format!(
            "# TYPE a_metric untyped\n\
             a_metric{{path=\"C:\\\\x \\\"q\\\"\",instance=\"\"}} -1e-05 {t2}\n\
             # TYPE flink_up untyped\n\
             flink_up{{job=\"b\",instance=\"\"}} 1.234567e+06 {t1}\n"
        )
    );

    // No match[]: nothing selected, as in Prometheus.
    let (s, body) = get(&st, "/federate").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, ""));
}

#[tokio::test]
async fn federate_rejects_bad_selectors() {
    let (st, _dir) = state(&[]);
    let (s, body) = get(&st, "/federate?match[]=up%7B").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(!body.is_empty());
    let (s, body) = get(&st, "/federate?match[]=rate(up%5B1m%5D)").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("is not a series selector"), "{body}");
}
