//! The identity of a series as the head knows it: [`SeriesKey`], the 128-bit hash of a label
//! set's non-empty pairs in name order, and the checks a label set must pass to have one.
//!
//! A writer that sees the same label set again and again (remote_write repeats every series'
//! labels in every request) can compute the key once, keep it, and hand it to the head with
//! later batches ([`crate::WriteBatch::start_keyed_series`]), which then skips the checks, the
//! ordering and the hashing.

use std::borrow::Cow;
use std::num::NonZeroU128;

use crate::labels::{hash_label_pairs128_with, Labels};

/// The head's key of a valid label set. Made only by [`SeriesKey::of`] (or from the same hash
/// when the WAL is replayed), so a key always stands for labels that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesKey(NonZeroU128);

impl SeriesKey {
    /// Checks `labels` (any order; empty values are absent labels) and returns their key, or
    /// a message naming the problem: an empty or duplicate label name, or no label at all.
    pub fn of(
        labels: &[(Cow<'_, str>, Cow<'_, str>)],
        scratch: &mut KeyScratch,
    ) -> Result<SeriesKey, String> {
        series_key(labels, scratch).map(SeriesKey::from_hash)
    }

    /// The key of pairs already hashed by the label hash functions. A zero hash (one in
    /// 2^128) is folded onto one, so that `Option<SeriesKey>` costs no extra word.
    pub(crate) fn from_hash(hash: u128) -> SeriesKey {
        SeriesKey(NonZeroU128::new(hash).unwrap_or(NonZeroU128::MIN))
    }

    /// The key as a number (the head's maps and shard choice use it).
    pub fn get(self) -> u128 {
        self.0.get()
    }
}

/// Scratch space for [`SeriesKey::of`], reused across the series of a batch.
#[derive(Debug, Default)]
pub struct KeyScratch {
    /// The hash input of the current series' key.
    key_bytes: Vec<u8>,
    /// The first eight bytes of each label name (big-endian), by arrival position.
    prefixes: Vec<u64>,
    /// Arrival positions in name order. Kept from series to series: the series of one metric
    /// arrive together with their labels in the same order, so checking the previous order
    /// usually replaces the sort.
    order: Vec<u32>,
}

/// The first eight bytes of `name` as a big-endian integer, zero-padded: comparing these
/// orders names as comparing the bytes does, except that a tie needs the whole names.
#[inline]
pub(crate) fn name_prefix(name: &str) -> u64 {
    let b = name.as_bytes();
    // One load for names of eight bytes or more; shorter ones byte by byte (a `memcpy` call
    // of a variable length cost more than the rest of the key's ordering).
    if let Some(first) = b.first_chunk::<8>() {
        return u64::from_be_bytes(*first);
    }
    let mut p = 0u64;
    for (i, &c) in b.iter().enumerate() {
        p |= u64::from(c) << (56 - 8 * i);
    }
    p
}

/// Checks a series' labels and returns its key: the hash of its non-empty pairs in name
/// order. The labels stay in arrival order: only the few series that turn out to be new need
/// them sorted, so the hot path orders small integers instead of strings.
fn series_key(
    labels: &[(Cow<'_, str>, Cow<'_, str>)],
    scratch: &mut KeyScratch,
) -> std::result::Result<u128, String> {
    let KeyScratch {
        key_bytes,
        prefixes,
        order,
    } = scratch;
    prefixes.clear();
    prefixes.extend(labels.iter().map(|(n, _)| name_prefix(n)));
    let name = |k: u32| labels[k as usize].0.as_ref();
    // Strictly ascending, so a passing order also proves the names distinct.
    let before = |a: u32, b: u32| {
        let (pa, pb) = (prefixes[a as usize], prefixes[b as usize]);
        pa < pb || (pa == pb && name(a) < name(b))
    };
    let reused = order.len() == labels.len() && order.windows(2).all(|w| before(w[0], w[1]));
    if !reused {
        order.clear();
        order.extend(0..labels.len() as u32);
        order.sort_unstable_by(|&a, &b| {
            prefixes[a as usize]
                .cmp(&prefixes[b as usize])
                .then_with(|| name(a).cmp(name(b)))
        });
        if let Some(w) = order.windows(2).find(|w| !before(w[0], w[1])) {
            let dup = name(w[0]);
            let msg = format!(
                "duplicate label name {dup:?} in series {}",
                display_pairs(labels)
            );
            // The order is not valid for the next series either.
            order.clear();
            return Err(msg);
        }
    }
    // In name order an empty name can only come first.
    if order.first().is_some_and(|&k| name(k).is_empty()) {
        return Err(format!(
            "empty label name in series {}",
            display_pairs(labels)
        ));
    }
    if labels.iter().all(|(_, v)| v.is_empty()) {
        return Err("series without labels".to_string());
    }
    Ok(hash_label_pairs128_with(
        order
            .iter()
            .map(|&k| &labels[k as usize])
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (n.as_ref(), v.as_ref())),
        key_bytes,
    ))
}

/// A label set as `{a="b", …}` for messages.
pub(crate) fn display_pairs(pairs: &[(Cow<'_, str>, Cow<'_, str>)]) -> String {
    Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))).to_string()
}
