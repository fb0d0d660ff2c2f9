//! PromQL functions: dispatch by name, the instant-vector functions (math, clamping,
//! rounding, dates, sorting, `scalar`/`vector`/`timestamp`), and shared numeric helpers.
//!
//! Submodules: [`range`] (functions over range vectors: `rate`, `*_over_time`, …),
//! [`histogram`] (`histogram_quantile`/`histogram_fraction` over classic `le` buckets) and
//! [`labels`] (`label_replace`, `label_join`, `sort_by_label`, `absent`).

mod histogram;
mod labels;
mod range;

use std::borrow::Cow;

use crate::ast::{Call, Expr, ValueType};
use crate::engine::{EvalResult, Evaluator, Series, Val};
use crate::parser::{go_quote, go_quote_bytes};
use crate::value::QueryError;

pub(crate) use histogram::almost_equal;
pub(crate) use range::is_range_function;
pub(crate) use range::{
    keeps_labels as range_function_keeps_labels, matrix_arg as range_function_matrix_arg,
    reads_name as range_function_reads_name,
};

/// True for instant-vector functions that change values only, in place, per series (their
/// first argument the vector, the rest scalars), and read no label: the math functions,
/// `clamp*` and `round`. They only mark the name for removal. The engine may read their
/// input projected (`engine::projection`); a function added here must stay that way.
pub(crate) fn keeps_labels(name: &str) -> bool {
    math_function(name).is_some() || matches!(name, "clamp" | "clamp_min" | "clamp_max" | "round")
}

/// The return type of a known function (`None` for unknown names).
pub fn return_type(name: &str) -> Option<ValueType> {
    Some(match name {
        "time" | "pi" | "scalar" | "start" | "end" | "range" | "step" | "min_of" | "max_of" => {
            ValueType::Scalar
        }
        _ if is_range_function(name) => ValueType::Vector,
        "abs"
        | "absent"
        | "acos"
        | "acosh"
        | "asin"
        | "asinh"
        | "atan"
        | "atanh"
        | "ceil"
        | "clamp"
        | "clamp_max"
        | "clamp_min"
        | "cos"
        | "cosh"
        | "days_in_month"
        | "day_of_month"
        | "day_of_week"
        | "day_of_year"
        | "deg"
        | "exp"
        | "floor"
        | "histogram_avg"
        | "histogram_count"
        | "histogram_sum"
        | "histogram_stddev"
        | "histogram_stdvar"
        | "histogram_fraction"
        | "histogram_quantile"
        | "histogram_quantiles"
        | "hour"
        | "info"
        | "label_replace"
        | "label_join"
        | "ln"
        | "log10"
        | "log2"
        | "minute"
        | "month"
        | "rad"
        | "round"
        | "sgn"
        | "sin"
        | "sinh"
        | "sort"
        | "sort_desc"
        | "sort_by_label"
        | "sort_by_label_desc"
        | "sqrt"
        | "start_timestamp"
        | "tan"
        | "tanh"
        | "timestamp"
        | "vector"
        | "year" => ValueType::Vector,
        _ => return None,
    })
}

/// Evaluates a function call over the current step grid.
pub(crate) fn eval_call(ev: &mut Evaluator<'_>, c: &Call) -> EvalResult<Val> {
    let name = c.func.as_str();
    if is_range_function(name) {
        return range::eval(ev, c);
    }
    let args = &c.args;
    match name {
        "time" => Ok(Val::Scalar(
            ev.step_times().map(|t| t as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; ev.nsteps()])),
        "start" => Ok(Val::Scalar(vec![
            ev.query_start as f64 / 1000.0;
            ev.nsteps()
        ])),
        "end" => Ok(Val::Scalar(vec![ev.query_end as f64 / 1000.0; ev.nsteps()])),
        "range" => Ok(Val::Scalar(vec![
            (ev.query_end - ev.query_start) as f64
                / 1000.0;
            ev.nsteps()
        ])),
        "step" => Ok(Val::Scalar(vec![
            ev.query_step as f64 / 1000.0;
            ev.nsteps()
        ])),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(arg(args, 0)?)?;
            let b = ev.eval_scalar(arg(args, 1)?)?;
            let f = if name == "min_of" { f64::min } else { f64::max };
            Ok(Val::Scalar(
                a.into_iter()
                    .zip(b)
                    .map(|(x, y)| {
                        if x.is_nan() || y.is_nan() {
                            f64::NAN
                        } else {
                            f(x, y)
                        }
                    })
                    .collect(),
            ))
        }
        "scalar" => {
            let input = ev.eval_vector(arg(args, 0)?)?;
            Ok(Val::Scalar(scalar_of(ev, &input)))
        }
        "vector" => {
            let v = ev.eval_scalar(arg(args, 0)?)?;
            let points = ev.step_times().zip(v).collect();
            Ok(Val::Vector(vec![Series {
                points,
                ..Default::default()
            }]))
        }
        "timestamp" => {
            let a = arg(args, 0)?;
            if let Expr::VectorSelector(vs) = a.unparen() {
                return Ok(Val::Vector(ev.eval_vector_selector(vs, true)?));
            }
            let mut input = ev.eval_vector(a)?;
            for s in &mut input {
                s.drop_name = true;
                s.points.iter_mut().for_each(|p| p.1 = p.0 as f64 / 1000.0);
            }
            Ok(Val::Vector(input))
        }
        "label_replace" => labels::label_replace(ev, args),
        "label_join" => labels::label_join(ev, args),
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            labels::sort(ev, name, args)
        }
        "absent" => labels::absent(ev, args),
        "histogram_quantile" => histogram::histogram_quantile(ev, args),
        "histogram_fraction" => histogram::histogram_fraction(ev, args),
        // Native-histogram functions ignore float samples.
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            ev.eval_vector(arg(args, 0)?)?;
            Ok(Val::Vector(Vec::new()))
        }
        "clamp" | "clamp_min" | "clamp_max" => clamp(ev, name, args),
        "round" => round(ev, args),
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute"
        | "month" | "year" => date_function(ev, name, args),
        _ => match math_function(name) {
            Some(f) => {
                let mut input = ev.eval_vector(arg(args, 0)?)?;
                for s in &mut input {
                    s.drop_name = true;
                    s.points.iter_mut().for_each(|p| p.1 = f(p.1));
                }
                Ok(Val::Vector(input))
            }
            None => Err(QueryError::Execution(format!(
                "function {name:?} is not supported"
            ))),
        },
    }
}

/// The `i`-th argument, or an error naming the missing argument.
pub(crate) fn arg(args: &[Expr], i: usize) -> EvalResult<&Expr> {
    args.get(i)
        .ok_or_else(|| QueryError::Execution(format!("missing function argument {}", i + 1)))
}

/// A string literal as an argument or parameter. Go strings hold any bytes, so a literal
/// with `\x`/octal escapes may not be UTF-8 ([`Expr::ByteString`]); each user decides what
/// that means, as Prometheus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrArg<'a> {
    /// Valid UTF-8.
    Text(&'a str),
    /// Not valid UTF-8.
    Bytes(&'a [u8]),
}

impl<'a> StrArg<'a> {
    /// The literal `e` (parentheses ignored), or `None` when `e` is not a string literal.
    pub(crate) fn of(e: &'a Expr) -> Option<Self> {
        match e.unparen() {
            Expr::String(s) => Some(StrArg::Text(s)),
            Expr::ByteString(b) => Some(StrArg::Bytes(b)),
            _ => None,
        }
    }

    /// The text, or `None` when the literal is not UTF-8.
    pub(crate) fn text(self) -> Option<&'a str> {
        match self {
            StrArg::Text(s) => Some(s),
            StrArg::Bytes(_) => None,
        }
    }

    /// The text when it is a valid label name: Prometheus's UTF-8 scheme accepts any
    /// non-empty UTF-8 string.
    pub(crate) fn label_name(self) -> Option<&'a str> {
        self.text().filter(|s| !s.is_empty())
    }

    /// For messages where Prometheus prints the string as is (`%s`); bytes that are not UTF-8
    /// become U+FFFD.
    pub(crate) fn lossy(self) -> Cow<'a, str> {
        match self {
            StrArg::Text(s) => Cow::Borrowed(s),
            StrArg::Bytes(b) => String::from_utf8_lossy(b),
        }
    }

    /// For messages where Prometheus quotes the string (`%q`, or a literal's `String()`).
    pub(crate) fn go_quoted(self) -> String {
        match self {
            StrArg::Text(s) => go_quote(s),
            StrArg::Bytes(b) => go_quote_bytes(b),
        }
    }
}

/// A string literal argument.
pub(crate) fn string_arg(args: &[Expr], i: usize) -> EvalResult<StrArg<'_>> {
    StrArg::of(arg(args, i)?).ok_or_else(|| {
        QueryError::Execution(format!("expected string literal as argument {}", i + 1))
    })
}

/// `scalar()`: the single sample's value per step, else NaN.
fn scalar_of(ev: &Evaluator<'_>, input: &[Series]) -> Vec<f64> {
    let mut out = vec![f64::NAN; ev.nsteps()];
    let mut count = vec![0u32; ev.nsteps()];
    for s in input {
        for &(t, v) in &s.points {
            let i = ev.step_index(t);
            count[i] += 1;
            out[i] = v;
        }
    }
    for (o, c) in out.iter_mut().zip(count) {
        if c != 1 {
            *o = f64::NAN;
        }
    }
    out
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

fn clamp(ev: &mut Evaluator<'_>, name: &str, args: &[Expr]) -> EvalResult<Val> {
    let mut input = ev.eval_vector(arg(args, 0)?)?;
    let n = ev.nsteps();
    let (lo, hi) = match name {
        "clamp" => (
            ev.eval_scalar(arg(args, 1)?)?,
            ev.eval_scalar(arg(args, 2)?)?,
        ),
        "clamp_min" => (ev.eval_scalar(arg(args, 1)?)?, vec![f64::INFINITY; n]),
        _ => (vec![f64::NEG_INFINITY; n], ev.eval_scalar(arg(args, 1)?)?),
    };
    let (start, step) = (ev.start, ev.step);
    for s in &mut input {
        s.drop_name = true;
        s.points.retain_mut(|p| {
            let i = ((p.0 - start) / step) as usize;
            if hi[i] < lo[i] {
                return false;
            }
            // Go's math.Max/Min propagate NaN.
            p.1 = go_max(lo[i], go_min(hi[i], p.1));
            true
        });
    }
    input.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(input))
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn round(ev: &mut Evaluator<'_>, args: &[Expr]) -> EvalResult<Val> {
    let mut input = ev.eval_vector(arg(args, 0)?)?;
    let to_nearest = match args.get(1) {
        Some(e) => ev.eval_scalar(e)?,
        None => vec![1.0; ev.nsteps()],
    };
    let (start, step) = (ev.start, ev.step);
    for s in &mut input {
        s.drop_name = true;
        for p in &mut s.points {
            let inv = 1.0 / to_nearest[((p.0 - start) / step) as usize];
            p.1 = (p.1 * inv + 0.5).floor() / inv;
        }
    }
    Ok(Val::Vector(input))
}

fn date_function(ev: &mut Evaluator<'_>, name: &str, args: &[Expr]) -> EvalResult<Val> {
    let f = |secs: f64| -> f64 {
        let (y, m, d, hh, mm, wd, yd) = civil(secs as i64);
        match name {
            "days_in_month" => days_in_month(y, m) as f64,
            "day_of_month" => d as f64,
            "day_of_week" => wd as f64,
            "day_of_year" => yd as f64,
            "hour" => hh as f64,
            "minute" => mm as f64,
            "month" => m as f64,
            _ => y as f64,
        }
    };
    match args.first() {
        None => {
            let points = ev.step_times().map(|t| (t, f((t / 1000) as f64))).collect();
            Ok(Val::Vector(vec![Series {
                points,
                ..Default::default()
            }]))
        }
        Some(a) => {
            let mut input = ev.eval_vector(a)?;
            for s in &mut input {
                s.drop_name = true;
                s.points.iter_mut().for_each(|p| p.1 = f(p.1));
            }
            Ok(Val::Vector(input))
        }
    }
}

/// Calendar fields of a Unix time (UTC): year, month, day, hour, minute, weekday (0 = Sunday),
/// day of year (1-based).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let d = (doy_mar - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = (days + 4).rem_euclid(7) as u32;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yd = CUM[(m - 1) as usize] + d + u32::from(leap && m > 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        wd,
        yd,
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Kahan–Neumaier compensated addition: returns the new sum and compensation.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    if t.is_infinite() {
        (t, 0.0)
    } else if sum.abs() >= inc.abs() {
        (t, c + ((sum - t) + inc))
    } else {
        (t, c + ((inc - t) + sum))
    }
}

/// The φ-quantile of `values` (sorted in place) with linear interpolation between ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as in Prometheus's `vectorByValueHeap`.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        // 2024-02-29T13:45:00Z, a Thursday.
        let (y, m, d, hh, mm, wd, yd) = civil(1_709_214_300);
        assert_eq!((y, m, d, hh, mm, wd, yd), (2024, 2, 29, 13, 45, 4, 60));
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 4, 1));
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[test]
    fn quantile_interpolates() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(0.0, &mut v), 1.0);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        assert_eq!(quantile(2.0, &mut v), f64::INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn kahan_keeps_small_terms() {
        let (mut s, mut c) = (0.0, 0.0);
        for x in [1e16, 1.0, -1e16] {
            (s, c) = kahan_inc(x, s, c);
        }
        assert_eq!(s + c, 1.0);
    }
}
