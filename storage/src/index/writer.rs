//! Encodes a block's `index` file: collects series (label sets in order, chunk metas) and
//! writes symbols, series, series offsets, label index, postings and the table of contents.

use std::collections::HashMap;
use std::io;

use croaring::{Bitmap, Portable};

use crate::block::ChunkMeta;
use crate::index::format::{
    put_uvarint, put_varint, Section, HEADER_LEN, MAGIC, SECTIONS, TOC_LEN, VERSION, VERSION_PLAIN,
    VERSION_TAILS,
};
use crate::label_tails::{LabelTails, NO_TAIL};
use crate::labels::Labels;

/// One chunk of a series as the index records it: its metadata and its length in `chunks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexChunk {
    /// Time range and sample count.
    pub meta: ChunkMeta,
    /// Byte length of the chunk in the `chunks` file.
    pub len: u32,
    /// `Some(offset)` when the chunk's timestamp column is not stored with it but is the one
    /// of the whole chunk at `offset` in the `chunks` file (format version 2). The index does
    /// not store such a chunk's `meta` (that column's header holds it): [`IndexReader`]
    /// returns it zeroed and [`Block`](crate::block::Block) fills it in.
    ///
    /// [`IndexReader`]: crate::index::IndexReader
    pub ts_ref: Option<u64>,
}

/// Sizes of what [`IndexBuilder::finish`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Series written.
    pub num_series: u32,
    /// Distinct strings in the symbol table.
    pub num_symbols: u32,
    /// Distinct `name="value"` pairs (postings lists).
    pub num_pairs: u32,
    /// Chunks referenced.
    pub num_chunks: u64,
    /// Samples in all chunks (sum of chunk counts).
    pub num_samples: u64,
    /// Byte length of each section, in file order (symbols, series, series offsets, label
    /// index, postings).
    pub section_bytes: [u64; 5],
    /// Total file length.
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct SeriesRec {
    /// Its first label pair as temporary ids (`None` without labels).
    first: Option<(u32, u32)>,
    /// Its label tail (the pairs after the first) in `IndexBuilder::tails`, or [`NO_TAIL`].
    tail: u32,
    chunks_end: u32,
    chunks_off: u64,
}

/// Collects a block's series in label order and encodes the index file.
///
/// Strings are interned under temporary ids while series arrive; `finish` sorts them so that
/// symbol ids follow byte order (value ids then sort like the values) and remaps.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    ids: HashMap<String, u32>,
    strings: Vec<String>,
    /// Every series' labels after its first, each distinct tail once.
    tails: LabelTails,
    /// Scratch for the series being added.
    pairs: Vec<(u32, u32)>,
    series: Vec<SeriesRec>,
    chunks: Vec<IndexChunk>,
    postings: HashMap<(u32, u32), Bitmap>,
    last: Option<Labels>,
    base_t: i64,
}

impl IndexBuilder {
    /// An empty builder whose chunk times are stored relative to `base_t` (the block's
    /// `min_t`), so that a first chunk costs a short varint instead of a 6-byte timestamp.
    pub fn new(base_t: i64) -> Self {
        IndexBuilder {
            base_t,
            ..Self::default()
        }
    }

    /// Adds the next series: `labels` must sort strictly after the previous series' labels;
    /// `chunks` are time-ordered and stored contiguously from `chunks_off` in the chunks file.
    /// Returns the series ordinal.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks_off: u64,
        chunks: &[IndexChunk],
    ) -> io::Result<u32> {
        if self.last.as_ref().is_some_and(|last| labels <= last) {
            return Err(invalid(format!(
                "series {labels} is not after the previous series"
            )));
        }
        let mut prev_max = i64::MIN;
        for c in chunks {
            if c.meta.max_t < c.meta.min_t || c.meta.min_t < prev_max {
                return Err(invalid(format!(
                    "chunk [{}, {}] of {labels} is not time-ordered",
                    c.meta.min_t, c.meta.max_t
                )));
            }
            prev_max = c.meta.max_t;
        }
        let ord = u32::try_from(self.series.len())
            .map_err(|_| invalid("more than 2^32 series".into()))?;
        self.pairs.clear();
        for l in labels {
            let n = self.intern(&l.name);
            let v = self.intern(&l.value);
            self.pairs.push((n, v));
            self.postings.entry((n, v)).or_default().add(ord);
        }
        let (first, tail) = self.tails.split(&self.pairs);
        self.chunks.extend_from_slice(chunks);
        self.series.push(SeriesRec {
            first,
            tail,
            chunks_end: self.chunks.len() as u32,
            chunks_off,
        });
        match &mut self.last {
            Some(last) => last.clone_from(labels),
            None => self.last = Some(labels.clone()),
        }
        Ok(ord)
    }

    /// Number of series added so far.
    pub fn num_series(&self) -> u32 {
        self.series.len() as u32
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    /// Appends the encoded index file to `dst`.
    pub fn finish(self, dst: &mut Vec<u8>) -> io::Result<IndexStats> {
        let start = dst.len();
        // Final symbol ids are ranks in byte order.
        let mut order: Vec<u32> = (0..self.strings.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.strings[a as usize].cmp(&self.strings[b as usize]));
        let mut sym = vec![0u32; order.len()];
        for (rank, &tmp) in order.iter().enumerate() {
            sym[tmp as usize] = rank as u32;
        }
        // Pairs sorted by (name, value) symbol. A series refers to a label name by its ordinal
        // among the names, and to a value by its ordinal among that name's values: most names
        // have few values, so most refs fit one byte (global symbol ids would need two or three).
        let mut postings: Vec<((u32, u32), Bitmap)> = self
            .postings
            .into_iter()
            .map(|((n, v), b)| ((sym[n as usize], sym[v as usize]), b))
            .collect();
        postings.sort_unstable_by_key(|(k, _)| *k);
        let mut name_syms: Vec<u32> = postings.iter().map(|((n, _), _)| *n).collect();
        name_syms.dedup();
        let mut name_ord: HashMap<u32, (u32, usize)> = HashMap::with_capacity(name_syms.len());
        for (i, ((n, _), _)) in postings.iter().enumerate() {
            let next = name_ord.len() as u32;
            name_ord.entry(*n).or_insert((next, i));
        }

        // Label tails: the labels after a series' first. All series of one Flink task or
        // operator scope share them (only `__name__` differs), so a table holds each tail that
        // two or more series have, and a series refers to it by number (1–2 bytes instead of
        // ~20 for the pairs).
        // Tails were numbered in order of first use; the table keeps those used twice or more,
        // in the same order.
        let mut tails: Vec<&[(u32, u32)]> = Vec::new();
        let tail_no: Vec<u32> = (0..self.tails.len())
            .map(|t| {
                if self.tails.uses(t) < 2 {
                    return NO_TAIL;
                }
                tails.push(self.tails.get(t));
                tails.len() as u32 - 1
            })
            .collect();

        // Version 1 when no chunk shares a timestamp column and no tail is shared: the same
        // bytes as before either existed, so such blocks stay readable by older code.
        let shares = self.chunks.iter().any(|c| c.ts_ref.is_some());
        let version = match (tails.is_empty(), shares) {
            (false, _) => VERSION_TAILS,
            (true, true) => VERSION,
            (true, false) => VERSION_PLAIN,
        };
        let flagged_metas = version != VERSION_PLAIN;
        dst.extend_from_slice(&MAGIC);
        dst.extend_from_slice(&[version, 0, 0, 0]);
        dst.extend_from_slice(&self.base_t.to_le_bytes());
        let crc = crc32c::crc32c(&dst[start..]);
        dst.extend_from_slice(&crc.to_le_bytes());
        let mut toc = [(0u64, 0u64, 0u32); 5];
        let mut stats = IndexStats {
            num_series: self.series.len() as u32,
            num_symbols: order.len() as u32,
            num_pairs: postings.len() as u32,
            ..IndexStats::default()
        };

        // Symbols.
        let s0 = dst.len();
        put_uvarint(dst, order.len() as u64);
        for &tmp in &order {
            let s = &self.strings[tmp as usize];
            put_uvarint(dst, s.len() as u64);
            dst.extend_from_slice(s.as_bytes());
        }
        toc[Section::Symbols as usize] = section(dst, start, s0);

        // Series section: the tails table (version 3), then the series entries, remembering
        // where each starts.
        let s0 = dst.len();
        let put_pairs = |dst: &mut Vec<u8>, pairs: &[(u32, u32)]| {
            put_uvarint(dst, pairs.len() as u64);
            for &(n, v) in pairs {
                let key = (sym[n as usize], sym[v as usize]);
                let (Some(&(ord, first)), Ok(at)) = (
                    name_ord.get(&key.0),
                    postings.binary_search_by_key(&key, |(k, _)| *k),
                ) else {
                    unreachable!("BUG: label pair of a series has no postings list");
                };
                put_uvarint(dst, u64::from(ord));
                put_uvarint(dst, (at - first) as u64);
            }
        };
        if version == VERSION_TAILS {
            put_uvarint(dst, tails.len() as u64);
            for tail in &tails {
                put_pairs(dst, tail);
            }
        }
        let mut offsets = Vec::with_capacity(self.series.len());
        let mut c0 = 0usize;
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for s in &self.series {
            let rel = u32::try_from(dst.len() - s0)
                .map_err(|_| invalid("series section exceeds 4 GiB".into()))?;
            offsets.push(rel);
            let first = s.first.as_slice();
            let shared = match s.tail {
                NO_TAIL => None,
                t => Some(tail_no[t as usize]).filter(|&n| n != NO_TAIL),
            };
            match shared {
                // Tail reference: 0 for none (every label inline), else its number + 1.
                Some(n) if version == VERSION_TAILS => {
                    put_pairs(dst, first);
                    put_uvarint(dst, u64::from(n) + 1);
                }
                _ => {
                    pairs.clear();
                    pairs.extend_from_slice(first);
                    pairs.extend_from_slice(self.tails.get(s.tail));
                    put_pairs(dst, &pairs);
                    if version == VERSION_TAILS {
                        put_uvarint(dst, 0);
                    }
                }
            }
            let chunks = &self.chunks[c0..s.chunks_end as usize];
            encode_chunks(dst, self.base_t, s.chunks_off, chunks, flagged_metas);
            stats.num_chunks += chunks.len() as u64;
            stats.num_samples += chunks.iter().map(|c| u64::from(c.meta.count)).sum::<u64>();
            c0 = s.chunks_end as usize;
        }
        toc[Section::Series as usize] = section(dst, start, s0);

        let s0 = dst.len();
        for o in offsets {
            dst.extend_from_slice(&o.to_le_bytes());
        }
        toc[Section::SeriesOffsets as usize] = section(dst, start, s0);

        // Label index (names, values, postings lengths) and postings, built side by side.
        let s0 = dst.len();
        let mut post_buf = Vec::new();
        put_uvarint(dst, name_syms.len() as u64);
        let mut i = 0;
        while i < postings.len() {
            let name = postings[i].0 .0;
            let n = postings[i..]
                .iter()
                .take_while(|((nn, _), _)| *nn == name)
                .count();
            put_uvarint(dst, u64::from(name));
            put_uvarint(dst, n as u64);
            let mut prev_v = 0u32;
            for ((_, v), b) in &mut postings[i..i + n] {
                put_uvarint(dst, u64::from(*v - prev_v));
                prev_v = *v;
                b.run_optimize();
                // Portable needs no alignment, so the bitmap starts where the previous one ended.
                let n = b.serialize_into_vec::<Portable>(&mut post_buf).len();
                put_uvarint(dst, n as u64);
            }
            i += n;
        }
        if u32::try_from(post_buf.len()).is_err() {
            return Err(invalid("postings section exceeds 4 GiB".into()));
        }
        toc[Section::LabelIndex as usize] = section(dst, start, s0);
        let s0 = dst.len();
        dst.extend_from_slice(&post_buf);
        toc[Section::Postings as usize] = section(dst, start, s0);

        let t0 = dst.len();
        for (off, len, crc) in toc {
            dst.extend_from_slice(&off.to_le_bytes());
            dst.extend_from_slice(&len.to_le_bytes());
            dst.extend_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32c::crc32c(&dst[t0..]);
        dst.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(dst.len() - t0, TOC_LEN);
        debug_assert_eq!(toc[0].0, HEADER_LEN as u64);
        for s in SECTIONS {
            stats.section_bytes[s as usize] = toc[s as usize].1;
        }
        stats.total_bytes = (dst.len() - start) as u64;
        Ok(stats)
    }
}

/// The TOC entry of the section that spans `dst[s0..]` (offsets relative to `start`).
fn section(dst: &[u8], start: usize, s0: usize) -> (u64, u64, u32) {
    (
        (s0 - start) as u64,
        (dst.len() - s0) as u64,
        crc32c::crc32c(&dst[s0..]),
    )
}

/// Chunk metas of one series: count, base offset, then per chunk the start (delta from the
/// previous end), duration, sample count and byte length. With `shares` (version 2) each chunk
/// starts with its length carrying a flag in bit 0; a flagged chunk then holds only the offset
/// of the chunk whose timestamp column it uses (that column's header gives its times and
/// count), an unflagged one its start, duration and count as above.
fn encode_chunks(
    dst: &mut Vec<u8>,
    base_t: i64,
    chunks_off: u64,
    chunks: &[IndexChunk],
    shares: bool,
) {
    put_uvarint(dst, chunks.len() as u64);
    if chunks.is_empty() {
        return;
    }
    put_uvarint(dst, chunks_off);
    let mut prev = base_t;
    for c in chunks {
        if shares {
            if let Some(r) = c.ts_ref {
                put_uvarint(dst, u64::from(c.len) << 1 | 1);
                put_uvarint(dst, r);
                continue;
            }
            put_uvarint(dst, u64::from(c.len) << 1);
        }
        put_varint(dst, c.meta.min_t.wrapping_sub(prev));
        put_uvarint(dst, c.meta.max_t.wrapping_sub(c.meta.min_t) as u64);
        put_uvarint(dst, u64::from(c.meta.count));
        if !shares {
            put_uvarint(dst, u64::from(c.len));
        }
        prev = c.meta.max_t;
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
