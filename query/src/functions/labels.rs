//! Functions that work on labels rather than values: `label_replace`, `label_join`, the
//! `sort*` family, and `absent` with its label derivation from the selector's matchers.

use std::cmp::Ordering;
use std::collections::HashSet;

use eddy_storage::labels::METRIC_NAME;
use eddy_storage::{Labels, MatchOp, Matcher};

use super::{arg, string_arg, StrArg};
use crate::ast::Expr;
use crate::engine::{merge_same_labels, EvalResult, Evaluator, Series, Val};
use crate::value::QueryError;

/// `label_replace(v, dst, replacement, src, regex)`. Strings that are not UTF-8 behave as in
/// Prometheus where they can: such a regex does not compile, such a `dst` is an invalid name,
/// such a `src` names no label. A replacement that is not UTF-8 would write a label value eddy
/// cannot hold (Go copies its bytes into every expansion), so it is an error once a series
/// matches.
pub(crate) fn label_replace(ev: &mut Evaluator<'_>, args: &[Expr]) -> EvalResult<Val> {
    let dst_arg = string_arg(args, 1)?;
    let repl_arg = string_arg(args, 2)?;
    let src = string_arg(args, 3)?.text();
    let re_arg = string_arg(args, 4)?;
    let re = re_arg
        .text()
        .and_then(|re_src| regex::Regex::new(&format!("^(?s:{re_src})$")).ok())
        .ok_or_else(|| {
            QueryError::Execution(format!(
                "invalid regular expression in label_replace(): {}",
                re_arg.lossy()
            ))
        })?;
    let Some(dst) = dst_arg.label_name() else {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {}",
            dst_arg.lossy()
        )));
    };
    let mut input = ev.eval_vector(arg(args, 0)?)?;
    let mut buf = String::new();
    for s in &mut input {
        let val = src.and_then(|n| s.labels.get(n)).unwrap_or("");
        if let Some(caps) = re.captures(val) {
            let Some(repl) = repl_arg.text() else {
                return Err(invalid_value("label_replace", "replacement", repl_arg));
            };
            buf.clear();
            caps.expand(repl, &mut buf);
            s.labels.set(dst, &buf);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(merge_same_labels(input)?))
}

/// The error for a `what` string that would put bytes that are not UTF-8 into a label value.
fn invalid_value(func: &str, what: &str, s: StrArg<'_>) -> QueryError {
    QueryError::Execution(format!(
        "{func}(): {what} {} makes a label value that is not valid UTF-8, which eddy cannot store",
        s.go_quoted()
    ))
}

/// `label_join(v, dst, separator, src…)`. Source and destination names must be valid label
/// names (non-empty UTF-8); a separator that is not UTF-8 is an error once it would be written
/// (two or more sources and a series to join).
pub(crate) fn label_join(ev: &mut Evaluator<'_>, args: &[Expr]) -> EvalResult<Val> {
    let dst_arg = string_arg(args, 1)?;
    let sep_arg = string_arg(args, 2)?;
    let mut srcs: Vec<&str> = Vec::with_capacity(args.len().saturating_sub(3));
    for i in 3..args.len() {
        let src = string_arg(args, i)?;
        let Some(name) = src.label_name() else {
            return Err(QueryError::Execution(format!(
                "invalid source label name in label_join(): {}",
                src.lossy()
            )));
        };
        srcs.push(name);
    }
    let Some(dst) = dst_arg.label_name() else {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {}",
            dst_arg.lossy()
        )));
    };
    let mut input = ev.eval_vector(arg(args, 0)?)?;
    let sep = match sep_arg.text() {
        Some(sep) => sep,
        None if srcs.len() < 2 => "",
        None if input.is_empty() => "",
        None => return Err(invalid_value("label_join", "separator", sep_arg)),
    };
    for s in &mut input {
        let joined = srcs
            .iter()
            .map(|n| s.labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(sep);
        s.labels.set(dst, &joined);
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    Ok(Val::Vector(merge_same_labels(input)?))
}

/// `sort`, `sort_desc`, `sort_by_label`, `sort_by_label_desc`: reorder an instant query's
/// result; range query results are always sorted by labels (with a warning).
pub(crate) fn sort(ev: &mut Evaluator<'_>, name: &str, args: &[Expr]) -> EvalResult<Val> {
    // A name that is not UTF-8 is on no series: every series compares equal on it, so it can
    // be left out.
    let by: Vec<String> = (1..args.len())
        .map(|i| string_arg(args, i))
        .filter_map(|a| a.map(|a| a.text().map(str::to_string)).transpose())
        .collect::<EvalResult<_>>()?;
    let mut input = ev.eval_vector(arg(args, 0)?)?;
    if ev.start != ev.end {
        ev.warn("PromQL warning: sort is ineffective for range queries since results are always ordered by labels".into());
        return Ok(Val::Vector(input));
    }
    let value = |s: &Series| s.points.first().map_or(f64::NAN, |p| p.1);
    match name {
        "sort" => input.sort_by(|a, b| cmp_nan_last(value(a), value(b))),
        "sort_desc" => input.sort_by(|a, b| cmp_nan_last(-value(a), -value(b))),
        "sort_by_label" => input.sort_by(|a, b| cmp_by_labels(&by, &a.labels, &b.labels)),
        _ => input.sort_by(|a, b| cmp_by_labels(&by, &b.labels, &a.labels)),
    }
    Ok(Val::Vector(input))
}

/// Ascending with NaN last.
fn cmp_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Natural order of the listed label values, then the whole label sets.
fn cmp_by_labels(by: &[String], a: &Labels, b: &Labels) -> Ordering {
    for n in by {
        let (x, y) = (a.get(n).unwrap_or(""), b.get(n).unwrap_or(""));
        if x == y {
            continue;
        }
        return if natural_less(x, y) {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    a.cmp(b)
}

/// Splits into runs of digits and non-digits.
fn chunks(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_digit = None;
    for (i, c) in s.char_indices() {
        let d = c.is_ascii_digit();
        if prev_digit.is_some_and(|p| p != d) {
            out.push(&s[start..i]);
            start = i;
        }
        prev_digit = Some(d);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Natural "less than": digit runs compare as numbers, other runs as strings.
fn natural_less(a: &str, b: &str) -> bool {
    let (ca, cb) = (chunks(a), chunks(b));
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else { return false };
        let last_a = i == ca.len() - 1;
        let last_b = i == cb.len() - 1;
        match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(nx), Ok(ny)) => {
                if nx != ny {
                    return nx < ny;
                }
            }
            _ => {
                if x != y {
                    return x < y;
                }
            }
        }
        if last_a {
            return true;
        }
        if last_b {
            return false;
        }
    }
    false
}

/// `absent(v)`: 1 (with labels from the selector's equality matchers) where `v` is empty.
pub(crate) fn absent(ev: &mut Evaluator<'_>, args: &[Expr]) -> EvalResult<Val> {
    let a = arg(args, 0)?;
    let input = ev.eval_vector(a)?;
    let present: HashSet<i64> = input
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let points: Vec<(i64, f64)> = ev
        .step_times()
        .filter(|t| !present.contains(t))
        .map(|t| (t, 1.0))
        .collect();
    if points.is_empty() {
        return Ok(Val::Vector(Vec::new()));
    }
    let labels = match a.unparen() {
        Expr::VectorSelector(vs) => absent_labels(&vs.matchers),
        _ => Labels::default(),
    };
    Ok(Val::Vector(vec![Series {
        labels,
        drop_name: false,
        points,
    }]))
}

/// Labels of `absent`'s output: the `=` matchers, except names matched more than once.
pub(crate) fn absent_labels(matchers: &[Matcher]) -> Labels {
    let mut out = Labels::default();
    let mut has = HashSet::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name) {
            out.set(&m.name, &m.value);
            has.insert(m.name.clone());
        } else {
            out.remove(&m.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("abc", "abd"));
        assert!(natural_less("1", "1a"));
    }

    #[test]
    fn absent_labels_from_matchers() {
        let ms = vec![
            Matcher::equal("__name__", "x"),
            Matcher::equal("job", "a"),
            Matcher::equal("job", "b"),
            Matcher::equal("foo", "bar"),
            Matcher::new(MatchOp::RegexMatch, "r", "v.*").unwrap(),
        ];
        assert_eq!(absent_labels(&ms), Labels::from_pairs([("foo", "bar")]));
    }
}
