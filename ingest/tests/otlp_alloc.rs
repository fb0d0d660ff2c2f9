//! Allocation discipline of the OTLP decoder: a request costs a few allocations however many
//! data points it holds (derived names and values go into the reused scratch), checked at two
//! sizes so that a per-point allocation cannot hide. Two shapes: Flink's OpenTelemetry
//! reporter (one `Metric` per series, dotted names, DELTA counters, summaries) and a generic
//! OTel SDK (units, dotted attribute keys, int attributes, explicit-bucket histograms).
//! Throughput is measured by `cargo run --release -p eddy-benches --bin ingest_decode`.

#[path = "common/alloc_count.rs"]
mod alloc_count;

use alloc_count::{allocations, roomy_batch};
use eddy_ingest::otlp::encode::{
    attrs, AnyValue, Data, HistogramPoint, Metric, NumberPoint, Request, ResourceMetrics,
    ScopeMetrics, SummaryPoint, Temporality,
};
use eddy_ingest::otlp::{decode_metrics_request, DeltaAccumulator, OtlpOptions, OtlpScratch};

const T0: u64 = 1_795_617_818_784_000_000;
const INTERVAL: u64 = 15_000_000_000;

fn flink_request(series: usize, time_ns: u64) -> Request {
    let metrics = (0..series)
        .map(|i| {
            let idx = (i % 64).to_string();
            let attributes = attrs(&[
                ("host", "localhost"),
                ("job_id", "7558b34cd0bfc2a45af2943e88730acd"),
                ("operator_name", "Source: datagen-source"),
                ("subtask_index", &idx),
                ("tm_id", "localhost:38283-419116"),
            ]);
            let point = |v| NumberPoint {
                attributes: attributes.clone(),
                start_ns: time_ns - INTERVAL,
                time_ns,
                int: Some(v),
                ..Default::default()
            };
            let metric = i / 64;
            let (name, data) = match metric % 3 {
                0 => (
                    format!("flink.taskmanager.job.task.operator.counter{metric}"),
                    Data::Sum {
                        points: vec![point(i as i64)],
                        temporality: Temporality::Delta,
                        monotonic: true,
                    },
                ),
                1 => (
                    format!("flink.taskmanager.job.task.operator.gauge{metric}"),
                    Data::Gauge(vec![point(7)]),
                ),
                _ => (
                    format!("flink.taskmanager.job.task.latency{metric}"),
                    Data::Summary(vec![SummaryPoint {
                        attributes: attributes.clone(),
                        start_ns: time_ns - INTERVAL,
                        time_ns,
                        count: 500,
                        sum: 12.5,
                        quantiles: [0.0, 0.5, 0.75, 0.95, 0.99, 1.0, 1.0]
                            .iter()
                            .map(|&q| (q, q * 10.0))
                            .collect(),
                    }]),
                ),
            };
            Metric {
                name,
                unit: String::new(),
                data,
            }
        })
        .collect();
    request(
        "unknown_service:java",
        "io.confluent.flink.common.metrics",
        metrics,
    )
}

fn otel_request(series: usize, time_ns: u64) -> Request {
    let metrics = (0..series)
        .map(|i| {
            let attributes = vec![
                ("http.method".to_string(), AnyValue::Str("GET".into())),
                (
                    "http.status_code".to_string(),
                    AnyValue::Int(200 + (i % 5) as i64),
                ),
                ("net.peer.port".to_string(), AnyValue::Double(8080.5)),
            ];
            let data = if i % 2 == 0 {
                Data::Histogram {
                    points: vec![HistogramPoint {
                        attributes,
                        start_ns: T0,
                        time_ns,
                        count: 10,
                        sum: Some(1.5),
                        bucket_counts: vec![1, 2, 3, 4],
                        bounds: vec![0.005, 0.025, 0.25],
                    }],
                    temporality: Temporality::Cumulative,
                }
            } else {
                Data::Sum {
                    points: vec![NumberPoint {
                        attributes,
                        start_ns: T0,
                        time_ns,
                        double: i as f64,
                        ..Default::default()
                    }],
                    temporality: Temporality::Cumulative,
                    monotonic: true,
                }
            };
            Metric {
                name: format!("http.server.duration.{}", i % 50),
                unit: "ms".into(),
                data,
            }
        })
        .collect();
    request("checkout", "io.opentelemetry.http", metrics)
}

fn request(service: &str, scope: &str, metrics: Vec<Metric>) -> Request {
    Request {
        resource_metrics: vec![ResourceMetrics {
            resource: attrs(&[
                ("service.name", service),
                ("service.namespace", "shop"),
                ("host.name", "h1"),
            ]),
            scope_metrics: vec![ScopeMetrics {
                name: scope.into(),
                version: String::new(),
                metrics,
            }],
        }],
    }
}

/// Allocations of decoding two consecutive reports (later timestamps, same accumulator) with a
/// fresh scratch, then a third with the scratch and the accumulator already grown.
fn cold_and_warm(make: fn(usize, u64) -> Request, series: usize) -> (u64, u64, u64) {
    let bodies: Vec<Vec<u8>> = (0..2)
        .map(|r| make(series, T0 + r * INTERVAL).encode())
        .collect();
    let o = OtlpOptions::default();
    let mut acc = DeltaAccumulator::default();
    let mut scratch = OtlpScratch::new();
    let mut batch = roomy_batch(series * 10);
    let (stats, cold) = allocations(|| {
        decode_metrics_request(&bodies[0], &o, &mut acc, &mut scratch, &mut batch).expect("decode")
    });
    drop(batch);
    let mut batch = roomy_batch(series * 10);
    let (again, warm) = allocations(|| {
        decode_metrics_request(&bodies[1], &o, &mut acc, &mut scratch, &mut batch).expect("decode")
    });
    assert_eq!(again.samples, stats.samples);
    assert_eq!(again.delta_out_of_order + again.points_dropped, 0);
    (stats.samples, cold, warm)
}

#[test]
fn allocations_do_not_grow_with_points() {
    for (shape, make) in [
        ("flink", flink_request as fn(usize, u64) -> Request),
        ("otel", otel_request),
    ] {
        let (n_small, cold_small, warm_small) = cold_and_warm(make, 1_000);
        let (n_large, cold_large, warm_large) = cold_and_warm(make, 10_000);
        eprintln!(
            "{shape}: cold {cold_small} / {cold_large}, warm {warm_small} / {warm_large} \
             allocations for {n_small} / {n_large} samples"
        );
        assert!(n_large >= 10_000, "{shape}: {n_large} samples");
        // Warm: the decoder's four label lists, nothing that depends on the request's size.
        assert!(
            warm_small <= 6 && warm_large <= 6,
            "{shape}: warm {warm_small} / {warm_large}"
        );
        assert_eq!(warm_small, warm_large, "{shape}");
        // Cold: the scratch and the delta accumulator grow to size (doubling: a log of the
        // point count).
        assert!(
            cold_large <= 96,
            "{shape}: cold {cold_large} for {n_large} samples"
        );
        assert!(
            cold_large <= cold_small + 24,
            "{shape}: cold {cold_small} / {cold_large}"
        );
    }
}
