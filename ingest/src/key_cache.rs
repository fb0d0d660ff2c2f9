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
//!
//! Beside each key the map keeps the head's last [`SeriesRef`] for the series (where the head
//! held it), which lets the append skip its own hash lookup. The head checks a reference
//! against the key before it uses it, so a stale one (after a head cut, a removed series) costs
//! only that lookup; appends hand back the current references, and [`SeriesKeyCache::
//! remember_refs`] stores those that changed.
//!
//! Entries of series that churned away (a restarted Flink job's tasks and operators) would
//! stay until the table is cleared. So every lookup marks its entry as seen, and a sweep
//! ([`SeriesKeyCache::sweep_if_due`]) drops the entries nobody asked for during an epoch that
//! covered at least [`SWEEP_EPOCH_MS`] of sample time and as many lookups as there are
//! entries. A live series dropped by mistake (one pushed less often than the epoch) only costs
//! one request with its labels decoded again.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use eddy_storage::{SeriesKey, SeriesRef, WriteBatch};
use parking_lot::{RwLock, RwLockReadGuard};

/// Entries kept beyond the number of series the caller says are live before the cache starts
/// again from empty (series that churned away leave entries behind).
const SLACK_ENTRIES: usize = 1 << 16;

/// Shortest epoch, in sample time (the head's newest timestamp), after which entries not
/// looked up are dropped: two of the longest push intervals Flink reporters are set to (60 s).
/// Sample time rather than the wall clock, so that a replay of hours of samples in minutes
/// sweeps as a live fleet would.
pub const SWEEP_EPOCH_MS: i64 = 120_000;

/// A sweep rebuilds the table only when at least this share (1/n) of its entries went unseen;
/// otherwise it only starts a new epoch.
const SWEEP_MIN_SHARE: usize = 8;

/// The bit of a slot's reference word that marks the entry as looked up in this epoch
/// (series references are positions in a head shard, far below 2^31).
const SEEN: u32 = 1 << 31;

/// Hash of a series' label bytes → its series key, shared by every ingest thread. Readers hold
/// the read lock for one request's decode; new entries are added once per request.
#[derive(Debug)]
pub struct SeriesKeyCache {
    map: RwLock<RunKeyMap>,
    /// Lookups that hit since the epoch began (counted per request).
    epoch_hits: AtomicU64,
    /// Sample time the epoch began at (`i64::MIN`: not yet).
    epoch_start: AtomicI64,
}

impl Default for SeriesKeyCache {
    fn default() -> Self {
        SeriesKeyCache {
            map: RwLock::default(),
            epoch_hits: AtomicU64::new(0),
            epoch_start: AtomicI64::new(i64::MIN),
        }
    }
}

/// Label-run hashes to series keys: open addressing with linear probing over 32-byte slots
/// (the run's hash and its key side by side), so that a lookup usually costs one cache line,
/// and [`RunKeyMap::prefetch`] can ask for that line ahead of the lookup. A general hash map
/// costs two dependent misses (control bytes, then the entry); at 87 k series those misses
/// were most of the keyed decoder's time (perf). Buckets come from a per-process secret mix
/// of the hash: label runs come from clients and their xxh3 hashes are unseeded, so without
/// the secret a client could choose label sets whose hashes share their low bits and pile
/// them into one probe run.
#[derive(Debug)]
pub struct RunKeyMap {
    /// A multiple of 64 slots, or empty.
    slots: Vec<Slot>,
    /// Per slot, its series' [`SeriesRef`] as a number (0: none) and the [`SEEN`] bit. Apart
    /// from the slots, so that a slot stays 32 bytes; updated through a shared borrow by the
    /// threads that read the map.
    refs: Vec<AtomicU32>,
    len: usize,
    secret: u64,
    /// Changes whenever entries move to other slots (growth, clearing), so that slot numbers
    /// taken before are known to be stale.
    generation: u64,
}

/// What the map holds for a label run.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// The run's series key.
    pub key: SeriesKey,
    /// Where the head held the series when the map last heard of it.
    pub series_ref: Option<SeriesRef>,
    /// The run's slot (see [`HitRefs`]).
    slot: u32,
}

impl Clone for RunKeyMap {
    fn clone(&self) -> Self {
        RunKeyMap {
            slots: self.slots.clone(),
            refs: self
                .refs
                .iter()
                .map(|r| AtomicU32::new(r.load(Ordering::Relaxed)))
                .collect(),
            len: self.len,
            secret: self.secret,
            generation: self.generation,
        }
    }
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
            refs: Vec::new(),
            len: 0,
            secret: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
            generation: 0,
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

    /// The run's first slot: its mixed hash scaled onto the table (multiply and shift, so
    /// the table can have any size and grow by less than doubling).
    #[inline]
    fn home(&self, run: u128) -> usize {
        let mixed = eddy_storage::head::mix64((run >> 64) as u64 ^ self.secret);
        ((u128::from(mixed) * self.slots.len() as u128) >> 64) as usize
    }

    /// The slot after `i`, wrapping at the end of the table.
    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// The key of label run `run`, if known.
    #[inline]
    pub fn get(&self, run: &u128) -> Option<&SeriesKey> {
        let i = self.slot_of(run)?;
        self.slots[i].key.as_ref()
    }

    /// The key and series reference of label run `run`, if known; marks the entry as seen.
    #[inline]
    pub fn find(&self, run: &u128) -> Option<Found> {
        let i = self.slot_of(run)?;
        let mut raw = 0;
        if let Some(r) = self.refs.get(i) {
            raw = r.load(Ordering::Relaxed);
            if raw & SEEN == 0 {
                // Once per entry and epoch: the line is in cache already, and the other
                // lookups of the epoch only read it.
                r.fetch_or(SEEN, Ordering::Relaxed);
            }
        }
        Some(Found {
            key: self.slots[i].key?,
            series_ref: SeriesRef::from_raw(raw & !SEEN),
            slot: i as u32,
        })
    }

    #[inline]
    fn slot_of(&self, run: &u128) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(*run);
        loop {
            let slot = &self.slots[i];
            match &slot.key {
                None => return None,
                Some(_) if slot.run == *run => return Some(i),
                Some(_) => i = self.next(i),
            }
        }
    }

    /// Asks the CPU to fetch the cache lines where the lookup of `run` starts (its slot and
    /// its series reference), so that a loop of lookups can overlap their misses.
    #[inline]
    pub fn prefetch(&self, run: u128) {
        let home = self.home(run);
        if let Some(slot) = self.slots.get(home) {
            prefetch_read(slot);
        }
        if let Some(r) = self.refs.get(home) {
            prefetch_read(r);
        }
    }

    /// Stores `series_ref` for the run in `slot` (a slot from [`find`](Self::find) in this
    /// generation of the map).
    fn store_ref(&self, slot: u32, series_ref: Option<SeriesRef>) {
        if let Some(r) = self.refs.get(slot as usize) {
            r.store(raw_ref(series_ref) | SEEN, Ordering::Relaxed);
        }
    }

    /// Adds or replaces the key of `run`.
    pub fn insert(&mut self, run: u128, key: SeriesKey) {
        // A new entry counts as seen in the epoch it arrives in.
        self.insert_with_ref(run, key, SEEN);
    }

    /// Adds or replaces the key of `run`; a new entry gets series reference `raw_ref`, a
    /// replaced one keeps its own when the key is the same.
    fn insert_with_ref(&mut self, run: u128, key: SeriesKey, raw_ref: u32) {
        // At most 70 % full: linear probing stays short.
        if (self.len + 1) * 10 > self.slots.len() * 7 {
            self.grow();
        }
        let mut i = self.home(run);
        loop {
            let slot = &mut self.slots[i];
            match slot.key {
                None => {
                    *slot = Slot {
                        run,
                        key: Some(key),
                    };
                    *self.refs[i].get_mut() = raw_ref;
                    self.len += 1;
                    return;
                }
                Some(old) if slot.run == run => {
                    slot.key = Some(key);
                    if old != key {
                        *self.refs[i].get_mut() = 0;
                    }
                    return;
                }
                Some(_) => i = self.next(i),
            }
        }
    }

    fn grow(&mut self) {
        self.rebuild(capacity_for(self.len + self.len / 2 + 1), |_| true);
    }

    /// Moves the entries that `keep` accepts (given their reference word) into a table of
    /// `capacity` slots.
    fn rebuild(&mut self, capacity: usize, keep: impl Fn(u32) -> bool) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); capacity]);
        let old_refs = std::mem::replace(
            &mut self.refs,
            (0..capacity).map(|_| AtomicU32::new(0)).collect(),
        );
        self.len = 0;
        self.generation += 1;
        for (slot, r) in old.into_iter().zip(old_refs) {
            let raw = r.into_inner();
            if let Some(key) = slot.key.filter(|_| keep(raw)) {
                self.insert_with_ref(slot.run, key, raw);
            }
        }
    }

    /// Ends an epoch: drops the entries not looked up since the last sweep when they are at
    /// least 1/[`SWEEP_MIN_SHARE`] of all (into a table sized for those kept), and clears
    /// every entry's seen mark. Returns true if it freed memory.
    fn sweep(&mut self) -> bool {
        let unseen = self
            .refs
            .iter()
            .zip(&self.slots)
            .filter(|(r, s)| s.key.is_some() && r.load(Ordering::Relaxed) & SEEN == 0)
            .count();
        let mut freed = false;
        if unseen > 0 && unseen * SWEEP_MIN_SHARE >= self.len {
            let kept = self.len - unseen;
            // Room for a quarter more before the next growth.
            let capacity = capacity_for(kept + kept / 4);
            freed = capacity < self.slots.len();
            self.rebuild(capacity, |raw| raw & SEEN != 0);
        }
        for r in &mut self.refs {
            *r.get_mut() &= !SEEN;
        }
        freed
    }

    /// Forgets every entry and frees the table.
    pub fn clear(&mut self) {
        self.slots = Vec::new();
        self.refs = Vec::new();
        self.len = 0;
        self.generation += 1;
    }

    /// Heap bytes held.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.refs.capacity() * std::mem::size_of::<AtomicU32>()
    }
}

/// A table (a multiple of 64 slots) that holds `entries` at most 70 % full.
fn capacity_for(entries: usize) -> usize {
    entries
        .saturating_mul(10)
        .div_ceil(7)
        .next_multiple_of(64)
        .max(64)
}

fn raw_ref(series_ref: Option<SeriesRef>) -> u32 {
    series_ref.map_or(0, SeriesRef::get) & !SEEN
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

/// The series a decoder sent keyed, with the map slots their keys came from and the references
/// they were sent with: after the append, [`SeriesKeyCache::remember_refs`] stores the
/// references that changed straight into those slots, without looking the runs up again.
#[derive(Debug, Default)]
pub struct HitRefs {
    /// The map's generation when the slots were taken.
    generation: u64,
    /// Batch index, map slot, the reference sent (as a number, 0 for none).
    hits: Vec<(u32, u32, u32)>,
}

impl HitRefs {
    /// Forgets the previous request; slots taken from now on are of `known`'s generation.
    pub fn start(&mut self, known: &RunKeyMap) {
        self.generation = known.generation;
        self.hits.clear();
    }

    /// Forgets the previous request.
    pub fn clear(&mut self) {
        self.hits.clear();
    }

    /// Notes that batch series `index` went in keyed with what `found` held.
    #[inline]
    pub fn push(&mut self, index: u32, found: &Found) {
        self.hits
            .push((index, found.slot, raw_ref(found.series_ref)));
    }

    /// Heap bytes held.
    pub fn retained_bytes(&self) -> usize {
        self.hits.capacity() * std::mem::size_of::<(u32, u32, u32)>()
    }
}

impl SeriesKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cache as it is now, for one request's decode.
    pub fn read(&self) -> KnownSeries<'_> {
        self.map.read()
    }

    /// Adds entries; `now` is the newest sample time the caller knows (the head's), for the
    /// sweep. When the cache would hold more than twice `live_series` (plus some slack), it is
    /// emptied first: entries of series that churned away are dropped, and the live ones come
    /// back on their next request.
    pub fn insert_all(&self, entries: &[(u128, SeriesKey)], live_series: usize, now: i64) {
        if entries.is_empty() {
            return;
        }
        let mut map = self.map.write();
        if self.epoch_due(&map, now) {
            self.end_epoch(&mut map, now);
        }
        let limit = live_series.saturating_mul(2).saturating_add(SLACK_ENTRIES);
        if map.len() + entries.len() > limit {
            map.clear();
        }
        for &(run, key) in entries {
            map.insert(run, key);
        }
    }

    /// Stores the series references an append left in `batch` (see
    /// [`eddy_storage::api::BatchSeries::series_ref`]): for the keyed `hits` whose reference
    /// changed, and for the `misses` (batch index, label-run hash) just inserted. References
    /// are hints, so a request whose hit slots went stale (the map grew or was cleared since
    /// its decode) leaves its hits' references to the next request.
    pub fn remember_refs(&self, batch: &WriteBatch<'_>, hits: &HitRefs, misses: &[(u32, u128)]) {
        let now = |i: u32| batch.series.get(i as usize).and_then(|s| s.series_ref);
        self.epoch_hits
            .fetch_add(hits.hits.len() as u64, Ordering::Relaxed);
        let map = self.map.read();
        if map.generation == hits.generation {
            for &(i, slot, sent) in &hits.hits {
                let r = now(i);
                if raw_ref(r) != sent {
                    map.store_ref(slot, r);
                }
            }
        }
        for &(i, run) in misses {
            if let (Some(r), Some(found)) = (now(i), map.find(&run)) {
                map.store_ref(found.slot, Some(r));
            }
        }
    }

    /// Drops the entries nobody looked up during the epoch, if the epoch is over: it began at
    /// least [`SWEEP_EPOCH_MS`] before `now` (sample time) and saw at least as many hits as
    /// there are entries. Returns true if memory was freed. Holds the write lock for one pass
    /// over the table (about a millisecond per 100 k entries).
    pub fn sweep_if_due(&self, now: i64) -> bool {
        if !self.epoch_due(&self.map.read(), now) {
            return false;
        }
        let mut map = self.map.write();
        self.epoch_due(&map, now) && self.end_epoch(&mut map, now)
    }

    fn epoch_due(&self, map: &RunKeyMap, now: i64) -> bool {
        let start = self.epoch_start.load(Ordering::Relaxed);
        if start == i64::MIN {
            // The first epoch begins with the first sample time anyone tells.
            if now != i64::MIN {
                let _ = self.epoch_start.compare_exchange(
                    i64::MIN,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            return false;
        }
        now.saturating_sub(start) >= SWEEP_EPOCH_MS
            && self.epoch_hits.load(Ordering::Relaxed) >= map.len() as u64
            && !map.is_empty()
    }

    fn end_epoch(&self, map: &mut RunKeyMap, now: i64) -> bool {
        self.epoch_hits.store(0, Ordering::Relaxed);
        self.epoch_start.store(now, Ordering::Relaxed);
        map.sweep()
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
        let slots = map.slots.len();
        assert!((1000..=1600).contains(&slots), "{slots} slots");
        let buckets: std::collections::HashSet<usize> = (0u128..1024)
            .map(|i| map.home((i << 84) | (0xabcde_u128 << 64)))
            .collect();
        assert!(
            buckets.len() > 500,
            "only {} of {slots} buckets",
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
    fn series_refs_follow_their_runs_through_growth_and_are_dropped_with_them() {
        let mut map = RunKeyMap::default();
        map.insert(1, key("a"));
        let found = map.find(&1).unwrap();
        assert_eq!((found.key, found.series_ref), (key("a"), None));
        let r = SeriesRef::from_raw(7);
        map.store_ref(found.slot, r);
        assert_eq!(map.find(&1).unwrap().series_ref, r);
        // Growing moves the entries; each keeps its reference.
        let before = map.generation;
        for i in 2..500u128 {
            map.insert(i << 64 | i, key(&i.to_string()));
        }
        assert_ne!(map.generation, before);
        assert_eq!(map.find(&1).unwrap().series_ref, r);
        assert!(map.find(&(2 << 64 | 2)).unwrap().series_ref.is_none());
        // The same key again keeps the reference; another key for the run drops it.
        map.insert(1, key("a"));
        assert_eq!(map.find(&1).unwrap().series_ref, r);
        map.insert(1, key("b"));
        assert!(map.find(&1).unwrap().series_ref.is_none());
        assert_eq!(map.clone().find(&1).map(|f| f.key), Some(key("b")));
        map.clear();
        assert!(map.find(&1).is_none());
    }

    #[test]
    fn references_from_an_append_are_kept_and_stale_ones_repaired() {
        use eddy_storage::head::{AppendLog, Head, HeadOptions};
        use eddy_storage::labels::Matcher;
        let head = Head::new(HeadOptions {
            shards: 1,
            ..Default::default()
        });
        let cache = SeriesKeyCache::new();
        let names = ["a", "b", "c"];
        let run = |n: &str| label_run_hash(n.as_bytes());
        // First request: every series with its labels (all misses).
        let mut batch = WriteBatch::new();
        let mut misses = Vec::new();
        for (i, n) in names.iter().enumerate() {
            batch.start_keyed_series(key(n));
            batch.push_label("__name__", *n);
            batch.push_sample(if *n == "a" { 10 } else { 1000 }, 1.0);
            misses.push((i as u32, run(n)));
        }
        let entries: Vec<(u128, SeriesKey)> = names.iter().map(|n| (run(n), key(n))).collect();
        cache.insert_all(&entries, 3, 0);
        head.append(&mut batch, &mut AppendLog::default()).unwrap();
        cache.remember_refs(&batch, &HitRefs::default(), &misses);
        let refs: Vec<Option<SeriesRef>> = names
            .iter()
            .map(|n| cache.read().find(&run(n)).unwrap().series_ref)
            .collect();
        assert!(refs.iter().all(Option::is_some));
        // Removing a moves c into its place: c's reference is stale now.
        head.truncate_before(500).unwrap();
        // Next requests: b and c keyed, without labels, as a decoder sends them.
        let send = |t: i64| {
            let known = cache.read();
            let mut hits = HitRefs::default();
            hits.start(&known);
            let mut batch = WriteBatch::new();
            for (i, n) in ["b", "c"].iter().enumerate() {
                let found = known.find(&run(n)).unwrap();
                batch.start_keyed_series_at(found.key, found.series_ref);
                batch.push_sample(t, t as f64);
                hits.push(i as u32, &found);
            }
            drop(known);
            let o = head.append(&mut batch, &mut AppendLog::default()).unwrap();
            assert_eq!((o.accepted, o.unresolved.len()), (2, 0));
            cache.remember_refs(&batch, &hits, &[]);
        };
        send(2000);
        assert_eq!(cache.read().find(&run("c")).unwrap().series_ref, refs[0]);
        assert_eq!(cache.read().find(&run("b")).unwrap().series_ref, refs[1]);
        // Slots taken before the map grew are not written to.
        let known = cache.read();
        let mut stale = HitRefs::default();
        stale.start(&known);
        stale.push(0, &known.find(&run("b")).unwrap());
        drop(known);
        let more: Vec<(u128, SeriesKey)> = (0..100u32)
            .map(|i| (u128::from(i) << 70, key("x")))
            .collect();
        cache.insert_all(&more, 1000, 0);
        let mut other = WriteBatch::new();
        other.start_keyed_series_at(key("b"), SeriesRef::from_raw(99));
        cache.remember_refs(&other, &stale, &[]);
        assert_eq!(cache.read().find(&run("b")).unwrap().series_ref, refs[1]);
        send(3000);
        for (n, want) in [("b", vec![1000, 2000, 3000]), ("c", vec![1000, 2000, 3000])] {
            let got = head
                .select(&[Matcher::equal("__name__", n)], 0, i64::MAX)
                .unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].timestamps, want, "{n}");
        }
    }

    #[test]
    fn entries_are_found_until_the_cache_outgrows_the_live_series() {
        let cache = SeriesKeyCache::new();
        let run = |i: u64| label_run_hash(&i.to_le_bytes());
        let first: Vec<(u128, SeriesKey)> =
            (0..10).map(|i| (run(i), key(&i.to_string()))).collect();
        cache.insert_all(&first, 10, 0);
        assert_eq!(cache.len(), 10);
        assert_eq!(cache.read().get(&run(3)), Some(&key("3")));
        // Far more entries than twice the live series plus slack: the old ones are dropped.
        let x = key("x");
        let many: Vec<(u128, SeriesKey)> = (100..100 + SLACK_ENTRIES as u64 + 30)
            .map(|i| (run(i), x))
            .collect();
        cache.insert_all(&many, 10, 0);
        assert_eq!(cache.len(), many.len());
        assert!(cache.read().get(&run(3)).is_none());
        assert_eq!(cache.read().get(&run(100)), Some(&x));
    }

    #[test]
    fn entries_nobody_looks_up_for_an_epoch_are_swept() {
        let cache = SeriesKeyCache::new();
        let run = |i: u64| label_run_hash(&i.to_le_bytes());
        let all: Vec<(u128, SeriesKey)> =
            (0..4000).map(|i| (run(i), key(&i.to_string()))).collect();
        let t0 = 1_000_000;
        cache.insert_all(&all, 4000, t0);
        let full_bytes = cache.read().allocated_bytes();
        // Requests that name only the first 1,000 series (a restart replaced the others).
        let look_up_first_thousand = || {
            let known = cache.read();
            let mut hits = HitRefs::default();
            hits.start(&known);
            for i in 0..1000u64 {
                let found = known.find(&run(i)).unwrap();
                hits.push(i as u32, &found);
            }
            drop(known);
            cache.remember_refs(&WriteBatch::new(), &hits, &[]);
        };
        // The first epoch: every entry is new in it, so none goes.
        for _ in 0..4 {
            look_up_first_thousand();
        }
        assert!(!cache.sweep_if_due(t0 + SWEEP_EPOCH_MS));
        assert_eq!(cache.len(), 4000);
        let t1 = t0 + SWEEP_EPOCH_MS;
        look_up_first_thousand();
        // Long enough in sample time, but fewer hits than entries: not yet.
        assert!(!cache.sweep_if_due(t1 + SWEEP_EPOCH_MS));
        for _ in 0..4 {
            look_up_first_thousand();
        }
        // Enough hits, but too short an epoch: not yet.
        assert!(!cache.sweep_if_due(t1 + SWEEP_EPOCH_MS - 1));
        // Series that arrive during the epoch count as seen.
        let late: Vec<(u128, SeriesKey)> = (9000..9010).map(|i| (run(i), key("late"))).collect();
        cache.insert_all(&late, 4000, t1 + 1);
        assert_eq!(cache.len(), 4010);
        assert!(cache.sweep_if_due(t1 + SWEEP_EPOCH_MS));
        assert_eq!(cache.len(), 1010);
        assert!(cache.read().allocated_bytes() * 3 < full_bytes);
        for i in 0..1000u64 {
            assert_eq!(cache.read().get(&run(i)), Some(&key(&i.to_string())), "{i}");
        }
        assert!((1000..4000u64).all(|i| cache.read().get(&run(i)).is_none()));
        assert!((9000..9010u64).all(|i| cache.read().get(&run(i)).is_some()));
        // A new epoch began: nothing is due until it is over, and then only the unseen go.
        let t2 = t1 + SWEEP_EPOCH_MS;
        assert!(!cache.sweep_if_due(t2 + 1));
        for _ in 0..2 {
            look_up_first_thousand();
        }
        assert!(!cache.sweep_if_due(t2 + SWEEP_EPOCH_MS - 1));
        // The ten late ones went unseen, too few (under an eighth) to rebuild for: they stay
        // until a later sweep finds enough.
        assert!(!cache.sweep_if_due(t2 + SWEEP_EPOCH_MS));
        assert_eq!(cache.len(), 1010);
    }
}
