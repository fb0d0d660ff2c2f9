//! The head's in-memory postings: for every label name, the sorted values and for each value a
//! roaring bitmap of the series ids that carry `name="value"`.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, ControlFlow};

use croaring::Bitmap;

use crate::error::Result;
use crate::index::{matcher, PostingsSource};
use crate::labels::{Labels, Matcher};

/// In-memory postings keyed by label name, then value.
///
/// Concurrency contract: mutation takes `&mut self` and reads take `&self`; the head keeps it
/// behind a `RwLock` (new series are rare next to queries, and `add_batch` amortises the write
/// lock over a whole ingest batch). Values are kept in a `BTreeMap` so that prefix and
/// label-values scans come out sorted without sorting at query time.
#[derive(Debug, Default)]
pub struct MemPostings {
    by_name: HashMap<String, BTreeMap<String, Bitmap>>,
    all: Bitmap,
}

impl MemPostings {
    /// Empty postings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds series `id` with `labels`. Adding ids in increasing order is fastest (roaring
    /// appends); any order is correct.
    pub fn add(&mut self, id: u32, labels: &Labels) {
        self.add_pairs(id, labels.pairs());
    }

    /// Adds series `id` with borrowed `(name, value)` pairs (canonical: no empty values).
    pub fn add_pairs<'a>(&mut self, id: u32, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (name, value) in pairs {
            // Look up before inserting so an existing pair costs no String allocation.
            let values = match self.by_name.get_mut(name) {
                Some(v) => v,
                None => self.by_name.entry(name.to_string()).or_default(),
            };
            match values.get_mut(value) {
                Some(b) => b.add(id),
                None => {
                    values.insert(value.to_string(), Bitmap::of(&[id]));
                }
            }
        }
        self.all.add(id);
    }

    /// Adds many series (e.g. the new series of one ingest batch) under one lock.
    pub fn add_batch<'l>(&mut self, series: impl IntoIterator<Item = (u32, &'l Labels)>) {
        for (id, labels) in series {
            self.add(id, labels);
        }
    }

    /// Removes the series in `ids` (garbage collection); pairs left without series disappear.
    pub fn remove(&mut self, ids: &Bitmap) {
        if ids.is_empty() {
            return;
        }
        self.by_name.retain(|_, values| {
            values.retain(|_, b| {
                b.andnot_inplace(ids);
                !b.is_empty()
            });
            !values.is_empty()
        });
        self.all.andnot_inplace(ids);
    }

    /// Number of series.
    pub fn num_series(&self) -> u64 {
        self.all.cardinality()
    }

    /// Number of distinct `name="value"` pairs.
    pub fn num_pairs(&self) -> usize {
        self.by_name.values().map(BTreeMap::len).sum()
    }

    /// Series ids matching every matcher (see [`index::select`](crate::index::select)).
    pub fn select(&self, matchers: &[Matcher]) -> Bitmap {
        infallible(matcher::select(self, matchers))
    }

    /// Sorted label names, restricted to series in `filter` when given.
    pub fn label_names(&self, filter: Option<&Bitmap>) -> Vec<String> {
        infallible(matcher::label_names(self, filter))
    }

    /// Sorted values of `name`, restricted to series in `filter` when given.
    pub fn label_values(&self, name: &str, filter: Option<&Bitmap>) -> Vec<String> {
        infallible(matcher::label_values(self, name, filter))
    }

    /// Shrinks every bitmap's containers (call after a large load, e.g. WAL replay).
    pub fn optimize(&mut self) {
        for values in self.by_name.values_mut() {
            for b in values.values_mut() {
                b.run_optimize();
                b.shrink_to_fit();
            }
        }
        self.all.run_optimize();
        self.all.shrink_to_fit();
    }
}

/// Unwraps a result of the generic evaluation over `MemPostings`, whose source methods never fail.
fn infallible<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => unreachable!("BUG: in-memory postings returned an error: {e}"),
    }
}

impl PostingsSource for MemPostings {
    fn all(&self) -> Result<Bitmap> {
        Ok(self.all.clone())
    }

    fn names(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self.by_name.keys().cloned().collect();
        v.sort_unstable();
        Ok(v)
    }

    fn postings(&self, name: &str, value: &str) -> Result<Option<Bitmap>> {
        Ok(self.by_name.get(name).and_then(|v| v.get(value)).cloned())
    }

    fn for_each_value(
        &self,
        name: &str,
        prefix: &str,
        want: &mut dyn FnMut(&str) -> bool,
        visit: &mut dyn FnMut(&str, &Bitmap) -> ControlFlow<()>,
    ) -> Result<()> {
        let Some(values) = self.by_name.get(name) else {
            return Ok(());
        };
        for (v, b) in values.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)) {
            if !v.starts_with(prefix) {
                break;
            }
            if want(v) && visit(v, b).is_break() {
                break;
            }
        }
        Ok(())
    }
}
