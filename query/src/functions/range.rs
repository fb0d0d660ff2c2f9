//! Functions over range vectors: `rate`/`increase`/`delta` (extrapolated), `irate`/`idelta`,
//! `deriv`/`predict_linear`, `double_exponential_smoothing`, `changes`/`resets`, and the
//! `*_over_time` family. One pass per series: the window slides over the decoded points.

use super::{arg, kahan_inc, quantile};
use crate::ast::{Call, Expr};
use crate::engine::{
    format_g, map_series, point_bound, Columns, EvalResult, Evaluator, RangeInput, Series, Val,
    Window,
};
use crate::value::QueryError;

/// True for functions that take a range vector.
pub(crate) fn is_range_function(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "double_exponential_smoothing"
            | "holt_winters"
            | "changes"
            | "resets"
            | "avg_over_time"
            | "count_over_time"
            | "sum_over_time"
            | "min_over_time"
            | "max_over_time"
            | "last_over_time"
            | "first_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "quantile_over_time"
            | "mad_over_time"
            | "present_over_time"
            | "absent_over_time"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
            | "ts_of_max_over_time"
            | "ts_of_min_over_time"
    )
}

/// The index of a range function's range-vector argument (the others are scalars).
pub(crate) fn matrix_arg(name: &str) -> usize {
    if name == "quantile_over_time" {
        1
    } else {
        0
    }
}

/// True for range functions that read nothing of a series' labels except maybe the metric
/// name ([`reads_name`]) and keep each series' labels (all but `absent_over_time`, whose
/// output labels come from the selector's matchers): the engine may read their input
/// projected (`engine::projection`).
pub(crate) fn keeps_labels(name: &str) -> bool {
    RangeFn::parse(name).is_some()
}

/// True for range functions whose annotations read the metric name: `rate` and `increase`
/// note "metric might not be a counter".
pub(crate) fn reads_name(name: &str) -> bool {
    matches!(
        RangeFn::parse(name),
        Some(RangeFn::Rate | RangeFn::Increase)
    )
}

/// A range-vector function, resolved from its name once per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    DoubleExponentialSmoothing,
    Changes,
    Resets,
    Avg,
    Count,
    Sum,
    Min,
    Max,
    TsOfMin,
    TsOfMax,
    Last,
    First,
    TsOfLast,
    TsOfFirst,
    Stddev,
    Stdvar,
    Present,
    Quantile,
    Mad,
}

impl RangeFn {
    fn parse(name: &str) -> Option<RangeFn> {
        use RangeFn::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "deriv" => Deriv,
            "predict_linear" => PredictLinear,
            "double_exponential_smoothing" | "holt_winters" => DoubleExponentialSmoothing,
            "changes" => Changes,
            "resets" => Resets,
            "avg_over_time" => Avg,
            "count_over_time" => Count,
            "sum_over_time" => Sum,
            "min_over_time" => Min,
            "max_over_time" => Max,
            "ts_of_min_over_time" => TsOfMin,
            "ts_of_max_over_time" => TsOfMax,
            "last_over_time" => Last,
            "first_over_time" => First,
            "ts_of_last_over_time" => TsOfLast,
            "ts_of_first_over_time" => TsOfFirst,
            "stddev_over_time" => Stddev,
            "stdvar_over_time" => Stdvar,
            "present_over_time" => Present,
            "quantile_over_time" => Quantile,
            "mad_over_time" => Mad,
            _ => return None,
        })
    }
}

/// Per-step context of a window computation.
struct Win {
    /// Window bounds `(start, end]`.
    start: i64,
    end: i64,
    /// Window length in seconds.
    range_secs: f64,
    /// Scalar parameters at this step.
    p0: f64,
    p1: f64,
    /// Reference time for `predict_linear`'s intercept (the step time, even with `@`).
    intercept_t: i64,
}

/// One worker thread's buffers.
#[derive(Default)]
struct Scratch {
    cols: Columns,
    /// Values to sort for the quantile functions.
    sort: Vec<f64>,
    /// For `changes`/`resets`: `pairs_before[k]` counts the counted pairs `(j - 1, j)` with
    /// `j < k`, so any window's count is a difference of two entries instead of a re-scan
    /// (consecutive windows overlap by all but one step).
    pairs_before: Vec<u32>,
}

/// Fills `pairs_before` for `vals` (see [`Scratch::pairs_before`]).
fn count_pairs(vals: &[f64], counted: fn(f64, f64) -> bool, pairs_before: &mut Vec<u32>) {
    pairs_before.clear();
    pairs_before.push(0);
    let mut n = 0u32;
    for k in 0..vals.len() {
        if k > 0 && counted(vals[k - 1], vals[k]) {
            n += 1;
        }
        pairs_before.push(n);
    }
}

/// `changes`: the value differs from the previous one (two NaNs are no change).
fn is_change(prev: f64, cur: f64) -> bool {
    cur != prev && !(cur.is_nan() && prev.is_nan())
}

/// `resets`: the value dropped.
fn is_reset(prev: f64, cur: f64) -> bool {
    cur < prev
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, c: &Call) -> EvalResult<Val> {
    let name = c.func.as_str();
    let matrix_idx = matrix_arg(name);
    let mut params: Vec<Vec<f64>> = Vec::new();
    for (i, a) in c.args.iter().enumerate() {
        if i != matrix_idx {
            params.push(ev.eval_scalar(a)?);
        }
    }
    let matrix_arg = arg(&c.args, matrix_idx)?;
    let input = ev.eval_range_input(matrix_arg)?;
    if name == "absent_over_time" {
        return absent_over_time(ev, input, matrix_arg);
    }
    let f = RangeFn::parse(name)
        .ok_or_else(|| QueryError::Execution(format!("function {name:?} is not supported")))?;
    let steps: Vec<i64> = ev.step_times().collect();
    let work = input.sample_hint() + input.len() * steps.len();
    let (input_ref, params_ref) = (&input, &params);
    let range_secs = input.range as f64 / 1000.0;
    // Series are independent: decode and slide each on whichever thread takes it.
    let results = map_series(
        input.len(),
        ev.threads_for(work),
        ev.stop(),
        Scratch::default,
        |i, sc| {
            let (ts, vals) = input_ref.read(i, &mut sc.cols)?;
            let pair_counts = match f {
                RangeFn::Changes => Some(is_change as fn(f64, f64) -> bool),
                RangeFn::Resets => Some(is_reset as fn(f64, f64) -> bool),
                _ => None,
            };
            if let Some(counted) = pair_counts {
                count_pairs(vals, counted, &mut sc.pairs_before);
            }
            // Sized once; see `point_bound`.
            let cap = point_bound(&steps, ts, input_ref.at, input_ref.offset, input_ref.range);
            let mut points = Vec::with_capacity(cap);
            let mut w = Window::default();
            for (step, &t) in steps.iter().enumerate() {
                let end = input_ref.window_end(t);
                let r = w.slide(ts, end, input_ref.range);
                if r.is_empty() {
                    continue;
                }
                if pair_counts.is_some() {
                    // Pairs with both samples in the window: (j - 1, j) for j in start+1..end.
                    let n = sc.pairs_before[r.end] - sc.pairs_before[r.start + 1];
                    points.push((t, f64::from(n)));
                    continue;
                }
                let ctx = Win {
                    start: end.saturating_sub(input_ref.range),
                    end,
                    range_secs,
                    p0: params_ref.first().map_or(f64::NAN, |p| p[step]),
                    p1: params_ref.get(1).map_or(f64::NAN, |p| p[step]),
                    intercept_t: t,
                };
                if let Some(v) = compute(f, &ts[r.clone()], &vals[r], &ctx, &mut sc.sort)? {
                    points.push((t, v));
                }
            }
            Ok((ts.len(), points))
        },
    )?;
    let from_storage = input.is_stored();
    let keep_name = matches!(f, RangeFn::Last | RangeFn::First);
    // Keep `reads_name` in step with this: projected reads keep the name only for those.
    let counter_check = reads_name(name);
    // A read projected without `__name__` (the selector fixes the name) still notes it.
    let fixed_name = match matrix_arg.unparen() {
        Expr::MatrixSelector(ms) => ms.selector.fixed_metric_name(),
        _ => None,
    };
    let bad_q = |q: f64| q.is_nan() || !(0.0..=1.0).contains(&q);
    let warn_quantile =
        f == RangeFn::Quantile && params.first().is_some_and(|p| p.iter().any(|&q| bad_q(q)));
    let mut out = Vec::new();
    // The metric name checked last: series come sorted by labels, so a selector's series of
    // one metric follow each other and the note is formatted once, not once per series.
    let mut checked_name = String::new();
    for ((labels, drop_name), (raw, points)) in input.into_labels().into_iter().zip(results) {
        if from_storage {
            ev.add_samples(raw)?;
        }
        if points.is_empty() {
            continue;
        }
        if warn_quantile {
            for &(t, _) in &points {
                let q = params[0][ev.step_index(t)];
                if bad_q(q) {
                    ev.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        format_g(q)
                    ));
                }
            }
        }
        if counter_check {
            if let Some(n) = labels
                .metric_name()
                .or(fixed_name)
                .filter(|n| *n != checked_name)
            {
                if !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|suf| n.ends_with(suf))
                {
                    ev.info(format!(
                        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
                    ));
                }
                checked_name.clear();
                checked_name.push_str(n);
            }
        }
        ev.add_samples(points.len())?;
        out.push(Series {
            labels,
            drop_name: drop_name || !keep_name,
            points,
        });
    }
    Ok(Val::Vector(out))
}

/// One function over one window (`ts`/`vals` non-empty); `None` means no output sample.
/// `sort` is scratch for the quantile functions.
fn compute(
    f: RangeFn,
    ts: &[i64],
    vals: &[f64],
    c: &Win,
    sort: &mut Vec<f64>,
) -> EvalResult<Option<f64>> {
    use RangeFn::*;
    Ok(match f {
        Rate => extrapolated_rate(ts, vals, c, true, true),
        Increase => extrapolated_rate(ts, vals, c, true, false),
        Delta => extrapolated_rate(ts, vals, c, false, false),
        Irate => instant_value(ts, vals, true),
        Idelta => instant_value(ts, vals, false),
        Deriv => (ts.len() >= 2).then(|| linear_regression(ts, vals, ts[0]).0),
        PredictLinear => (ts.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(ts, vals, c.intercept_t);
            slope * c.p0 + intercept
        }),
        DoubleExponentialSmoothing => {
            let (sf, tf) = (c.p0, c.p1);
            if sf <= 0.0 || sf >= 1.0 {
                return Err(QueryError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(QueryError::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                )));
            }
            (vals.len() >= 2).then(|| double_exponential_smoothing(vals, sf, tf))
        }
        Changes => Some(vals.windows(2).filter(|p| is_change(p[0], p[1])).count() as f64),
        Resets => Some(vals.windows(2).filter(|p| is_reset(p[0], p[1])).count() as f64),
        Avg => Some(avg(vals)),
        Count => Some(vals.len() as f64),
        Sum => {
            let (mut s, mut k) = (0.0, 0.0);
            for &v in vals {
                (s, k) = kahan_inc(v, s, k);
            }
            Some(if s.is_infinite() { s } else { s + k })
        }
        Min => Some(extreme(ts, vals, |cur, best| cur < best).1),
        Max => Some(extreme(ts, vals, |cur, best| cur > best).1),
        TsOfMin => Some(extreme(ts, vals, |cur, best| cur <= best).0 as f64 / 1000.0),
        TsOfMax => Some(extreme(ts, vals, |cur, best| cur >= best).0 as f64 / 1000.0),
        Last => vals.last().copied(),
        First => vals.first().copied(),
        TsOfLast => ts.last().map(|&t| t as f64 / 1000.0),
        TsOfFirst => ts.first().map(|&t| t as f64 / 1000.0),
        Stddev => Some(variance(vals).sqrt()),
        Stdvar => Some(variance(vals)),
        Present => Some(1.0),
        Quantile => {
            sort.clear();
            sort.extend_from_slice(vals);
            Some(quantile(c.p0, sort))
        }
        Mad => {
            if vals.iter().any(|v| v.is_nan()) {
                Some(f64::NAN)
            } else {
                sort.clear();
                sort.extend_from_slice(vals);
                let median = quantile(0.5, sort);
                sort.iter_mut().for_each(|v| *v = (*v - median).abs());
                Some(quantile(0.5, sort))
            }
        }
    })
}

/// `rate`, `increase` and `delta`: the change over the window, corrected for counter resets
/// and extrapolated towards the window edges (at most half a sample interval beyond the
/// data, and not below zero for counters).
fn extrapolated_rate(
    ts: &[i64],
    vals: &[f64],
    c: &Win,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let n = ts.len();
    if n < 2 {
        return None;
    }
    let (first, last) = ((ts[0], vals[0]), (ts[n - 1], vals[n - 1]));
    let mut result = last.1 - first.1;
    // Resets are rare: a branch-free scan (which vectorizes) finds whether there are any
    // before the ordered loop adds them up.
    if is_counter && any_drop(vals) {
        for p in vals.windows(2) {
            if p[1] < p[0] {
                result += p[0];
            }
        }
    }
    let mut to_start = (first.0 as f64 - c.start as f64) / 1000.0;
    let mut to_end = (c.end as f64 - last.0 as f64) / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_interval = sampled / (n - 1) as f64;
    let threshold = avg_interval * 1.1;
    if to_start >= threshold {
        to_start = avg_interval / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.1 >= 0.0 {
            to_zero = sampled * (first.1 / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_interval / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= c.range_secs;
    }
    Some(result * factor)
}

/// True if some value is smaller than the one before it (a counter reset).
#[inline]
fn any_drop(vals: &[f64]) -> bool {
    let mut drop = false;
    for (a, b) in vals.iter().zip(&vals[1..]) {
        drop |= b < a;
    }
    drop
}

/// `irate` / `idelta`: from the last two samples.
fn instant_value(ts: &[i64], vals: &[f64], is_rate: bool) -> Option<f64> {
    let n = ts.len();
    if n < 2 {
        return None;
    }
    let (prev, last) = ((ts[n - 2], vals[n - 2]), (ts[n - 1], vals[n - 1]));
    let interval = last.0 - prev.0;
    if interval == 0 {
        return None;
    }
    let mut v = last.1;
    // Only a real drop (a counter reset) keeps the last value; NaN compares false.
    let is_reset = last.1 < prev.1;
    if !is_rate || !is_reset {
        v = last.1 - prev.1;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares slope and intercept, with x in seconds relative to `intercept_t`.
fn linear_regression(ts: &[i64], vals: &[f64], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = vals[0];
    let mut const_y = true;
    for (i, (&t, &v)) in ts.iter().zip(vals).enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t as f64 - intercept_t as f64) / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn double_exponential_smoothing(vals: &[f64], sf: f64, tf: f64) -> f64 {
    let mut s0 = 0.0;
    let mut s1 = vals[0];
    let mut b = vals[1] - vals[0];
    for (i, &v) in vals.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    s1
}

/// Mean with Kahan summation, falling back to an incremental mean on overflow.
fn avg(vals: &[f64]) -> f64 {
    let (mut sum, mut count) = (vals[0], 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for &v in &vals[1..] {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// The (timestamp, value) selected by `better`; NaN is replaced by any later value.
fn extreme(ts: &[i64], vals: &[f64], better: fn(f64, f64) -> bool) -> (i64, f64) {
    let (mut t, mut best) = (ts[0], vals[0]);
    for (&pt, &v) in ts.iter().zip(vals) {
        if better(v, best) || best.is_nan() {
            best = v;
            t = pt;
        }
    }
    (t, best)
}

/// Population variance (Welford with Kahan compensation).
fn variance(vals: &[f64]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &v in vals {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `absent_over_time`: 1 at steps where no series has a sample in the window.
fn absent_over_time(
    ev: &mut Evaluator<'_>,
    input: RangeInput<'_>,
    matrix_arg: &Expr,
) -> EvalResult<Val> {
    let mut present = vec![false; ev.nsteps()];
    let mut cols = Columns::default();
    for i in 0..input.len() {
        ev.check()?;
        let (ts, _) = input.read(i, &mut cols)?;
        if input.is_stored() {
            ev.add_samples(ts.len())?;
        }
        let mut w = Window::default();
        for (p, t) in present.iter_mut().zip(ev.step_times()) {
            if !w.slide(ts, input.window_end(t), input.range).is_empty() {
                *p = true;
            }
        }
    }
    let points: Vec<(i64, f64)> = ev
        .step_times()
        .zip(present)
        .filter(|(_, p)| !p)
        .map(|(t, _)| (t, 1.0))
        .collect();
    if points.is_empty() {
        return Ok(Val::Vector(Vec::new()));
    }
    let labels = match matrix_arg.unparen() {
        Expr::MatrixSelector(ms) => super::labels::absent_labels(&ms.selector.matchers),
        _ => Default::default(),
    };
    Ok(Val::Vector(vec![Series {
        labels,
        drop_name: true,
        points,
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(w: &[(i64, f64)]) -> (Vec<i64>, Vec<f64>) {
        w.iter().copied().unzip()
    }

    fn win(start: i64, end: i64) -> Win {
        Win {
            start,
            end,
            range_secs: (end - start) as f64 / 1000.0,
            p0: f64::NAN,
            p1: f64::NAN,
            intercept_t: end,
        }
    }

    #[test]
    fn rate_extrapolates_and_handles_resets() {
        // Samples every 10 s from 10 s to 50 s in a 60 s window ending at 60 s.
        let w: Vec<(i64, f64)> = (1..=5).map(|i| (i * 10_000, i as f64 * 10.0)).collect();
        let c = win(0, 60_000);
        // 40 units over 40 s, extrapolated by 10 s on each side (below the 1.1 × interval threshold).
        let (ts, vs) = cols(&w);
        let inc = extrapolated_rate(&ts, &vs, &c, true, false).unwrap();
        assert!((inc - 60.0).abs() < 1e-9, "{inc}");
        // A reset: 10, 20, 5 -> increase 20 + 5 - 10 + ... counts the drop as a reset.
        let w2 = vec![(10_000, 10.0), (20_000, 20.0), (30_000, 5.0)];
        let (ts, vs) = cols(&w2);
        let raw = extrapolated_rate(&ts, &vs, &win(10_000, 30_000), true, false).unwrap();
        assert!((raw - 15.0).abs() < 1e-9, "{raw}");
    }

    #[test]
    fn irate_uses_last_two() {
        assert_eq!(
            instant_value(&[0, 10_000, 20_000], &[1.0, 5.0, 7.0], true),
            Some(0.2)
        );
        let reset = ([0, 10_000], [10.0, 3.0]);
        assert_eq!(instant_value(&reset.0, &reset.1, true), Some(0.3));
        assert_eq!(instant_value(&reset.0, &reset.1, false), Some(-7.0));
    }

    #[test]
    fn regression_on_a_line() {
        let w: Vec<(i64, f64)> = (0..5).map(|i| (i * 1000, 2.0 * i as f64 + 1.0)).collect();
        let (ts, vs) = cols(&w);
        let (slope, intercept) = linear_regression(&ts, &vs, 0);
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 1.0).abs() < 1e-12);
    }

    #[test]
    fn pair_counts_equal_a_rescan_of_every_window() {
        let vals = [
            1.0,
            3.0,
            2.0,
            2.0,
            f64::NAN,
            f64::NAN,
            5.0,
            0.0,
            0.0,
            7.0,
            -1.0,
        ];
        for (counted, name) in [
            (is_change as fn(f64, f64) -> bool, "changes"),
            (is_reset as fn(f64, f64) -> bool, "resets"),
        ] {
            let mut before = Vec::new();
            count_pairs(&vals, counted, &mut before);
            for a in 0..vals.len() {
                for b in a + 1..=vals.len() {
                    let rescan = vals[a..b]
                        .windows(2)
                        .filter(|p| counted(p[0], p[1]))
                        .count();
                    assert_eq!(
                        (before[b] - before[a + 1]) as usize,
                        rescan,
                        "{name} over {a}..{b}"
                    );
                }
            }
        }
    }
}
