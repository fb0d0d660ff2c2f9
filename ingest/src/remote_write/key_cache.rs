//! The memory of label runs already seen: remote_write repeats every series' labels in every
//! request, byte for byte, so the hash of a series' label bytes can stand for its label set.
//! [`SeriesKeyCache`] maps that hash to the series' [`SeriesKey`]; a hit lets the decoder skip
//! the labels (no UTF-8 or name checks, no strings) and the head skip ordering and hashing
//! them.
//!
//! The mapping is a pure function of the bytes (and of the server's fixed label drops), so an
//! entry never goes wrong; it only goes unused when its series leaves the head, which the
//! append reports as unresolved and the caller answers by appending the labels after all.
//! Entries are 128-bit hashes on both sides, as trusted as the head's own series keys.

use eddy_storage::head::KeyMap;
use eddy_storage::SeriesKey;
use parking_lot::{RwLock, RwLockReadGuard};

/// Entries kept beyond the number of series the caller says are live before the cache starts
/// again from empty (series that churned away leave entries behind).
const SLACK_ENTRIES: usize = 1 << 16;

/// Hash of a series' label bytes → its series key, shared by every ingest thread. Readers hold
/// the read lock for one request's decode; new entries are added once per request.
#[derive(Debug, Default)]
pub struct SeriesKeyCache {
    map: RwLock<KeyMap<u128, SeriesKey>>,
}

/// A read view of the cache for one request.
pub type KnownSeries<'c> = RwLockReadGuard<'c, KeyMap<u128, SeriesKey>>;

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
            *map = KeyMap::default();
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
    fn entries_are_found_until_the_cache_outgrows_the_live_series() {
        let cache = SeriesKeyCache::new();
        let first: Vec<(u128, SeriesKey)> = (0..10u128).map(|i| (i, key(&i.to_string()))).collect();
        cache.insert_all(&first, 10);
        assert_eq!(cache.len(), 10);
        assert_eq!(cache.read().get(&3), Some(&key("3")));
        // Far more entries than twice the live series plus slack: the old ones are dropped.
        let many: Vec<(u128, SeriesKey)> = (100..100 + SLACK_ENTRIES as u128 + 30)
            .map(|i| (i, key("x")))
            .collect();
        cache.insert_all(&many, 10);
        assert_eq!(cache.len(), many.len());
        assert!(cache.read().get(&3).is_none());
        assert_eq!(cache.read().get(&100), Some(&key("x")));
    }
}
