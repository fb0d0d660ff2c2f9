//! Functions over range vectors: `rate`/`increase`/`delta` (extrapolated), `irate`/`idelta`,
//! `deriv`/`predict_linear`, `double_exponential_smoothing`, `changes`/`resets`, and the
//! `*_over_time` family. One pass per series: the window slides over the decoded points.

use eddy_storage::labels::METRIC_NAME;

use super::{arg, kahan_inc, quantile};
use crate::ast::{Call, Expr};
use crate::engine::{format_g, EvalResult, Evaluator, Series, Val};
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

pub(crate) fn eval(ev: &mut Evaluator<'_>, c: &Call) -> EvalResult<Val> {
    let name = c.func.as_str();
    let matrix_idx = if name == "quantile_over_time" { 1 } else { 0 };
    let mut params: Vec<Vec<f64>> = Vec::new();
    for (i, a) in c.args.iter().enumerate() {
        if i != matrix_idx {
            params.push(ev.eval_scalar(a)?);
        }
    }
    let matrix_arg = arg(&c.args, matrix_idx)?;
    let input = ev.eval_range_input(matrix_arg)?;
    if name == "absent_over_time" {
        return absent_over_time(ev, &input, matrix_arg);
    }
    let keep_name = name == "last_over_time" || name == "first_over_time";
    let mut out = Vec::with_capacity(input.series.len());
    let counter_check = name == "rate" || name == "increase";
    for s in &input.series {
        ev.check()?;
        let mut points = Vec::new();
        let mut w = crate::engine::Window::default();
        for (step, ts) in ev.step_times().enumerate() {
            let end = input.window_end(ts);
            let window = w.slide(&s.points, end, input.range);
            if window.is_empty() {
                continue;
            }
            let ctx = Win {
                start: end.saturating_sub(input.range),
                end,
                range_secs: input.range as f64 / 1000.0,
                p0: params.first().map_or(f64::NAN, |p| p[step]),
                p1: params.get(1).map_or(f64::NAN, |p| p[step]),
                intercept_t: ts,
            };
            if let Some(v) = compute(ev, name, window, &ctx)? {
                points.push((ts, v));
            }
        }
        if points.is_empty() {
            continue;
        }
        if counter_check {
            if let Some(n) = s.labels.metric_name() {
                if !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|suf| n.ends_with(suf))
                {
                    ev.info(format!(
                        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
                    ));
                }
            }
        }
        ev.add_samples(points.len())?;
        out.push(Series {
            labels: s.labels.clone(),
            drop_name: s.drop_name || !keep_name,
            points,
        });
    }
    Ok(Val::Vector(out))
}

/// One function over one window; `None` means no output sample.
fn compute(
    ev: &mut Evaluator<'_>,
    name: &str,
    w: &[(i64, f64)],
    c: &Win,
) -> EvalResult<Option<f64>> {
    Ok(match name {
        "rate" => extrapolated_rate(w, c, true, true),
        "increase" => extrapolated_rate(w, c, true, false),
        "delta" => extrapolated_rate(w, c, false, false),
        "irate" => instant_value(w, true),
        "idelta" => instant_value(w, false),
        "deriv" => (w.len() >= 2).then(|| linear_regression(w, w[0].0).0),
        "predict_linear" => (w.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(w, c.intercept_t);
            slope * c.p0 + intercept
        }),
        "double_exponential_smoothing" | "holt_winters" => {
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
            (w.len() >= 2).then(|| double_exponential_smoothing(w, sf, tf))
        }
        "changes" => {
            let n = w
                .windows(2)
                .filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan()))
                .count();
            Some(n as f64)
        }
        "resets" => Some(w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64),
        "avg_over_time" => Some(avg(w)),
        "count_over_time" => Some(w.len() as f64),
        "sum_over_time" => {
            let (mut s, mut k) = (0.0, 0.0);
            for p in w {
                (s, k) = kahan_inc(p.1, s, k);
            }
            Some(if s.is_infinite() { s } else { s + k })
        }
        "min_over_time" => Some(extreme(w, |cur, best| cur < best).1),
        "max_over_time" => Some(extreme(w, |cur, best| cur > best).1),
        "ts_of_min_over_time" => Some(extreme(w, |cur, best| cur <= best).0 as f64 / 1000.0),
        "ts_of_max_over_time" => Some(extreme(w, |cur, best| cur >= best).0 as f64 / 1000.0),
        "last_over_time" => w.last().map(|p| p.1),
        "first_over_time" => w.first().map(|p| p.1),
        "ts_of_last_over_time" => w.last().map(|p| p.0 as f64 / 1000.0),
        "ts_of_first_over_time" => w.first().map(|p| p.0 as f64 / 1000.0),
        "stddev_over_time" => Some(variance(w).sqrt()),
        "stdvar_over_time" => Some(variance(w)),
        "present_over_time" => Some(1.0),
        "quantile_over_time" => {
            let q = c.p0;
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                ev.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    format_g(q)
                ));
            }
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            Some(quantile(q, &mut vals))
        }
        "mad_over_time" => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            if vals.iter().any(|v| v.is_nan()) {
                Some(f64::NAN)
            } else {
                let median = quantile(0.5, &mut vals);
                vals.iter_mut().for_each(|v| *v = (*v - median).abs());
                Some(quantile(0.5, &mut vals))
            }
        }
        _ => {
            return Err(QueryError::Execution(format!(
                "function {name:?} is not supported"
            )))
        }
    })
}

/// `rate`, `increase` and `delta`: the change over the window, corrected for counter resets
/// and extrapolated towards the window edges (at most half a sample interval beyond the
/// data, and not below zero for counters).
fn extrapolated_rate(w: &[(i64, f64)], c: &Win, is_counter: bool, is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        for p in w.windows(2) {
            if p[1].1 < p[0].1 {
                result += p[0].1;
            }
        }
    }
    let mut to_start = (first.0 as f64 - c.start as f64) / 1000.0;
    let mut to_end = (c.end as f64 - last.0 as f64) / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_interval = sampled / (w.len() - 1) as f64;
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

/// `irate` / `idelta`: from the last two samples.
fn instant_value(w: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
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
pub(crate) fn linear_regression(w: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in w.iter().enumerate() {
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

fn double_exponential_smoothing(w: &[(i64, f64)], sf: f64, tf: f64) -> f64 {
    let mut s0 = 0.0;
    let mut s1 = w[0].1;
    let mut b = w[1].1 - w[0].1;
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.1;
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
fn avg(w: &[(i64, f64)]) -> f64 {
    let (mut sum, mut count) = (w[0].1, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for p in &w[1..] {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(p.1, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.1 / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// The (timestamp, value) selected by `better`; NaN is replaced by any later value.
fn extreme(w: &[(i64, f64)], better: fn(f64, f64) -> bool) -> (i64, f64) {
    let (mut t, mut best) = w[0];
    for &(pt, v) in w {
        if better(v, best) || best.is_nan() {
            best = v;
            t = pt;
        }
    }
    (t, best)
}

/// Population variance (Welford with Kahan compensation).
fn variance(w: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.1 - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.1 - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `absent_over_time`: 1 at steps where no series has a sample in the window.
fn absent_over_time(
    ev: &mut Evaluator<'_>,
    input: &crate::engine::RangeInput,
    matrix_arg: &Expr,
) -> EvalResult<Val> {
    let mut present = vec![false; ev.nsteps()];
    for s in &input.series {
        let mut w = crate::engine::Window::default();
        for (i, ts) in ev.step_times().enumerate() {
            if !w
                .slide(&s.points, input.window_end(ts), input.range)
                .is_empty()
            {
                present[i] = true;
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
    let _ = METRIC_NAME;
    Ok(Val::Vector(vec![Series {
        labels,
        drop_name: true,
        points,
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let inc = extrapolated_rate(&w, &c, true, false).unwrap();
        assert!((inc - 60.0).abs() < 1e-9, "{inc}");
        // A reset: 10, 20, 5 -> increase 20 + 5 - 10 + ... counts the drop as a reset.
        let w2 = vec![(10_000, 10.0), (20_000, 20.0), (30_000, 5.0)];
        let raw = extrapolated_rate(&w2, &win(10_000, 30_000), true, false).unwrap();
        assert!((raw - 15.0).abs() < 1e-9, "{raw}");
    }

    #[test]
    fn irate_uses_last_two() {
        let w = vec![(0, 1.0), (10_000, 5.0), (20_000, 7.0)];
        assert_eq!(instant_value(&w, true), Some(0.2));
        let reset = vec![(0, 10.0), (10_000, 3.0)];
        assert_eq!(instant_value(&reset, true), Some(0.3));
        assert_eq!(instant_value(&reset, false), Some(-7.0));
    }

    #[test]
    fn regression_on_a_line() {
        let w: Vec<(i64, f64)> = (0..5).map(|i| (i * 1000, 2.0 * i as f64 + 1.0)).collect();
        let (slope, intercept) = linear_regression(&w, 0);
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 1.0).abs() < 1e-12);
    }
}
