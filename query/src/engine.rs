//! The PromQL evaluator: runs an [`ast::Expr`](crate::ast::Expr) against a
//! [`Querier`](eddy_storage::Querier) with Prometheus 3.x semantics.
//!
//! Every node is evaluated over the whole step grid at once (an instant query is a grid of one
//! step), producing series whose points sit on step timestamps. Selectors read storage once
//! per node over the full time span and slide over the decoded columns; operators walk the
//! steps with per-series cursors. The `__name__` label is removed late ("delayed name
//! removal", as Prometheus's test engine runs): series carry a `drop_name` flag and the name
//! is stripped when the final result is assembled.
//!
//! Submodules: [`selector`] (vector/matrix selectors, subqueries), [`binary`] (operators and
//! vector matching), [`aggregate`] (aggregation operators), [`projection`] (which selectors
//! read only the labels an aggregation keeps).

mod aggregate;
mod binary;
mod parallel;
mod projection;
mod selector;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eddy_storage::{Labels, Querier};

use crate::ast::{AtModifier, Expr, UnaryOp, ValueType};
use crate::functions;
use crate::value::{QueryError, QueryResult, RangeSeries, Sample, Value};

pub(crate) use parallel::{map_series, Stop};
pub(crate) use selector::{point_bound, Columns, RangeInput, Window};

/// Result alias for evaluation.
pub(crate) type EvalResult<T> = std::result::Result<T, QueryError>;

/// Engine limits and defaults.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5 m).
    pub lookback_delta_ms: i64,
    /// Maximum samples a query may hold or load (Prometheus `--query.max-samples`).
    pub max_samples: usize,
    /// Maximum evaluation time.
    pub timeout: Duration,
    /// Step of subqueries written without one (`x[5m:]`), like Prometheus's evaluation interval.
    pub default_subquery_step_ms: i64,
    /// Threads one query may use to decode and evaluate series; 0 means one per core.
    /// Small selections always run on the calling thread.
    pub threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60 * 1000,
            threads: 0,
        }
    }
}

/// The PromQL engine. Stateless between queries; `Send + Sync`.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// A series inside the evaluator: points on step timestamps (instant vectors) or raw sample
/// points (range vectors), plus the delayed name-removal flag.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    pub(crate) labels: Labels,
    pub(crate) drop_name: bool,
    pub(crate) points: Vec<(i64, f64)>,
}

/// An evaluated node.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// A string literal.
    String(String),
    /// An instant vector over the step grid.
    Vector(Vec<Series>),
    /// A range vector (only at the top of an instant query).
    Matrix(Vec<Series>),
}

impl Engine {
    /// An engine with the given options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The options in force.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `expr` at one instant `t_ms`.
    pub fn instant(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        t_ms: i64,
        cancel: &AtomicBool,
    ) -> Result<QueryResult, QueryError> {
        let mut ev = Evaluator::new(&self.opts, q, cancel, t_ms, t_ms, 1);
        let val = ev.eval(expr)?;
        let value = match val {
            Val::Scalar(v) => Value::Scalar {
                t: t_ms,
                v: v.first().copied().unwrap_or(f64::NAN),
            },
            Val::String(s) => Value::String { t: t_ms, v: s },
            Val::Vector(series) => {
                let series = finish_vector(series)?;
                Value::Vector(
                    series
                        .into_iter()
                        .filter_map(|s| {
                            s.points.first().map(|&(t, v)| Sample {
                                labels: s.labels,
                                t,
                                v,
                            })
                        })
                        .collect(),
                )
            }
            Val::Matrix(series) => {
                let series = finish_matrix(series)?;
                Value::Matrix(
                    series
                        .into_iter()
                        .map(|s| RangeSeries {
                            labels: s.labels,
                            points: s.points,
                        })
                        .collect(),
                )
            }
        };
        Ok(ev.into_result(value))
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms`; returns a matrix sorted by labels.
    pub fn range(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: &AtomicBool,
    ) -> Result<QueryResult, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let ty = value_type(expr);
        if ty != ValueType::Scalar && ty != ValueType::Vector {
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                ty.describe()
            )));
        }
        let mut ev = Evaluator::new(&self.opts, q, cancel, start_ms, end_ms, step_ms);
        ev.check_grid()?;
        let val = ev.eval(expr)?;
        let series = match val {
            Val::Scalar(v) => vec![Series {
                labels: Labels::default(),
                drop_name: false,
                points: ev.step_times().zip(v).collect(),
            }],
            Val::Vector(series) => finish_matrix(series)?,
            Val::String(_) | Val::Matrix(_) => {
                return Err(QueryError::BadData(
                    "range query must return a scalar or an instant vector".into(),
                ))
            }
        };
        let mut out: Vec<RangeSeries> = series
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .map(|s| RangeSeries {
                labels: s.labels,
                points: s.points,
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(ev.into_result(Value::Matrix(out)))
    }
}

/// The number of cores this process may use, asked once (on Linux the answer reads cgroup
/// files, too slow to repeat per query).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Strips `__name__` from series marked for it; duplicates are an error (instant vectors).
fn finish_vector(mut series: Vec<Series>) -> EvalResult<Vec<Series>> {
    for s in &mut series {
        if s.drop_name {
            drop_metadata_labels(&mut s.labels);
        }
    }
    let mut seen = HashSet::with_capacity(series.len());
    for s in &series {
        if !s.points.is_empty() && !seen.insert(&s.labels) {
            return Err(same_labelset());
        }
    }
    Ok(series)
}

/// Strips `__name__` where marked and merges series that end up with the same labels
/// (as long as their points do not collide in time).
pub(crate) fn finish_matrix(mut series: Vec<Series>) -> EvalResult<Vec<Series>> {
    for s in &mut series {
        if s.drop_name {
            drop_metadata_labels(&mut s.labels);
            s.drop_name = false;
        }
    }
    merge_same_labels(series)
}

/// Merges series with identical labels; overlapping timestamps are an error.
pub(crate) fn merge_same_labels(series: Vec<Series>) -> EvalResult<Vec<Series>> {
    // Almost always every label set is distinct: find that out on borrowed labels, without
    // cloning each label set into the index below.
    {
        let mut seen: HashSet<&Labels> = HashSet::with_capacity(series.len());
        if series.iter().all(|s| seen.insert(&s.labels)) {
            return Ok(series);
        }
    }
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut merged = false;
    for s in series {
        match index.get(&s.labels) {
            Some(&i) => {
                out[i].points.extend(s.points);
                out[i].drop_name |= s.drop_name;
                merged = true;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.0);
            if s.points.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(same_labelset());
            }
        }
    }
    Ok(out)
}

/// Removes the metric name and the other metadata labels Prometheus drops with it
/// (`__type__`, `__unit__`).
pub(crate) fn drop_metadata_labels(l: &mut Labels) {
    l.remove(eddy_storage::labels::METRIC_NAME);
    l.remove("__type__");
    l.remove("__unit__");
}

/// The Prometheus error for two output series with one label set.
pub(crate) fn same_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// The evaluation state of one query.
pub(crate) struct Evaluator<'a> {
    pub(crate) opts: &'a EngineOptions,
    pub(crate) q: &'a dyn Querier,
    cancel: &'a AtomicBool,
    deadline: Instant,
    /// Threads for per-series work (see [`EngineOptions::threads`]).
    threads: usize,
    /// Current step grid (changes inside subqueries).
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
    /// The top-level query's start and end, for `@ start()` / `@ end()`.
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    /// The top-level query's step (0 for instant queries), for `step()`.
    pub(crate) query_step: i64,
    /// Samples loaded or produced so far (checked against `max_samples`).
    pub(crate) samples: usize,
    ticks: u32,
    pub(crate) warnings: Vec<String>,
    pub(crate) infos: Vec<String>,
    /// Selectors to read projected, planned by the aggregations being evaluated (innermost
    /// last; see [`projection`]).
    projected: Vec<projection::Planned>,
}

impl<'a> Evaluator<'a> {
    fn new(
        opts: &'a EngineOptions,
        q: &'a dyn Querier,
        cancel: &'a AtomicBool,
        start: i64,
        end: i64,
        step: i64,
    ) -> Self {
        Evaluator {
            opts,
            q,
            cancel,
            deadline: Instant::now() + opts.timeout,
            threads: match opts.threads {
                0 => cores(),
                n => n,
            },
            start,
            end,
            step,
            query_start: start,
            query_end: end,
            query_step: if start == end && step == 1 { 0 } else { step },
            samples: 0,
            ticks: 0,
            warnings: Vec::new(),
            infos: Vec::new(),
            projected: Vec::new(),
        }
    }

    fn into_result(self, value: Value) -> QueryResult {
        QueryResult {
            value,
            warnings: self.warnings,
            infos: self.infos,
            samples_scanned: self.samples as u64,
        }
    }

    /// Number of steps in the current grid.
    pub(crate) fn nsteps(&self) -> usize {
        let n = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.step) + 1;
        usize::try_from(n.max(0)).unwrap_or(usize::MAX)
    }

    /// The step timestamps of the current grid.
    pub(crate) fn step_times(&self) -> impl Iterator<Item = i64> + 'static {
        let (start, end, step) = (self.start, self.end, self.step);
        std::iter::successors(Some(start), move |&t| t.checked_add(step))
            .take_while(move |&t| t <= end)
    }

    /// Index of step timestamp `t` in the current grid.
    #[inline]
    pub(crate) fn step_index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }

    /// Cancellation and timeout check; cheap enough to call per step or per series.
    #[inline]
    pub(crate) fn check(&mut self) -> EvalResult<()> {
        self.ticks = self.ticks.wrapping_add(1);
        if !self.ticks.is_multiple_of(64) {
            return Ok(());
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(QueryError::Canceled);
        }
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// The cancellation flag and deadline, for worker threads.
    pub(crate) fn stop(&self) -> Stop<'a> {
        Stop {
            cancel: self.cancel,
            deadline: self.deadline,
        }
    }

    /// Rejects step grids with more steps than the sample limit (a grid is allocated per node).
    pub(crate) fn check_grid(&self) -> EvalResult<()> {
        if self.nsteps() > self.opts.max_samples {
            return Err(QueryError::TooManySamples {
                limit: self.opts.max_samples,
            });
        }
        Ok(())
    }

    /// Accounts for `n` more samples in memory.
    pub(crate) fn add_samples(&mut self, n: usize) -> EvalResult<()> {
        self.samples += n;
        if self.samples > self.opts.max_samples {
            return Err(QueryError::TooManySamples {
                limit: self.opts.max_samples,
            });
        }
        Ok(())
    }

    /// Records a warning annotation once.
    pub(crate) fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    /// Records an info annotation once.
    pub(crate) fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    /// Resolves an `@` modifier to a timestamp.
    pub(crate) fn at_time(&self, at: Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
        })
    }

    /// Evaluates any expression over the current grid.
    pub(crate) fn eval(&mut self, expr: &Expr) -> EvalResult<Val> {
        self.check()?;
        if self.start != self.end && is_step_invariant_node(expr) {
            return self.eval_once_and_repeat(expr);
        }
        self.eval_node(expr)
    }

    /// Evaluates a step-invariant expression (everything pinned by `@`) at the first step
    /// only and repeats the result on every step, as Prometheus does.
    fn eval_once_and_repeat(&mut self, expr: &Expr) -> EvalResult<Val> {
        let saved_end = self.end;
        self.end = self.start;
        let res = self.eval_node(expr);
        self.end = saved_end;
        let times: Vec<i64> = self.step_times().collect();
        Ok(match res? {
            Val::Scalar(v) => {
                Val::Scalar(vec![v.first().copied().unwrap_or(f64::NAN); times.len()])
            }
            Val::Vector(mut series) => {
                for s in &mut series {
                    let v = s.points.first().map_or(f64::NAN, |p| p.1);
                    s.points = times.iter().map(|&t| (t, v)).collect();
                }
                self.add_samples(series.len() * times.len())?;
                Val::Vector(series)
            }
            other => other,
        })
    }

    fn eval_node(&mut self, expr: &Expr) -> EvalResult<Val> {
        match expr {
            Expr::Paren(inner) => self.eval(inner),
            Expr::Number(v) => Ok(Val::Scalar(vec![*v; self.nsteps()])),
            Expr::String(s) => Ok(Val::String(s.clone())),
            // A string result that is not UTF-8 is returned with U+FFFD in place of the bad
            // bytes (Go's JSON encoder also writes U+FFFD for them).
            Expr::ByteString(b) => Ok(Val::String(String::from_utf8_lossy(b).into_owned())),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let input = self.eval_range_input(expr)?;
                Ok(Val::Matrix(input.into_matrix(self)?))
            }
            Expr::Unary(op, inner) => {
                let v = self.eval(inner)?;
                Ok(match (op, v) {
                    (UnaryOp::Pos, v) => v,
                    (UnaryOp::Neg, Val::Scalar(mut v)) => {
                        v.iter_mut().for_each(|x| *x = -*x);
                        Val::Scalar(v)
                    }
                    (UnaryOp::Neg, Val::Vector(mut series)) => {
                        for s in &mut series {
                            s.drop_name = true;
                            s.points.iter_mut().for_each(|p| p.1 = -p.1);
                        }
                        Val::Vector(series)
                    }
                    (UnaryOp::Neg, _) => {
                        return Err(QueryError::Execution("unary expression only allowed on expressions of type scalar or instant vector".into()))
                    }
                })
            }
            Expr::Binary(b) => self.eval_binary(b),
            Expr::Aggregate(a) => self.eval_aggregate(a),
            Expr::Call(c) => functions::eval_call(self, c),
        }
    }

    /// Evaluates an expression that must be a scalar (function and aggregation parameters).
    pub(crate) fn eval_scalar(&mut self, expr: &Expr) -> EvalResult<Vec<f64>> {
        match self.eval(expr)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::Execution(format!(
                "expected scalar, got {}",
                value_type(expr).describe()
            ))),
        }
    }

    /// Evaluates an expression that must be an instant vector.
    pub(crate) fn eval_vector(&mut self, expr: &Expr) -> EvalResult<Vec<Series>> {
        match self.eval(expr)? {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::Execution(format!(
                "expected instant vector, got {}",
                value_type(expr).describe()
            ))),
        }
    }
}

/// Walks a vector's series step by step: for each step, which series have a point there.
pub(crate) struct StepCursor {
    pos: Vec<usize>,
}

impl StepCursor {
    pub(crate) fn new(n: usize) -> Self {
        StepCursor { pos: vec![0; n] }
    }

    /// Fills `dst` with `(series index, value)` of every series that has a point at `ts`.
    /// Steps must be visited in increasing order.
    pub(crate) fn gather(&mut self, series: &[Series], ts: i64, dst: &mut Vec<(usize, f64)>) {
        dst.clear();
        for (i, s) in series.iter().enumerate() {
            let p = &mut self.pos[i];
            if let Some(&(t, v)) = s.points.get(*p) {
                if t == ts {
                    dst.push((i, v));
                    *p += 1;
                }
            }
        }
    }
}

/// Collects output series by label set while walking steps; rejects two points of one series
/// at one step.
#[derive(Default)]
pub(crate) struct OutBuilder {
    pub(crate) series: Vec<Series>,
    index: HashMap<Labels, usize>,
}

impl OutBuilder {
    /// The output slot for `labels`, created on first use.
    pub(crate) fn slot(&mut self, labels: &Labels, drop_name: bool) -> usize {
        if let Some(&i) = self.index.get(labels) {
            return i;
        }
        let i = self.series.len();
        self.index.insert(labels.clone(), i);
        self.series.push(Series {
            labels: labels.clone(),
            drop_name,
            points: Vec::new(),
        });
        i
    }

    /// Appends a point to slot `i`.
    pub(crate) fn push(&mut self, i: usize, t: i64, v: f64) -> EvalResult<()> {
        let s = &mut self.series[i];
        if s.points.last().is_some_and(|p| p.0 == t) {
            return Err(same_labelset());
        }
        s.points.push((t, v));
        Ok(())
    }

    /// The non-empty output series.
    pub(crate) fn finish(self) -> Vec<Series> {
        self.series
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect()
    }
}

/// The static type of an expression (mirrors the parser's type checking).
pub fn value_type(expr: &Expr) -> ValueType {
    match expr {
        Expr::Number(_) => ValueType::Scalar,
        Expr::String(_) | Expr::ByteString(_) => ValueType::String,
        Expr::VectorSelector(_) => ValueType::Vector,
        Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
        Expr::Unary(_, e) | Expr::Paren(e) => value_type(e),
        Expr::Binary(b) => {
            if value_type(&b.lhs) == ValueType::Scalar && value_type(&b.rhs) == ValueType::Scalar {
                ValueType::Scalar
            } else {
                ValueType::Vector
            }
        }
        Expr::Aggregate(_) => ValueType::Vector,
        Expr::Call(c) => functions::return_type(&c.func).unwrap_or(ValueType::Vector),
    }
}

/// Functions whose result depends on the evaluation time even with constant arguments.
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// True when `expr` selects data only through `@`-pinned selectors or subqueries and uses
/// no time-dependent function, so it has one value for all steps. Literals alone do not
/// count (they are cheap either way).
fn is_step_invariant_node(expr: &Expr) -> bool {
    fn walk(e: &Expr, pinned: &mut bool) -> bool {
        match e {
            Expr::Number(_) | Expr::String(_) | Expr::ByteString(_) => true,
            Expr::VectorSelector(vs) => {
                *pinned = true;
                vs.at.is_some()
            }
            Expr::MatrixSelector(ms) => {
                *pinned = true;
                ms.selector.at.is_some()
            }
            Expr::Subquery(sq) => {
                *pinned = true;
                sq.at.is_some()
            }
            Expr::Paren(inner) | Expr::Unary(_, inner) => walk(inner, pinned),
            Expr::Binary(b) => walk(&b.lhs, pinned) && walk(&b.rhs, pinned),
            Expr::Aggregate(a) => {
                walk(&a.expr, pinned) && a.param.as_deref().is_none_or(|p| walk(p, pinned))
            }
            Expr::Call(c) => {
                !AT_UNSAFE_FUNCTIONS.contains(&c.func.as_str())
                    && !c.args.is_empty()
                    && c.args.iter().all(|a| walk(a, pinned))
            }
        }
    }
    if matches!(value_type(expr), ValueType::Matrix | ValueType::String) {
        return false;
    }
    let mut pinned = false;
    walk(expr, &mut pinned) && pinned
}

/// Prometheus's `labels.String()` form: `{a="b", c="d"}` (the name inside the braces).
pub(crate) fn labels_string(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, lb) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&lb.name);
        s.push('=');
        s.push_str(&format!("{:?}", lb.value));
    }
    s.push('}');
    s
}

/// Formats a float like Go's `%g` / `strconv.FormatFloat(f, 'g', -1, 64)`: shortest
/// round-trip digits, exponent form for exponents below -4 or from 6 up.
pub(crate) fn format_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests;
