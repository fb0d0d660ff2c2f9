//! Block identity and `meta.json`: ULID-style block ids, the block's time range, counts,
//! compaction lineage, file sizes and checksums, and the checksum of the metadata itself.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A block id: a ULID (48-bit creation time in ms, 80 random bits), written as 26 Crockford
/// base32 characters. Ids sort by creation time, as text and as numbers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(u128);

impl BlockId {
    /// An id from a timestamp (ms since the epoch, low 48 bits used) and 80 bits of `random`.
    pub fn new(time_ms: u64, random: u128) -> Self {
        BlockId((u128::from(time_ms & 0xffff_ffff_ffff) << 80) | (random & ((1u128 << 80) - 1)))
    }

    /// A fresh id for now; randomness comes from std's per-process random hasher keys.
    pub fn generate() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let rand = |salt: u64| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(salt);
            h.finish()
        };
        BlockId::new(now, (u128::from(rand(1)) << 64) | u128::from(rand(2)))
    }

    /// Creation time in ms since the epoch.
    pub fn time_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *c = CROCKFORD[((self.0 >> shift) & 31) as usize];
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({self})")
    }
}

/// The text is not a block id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse block id {0:?}: want 26 Crockford base32 characters")]
pub struct ParseBlockIdError(pub String);

impl FromStr for BlockId {
    type Err = ParseBlockIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseBlockIdError(s.to_string());
        if s.len() != 26 {
            return Err(bad());
        }
        let mut v = 0u128;
        for (i, b) in s.bytes().enumerate() {
            let d = CROCKFORD
                .iter()
                .position(|&c| c == b.to_ascii_uppercase())
                .ok_or_else(bad)? as u128;
            // 26 digits hold 130 bits: the first may only use its low 3.
            if i == 0 && d > 7 {
                return Err(bad());
            }
            v = (v << 5) | d;
        }
        Ok(BlockId(v))
    }
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Counts of what a block holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockStats {
    /// Series (with or without chunks).
    pub num_series: u64,
    /// Samples, the sum of the chunks' counts.
    pub num_samples: u64,
    /// Chunks.
    pub num_chunks: u64,
}

/// Where a block came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compaction {
    /// 1 for a block cut from the head; a merge is one more than its highest parent.
    pub level: u32,
    /// Blocks merged into this one (empty at level 1).
    pub parents: Vec<BlockId>,
}

/// Size and checksum of one file of the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeta {
    /// File name inside the block directory.
    pub name: String,
    /// Length in bytes.
    pub size: u64,
    /// CRC32C (Castagnoli) of the whole file.
    pub crc32c: u32,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockMeta {
    /// Block format version ([`BLOCK_VERSION`](crate::block::BLOCK_VERSION)).
    pub version: u32,
    /// The block id, also its directory name.
    pub id: BlockId,
    /// Smallest timestamp any chunk may hold (ms, inclusive).
    pub min_t: i64,
    /// Largest timestamp any chunk may hold (ms, inclusive).
    pub max_t: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Lineage.
    pub compaction: Compaction,
    /// `index` and `chunks`, with sizes and checksums.
    pub files: Vec<FileMeta>,
    /// CRC32C of this JSON as written with `checksum` set to 0.
    pub checksum: u32,
}

impl BlockMeta {
    /// The file entry called `name`.
    pub fn file(&self, name: &str) -> Option<&FileMeta> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The canonical bytes of `meta.json`: pretty JSON and a newline, `checksum` as given.
    fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }

    /// Sets `checksum` and returns the bytes to write.
    pub(crate) fn seal(&mut self) -> Result<Vec<u8>, serde_json::Error> {
        self.checksum = 0;
        self.checksum = crc32c::crc32c(&self.to_bytes()?);
        self.to_bytes()
    }

    /// Parses and checks `meta.json` bytes read from `path`: the JSON must be exactly the
    /// canonical form and its checksum must match, so any changed byte is caught.
    pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<BlockMeta> {
        let corrupt = |offset: u64, reason: String| Error::Corruption {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| {
            corrupt(
                offset_of(bytes, e.line(), e.column()),
                format!("parse block meta: {e}"),
            )
        })?;
        let canonical = meta
            .to_bytes()
            .map_err(|e| corrupt(0, format!("re-encode block meta: {e}")))?;
        if canonical != bytes {
            let at = canonical
                .iter()
                .zip(bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(canonical.len().min(bytes.len()));
            return Err(corrupt(
                at as u64,
                "block meta is not in canonical form".into(),
            ));
        }
        let mut zeroed = meta.clone();
        zeroed.checksum = 0;
        let crc = zeroed
            .to_bytes()
            .map(|b| crc32c::crc32c(&b))
            .map_err(|e| corrupt(0, format!("re-encode block meta: {e}")))?;
        if crc != meta.checksum {
            return Err(corrupt(
                0,
                format!(
                    "block meta checksum mismatch: computed {crc:#010x}, stored {:#010x}",
                    meta.checksum
                ),
            ));
        }
        Ok(meta)
    }
}

/// Byte offset of a 1-based line and column, as serde_json reports them.
fn offset_of(bytes: &[u8], line: usize, column: usize) -> u64 {
    let mut off = 0usize;
    for (i, l) in bytes.split(|&b| b == b'\n').enumerate() {
        if i + 1 == line {
            return (off + column.saturating_sub(1)).min(bytes.len()) as u64;
        }
        off += l.len() + 1;
    }
    bytes.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_id_text_round_trip_and_order() {
        let a = BlockId::new(1_700_000_000_000, 42);
        let s = a.to_string();
        assert_eq!(s.len(), 26);
        assert_eq!(s, "01HF7YAT00000000000000001A");
        assert_eq!(s.parse::<BlockId>(), Ok(a));
        assert_eq!(s.to_lowercase().parse::<BlockId>(), Ok(a));
        assert_eq!(a.time_ms(), 1_700_000_000_000);
        let b = BlockId::new(1_700_000_000_001, 0);
        assert!(a < b && a.to_string() < b.to_string());
        assert!("81HF7YAT00000000000000001A".parse::<BlockId>().is_err());
        assert!("01HF7YAT0000000000000000U".parse::<BlockId>().is_err());
        assert!("01HF7YAT0000000000000000UA".parse::<BlockId>().is_err());
        assert_ne!(BlockId::generate(), BlockId::generate());
    }

    #[test]
    fn offset_of_line_and_column() {
        assert_eq!(offset_of(b"ab\ncd\n", 2, 2), 4);
        assert_eq!(offset_of(b"ab", 1, 1), 0);
    }
}
