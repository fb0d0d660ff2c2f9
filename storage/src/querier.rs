//! The merged read view: blocks and head answer a query together, as one sorted series set.
//!
//! Blocks and the head may overlap in time (the head keeps a block's range until it is
//! truncated, compaction keeps sources until the merged block is in place), so samples with
//! equal timestamps are de-duplicated; the later source in the list wins.
//!
//! [`lazy`] holds the selection that queries use: series listed up front, samples decoded
//! when read.

mod lazy;

pub(crate) use lazy::LazySelection;

use crate::api::Series;
use crate::labels::Labels;

/// Merges series lists that are each sorted by labels into one sorted list; series with equal
/// labels get their samples merged by time.
pub fn merge_series_sets(sets: Vec<Vec<Series>>) -> Vec<Series> {
    let mut sets: Vec<Vec<Series>> = sets.into_iter().filter(|s| !s.is_empty()).collect();
    match sets.len() {
        0 => return Vec::new(),
        1 => return sets.pop().unwrap_or_default(),
        _ => {}
    }
    let mut all: Vec<(usize, Series)> = sets
        .into_iter()
        .enumerate()
        .flat_map(|(i, v)| v.into_iter().map(move |s| (i, s)))
        .collect();
    // Stable sort keeps source order among equal label sets.
    all.sort_by(|a, b| a.1.labels.cmp(&b.1.labels).then(a.0.cmp(&b.0)));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    for (_, s) in all {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => merge_samples(last, s),
            _ => out.push(s),
        }
    }
    out
}

/// Merges `src`'s samples into `dst` by timestamp; on equal timestamps `src` wins.
fn merge_samples(dst: &mut Series, src: Series) {
    if dst
        .timestamps
        .last()
        .is_none_or(|&t| src.timestamps.first().is_some_and(|&f| f > t))
    {
        dst.timestamps.extend_from_slice(&src.timestamps);
        dst.values.extend_from_slice(&src.values);
        return;
    }
    let (at, av) = (
        std::mem::take(&mut dst.timestamps),
        std::mem::take(&mut dst.values),
    );
    let (bt, bv) = (src.timestamps, src.values);
    let (mut i, mut j) = (0, 0);
    let mut ts = Vec::with_capacity(at.len() + bt.len());
    let mut vs = Vec::with_capacity(at.len() + bt.len());
    while i < at.len() || j < bt.len() {
        let take_b = j < bt.len() && (i >= at.len() || bt[j] <= at[i]);
        if take_b {
            if i < at.len() && at[i] == bt[j] {
                i += 1;
            }
            ts.push(bt[j]);
            vs.push(bv[j]);
            j += 1;
        } else {
            ts.push(at[i]);
            vs.push(av[i]);
            i += 1;
        }
    }
    dst.timestamps = ts;
    dst.values = vs;
}

/// Merges sorted, de-duplicated lists of label sets.
pub fn merge_label_sets(sets: Vec<Vec<Labels>>) -> Vec<Labels> {
    let mut all: Vec<Labels> = sets.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Merges sorted lists of strings into one sorted list without duplicates.
pub fn merge_strings(sets: Vec<Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = sets.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, pts: &[(i64, f64)]) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", name)]),
            timestamps: pts.iter().map(|p| p.0).collect(),
            values: pts.iter().map(|p| p.1).collect(),
        }
    }

    #[test]
    fn merges_overlapping_sources_by_time() {
        let a = vec![s("a", &[(1, 1.0), (3, 3.0)]), s("b", &[(1, 1.0)])];
        let b = vec![
            s("a", &[(2, 2.0), (3, 30.0), (4, 4.0)]),
            s("c", &[(9, 9.0)]),
        ];
        let m = merge_series_sets(vec![a, b]);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].timestamps, vec![1, 2, 3, 4]);
        assert_eq!(m[0].values, vec![1.0, 2.0, 30.0, 4.0]);
        assert_eq!(m[1].labels.metric_name(), Some("b"));
        assert_eq!(m[2].labels.metric_name(), Some("c"));
    }

    #[test]
    fn appends_disjoint_ranges() {
        let m = merge_series_sets(vec![vec![s("a", &[(1, 1.0)])], vec![s("a", &[(5, 5.0)])]]);
        assert_eq!(m[0].timestamps, vec![1, 5]);
    }
}
