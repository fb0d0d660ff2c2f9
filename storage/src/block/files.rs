//! Names of the files and directories a block lives in, and the chunks file header.

/// Block metadata, JSON.
pub const META_FILE: &str = "meta.json";
/// The block's index (`docs/format/index.md`).
pub const INDEX_FILE: &str = "index";
/// Concatenated chunk bytes (`docs/format/block.md`).
pub const CHUNKS_FILE: &str = "chunks";
/// Suffix of a block directory being written; renamed away when complete.
pub const TMP_SUFFIX: &str = ".tmp";
/// Where `open_blocks` moves corrupt blocks, under the blocks directory.
pub const QUARANTINE_DIR: &str = "quarantine";

/// First four bytes of a chunks file.
pub(crate) const CHUNKS_MAGIC: [u8; 4] = *b"EDCH";
/// Chunks file format version.
pub(crate) const CHUNKS_VERSION: u8 = 1;
/// Magic, version byte, three zero bytes.
pub(crate) const CHUNKS_HEADER_LEN: usize = 8;
/// `meta.json` format version; also the block format version. Version 2 blocks may store a
/// timestamp column once for several chunks (index version 2); this code reads 1 and 2.
pub const BLOCK_VERSION: u32 = 2;
/// The block version written when no chunk shares a timestamp column (byte-identical to what
/// code before version 2 wrote, so it can read such blocks).
pub const BLOCK_VERSION_PLAIN: u32 = 1;
