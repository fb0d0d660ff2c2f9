//! The merged read view: blocks and head answer a query together, as one sorted series set.
//!
//! Blocks and the head may overlap in time (the head keeps a block's range until it is
//! truncated, compaction keeps sources until the merged block is in place), so samples with
//! equal timestamps are de-duplicated; the later source in the list wins.
//!
//! [`lazy`] holds the selection that queries and compaction read series through: series listed
//! up front, samples decoded when read; [`shared_ts`] decodes each shared timestamp column of
//! a selection once. This module also merges the label-only answers
//! (series, label names and values).

mod lazy;
mod shared_ts;

pub(crate) use lazy::{for_each_series_of_blocks, LazySelection};

/// Merges sorted lists (label sets, label names, label values) into one sorted list without
/// duplicates.
pub fn merge_sorted<T: Ord>(sets: Vec<Vec<T>>) -> Vec<T> {
    let mut all: Vec<T> = sets.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}
