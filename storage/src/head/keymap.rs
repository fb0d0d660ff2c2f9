//! Hashing for the head's series tables, whose keys need no further hashing: series keys are
//! already xxh3-128 hashes of the labels, and series ids are dense integers that only need
//! their bits mixed. The standard SipHash cost more per lookup than the rest of a sample's
//! append.

/// The splitmix64 finaliser: every input bit reaches every output bit.
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_one_shard_spread_over_buckets() {
        // Ids of shard 5 with 128 shards: low seven bits fixed.
        let buckets: std::collections::HashSet<u64> = (0u32..1024)
            .map(|local| mix64(u64::from((local << 7) | 5)) & 1023)
            .collect();
        assert!(
            buckets.len() > 500,
            "only {} of 1024 buckets used",
            buckets.len()
        );
        assert_eq!(mix64(0), 0);
        assert_ne!(mix64(1), 1);
    }
}
