//! Property: a range query's value at each step equals the instant query at that time.
//! Random Flink-like data (counters with resets, gauges with NaN, series that start, stop
//! or go stale) and a fixed list of expressions covering selectors, range functions,
//! subqueries, aggregations and binary operators.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use eddy_query::engine::Engine;
use eddy_query::parser::parse;
use eddy_query::promqltest::mem::MemStorage;
use eddy_query::promqltest::TestStorage;
use eddy_query::value::Value;
use eddy_storage::{stale_nan, Labels};
use proptest::prelude::*;

const EXPRS: &[&str] = &[
    "m",
    "m offset 1m",
    "rate(c_total[2m])",
    "increase(c_total[3m]) * 2",
    "irate(c_total[2m])",
    "delta(m[3m])",
    "deriv(m[4m])",
    "predict_linear(m[4m], 60)",
    "avg_over_time(m[2m])",
    "max_over_time(m[3m]) - min_over_time(m[3m])",
    "count_over_time(m[1m])",
    "quantile_over_time(0.5, m[5m])",
    "stddev_over_time(m[5m])",
    "changes(m[5m])",
    "resets(c_total[10m])",
    "last_over_time(m[2m])",
    "sum by (job) (m)",
    "avg without (task) (m)",
    "count(m)",
    "max by (job) (rate(c_total[2m]))",
    "topk(2, m)",
    "bottomk(1, m) by (job)",
    "quantile(0.9, m)",
    "m > 0.5",
    "m * on(job, task) group_left c_total",
    "m / ignoring(task) group_left sum by (job) (m)",
    "m and c_total",
    "m or c_total",
    "m unless on(task) c_total",
    "max_over_time(rate(c_total[1m])[4m:30s])",
    "sum_over_time(m[3m:1m])",
    "abs(m) + 1",
    "clamp(m, 0.2, 0.8)",
    "absent(nonexistent)",
    "absent_over_time(m[1m])",
    "timestamp(m)",
    "scalar(count(m)) * m",
    "label_replace(m, \"x\", \"$1\", \"task\", \"(.*)\")",
    "count_values(\"v\", round(m))",
    "histogram_quantile(0.5, sum by (le) (rate(h_bucket[3m])))",
    "m @ 120",
    "rate(c_total[2m] @ 300 offset 1m)",
    "sum(m @ 200) + on() group_right m",
    "max_over_time(m[5m:30s] @ 400)",
    "topk(1, avg_over_time(m[3m] @ 200))",
];

/// One series' samples: `(step index, value)`; values NaN/stale/resets included.
fn series_strategy() -> impl Strategy<Value = Vec<(u32, f64)>> {
    prop::collection::vec(
        (
            0u32..40,
            prop_oneof![8 => 0.0f64..1.0, 1 => Just(f64::NAN), 1 => Just(stale_nan())],
        ),
        0..30,
    )
}

fn load(
    db: &mut MemStorage,
    name: &str,
    job: &str,
    task: &str,
    le: Option<&str>,
    pts: &[(u32, f64)],
    counter: bool,
) {
    let mut by_t: BTreeMap<i64, f64> = BTreeMap::new();
    let mut acc = 0.0;
    for &(i, v) in pts {
        let v = if counter && !v.is_nan() {
            // Counters grow, with an occasional reset when the random value is small.
            acc = if v < 0.05 { 0.0 } else { acc + v * 10.0 };
            acc
        } else {
            v
        };
        by_t.insert(i64::from(i) * 15_000, v);
    }
    let samples: Vec<(i64, f64)> = by_t.into_iter().collect();
    let mut pairs = vec![("__name__", name), ("job", job), ("task", task)];
    if let Some(le) = le {
        pairs.push(("le", le));
    }
    db.append(Labels::from_pairs(pairs), &samples);
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn range_steps_equal_instant_queries(
        data in prop::collection::vec(series_strategy(), 6),
        step_s in prop_oneof![Just(15i64), Just(30), Just(60), Just(45)],
        start_s in 0i64..300,
    ) {
        let mut db = MemStorage::new();
        load(&mut db, "m", "a", "0", None, &data[0], false);
        load(&mut db, "m", "a", "1", None, &data[1], false);
        load(&mut db, "m", "b", "0", None, &data[2], false);
        load(&mut db, "c_total", "a", "0", None, &data[3], true);
        load(&mut db, "c_total", "b", "0", None, &data[4], true);
        load(&mut db, "h_bucket", "a", "0", Some("1"), &data[5], true);
        load(&mut db, "h_bucket", "a", "0", Some("+Inf"), &data[5], true);
        let engine = Engine::default();
        let cancel = AtomicBool::new(false);
        let (start, end, step) = (start_s * 1000, start_s * 1000 + 8 * step_s * 1000, step_s * 1000);
        for q in EXPRS {
            let expr = parse(q).expect("test expression parses");
            let range = engine.range(&db, &expr, start, end, step, &cancel);
            let Ok(range) = range else {
                // An error in range mode must also be an error at some instant.
                let any_err = (0..=8).any(|i| engine.instant(&db, &expr, start + i * step, &cancel).is_err());
                prop_assert!(any_err, "{q}: range failed but no instant did");
                continue;
            };
            let Value::Matrix(m) = range.value else { panic!("range query returned {:?}", range.value) };
            for i in 0..=8 {
                let t = start + i * step;
                let inst = engine.instant(&db, &expr, t, &cancel);
                let Ok(inst) = inst else { continue };
                let mut want: Vec<(String, f64)> = match inst.value {
                    Value::Vector(v) => v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
                    Value::Scalar { v, .. } => vec![("{}".to_string(), v)],
                    other => panic!("{q}: unexpected {other:?}"),
                };
                let mut got: Vec<(String, f64)> = m
                    .iter()
                    .filter_map(|s| s.points.iter().find(|p| p.0 == t).map(|p| (s.labels.to_string(), p.1)))
                    .collect();
                want.sort_by(|a, b| a.0.cmp(&b.0));
                got.sort_by(|a, b| a.0.cmp(&b.0));
                prop_assert_eq!(want.len(), got.len(), "{} at {}: {:?} vs {:?}", q, t, want, got);
                for (w, g) in want.iter().zip(&got) {
                    prop_assert_eq!(&w.0, &g.0, "{} at {}", q, t);
                    prop_assert!(same(w.1, g.1), "{} at {} for {}: instant {} range {}", q, t, w.0, w.1, g.1);
                }
            }
        }
    }
}
