//! Opens a block: reads and checks `meta.json`, maps `index` and `chunks`, verifies every
//! checksum, and serves series selection, labels and chunk bytes borrowed from the mapping.
//! Chunks whose timestamp column is shared come back with that column resolved
//! ([`StoredChunk`]); [`ChunkDecoder`] decodes each shared column once per query.

use std::collections::HashMap;
use std::fs;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use croaring::Bitmap;

use crate::block::files::{CHUNKS_HEADER_LEN, CHUNKS_MAGIC, CHUNKS_VERSION};
use crate::block::mmap::{FileBytes, RELEASE_EVERY_BYTES};
use crate::block::{
    BlockMeta, ChunkMeta, BLOCK_VERSION, BLOCK_VERSION_PLAIN, CHUNKS_FILE, INDEX_FILE, META_FILE,
};
use crate::chunk::{
    decode_chunk, decode_split_chunk, decode_split_values, timestamps_header, CHUNK_VERSION,
};
use crate::error::{Error, Result};
use crate::index::{self, ChunkMetas, IndexReader};
use crate::labels::{Labels, Matcher};

/// An open, verified block. `Send + Sync`: all reads go through `&self`; chunk bytes are
/// borrowed from the mapping and live as long as the `Block`.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: FileBytes,
    /// Every shared timestamp column's header, read once at open (see [`SharedColumn`]).
    shared: Vec<SharedColumn>,
}

/// Where a shared timestamp column is and what its header says. Chunks that share a column
/// keep their times and count only in that header, and parsing it (its framing included) for
/// every such chunk a query lists and reads was about a twentieth of a dashboard query; the
/// table costs 40 bytes per distinct column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SharedColumn {
    /// Offset in the chunks file of the whole chunk that holds the column (a `ts_ref`).
    at: u64,
    meta: ChunkMeta,
    /// Byte length of the column, which starts after that chunk's version byte.
    len: u32,
}

// Blocks are shared between query threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Block>();
};

impl Block {
    /// Drops the pages of this block that reads have mapped from the process's resident
    /// memory (they stay in the page cache; see `FileBytes::release_pages`). Compaction calls
    /// this as it goes, since a merge reads every byte of its source blocks.
    pub(crate) fn release_pages(&self) {
        self.index.release_pages();
        self.chunks.release_pages();
    }

    /// Opens the block in `dir`, verifying `meta.json`, every index section, every series'
    /// chunk checksum and both whole-file checksums. A failed check is `Error::Corruption`
    /// naming the file and byte offset; a missing file is `Error::Io` (not found).
    pub fn open(dir: &Path) -> Result<Block> {
        let meta_path = dir.join(META_FILE);
        let bytes =
            fs::read(&meta_path).map_err(|e| Error::io("read block meta", &meta_path, e))?;
        let meta = BlockMeta::parse(&bytes, &meta_path)?;
        let meta_err = |reason: String| Error::Corruption {
            path: meta_path.clone(),
            offset: 0,
            reason,
        };
        if !(BLOCK_VERSION_PLAIN..=BLOCK_VERSION).contains(&meta.version) {
            return Err(meta_err(format!(
                "unsupported block version {}",
                meta.version
            )));
        }

        let index_path = dir.join(INDEX_FILE);
        let index_bytes = FileBytes::open(&index_path)?;
        check_size(&meta, INDEX_FILE, &index_bytes, &index_path)?;
        let index = IndexReader::open(index_bytes, &index_path)?;

        let chunks_path = dir.join(CHUNKS_FILE);
        let chunks = FileBytes::open(&chunks_path)?;
        check_size(&meta, CHUNKS_FILE, &chunks, &chunks_path)?;
        let (counted, shared) =
            check_chunks(&index, &chunks, &chunks_path, (meta.min_t, meta.max_t))?;
        let stats = meta.stats;
        if (stats.num_series, stats.num_chunks, stats.num_samples)
            != (u64::from(index.num_series()), counted.0, counted.1)
        {
            return Err(meta_err(format!(
                "counts disagree with index: meta has {} series, {} chunks, {} samples; index has {}, {}, {}",
                stats.num_series,
                stats.num_chunks,
                stats.num_samples,
                index.num_series(),
                counted.0,
                counted.1
            )));
        }
        // The fine-grained checks above locate damage; the whole-file CRCs (which copies and
        // uploads can check without parsing) must agree too.
        verify_file_crc(&meta, INDEX_FILE, index.file_bytes(), &index_path)?;
        verify_file_crc(&meta, CHUNKS_FILE, &chunks, &chunks_path)?;
        index.release_pages();
        chunks.release_pages();
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            shared,
        })
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's index (sizes, symbols, postings).
    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    /// Number of series; ordinals are `0..num_series()`, in label order.
    pub fn num_series(&self) -> u32 {
        self.index.num_series()
    }

    /// Ordinals of the series that match every matcher; ordinals follow label order.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Bitmap> {
        index::select(&self.index, matchers)
    }

    /// Like [`select`](Self::select), keeping only series that have a chunk overlapping
    /// `[mint, maxt]` (ms, inclusive), as `Querier` needs for series and label lookups.
    pub fn select_in_range(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Bitmap> {
        if mint > self.meta.max_t || maxt < self.meta.min_t || mint > maxt {
            return Ok(Bitmap::new());
        }
        let mut sel = self.select(matchers)?;
        let mut outside = Vec::new();
        for ord in sel.iter() {
            let mut overlaps = false;
            for c in self.series_chunks(ord)? {
                if c.0.max_t >= mint && c.0.min_t <= maxt {
                    overlaps = true;
                    break;
                }
            }
            if !overlaps {
                outside.push(ord);
            }
        }
        sel.remove_many(&outside);
        Ok(sel)
    }

    /// The label set of series `ord`.
    pub fn series_labels(&self, ord: u32) -> Result<Labels> {
        self.index.series_labels(ord)
    }

    /// The chunks of series `ord` in time order, bytes borrowed from the mapping, shared
    /// timestamp columns resolved.
    pub fn series_chunks(&self, ord: u32) -> Result<ChunkIter<'_>> {
        Ok(ChunkIter {
            chunks: &self.chunks,
            shared: &self.shared,
            metas: self.index.chunk_metas(ord)?,
        })
    }

    /// Sorted label names of the series in `filter` (all series when `None`).
    pub fn label_names(&self, filter: Option<&Bitmap>) -> Result<Vec<String>> {
        index::label_names(&self.index, filter)
    }

    /// Sorted values of `name` among the series in `filter` (all series when `None`).
    pub fn label_values(&self, name: &str, filter: Option<&Bitmap>) -> Result<Vec<String>> {
        index::label_values(&self.index, name, filter)
    }
}

/// Iterator over one series' chunks: `(meta, chunk)`, bytes borrowed from the chunks mapping.
/// Decodes the metas lazily from the index; allocates nothing.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    chunks: &'a [u8],
    shared: &'a [SharedColumn],
    metas: ChunkMetas<'a>,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = (ChunkMeta, StoredChunk<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // `Block::open` decoded every meta, checked that every chunk lies inside the file and
        // that every shared column reference resolves; should that ever fail, end the
        // iteration rather than panic.
        let (off, c) = self.metas.next()?.ok()?;
        let start = usize::try_from(off).ok()?;
        let bytes = self.chunks.get(start..start.checked_add(c.len as usize)?)?;
        let (meta, shared_ts) = match c.ts_ref {
            None => (c.meta, None),
            // The index stores no times for such a chunk: the column's header has them.
            Some(r) => {
                let i = self.shared.binary_search_by_key(&r, |c| c.at).ok()?;
                let c = self.shared[i];
                let start = usize::try_from(r).ok()?.checked_add(1)?;
                let col = self.chunks.get(start..start.checked_add(c.len as usize)?)?;
                (c.meta, Some(col))
            }
        };
        Some((meta, StoredChunk { bytes, shared_ts }))
    }
}

/// The timestamp column held by the whole chunk at `at` in `chunks`: the chunk meta its header
/// gives, and its bytes.
fn shared_column(chunks: &[u8], at: u64) -> std::result::Result<(ChunkMeta, &[u8]), &'static str> {
    let body = usize::try_from(at)
        .ok()
        .and_then(|a| chunks.get(a..))
        .and_then(|c| c.split_first())
        .filter(|(v, _)| **v == CHUNK_VERSION)
        .map(|(_, body)| body)
        .ok_or("shared timestamp reference does not point at a chunk")?;
    let (h, len) = timestamps_header(body).map_err(|_| "shared timestamp column does not parse")?;
    if h.count == 0 {
        return Err("shared timestamp column is empty");
    }
    let meta = ChunkMeta {
        min_t: h.min_t,
        max_t: h.max_t,
        count: h.count,
    };
    Ok((meta, &body[..len]))
}

/// One chunk as the block stores it, borrowed from the mapping. Either the whole chunk (as
/// given to the writer), or — when its timestamp column is stored once for several chunks —
/// the chunk's version byte and value column plus the shared column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredChunk<'a> {
    bytes: &'a [u8],
    shared_ts: Option<&'a [u8]>,
}

impl<'a> StoredChunk<'a> {
    /// The bytes stored in the chunks file for this chunk: the whole chunk, or without its
    /// timestamp column when that is shared.
    pub fn stored_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The timestamp column this chunk shares with an earlier chunk of the block, if any.
    pub fn shared_timestamps(&self) -> Option<&'a [u8]> {
        self.shared_ts
    }

    /// Appends the chunk as the writer received it (version, timestamps, values) to `dst`.
    pub fn write_chunk(&self, dst: &mut Vec<u8>) {
        match (self.shared_ts, self.bytes.split_first()) {
            (Some(ts), Some((version, values))) => {
                dst.push(*version);
                dst.extend_from_slice(ts);
                dst.extend_from_slice(values);
            }
            _ => dst.extend_from_slice(self.bytes),
        }
    }

    /// Decodes the chunk, appending to the column buffers (see
    /// [`decode_chunk`](crate::chunk::decode_chunk)); returns the sample count.
    pub fn decode(&self, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<usize> {
        match self.shared_ts {
            Some(col) => decode_split_chunk(col, self.bytes, ts, vals),
            None => decode_chunk(self.bytes, ts, vals),
        }
    }
}

/// Most timestamps a [`ChunkDecoder`] keeps decoded (8 bytes each).
const DECODER_CACHE_TIMESTAMPS: usize = 4 << 20;

/// Decodes chunks of blocks that outlive it, decoding each shared timestamp column once: the
/// decoded columns are kept (up to 4 Mi timestamps, in one buffer) and copied out for every
/// later chunk that shares them. Use one per query; it allocates per distinct column, not per
/// chunk.
#[derive(Debug, Default)]
pub struct ChunkDecoder<'a> {
    /// Column address in the mapping → (start in `decoded`, count). The address identifies
    /// the column because the mapping outlives `'a`.
    columns: HashMap<usize, (usize, usize)>,
    decoded: Vec<i64>,
    _blocks: PhantomData<&'a [u8]>,
}

impl<'a> ChunkDecoder<'a> {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Like [`StoredChunk::decode`], reusing a shared column decoded before.
    pub fn decode(
        &mut self,
        chunk: &StoredChunk<'a>,
        ts: &mut Vec<i64>,
        vals: &mut Vec<f64>,
    ) -> Result<usize> {
        let Some(col) = chunk.shared_ts else {
            return decode_chunk(chunk.bytes, ts, vals);
        };
        let key = col.as_ptr() as usize;
        if let Some(&(at, n)) = self.columns.get(&key) {
            decode_split_values(chunk.bytes, n, vals)?;
            ts.extend_from_slice(&self.decoded[at..at + n]);
            return Ok(n);
        }
        let before = ts.len();
        let n = decode_split_chunk(col, chunk.bytes, ts, vals)?;
        if self.decoded.len() + n <= DECODER_CACHE_TIMESTAMPS {
            self.columns.insert(key, (self.decoded.len(), n));
            self.decoded.extend_from_slice(&ts[before..]);
        }
        Ok(n)
    }
}

/// Checks a whole file's CRC32C, releasing the pages it has read as it goes (a compacted
/// block's `chunks` file is gigabytes at a million series).
fn verify_file_crc(meta: &BlockMeta, name: &str, bytes: &FileBytes, path: &Path) -> Result<()> {
    let want = meta.file(name).map_or(0, |f| f.crc32c);
    let mut crc = 0;
    for (i, piece) in bytes.chunks(RELEASE_EVERY_BYTES).enumerate() {
        crc = crc32c::crc32c_append(crc, piece);
        let start = i * RELEASE_EVERY_BYTES;
        bytes.release_range(start, start + piece.len());
    }
    if crc != want {
        return Err(Error::Corruption {
            path: path.to_path_buf(),
            offset: 0,
            reason: "whole-file checksum mismatch".into(),
        });
    }
    Ok(())
}

fn check_size(meta: &BlockMeta, name: &str, bytes: &[u8], path: &Path) -> Result<()> {
    let want = meta.file(name).map(|f| f.size);
    if want != Some(bytes.len() as u64) {
        let reason = format!("file is {} bytes, meta.json says {want:?}", bytes.len());
        return Err(Error::Corruption {
            path: path.to_path_buf(),
            offset: bytes.len() as u64,
            reason,
        });
    }
    Ok(())
}

/// Checks the chunks file against the index: header, series regions tiling the file in order,
/// and each region's CRC32C. Returns (chunks, samples) and the headers of the shared timestamp
/// columns, sorted by offset.
fn check_chunks(
    index: &IndexReader,
    file: &FileBytes,
    path: &Path,
    range: (i64, i64),
) -> Result<((u64, u64), Vec<SharedColumn>)> {
    let corrupt = |offset: u64, reason: String| Error::Corruption {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let chunks: &[u8] = file;
    // Everything before this offset has been checked and released (see `RELEASE_EVERY_BYTES`).
    let mut released_to = 0usize;
    if chunks.len() < CHUNKS_HEADER_LEN || chunks[..4] != CHUNKS_MAGIC {
        return Err(corrupt(0, "bad chunks file magic".into()));
    }
    if chunks[4] != CHUNKS_VERSION || chunks[5..8] != [0, 0, 0] {
        return Err(corrupt(
            4,
            format!("unsupported chunks version {}", chunks[4]),
        ));
    }
    let mut expect = CHUNKS_HEADER_LEN as u64;
    let (mut n_chunks, mut n_samples) = (0u64, 0u64);
    // Offsets of the chunks stored whole so far (ascending): a shared-column reference must
    // name one of them.
    let mut whole = Vec::new();
    let mut shared: Vec<SharedColumn> = Vec::new();
    index.check_series(|ord, off, metas| {
        if metas.is_empty() {
            return Ok(());
        }
        if off != expect {
            return Err(corrupt(
                expect,
                format!("series {ord} chunks start at {off}, expected {expect}"),
            ));
        }
        let len: u64 = metas.iter().map(|c| u64::from(c.len)).sum();
        let end = off + len;
        let stored = usize::try_from(end)
            .ok()
            .and_then(|e| chunks.get(e..e.checked_add(4)?))
            .ok_or_else(|| corrupt(off, format!("series {ord} chunks run past end of file")))?;
        let want = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
        if crc32c::crc32c(&chunks[off as usize..end as usize]) != want {
            return Err(corrupt(
                off,
                format!("chunks of series {ord} checksum mismatch"),
            ));
        }
        let (mut at, mut prev_max) = (off, i64::MIN);
        for c in metas {
            let meta = match c.ts_ref {
                None => {
                    whole.push(at);
                    c.meta
                }
                Some(r) => {
                    let (meta, len) = check_shared(chunks, &whole, r, c.len, prev_max, range)
                        .map_err(|reason| {
                            corrupt(at, format!("chunk of series {ord}: {reason}"))
                        })?;
                    // Series of one scrape follow each other, so repeats are mostly adjacent.
                    if shared.last().map(|s| s.at) != Some(r) {
                        shared.push(SharedColumn { at: r, meta, len });
                    }
                    meta
                }
            };
            prev_max = meta.max_t;
            n_samples += u64::from(meta.count);
            at += u64::from(c.len);
        }
        n_chunks += metas.len() as u64;
        expect = end + 4;
        let checked = expect as usize;
        if checked - released_to >= RELEASE_EVERY_BYTES {
            file.release_range(released_to, checked);
            released_to = checked;
        }
        Ok(())
    })?;
    if expect != chunks.len() as u64 {
        return Err(corrupt(
            expect,
            "bytes after the last series' chunks".into(),
        ));
    }
    shared.sort_unstable_by_key(|s| s.at);
    shared.dedup_by_key(|s| s.at);
    Ok(((n_chunks, n_samples), shared))
}

/// Checks a chunk stored without its timestamp column and returns its meta and the column's
/// byte length: it references
/// (`ts_ref`) an earlier chunk stored whole, whose column parses, is time-ordered after the
/// series' previous chunk and lies inside the block `range`; and it keeps its version byte.
fn check_shared(
    chunks: &[u8],
    whole: &[u64],
    ts_ref: u64,
    len: u32,
    prev_max: i64,
    range: (i64, i64),
) -> std::result::Result<(ChunkMeta, u32), &'static str> {
    if whole.binary_search(&ts_ref).is_err() {
        return Err("shared timestamp reference does not point at an earlier whole chunk");
    }
    if len == 0 {
        return Err("chunk without its timestamp column is empty");
    }
    let (meta, col) = shared_column(chunks, ts_ref)?;
    let len = u32::try_from(col.len()).map_err(|_| "shared timestamp column above 4 GiB")?;
    if meta.max_t < meta.min_t || meta.min_t < prev_max {
        return Err("shared timestamp column is not time-ordered with the series' chunks");
    }
    if meta.min_t < range.0 || meta.max_t > range.1 {
        return Err("shared timestamp column lies outside the block range");
    }
    Ok((meta, len))
}
