//! Matcher evaluation with Prometheus semantics over any [`PostingsSource`], and the regex
//! analysis that lets most regex matchers skip the regex engine.
//!
//! Semantics: a missing label has the value `""`. A matcher that accepts `""` therefore also
//! selects series without the label, so it is evaluated as "all series minus those whose value
//! is rejected"; a selection made only of such matchers starts from all series.

use std::ops::ControlFlow;

use croaring::Bitmap;
use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::error::Result;
use crate::index::PostingsSource;
use crate::labels::{MatchOp, Matcher};

/// Largest literal set that regex analysis expands to before giving up and scanning.
const MAX_LITERALS: usize = 256;

/// How the set of label values a matcher's value or regex describes is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValuePlan {
    /// Exactly these values (sorted, deduplicated): look each one up.
    Literals(Vec<String>),
    /// Every value that starts with `prefix` (and is longer than it when `non_empty_rest`):
    /// `foo.*`, `foo.+`. An empty prefix with `.*` accepts everything.
    Prefix {
        /// Required prefix.
        prefix: String,
        /// The regex ended in `.+` rather than `.*`.
        non_empty_rest: bool,
    },
    /// Values that start with `prefix` and that the regex accepts.
    Scan {
        /// Literal prefix every accepted value has (may be empty).
        prefix: String,
    },
}

impl ValuePlan {
    /// The plan for the positive form of `m` (`=` and `!=` → the value; `=~` and `!~` → the
    /// regex).
    pub fn for_matcher(m: &Matcher) -> ValuePlan {
        match m.op {
            MatchOp::Equal | MatchOp::NotEqual => ValuePlan::Literals(vec![m.value.clone()]),
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => analyze_regex(&m.value),
        }
    }

    /// Whether `value` is in the set; `regex` is the matcher's anchored regex (for `Scan`).
    pub fn contains(&self, value: &str, regex: Option<&Regex>) -> bool {
        match self {
            ValuePlan::Literals(set) => set.binary_search_by(|s| s.as_str().cmp(value)).is_ok(),
            ValuePlan::Prefix {
                prefix,
                non_empty_rest,
            } => {
                value.starts_with(prefix.as_str())
                    && (!non_empty_rest || value.len() > prefix.len())
            }
            ValuePlan::Scan { .. } => regex.is_some_and(|r| r.is_match(value)),
        }
    }

    /// True for `.*`: every value, including the empty one.
    pub fn accepts_everything(&self) -> bool {
        matches!(self, ValuePlan::Prefix { prefix, non_empty_rest: false } if prefix.is_empty())
    }
}

/// Analyses a regex (as written in a matcher, unanchored source) into a [`ValuePlan`].
pub fn analyze_regex(src: &str) -> ValuePlan {
    let scan = ValuePlan::Scan {
        prefix: String::new(),
    };
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .parse(src)
    else {
        return scan;
    };
    if let Some(mut set) = literal_set(&hir) {
        set.sort_unstable();
        set.dedup();
        return ValuePlan::Literals(set);
    }
    let parts: &[Hir] = match hir.kind() {
        HirKind::Concat(parts) => parts,
        _ => std::slice::from_ref(&hir),
    };
    let mut prefix = String::new();
    let mut rest = parts;
    while let Some((first, tail)) = rest.split_first() {
        match first.kind() {
            HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
                Ok(s) => prefix.push_str(s),
                Err(_) => break,
            },
            _ => break,
        }
        rest = tail;
    }
    if let [last] = rest {
        if let Some(non_empty_rest) = any_string(last) {
            return ValuePlan::Prefix {
                prefix,
                non_empty_rest,
            };
        }
    }
    ValuePlan::Scan { prefix }
}

/// `Some(false)` for `.*`, `Some(true)` for `.+` (dot matching newlines), `None` otherwise.
fn any_string(h: &Hir) -> Option<bool> {
    let HirKind::Repetition(rep) = h.kind() else {
        return None;
    };
    if rep.max.is_some() || rep.min > 1 {
        return None;
    }
    let HirKind::Class(Class::Unicode(cls)) = rep.sub.kind() else {
        return None;
    };
    let all = matches!(cls.ranges(), [r] if r.start() == '\0' && r.end() == char::MAX);
    all.then_some(rep.min == 1)
}

/// The finite set of strings `h` matches, when it is small and has no look-around.
fn literal_set(h: &Hir) -> Option<Vec<String>> {
    match h.kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(lit) => Some(vec![String::from_utf8(lit.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(cls)) => {
            let n: u32 = cls
                .ranges()
                .iter()
                .map(|r| r.end() as u32 - r.start() as u32 + 1)
                .sum();
            if n as usize > MAX_LITERALS {
                return None;
            }
            Some(
                cls.ranges()
                    .iter()
                    .flat_map(|r| r.start()..=r.end())
                    .map(String::from)
                    .collect(),
            )
        }
        HirKind::Class(Class::Bytes(_)) | HirKind::Look(_) => None,
        HirKind::Capture(c) => literal_set(&c.sub),
        HirKind::Alternation(alts) => {
            let mut out = Vec::new();
            for a in alts {
                out.extend(literal_set(a)?);
                if out.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(out)
        }
        HirKind::Concat(parts) => {
            let mut out = vec![String::new()];
            for p in parts {
                out = cross(&out, &literal_set(p)?)?;
            }
            Some(out)
        }
        HirKind::Repetition(rep) => {
            let max = rep.max?;
            let sub = literal_set(&rep.sub)?;
            let mut out = Vec::new();
            let mut power = vec![String::new()];
            for k in 0..=max {
                if k >= rep.min {
                    out.extend(power.iter().cloned());
                }
                if k < max {
                    power = cross(&power, &sub)?;
                }
                if out.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(out)
        }
    }
}

/// Every concatenation of a string of `a` with a string of `b`, unless there are too many.
fn cross(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len().saturating_mul(b.len()) > MAX_LITERALS {
        return None;
    }
    Some(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| format!("{x}{y}")))
            .collect(),
    )
}

/// The series ids that satisfy every matcher (Prometheus semantics, see the module doc).
pub fn select<S: PostingsSource + ?Sized>(src: &S, matchers: &[Matcher]) -> Result<Bitmap> {
    let plans: Vec<ValuePlan> = matchers.iter().map(ValuePlan::for_matcher).collect();
    let mut acc: Option<Bitmap> = None;
    // Matchers that reject "" narrow the selection; do them first so an empty result stops early.
    for (m, plan) in matchers
        .iter()
        .zip(&plans)
        .filter(|(m, _)| !m.matches_empty())
    {
        let sel = if is_negated(m) {
            union_not_in(src, m, plan)?
        } else {
            union_in(src, m, plan)?
        };
        match &mut acc {
            None => acc = Some(sel),
            Some(a) => a.and_inplace(&sel),
        }
        if acc.as_ref().is_some_and(Bitmap::is_empty) {
            return Ok(Bitmap::new());
        }
    }
    let mut acc = match acc {
        Some(a) => a,
        None => src.all()?,
    };
    // Matchers that accept "" remove the series whose value they reject.
    for (m, plan) in matchers
        .iter()
        .zip(&plans)
        .filter(|(m, _)| m.matches_empty())
    {
        if !is_negated(m) && plan.accepts_everything() {
            continue;
        }
        let rejected = if is_negated(m) {
            union_in(src, m, plan)?
        } else {
            union_not_in(src, m, plan)?
        };
        acc.andnot_inplace(&rejected);
        if acc.is_empty() {
            break;
        }
    }
    Ok(acc)
}

fn is_negated(m: &Matcher) -> bool {
    matches!(m.op, MatchOp::NotEqual | MatchOp::RegexNoMatch)
}

/// Union of the postings of the values of `m.name` that are in `plan`'s set.
fn union_in<S: PostingsSource + ?Sized>(src: &S, m: &Matcher, plan: &ValuePlan) -> Result<Bitmap> {
    let mut out = Bitmap::new();
    match plan {
        ValuePlan::Literals(set) => {
            for v in set.iter().filter(|v| !v.is_empty()) {
                if let Some(b) = src.postings(&m.name, v)? {
                    out.or_inplace(&b);
                }
            }
        }
        ValuePlan::Prefix {
            prefix,
            non_empty_rest,
        } => {
            let min_len = prefix.len() + usize::from(*non_empty_rest);
            src.for_each_value(&m.name, prefix, &mut |v| v.len() >= min_len, &mut |_, b| {
                out.or_inplace(b);
                ControlFlow::Continue(())
            })?;
        }
        ValuePlan::Scan { prefix } => {
            let re = m.regex();
            src.for_each_value(
                &m.name,
                prefix,
                &mut |v| re.is_some_and(|r| r.is_match(v)),
                &mut |_, b| {
                    out.or_inplace(b);
                    ControlFlow::Continue(())
                },
            )?;
        }
    }
    Ok(out)
}

/// Union of the postings of the values of `m.name` that are NOT in `plan`'s set.
fn union_not_in<S: PostingsSource + ?Sized>(
    src: &S,
    m: &Matcher,
    plan: &ValuePlan,
) -> Result<Bitmap> {
    let mut out = Bitmap::new();
    let re = m.regex();
    src.for_each_value(&m.name, "", &mut |v| !plan.contains(v, re), &mut |_, b| {
        out.or_inplace(b);
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Sorted label names, restricted to names that a series in `filter` has when given.
pub fn label_names<S: PostingsSource + ?Sized>(
    src: &S,
    filter: Option<&Bitmap>,
) -> Result<Vec<String>> {
    let names = src.names()?;
    let Some(filter) = filter else {
        return Ok(names);
    };
    let mut out = Vec::new();
    for name in names {
        let mut found = false;
        src.for_each_value(&name, "", &mut |_| true, &mut |_, b| {
            found = b.intersect(filter);
            if found {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if found {
            out.push(name);
        }
    }
    Ok(out)
}

/// Sorted values of `name`, restricted to values that a series in `filter` has when given.
pub fn label_values<S: PostingsSource + ?Sized>(
    src: &S,
    name: &str,
    filter: Option<&Bitmap>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    match filter {
        // Without a filter the postings are not needed: collect in `want` and skip the visit.
        None => src.for_each_value(
            name,
            "",
            &mut |v| {
                out.push(v.to_string());
                false
            },
            &mut |_, _| ControlFlow::Continue(()),
        )?,
        Some(f) => src.for_each_value(name, "", &mut |_| true, &mut |v, b| {
            if b.intersect(f) {
                out.push(v.to_string());
            }
            ControlFlow::Continue(())
        })?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(re: &str, want: ValuePlan) {
        assert_eq!(analyze_regex(re), want, "regex {re:?}");
    }

    fn lits(v: &[&str]) -> ValuePlan {
        ValuePlan::Literals(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn regex_analysis() {
        check("foo", lits(&["foo"]));
        check("b|a|b", lits(&["a", "b"]));
        check("x|", lits(&["", "x"]));
        check("(a|b)c", lits(&["ac", "bc"]));
        check("ab?", lits(&["a", "ab"]));
        check("[12]x", lits(&["1x", "2x"]));
        check("(?i)ab", lits(&["AB", "Ab", "aB", "ab"]));
        check("", lits(&[""]));
        check(
            ".*",
            ValuePlan::Prefix {
                prefix: String::new(),
                non_empty_rest: false,
            },
        );
        check(
            "foo.*",
            ValuePlan::Prefix {
                prefix: "foo".into(),
                non_empty_rest: false,
            },
        );
        check(
            "foo.+",
            ValuePlan::Prefix {
                prefix: "foo".into(),
                non_empty_rest: true,
            },
        );
        check(
            "foo[0-9]+",
            ValuePlan::Scan {
                prefix: "foo".into(),
            },
        );
        check(
            ".*foo",
            ValuePlan::Scan {
                prefix: String::new(),
            },
        );
        check(
            "a|b.*",
            ValuePlan::Scan {
                prefix: String::new(),
            },
        );
        check(
            "^a$",
            ValuePlan::Scan {
                prefix: String::new(),
            },
        );
        check(
            "[a-z]+",
            ValuePlan::Scan {
                prefix: String::new(),
            },
        );
    }

    #[test]
    fn plan_contains() {
        let p = analyze_regex("foo.+");
        assert!(p.contains("foox", None));
        assert!(!p.contains("foo", None));
        assert!(!p.contains("fo", None));
        assert!(analyze_regex(".*").accepts_everything());
        assert!(!analyze_regex(".+").accepts_everything());
    }
}
