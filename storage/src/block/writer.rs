//! Writes a block: chunks stream to `<id>.tmp/chunks` as series arrive; `finish` writes the
//! index and `meta.json`, fsyncs, and renames the directory into place.
//!
//! Timestamp columns are stored once per block: the series of one scrape or push carry the
//! same timestamps, so their chunks have byte-identical timestamp columns. The writer keeps
//! every column it stored (content-addressed, up to [`SHARED_TS_MEMORY`] bytes); a later
//! chunk with an identical column is stored without it and refers to the first chunk that has
//! it (`docs/format/block.md`, "Shared timestamp columns").

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::block::files::{CHUNKS_HEADER_LEN, CHUNKS_MAGIC, CHUNKS_VERSION};
use crate::block::{
    sync_dir, BlockId, BlockMeta, BlockStats, ChunkMeta, Compaction, FileMeta, BLOCK_VERSION,
    BLOCK_VERSION_PLAIN, CHUNKS_FILE, INDEX_FILE, META_FILE, TMP_SUFFIX,
};
use crate::chunk::split_chunk;
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
    /// Timestamp columns stored whole so far → offset of the chunk holding each.
    ts_columns: HashMap<Box<[u8]>, u64>,
    /// Bytes of the keys of `ts_columns`; no new column is remembered past the cap.
    ts_columns_bytes: usize,
    /// Chunks stored without their timestamp column.
    shared_chunks: u64,
    /// Columns first seen in the series being added: (chunk index, column length, chunk
    /// offset); remembered once the series is accepted.
    new_columns: Vec<(usize, usize, u64)>,
}

/// What [`BlockWriter::column_of`] found.
enum Column {
    /// Stored whole at this chunk offset; the column is this many bytes.
    Stored(u64, usize),
    /// Not stored yet; this many bytes.
    New(usize),
    /// Not a candidate for sharing.
    None,
}

/// Most bytes of timestamp columns the writer remembers for sharing. A Flink block has a few
/// distinct columns per TaskManager and restart (kilobytes each); a workload whose series
/// share nothing would otherwise keep every column of the block in memory.
pub const SHARED_TS_MEMORY: usize = 64 << 20;

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
            ts_columns: HashMap::new(),
            ts_columns_bytes: 0,
            shared_chunks: 0,
            new_columns: Vec::new(),
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

    /// Adds the next series and its chunks (encoded bytes with their metadata).
    ///
    /// A chunk in the `chunk` codec's format whose header matches its meta and whose timestamp
    /// column equals one already stored in this block is stored without that column. Other
    /// bytes are stored as given (they are opaque to the block).
    pub fn add_series(&mut self, labels: &Labels, chunks: &[(ChunkMeta, &[u8])]) -> Result<()> {
        self.scratch.clear();
        self.new_columns.clear();
        let mut off = self.chunks_len;
        for (i, (meta, bytes)) in chunks.iter().enumerate() {
            if meta.min_t < self.min_t || meta.max_t > self.max_t {
                return Err(invalid_input(
                    &self.tmp,
                    format!(
                        "chunk [{}, {}] of {labels} outside block range [{}, {}]",
                        meta.min_t, meta.max_t, self.min_t, self.max_t
                    ),
                ));
            }
            let mut len = u32::try_from(bytes.len()).map_err(|_| {
                invalid_input(&self.tmp, format!("chunk of {labels} exceeds 4 GiB"))
            })?;
            let mut ts_ref = None;
            match self.column_of(meta, bytes) {
                Column::Stored(at, ts_len) => {
                    ts_ref = Some(at);
                    len -= ts_len as u32;
                }
                Column::New(ts_len) => self.new_columns.push((i, ts_len, off)),
                Column::None => {}
            }
            self.scratch.push(IndexChunk {
                meta: *meta,
                len,
                ts_ref,
            });
            off += u64::from(len);
        }
        let off = self.chunks_len;
        self.index
            .add_series(labels, off, &self.scratch)
            .map_err(|e| Error::io("add series to block", &self.tmp, e))?;
        // The series is accepted: its new columns become shareable.
        for &(i, ts_len, at) in &self.new_columns {
            if self.ts_columns_bytes + ts_len <= SHARED_TS_MEMORY {
                self.ts_columns_bytes += ts_len;
                self.ts_columns
                    .insert(chunks[i].1[1..1 + ts_len].into(), at);
            }
        }
        if chunks.is_empty() {
            return Ok(());
        }
        // One CRC32C per series covers all its chunks: 4 bytes per series, not per chunk.
        let mut crc = 0;
        for (i, (_, bytes)) in chunks.iter().enumerate() {
            let stored = self.scratch[i].len as usize;
            if stored == bytes.len() {
                self.write_chunk_bytes(bytes)?;
                crc = crc32c::crc32c_append(crc, bytes);
            } else {
                // Version byte, then the value column: the timestamp column is cut out.
                let values = &bytes[bytes.len() - (stored - 1)..];
                for part in [&bytes[..1], values] {
                    self.write_chunk_bytes(part)?;
                    crc = crc32c::crc32c_append(crc, part);
                }
                self.shared_chunks += 1;
            }
        }
        self.write_chunk_bytes(&crc.to_le_bytes())
    }

    /// Whether a chunk's timestamp column is already stored in this block. Only chunks the
    /// codec can split and whose header agrees with `meta` take part, and only columns longer
    /// than a reference (a 3–5 byte varint in the index): shorter ones are cheaper to repeat.
    fn column_of(&self, meta: &ChunkMeta, bytes: &[u8]) -> Column {
        let Ok(cols) = split_chunk(bytes) else {
            return Column::None;
        };
        let h = cols.header;
        let ts = cols.timestamps;
        if (h.count, h.min_t, h.max_t) != (meta.count, meta.min_t, meta.max_t) || ts.len() <= 5 {
            return Column::None;
        }
        match self.ts_columns.get(ts) {
            Some(&at) => Column::Stored(at, ts.len()),
            None => Column::New(ts.len()),
        }
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
            shared_chunks,
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

        // Without shared columns the block is exactly a version-1 block (older code reads it).
        let version = if shared_chunks > 0 {
            BLOCK_VERSION
        } else {
            BLOCK_VERSION_PLAIN
        };
        let mut meta = BlockMeta {
            version,
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

fn invalid_input(tmp: &Path, msg: String) -> Error {
    Error::io(
        "add series to block",
        tmp,
        io::Error::new(io::ErrorKind::InvalidInput, msg),
    )
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io("create block file", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write block file", path, e))?;
    f.sync_all()
        .map_err(|e| Error::io("sync block file", path, e))
}
