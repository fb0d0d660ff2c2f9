//! `histogram_quantile` and `histogram_fraction` over classic histograms: series that differ
//! only in their `le` label form one histogram; buckets are sorted, coalesced, made
//! monotonic, and interpolated linearly.

use std::collections::HashMap;

use eddy_storage::Labels;

use super::arg;
use crate::ast::Expr;
use crate::engine::{format_g, EvalResult, Evaluator, OutBuilder, Series, StepCursor, Val};

/// One bucket: upper bound and cumulative count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) upper: f64,
    pub(crate) count: f64,
}

/// Relative tolerance below which bucket count differences are float noise.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Groups the input series into histograms (by labels without `le`); warns about bad `le`.
fn group_buckets(
    ev: &mut Evaluator<'_>,
    input: &[Series],
) -> (Vec<Option<(usize, f64)>>, Vec<Labels>) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups = Vec::new();
    let mut member = Vec::with_capacity(input.len());
    for s in input {
        let le = s.labels.get("le");
        let upper = le.and_then(parse_go_float);
        let Some(upper) = upper else {
            let mut msg = format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?}",
                le.unwrap_or("")
            );
            if let Some(n) = s.labels.metric_name() {
                msg.push_str(&format!(" for metric name {n:?}"));
            }
            ev.warn(msg);
            member.push(None);
            continue;
        };
        let mut l = s.labels.clone();
        l.remove("le");
        let n = groups.len();
        let g = *index.entry(l.clone()).or_insert(n);
        if g == n {
            groups.push(l);
        }
        member.push(Some((g, upper)));
    }
    (member, groups)
}

/// Parses a bucket bound like Go's `strconv.ParseFloat` (accepts `+Inf`, `Inf`, `NaN`).
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches('+');
    match t.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => {
            return Some(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    s.parse::<f64>().ok()
}

/// Shared driver: per step, collects each histogram's buckets and calls `f`.
fn per_step(
    ev: &mut Evaluator<'_>,
    input: Vec<Series>,
    mut f: impl FnMut(&mut Evaluator<'_>, usize, &mut Vec<Bucket>, &Labels) -> f64,
) -> EvalResult<Val> {
    let (member, groups) = group_buckets(ev, &input);
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); groups.len()];
    let mut cursor = StepCursor::new(input.len());
    let mut vals = Vec::new();
    let mut out = OutBuilder::default();
    let mut slots: Vec<Option<usize>> = vec![None; groups.len()];
    let mut order: Vec<usize> = Vec::new();
    for (step, ts) in ev.step_times().enumerate() {
        ev.check()?;
        cursor.gather(&input, ts, &mut vals);
        buckets.iter_mut().for_each(Vec::clear);
        order.clear();
        for &(si, v) in &vals {
            if let Some((g, upper)) = member[si] {
                if buckets[g].is_empty() {
                    order.push(g);
                }
                buckets[g].push(Bucket { upper, count: v });
            }
        }
        for &g in &order {
            let v = f(ev, step, &mut buckets[g], &groups[g]);
            let slot = *slots[g].get_or_insert_with(|| out.slot(&groups[g], true));
            out.push(slot, ts, v)?;
        }
    }
    Ok(Val::Vector(out.finish()))
}

pub(crate) fn histogram_quantile(ev: &mut Evaluator<'_>, args: &[Expr]) -> EvalResult<Val> {
    let q = ev.eval_scalar(arg(args, 0)?)?;
    let input = ev.eval_vector(arg(args, 1)?)?;
    for &qv in &q {
        if qv.is_nan() || !(0.0..=1.0).contains(&qv) {
            ev.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                format_g(qv)
            ));
        }
    }
    per_step(ev, input, |ev, step, buckets, labels| {
        let (v, forced) = bucket_quantile(q[step], buckets);
        if forced {
            let mut msg = "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".to_string();
            if let Some(n) = labels.metric_name() {
                msg.push_str(&format!(" for metric name {n:?}"));
            }
            ev.info(msg);
        }
        v
    })
}

pub(crate) fn histogram_fraction(ev: &mut Evaluator<'_>, args: &[Expr]) -> EvalResult<Val> {
    let lower = ev.eval_scalar(arg(args, 0)?)?;
    let upper = ev.eval_scalar(arg(args, 1)?)?;
    let input = ev.eval_vector(arg(args, 2)?)?;
    per_step(ev, input, |_, step, buckets, _| {
        bucket_fraction(lower[step], upper[step], buckets)
    })
}

fn sort_and_coalesce(buckets: &mut Vec<Bucket>) {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// Prometheus's `almost.Equal`.
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Removes decreases between buckets; returns whether a real decrease had to be fixed.
fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// The φ-quantile of classic buckets; also reports whether monotonicity was forced.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return (f64::NAN, false);
    }
    sort_and_coalesce(buckets);
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.count < rank);
    let v = if b == n {
        buckets[n - 1].upper
    } else if b == 0 && buckets[0].upper <= 0.0 {
        buckets[0].upper
    } else {
        let mut start = 0.0;
        let end = buckets[b].upper;
        let mut count = buckets[b].count;
        if b > 0 {
            start = buckets[b - 1].upper;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        start + (end - start) * (rank / count)
    };
    (v, forced)
}

/// The fraction of observations between `lower` and `upper`, interpolating linearly.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    sort_and_coalesce(buckets);
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if buckets[0].upper <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper;
        }
        let upper_bound = b.upper;
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                b.count
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(upper: f64, count: f64) -> Bucket {
        Bucket { upper, count }
    }

    #[test]
    fn quantile_interpolates_within_bucket() {
        let mut bs = vec![b(f64::INFINITY, 10.0), b(1.0, 5.0), b(2.0, 10.0)];
        assert_eq!(bucket_quantile(0.5, &mut bs), (1.0, false));
        let mut bs = vec![b(1.0, 4.0), b(2.0, 8.0), b(f64::INFINITY, 8.0)];
        assert_eq!(bucket_quantile(0.75, &mut bs).0, 1.5);
        // The highest bucket returns the second-highest bound.
        let mut bs = vec![b(1.0, 1.0), b(f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &mut bs).0, 1.0);
    }

    #[test]
    fn quantile_edge_cases() {
        let mut no_inf = vec![b(1.0, 1.0), b(2.0, 2.0)];
        assert!(bucket_quantile(0.5, &mut no_inf).0.is_nan());
        let mut bs = vec![b(1.0, 5.0), b(2.0, 3.0), b(f64::INFINITY, 6.0)];
        let (v, forced) = bucket_quantile(0.5, &mut bs);
        assert!(forced);
        assert_eq!(v, 0.6);
        assert_eq!(bucket_quantile(-1.0, &mut bs).0, f64::NEG_INFINITY);
    }

    #[test]
    fn fraction_between_bounds() {
        let mut bs = vec![b(1.0, 2.0), b(2.0, 6.0), b(f64::INFINITY, 8.0)];
        assert_eq!(bucket_fraction(0.0, 1.0, &mut bs), 0.25);
        assert_eq!(bucket_fraction(1.0, 1.5, &mut bs), 0.25);
        assert_eq!(
            bucket_fraction(f64::NEG_INFINITY, f64::INFINITY, &mut bs),
            1.0
        );
    }

    #[test]
    fn go_float_parsing() {
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("0.5"), Some(0.5));
        assert_eq!(parse_go_float("x"), None);
    }
}
