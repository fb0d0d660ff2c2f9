//! Evaluating series on several threads must not change a single bit of any answer: the same
//! queries over the same Flink-shaped data give identical results (values, series order,
//! annotations, errors, samples counted) with one thread and with several, and from the real
//! database (blocks plus head, read lazily) as from the in-memory store (read eagerly).
//! The data is large enough that the engine really goes parallel.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::AtomicBool;

use eddy_query::engine::{Engine, EngineOptions};
use eddy_query::parser::parse;
use eddy_query::promqltest::mem::MemStorage;
use eddy_query::promqltest::TestStorage;
use eddy_query::value::Value;
use eddy_storage::{stale_nan, Db, DbOptions, Labels, Querier, WriteBatch};

const SERIES: usize = 300;
const STEP: i64 = 10_000;
const HOUR: i64 = 3_600_000;
const HOURS: i64 = 4;

const EXPRS: &[&str] = &[
    "m",
    "timestamp(m)",
    "rate(m[5m])",
    "sum by (job) (rate(m[5m]))",
    "increase(m[2m] offset 3m)",
    "irate(m[1m])",
    "deriv(m[5m])",
    "predict_linear(m[10m], 600)",
    "max_over_time(m[5m])",
    "min_over_time(m[3m]) - avg_over_time(m[3m])",
    "quantile_over_time(0.9, m[5m])",
    "quantile_over_time(1.5, m[5m])",
    "mad_over_time(m[5m])",
    "stddev_over_time(m[5m])",
    "sum_over_time(m[5m])",
    "count_over_time(m[30s])",
    "changes(m[5m]) + resets(m[5m])",
    "last_over_time(m[1m])",
    "ts_of_max_over_time(m[5m])",
    "absent_over_time(m[1m])",
    "double_exponential_smoothing(m[5m], 0.5, 0.5)",
    "double_exponential_smoothing(m[5m], 2, 0.5)",
    "max_over_time(rate(m[2m])[10m:1m])",
    "topk(3, m)",
];

/// Series `i` at time `t`: counters with resets, gauges with NaN, stale markers now and then.
fn value(i: usize, t: i64) -> f64 {
    let k = t / STEP;
    if (k + i as i64) % 211 == 0 {
        return stale_nan();
    }
    if i.is_multiple_of(7) {
        if (k + i as i64) % 53 == 0 {
            return f64::NAN;
        }
        return ((k * 37 + i as i64 * 11) % 1000) as f64 / 8.0;
    }
    // A counter that resets every 500 samples, offset per series.
    ((k + i as i64 * 13) % 500) as f64 * (1.0 + (i % 5) as f64 * 0.25)
}

fn labels(i: usize) -> [(&'static str, String); 3] {
    [
        ("__name__", "m".to_string()),
        ("job", format!("job-{}", i % 6)),
        ("task", format!("{i}")),
    ]
}

fn batch(from: i64, to: i64) -> WriteBatch<'static> {
    let mut b = WriteBatch::new();
    let mut pts = Vec::new();
    for i in 0..SERIES {
        pts.clear();
        pts.extend((from..to).step_by(STEP as usize).map(|t| (t, value(i, t))));
        b.add_series(labels(i), &pts);
    }
    b
}

/// A canonical form of a result with every float as its bits.
fn canon(r: Result<eddy_query::value::QueryResult, eddy_query::value::QueryError>) -> String {
    let r = match r {
        Ok(r) => r,
        Err(e) => return format!("error: {e}"),
    };
    let mut s = format!(
        "warnings {:?} infos {:?} samples {}\n",
        r.warnings, r.infos, r.samples_scanned
    );
    match r.value {
        Value::Matrix(m) => {
            for series in m {
                s.push_str(&format!("{}:", series.labels));
                for (t, v) in series.points {
                    s.push_str(&format!(" {t}={:x}", v.to_bits()));
                }
                s.push('\n');
            }
        }
        other => s.push_str(&format!("{other:?}")),
    }
    s
}

fn run(q: &dyn Querier, threads: usize, expr: &str) -> String {
    let engine = Engine::new(EngineOptions {
        threads,
        max_samples: 100_000_000,
        ..Default::default()
    });
    let e = parse(expr).unwrap();
    let cancel = AtomicBool::new(false);
    canon(engine.range(q, &e, 10 * 60_000, HOURS * HOUR, 60_000, &cancel))
}

#[test]
fn one_thread_and_many_give_identical_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    // Three hours into blocks, the last one in the head.
    db.append(&mut batch(0, 3 * HOUR)).unwrap();
    db.flush().unwrap();
    assert!(!db.blocks().is_empty());
    let outcome = db.append(&mut batch(3 * HOUR, HOURS * HOUR)).unwrap();
    assert_eq!(outcome.rejected_total(), 0);
    assert!(db.head_stats().series > 0);

    let mut mem = MemStorage::new();
    for i in 0..SERIES {
        let l = Labels::from_pairs(labels(i));
        let pts: Vec<(i64, f64)> = (0..HOURS * HOUR)
            .step_by(STEP as usize)
            .map(|t| (t, value(i, t)))
            .collect();
        mem.append(l, &pts);
    }

    for expr in EXPRS {
        let one = run(&db, 1, expr);
        // Every expression answers something, except absent_over_time over present data.
        let answered = one.lines().count() > 1 || one.starts_with("error");
        assert_eq!(answered, !expr.starts_with("absent"), "{expr}: {one}");
        assert_eq!(one, run(&db, 3, expr), "{expr}: db, 1 vs 3 threads");
        assert_eq!(one, run(&mem, 1, expr), "{expr}: db vs in-memory store");
        assert_eq!(
            one,
            run(&mem, 2, expr),
            "{expr}: in-memory store, 2 threads"
        );
    }
}
