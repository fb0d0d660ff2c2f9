//! Tests of projected reads: which shapes are planned, and that a projected evaluation over
//! blocks and the head answers exactly as a full one (labels, times, value bits,
//! annotations).

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use eddy_storage::api::SeriesSet;
use eddy_storage::db::DbOptions;
use eddy_storage::{stale_nan, Db, Labels, Matcher, Projection, Querier, WriteBatch};

use super::*;
use crate::engine::{Engine, EngineOptions};
use crate::parser::parse;
use crate::value::{QueryError, QueryResult, Value};

const MIN: i64 = 60_000;
const H: i64 = 60 * MIN;

/// Reads through `inner`, in full even when asked for a projection (the reference answer),
/// and records what it was asked for.
struct Recorder<'a> {
    inner: &'a dyn Querier,
    project: bool,
    asked: Mutex<Vec<Option<Vec<String>>>>,
}

impl<'a> Recorder<'a> {
    fn new(inner: &'a dyn Querier, project: bool) -> Self {
        Recorder {
            inner,
            project,
            asked: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<Option<Vec<String>>> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

impl Querier for Recorder<'_> {
    fn select(
        &self,
        m: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Vec<eddy_storage::Series>> {
        self.inner.select(m, mint, maxt)
    }
    fn select_lazy(
        &self,
        m: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Box<dyn SeriesSet + '_>> {
        self.asked.lock().unwrap().push(None);
        self.inner.select_lazy(m, mint, maxt)
    }
    fn select_lazy_projected(
        &self,
        m: &[Matcher],
        mint: i64,
        maxt: i64,
        keep: &Projection,
    ) -> eddy_storage::Result<Box<dyn SeriesSet + '_>> {
        self.asked.lock().unwrap().push(Some(keep.names().to_vec()));
        if self.project {
            self.inner.select_lazy_projected(m, mint, maxt, keep)
        } else {
            self.inner.select_lazy(m, mint, maxt)
        }
    }
    fn series(&self, m: &[Matcher], mint: i64, maxt: i64) -> eddy_storage::Result<Vec<Labels>> {
        self.inner.series(m, mint, maxt)
    }
    fn label_names(
        &self,
        m: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Vec<String>> {
        self.inner.label_names(m, mint, maxt)
    }
    fn label_values(
        &self,
        name: &str,
        m: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Vec<String>> {
        self.inner.label_values(name, m, mint, maxt)
    }
}

/// A database with two blocks (`[0, 1h)`, `[1h, 2h)`) and a head (`[2h, 2h30m]`). Series of
/// `m` (a gauge) and `m_total` (a counter) for jobs a and b; the job a series differ only in
/// `task` (they collide when projected to `job`), and most are in both blocks and the head.
/// Stale markers end and restart some series.
fn flink_like_db(dir: &std::path::Path) -> Db {
    let opts = DbOptions {
        block_range_ms: H,
        max_block_range_ms: H,
        ..Default::default()
    };
    let db = Db::open(dir, opts).unwrap();
    let series = [
        ("m", "a", "1"),
        ("m", "a", "2"),
        ("m", "b", "1"),
        ("m_total", "a", "1"),
        ("m_total", "a", "2"),
        ("m_total", "b", "3"),
    ];
    for (part, (from, to)) in [(0, H), (H, 2 * H), (2 * H, 2 * H + 30 * MIN)]
        .into_iter()
        .enumerate()
    {
        let mut b = WriteBatch::new();
        for (k, (name, job, task)) in series.iter().enumerate() {
            // "m b 1" is missing from the first block; "m_total b 3" from the head.
            if (k == 2 && part == 0) || (k == 5 && part == 2) {
                continue;
            }
            let samples: Vec<(i64, f64)> = (from..to)
                .step_by(15_000)
                .map(|t| {
                    let i = t / 15_000 + k as i64;
                    let v = if name.ends_with("_total") {
                        // A counter that resets every 50 samples.
                        (i % 50) as f64 * 1.5
                    } else {
                        ((i * 7919) % 23) as f64 - 3.0
                    };
                    // Stale for a few minutes in each part for some series.
                    if k % 2 == 0 && (t / 15_000) % 120 == 40 {
                        (t, stale_nan())
                    } else {
                        (t, v)
                    }
                })
                .collect();
            b.add_series(
                [
                    ("__name__", *name),
                    ("job", *job),
                    ("task", *task),
                    ("tm", "tm-1"),
                ],
                &samples,
            );
        }
        db.append(&mut b).unwrap();
        if part < 2 {
            db.flush().unwrap();
        }
    }
    assert_eq!(db.blocks().len(), 2, "two blocks");
    db
}

/// Value bits, so NaNs compare and -0 differs from 0.
fn bits(r: &Result<QueryResult, QueryError>) -> String {
    match r {
        Err(e) => format!("error {e}"),
        Ok(r) => {
            let value = match &r.value {
                Value::Matrix(m) => m
                    .iter()
                    .map(|s| {
                        let pts: Vec<(i64, u64)> =
                            s.points.iter().map(|p| (p.0, p.1.to_bits())).collect();
                        format!("{} {pts:?}", s.labels)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                Value::Vector(v) => v
                    .iter()
                    .map(|s| format!("{} {} {}", s.labels, s.t, s.v.to_bits()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => format!("{other:?}"),
            };
            format!("{value}\nwarnings {:?}\ninfos {:?}", r.warnings, r.infos)
        }
    }
}

/// Every safe shape answers the same projected and in full, as range and instant queries
/// (instant ones at block edges, inside the head and after the data), with one thread and
/// several, and the projected run does ask for a projection.
#[test]
fn projected_answers_equal_full_answers_over_blocks_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = flink_like_db(dir.path());
    let queries = [
        "sum by (job) (m)",
        "min by (job) (m > 0)",
        "max by (job) (m > bool 0)",
        "count by (job) (0 < m)",
        "avg by (job) (-(m * 2) / 1000)",
        "group by (job) (abs(ceil(clamp(m, -1, 10))))",
        "stddev by (job) (round(m, 5))",
        "stdvar by (job) (clamp_min(sqrt(abs(m)), 1))",
        "quantile by (job) (0.9, m)",
        "sum(m)",
        "sum by (task) (m)",
        "sum by (job, __name__) ({__name__=~\"m|m_total\"})",
        "sum by (job) (rate(m_total[5m]))",
        "sum by (job) (rate(m[5m]))",
        "sum by (job) (rate({__name__=~\"m|m_total\"}[5m]))",
        "sum by (job) (increase(m_total[5m]) > 0)",
        "sum by (job) (irate(m_total[1m]))",
        "sum by (job) (resets(m_total[15m]))",
        "sum by (job) (changes(m[15m]))",
        "sum by (job) (delta(m[5m]))",
        "sum by (job) (deriv(m[5m]))",
        "max by (job) (max_over_time(m[5m]))",
        "min by (job) (last_over_time(m[5m]) > 0)",
        "sum by (job) (quantile_over_time(0.5, m[10m]))",
        "sum by (job) (count_over_time(m[5m] offset 3m))",
        "sum by (job) (predict_linear(m[5m], 60))",
        "topk(1, sum by (job) (rate(m_total[1m])))",
        "(time() * 1000 - min by (job) (m > 0)) / 1000",
        "sum by (job) (m @ 5400)",
    ];
    let grid = [
        (0, 2 * H + 40 * MIN, MIN),
        (H - 5 * MIN, 2 * H + 5 * MIN, 30_000),
    ];
    for threads in [1, 2] {
        let engine = Engine::new(EngineOptions {
            threads,
            ..Default::default()
        });
        for q in queries {
            let e = parse(q).unwrap();
            let full = Recorder::new(&db, false);
            let projected = Recorder::new(&db, true);
            let stop = AtomicBool::new(false);
            for (start, end, step) in grid {
                let want = engine.range(&full, &e, start, end, step, &stop);
                let got = engine.range(&projected, &e, start, end, step, &stop);
                assert_eq!(bits(&got), bits(&want), "{q} over [{start}, {end}]");
                assert!(want.is_ok(), "{q}: {want:?}");
            }
            for t in [H, H + 7 * MIN, 2 * H, 2 * H + 20 * MIN, 3 * H] {
                let want = engine.instant(&full, &e, t, &stop);
                let got = engine.instant(&projected, &e, t, &stop);
                assert_eq!(bits(&got), bits(&want), "{q} at {t}");
            }
            assert!(
                projected.asked().iter().all(|a| a.is_some()),
                "{q} was not read projected"
            );
        }
    }
}

/// The full answers themselves show what the test above relies on: series that collide when
/// projected to `job` are aggregated as separate inputs, `rate` over a gauge gets its note.
#[test]
fn collisions_and_annotations_survive_projection() {
    let dir = tempfile::tempdir().unwrap();
    let db = flink_like_db(dir.path());
    let q = Recorder::new(&db, true);
    let stop = AtomicBool::new(false);
    let engine = Engine::default();
    let count = engine
        .instant(
            &q,
            &parse("count by (job) (m_total)").unwrap(),
            H + MIN,
            &stop,
        )
        .unwrap();
    let Value::Vector(v) = count.value else {
        panic!("not a vector")
    };
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].labels, Labels::from_pairs([("job", "a")]));
    assert_eq!(v[0].v, 2.0);
    assert_eq!(q.asked(), [Some(vec!["job".to_string()])]);
    let rate = engine
        .instant(
            &q,
            &parse("sum by (job) (rate(m[5m]))").unwrap(),
            H + MIN,
            &stop,
        )
        .unwrap();
    assert_eq!(rate.infos.len(), 1, "{:?}", rate.infos);
    assert!(rate.infos[0].contains("\"m\""));
    // The selector fixes the name, so the note takes it from there: no `__name__` read.
    assert_eq!(q.asked(), [Some(vec!["job".to_string()])]);
    // A name chosen by regex is read with the series.
    let rate = engine
        .instant(
            &q,
            &parse("sum by (job) (rate({__name__=~\"m\"}[5m]))").unwrap(),
            H + MIN,
            &stop,
        )
        .unwrap();
    assert_eq!(rate.infos.len(), 1, "{:?}", rate.infos);
    assert!(rate.infos[0].contains("\"m\""));
    assert_eq!(
        q.asked(),
        [Some(vec!["__name__".to_string(), "job".to_string()])]
    );
}

/// Shapes outside the safe list read in full (and answer as before).
#[test]
fn unsafe_shapes_read_every_label() {
    let dir = tempfile::tempdir().unwrap();
    let db = flink_like_db(dir.path());
    let engine = Engine::default();
    let stop = AtomicBool::new(false);
    for query in [
        "sum without (task) (m)",
        "topk by (job) (1, m)",
        "count_values by (job) (\"v\", m)",
        "sum by (job) (m / m)",
        "sum by (job) (m and m_total)",
        "sum by (job) (label_replace(m, \"job\", \"x\", \"task\", \"1\"))",
        "sum by (job) (sort(m))",
        "sum by (job) (rate(m_total[5m:1m]))",
        "sum by (job) (timestamp(m))",
        "sum by (job) (absent_over_time(m[5m]))",
    ] {
        let q = Recorder::new(&db, true);
        // Some fail, as they should: label_replace gives two series one label set.
        let _ = engine.range(&q, &parse(query).unwrap(), 0, 2 * H, MIN, &stop);
        let asked = q.asked();
        assert!(!asked.is_empty(), "{query}");
        assert!(asked.iter().all(|a| a.is_none()), "{query}: {asked:?}");
    }
}

/// The kept names for `query`'s outermost aggregation, or `None` when not projected.
fn kept(query: &str) -> Option<Vec<String>> {
    let e = parse(query).unwrap();
    match e.unparen() {
        Expr::Aggregate(a) => plan(a).map(|p| p.keep.names().to_vec()),
        other => panic!("not an aggregation: {other:?}"),
    }
}

#[test]
fn safe_shapes_are_projected_to_the_grouping() {
    let job = Some(vec!["job".to_string()]);
    let with_name = Some(vec!["__name__".to_string(), "job".to_string()]);
    for q in [
        "sum by (job) (x)",
        "min by (job) (x > 0)",
        "max by (job) (0 < bool x)",
        "avg by (job) (-(x * 2) / 1000)",
        "count by (job) (x > scalar(y))",
        "group by (job) (abs(ceil(clamp(x, 0, 10))))",
        "stddev by (job) (round(x, 5))",
        "stdvar by (job) (clamp_min(sqrt(x), 1))",
        "quantile by (job) (0.9, x)",
        "sum by (job) (irate(x[5m]))",
        "max by (job) (max_over_time(x[5m]) > 0)",
        "sum by (job) (quantile_over_time(0.5, x[5m]))",
        "sum by (job) (resets((x[15m])))",
        "sum by (job) (predict_linear(x[5m] offset 1m, 60))",
        "sum by (job) (rate(x[5m]))",
        "sum by (job) (increase({__name__=\"x\", a=~\"b\"}[5m]) > 0)",
    ] {
        assert_eq!(kept(q), job, "{q}");
    }
    for q in [
        "sum by (job) (rate({__name__=~\"x|y\"}[5m]))",
        "sum by (job) (increase({job=\"a\"}[5m]) > 0)",
        "sum by (job, __name__) (x)",
    ] {
        assert_eq!(kept(q), with_name, "{q}");
    }
    assert_eq!(kept("avg(x)"), Some(vec![]));
}

#[test]
fn unsafe_shapes_are_not_projected() {
    for q in [
        "sum without (job) (x)",
        "topk by (job) (3, x)",
        "bottomk(3, x)",
        "limitk(3, x)",
        "limit_ratio(0.5, x)",
        "count_values by (job) (\"v\", x)",
        "sum by (job) (x / y)",
        "sum by (job) (x and y)",
        "sum by (job) (x or vector(1))",
        "sum by (job) (label_replace(x, \"job\", \"$1\", \"a\", \"(.*)\"))",
        "sum by (job) (label_join(x, \"job\", \",\", \"a\"))",
        "sum by (job) (absent(x))",
        "sum by (job) (absent_over_time(x[5m]))",
        "sum by (job) (sort(x))",
        "sum by (job) (rate(x[5m:1m]))",
        "sum by (job) (max_over_time((x > 0)[5m:]))",
        "sum by (job) (timestamp(x))",
        "sum by (job) (hour(x))",
        "sum by (job) (histogram_quantile(0.9, x))",
        "sum by (job) (max by (job, a) (x))",
        "sum by (job) (vector(1))",
    ] {
        assert_eq!(kept(q), None, "{q}");
    }
}

/// An aggregation over an aggregation: the inner one plans its own read, the outer one
/// none; `topk` over a `sum by` leaves the sum's plan alone.
#[test]
fn nested_aggregations_plan_their_own_reads() {
    let e = parse("topk(5, sum by (task) (rate({__name__=~\"x\"}[1m])))").unwrap();
    let Expr::Aggregate(top) = e.unparen() else {
        panic!("not an aggregation")
    };
    assert!(plan(top).is_none());
    let Expr::Aggregate(inner) = top.expr.unparen() else {
        panic!("not an aggregation")
    };
    let p = plan(inner).unwrap();
    assert_eq!(p.keep.names(), ["__name__", "task"]);
    let Expr::Call(c) = inner.expr.unparen() else {
        panic!("not a call")
    };
    let Expr::MatrixSelector(ms) = &c.args[0] else {
        panic!("not a matrix selector")
    };
    assert!(p.is_for(&ms.selector));
}
