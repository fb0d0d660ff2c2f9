//! The data model's identity: label sets, canonical form, and label matchers.
//!
//! A series is identified by its canonical label set: labels sorted by name, no empty values,
//! no duplicate names. The metric name is the label `__name__`.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;

use crate::error::{Error, Result};

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One `name="value"` pair.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Label name, e.g. `job`.
    pub name: String,
    /// Label value; never empty in a canonical label set.
    pub value: String,
}

// By hand for `clone_from`: refilling a label set kept from the previous series (block
// writers do, per series) reuses its strings' buffers instead of allocating 2 per label.
impl Clone for Label {
    fn clone(&self) -> Self {
        Label {
            name: self.name.clone(),
            value: self.value.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.name.clone_from(&source.name);
        self.value.clone_from(&source.value);
    }
}

/// A canonical label set: sorted by name, unique names, no empty values.
#[derive(Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Clone for Labels {
    fn clone(&self) -> Self {
        Labels(self.0.clone())
    }

    /// Reuses this set's vector and strings (`Vec::clone_from` clones element-wise into the
    /// labels both sets have).
    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

impl Labels {
    /// Builds a canonical label set from pairs in any order; empty values are dropped.
    /// When a name repeats, the last value wins.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        // Keep the last occurrence of a repeated name.
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Labels(out)
    }

    /// Builds a label set from `(name, value)` pairs that the caller guarantees are already
    /// canonical (as a block index or the head's symbol pairs store them).
    pub fn from_sorted_pairs_unchecked<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Self::from_sorted_unchecked(
            pairs
                .into_iter()
                .map(|(name, value)| Label {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
        )
    }

    /// Wraps labels that the caller guarantees are already canonical.
    pub fn from_sorted_unchecked(v: Vec<Label>) -> Self {
        debug_assert!(
            v.windows(2).all(|w| w[0].name < w[1].name),
            "BUG: labels not sorted/unique"
        );
        Labels(v)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name, if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Iterates the labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// The labels as borrowed `(name, value)` pairs, in name order.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.0.iter().map(|l| (l.name.as_str(), l.value.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as a slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Consumes the set, returning the sorted vector.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Sets `name` to `value` (removes it when `value` is empty), keeping the set canonical.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(
                i,
                Label {
                    name: name.to_string(),
                    value: value.to_string(),
                },
            ),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// A stable 64-bit hash of the canonical form (xxh3 over names and values with separators).
    pub fn hash64(&self) -> u64 {
        hash_label_pairs(self.pairs())
    }
}

/// The label names a projected selection builds ([`Querier::select_lazy_projected`]): a query
/// that only groups by a few labels asks for those, and storage builds no [`Label`] for the
/// others. Names are kept sorted and unique, so projecting a canonical label set is one merge
/// walk and its result is canonical too.
///
/// [`Querier::select_lazy_projected`]: crate::api::Querier::select_lazy_projected
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Projection {
    names: Vec<String>,
}

impl Projection {
    /// A projection keeping `names` (any order; repeats ignored).
    pub fn new<N: Into<String>>(names: impl IntoIterator<Item = N>) -> Self {
        let mut names: Vec<String> = names.into_iter().map(Into::into).collect();
        names.sort_unstable();
        names.dedup();
        Projection { names }
    }

    /// The kept names, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True when label `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }

    /// Builds the kept labels of canonical `(name, value)` pairs; only those are allocated.
    /// One walk over both sorted lists: a series of 25 labels costs ~25 string comparisons.
    pub fn build<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
        let mut k = 0;
        Labels::from_sorted_pairs_unchecked(
            pairs
                .into_iter()
                .filter(|&(name, _)| self.kept_from(&mut k, name)),
        )
    }

    /// True when `name` is kept, for names given in increasing order: `k` is the position in
    /// the kept names reached so far.
    fn kept_from(&self, k: &mut usize, name: &str) -> bool {
        while let Some(kept) = self.names.get(*k) {
            match kept.as_str().cmp(name) {
                std::cmp::Ordering::Less => *k += 1,
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Greater => return false,
            }
        }
        false
    }

    /// Drops the labels not kept from an owned label set, reusing its vector.
    pub fn apply(&self, labels: Labels) -> Labels {
        let mut v = labels.into_vec();
        v.retain(|l| self.keeps(&l.name));
        Labels::from_sorted_unchecked(v)
    }
}

/// Hashes label pairs that are already in canonical order. Used for series lookup, so the
/// borrowed pairs of an ingest batch and an owned [`Labels`] hash the same.
pub fn hash_label_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// [`hash_label_pairs128`] for the ingest hot path: lays the pairs out in `buf` (reused across
/// calls) and hashes them in one shot, which costs a third of feeding the streaming hasher two
/// small pieces per label. Equal to `hash_label_pairs128` for the same pairs.
///
/// Copying strings of up to 16 bytes with fixed-size moves into a pre-sized buffer instead
/// of `extend_from_slice` was tried (fourth session) and cost 5 % more instructions here.
pub fn hash_label_pairs128_with<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    buf: &mut Vec<u8>,
) -> u128 {
    buf.clear();
    for (n, v) in pairs {
        buf.extend_from_slice(n.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(v.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh3::xxh3_128(buf)
}

/// 128-bit hash of canonical label pairs: the head's series key. At 128 bits a collision among
/// even billions of series is far less likely than a memory error, so the head compares hashes only.
pub fn hash_label_pairs128<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest128()
}

impl fmt::Display for Labels {
    /// Prometheus notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let mut first = true;
        let mut any = false;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if first {
                f.write_str("{")?;
                first = false;
            } else {
                f.write_str(", ")?;
            }
            any = true;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        if any {
            f.write_str("}")?;
        } else if name.is_none() {
            f.write_str("{}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The four Prometheus matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored regex)
    RegexMatch,
    /// `!~` (fully anchored regex)
    RegexNoMatch,
}

impl MatchOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// A label matcher with Prometheus semantics: a missing label has the value `""`, so a matcher
/// that matches the empty string also selects series without the label; regexes are anchored.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regex source as written.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Compiled regexes by source. Dashboards send the same few matchers on every refresh, and
/// compiling one costs tens of microseconds, more than many whole queries; a `Regex` clone
/// shares the compiled program.
static REGEX_CACHE: std::sync::LazyLock<parking_lot::Mutex<HashMap<String, Regex>>> =
    std::sync::LazyLock::new(Default::default);

/// Sources held in [`REGEX_CACHE`] before it starts over (bounds its memory when queries are
/// generated with ever-new regexes).
const REGEX_CACHE_ENTRIES: usize = 4096;

/// The anchored regex for a matcher's `value`, from the cache when it was compiled before.
fn compiled_regex(value: &str) -> Result<Regex> {
    if let Some(r) = REGEX_CACHE.lock().get(value) {
        return Ok(r.clone());
    }
    let r = regex::RegexBuilder::new(&format!("^(?s:{value})$"))
        .build()
        .map_err(|e| Error::BadRegex {
            regex: value.to_string(),
            reason: e.to_string(),
        })?;
    let mut cache = REGEX_CACHE.lock();
    if cache.len() >= REGEX_CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(value.to_string(), r.clone());
    Ok(r)
}

impl Matcher {
    /// Builds a matcher; regexes are compiled anchored (`^(?:value)$`).
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(compiled_regex(&value)?),
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// Shorthand for an `=` matcher (cannot fail).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    /// Whether `value` (`""` for a missing label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether the matcher accepts every label set with a given label value set, e.g. `=~".*"`.
    pub fn is_match_all(&self) -> bool {
        matches!(self.op, MatchOp::RegexMatch) && (self.value == ".*")
    }

    /// The compiled regex for `=~` / `!~` matchers.
    pub fn regex(&self) -> Option<&Regex> {
        self.regex.as_ref()
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// True when `labels` satisfies every matcher.
pub fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_and_drops_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("__name__", "m")]);
        assert_eq!(l.to_string(), r#"m{a="1", b="2"}"#);
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn projection_keeps_listed_names_in_canonical_order() {
        let l = Labels::from_pairs([
            ("__name__", "m"),
            ("a", "1"),
            ("job", "j"),
            ("task", "t"),
            ("z", "9"),
        ]);
        let pairs: Vec<(&str, &str)> = l.pairs().collect();
        for names in [
            vec!["task", "job", "job"],
            vec![],
            vec!["zz", "0"],
            vec!["__name__", "z"],
            vec!["a", "b", "job", "task", "z", "__name__"],
        ] {
            let p = Projection::new(names.iter().copied());
            let want = Labels::from_pairs(
                l.iter()
                    .filter(|x| names.contains(&x.name.as_str()))
                    .map(|x| (x.name.clone(), x.value.clone())),
            );
            assert_eq!(p.build(pairs.iter().copied()), want, "{names:?}");
            assert_eq!(p.apply(l.clone()), want, "{names:?}");
        }
        assert!(Projection::new(["b", "a"]).keeps("a"));
        assert_eq!(Projection::new(["b", "a", "b"]).names(), ["a", "b"]);
    }

    #[test]
    fn regex_is_anchored_and_empty_matches_missing() {
        let m = Matcher::new(MatchOp::RegexMatch, "job", "foo|").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("foobar"));
        assert!(m.matches_empty());
        let l = Labels::from_pairs([("x", "y")]);
        assert!(matches_all(&l, &[m]));
    }

    #[test]
    fn hash_matches_borrowed_pairs() {
        let l = Labels::from_pairs([("a", "1"), ("b", "2")]);
        assert_eq!(
            l.hash64(),
            hash_label_pairs([("a", "1"), ("b", "2")].into_iter())
        );
    }

    /// Strings of every length up to 40, in pairs of mixed lengths, hash as the streaming
    /// hasher does, through one reused buffer.
    #[test]
    fn one_shot_keys_agree_for_every_string_length() {
        let text: String = (0..128u8).map(|i| char::from(b'a' + i % 26)).collect();
        let mut buf = Vec::new();
        for a in 0..=40 {
            for b in [0, 1, 3, 4, 7, 8, 15, 16, 17, 33] {
                let pairs = [
                    (&text[..a], &text[a..a + b]),
                    ("__name__", &text[1..1 + a.min(20)]),
                    (&text[b..b + 5], &text[..b]),
                ];
                assert_eq!(
                    hash_label_pairs128_with(pairs.iter().copied(), &mut buf),
                    hash_label_pairs128(pairs.iter().copied()),
                    "lengths {a}, {b}"
                );
            }
        }
    }

    #[test]
    fn one_shot_and_streaming_series_keys_agree() {
        let pairs = [("__name__", "up"), ("job", "flink"), ("tm_id", "tm-1")];
        let mut buf = vec![1, 2, 3];
        let one_shot = hash_label_pairs128_with(pairs.iter().copied(), &mut buf);
        assert_eq!(one_shot, hash_label_pairs128(pairs.iter().copied()));
        // A different split of the same bytes between names and values must not collide.
        let shifted = [("__name__", "upj"), ("ob", "flink"), ("tm_id", "tm-1")];
        assert_ne!(
            one_shot,
            hash_label_pairs128_with(shifted.iter().copied(), &mut buf)
        );
    }

    #[test]
    fn cached_regexes_match_as_freshly_compiled_ones() {
        for _ in 0..3 {
            let m = Matcher::new(MatchOp::RegexMatch, "job", "flink-(jm|tm)-.*").unwrap();
            assert!(m.matches("flink-tm-3"));
            assert!(!m.matches("xflink-tm-3"));
            let n = Matcher::new(MatchOp::RegexNoMatch, "job", "flink-(jm|tm)-.*").unwrap();
            assert!(!n.matches("flink-jm-0"));
            // A bad regex is an error every time, not a cached success.
            assert!(Matcher::new(MatchOp::RegexMatch, "job", "(unclosed").is_err());
        }
        assert!(REGEX_CACHE.lock().len() <= REGEX_CACHE_ENTRIES);
    }
}
