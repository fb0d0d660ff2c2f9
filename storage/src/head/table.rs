//! One shard's series: the entries in a dense vector, found by series key and by series id
//! through two hash tables that hold only the entries' positions.
//!
//! Why not two `HashMap`s (key → entry, id → key), as before: a map slot holds the key and the
//! whole entry, and a map keeps 12–56 % of its slots empty, so a 160-byte entry cost ~330
//! bytes per series with the id map (measured: 57 MB of the server's 231 MB of heap for
//! 173,440 head series, `docs/benchmarks.md`, "Memory per series, sixth session"). Here an
//! empty slot costs five bytes (a `u32` position and a control byte) and the entries vector
//! grows by an eighth at a time.

use hashbrown::HashTable;

use super::keymap::mix64;
use super::packed_labels::PackedLabels;
use super::series::MemSeries;

/// A head series.
///
/// Two cache lines, aligned: the first holds everything an append reads (the key it is
/// checked against, the id it is logged with, the WAL flag and the series' open buffer,
/// which `MemSeries` keeps first), the second what only sealing, out-of-order inserts and
/// queries read. Unaligned in a 16-byte-aligned segment, an entry could span three lines; the
/// append's prefetch (see `Head::append`) now covers its fields with one line
/// (docs/benchmarks.md, "The ingest path, ninth session").
#[repr(C, align(64))]
pub(super) struct Entry {
    /// High and low halves of the series key (two `u64`s rather than a `u128`, whose 16-byte
    /// alignment would pad every entry).
    key: [u64; 2],
    pub(super) id: u32,
    /// False after the WAL write that carried this series' record failed: the next append
    /// that touches the series logs the record again, so its samples replay.
    pub(super) wal_logged: bool,
    pub(super) series: MemSeries,
    pub(super) labels: PackedLabels,
}

impl Entry {
    pub(super) fn new(key: u128, id: u32, labels: PackedLabels) -> Entry {
        Entry {
            key: [(key >> 64) as u64, key as u64],
            id,
            wal_logged: true,
            labels,
            series: MemSeries::new(),
        }
    }

    pub(super) fn key(&self) -> u128 {
        (u128::from(self.key[0]) << 64) | u128::from(self.key[1])
    }
}

/// Series keys are xxh3-128 hashes already, but their low bits choose the shard, so they are
/// equal within one shard: the high half is an independent part of the same hash.
fn key_hash(key: u128) -> u64 {
    (key >> 64) as u64
}

/// Ids share their low (shard) bits within a shard too: mix every bit into every bit.
fn id_hash(id: u32) -> u64 {
    mix64(u64::from(id))
}

/// Entries per segment of a [`Segmented`] table (16 KiB of 128-byte entries).
const SEGMENT_ENTRIES: usize = 128;

/// A vector in fixed-size segments: it grows by adding a segment and never moves an entry,
/// so growing leaves no freed block of the old size behind. A shard's entries grown as one
/// vector (an eighth at a time, ~20 reallocations to 170 KB at medium size) left holes that
/// small long-lived allocations filled: 20 MB of free memory inside glibc's arena after the
/// medium replay, with large blocks served from the arena ("Server memory, eighth session").
struct Segmented<T> {
    segments: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Segmented<T> {
    fn default() -> Self {
        Segmented {
            segments: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Segmented<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn capacity(&self) -> usize {
        self.segments.len() * SEGMENT_ENTRIES
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&T> {
        self.segments
            .get(i / SEGMENT_ENTRIES)?
            .get(i % SEGMENT_ENTRIES)
    }

    #[inline]
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.segments
            .get_mut(i / SEGMENT_ENTRIES)?
            .get_mut(i % SEGMENT_ENTRIES)
    }

    fn push(&mut self, x: T) {
        if self.len == self.capacity() {
            self.segments.push(Vec::with_capacity(SEGMENT_ENTRIES));
        }
        self.segments[self.len / SEGMENT_ENTRIES].push(x);
        self.len += 1;
    }

    /// Removes entry `i` (< `len`); the last entry takes its place. An emptied last segment
    /// is freed.
    fn swap_remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let last_segment = (self.len - 1) / SEGMENT_ENTRIES;
        let last = self.segments[last_segment].pop()?;
        self.len -= 1;
        if self.segments[last_segment].is_empty() {
            self.segments.pop();
        }
        if i == self.len {
            return Some(last);
        }
        Some(std::mem::replace(
            &mut self.segments[i / SEGMENT_ENTRIES][i % SEGMENT_ENTRIES],
            last,
        ))
    }

    fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.segments.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.segments.iter_mut().flatten()
    }
}

impl<T> std::ops::Index<usize> for Segmented<T> {
    type Output = T;

    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.segments[i / SEGMENT_ENTRIES][i % SEGMENT_ENTRIES]
    }
}

/// The series of one shard.
#[derive(Default)]
pub(super) struct SeriesTable {
    entries: Segmented<Entry>,
    /// Positions in `entries`, hashed by the entry's key.
    by_key: HashTable<u32>,
    /// Positions in `entries`, hashed by the entry's id.
    by_id: HashTable<u32>,
}

impl SeriesTable {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    fn slot_of_key(&self, key: u128) -> Option<usize> {
        let entries = &self.entries;
        self.by_key
            .find(key_hash(key), |&s| entries[s as usize].key() == key)
            .map(|&s| s as usize)
    }

    fn slot_of_id(&self, id: u32) -> Option<usize> {
        let entries = &self.entries;
        self.by_id
            .find(id_hash(id), |&s| entries[s as usize].id == id)
            .map(|&s| s as usize)
    }

    /// The position of the entry with `key`.
    pub(super) fn position(&self, key: u128) -> Option<usize> {
        self.slot_of_key(key)
    }

    /// True when the entry at `pos` has `key`: a position kept from an earlier lookup is
    /// checked this way, since removals move entries (see [`remove`](Self::remove)).
    #[inline]
    pub(super) fn holds_at(&self, pos: usize, key: u128) -> bool {
        self.entries.get(pos).is_some_and(|e| e.key() == key)
    }

    /// Starts loading the first cache line of the entry at `pos`, if there is one (see
    /// `Head::append`).
    #[inline]
    pub(super) fn prefetch_at(&self, pos: usize) {
        if let Some(e) = self.entries.get(pos) {
            super::prefetch::prefetch_line((e as *const Entry).cast::<u8>());
        }
    }

    /// The entry at `pos` (a position from [`position`](Self::position),
    /// [`holds_at`](Self::holds_at) or [`insert`](Self::insert) with no removal since).
    pub(super) fn at(&self, pos: usize) -> Option<&Entry> {
        self.entries.get(pos)
    }

    /// See [`at`](Self::at).
    pub(super) fn at_mut(&mut self, pos: usize) -> Option<&mut Entry> {
        self.entries.get_mut(pos)
    }

    pub(super) fn get(&self, key: u128) -> Option<&Entry> {
        self.slot_of_key(key).map(|s| &self.entries[s])
    }

    #[cfg(test)]
    pub(super) fn get_mut(&mut self, key: u128) -> Option<&mut Entry> {
        self.slot_of_key(key).and_then(|s| self.entries.get_mut(s))
    }

    pub(super) fn by_id(&self, id: u32) -> Option<&Entry> {
        self.slot_of_id(id).map(|s| &self.entries[s])
    }

    pub(super) fn by_id_mut(&mut self, id: u32) -> Option<&mut Entry> {
        self.slot_of_id(id).and_then(|s| self.entries.get_mut(s))
    }

    /// Adds an entry whose key and id are not in the table (the caller looked both up) and
    /// returns its position.
    pub(super) fn insert(&mut self, entry: Entry) -> usize {
        debug_assert!(
            self.slot_of_key(entry.key()).is_none() && self.slot_of_id(entry.id).is_none()
        );
        let slot = u32::try_from(self.entries.len())
            .unwrap_or_else(|_| unreachable!("BUG: more than 2^32 series in one shard"));
        let entries = &self.entries;
        let (kh, ih) = (key_hash(entry.key()), id_hash(entry.id));
        self.by_key
            .insert_unique(kh, slot, |&s| key_hash(entries[s as usize].key()));
        self.by_id
            .insert_unique(ih, slot, |&s| id_hash(entries[s as usize].id));
        self.entries.push(entry);
        slot as usize
    }

    /// Removes the entry with `key`. The last entry moves into its place.
    pub(super) fn remove(&mut self, key: u128) -> Option<Entry> {
        let slot = self.slot_of_key(key)?;
        let id = self.entries[slot].id;
        let s32 = slot as u32;
        if let Ok(e) = self.by_key.find_entry(key_hash(key), |&s| s == s32) {
            e.remove();
        }
        if let Ok(e) = self.by_id.find_entry(id_hash(id), |&s| s == s32) {
            e.remove();
        }
        let removed = self.entries.swap_remove(slot)?;
        if slot < self.entries.len() {
            // The former last entry now lives at `slot`.
            let moved_from = self.entries.len() as u32;
            let (mk, mi) = (self.entries[slot].key(), self.entries[slot].id);
            if let Some(s) = self.by_key.find_mut(key_hash(mk), |&s| s == moved_from) {
                *s = s32;
            }
            if let Some(s) = self.by_id.find_mut(id_hash(mi), |&s| s == moved_from) {
                *s = s32;
            }
        }
        Some(removed)
    }

    /// Gives back memory after many removals.
    pub(super) fn shrink(&mut self) {
        // The entries' segments go as they empty; only their list can shrink.
        self.entries.segments.shrink_to_fit();
        let entries = &self.entries;
        self.by_key
            .shrink_to_fit(|&s| key_hash(entries[s as usize].key()));
        self.by_id
            .shrink_to_fit(|&s| id_hash(entries[s as usize].id));
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> + '_ {
        self.entries.iter_mut()
    }

    /// Heap bytes of the entries vector and both tables (not what entries point to).
    pub(super) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.entries.segments.capacity() * std::mem::size_of::<Vec<Entry>>()
            + self.by_key.allocation_size()
            + self.by_id.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmented_entries_push_remove_and_free_their_segments() {
        let mut v: Segmented<usize> = Segmented::default();
        let n = 3 * SEGMENT_ENTRIES + 5;
        for i in 0..n {
            v.push(i);
        }
        assert_eq!((v.len(), v.capacity()), (n, 4 * SEGMENT_ENTRIES));
        assert_eq!(
            v.iter().copied().collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>()
        );
        assert_eq!(v.get(n), None);
        assert_eq!(v[SEGMENT_ENTRIES + 1], SEGMENT_ENTRIES + 1);
        // The last entry moves into a hole in the first segment, as `Vec::swap_remove` does.
        assert_eq!(v.swap_remove(3), Some(3));
        assert_eq!(v[3], n - 1);
        assert_eq!(v.swap_remove(v.len() - 1), Some(n - 2));
        assert_eq!(v.swap_remove(v.len()), None);
        // Emptying the last segment frees it.
        while v.len() > 3 * SEGMENT_ENTRIES {
            let last = v.len() - 1;
            v.swap_remove(last);
        }
        assert_eq!(v.capacity(), 3 * SEGMENT_ENTRIES);
        v.swap_remove(0);
        assert_eq!(v.capacity(), 3 * SEGMENT_ENTRIES, "{}", v.len());
        assert_eq!(v.len(), 3 * SEGMENT_ENTRIES - 1);
        *v.get_mut(7).unwrap() = usize::MAX;
        assert_eq!(v.iter().filter(|&&x| x == usize::MAX).count(), 1);
        for x in v.iter_mut() {
            *x = 1;
        }
        assert_eq!(v.iter().sum::<usize>(), v.len());
    }

    #[test]
    fn per_series_structures_stay_within_their_budget() {
        // Every byte here is paid once per head series (entry) or per chunk of 128 samples;
        // see docs/benchmarks.md, "Memory per series, sixth session".
        assert_eq!(std::mem::size_of::<Entry>(), 128);
        assert_eq!(std::mem::align_of::<Entry>(), 64);
        // What an append reads fits the entry's first cache line.
        assert!(
            std::mem::offset_of!(Entry, series) + MemSeries::HOT_BYTES <= 64,
            "the append path's fields straddle a cache line"
        );
        assert_eq!(std::mem::size_of::<super::super::series::SealedChunk>(), 32);
    }

    fn ids(t: &SeriesTable) -> Vec<u32> {
        let mut v: Vec<u32> = t.iter().map(|e| e.id).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn entries_are_found_by_key_and_id_through_inserts_and_removals() {
        let mut t = SeriesTable::default();
        let key = |i: u32| (u128::from(mix64(u64::from(i))) << 64) | 5;
        for i in 0..1000u32 {
            let pos = t.insert(Entry::new(
                key(i),
                i * 128 + 5,
                PackedLabels::new([(i, i + 1)]),
            ));
            assert_eq!(t.at(pos).map(|e| e.id), Some(i * 128 + 5));
            assert!(t.holds_at(pos, key(i)) && !t.holds_at(pos, key(i + 1)));
        }
        assert_eq!(t.len(), 1000);
        // Remove every third entry (the first and the last among them) and one more.
        for i in (0..1000u32).step_by(3).chain([998]) {
            let e = t.remove(key(i)).unwrap();
            assert_eq!((e.id, e.key()), (i * 128 + 5, key(i)));
        }
        assert!(t.remove(key(0)).is_none());
        let left: Vec<u32> = (0..1000u32).filter(|i| i % 3 != 0 && *i != 998).collect();
        assert_eq!(
            ids(&t),
            left.iter().map(|i| i * 128 + 5).collect::<Vec<_>>()
        );
        t.shrink();
        for &i in &left {
            assert_eq!(t.get(key(i)).map(|e| e.id), Some(i * 128 + 5));
            assert_eq!(t.by_id(i * 128 + 5).map(|e| e.key()), Some(key(i)));
            let labels: Vec<(u32, u32)> = t.by_id(i * 128 + 5).unwrap().labels.iter().collect();
            assert_eq!(labels, vec![(i, i + 1)]);
        }
        for &i in &left {
            // A position found by key is where the entry is; positions past the end hold
            // nothing.
            let pos = t.position(key(i)).unwrap();
            assert!(t.holds_at(pos, key(i)));
            assert_eq!(t.at_mut(pos).map(|e| e.id), Some(i * 128 + 5));
        }
        assert!(!t.holds_at(t.len(), key(1)) && t.at(t.len()).is_none());
        for i in (0..1000u32).step_by(3) {
            assert!(t.get(key(i)).is_none());
            assert!(t.by_id(i * 128 + 5).is_none());
        }
        t.get_mut(key(1)).unwrap().wal_logged = false;
        assert!(!t.by_id_mut(133).unwrap().wal_logged);
        // Keys that share their high half are told apart by the whole key.
        let twin = key(1) ^ 0xff00;
        t.insert(Entry::new(twin, 7, PackedLabels::new([])));
        assert_eq!(t.get(twin).map(|e| e.id), Some(7));
        assert_eq!(t.get(key(1)).map(|e| e.id), Some(133));
    }
}
