//! Immutable on-disk blocks: a time partition of series, written once to a temp dir, renamed,
//! and read through mmap.
//!
//! A block is the directory `<dir>/<block id>/` holding `meta.json`, `index` and `chunks`
//! (layouts in `docs/format/block.md` and `docs/format/index.md`). [`BlockWriter`] writes
//! one; [`Block::open`] maps one and verifies every checksum; [`open_blocks`] opens all blocks
//! of a directory, quarantining corrupt ones so the server still starts.
//!
//! The caller encodes samples (see `chunk`) and gives each chunk with its [`ChunkMeta`]. The
//! block stores a timestamp column once for all chunks that repeat it (the series of one
//! scrape), so reads return [`StoredChunk`]s, which [`ChunkDecoder`] decodes; bytes that are
//! not codec chunks are stored as given.
//!
//! ```
//! use eddy_storage::block::{Block, BlockId, BlockWriter, ChunkMeta};
//! use eddy_storage::{Labels, Matcher};
//!
//! # fn main() -> eddy_storage::Result<()> {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path();
//! let mut w = BlockWriter::new(dir, BlockId::generate(), 0, 7_199_999, 1, vec![])?;
//! let chunk = ChunkMeta { min_t: 0, max_t: 15_000, count: 2 };
//! // Series in label order; chunk bytes come from the chunk codecs.
//! w.add_series(&Labels::from_pairs([("__name__", "up"), ("job", "a")]), &[(chunk, b"..")])?;
//! w.add_series(&Labels::from_pairs([("__name__", "up"), ("job", "b")]), &[(chunk, b"!!")])?;
//! let block = Block::open(&w.finish()?)?;
//!
//! let sel = block.select(&[Matcher::equal("job", "b")])?;
//! assert_eq!(sel.to_vec(), vec![1]);
//! assert_eq!(block.series_labels(1)?.to_string(), r#"up{job="b"}"#);
//! let (meta, stored) = block.series_chunks(1)?.next().unwrap();
//! assert_eq!((meta, stored.stored_bytes()), (chunk, &b"!!"[..]));
//! assert_eq!(block.label_values("job", None)?, ["a", "b"]);
//! # Ok(())
//! # }
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod files;
mod meta;
pub(crate) mod mmap;
mod reader;
mod writer;

pub use files::{
    BLOCK_VERSION, BLOCK_VERSION_PLAIN, CHUNKS_FILE, INDEX_FILE, META_FILE, QUARANTINE_DIR,
    TMP_SUFFIX,
};
pub use meta::{BlockId, BlockMeta, BlockStats, Compaction, FileMeta, ParseBlockIdError};
pub use reader::{Block, ChunkDecoder, ChunkIter, StoredChunk};
pub use writer::{BlockWriter, SHARED_TS_MEMORY};

/// What the index records about one chunk besides where its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChunkMeta {
    /// Timestamp of the first sample (ms).
    pub min_t: i64,
    /// Timestamp of the last sample (ms).
    pub max_t: i64,
    /// Number of samples.
    pub count: u32,
}

/// A block that [`open_blocks`] could not open and moved aside.
#[derive(Debug)]
pub struct QuarantinedBlock {
    /// The directory name the block had.
    pub name: String,
    /// Where it is now (under `<dir>/quarantine/`).
    pub path: PathBuf,
    /// Why it was quarantined.
    pub error: Error,
}

/// Opens every block in `dir`, sorted by `(min_t, id)`.
///
/// Directories named `<block id>.tmp` are unfinished writes and are deleted. A block that fails
/// to open because it is corrupt or misses a file is moved to `<dir>/quarantine/` (logged with
/// `tracing::error!`) and returned in the second list; other I/O errors (permissions, too many
/// open files…) are returned as errors, since moving a healthy block aside would lose data.
/// Entries whose names are not block ids are left alone, so `dir` may hold other things.
pub fn open_blocks(dir: &Path) -> Result<(Vec<Block>, Vec<QuarantinedBlock>)> {
    let mut blocks = Vec::new();
    let mut quarantined = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((blocks, quarantined)),
        Err(e) => return Err(Error::io("list blocks", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list blocks", dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| Error::io("stat block", entry.path(), e))?
            .is_dir();
        if let (true, Ok(name)) = (is_dir, entry.file_name().into_string()) {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if let Some(id) = name.strip_suffix(TMP_SUFFIX) {
            if id.parse::<BlockId>().is_ok() {
                tracing::info!(path = ?path, "removing unfinished block directory");
                fs::remove_dir_all(&path)
                    .map_err(|e| Error::io("remove unfinished block", &path, e))?;
            }
            continue;
        }
        if name.parse::<BlockId>().is_err() {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(b),
            Err(e) if is_quarantinable(&e) => {
                let to = quarantine(dir, &name)?;
                tracing::error!(block = %name, moved_to = ?to, error = %e, "corrupt block quarantined; continuing without it");
                quarantined.push(QuarantinedBlock {
                    name,
                    path: to,
                    error: e,
                });
            }
            Err(e) => return Err(e),
        }
    }
    blocks.sort_by_key(|b| (b.meta().min_t, b.meta().id));
    Ok((blocks, quarantined))
}

fn is_quarantinable(e: &Error) -> bool {
    match e {
        Error::Corruption { .. } => true,
        Error::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
        _ => false,
    }
}

/// Moves `<dir>/<name>` to `<dir>/quarantine/<name>` (adding `.1`, `.2`… if taken).
fn quarantine(dir: &Path, name: &str) -> Result<PathBuf> {
    let qdir = dir.join(QUARANTINE_DIR);
    fs::create_dir_all(&qdir).map_err(|e| Error::io("create quarantine dir", &qdir, e))?;
    let mut to = qdir.join(name);
    let mut n = 0;
    while to.exists() {
        n += 1;
        to = qdir.join(format!("{name}.{n}"));
    }
    let from = dir.join(name);
    fs::rename(&from, &to).map_err(|e| Error::io("quarantine block", &from, e))?;
    Ok(to)
}

/// Fsyncs a directory so that renames and creations in it are durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("sync directory", path, e))
}
