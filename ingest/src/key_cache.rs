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

use std::hash::BuildHasher;

use eddy_storage::SeriesKey;
use parking_lot::{RwLock, RwLockReadGuard};

/// Entries kept beyond the number of series the caller says are live before the cache starts
/// again from empty (series that churned away leave entries behind).
const SLACK_ENTRIES: usize = 1 << 16;

/// Hash of a series' label bytes → its series key, shared by every ingest thread. Readers hold
/// the read lock for one request's decode; new entries are added once per request.
#[derive(Debug, Default)]
pub struct SeriesKeyCache {
    map: RwLock<RunKeyMap>,
}

/// Label-run hashes to series keys: open addressing with linear probing over 32-byte slots
/// (the run's hash and its key side by side), so that a lookup usually costs one cache line,
/// and [`RunKeyMap::prefetch`] can ask for that line ahead of the lookup. A general hash map
/// costs two dependent misses (control bytes, then the entry); at 87 k series those misses
/// were most of the keyed decoder's time (perf). Buckets come from a per-process secret mix
/// of the hash: label runs come from clients and their xxh3 hashes are unseeded, so without
/// the secret a client could choose label sets whose hashes share their low bits and pile
/// them into one probe run.
#[derive(Debug, Clone)]
pub struct RunKeyMap {
    /// A power of two in length, or empty.
    slots: Vec<Slot>,
    len: usize,
    secret: u64,
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    run: u128,
    /// `None` marks an empty slot (a key is never zero).
    key: Option<SeriesKey>,
}

impl Default for RunKeyMap {
    fn default() -> Self {
        RunKeyMap {
            slots: Vec::new(),
            len: 0,
            secret: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl RunKeyMap {
    /// The per-process secret, for formats whose run hash takes a seed (line protocol).
    pub fn secret(&self) -> u64 {
        self.secret
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the map holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, run: u128) -> usize {
        let mask = self.slots.len().wrapping_sub(1);
        eddy_storage::head::mix64((run >> 64) as u64 ^ self.secret) as usize & mask
    }

    /// The key of label run `run`, if known.
    #[inline]
    pub fn get(&self, run: &u128) -> Option<&SeriesKey> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(*run);
        loop {
            let slot = &self.slots[i];
            match &slot.key {
                None => return None,
                Some(key) if slot.run == *run => return Some(key),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// Asks the CPU to fetch the cache line where the lookup of `run` starts, so that a loop
    /// of lookups can overlap their misses.
    #[inline]
    pub fn prefetch(&self, run: u128) {
        if let Some(slot) = self.slots.get(self.home(run)) {
            prefetch_read(slot);
        }
    }

    /// Adds or replaces the key of `run`.
    pub fn insert(&mut self, run: u128, key: SeriesKey) {
        // At most 70 % full: linear probing stays short.
        if (self.len + 1) * 10 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(run);
        loop {
            let slot = &mut self.slots[i];
            match slot.key {
                None => {
                    *slot = Slot {
                        run,
                        key: Some(key),
                    };
                    self.len += 1;
                    return;
                }
                Some(_) if slot.run == run => {
                    slot.key = Some(key);
                    return;
                }
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); capacity]);
        self.len = 0;
        for slot in old {
            if let Some(key) = slot.key {
                self.insert(slot.run, key);
            }
        }
    }

    /// Forgets every entry and frees the table.
    pub fn clear(&mut self) {
        self.slots = Vec::new();
        self.len = 0;
    }

    /// Heap bytes held.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }
}

/// A hint to load the cache line of `value`; it never faults and changes nothing observable.
#[inline]
fn prefetch_read<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let ptr: *const T = value;
        // SAFETY: `_mm_prefetch` only hints the cache; it does not dereference the pointer
        // (and this one points to a live value anyway). SSE is part of every x86_64 target.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
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
        }
        for &(run, key) in entries {
            map.insert(run, key);
        }
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
        // High halves that agree in their low 20 bits: the same bucket for a table that used
        // them as they are.
        let mut map = RunKeyMap::default();
        for i in 0..700u128 {
            map.insert(i, key("x"));
        }
        assert_eq!(map.slots.len(), 1024);
        let buckets: std::collections::HashSet<usize> = (0u128..1024)
            .map(|i| map.home((i << 84) | (0xabcde_u128 << 64)))
            .collect();
        assert!(
            buckets.len() > 500,
            "only {} of 1024 buckets",
            buckets.len()
        );
    }

    #[test]
    fn the_table_finds_replaces_and_grows() {
        let mut map = RunKeyMap::default();
        assert_eq!(map.get(&5), None);
        map.prefetch(5);
        // Runs that share their high half share their home slot: a probe run.
        let runs: Vec<u128> = (0..5000u128).map(|i| (i % 7) << 64 | i).collect();
        for (i, &r) in runs.iter().enumerate() {
            map.insert(r, key(&i.to_string()));
            map.prefetch(r);
        }
        assert_eq!(map.len(), runs.len());
        for (i, r) in runs.iter().enumerate() {
            assert_eq!(map.get(r), Some(&key(&i.to_string())), "{i}");
        }
        assert_eq!(map.get(&(3u128 << 64 | 5001)), None);
        map.insert(runs[10], key("new"));
        assert_eq!(map.len(), runs.len());
        assert_eq!(map.get(&runs[10]), Some(&key("new")));
        assert!(map.len() * 10 <= map.slots.len() * 7);
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        map.clear();
        assert!(map.is_empty() && map.get(&runs[0]).is_none());
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
