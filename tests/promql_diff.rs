//! Differential test against a real Prometheus: the same demo-shaped data is remote-written into
//! Prometheus (the `prometheus` binary, started on loopback with the remote-write receiver) and
//! into eddy (served in-process on loopback); every query of the PromQL compliance tester's list
//! (testdata/promql-diff/promql-test-queries.yml, templates expanded) then runs on both as range
//! queries and instant queries, and the answers are compared. The test prints a summary and fails
//! if fewer queries agree than the floor measured when the known differences were documented in
//! docs/promql-compatibility.md.

mod support;

#[path = "promql_diff/cases.rs"]
mod cases;
#[path = "promql_diff/compare.rs"]
mod compare;
#[path = "promql_diff/data.rs"]
mod data;
#[path = "promql_diff/server.rs"]
mod server;

use std::net::SocketAddr;

use compare::{first_difference, Outcome};

/// Agreeing queries measured with Debian's Prometheus 2.42 (see docs/promql-compatibility.md);
/// lower means a regression.
const AGREEMENT_FLOOR: usize = 528;
/// The same for testdata/promql-diff/extra-queries.txt.
const EXTRA_AGREEMENT_FLOOR: usize = 109;

/// Data start, 2025-11-24T16:00:00Z: fixed, so runs are reproducible (date functions included).
/// Prometheus 2.42's receiver takes it: an empty head accepts any time, and every request stays
/// within the head's window (see data::remote_write_bodies).
const DATA_START_MS: i64 = 1_764_000_000_000;
const DATA_MS: i64 = 2 * 3_600_000;
const SCRAPE_MS: i64 = 15_000;

/// A query known to answer differently on Debian's Prometheus 2.42, because eddy follows
/// Prometheus 3.x (see docs/promql-compatibility.md).
struct Known {
    query: String,
    why: &'static str,
    /// A query with the same meaning under 2.42's rules; when given, Prometheus must answer it
    /// exactly as eddy answers the original, which proves the explanation.
    prometheus_equivalent: Option<String>,
    /// For differences that only show while a window reaches before the first sample: the
    /// answers must agree on every point this long after the data start.
    agrees_after_start_ms: Option<i64>,
}

/// (a3): windows reaching before a counter's first sample extrapolate differently.
fn extrapolation_near_start(query: String, range_ms: i64) -> Known {
    Known {
        query,
        why: "rate extrapolation: the counter zero point is applied after the \
              half-interval limit (prometheus#13725)",
        prometheus_equivalent: None,
        agrees_after_start_ms: Some(range_ms + SCRAPE_MS),
    }
}

fn known_differences() -> Vec<Known> {
    let mut k = vec![
        Known {
            query: r#"label_replace(demo_num_cpus, "~invalid", "", "src", "(.*)")"#.into(),
            why: "3.x accepts any UTF-8 label name",
            prometheus_equivalent: Some(
                r#"label_replace(demo_num_cpus, "valid", "", "src", "(.*)")"#.into(),
            ),
            agrees_after_start_ms: None,
        },
        Known {
            query: r#"label_join(demo_num_cpus, "~invalid", "-", "instance")"#.into(),
            why: "3.x accepts any UTF-8 label name",
            prometheus_equivalent: None,
            agrees_after_start_ms: None,
        },
        Known {
            query: "max_over_time((time() - max(demo_batch_last_success_timestamp_seconds) < 1000)[5m:10s] offset 5m)".into(),
            why: "3.x subquery ranges are left-open",
            prometheus_equivalent: Some(
                "max_over_time((time() - max(demo_batch_last_success_timestamp_seconds) < 1000)[299999ms:10s] offset 5m)".into(),
            ),
            agrees_after_start_ms: None,
        },
        Known {
            query: "avg_over_time(rate(demo_cpu_usage_seconds_total[1m])[2m:10s])".into(),
            why: "3.x subquery ranges are left-open",
            prometheus_equivalent: Some(
                "avg_over_time(rate(demo_cpu_usage_seconds_total[1m])[119999ms:10s])".into(),
            ),
            agrees_after_start_ms: None,
        },
    ];
    for (q, eq) in [
        (
            "max_over_time(demo_memory_usage_bytes[10m:])",
            Some("max_over_time(demo_memory_usage_bytes[599999ms:])"),
        ),
        ("rate(demo_cpu_usage_seconds_total[5m:])", None),
        (
            "quantile_over_time(0.9, rate(demo_cpu_usage_seconds_total[1m])[10m:15s])",
            Some("quantile_over_time(0.9, rate(demo_cpu_usage_seconds_total[1m])[599999ms:15s])"),
        ),
        (
            "avg_over_time(demo_memory_usage_bytes[5m:30s] offset 10m)",
            Some("avg_over_time(demo_memory_usage_bytes[299999ms:30s] offset 10m)"),
        ),
    ] {
        k.push(Known {
            query: q.into(),
            why: "3.x subquery ranges are left-open",
            prometheus_equivalent: eq.map(String::from),
            agrees_after_start_ms: None,
        });
    }
    k.push(Known {
        query: "demo_num_cpus atan2 demo_num_cpus".into(),
        why: "3.x drops the metric name after atan2, like after the other arithmetic operators",
        prometheus_equivalent: Some(
            r#"label_replace(demo_num_cpus atan2 demo_num_cpus, "__name__", "", "", "")"#.into(),
        ),
        agrees_after_start_ms: None,
    });
    for q in ["0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1"] {
        k.push(extrapolation_near_start(
            format!("histogram_quantile({q}, rate(demo_api_request_duration_seconds_bucket[1m]))"),
            60_000,
        ));
    }
    for (q, range_ms) in [
        (
            "histogram_quantile(0.9, sum by (le) (rate(demo_api_request_duration_seconds_bucket[5m])))",
            300_000,
        ),
        (
            "histogram_quantile(0.5, sum by (le, path) (rate(demo_api_request_duration_seconds_bucket[5m])))",
            300_000,
        ),
        (
            "histogram_quantile(0.99, sum by (le, method, status) (increase(demo_api_request_duration_seconds_bucket[15m])))",
            900_000,
        ),
        (
            "rate(demo_api_request_duration_seconds_sum[5m]) / rate(demo_api_request_duration_seconds_count[5m])",
            300_000,
        ),
        ("increase(demo_api_request_duration_seconds_count[1h])", 3_600_000),
        (
            r#"histogram_quantile(0.5, rate(demo_api_request_duration_seconds_bucket{le=~"0.1|0.5|\\+Inf"}[5m]))"#,
            300_000,
        ),
        (
            "topk(3, sum by (path, method) (rate(demo_api_request_duration_seconds_count[5m])))",
            300_000,
        ),
        (
            r#"sum(rate(demo_api_request_duration_seconds_count{status="500"}[5m])) / sum(rate(demo_api_request_duration_seconds_count[5m]))"#,
            300_000,
        ),
    ] {
        k.push(extrapolation_near_start(q.into(), range_ms));
    }
    k
}

/// How one query is evaluated on both servers.
enum Eval {
    Range { start: i64, end: i64, step: i64 },
    Instant { time: i64 },
}

impl Eval {
    fn describe(&self) -> String {
        match self {
            Eval::Range { start, end, step } => {
                format!(
                    "range {}..{} step {}s",
                    secs(*start),
                    secs(*end),
                    step / 1000
                )
            }
            Eval::Instant { time } => format!("instant at {}", secs(*time)),
        }
    }
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn evaluations() -> Vec<Eval> {
    let data_end = DATA_START_MS + DATA_MS;
    // The compliance tester's window: ten minutes ending twelve minutes before the newest data,
    // at a 10 s resolution.
    let end = data_end - 12 * 60_000;
    let start = end - 10 * 60_000;
    vec![
        Eval::Range {
            start,
            end,
            step: 10_000,
        },
        // The whole data and past its end: partial windows at the start, staleness at the end.
        Eval::Range {
            start: DATA_START_MS,
            end: data_end + 10 * 60_000,
            step: 60_000,
        },
        Eval::Instant { time: end },
        Eval::Instant {
            time: start + 3_500,
        },
        Eval::Instant {
            time: DATA_START_MS + 45_000,
        },
    ]
}

fn run(addr: SocketAddr, query: &str, eval: &Eval) -> Outcome {
    let (path, form) = match *eval {
        Eval::Range { start, end, step } => (
            "/api/v1/query_range",
            vec![
                ("query", query.to_string()),
                ("start", secs(start)),
                ("end", secs(end)),
                ("step", format!("{}", step as f64 / 1000.0)),
            ],
        ),
        Eval::Instant { time } => (
            "/api/v1/query",
            vec![("query", query.to_string()), ("time", secs(time))],
        ),
    };
    match server::query(addr, path, &form) {
        Ok(r) => {
            // sort() and sort_desc() order instant vectors; range results have no order.
            let ordered = query.starts_with("sort") && matches!(eval, Eval::Instant { .. });
            compare::parse(r.status, &r.text(), ordered)
        }
        Err(e) => Outcome::Error(format!("request failed: {e}")),
    }
}

#[test]
fn query_list_expands_like_the_compliance_tester() {
    let yaml = include_str!("../testdata/promql-diff/promql-test-queries.yml");
    let templates = cases::parse(yaml).unwrap();
    assert_eq!(templates.len(), 118);
    assert_eq!(templates.iter().filter(|t| t.should_fail).count(), 5);
    assert_eq!(
        templates
            .iter()
            .filter(|t| !t.variant_args.is_empty())
            .count(),
        50
    );
    let all: Vec<cases::Case> = templates
        .iter()
        .flat_map(|t| cases::expand(t).unwrap())
        .collect();
    assert_eq!(all.len(), 539);
    assert_eq!(all[0].query, "42");
    assert!(all.iter().any(|c| c.query == "-1 ^ 2"));
    assert!(all
        .iter()
        .any(|c| c.query == "rate(demo_cpu_usage_seconds_total[15m])"));
    assert!(all.iter().any(|c| c.query
        == "label_replace(demo_num_cpus, \"job\", \"destination-value-$1\", \"instance\", \"demo.promlabs.com:(.*)\")"));
    // The first argument varies slowest, as in the tester.
    let q: Vec<&str> = all
        .iter()
        .filter(|c| c.query.starts_with("quantile_over_time(-0.5,"))
        .map(|c| c.query.as_str())
        .collect();
    assert_eq!(q.len(), 6);
    assert_eq!(
        q[0],
        "quantile_over_time(-0.5, demo_memory_usage_bytes[1s])"
    );
    assert!(cases::expand(&cases::Template {
        query: "{{.nope}}(x)".into(),
        variant_args: vec!["nope".into()],
        should_fail: false,
    })
    .is_err());
}

#[test]
fn comparison_rules() {
    let a = compare::parse(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"b":"1","a":"x"},"value":[10.5,"1"]},{"metric":{"a":"y"},"value":[10.5,"NaN"]}]}}"#,
        false,
    );
    // Different order, same labels, a value within 1e-6.
    let b = compare::parse(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"y"},"value":[10.5,"NaN"]},{"metric":{"a":"x","b":"1"},"value":[10.5,"1.0000005"]}]}}"#,
        false,
    );
    assert_eq!(first_difference(&a, &b), None);
    // In order (sort/sort_desc), the same two series swapped differ.
    let ab = |body: &str| compare::parse(200, body, true);
    let body_a = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"b":"1","a":"x"},"value":[10.5,"1"]},{"metric":{"a":"y"},"value":[10.5,"NaN"]}]}}"#;
    let body_b = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"y"},"value":[10.5,"NaN"]},{"metric":{"a":"x","b":"1"},"value":[10.5,"1"]}]}}"#;
    assert!(first_difference(&ab(body_a), &ab(body_b)).is_some());
    assert_eq!(first_difference(&ab(body_a), &ab(body_a)), None);
    let c = compare::parse(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"y"},"value":[10.5,"NaN"]},{"metric":{"a":"x","b":"1"},"value":[10.5,"1.00001"]}]}}"#,
        false,
    );
    assert!(first_difference(&a, &c).unwrap().contains("eddy 1.00001"));
    let d = compare::parse(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"y"},"value":[10.5,"+Inf"]},{"metric":{"a":"x","b":"1"},"value":[10.5,"1"]}]}}"#,
        false,
    );
    assert!(first_difference(&a, &d).is_some());
    let e1 = compare::parse(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"x"}"#,
        false,
    );
    let e2 = compare::parse(
        422,
        r#"{"status":"error","errorType":"execution","error":"y"}"#,
        false,
    );
    assert_eq!(first_difference(&e1, &e2), None);
    assert!(first_difference(&e1, &a).is_some());
    let s1 = compare::parse(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
        false,
    );
    assert!(first_difference(&s1, &a).unwrap().contains("result type"));
}

#[test]
fn eddy_agrees_with_prometheus_on_the_compliance_queries() {
    let prom = match server::Prometheus::start() {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let (state, dir) = support::state(&[]);
    let eddy = server::Eddy::start(state, dir).unwrap();

    let series = data::generate(DATA_START_MS, DATA_START_MS + DATA_MS, SCRAPE_MS);
    let bodies =
        data::remote_write_bodies(&series, DATA_START_MS, DATA_START_MS + DATA_MS, 10 * 60_000);
    for body in &bodies {
        if let Err(e) = server::remote_write(prom.addr, body) {
            panic!("{e}\nprometheus log:\n{}", prom.log_tail());
        }
        server::remote_write(eddy.addr, body).unwrap();
    }

    // PROMQL_DIFF_SHOW=<query>: print both raw answers for one query at every evaluation.
    if let Ok(q) = std::env::var("PROMQL_DIFF_SHOW") {
        for eval in evaluations() {
            println!("== {}", eval.describe());
            println!("prometheus: {:?}", run(prom.addr, &q, &eval));
            println!("eddy:       {:?}", run(eddy.addr, &q, &eval));
        }
    }

    let yaml = include_str!("../testdata/promql-diff/promql-test-queries.yml");
    let compliance: Vec<cases::Case> = cases::parse(yaml)
        .unwrap()
        .iter()
        .flat_map(|t| cases::expand(t).unwrap())
        .collect();
    let extra = cases::parse_lines(include_str!("../testdata/promql-diff/extra-queries.txt"));
    let mut failures = Vec::new();
    for (name, list, floor) in [
        ("compliance list", &compliance, AGREEMENT_FLOOR),
        ("extra queries", &extra, EXTRA_AGREEMENT_FLOOR),
    ] {
        let agree = compare_list(&prom, &eddy, name, list, &mut failures);
        if agree < floor {
            failures.push(format!(
                "{name}: {agree} of {} queries agree with Prometheus, below the floor {floor}",
                list.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    left_open_boundaries(&prom, &eddy, &series);
}

/// Runs every query of `list` on both servers and prints the differences; returns how many
/// agree and pushes hard failures (should-fail queries answered, wrong explanations) to
/// `failures`.
fn compare_list(
    prom: &server::Prometheus,
    eddy: &server::Eddy,
    name: &str,
    list: &[cases::Case],
    failures: &mut Vec<String>,
) -> usize {
    let evals = evaluations();
    let known = known_differences();
    let first_diff = |prom_query: &str, eddy_query: &str| {
        evals.iter().find_map(|eval| {
            let want = run(prom.addr, prom_query, eval);
            let got = run(eddy.addr, eddy_query, eval);
            first_difference(&want, &got).map(|d| format!("{}: {d}", eval.describe()))
        })
    };
    let mut agree = 0;
    let mut intended = Vec::new();
    let mut unexplained = Vec::new();
    for case in list {
        let k = known.iter().find(|k| k.query == case.query);
        if case.should_fail && k.is_none() {
            for eval in &evals {
                if let Outcome::Data { .. } = run(eddy.addr, &case.query, eval) {
                    failures.push(format!("eddy answers {:?}, which must fail", case.query));
                    break;
                }
            }
        }
        let Some(d) = first_diff(&case.query, &case.query) else {
            agree += 1;
            continue;
        };
        match k {
            None => unexplained.push((case.query.clone(), d)),
            Some(k) => {
                if let Some(after) = k.agrees_after_start_ms {
                    let from = DATA_START_MS + after;
                    for eval in &evals {
                        let mut want = run(prom.addr, &case.query, eval);
                        let mut got = run(eddy.addr, &case.query, eval);
                        compare::drop_before(&mut want, from);
                        compare::drop_before(&mut got, from);
                        if let Some(e) = first_difference(&want, &got) {
                            failures.push(format!(
                                "documented difference not as documented: {} differs {}s \
                                 after the data start: {}: {e}",
                                k.query,
                                after / 1000,
                                eval.describe()
                            ));
                        }
                    }
                }
                if let Some(eq) = &k.prometheus_equivalent {
                    if let Some(e) = first_diff(eq, &case.query) {
                        failures.push(format!(
                            "documented difference not as documented: {} vs Prometheus {eq}: {e}",
                            k.query
                        ));
                    }
                }
                intended.push((case.query.clone(), k.why, d));
            }
        }
    }
    println!(
        "promql diff ({name}) against {}: {} queries, {} agree, {} differ ({} intended, {} unexplained)",
        prom.version,
        list.len(),
        agree,
        intended.len() + unexplained.len(),
        intended.len(),
        unexplained.len()
    );
    for (q, why, d) in &intended {
        println!("INTENDED {q}\n     ({why}) {d}");
    }
    for (q, d) in &unexplained {
        println!("UNEXPLAINED {q}\n     {d}");
    }
    agree
}

/// The scrape offsets keep samples off the query grid, so the compliance queries never put a
/// sample exactly on a window's left edge. Here samples are put there on purpose: 2.42 includes
/// them (left-closed windows), eddy, like 3.x, does not; a range 1 ms shorter on the Prometheus
/// side is the same left-open window.
fn left_open_boundaries(prom: &server::Prometheus, eddy: &server::Eddy, series: &[data::Series]) {
    let cpus0 = series
        .iter()
        .find(|s| {
            s.labels
                .iter()
                .any(|(k, v)| k == "__name__" && v == "demo_num_cpus")
                && s.labels.iter().any(|(_, v)| v == "demo.promlabs.com:10000")
        })
        .expect("generated demo_num_cpus of instance 0");
    let count = |addr, q: &str, t: i64| match run(addr, q, &Eval::Instant { time: t }) {
        Outcome::Data { series, .. } => series
            .into_iter()
            .filter(|(k, _)| k.contains("demo.promlabs.com:10000"))
            .map(|(_, p)| p[0].1)
            .collect::<Vec<f64>>(),
        Outcome::Error(e) => panic!("{q} at {t}: {e}"),
    };
    // A range selector whose left edge is exactly a sample of instance 0.
    let t = cpus0.samples[100].0 + 60_000;
    let in_window = |left_closed: bool| {
        let n = cpus0
            .samples
            .iter()
            .filter(|&&(ts, _)| ts <= t && (ts > t - 60_000 || (left_closed && ts == t - 60_000)))
            .count();
        vec![n as f64]
    };
    let (closed, open) = (in_window(true), in_window(false));
    assert_eq!(closed[0], open[0] + 1.0);
    let q = "count_over_time(demo_num_cpus[1m])";
    assert_eq!(count(prom.addr, q, t), closed);
    assert_eq!(count(eddy.addr, q, t), open);
    assert_eq!(
        count(prom.addr, "count_over_time(demo_num_cpus[59999ms])", t),
        open
    );
    // The lookback window: instance 0's last sample sits exactly 5m before the query time.
    let last = cpus0.samples[cpus0.samples.len() - 1].0;
    assert_eq!(count(prom.addr, "demo_num_cpus", last + 300_000), vec![4.0]);
    assert_eq!(
        count(eddy.addr, "demo_num_cpus", last + 300_000),
        Vec::<f64>::new()
    );
    assert_eq!(count(eddy.addr, "demo_num_cpus", last + 299_999), vec![4.0]);
    println!("left-open range and lookback windows: eddy follows 3.x, 2.42 is left-closed");
}
