//! The memory of label runs already seen: push clients repeat every series' labels in every
//! request, byte for byte (remote_write's label fields, a line protocol point's measurement,
//! tags and field keys), so the hash of those bytes can stand for the series' label set.
//! [`SeriesKeyCache`] maps that hash to the series' [`SeriesKey`]; a hit lets the decoder skip
//! the labels (no UTF-8 or name checks, no strings) and the head skip ordering and hashing
//! them. Each format hashes its own bytes its own way, so their entries cannot meet.
//!
//! The mapping is a pure function of the bytes (and of the server's fixed label drops), so an
//! entry never goes wrong; it only goes unused when its series leaves the head, which the
//! append reports as unresolved and the caller answers by appending the labels after all.
//! Entries are 128-bit hashes on both sides, as trusted as the head's own series keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use eddy_storage::SeriesKey;
use parking_lot::{RwLock, RwLockReadGuard};

/// Label-run hashes to series keys, bucketed by a per-process secret mix of the hash (see
/// [`RunHasher`]).
pub type RunKeyMap = HashMap<u128, SeriesKey, RunHashState>;

/// Entries kept beyond the number of series the caller says are live before the cache starts
/// again from empty (series that churned away leave entries behind).
const SLACK_ENTRIES: usize = 1 << 16;

/// Hash of a series' label bytes → its series key, shared by every ingest thread. Readers hold
/// the read lock for one request's decode; new entries are added once per request.
#[derive(Debug, Default)]
pub struct SeriesKeyCache {
    map: RwLock<RunKeyMap>,
}

/// Builds [`RunHasher`]s with one secret, random per cache.
#[derive(Debug, Clone, Copy)]
pub struct RunHashState {
    secret: u64,
}

impl RunHashState {
    /// The secret, for formats whose run hash takes a seed (line protocol).
    pub fn secret(&self) -> u64 {
        self.secret
    }
}

impl Default for RunHashState {
    fn default() -> Self {
        RunHashState {
            secret: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for RunHashState {
    type Hasher = RunHasher;

    fn build_hasher(&self) -> RunHasher {
        RunHasher { state: self.secret }
    }
}

/// Hashes a label-run hash (already uniform) for the map: one multiply-xorshift of its high
/// half with a secret. Label runs come from clients and their xxh3 hashes are unseeded, so
/// without the secret a client could choose label sets whose hashes share their low bits and
/// pile into one bucket.
#[derive(Debug)]
pub struct RunHasher {
    state: u64,
}

impl Hasher for RunHasher {
    fn finish(&self) -> u64 {
        eddy_storage::head::mix64(self.state)
    }

    fn write_u128(&mut self, key: u128) {
        self.state ^= (key >> 64) as u64;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u128` keys; kept correct for any other key.
        for &b in bytes {
            self.state = self.state.rotate_left(8) ^ u64::from(b);
        }
    }
}

/// A read view of the cache for one request.
pub type KnownSeries<'c> = RwLockReadGuard<'c, RunKeyMap>;

impl SeriesKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cache as it is now, for one request's decode.
    pub fn read(&self) -> KnownSeries<'_> {
        self.map.read()
    }

    /// Adds entries. When the cache would hold more than twice `live_series` (plus some
    /// slack), it is emptied first: entries of series that churned away are dropped, and the
    /// live ones come back on their next request.
    pub fn insert_all(&self, entries: &[(u128, SeriesKey)], live_series: usize) {
        if entries.is_empty() {
            return;
        }
        let mut map = self.map.write();
        let limit = live_series.saturating_mul(2).saturating_add(SLACK_ENTRIES);
        if map.len() + entries.len() > limit {
            map.clear();
            map.shrink_to_fit();
        }
        map.extend(entries.iter().copied());
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// True when the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The hash of a series' label bytes, as the cache keys it.
#[inline]
pub fn label_run_hash(run: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn key(v: &str) -> SeriesKey {
        let labels = [(Cow::Borrowed("__name__"), Cow::Borrowed(v))];
        SeriesKey::of(&labels, &mut eddy_storage::KeyScratch::default()).unwrap()
    }

    #[test]
    fn hashes_chosen_to_share_their_low_bits_still_spread_over_buckets() {
        // High halves that agree in their low 20 bits: the same bucket for a map that used
        // them as they are.
        let state = RunHashState::default();
        let buckets: std::collections::HashSet<u64> = (0u128..1024)
            .map(|i| state.hash_one((i << 84) | (0xabcde_u128 << 64)) & 1023)
            .collect();
        assert!(
            buckets.len() > 500,
            "only {} of 1024 buckets",
            buckets.len()
        );
    }

    #[test]
    fn entries_are_found_until_the_cache_outgrows_the_live_series() {
        let cache = SeriesKeyCache::new();
        let run = |i: u64| label_run_hash(&i.to_le_bytes());
        let first: Vec<(u128, SeriesKey)> =
            (0..10).map(|i| (run(i), key(&i.to_string()))).collect();
        cache.insert_all(&first, 10);
        assert_eq!(cache.len(), 10);
        assert_eq!(cache.read().get(&run(3)), Some(&key("3")));
        // Far more entries than twice the live series plus slack: the old ones are dropped.
        let x = key("x");
        let many: Vec<(u128, SeriesKey)> = (100..100 + SLACK_ENTRIES as u64 + 30)
            .map(|i| (run(i), x))
            .collect();
        cache.insert_all(&many, 10);
        assert_eq!(cache.len(), many.len());
        assert!(cache.read().get(&run(3)).is_none());
        assert_eq!(cache.read().get(&run(100)), Some(&x));
    }
}
