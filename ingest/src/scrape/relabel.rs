//! Prometheus relabeling (`relabel_configs`, `metric_relabel_configs`): rules compiled once,
//! applied to a label list in place.
//!
//! Semantics follow Prometheus `model/relabel`: regexes are fully anchored (`^(?:re)$`), the
//! source value is the source labels' values joined by `separator` (a missing label counts as
//! ""), `replace` writes `replacement` expanded with `$1`/`${name}` into `target_label` (itself
//! expanded) and deletes the target when the result is empty, and `labelmap` copies every
//! label whose name matches under the expanded name. Label lists hold `Cow`s so scraped names
//! and values stay borrowed from the body; only values that a rule writes are allocated.

use std::borrow::Cow;

use regex::Regex;
use serde::Deserialize;

/// A label list entry: name and value, borrowed from the body or owned.
pub(crate) type LabelPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// A relabel rule as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RelabelConfig {
    #[serde(default)]
    source_labels: Vec<String>,
    separator: Option<String>,
    regex: Option<String>,
    target_label: Option<String>,
    replacement: Option<String>,
    action: Option<String>,
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelabelAction {
    /// Write the expanded replacement into the target label when the regex matches.
    Replace,
    /// Drop the series unless the source value matches.
    Keep,
    /// Drop the series if the source value matches.
    Drop,
    /// Remove labels whose names match.
    LabelDrop,
    /// Remove labels whose names do not match.
    LabelKeep,
    /// Copy labels whose names match to the expanded replacement name.
    LabelMap,
    /// Set the target label to the lower-cased source value.
    Lowercase,
    /// Set the target label to the upper-cased source value.
    Uppercase,
    /// Keep the series only if the source value equals the target label's value.
    KeepEqual,
    /// Drop the series if the source value equals the target label's value.
    DropEqual,
}

/// A compiled relabel rule.
#[derive(Debug, Clone)]
pub struct RelabelRule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    /// The regex as written, for equality and display.
    regex_src: String,
    target_label: String,
    replacement: String,
    action: RelabelAction,
}

impl PartialEq for RelabelRule {
    fn eq(&self, o: &Self) -> bool {
        self.source_labels == o.source_labels
            && self.separator == o.separator
            && self.regex_src == o.regex_src
            && self.target_label == o.target_label
            && self.replacement == o.replacement
            && self.action == o.action
    }
}

impl RelabelConfig {
    /// Validates and compiles; errors name the sub-field.
    pub(crate) fn compile(self) -> Result<RelabelRule, (&'static str, String)> {
        let action = match self.action.as_deref().unwrap_or("replace") {
            "replace" => RelabelAction::Replace,
            "keep" => RelabelAction::Keep,
            "drop" => RelabelAction::Drop,
            "labeldrop" => RelabelAction::LabelDrop,
            "labelkeep" => RelabelAction::LabelKeep,
            "labelmap" => RelabelAction::LabelMap,
            "lowercase" => RelabelAction::Lowercase,
            "uppercase" => RelabelAction::Uppercase,
            "keepequal" => RelabelAction::KeepEqual,
            "dropequal" => RelabelAction::DropEqual,
            other => {
                return Err((
                    "action",
                    format!(
                        "unknown relabel action {other:?}; expected replace, keep, drop, \
                         labeldrop, labelkeep, labelmap, lowercase, uppercase, keepequal or dropequal"
                    ),
                ))
            }
        };
        let regex_src = self.regex.unwrap_or_else(|| "(.*)".into());
        let regex = Regex::new(&format!("^(?:{regex_src})$"))
            .map_err(|e| ("regex", format!("invalid regex {regex_src:?}: {e}")))?;
        let target_label = self.target_label.unwrap_or_default();
        use RelabelAction as A;
        let needs_target = matches!(
            action,
            A::Replace | A::Lowercase | A::Uppercase | A::KeepEqual | A::DropEqual
        );
        if needs_target && target_label.is_empty() {
            return Err((
                "target_label",
                format!("relabel action {action:?} requires target_label"),
            ));
        }
        let label_action = matches!(action, A::LabelDrop | A::LabelKeep);
        if label_action && (!self.source_labels.is_empty() || !target_label.is_empty()) {
            return Err((
                "source_labels",
                "labeldrop and labelkeep take only regex (no source_labels or target_label)".into(),
            ));
        }
        Ok(RelabelRule {
            source_labels: self.source_labels,
            separator: self.separator.unwrap_or_else(|| ";".into()),
            regex,
            regex_src,
            target_label,
            replacement: self.replacement.unwrap_or_else(|| "$1".into()),
            action,
        })
    }
}

/// Reusable buffers for [`relabel`].
#[derive(Debug, Default)]
pub(crate) struct RelabelScratch {
    joined: String,
    expanded: String,
    indices: Vec<usize>,
}

/// Applies `rules` in order to `labels[start..]`. Returns false if the series is dropped (the
/// labels are then left in an unspecified state for the caller to truncate).
pub(crate) fn relabel<'a>(
    rules: &[RelabelRule],
    labels: &mut Vec<LabelPair<'a>>,
    start: usize,
    s: &mut RelabelScratch,
) -> bool {
    rules.iter().all(|r| apply(r, labels, start, s))
}

fn find(labels: &[LabelPair<'_>], start: usize, name: &str) -> Option<usize> {
    labels[start..]
        .iter()
        .position(|(n, _)| n == name)
        .map(|i| i + start)
}

fn set<'a>(labels: &mut Vec<LabelPair<'a>>, start: usize, name: &str, value: String) {
    match find(labels, start, name) {
        Some(i) => labels[i].1 = Cow::Owned(value),
        None => labels.push((Cow::Owned(name.to_string()), Cow::Owned(value))),
    }
}

fn delete(labels: &mut Vec<LabelPair<'_>>, start: usize, name: &str) {
    if let Some(i) = find(labels, start, name) {
        labels.remove(i);
    }
}

fn apply<'a>(
    r: &RelabelRule,
    labels: &mut Vec<LabelPair<'a>>,
    start: usize,
    s: &mut RelabelScratch,
) -> bool {
    use RelabelAction as A;
    s.joined.clear();
    for (i, name) in r.source_labels.iter().enumerate() {
        if i > 0 {
            s.joined.push_str(&r.separator);
        }
        if let Some(j) = find(labels, start, name) {
            s.joined.push_str(&labels[j].1);
        }
    }
    match r.action {
        A::Keep => return r.regex.is_match(&s.joined),
        A::Drop => return !r.regex.is_match(&s.joined),
        A::KeepEqual | A::DropEqual => {
            let target = find(labels, start, &r.target_label).map_or("", |j| &labels[j].1);
            return (target == s.joined) == (r.action == A::KeepEqual);
        }
        A::Replace => {
            let Some(caps) = r.regex.captures(&s.joined) else {
                return true;
            };
            s.expanded.clear();
            caps.expand(&r.target_label, &mut s.expanded);
            let target = std::mem::take(&mut s.expanded);
            let mut value = String::new();
            caps.expand(&r.replacement, &mut value);
            if is_label_name(&target) {
                if value.is_empty() {
                    delete(labels, start, &target);
                } else {
                    set(labels, start, &target, value);
                }
            }
            s.expanded = target;
        }
        A::Lowercase => set(labels, start, &r.target_label, s.joined.to_lowercase()),
        A::Uppercase => set(labels, start, &r.target_label, s.joined.to_uppercase()),
        A::LabelDrop | A::LabelKeep => {
            let keep_matching = r.action == A::LabelKeep;
            let mut i = start;
            while i < labels.len() {
                if r.regex.is_match(&labels[i].0) == keep_matching {
                    i += 1;
                } else {
                    labels.remove(i);
                }
            }
        }
        A::LabelMap => {
            s.indices.clear();
            s.indices
                .extend((start..labels.len()).filter(|&i| r.regex.is_match(&labels[i].0)));
            for k in 0..s.indices.len() {
                let i = s.indices[k];
                let mut name = String::new();
                if let Some(caps) = r.regex.captures(&labels[i].0) {
                    caps.expand(&r.replacement, &mut name);
                }
                let value = labels[i].1.to_string();
                set(labels, start, &name, value);
            }
        }
    }
    true
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: a target label that does not fit is skipped, as in Prometheus.
fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> RelabelRule {
        let c: RelabelConfig = serde_norway::from_str(yaml).expect("yaml");
        c.compile().expect("compile")
    }

    fn run(rules: &[RelabelRule], input: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        let mut labels: Vec<LabelPair<'_>> = vec![(Cow::Borrowed("x"), Cow::Borrowed("prefix"))];
        labels.extend(
            input
                .iter()
                .map(|&(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v))),
        );
        let mut s = RelabelScratch::default();
        if !relabel(rules, &mut labels, 1, &mut s) {
            return None;
        }
        assert_eq!(labels[0].1, "prefix", "label before start touched");
        let mut out: Vec<_> = labels[1..]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        out.sort();
        Some(out)
    }

    fn owned(v: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        let mut o: Vec<_> = v
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        o.sort();
        Some(o)
    }

    #[test]
    fn replace_with_groups_and_anchoring() {
        let r = rule(
            "{source_labels: [host, port], regex: '(.+);(\\d+)', target_label: addr, replacement: '${1}:$2'}",
        );
        let got = run(&[r.clone()], &[("host", "tm1"), ("port", "9250")]);
        assert_eq!(
            got,
            owned(&[("host", "tm1"), ("port", "9250"), ("addr", "tm1:9250")])
        );
        // Anchored: "9250x" does not match \d+ as a whole, so nothing changes.
        let got = run(&[r], &[("host", "tm1"), ("port", "9250x")]);
        assert_eq!(got, owned(&[("host", "tm1"), ("port", "9250x")]));
        // Empty replacement deletes the target.
        let del = rule("{source_labels: [a], regex: '.*', target_label: b, replacement: ''}");
        assert_eq!(run(&[del], &[("a", "1"), ("b", "2")]), owned(&[("a", "1")]));
    }

    #[test]
    fn keep_drop_labeldrop_labelkeep_labelmap() {
        let keep = rule("{source_labels: [__name__], regex: 'flink_.*', action: keep}");
        assert_eq!(run(&[keep.clone()], &[("__name__", "jvm_x")]), None);
        assert!(run(&[keep], &[("__name__", "flink_x")]).is_some());
        let drop = rule("{source_labels: [__name__], regex: '.*_count', action: drop}");
        assert_eq!(run(&[drop.clone()], &[("__name__", "a_count")]), None);
        assert!(run(&[drop], &[("__name__", "a_count_x")]).is_some());
        let ld = rule("{regex: 'task_attempt_.*', action: labeldrop}");
        let got = run(
            &[ld],
            &[
                ("task_attempt_id", "x"),
                ("task_attempt_num", "0"),
                ("tm_id", "t"),
            ],
        );
        assert_eq!(got, owned(&[("tm_id", "t")]));
        let lk = rule("{regex: '__name__|host', action: labelkeep}");
        let got = run(&[lk], &[("__name__", "m"), ("host", "h"), ("tm_id", "t")]);
        assert_eq!(got, owned(&[("__name__", "m"), ("host", "h")]));
        let lm = rule("{regex: 'meta_(.+)', action: labelmap}");
        let got = run(&[lm], &[("meta_zone", "a"), ("z", "1")]);
        assert_eq!(got, owned(&[("meta_zone", "a"), ("z", "1"), ("zone", "a")]));
    }

    #[test]
    fn compile_errors_name_the_field() {
        let c: RelabelConfig = serde_norway::from_str("{action: bogus}").expect("yaml");
        assert_eq!(c.compile().map(|_| ()).map_err(|e| e.0), Err("action"));
        let c: RelabelConfig = serde_norway::from_str("{regex: '('}").expect("yaml");
        assert_eq!(c.compile().map(|_| ()).map_err(|e| e.0), Err("regex"));
        let c: RelabelConfig = serde_norway::from_str("{action: replace}").expect("yaml");
        assert_eq!(
            c.compile().map(|_| ()).map_err(|e| e.0),
            Err("target_label")
        );
    }
}
