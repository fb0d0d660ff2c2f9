//! Shared timestamp columns of one selection, each decoded at most once.
//!
//! A block stores the timestamp column of a scrape once for all the series it holds, but a
//! chunk is decoded series by series, so without this a query decoded the same column once
//! per selected series: about a seventh of a dashboard query's instructions went to
//! timestamps that had been decoded a few hundred series earlier.

use std::sync::OnceLock;

use crate::chunk::decode_timestamps;

/// Most timestamps one selection keeps decoded (8 bytes each), so a selection over a huge
/// number of distinct columns stays bounded; columns past the limit decode per chunk.
const MAX_CACHED_TIMESTAMPS: usize = 4 << 20;

/// The distinct shared columns a selection's chunks reference, by address in the blocks'
/// mappings (the selection holds the blocks, so addresses stay valid and unique), with their
/// decoded timestamps filled on first use from any thread.
#[derive(Debug, Default)]
pub(crate) struct SharedColumns {
    /// Column start addresses, sorted and unique; `decoded[i]` belongs to `addrs[i]`.
    addrs: Vec<usize>,
    /// `None` inside the lock: the column did not decode (the chunk's own decode then reports
    /// the error).
    decoded: Vec<OnceLock<Option<Vec<i64>>>>,
}

/// Collects the columns while a selection is listed, in any order, repeats allowed.
#[derive(Debug, Default)]
pub(crate) struct SharedColumnsBuilder {
    /// (address, timestamp count).
    seen: Vec<(usize, usize)>,
}

impl SharedColumnsBuilder {
    /// Notes that a selected chunk references the column `col` holding `count` timestamps.
    pub(crate) fn add(&mut self, col: &[u8], count: usize) {
        // Series of one scrape follow each other in label order often enough that checking
        // the last entry keeps the list near its distinct size.
        let addr = col.as_ptr() as usize;
        if self.seen.last().map(|s| s.0) != Some(addr) {
            self.seen.push((addr, count));
        }
    }

    /// The set of distinct columns, as many as fit in [`MAX_CACHED_TIMESTAMPS`].
    pub(crate) fn build(self) -> SharedColumns {
        self.build_with_limit(MAX_CACHED_TIMESTAMPS)
    }

    fn build_with_limit(mut self, limit: usize) -> SharedColumns {
        self.seen.sort_unstable_by_key(|s| s.0);
        self.seen.dedup_by_key(|s| s.0);
        let mut total = 0usize;
        let mut addrs = Vec::with_capacity(self.seen.len());
        for (addr, count) in self.seen {
            if total + count > limit {
                continue;
            }
            total += count;
            addrs.push(addr);
        }
        let decoded = addrs.iter().map(|_| OnceLock::new()).collect();
        SharedColumns { addrs, decoded }
    }
}

impl SharedColumns {
    /// Number of distinct columns in the set.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.addrs.len()
    }

    /// The decoded timestamps of column `col` when it is one of the set and decodes;
    /// `None` means the caller decodes the chunk as usual.
    pub(crate) fn get(&self, col: &[u8]) -> Option<&[i64]> {
        let i = self.addrs.binary_search(&(col.as_ptr() as usize)).ok()?;
        self.decoded[i]
            .get_or_init(|| {
                let mut ts = Vec::new();
                decode_timestamps(col, &mut ts).ok().map(|_| ts)
            })
            .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::encode_timestamps;

    fn column(ts: &[i64]) -> Vec<u8> {
        let mut col = Vec::new();
        encode_timestamps(&mut col, ts);
        col
    }

    #[test]
    fn each_column_decodes_to_its_own_timestamps() {
        let a_ts: Vec<i64> = (0..200).map(|i| 1_000 + i * 15_000 + i % 3).collect();
        let b_ts: Vec<i64> = (0..50).map(|i| 7 + i * 30_000).collect();
        let (a, b) = (column(&a_ts), column(&b_ts));
        let mut builder = SharedColumnsBuilder::default();
        for _ in 0..3 {
            builder.add(&b, b_ts.len());
            builder.add(&a, a_ts.len());
        }
        let set = builder.build();
        assert_eq!(set.addrs.len(), 2);
        assert_eq!(set.get(&a), Some(&a_ts[..]));
        assert_eq!(set.get(&b), Some(&b_ts[..]));
        // Asking again gives the same decoded slice, not a second decode.
        assert_eq!(
            set.get(&a).map(<[i64]>::as_ptr),
            set.get(&a).map(<[i64]>::as_ptr)
        );
        // A column that was never added is the caller's to decode.
        let c = column(&a_ts);
        assert_eq!(set.get(&c), None);
    }

    #[test]
    fn columns_past_the_limit_are_left_to_the_caller() {
        let (a_ts, b_ts) = (vec![1, 2, 3], vec![10, 20, 30, 40]);
        let (a, b) = (column(&a_ts), column(&b_ts));
        let mut builder = SharedColumnsBuilder::default();
        builder.add(&a, 3);
        builder.add(&b, 4);
        let set = builder.build_with_limit(5);
        let cached = [set.get(&a).is_some(), set.get(&b).is_some()];
        // Exactly one of the two fits in five timestamps.
        assert_eq!(cached.iter().filter(|c| **c).count(), 1);
    }

    #[test]
    fn a_column_that_does_not_decode_is_left_to_the_caller() {
        let bad = [0xff_u8; 3];
        let mut builder = SharedColumnsBuilder::default();
        builder.add(&bad, 2);
        let set = builder.build();
        assert_eq!(set.get(&bad), None);
        assert_eq!(set.get(&bad), None);
    }
}
