//! Hashing for the head's series maps, whose keys need no further hashing: series keys are
//! already xxh3-128 hashes of the labels, and series ids are dense integers. The standard
//! SipHash cost more per lookup than the rest of a sample's append.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by series keys (`u128`) or series ids (`u32`).
pub(crate) type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Hasher for [`KeyMap`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, key: u128) {
        // The low bits of a key choose its shard, so they are equal within one shard's map;
        // the high half is an independent part of the same hash.
        self.0 = (key >> 64) as u64;
    }

    fn write_u32(&mut self, id: u32) {
        // Ids share their low (shard) bits within a shard too: mix every bit into every bit.
        self.0 = mix64(u64::from(id));
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by the key types above; kept correct for any other key.
        for &b in bytes {
            self.0 = mix64(self.0 ^ u64::from(b));
        }
    }
}

/// The splitmix64 finaliser: every input bit reaches every output bit.
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn ids_of_one_shard_spread_over_buckets() {
        let build = BuildHasherDefault::<KeyHasher>::default();
        // Ids of shard 5 with 128 shards: low seven bits fixed.
        let buckets: std::collections::HashSet<u64> = (0u32..1024)
            .map(|local| build.hash_one((local << 7) | 5) & 1023)
            .collect();
        assert!(
            buckets.len() > 500,
            "only {} of 1024 buckets used",
            buckets.len()
        );
    }

    #[test]
    fn keys_hash_by_their_high_half() {
        let build = BuildHasherDefault::<KeyHasher>::default();
        let key = (0xdead_beef_u128 << 64) | 5;
        assert_eq!(build.hash_one(key), 0xdead_beef);
        let mut map: KeyMap<u128, u32> = KeyMap::default();
        map.insert(key, 1);
        assert_eq!(map.get(&key), Some(&1));
    }
}
