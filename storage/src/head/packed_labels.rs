//! A head series' labels as symbol ids, packed as LEB128 varints: name id, value id, name
//! id, … in name order.
//!
//! Why: a `Box<[(u32, u32)]>` spends 8 bytes per label, while most symbol ids are small (the
//! series of a Flink fleet share their names and most values): for the 173 k head series of
//! `compare.sh --medium` the pairs took 14.4 MB (83 B per series) and the packed form 4.7 MB
//! (27 B), see `docs/benchmarks.md`, "Memory per series, sixth session". Reading them back is
//! a short byte loop; it happens when a series is created, read by a query or cut, never per
//! sample.

use crate::index::Symbols;
use crate::labels::Labels;

/// Packed `(name, value)` symbol-id pairs of one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PackedLabels(Box<[u8]>);

impl PackedLabels {
    pub(super) fn new(pairs: impl IntoIterator<Item = (u32, u32)>) -> PackedLabels {
        // Room for a Flink series (~10 labels of one- and two-byte ids) up front, then one
        // shrink, instead of four doublings from 8 bytes.
        let mut bytes = Vec::with_capacity(48);
        for (n, v) in pairs {
            put(&mut bytes, n);
            put(&mut bytes, v);
        }
        PackedLabels(bytes.into_boxed_slice())
    }

    /// The pairs in order.
    pub(super) fn iter(&self) -> Pairs<'_> {
        Pairs { bytes: &self.0 }
    }

    /// Number of pairs.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.iter().count()
    }

    /// Bytes on the heap.
    pub(super) fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// The label set (`None` if a symbol is missing, which cannot happen for a live series).
    pub(super) fn resolve(&self, symbols: &Symbols) -> Option<Labels> {
        let mut pairs = Vec::with_capacity(16);
        for (n, v) in self.iter() {
            pairs.push((symbols.resolve(n)?, symbols.resolve(v)?));
        }
        Some(Labels::from_sorted_pairs_unchecked(pairs))
    }
}

fn put(dst: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Reads one varint; `None` at the end (or on a truncated one, which `put` never writes).
fn get(bytes: &mut &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        v |= u32::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *bytes = &bytes[i + 1..];
            return Some(v);
        }
    }
    None
}

/// Iterator over [`PackedLabels`].
#[derive(Debug, Clone)]
pub(super) struct Pairs<'a> {
    bytes: &'a [u8],
}

impl Iterator for Pairs<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        let n = get(&mut self.bytes)?;
        let v = get(&mut self.bytes)?;
        Some((n, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_at_every_varint_length() {
        let pairs: Vec<(u32, u32)> = vec![
            (0, 127),
            (128, 16_383),
            (16_384, 2_097_151),
            (2_097_152, 268_435_455),
            (268_435_456, u32::MAX),
            (1, 0),
        ];
        let p = PackedLabels::new(pairs.iter().copied());
        assert_eq!(p.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(p.len(), 6);
        // 1+1, 2+2, 3+3, 4+4, 5+5, 1+1 bytes.
        assert_eq!(p.heap_bytes(), 2 + 4 + 6 + 8 + 10 + 2);
        let empty = PackedLabels::new([]);
        assert_eq!((empty.len(), empty.heap_bytes()), (0, 0));
    }

    #[test]
    fn resolves_through_the_symbol_table() {
        let mut symbols = Symbols::new();
        let want = Labels::from_pairs([("__name__", "up"), ("job", "flink"), ("tm_id", "tm-7")]);
        let mut ids = Vec::new();
        symbols.intern_labels(&mut ids, &want);
        let p = PackedLabels::new(ids.iter().copied());
        assert_eq!(p.resolve(&symbols), Some(want));
        assert_eq!(PackedLabels::new([(0, 999)]).resolve(&symbols), None);
    }
}
