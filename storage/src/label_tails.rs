//! Distinct label tails, each kept once. A series' tail is its `(name, value)` symbol pairs
//! after the first; the series of one Flink task or operator differ only in `__name__`, their
//! first label, so a million series have a few tens of thousands of tails. Code that holds
//! every series' labels for a while (a head cut sorting the series it writes, a block's index
//! builder) keeps a first pair and a tail number per series instead of ~12 pairs: 96 bytes
//! less per Flink series.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// The tail number of a series with fewer than two labels.
pub(crate) const NO_TAIL: u32 = u32::MAX;

/// The distinct tails seen so far, numbered in order of first use.
#[derive(Debug, Default)]
pub(crate) struct LabelTails {
    /// All tails' pairs back to back; tail `t` ends at `ends[t]`.
    pairs: Vec<(u32, u32)>,
    ends: Vec<u32>,
    /// Series per tail.
    uses: Vec<u32>,
    /// Tail numbers, found by content; emptied by [`map_pairs`](Self::map_pairs).
    by_content: hashbrown::HashTable<u32>,
    hasher: RandomState,
}

/// Tail `t` of [`LabelTails::pairs`] and [`LabelTails::ends`] (a free function, so that the hash
/// table's rehash can read the tails while the table itself is borrowed).
fn tail_of<'a>(pairs: &'a [(u32, u32)], ends: &[u32], t: u32) -> &'a [(u32, u32)] {
    if t == NO_TAIL {
        return &[];
    }
    let start = match t {
        0 => 0,
        _ => ends[t as usize - 1] as usize,
    };
    &pairs[start..ends[t as usize] as usize]
}

impl LabelTails {
    /// Tail `t` (empty for [`NO_TAIL`]).
    pub(crate) fn get(&self, t: u32) -> &[(u32, u32)] {
        tail_of(&self.pairs, &self.ends, t)
    }

    /// Number of distinct tails.
    pub(crate) fn len(&self) -> u32 {
        self.ends.len() as u32
    }

    /// How many series have tail `t`.
    pub(crate) fn uses(&self, t: u32) -> u32 {
        self.uses.get(t as usize).copied().unwrap_or(0)
    }

    /// A series' first pair (`None` without labels) and tail number, interning the tail.
    pub(crate) fn split(&mut self, pairs: &[(u32, u32)]) -> (Option<(u32, u32)>, u32) {
        match pairs.split_first() {
            Some((&first, tail)) => (Some(first), self.intern(tail)),
            None => (None, NO_TAIL),
        }
    }

    /// The number of `tail` ([`NO_TAIL`] if empty), added if new; counts one more use.
    fn intern(&mut self, tail: &[(u32, u32)]) -> u32 {
        if tail.is_empty() {
            return NO_TAIL;
        }
        let hash = self.hasher.hash_one(tail);
        let found = self
            .by_content
            .find(hash, |&t| self.get(t) == tail)
            .copied();
        let t = match found {
            Some(t) => t,
            None => {
                debug_assert!(
                    self.by_content.len() == self.ends.len(),
                    "intern after map_pairs"
                );
                let t = self.len();
                self.pairs.extend_from_slice(tail);
                self.ends.push(self.pairs.len() as u32);
                self.uses.push(0);
                let LabelTails {
                    pairs,
                    ends,
                    by_content,
                    hasher,
                    ..
                } = self;
                by_content
                    .insert_unique(hash, t, |&old| hasher.hash_one(tail_of(pairs, ends, old)));
                t
            }
        };
        self.uses[t as usize] += 1;
        t
    }

    /// Rewrites every pair of every tail through `f` (symbol ids to ranks). The tails stay
    /// distinct only if `f` is one-to-one; no tail can be interned afterwards.
    pub(crate) fn map_pairs(&mut self, f: impl Fn((u32, u32)) -> (u32, u32)) {
        self.by_content = hashbrown::HashTable::new();
        for p in &mut self.pairs {
            *p = f(*p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tails_share_a_number_and_count_their_series() {
        let mut t = LabelTails::default();
        assert_eq!(t.split(&[]), (None, NO_TAIL));
        assert_eq!(t.split(&[(1, 2)]), (Some((1, 2)), NO_TAIL));
        let a = t.split(&[(1, 2), (3, 4), (5, 6)]);
        let b = t.split(&[(1, 7), (3, 4), (5, 6)]);
        let c = t.split(&[(1, 7), (3, 4)]);
        assert_eq!((a.1, b.1, c.1), (0, 0, 1));
        // Enough tails to make the table grow and rehash.
        for i in 0..1000 {
            assert_eq!(t.split(&[(0, 0), (i, i)]).1, i + 2);
        }
        assert_eq!(t.split(&[(9, 9), (500, 500)]).1, 502);
        assert_eq!(
            (t.len(), t.uses(0), t.uses(1), t.uses(502)),
            (1002, 2, 1, 2)
        );
        assert_eq!(t.get(1), &[(3, 4)]);
        assert_eq!(t.get(NO_TAIL), &[]);
        t.map_pairs(|(n, v)| (n + 1, v * 2));
        assert_eq!(t.get(0), &[(4, 8), (6, 12)]);
    }
}
