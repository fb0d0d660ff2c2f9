//! Engine tests on hand-built ASTs over the in-memory store (independent of the parser).

use std::sync::atomic::AtomicBool;

use eddy_storage::{stale_nan, Labels, MatchOp, Matcher};

use super::*;
use crate::ast::*;
use crate::promqltest::mem::MemStorage;
use crate::promqltest::TestStorage;

const MIN: i64 = 60_000;

fn sel(name: &str) -> VectorSelector {
    VectorSelector {
        name: Some(name.into()),
        matchers: vec![Matcher::equal("__name__", name)],
        offset: 0,
        at: None,
    }
}

fn vs(name: &str) -> Expr {
    Expr::VectorSelector(sel(name))
}

fn ms(name: &str, range: i64) -> Expr {
    Expr::MatrixSelector(MatrixSelector {
        selector: sel(name),
        range,
    })
}

fn call(f: &str, args: Vec<Expr>) -> Expr {
    Expr::Call(Call {
        func: f.into(),
        args,
    })
}

fn agg(op: AggregateOp, e: Expr, by: &[&str]) -> Expr {
    Expr::Aggregate(AggregateExpr {
        op,
        expr: Box::new(e),
        param: None,
        grouping: by.iter().map(|s| s.to_string()).collect(),
        without: false,
    })
}

fn bin(op: BinaryOp, l: Expr, r: Expr, matching: Option<VectorMatching>) -> Expr {
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(l),
        rhs: Box::new(r),
        return_bool: false,
        matching,
    })
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Loads `values` every `step` ms from 0 (NaN-free; `None` = no sample).
fn load(db: &mut MemStorage, l: Labels, step: i64, values: &[Option<f64>]) {
    let s: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i as i64 * step, v)))
        .collect();
    db.append(l, &s);
}

fn instant(db: &MemStorage, e: &Expr, t: i64) -> Vec<(String, f64)> {
    let r = Engine::default()
        .instant(db, e, t, &AtomicBool::new(false))
        .unwrap();
    match r.value {
        Value::Vector(v) => v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
        Value::Scalar { v, .. } => vec![("scalar".into(), v)],
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn instant_selector_lookback_and_staleness() {
    let mut db = MemStorage::new();
    load(
        &mut db,
        labels(&[("__name__", "m")]),
        MIN,
        &[Some(1.0), Some(2.0), None, None, None, None, None, None],
    );
    db.append(
        labels(&[("__name__", "s")]),
        &[(0, 5.0), (MIN, stale_nan())],
    );
    assert_eq!(instant(&db, &vs("m"), MIN), vec![("m".into(), 2.0)]);
    // 5 minutes after the last sample (exclusive) the series is gone.
    assert_eq!(
        instant(&db, &vs("m"), 5 * MIN + MIN - 1),
        vec![("m".into(), 2.0)]
    );
    assert!(instant(&db, &vs("m"), 6 * MIN).is_empty());
    // A stale marker ends the series at once.
    assert_eq!(instant(&db, &vs("s"), 30_000), vec![("s".into(), 5.0)]);
    assert!(instant(&db, &vs("s"), MIN).is_empty());
}

#[test]
fn rate_handles_counter_reset_and_drops_name() {
    let mut db = MemStorage::new();
    // 0, 10, 20, restart to 5, 15 — increase is 10 + 10 + 5 + 10 = 35 over 4 minutes of samples.
    let vals = [0.0, 10.0, 20.0, 5.0, 15.0].map(Some);
    load(
        &mut db,
        labels(&[("__name__", "c_total"), ("job", "a")]),
        MIN,
        &vals,
    );
    let got = instant(
        &db,
        &call("increase", vec![ms("c_total", 5 * MIN)]),
        4 * MIN,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, r#"{job="a"}"#);
    // Extrapolated to the window start but not below zero: stays 35 * (4 + 0) / 4 ... plus half
    // an interval at the start capped by the zero point (0 at t=0 means no extension).
    assert!((got[0].1 - 35.0).abs() < 1e-9, "{}", got[0].1);
    let r = instant(&db, &call("rate", vec![ms("c_total", 5 * MIN)]), 4 * MIN);
    assert!((r[0].1 - 35.0 / 300.0).abs() < 1e-12);
}

#[test]
fn sum_by_and_group_left() {
    let mut db = MemStorage::new();
    load(
        &mut db,
        labels(&[("__name__", "busy"), ("job", "j1"), ("task", "0")]),
        MIN,
        &[Some(1.0)],
    );
    load(
        &mut db,
        labels(&[("__name__", "busy"), ("job", "j1"), ("task", "1")]),
        MIN,
        &[Some(3.0)],
    );
    load(
        &mut db,
        labels(&[("__name__", "busy"), ("job", "j2"), ("task", "0")]),
        MIN,
        &[Some(5.0)],
    );
    load(
        &mut db,
        labels(&[("__name__", "info"), ("job", "j1"), ("owner", "x")]),
        MIN,
        &[Some(1.0)],
    );
    let mut got = instant(&db, &agg(AggregateOp::Sum, vs("busy"), &["job"]), 0);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![(r#"{job="j1"}"#.into(), 4.0), (r#"{job="j2"}"#.into(), 5.0)]
    );
    let m = VectorMatching {
        card: Cardinality::ManyToOne,
        on: true,
        labels: vec!["job".into()],
        include: vec!["owner".into()],
    };
    let mut got = instant(&db, &bin(BinaryOp::Mul, vs("busy"), vs("info"), Some(m)), 0);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (r#"{job="j1", owner="x", task="0"}"#.into(), 1.0),
            (r#"{job="j1", owner="x", task="1"}"#.into(), 3.0)
        ]
    );
}

#[test]
fn many_to_many_is_an_error() {
    let mut db = MemStorage::new();
    load(
        &mut db,
        labels(&[("__name__", "a"), ("x", "1")]),
        MIN,
        &[Some(1.0)],
    );
    load(
        &mut db,
        labels(&[("__name__", "b"), ("x", "1"), ("y", "1")]),
        MIN,
        &[Some(1.0)],
    );
    load(
        &mut db,
        labels(&[("__name__", "b"), ("x", "1"), ("y", "2")]),
        MIN,
        &[Some(1.0)],
    );
    let m = VectorMatching {
        card: Cardinality::OneToOne,
        on: true,
        labels: vec!["x".into()],
        include: vec![],
    };
    let e = bin(BinaryOp::Add, vs("a"), vs("b"), Some(m));
    let err = Engine::default()
        .instant(&db, &e, 0, &AtomicBool::new(false))
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "found duplicate series for the match group {x=\"1\"} on the right hand-side"
        ),
        "{err}"
    );
}

#[test]
fn range_query_matches_instant_steps() {
    let mut db = MemStorage::new();
    let vals: Vec<Option<f64>> = (0..20).map(|i| Some(i as f64 * 2.0)).collect();
    load(
        &mut db,
        labels(&[("__name__", "g"), ("i", "0")]),
        30_000,
        &vals,
    );
    let e = call("avg_over_time", vec![ms("g", 2 * MIN)]);
    let engine = Engine::default();
    let r = engine
        .range(&db, &e, MIN, 8 * MIN, MIN, &AtomicBool::new(false))
        .unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 8);
    for &(t, v) in &m[0].points {
        let i = instant(&db, &e, t);
        assert_eq!(i[0].1, v, "at {t}");
    }
}

#[test]
fn subquery_steps_are_aligned() {
    let mut db = MemStorage::new();
    let vals: Vec<Option<f64>> = (0..11).map(|i| Some(i as f64)).collect();
    load(&mut db, labels(&[("__name__", "m")]), MIN, &vals);
    // count_over_time(m[5m:2m]) at 10m: inner steps at 6m, 8m, 10m (multiples of 2m in (5m, 10m]).
    let sq = Expr::Subquery(Subquery {
        expr: Box::new(vs("m")),
        range: 5 * MIN,
        step: Some(2 * MIN),
        offset: 0,
        at: None,
    });
    assert_eq!(
        instant(&db, &call("count_over_time", vec![sq.clone()]), 10 * MIN),
        vec![("{}".into(), 3.0)]
    );
    assert_eq!(
        instant(&db, &call("max_over_time", vec![sq]), 10 * MIN),
        vec![("{}".into(), 10.0)]
    );
}

#[test]
fn topk_and_limits() {
    let mut db = MemStorage::new();
    for (i, v) in [5.0, f64::NAN, 7.0, 1.0].into_iter().enumerate() {
        load(
            &mut db,
            labels(&[("__name__", "x"), ("i", &i.to_string())]),
            MIN,
            &[Some(v)],
        );
    }
    let e = Expr::Aggregate(AggregateExpr {
        op: AggregateOp::Topk,
        expr: Box::new(vs("x")),
        param: Some(Box::new(Expr::Number(2.0))),
        grouping: vec![],
        without: false,
    });
    assert_eq!(
        instant(&db, &e, 0),
        vec![(r#"x{i="2"}"#.into(), 7.0), (r#"x{i="0"}"#.into(), 5.0)]
    );
    let opts = EngineOptions {
        max_samples: 2,
        ..Default::default()
    };
    let err = Engine::new(opts)
        .instant(&db, &vs("x"), 0, &AtomicBool::new(false))
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples { limit: 2 }));
    let canceled = AtomicBool::new(true);
    let mut e = vs("x");
    for _ in 0..100 {
        e = call("abs", vec![e]);
    }
    let err = Engine::default()
        .instant(&db, &e, 0, &canceled)
        .unwrap_err();
    assert!(matches!(err, QueryError::Canceled));
}

#[test]
fn regex_matchers_and_absent() {
    let mut db = MemStorage::new();
    load(
        &mut db,
        labels(&[("__name__", "up"), ("job", "a")]),
        MIN,
        &[Some(1.0)],
    );
    let mut s = sel("up");
    s.matchers
        .push(Matcher::new(MatchOp::RegexMatch, "job", "b|c").unwrap());
    s.matchers.push(Matcher::equal("env", "prod"));
    let got = instant(&db, &call("absent", vec![Expr::VectorSelector(s)]), 0);
    assert_eq!(got, vec![(r#"{env="prod"}"#.into(), 1.0)]);
    assert!(instant(&db, &call("absent", vec![vs("up")]), 0).is_empty());
}

#[test]
fn go_style_float_format() {
    assert_eq!(format_g(1.5), "1.5");
    assert_eq!(format_g(1e21), "1e+21");
    assert_eq!(format_g(1e-5), "1e-05");
    assert_eq!(format_g(-2.0), "-2");
    assert_eq!(format_g(1e6), "1e+06");
    assert_eq!(format_g(123456.0), "123456");
    assert_eq!(format_g(f64::NAN), "NaN");
}

#[test]
fn huge_subquery_grid_is_rejected() {
    let mut db = MemStorage::new();
    load(&mut db, labels(&[("__name__", "m")]), MIN, &[Some(1.0)]);
    let sq = Expr::Subquery(Subquery {
        expr: Box::new(vs("m")),
        range: 365 * 24 * 60 * MIN,
        step: Some(1),
        offset: 0,
        at: None,
    });
    let e = call("count_over_time", vec![sq]);
    let err = Engine::default()
        .instant(&db, &e, 0, &AtomicBool::new(false))
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples { .. }), "{err}");
    let err = Engine::default()
        .range(&db, &vs("m"), 0, i64::MAX / 2, 1, &AtomicBool::new(false))
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples { .. }), "{err}");
}

/// Rough throughput check: `cargo test -p eddy-query --release --lib throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_rate_sum_by() {
    let mut db = MemStorage::new();
    let n_series = 2000;
    for i in 0..n_series {
        let s: Vec<(i64, f64)> = (0..240)
            .map(|k| (k * 15_000, (k * (i % 7 + 1)) as f64))
            .collect();
        db.append(
            labels(&[
                ("__name__", "c_total"),
                ("job", &format!("j{}", i % 20)),
                ("i", &i.to_string()),
            ]),
            &s,
        );
    }
    let e = agg(
        AggregateOp::Sum,
        call("rate", vec![ms("c_total", 5 * MIN)]),
        &["job"],
    );
    let t0 = std::time::Instant::now();
    let r = Engine::default()
        .range(&db, &e, 0, 3_600_000, 15_000, &AtomicBool::new(false))
        .unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    println!(
        "{} series, {} samples in {:?}",
        m.len(),
        n_series * 240,
        t0.elapsed()
    );
    assert_eq!(m.len(), 20);
}

#[test]
fn extreme_times_do_not_overflow() {
    let mut db = MemStorage::new();
    load(
        &mut db,
        labels(&[("__name__", "m")]),
        MIN,
        &[Some(1.0), Some(2.0), Some(3.0)],
    );
    let engine = Engine::default();
    let cancel = AtomicBool::new(false);
    for f in ["rate", "deriv", "irate", "avg_over_time"] {
        for (at, off, range) in [
            (i64::MAX, 0, i64::MAX),
            (i64::MIN, i64::MAX, 1),
            (0, i64::MIN + 1, i64::MAX),
        ] {
            let mut s = sel("m");
            s.at = Some(AtModifier::Timestamp(at));
            s.offset = off;
            let e = call(
                f,
                vec![Expr::MatrixSelector(MatrixSelector { selector: s, range })],
            );
            assert!(engine.instant(&db, &e, 0, &cancel).is_ok());
            let p = call("predict_linear", vec![e.clone(), Expr::Number(1e300)]);
            let _ = engine.instant(&db, &p, i64::MIN, &cancel);
        }
    }
    let mut s = sel("m");
    s.at = Some(AtModifier::Timestamp(i64::MAX));
    s.offset = i64::MIN + 1;
    let e = call(
        "rate",
        vec![Expr::MatrixSelector(MatrixSelector {
            selector: s.clone(),
            range: i64::MAX,
        })],
    );
    let engine = Engine::default();
    let cancel = AtomicBool::new(false);
    assert!(engine.instant(&db, &e, i64::MAX, &cancel).is_ok());
    assert!(engine
        .instant(&db, &Expr::VectorSelector(s), i64::MIN, &cancel)
        .is_ok());
    assert!(engine
        .range(&db, &vs("m"), i64::MAX - 10, i64::MAX, 3, &cancel)
        .is_ok());
    assert!(engine
        .range(&db, &vs("m"), i64::MIN, i64::MAX, i64::MAX, &cancel)
        .is_ok());
}

#[test]
fn point_bound_counts_the_steps_that_can_see_a_sample() {
    let steps: Vec<i64> = (0..=10).map(|i| i * 10).collect();
    // Steps 30, 40, 50, 60 see a sample in (t - 20, t] for samples at 25 and 45.
    assert_eq!(point_bound(&steps, &[25, 45], None, 0, 20), 4);
    // An offset shifts the steps: 40, 50, 60, 70.
    assert_eq!(point_bound(&steps, &[25, 45], None, 10, 20), 4);
    // A sample exactly on a step is seen from that step on.
    assert_eq!(point_bound(&steps, &[30], None, 0, 1), 1);
    assert_eq!(point_bound(&steps, &[25, 45], Some(50), 0, 20), steps.len());
    assert_eq!(point_bound(&steps, &[], None, 0, 20), 0);
    // Past the last step.
    assert_eq!(point_bound(&steps, &[200], None, 0, 20), 0);
}

/// One-to-one matching where every group has one series a side takes the pair path
/// (`vector_vector_pairs`); `ignoring() group_left` over the same data takes the step walk
/// and, with unique groups, has the same result labels. Gaps on either side, comparisons that
/// filter, `bool`, and a group with no partner must come out the same both ways.
#[test]
fn one_to_one_pairs_match_the_step_walk() {
    let mut db = MemStorage::new();
    for host in 0..6 {
        let used: Vec<Option<f64>> = (0..30)
            .map(|i| ((i + host) % 7 != 0).then_some(f64::from((i * 13 + host * 5) % 40)))
            .collect();
        let max: Vec<Option<f64>> = (0..30)
            .map(|i| ((i * host) % 5 != 1).then_some(f64::from(20 + host)))
            .collect();
        let h = host.to_string();
        load(
            &mut db,
            labels(&[("__name__", "used"), ("host", &h)]),
            MIN,
            &used,
        );
        if host != 4 {
            load(
                &mut db,
                labels(&[("__name__", "max"), ("host", &h)]),
                MIN,
                &max,
            );
        }
    }
    let walk = VectorMatching {
        card: Cardinality::ManyToOne,
        on: false,
        labels: vec![],
        include: vec![],
    };
    let engine = Engine::default();
    for op in [BinaryOp::Div, BinaryOp::Sub, BinaryOp::Gt, BinaryOp::Le] {
        for return_bool in [false, true] {
            if return_bool && !matches!(op, BinaryOp::Gt | BinaryOp::Le) {
                continue;
            }
            let run = |matching: Option<VectorMatching>| {
                let e = Expr::Binary(BinaryExpr {
                    op,
                    lhs: Box::new(vs("used")),
                    rhs: Box::new(vs("max")),
                    return_bool,
                    matching,
                });
                let r = engine
                    .range(&db, &e, 0, 29 * MIN, MIN, &AtomicBool::new(false))
                    .unwrap();
                let Value::Matrix(m) = r.value else { panic!() };
                m.into_iter()
                    .map(|s| (s.labels.to_string(), s.points))
                    .collect::<Vec<_>>()
            };
            let pairs = run(None);
            assert_eq!(pairs.len(), 5, "{op:?} bool={return_bool}");
            assert_eq!(pairs, run(Some(walk.clone())), "{op:?} bool={return_bool}");
        }
    }
}
