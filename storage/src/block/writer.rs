//! Writes a block: chunks stream to `<id>.tmp/chunks` as series arrive; `finish` writes the
//! index and `meta.json`, fsyncs, and renames the directory into place.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::block::files::{CHUNKS_HEADER_LEN, CHUNKS_MAGIC, CHUNKS_VERSION};
use crate::block::{
    sync_dir, BlockId, BlockMeta, BlockStats, ChunkMeta, Compaction, FileMeta, BLOCK_VERSION,
    CHUNKS_FILE, INDEX_FILE, META_FILE, TMP_SUFFIX,
};
use crate::error::{Error, Result};
use crate::index::{IndexBuilder, IndexChunk};
use crate::labels::Labels;

/// Builds one block. Series go in strictly increasing label order; each series' chunks in
/// time order, inside `[min_t, max_t]`.
///
/// After an error the writer must be dropped; its `<id>.tmp` directory stays behind and is
/// deleted by the next [`open_blocks`](crate::block::open_blocks).
#[derive(Debug)]
pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    id: BlockId,
    min_t: i64,
    max_t: i64,
    compaction: Compaction,
    chunks: BufWriter<File>,
    chunks_len: u64,
    /// CRC32C of the whole chunks file so far (for `meta.json`).
    chunks_crc: u32,
    index: IndexBuilder,
    scratch: Vec<IndexChunk>,
}

impl BlockWriter {
    /// Starts block `id` in `<parent_dir>/<id>.tmp/` (replacing a leftover one).
    pub fn new(
        parent_dir: &Path,
        id: BlockId,
        min_t: i64,
        max_t: i64,
        level: u32,
        parents: Vec<BlockId>,
    ) -> Result<BlockWriter> {
        let tmp = parent_dir.join(format!("{id}{TMP_SUFFIX}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp)
                .map_err(|e| Error::io("remove stale block temp dir", &tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| Error::io("create block temp dir", &tmp, e))?;
        let path = tmp.join(CHUNKS_FILE);
        let file = File::create(&path).map_err(|e| Error::io("create chunks file", &path, e))?;
        let mut w = BlockWriter {
            parent: parent_dir.to_path_buf(),
            tmp,
            id,
            min_t,
            max_t,
            compaction: Compaction { level, parents },
            chunks: BufWriter::with_capacity(1 << 20, file),
            chunks_len: 0,
            chunks_crc: 0,
            index: IndexBuilder::new(min_t),
            scratch: Vec::new(),
        };
        let mut header = [0u8; CHUNKS_HEADER_LEN];
        header[..4].copy_from_slice(&CHUNKS_MAGIC);
        header[4] = CHUNKS_VERSION;
        w.write_chunk_bytes(&header)?;
        Ok(w)
    }

    fn write_chunk_bytes(&mut self, b: &[u8]) -> Result<()> {
        self.chunks
            .write_all(b)
            .map_err(|e| Error::io("write chunks file", self.tmp.join(CHUNKS_FILE), e))?;
        self.chunks_crc = crc32c::crc32c_append(self.chunks_crc, b);
        self.chunks_len += b.len() as u64;
        Ok(())
    }

    /// Adds the next series and its chunks (opaque encoded bytes with their metadata).
    pub fn add_series(&mut self, labels: &Labels, chunks: &[(ChunkMeta, &[u8])]) -> Result<()> {
        let bad = |msg: String| {
            Error::io(
                "add series to block",
                &self.tmp,
                io::Error::new(io::ErrorKind::InvalidInput, msg),
            )
        };
        self.scratch.clear();
        for (meta, bytes) in chunks {
            if meta.min_t < self.min_t || meta.max_t > self.max_t {
                return Err(bad(format!(
                    "chunk [{}, {}] of {labels} outside block range [{}, {}]",
                    meta.min_t, meta.max_t, self.min_t, self.max_t
                )));
            }
            let len = u32::try_from(bytes.len())
                .map_err(|_| bad(format!("chunk of {labels} exceeds 4 GiB")))?;
            self.scratch.push(IndexChunk { meta: *meta, len });
        }
        let off = self.chunks_len;
        self.index
            .add_series(labels, off, &self.scratch)
            .map_err(|e| Error::io("add series to block", &self.tmp, e))?;
        if chunks.is_empty() {
            return Ok(());
        }
        // One CRC32C per series covers all its chunks: 4 bytes per series, not per chunk.
        let mut crc = 0;
        for (_, bytes) in chunks {
            self.write_chunk_bytes(bytes)?;
            crc = crc32c::crc32c_append(crc, bytes);
        }
        self.write_chunk_bytes(&crc.to_le_bytes())
    }

    /// Writes the index and `meta.json`, fsyncs everything, and renames the block into place.
    /// Returns the block directory.
    pub fn finish(self) -> Result<PathBuf> {
        let BlockWriter {
            parent,
            tmp,
            id,
            min_t,
            max_t,
            compaction,
            chunks,
            chunks_len,
            chunks_crc,
            index,
            ..
        } = self;
        let chunks_path = tmp.join(CHUNKS_FILE);
        let file = chunks
            .into_inner()
            .map_err(|e| Error::io("flush chunks file", &chunks_path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("sync chunks file", &chunks_path, e))?;

        let mut buf = Vec::new();
        let stats = index
            .finish(&mut buf)
            .map_err(|e| Error::io("encode block index", &tmp, e))?;
        write_synced(&tmp.join(INDEX_FILE), &buf)?;

        let mut meta = BlockMeta {
            version: BLOCK_VERSION,
            id,
            min_t,
            max_t,
            stats: BlockStats {
                num_series: u64::from(stats.num_series),
                num_samples: stats.num_samples,
                num_chunks: stats.num_chunks,
            },
            compaction,
            files: vec![
                FileMeta {
                    name: INDEX_FILE.into(),
                    size: buf.len() as u64,
                    crc32c: crc32c::crc32c(&buf),
                },
                FileMeta {
                    name: CHUNKS_FILE.into(),
                    size: chunks_len,
                    crc32c: chunks_crc,
                },
            ],
            checksum: 0,
        };
        let bytes = meta
            .seal()
            .map_err(|e| Error::io("encode block meta", &tmp, io::Error::other(e)))?;
        write_synced(&tmp.join(META_FILE), &bytes)?;
        sync_dir(&tmp)?;

        let dst = parent.join(id.to_string());
        if dst.exists() {
            let e = io::Error::new(io::ErrorKind::AlreadyExists, "block directory exists");
            return Err(Error::io("rename block into place", &dst, e));
        }
        fs::rename(&tmp, &dst).map_err(|e| Error::io("rename block into place", &tmp, e))?;
        sync_dir(&parent)?;
        Ok(dst)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io("create block file", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write block file", path, e))?;
    f.sync_all()
        .map_err(|e| Error::io("sync block file", path, e))
}
