//! Interning of label strings for the head: each distinct name or value is stored once and
//! referred to by a dense `u32` symbol id.

use std::collections::HashMap;
use std::sync::Arc;

use crate::labels::{Label, Labels};

/// Interned label strings with lookup both ways.
///
/// Concurrency contract: `intern` takes `&mut self`, lookups take `&self`, so the head keeps
/// one `Symbols` behind a `RwLock` (readers resolve ids concurrently; a writer interns the
/// strings of new series only, which is rare compared to appends). Symbol ids are assigned in
/// arrival order, densely from 0, and never reused or removed: series garbage collection does
/// not shrink the table (the head rebuilds it when it cuts a block).
#[derive(Debug, Default)]
pub struct Symbols {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
    bytes: usize,
}

impl Symbols {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.strings.len())
            .unwrap_or_else(|_| unreachable!("BUG: more than 2^32 symbols"));
        let owned: Arc<str> = Arc::from(s);
        self.bytes += s.len();
        self.strings.push(Arc::clone(&owned));
        self.ids.insert(owned, id);
        id
    }

    /// The id of `s` if it is interned.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The string of symbol `id`.
    pub fn resolve(&self, id: u32) -> Option<&str> {
        self.strings.get(id as usize).map(|s| &**s)
    }

    /// Interns every name and value of `labels`, appending `(name id, value id)` pairs to `dst`.
    pub fn intern_labels(&mut self, dst: &mut Vec<(u32, u32)>, labels: &Labels) {
        for l in labels {
            let n = self.intern(&l.name);
            let v = self.intern(&l.value);
            dst.push((n, v));
        }
    }

    /// Rebuilds a label set from interned pairs; `None` if an id is unknown.
    pub fn resolve_labels(&self, refs: &[(u32, u32)]) -> Option<Labels> {
        let mut v = Vec::with_capacity(refs.len());
        for &(n, val) in refs {
            v.push(Label {
                name: self.resolve(n)?.to_string(),
                value: self.resolve(val)?.to_string(),
            });
        }
        Some(Labels::from_sorted_unchecked(v))
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// True if no symbol was interned.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// Total bytes of the interned strings (not counting table overhead).
    pub fn string_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once_and_resolves_both_ways() {
        let mut s = Symbols::new();
        let a = s.intern("job");
        let b = s.intern("flink");
        assert_eq!(s.intern("job"), a);
        assert_eq!((a, b), (0, 1));
        assert_eq!(s.resolve(b), Some("flink"));
        assert_eq!(s.get("flink"), Some(1));
        assert_eq!(s.get("nope"), None);
        assert_eq!(s.resolve(7), None);
        assert_eq!(s.len(), 2);
        assert_eq!(s.string_bytes(), 8);
    }

    #[test]
    fn label_round_trip() {
        let mut s = Symbols::new();
        let l = Labels::from_pairs([("a", "x"), ("b", "a")]);
        let mut refs = Vec::new();
        s.intern_labels(&mut refs, &l);
        assert_eq!(refs, vec![(0, 1), (2, 0)]);
        assert_eq!(s.resolve_labels(&refs), Some(l));
        assert_eq!(s.resolve_labels(&[(0, 9)]), None);
    }
}
