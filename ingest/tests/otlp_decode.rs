//! OTLP metrics → Prometheus series: every metric type, naming, resources, delta accumulation
//! and malformed input.

use eddy_ingest::otlp::encode::{
    attrs, AnyValue, Data, HistogramPoint, Metric, NumberPoint, Request, ResourceMetrics,
    ScopeMetrics, SummaryPoint, Temporality,
};
use eddy_ingest::otlp::{
    decode_metrics_request, DeltaAccumulator, FlinkNames, OtlpError, OtlpOptions, OtlpScratch,
    OtlpStats,
};
use eddy_storage::{is_stale_nan, WriteBatch};

const T0: u64 = 1_795_617_818_784_000_000;
const T0_MS: i64 = 1_795_617_818_784;
const NOW: i64 = 1_795_617_900_000;

fn opts() -> OtlpOptions {
    OtlpOptions {
        now_ms: NOW,
        ..Default::default()
    }
}

/// `name{labels in emitted order}` → (ts, value) per series.
fn dump(batch: &WriteBatch<'_>) -> Vec<(String, i64, f64)> {
    (0..batch.series.len())
        .map(|i| {
            let mut s = String::new();
            for (n, v) in batch.series_labels(i) {
                if n == "__name__" {
                    s.insert_str(0, v);
                } else {
                    s.push_str(&format!("{n}={v:?},"));
                }
            }
            let (ts, vs) = batch.series_samples(i);
            assert_eq!(ts.len(), 1);
            (s, ts[0], vs[0])
        })
        .collect()
}

fn one_resource(resource: &[(&str, &str)], scope: &str, metrics: Vec<Metric>) -> Request {
    Request {
        resource_metrics: vec![ResourceMetrics {
            resource: attrs(resource),
            scope_metrics: vec![ScopeMetrics {
                name: scope.into(),
                version: "1.0".into(),
                metrics,
            }],
        }],
    }
}

fn point(a: &[(&str, &str)], start_ns: u64, time_ns: u64, v: f64) -> NumberPoint {
    NumberPoint {
        attributes: attrs(a),
        start_ns,
        time_ns,
        double: v,
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data,
    }
}

fn decode(
    req: &Request,
    o: &OtlpOptions,
    acc: &mut DeltaAccumulator,
) -> (Vec<(String, i64, f64)>, OtlpStats) {
    let body = req.encode();
    let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
    let stats = decode_metrics_request(&body, o, acc, &mut scratch, &mut batch).expect("decode");
    (dump(&batch), stats)
}

fn s(name: &str, ts: i64, v: f64) -> (String, i64, f64) {
    (name.to_string(), ts, v)
}

#[test]
fn gauges_and_resource_labels() {
    let mut int_point = point(&[("host", "a")], 0, T0, 0.0);
    int_point.int = Some(-42);
    let req = one_resource(
        &[
            ("service.name", "api"),
            ("service.namespace", "shop"),
            ("service.instance.id", "pod-1"),
        ],
        "my.scope",
        vec![
            metric(
                "process.memory.usage",
                "By",
                Data::Gauge(vec![int_point, point(&[("host", "b")], 0, T0, 1.5)]),
            ),
            metric(
                "cpu.utilization",
                "1",
                Data::Gauge(vec![point(&[("cpu.id", "0")], 0, 0, 0.25)]),
            ),
        ],
    );
    let (got, stats) = decode(&req, &opts(), &mut DeltaAccumulator::default());
    assert_eq!(
        got,
        vec![
            s(
                "process_memory_usage_bytesjob=\"shop/api\",instance=\"pod-1\",host=\"a\",",
                T0_MS,
                -42.0
            ),
            s(
                "process_memory_usage_bytesjob=\"shop/api\",instance=\"pod-1\",host=\"b\",",
                T0_MS,
                1.5
            ),
            s(
                "cpu_utilization_ratiojob=\"shop/api\",instance=\"pod-1\",cpu_id=\"0\",",
                NOW,
                0.25
            ),
        ]
    );
    assert_eq!(
        (
            stats.resource_metrics,
            stats.metrics,
            stats.data_points,
            stats.samples
        ),
        (1, 2, 3, 3)
    );
}

#[test]
fn sums() {
    let cum = |monotonic| Data::Sum {
        points: vec![point(&[("k", "v")], 1, T0, 7.0)],
        temporality: Temporality::Cumulative,
        monotonic,
    };
    let req = one_resource(
        &[("service.name", "svc")],
        "s",
        vec![
            metric("http.requests", "{request}", cum(true)),
            metric("process.cpu.time", "s", cum(true)),
            metric("queue.size", "", cum(false)),
            metric("already_total", "", cum(true)),
            metric(
                "updown.delta",
                "",
                Data::Sum {
                    points: vec![point(&[], 1, T0, 1.0)],
                    temporality: Temporality::Delta,
                    monotonic: false,
                },
            ),
            metric(
                "no.temporality",
                "",
                Data::Sum {
                    points: vec![point(&[], 1, T0, 1.0)],
                    temporality: Temporality::Unspecified,
                    monotonic: true,
                },
            ),
        ],
    );
    let (got, stats) = decode(&req, &opts(), &mut DeltaAccumulator::default());
    assert_eq!(
        got,
        vec![
            s("http_requests_totaljob=\"svc\",k=\"v\",", T0_MS, 7.0),
            s(
                "process_cpu_time_seconds_totaljob=\"svc\",k=\"v\",",
                T0_MS,
                7.0
            ),
            s("queue_sizejob=\"svc\",k=\"v\",", T0_MS, 7.0),
            s("already_totaljob=\"svc\",k=\"v\",", T0_MS, 7.0),
        ]
    );
    assert_eq!(stats.points_dropped, 2);

    let plain = OtlpOptions {
        unit_suffixes: false,
        total_suffix: false,
        ..opts()
    };
    let (got, _) = decode(&req, &plain, &mut DeltaAccumulator::default());
    assert_eq!(got[1].0, "process_cpu_timejob=\"svc\",k=\"v\",");
}

#[test]
fn delta_sums_accumulate_across_requests() {
    let o = opts();
    let mut acc = DeltaAccumulator::default();
    let req = |start: u64, time: u64, v: f64, tm: &str| {
        one_resource(
            &[("service.name", "svc")],
            "s",
            vec![metric(
                "events",
                "",
                Data::Sum {
                    points: vec![point(&[("tm", tm)], start, time, v)],
                    temporality: Temporality::Delta,
                    monotonic: true,
                },
            )],
        )
    };
    let name = |tm: &str| format!("events_totaljob=\"svc\",tm=\"{tm}\",");
    let sec = 1_000_000_000;
    let (got, _) = decode(&req(T0, T0 + sec, 5.0, "a"), &o, &mut acc);
    assert_eq!(got, vec![(name("a"), T0_MS + 1000, 5.0)]);
    let (got, _) = decode(&req(T0 + sec, T0 + 2 * sec, 3.0, "a"), &o, &mut acc);
    assert_eq!(got, vec![(name("a"), T0_MS + 2000, 8.0)]);
    // Another series is independent.
    let (got, _) = decode(&req(T0, T0 + 2 * sec, 1.0, "b"), &o, &mut acc);
    assert_eq!(got, vec![(name("b"), T0_MS + 2000, 1.0)]);
    // A repeated (not newer) point is dropped from the batch.
    let (got, stats) = decode(&req(T0 + sec, T0 + 2 * sec, 3.0, "a"), &o, &mut acc);
    assert_eq!(got, vec![]);
    assert_eq!((stats.delta_out_of_order, stats.samples), (1, 0));
    // The start time jumps: the sender restarted, the total restarts.
    let (got, _) = decode(&req(T0 + 10 * sec, T0 + 11 * sec, 2.0, "a"), &o, &mut acc);
    assert_eq!(got, vec![(name("a"), T0_MS + 11_000, 2.0)]);
    let (got, _) = decode(&req(T0 + 11 * sec, T0 + 12 * sec, 4.0, "a"), &o, &mut acc);
    assert_eq!(got, vec![(name("a"), T0_MS + 12_000, 6.0)]);
    assert_eq!(acc.len(), 2);
}

#[test]
fn delta_points_in_one_request_and_dropping_keeps_others() {
    let o = opts();
    let mut acc = DeltaAccumulator::default();
    let sec = 1_000_000_000;
    let req = one_resource(
        &[],
        "s",
        vec![
            metric("g", "", Data::Gauge(vec![point(&[("x", "1")], 0, T0, 9.0)])),
            metric(
                "c",
                "",
                Data::Sum {
                    points: vec![
                        point(&[("x", "1")], T0, T0 + sec, 1.0),
                        point(&[("x", "1")], T0 + sec, T0 + 2 * sec, 2.0),
                        point(&[("x", "1")], T0, T0 + sec, 5.0),
                    ],
                    temporality: Temporality::Delta,
                    monotonic: true,
                },
            ),
            metric(
                "g2",
                "",
                Data::Gauge(vec![point(&[("x", "2")], 0, T0, 10.0)]),
            ),
        ],
    );
    let (got, stats) = decode(&req, &o, &mut acc);
    assert_eq!(
        got,
        vec![
            s("gx=\"1\",", T0_MS, 9.0),
            s("c_totalx=\"1\",", T0_MS + 1000, 1.0),
            s("c_totalx=\"1\",", T0_MS + 2000, 3.0),
            s("g2x=\"2\",", T0_MS, 10.0),
        ]
    );
    assert_eq!((stats.delta_out_of_order, stats.samples), (1, 4));
}

#[test]
fn summaries() {
    let p = SummaryPoint {
        attributes: attrs(&[("quantile", "bogus"), ("task", "t")]),
        time_ns: T0,
        count: 60,
        sum: 4.0,
        quantiles: vec![
            (0.0, 0.0),
            (0.5, 0.1),
            (0.99, 1.0),
            (1.0, 2.0),
            (1.0, 2.0),
            (0.75, 0.5),
        ],
        ..Default::default()
    };
    let req = one_resource(
        &[],
        "s",
        vec![metric("rpc.latency", "ms", Data::Summary(vec![p]))],
    );
    let (got, stats) = decode(&req, &opts(), &mut DeltaAccumulator::default());
    let n = "rpc_latency_milliseconds";
    assert_eq!(
        got,
        vec![
            s(&format!("{n}quantile=\"0\",task=\"t\","), T0_MS, 0.0),
            s(&format!("{n}quantile=\"0.5\",task=\"t\","), T0_MS, 0.1),
            s(&format!("{n}quantile=\"0.75\",task=\"t\","), T0_MS, 0.5),
            s(&format!("{n}quantile=\"0.99\",task=\"t\","), T0_MS, 1.0),
            s(&format!("{n}quantile=\"1\",task=\"t\","), T0_MS, 2.0),
            s(&format!("{n}_sumtask=\"t\","), T0_MS, 4.0),
            s(&format!("{n}_counttask=\"t\","), T0_MS, 60.0),
        ]
    );
    assert_eq!(stats.attributes_dropped, 1, "the attribute named quantile");
}

#[test]
fn histograms() {
    let p = HistogramPoint {
        attributes: attrs(&[("route", "/a")]),
        time_ns: T0,
        count: 10,
        sum: Some(12.5),
        bucket_counts: vec![1, 2, 3, 4],
        bounds: vec![0.005, 0.1, 1.0],
        ..Default::default()
    };
    let bad = HistogramPoint {
        time_ns: T0,
        count: 3,
        bucket_counts: vec![1, 2],
        bounds: vec![],
        ..Default::default()
    };
    let req = one_resource(
        &[],
        "s",
        vec![
            metric(
                "http.server.duration",
                "s",
                Data::Histogram {
                    points: vec![p.clone(), bad],
                    temporality: Temporality::Cumulative,
                },
            ),
            metric(
                "delta.hist",
                "",
                Data::Histogram {
                    points: vec![p],
                    temporality: Temporality::Delta,
                },
            ),
            metric("exp.hist", "", Data::ExponentialHistogram(vec![4, 5])),
        ],
    );
    let (got, stats) = decode(&req, &opts(), &mut DeltaAccumulator::default());
    let n = "http_server_duration_seconds";
    assert_eq!(
        got,
        vec![
            s(&format!("{n}_bucketle=\"0.005\",route=\"/a\","), T0_MS, 1.0),
            s(&format!("{n}_bucketle=\"0.1\",route=\"/a\","), T0_MS, 3.0),
            s(&format!("{n}_bucketle=\"1\",route=\"/a\","), T0_MS, 6.0),
            s(&format!("{n}_bucketle=\"+Inf\",route=\"/a\","), T0_MS, 10.0),
            s(&format!("{n}_sumroute=\"/a\","), T0_MS, 12.5),
            s(&format!("{n}_countroute=\"/a\","), T0_MS, 10.0),
            s(&format!("{n}_bucketle=\"+Inf\","), T0_MS, 3.0),
            s(&format!("{n}_count"), T0_MS, 3.0),
        ]
    );
    assert_eq!(stats.invalid_histograms, 1);
    assert_eq!(stats.points_dropped, 1);
    assert_eq!(stats.exponential_histogram_points_skipped, 2);
}

#[test]
fn no_recorded_value_is_a_stale_marker() {
    let mut p = point(&[], 0, T0, 3.0);
    p.flags = 1;
    let req = one_resource(&[], "s", vec![metric("g", "", Data::Gauge(vec![p]))]);
    let body = req.encode();
    let o = opts();
    let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
    decode_metrics_request(
        &body,
        &o,
        &mut DeltaAccumulator::default(),
        &mut scratch,
        &mut batch,
    )
    .unwrap();
    assert!(is_stale_nan(batch.values[0]));
}

#[test]
fn attributes_types_sanitizing_and_collisions() {
    let mut p = point(&[], 0, T0, 1.0);
    p.attributes = vec![
        ("http.method".into(), AnyValue::Str("GET".into())),
        ("http_method".into(), AnyValue::Str("POST".into())),
        ("ok".into(), AnyValue::Bool(true)),
        ("n".into(), AnyValue::Int(-7)),
        ("ratio".into(), AnyValue::Double(0.5)),
        ("blob".into(), AnyValue::Bytes(vec![1, 2])),
        ("".into(), AnyValue::Str("x".into())),
        ("job".into(), AnyValue::Str("from-point".into())),
    ];
    let req = one_resource(
        &[("service.name", "svc")],
        "s",
        vec![metric("m", "", Data::Gauge(vec![p]))],
    );
    let (got, stats) = decode(&req, &opts(), &mut DeltaAccumulator::default());
    assert_eq!(
        got,
        vec![s(
            "mjob=\"svc\",http_method=\"GET;POST\",n=\"-7\",ok=\"true\",ratio=\"0.5\",",
            T0_MS,
            1.0
        )]
    );
    assert_eq!(stats.attributes_dropped, 3);
}

#[test]
fn target_info_and_promotion() {
    let req = one_resource(
        &[
            ("service.name", "svc"),
            ("service.instance.id", "i-1"),
            ("host.name", "h"),
            ("k8s.pod.name", "p"),
        ],
        "s",
        vec![metric(
            "g",
            "",
            Data::Gauge(vec![
                point(&[], 0, T0, 1.0),
                point(&[], 0, T0 + 5_000_000, 2.0),
            ]),
        )],
    );
    let o = OtlpOptions {
        promote_resource_attributes: vec!["k8s.pod.name".into()],
        ..opts()
    };
    let (got, _) = decode(&req, &o, &mut DeltaAccumulator::default());
    assert_eq!(
        got,
        vec![
            s(
                "gk8s_pod_name=\"p\",job=\"svc\",instance=\"i-1\",",
                T0_MS,
                1.0
            ),
            s(
                "gk8s_pod_name=\"p\",job=\"svc\",instance=\"i-1\",",
                T0_MS + 5,
                2.0
            ),
            s(
                "target_infojob=\"svc\",instance=\"i-1\",host_name=\"h\",k8s_pod_name=\"p\",",
                T0_MS + 5,
                1.0
            ),
        ]
    );
    let o = OtlpOptions {
        target_info: false,
        scope_labels: true,
        ..opts()
    };
    let (got, _) = decode(&req, &o, &mut DeltaAccumulator::default());
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].0,
        "gjob=\"svc\",instance=\"i-1\",otel_scope_name=\"s\",otel_scope_version=\"1.0\","
    );
}

/// A request shaped like Flink 2.x's OpenTelemetry reporter: one Metric per series.
fn flink_request(start: u64, time: u64, records: i64) -> Request {
    let tags = [
        ("host", "localhost"),
        ("job_name", "metrics-probe-job"),
        ("task_name", "Source: datagen-source -> double-map"),
        ("subtask_index", "0"),
        ("tm_id", "localhost:38283-419116"),
    ];
    let num = |name: &str, data: Data| metric(name, "", data);
    let mut counter = point(&tags, start, time, 0.0);
    counter.int = Some(records);
    let mut meter_count = point(&tags, start, time, 0.0);
    meter_count.int = Some(records);
    let delta = |p: NumberPoint| Data::Sum {
        points: vec![p],
        temporality: Temporality::Delta,
        monotonic: true,
    };
    Request {
        resource_metrics: vec![ResourceMetrics {
            resource: attrs(&[
                ("service.name", "unknown_service:java"),
                ("telemetry.sdk.language", "java"),
                ("telemetry.sdk.name", "opentelemetry"),
                ("telemetry.sdk.version", "1.30.1"),
            ]),
            scope_metrics: vec![ScopeMetrics {
                name: "io.confluent.flink.common.metrics".into(),
                version: String::new(),
                metrics: vec![
                    num(
                        "flink.taskmanager.job.task.operator.numRecordsIn",
                        delta(counter),
                    ),
                    num(
                        "flink.taskmanager.job.task.operator.numRecordsInPerSecond.count",
                        delta(meter_count),
                    ),
                    num(
                        "flink.taskmanager.job.task.operator.numRecordsInPerSecond.rate",
                        Data::Gauge(vec![point(&tags, 0, time, 840.5)]),
                    ),
                    num(
                        "flink.taskmanager.Status.JVM.Memory.Heap.Used",
                        Data::Gauge(vec![point(&[("host", "localhost")], 0, time, 1.13625088e8)]),
                    ),
                    num(
                        "flink.taskmanager.job.task.mailboxLatencyMs",
                        Data::Summary(vec![SummaryPoint {
                            attributes: attrs(&tags),
                            start_ns: start,
                            time_ns: time,
                            count: 60,
                            sum: 4.0,
                            quantiles: vec![
                                (0.0, 0.0),
                                (0.5, 0.0),
                                (0.75, 0.0),
                                (0.95, 1.0),
                                (0.99, 1.0),
                                (1.0, 1.0),
                                (1.0, 1.0),
                            ],
                        }]),
                    ),
                ],
            }],
        }],
    }
}

#[test]
fn flink_reporter_request() {
    let o = opts();
    let mut acc = DeltaAccumulator::default();
    let sec = 15_000_000_000;
    let lbl = "job=\"unknown_service:java\",host=\"localhost\",job_name=\"metrics-probe-job\",\
               task_name=\"Source: datagen-source -> double-map\",subtask_index=\"0\",tm_id=\"localhost:38283-419116\",";
    let (got, stats) = decode(&flink_request(T0, T0 + sec, 1000), &o, &mut acc);
    let t = T0_MS + 15_000;
    let n = |m: &str| format!("flink_taskmanager_job_task_{m}{lbl}");
    let q = |q: &str, v: f64| {
        (
            format!("flink_taskmanager_job_task_mailboxLatencyMsquantile=\"{q}\",{lbl}"),
            t,
            v,
        )
    };
    let want = vec![
        (n("operator_numRecordsIn"), t, 1000.0),
        (n("operator_numRecordsInPerSecond_count"), t, 1000.0),
        (n("operator_numRecordsInPerSecond"), t, 840.5),
        (
            "flink_taskmanager_Status_JVM_Memory_Heap_Usedjob=\"unknown_service:java\",host=\"localhost\",".to_string(),
            t,
            1.13625088e8,
        ),
        q("0", 0.0),
        q("0.5", 0.0),
        q("0.75", 0.0),
        q("0.95", 1.0),
        q("0.99", 1.0),
        q("1", 1.0),
        (n("mailboxLatencyMs_sum"), t, 4.0),
        (n("mailboxLatencyMs_count"), t, 60.0),
        (
            "target_infojob=\"unknown_service:java\",telemetry_sdk_language=\"java\",\
             telemetry_sdk_name=\"opentelemetry\",telemetry_sdk_version=\"1.30.1\","
                .to_string(),
            t,
            1.0,
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(stats.samples, 13);
    // The next report's deltas add up.
    let (got, _) = decode(&flink_request(T0 + sec, T0 + 2 * sec, 250), &o, &mut acc);
    assert_eq!(got[0], (n("operator_numRecordsIn"), T0_MS + 30_000, 1250.0));
    assert_eq!(
        got[1],
        (
            n("operator_numRecordsInPerSecond_count"),
            T0_MS + 30_000,
            1250.0
        )
    );

    // With Flink naming off, the spec's suffixes apply.
    let off = OtlpOptions {
        flink_names: FlinkNames::Off,
        ..opts()
    };
    let (got, _) = decode(
        &flink_request(T0, T0 + sec, 1),
        &off,
        &mut DeltaAccumulator::default(),
    );
    assert!(got[0]
        .0
        .starts_with("flink_taskmanager_job_task_operator_numRecordsIn_totaljob="));
    assert!(got[2]
        .0
        .starts_with("flink_taskmanager_job_task_operator_numRecordsInPerSecond_ratejob="));
}

#[test]
fn truncated_at_every_offset_is_an_error_and_changes_nothing() {
    let body = flink_request(T0, T0 + 1, 5).encode();
    let o = opts();
    let mut acc = DeltaAccumulator::default();
    for cut in 1..body.len() {
        let mut scratch = OtlpScratch::new();
        let mut batch = WriteBatch::new();
        batch.add_series([("__name__", "keep")], &[(1, 1.0)]);
        let r = decode_metrics_request(&body[..cut], &o, &mut acc, &mut scratch, &mut batch);
        assert!(r.is_err(), "prefix of {cut} bytes decoded");
        assert_eq!(batch.series.len(), 1, "batch untouched at {cut}");
        assert_eq!((batch.labels.len(), batch.values.len()), (1, 1));
        assert!(acc.is_empty(), "accumulator untouched at {cut}");
    }
    let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
    let stats = decode_metrics_request(&body, &o, &mut acc, &mut scratch, &mut batch).unwrap();
    assert_eq!(stats.samples, 13);
    let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
    assert_eq!(
        decode_metrics_request(&[], &o, &mut acc, &mut scratch, &mut batch).unwrap(),
        OtlpStats::default()
    );
}

#[test]
fn malformed_inputs_name_the_offset() {
    let o = opts();
    let mut acc = DeltaAccumulator::default();
    let mut run = |b: &[u8]| {
        let mut scratch = OtlpScratch::new();
        let mut batch = WriteBatch::new();
        decode_metrics_request(b, &o, &mut acc, &mut scratch, &mut batch).unwrap_err()
    };
    assert_eq!(
        run(&[0x0a, 0x05, 0x00]),
        OtlpError::Truncated {
            offset: 2,
            what: "resource_metrics"
        }
    );
    assert_eq!(
        run(&[0x09, 0, 0, 0, 0, 0, 0, 0, 0]),
        OtlpError::WrongWireType {
            offset: 0,
            what: "resource_metrics",
            wire_type: 1
        }
    );
    assert!(matches!(
        run(&[0x0f]),
        OtlpError::InvalidKey { offset: 0, .. }
    ));
    // A metric name that is not UTF-8: ResourceMetrics{scope_metrics{metrics{name}}}.
    let bad = [0x0a, 0x08, 0x12, 0x06, 0x12, 0x04, 0x0a, 0x02, 0xff, 0xfe];
    assert_eq!(
        run(&bad),
        OtlpError::InvalidUtf8 {
            offset: 8,
            what: "metric name"
        }
    );
    // Unknown fields are skipped.
    let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
    let ok = decode_metrics_request(
        &[0x10, 0x01, 0x1a, 0x00],
        &o,
        &mut acc,
        &mut scratch,
        &mut batch,
    )
    .unwrap();
    assert_eq!(ok.samples, 0);
}

#[test]
fn field_order_does_not_matter() {
    use eddy_ingest::otlp::encode::put_varint;
    // Inner bytes of a ResourceMetrics: our encoder writes resource (field 1) first.
    let inner = |req: &Request| {
        let b = req.encode();
        let mut r = &b[1..];
        // Skip the outer length varint.
        while r[0] & 0x80 != 0 {
            r = &r[1..];
        }
        r[1..].to_vec()
    };
    let metrics = vec![metric(
        "g",
        "",
        Data::Gauge(vec![point(&[("a", "1")], 0, T0, 2.0)]),
    )];
    let scopes_only = inner(&one_resource(&[], "s", metrics.clone()));
    assert_eq!(&scopes_only[..2], &[0x0a, 0x00], "empty resource first");
    let resource_only = inner(&one_resource(&[("service.name", "svc")], "s", vec![]));
    let resource_field =
        &resource_only[..resource_only.len() - (inner(&one_resource(&[], "s", vec![])).len() - 2)];
    // ResourceMetrics with scope_metrics first, resource last.
    let mut rm = scopes_only[2..].to_vec();
    rm.extend_from_slice(resource_field);
    let mut body = vec![0x0a];
    put_varint(&mut body, rm.len() as u64);
    body.extend_from_slice(&rm);
    let o = opts();
    let mut scratch = OtlpScratch::new();
    let mut batch = WriteBatch::new();
    decode_metrics_request(
        &body,
        &o,
        &mut DeltaAccumulator::default(),
        &mut scratch,
        &mut batch,
    )
    .unwrap();
    assert_eq!(dump(&batch), vec![s("gjob=\"svc\",a=\"1\",", T0_MS, 2.0)]);
    let expected = one_resource(&[("service.name", "svc")], "s", metrics).encode();
    assert_eq!(expected.len(), body.len(), "same bytes, other order");
}

#[test]
fn reused_scratch_keeps_no_strings_of_earlier_requests() {
    let o = opts();
    let mut acc = DeltaAccumulator::default();
    let mut scratch = OtlpScratch::new();
    let make = |name: &str, key: &str, v: i64| {
        let mut p = point(&[], 0, T0, 1.0);
        p.attributes = vec![(key.to_string(), AnyValue::Int(v))];
        one_resource(
            &[("service.name", "svc")],
            "s",
            vec![metric(name, "ms", Data::Gauge(vec![p]))],
        )
        .encode()
    };
    let bodies = [make("a.b", "k.x", 12), make("c.d", "k.y", 3456)];
    let want = [
        "a_b_millisecondsjob=\"svc\",k_x=\"12\",",
        "c_d_millisecondsjob=\"svc\",k_y=\"3456\",",
    ];
    for (body, want) in bodies.iter().zip(want) {
        let mut batch = WriteBatch::new();
        decode_metrics_request(body, &o, &mut acc, &mut scratch, &mut batch).unwrap();
        assert_eq!(dump(&batch), [s(want, T0_MS, 1.0)]);
    }
}
