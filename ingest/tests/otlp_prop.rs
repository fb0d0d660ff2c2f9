//! Property tests: arbitrary and mutated protobuf never panics and leaves the batch untouched on
//! error; random gauge requests decode to exactly their points. `PROPTEST_CASES=N` scales it.

use eddy_ingest::otlp::encode::{
    attrs, Data, Metric, NumberPoint, Request, ResourceMetrics, ScopeMetrics, SummaryPoint,
    Temporality,
};
use eddy_ingest::otlp::{decode_metrics_request, DeltaAccumulator, OtlpOptions, OtlpScratch};
use eddy_storage::WriteBatch;
use proptest::prelude::*;

fn sample_request() -> Vec<u8> {
    let tags = [("host", "h"), ("task_name", "a -> b")];
    let p = |v: f64| NumberPoint {
        attributes: attrs(&tags),
        start_ns: 1,
        time_ns: 2_000_000,
        double: v,
        ..Default::default()
    };
    Request {
        resource_metrics: vec![ResourceMetrics {
            resource: attrs(&[("service.name", "svc"), ("host.name", "x")]),
            scope_metrics: vec![ScopeMetrics {
                name: "io.confluent.flink.common.metrics".into(),
                version: String::new(),
                metrics: vec![
                    Metric {
                        name: "flink.a".into(),
                        unit: String::new(),
                        data: Data::Gauge(vec![p(1.0)]),
                    },
                    Metric {
                        name: "flink.b".into(),
                        unit: "ms".into(),
                        data: Data::Sum {
                            points: vec![p(2.0)],
                            temporality: Temporality::Delta,
                            monotonic: true,
                        },
                    },
                    Metric {
                        name: "flink.c".into(),
                        unit: String::new(),
                        data: Data::Summary(vec![SummaryPoint {
                            attributes: attrs(&tags),
                            time_ns: 3,
                            count: 2,
                            sum: 1.0,
                            quantiles: vec![(0.5, 1.0), (1.0, 2.0)],
                            ..Default::default()
                        }]),
                    },
                ],
            }],
        }],
    }
    .encode()
}

#[track_caller]
fn check_no_panic(body: &[u8]) -> Result<(), TestCaseError> {
    let o = OtlpOptions::default();
    let mut acc = DeltaAccumulator::default();
    let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
    batch.add_series([("__name__", "keep")], &[(1, 1.0)]);
    match decode_metrics_request(body, &o, &mut acc, &mut scratch, &mut batch) {
        Ok(stats) => prop_assert_eq!(stats.samples as usize + 1, batch.sample_count()),
        Err(_) => {
            prop_assert_eq!(batch.series.len(), 1);
            prop_assert_eq!(batch.labels.len(), 1);
            prop_assert!(acc.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        check_no_panic(&body)?;
    }

    #[test]
    fn mutated_requests_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut body = sample_request();
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        check_no_panic(&body)?;
    }

    #[test]
    fn gauges_round_trip(points in prop::collection::vec(("[a-z.]{1,8}", "[a-zA-Z_]{1,6}", "[ -~]{1,8}", any::<u32>(), -1e9f64..1e9), 1..20)) {
        let metrics: Vec<Metric> = points
            .iter()
            .map(|(name, k, v, t, x)| Metric {
                name: name.clone(),
                unit: String::new(),
                data: Data::Gauge(vec![NumberPoint {
                    attributes: attrs(&[(k, v)]),
                    time_ns: u64::from(*t) * 1_000_000 + 1,
                    double: *x,
                    ..Default::default()
                }]),
            })
            .collect();
        let body = Request {
            resource_metrics: vec![ResourceMetrics { resource: vec![], scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }] }],
        }
        .encode();
        let o = OtlpOptions::default();
        let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
        let stats = decode_metrics_request(&body, &o, &mut DeltaAccumulator::default(), &mut scratch, &mut batch).unwrap();
        prop_assert_eq!(stats.samples as usize, points.len());
        for (i, (name, k, v, t, x)) in points.iter().enumerate() {
            let labels = batch.series_labels(i);
            let want_name: String = {
                let mut s = name.replace('.', "_");
                while s.contains("__") { s = s.replace("__", "_"); }
                s
            };
            prop_assert_eq!(labels[0].1.as_ref(), want_name.as_str());
            let want_key: String = {
                let mut s = k.clone();
                while s.contains("__") { s = s.replace("__", "_"); }
                s
            };
            prop_assert_eq!((labels[1].0.as_ref(), labels[1].1.as_ref()), (want_key.as_str(), v.as_str()));
            prop_assert_eq!(batch.series_samples(i), (&[i64::from(*t)][..], &[*x][..]));
        }
    }
}
