//! Reads a block's `index` file in place (from an mmap): verifies every section checksum and
//! the structure on open, then answers symbol, series and postings lookups without copying.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use croaring::{Bitmap, BitmapView, Portable};

use crate::block::mmap::FileBytes;
use crate::block::ChunkMeta;
use crate::error::{Error, Result};
use crate::index::format::{
    read_u32, read_u64, DecodeError, Decoder, Section, HEADER_LEN, MAGIC, SECTIONS, TOC_ENTRY_LEN,
    TOC_LEN, VERSION, VERSION_PLAIN, VERSION_TAILS,
};
use crate::index::{IndexChunk, PostingsSource};
use crate::labels::Labels;

#[derive(Debug, Clone, Copy)]
struct NameEntry {
    sym: u32,
    /// Range of this name's values in `IndexReader::values`.
    values: (u32, u32),
}

/// A validated, memory-mapped index file.
///
/// Opened by [`Block::open`](crate::block::Block::open), which checks the header, the table of
/// contents, every section's CRC32C, the symbol table, the label index and every postings list,
/// then walks the whole series table. Lookups after a successful open cannot meet malformed
/// bytes, but they still return `Error::Corruption` instead of panicking if they do.
/// `Send + Sync`; all methods take `&self`; returned `&str`s borrow the mapping.
#[derive(Debug)]
pub struct IndexReader {
    data: FileBytes,
    path: PathBuf,
    /// `(offset, len)` of each section in file order.
    sections: [(usize, usize); 5],
    /// `(offset in the symbols section, byte length)` of each symbol's string. Keeping the
    /// length (4 bytes a symbol) spares the length varint on every lookup: series reads look
    /// up two symbols per label, and the varint decode with its error path was most of each
    /// lookup's ~80 instructions.
    symbols: Vec<(u32, u32)>,
    names: Vec<NameEntry>,
    /// `(value symbol, postings offset)` of every pair, grouped by name, plus an end sentinel.
    values: Vec<(u32, u32)>,
    num_series: u32,
    /// Chunk times are stored relative to this (the block's `min_t`).
    base_t: i64,
    /// Format version: 2 adds the shared-timestamps flag to chunk metas, 3 the label tails.
    version: u8,
    /// Version 3: each shared label tail as `(start in tail_pairs, its first name ordinal)`,
    /// plus an end sentinel. Tails are decoded once at open (8 bytes per label of a tail, a
    /// few bytes per series): a series read then resolves its tail without decoding varints.
    tails: Vec<(u32, u32)>,
    /// `(name symbol, value symbol)` of every tail's labels, tail after tail.
    tail_pairs: Vec<(u32, u32)>,
    /// Where the first series entry starts in the series section (after the tails table).
    series_start: usize,
}

impl IndexReader {
    /// Validates and opens the index in `data`; `path` names the file in errors.
    pub(crate) fn open(data: FileBytes, path: &Path) -> Result<IndexReader> {
        let mut r = IndexReader {
            data,
            path: path.to_path_buf(),
            sections: [(0, 0); 5],
            symbols: Vec::new(),
            names: Vec::new(),
            values: Vec::new(),
            num_series: 0,
            base_t: 0,
            version: VERSION,
            tails: Vec::new(),
            tail_pairs: Vec::new(),
            series_start: 0,
        };
        r.read_header_and_toc()?;
        for s in SECTIONS {
            let (off, len) = r.sections[s as usize];
            let want =
                read_u32(&r.data, r.toc_start() + s as usize * TOC_ENTRY_LEN + 16).unwrap_or(0);
            if crc32c::crc32c(&r.data[off..off + len]) != want {
                return Err(r.corrupt(
                    off as u64,
                    format!("{} section checksum mismatch", s.name()),
                ));
            }
        }
        r.read_symbols()
            .map_err(|e| r.decode_err(Section::Symbols, e))?;
        let (_, len) = r.sections[Section::SeriesOffsets as usize];
        if len % 4 != 0 {
            let off = r.sections[Section::SeriesOffsets as usize].0;
            return Err(r.corrupt(
                off as u64,
                "series offsets section length is not a multiple of 4".into(),
            ));
        }
        r.num_series =
            u32::try_from(len / 4).map_err(|_| r.corrupt(0, "too many series".into()))?;
        r.read_label_index()
            .map_err(|e| r.decode_err(Section::LabelIndex, e))?;
        r.check_postings()?;
        r.read_tails()
            .map_err(|e| r.decode_err(Section::Series, e))?;
        Ok(r)
    }

    fn toc_start(&self) -> usize {
        self.data.len() - TOC_LEN
    }

    fn corrupt(&self, offset: u64, reason: String) -> Error {
        Error::Corruption {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    fn decode_err(&self, s: Section, e: DecodeError) -> Error {
        self.corrupt(e.offset, format!("{} section: {}", s.name(), e.reason))
    }

    fn read_header_and_toc(&mut self) -> Result<()> {
        let d = &self.data;
        if d.len() < HEADER_LEN + TOC_LEN {
            return Err(self.corrupt(0, format!("index file too short ({} bytes)", d.len())));
        }
        if d[..4] != MAGIC {
            return Err(self.corrupt(0, "bad index magic".into()));
        }
        if ![VERSION_PLAIN, VERSION, VERSION_TAILS].contains(&d[4]) {
            return Err(self.corrupt(4, format!("unsupported index version {}", d[4])));
        }
        self.version = d[4];
        if d[5..8] != [0, 0, 0] {
            return Err(self.corrupt(5, "nonzero reserved header bytes".into()));
        }
        let toc = self.toc_start();
        if read_u32(d, 16) != Some(crc32c::crc32c(&d[..16])) {
            return Err(self.corrupt(0, "header checksum mismatch".into()));
        }
        self.base_t = read_u64(d, 8).unwrap_or(0) as i64;
        let want = read_u32(d, toc + TOC_LEN - 4).unwrap_or(0);
        if crc32c::crc32c(&d[toc..toc + TOC_LEN - 4]) != want {
            return Err(self.corrupt(toc as u64, "table of contents checksum mismatch".into()));
        }
        // Sections tile the file between header and TOC, so every byte is under a checksum.
        let mut expect = HEADER_LEN as u64;
        for s in SECTIONS {
            let at = toc + s as usize * TOC_ENTRY_LEN;
            let off = read_u64(d, at).unwrap_or(u64::MAX);
            let len = read_u64(d, at + 8).unwrap_or(u64::MAX);
            let end = off.saturating_add(len);
            if off != expect || end > toc as u64 {
                return Err(self.corrupt(
                    at as u64,
                    format!("{} section at {off}+{len} out of place", s.name()),
                ));
            }
            self.sections[s as usize] = (off as usize, len as usize);
            expect = end;
        }
        if expect != toc as u64 {
            return Err(self.corrupt(toc as u64, "gap before table of contents".into()));
        }
        Ok(())
    }

    fn section(&self, s: Section) -> (&[u8], u64) {
        let (off, len) = self.sections[s as usize];
        (&self.data[off..off + len], off as u64)
    }

    fn read_symbols(&mut self) -> Result<(), DecodeError> {
        let (buf, base) = self.section(Section::Symbols);
        let mut d = Decoder::new(buf, base);
        let n = d.uvarint32()?;
        let mut symbols = Vec::with_capacity(n.min(1 << 20) as usize);
        let mut prev: Option<&[u8]> = None;
        for _ in 0..n {
            let len = d.uvarint32()?;
            let at = u32::try_from(d.pos()).map_err(|_| d.err("symbols section exceeds 4 GiB"))?;
            let s = d.bytes(len as usize)?;
            if std::str::from_utf8(s).is_err() {
                return Err(d.err("symbol is not UTF-8"));
            }
            if prev.is_some_and(|p| p >= s) {
                return Err(d.err("symbols not strictly sorted"));
            }
            prev = Some(s);
            symbols.push((at, len));
        }
        if !d.is_empty() {
            return Err(d.err("trailing bytes"));
        }
        self.symbols = symbols;
        Ok(())
    }

    fn read_label_index(&mut self) -> Result<(), DecodeError> {
        let (buf, base) = self.section(Section::LabelIndex);
        let post_len = self.sections[Section::Postings as usize].1 as u64;
        let nsyms = self.symbols.len() as u64;
        let mut d = Decoder::new(buf, base);
        let n = d.uvarint32()?;
        let mut names = Vec::with_capacity(n.min(1 << 16) as usize);
        let mut values: Vec<(u32, u32)> = Vec::new();
        let mut post_off = 0u64;
        for i in 0..n {
            let sym = d.uvarint32()?;
            if u64::from(sym) >= nsyms
                || (i > 0 && names.last().is_some_and(|p: &NameEntry| p.sym >= sym))
            {
                return Err(d.err("bad label name symbol"));
            }
            let nv = d.uvarint()?;
            let first = values.len() as u32;
            let mut v = 0u64;
            for j in 0..nv {
                let delta = d.uvarint()?;
                v = v.saturating_add(delta);
                if (j > 0 && delta == 0) || v >= nsyms {
                    return Err(d.err("bad label value symbol"));
                }
                let len = d.uvarint()?;
                if len == 0 || post_off.saturating_add(len) > post_len {
                    return Err(d.err("postings range outside postings section"));
                }
                values.push((v as u32, post_off as u32));
                post_off += len;
            }
            names.push(NameEntry {
                sym,
                values: (first, values.len() as u32),
            });
        }
        if !d.is_empty() {
            return Err(d.err("trailing bytes"));
        }
        if post_off != post_len {
            return Err(d.err("postings section has unreferenced bytes"));
        }
        values.push((u32::MAX, post_off as u32));
        self.names = names;
        self.values = values;
        Ok(())
    }

    /// Fully decodes every postings list once, so that the zero-copy views made later are
    /// sound even if a damaged file slipped past its CRC: each list must decode with croaring's
    /// validating deserializer, re-encode to exactly its stored bytes (the view trusts parts of
    /// the encoding, such as container offsets, that the validating decoder ignores), and hold
    /// only ordinals below `num_series`.
    fn check_postings(&self) -> Result<()> {
        let base = self.sections[Section::Postings as usize].0 as u64;
        let mut buf = Vec::new();
        for j in 0..self.values.len().saturating_sub(1) {
            let bytes = self.postings_bytes(j);
            let bad = |reason: &str| {
                let offset = base + u64::from(self.values[j].1);
                self.corrupt(offset, format!("postings section: {reason}"))
            };
            let b =
                Bitmap::try_deserialize::<Portable>(bytes).ok_or_else(|| bad("invalid bitmap"))?;
            buf.clear();
            if b.serialize_into_vec::<Portable>(&mut buf) != bytes {
                return Err(bad("bitmap not in canonical encoding"));
            }
            if b.is_empty() || b.maximum().is_some_and(|m| m >= self.num_series) {
                return Err(bad("bitmap holds no series or an unknown series"));
            }
        }
        Ok(())
    }

    /// Number of series (ordinals are `0..num_series`).
    pub fn num_series(&self) -> u32 {
        self.num_series
    }

    /// Number of symbols.
    pub fn num_symbols(&self) -> u32 {
        self.symbols.len() as u32
    }

    /// The whole index file as mapped, for passes that release what they read.
    pub(crate) fn file_bytes(&self) -> &FileBytes {
        &self.data
    }

    /// See `FileBytes::release_pages`.
    pub(crate) fn release_pages(&self) {
        self.data.release_pages();
    }

    /// `(section name, byte length)` of each section in file order, for size reports.
    pub fn section_sizes(&self) -> [(&'static str, u64); 5] {
        SECTIONS.map(|s| (s.name(), self.sections[s as usize].1 as u64))
    }

    /// Byte length of the index file.
    pub fn file_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// The string of symbol `id`.
    #[inline]
    pub fn symbol(&self, id: u32) -> Result<&str> {
        let (buf, base) = self.section(Section::Symbols);
        let s = self
            .symbols
            .get(id as usize)
            .and_then(|&(at, len)| buf.get(at as usize..at as usize + len as usize));
        let Some(s) = s else {
            return Err(self.unknown_symbol(base, id));
        };
        // SAFETY: `open` (`read_symbols`) checked that the bytes of every symbol are UTF-8, and
        // `self.symbols` holds exactly the ranges it read, so `s` is one of those symbols. The
        // mapping is immutable (see `block::mmap`) and `s` borrows `self`, so the bytes cannot
        // change under it. Series reads look symbols up for every label of every series, and
        // validating them again each time was a tenth of a small query's instructions.
        Ok(unsafe { std::str::from_utf8_unchecked(s) })
    }

    /// The error for a symbol id past the table; kept out of line so that [`Self::symbol`]
    /// inlines small.
    #[cold]
    #[inline(never)]
    fn unknown_symbol(&self, base: u64, id: u32) -> Error {
        self.corrupt(base, format!("unknown symbol {id}"))
    }

    /// The first symbol id whose string is `>= s` (`num_symbols` if none).
    fn lower_bound(&self, s: &str) -> Result<u32> {
        let (mut lo, mut hi) = (0u32, self.symbols.len() as u32);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.symbol(mid)? < s {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    fn find_symbol(&self, s: &str) -> Result<Option<u32>> {
        let i = self.lower_bound(s)?;
        Ok((i < self.num_symbols() && self.symbol(i)? == s).then_some(i))
    }

    fn find_name(&self, name: &str) -> Result<Option<NameEntry>> {
        let Some(sym) = self.find_symbol(name)? else {
            return Ok(None);
        };
        Ok(self
            .names
            .binary_search_by_key(&sym, |n| n.sym)
            .ok()
            .map(|i| self.names[i]))
    }

    /// The postings bytes of value entry `j`.
    fn postings_bytes(&self, j: usize) -> &[u8] {
        let (buf, _) = self.section(Section::Postings);
        let (a, b) = (self.values[j].1 as usize, self.values[j + 1].1 as usize);
        &buf[a..b]
    }

    fn postings_view(&self, j: usize) -> BitmapView<'_> {
        // SAFETY: `BitmapView::deserialize` requires a valid Portable serialization. `open`
        // verified the postings section's CRC32C, that each range lies inside it, and
        // (`check_postings`) that each range decodes with croaring's bounds-checked, validating
        // deserializer and re-encodes to exactly the same bytes, i.e. it is serializer output. The bytes are
        // immutable (see `block::mmap`), and the view borrows `self`, so the mapping outlives it.
        unsafe { BitmapView::deserialize::<Portable>(self.postings_bytes(j)) }
    }

    fn entry(&self, ord: u32) -> Result<Decoder<'_>> {
        let (buf, base) = self.section(Section::Series);
        let at = read_u32(self.section(Section::SeriesOffsets).0, ord as usize * 4)
            .ok_or_else(|| self.corrupt(base, format!("series ordinal {ord} out of range")))?;
        let rest = buf
            .get(at as usize..)
            .ok_or_else(|| self.corrupt(base, format!("series {ord} offset {at} out of range")))?;
        Ok(Decoder::new(rest, base + u64::from(at)))
    }

    /// The label set of series `ord`.
    pub fn series_labels(&self, ord: u32) -> Result<Labels> {
        let mut pairs = Vec::new();
        self.series_label_strs(ord, &mut pairs)?;
        Ok(Labels::from_sorted_pairs_unchecked(pairs))
    }

    /// The labels of series `ord` as `(name, value)` strings borrowed from the index, in
    /// label order, appended to `dst`: for comparing or hashing label sets without building
    /// them (a [`Labels`] costs two allocations per label).
    pub fn series_label_strs<'a>(
        &'a self,
        ord: u32,
        dst: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<()> {
        let mut d = self.entry(ord)?;
        let from = dst.len();
        // The entry starts with the label count.
        if let Ok(n) = d.clone().uvarint() {
            dst.reserve(n.min(1024) as usize);
        }
        let mut bad = None;
        let res = self.decode_labels(&mut d, |n, v| match (self.symbol(n), self.symbol(v)) {
            (Ok(n), Ok(v)) => dst.push((n, v)),
            (Err(e), _) | (_, Err(e)) => {
                bad.get_or_insert(e);
            }
        });
        let err = match res {
            Err(e) => Some(self.decode_err(Section::Series, e)),
            Ok(()) => bad,
        };
        match err {
            Some(e) => {
                dst.truncate(from);
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Reads the tails table (version 3) at the start of the series section, checking each
    /// tail's references, and notes where the series entries start.
    fn read_tails(&mut self) -> Result<(), DecodeError> {
        if self.version != VERSION_TAILS {
            return Ok(());
        }
        let (buf, base) = self.section(Section::Series);
        let mut d = Decoder::new(buf, base);
        let n = d.uvarint()?;
        let mut tails = Vec::with_capacity(n.min(buf.len() as u64) as usize + 1);
        let mut pairs = Vec::new();
        for _ in 0..n {
            let start = u32::try_from(pairs.len()).map_err(|_| d.err("too many tail labels"))?;
            // The first name ordinal, for the order check against a series' own labels (an
            // empty tail gets `u32::MAX`: nothing to order).
            let mut peek = d.clone();
            let first = match peek.uvarint()? {
                0 => u32::MAX,
                _ => peek.uvarint32()?,
            };
            self.decode_label_list(&mut d, &mut None, |name, value| pairs.push((name, value)))?;
            tails.push((start, first));
        }
        let end = u32::try_from(pairs.len()).map_err(|_| d.err("too many tail labels"))?;
        tails.push((end, u32::MAX));
        self.series_start = d.pos();
        self.tails = tails;
        self.tail_pairs = pairs;
        Ok(())
    }

    /// Decodes a series entry's labels, checking references, and hands each `(name symbol,
    /// value symbol)` pair to `each` in order: the entry's own labels, then (version 3) those
    /// of its tail.
    fn decode_labels(
        &self,
        d: &mut Decoder<'_>,
        mut each: impl FnMut(u32, u32),
    ) -> Result<(), DecodeError> {
        let mut prev = None;
        self.decode_label_list(d, &mut prev, &mut each)?;
        if self.version != VERSION_TAILS {
            return Ok(());
        }
        let tail = d.uvarint()?;
        if tail == 0 {
            return Ok(());
        }
        // `tails` ends with a sentinel, so a valid number `t` has `t + 1` in range too.
        let found = usize::try_from(tail)
            .ok()
            .filter(|&t| t < self.tails.len())
            .map(|t| (self.tails[t - 1], self.tails[t].0));
        let Some(((start, first), end)) = found else {
            return Err(d.err("bad label tail reference"));
        };
        if prev.is_some_and(|p| first != u32::MAX && p >= first) {
            return Err(d.err("bad label name reference"));
        }
        for &(name, value) in &self.tail_pairs[start as usize..end as usize] {
            each(name, value);
        }
        Ok(())
    }

    /// Decodes one label list (a count, then name and value ordinals), checking references and
    /// that names keep increasing after `prev`.
    fn decode_label_list(
        &self,
        d: &mut Decoder<'_>,
        prev: &mut Option<u32>,
        mut each: impl FnMut(u32, u32),
    ) -> Result<(), DecodeError> {
        let n = d.uvarint()?;
        for _ in 0..n {
            let name = d.uvarint32()?;
            let value = d.uvarint32()?;
            let entry = self
                .names
                .get(name as usize)
                .filter(|_| prev.is_none_or(|p| p < name));
            let Some(entry) = entry else {
                return Err(d.err("bad label name reference"));
            };
            let Some(&(sym, _)) =
                self.values[entry.values.0 as usize..entry.values.1 as usize].get(value as usize)
            else {
                return Err(d.err("bad label value reference"));
            };
            *prev = Some(name);
            each(entry.sym, sym);
        }
        Ok(())
    }

    /// The chunk metas of series `ord` appended to `dst`; returns the file offset of the first
    /// chunk in `chunks` (the others follow contiguously). A chunk that shares a timestamp
    /// column has a zeroed `meta` here (see [`IndexChunk::ts_ref`]).
    pub fn series_chunks(&self, ord: u32, dst: &mut Vec<IndexChunk>) -> Result<u64> {
        let metas = self.chunk_metas(ord)?;
        let off = metas.offset;
        for c in metas {
            dst.push(c.map_err(|e| self.decode_err(Section::Series, e))?.1);
        }
        Ok(off)
    }

    /// A lazy decoder of the chunk metas of series `ord` (no allocation).
    pub(crate) fn chunk_metas(&self, ord: u32) -> Result<ChunkMetas<'_>> {
        let mut d = self.entry(ord)?;
        self.skip_labels(&mut d)
            .map_err(|e| self.decode_err(Section::Series, e))?;
        ChunkMetas::start(d, self.base_t, self.version)
            .map_err(|e| self.decode_err(Section::Series, e))
    }

    fn skip_labels(&self, d: &mut Decoder<'_>) -> Result<(), DecodeError> {
        for _ in 0..d.uvarint()? {
            d.uvarint()?;
            d.uvarint()?;
        }
        if self.version == VERSION_TAILS {
            d.uvarint()?;
        }
        Ok(())
    }

    /// Walks every series entry in order, checking labels, chunk metas and that the offsets
    /// table points at each entry; calls `visit(ord, chunks_off, chunks)` for each.
    pub(crate) fn check_series(
        &self,
        mut visit: impl FnMut(u32, u64, &[IndexChunk]) -> Result<()>,
    ) -> Result<()> {
        let (buf, base) = self.section(Section::Series);
        let offsets = self.section(Section::SeriesOffsets).0;
        let mut d = Decoder::new(buf, base);
        // The tails table was read and checked at open.
        d.bytes(self.series_start)
            .map_err(|e| self.decode_err(Section::Series, e))?;
        let mut chunks = Vec::new();
        for ord in 0..self.num_series {
            if read_u32(offsets, ord as usize * 4) != Some(d.pos() as u32) {
                let at = self.sections[Section::SeriesOffsets as usize].0 + ord as usize * 4;
                return Err(self.corrupt(
                    at as u64,
                    format!("series offsets section: wrong offset of series {ord}"),
                ));
            }
            chunks.clear();
            self.decode_labels(&mut d, |_, _| {})
                .map_err(|e| self.decode_err(Section::Series, e))?;
            let mut metas = ChunkMetas::start(d.clone(), self.base_t, self.version)
                .map_err(|e| self.decode_err(Section::Series, e))?;
            let off = metas.offset;
            for c in metas.by_ref() {
                chunks.push(c.map_err(|e| self.decode_err(Section::Series, e))?.1);
            }
            d = metas.d;
            visit(ord, off, &chunks)?;
        }
        if !d.is_empty() {
            return Err(self.decode_err(Section::Series, d.err("trailing bytes")));
        }
        Ok(())
    }
}

/// Decodes the chunk metas of one series entry (see `writer::encode_chunks`) one at a time,
/// yielding each chunk's file offset in `chunks` and its meta.
#[derive(Debug, Clone)]
pub(crate) struct ChunkMetas<'a> {
    d: Decoder<'a>,
    left: u64,
    prev_t: i64,
    /// Offset of the next chunk (of the first one until `next` is called).
    pub(crate) offset: u64,
    /// Version 2: lengths carry the shared-timestamps flag.
    flagged: bool,
}

impl<'a> ChunkMetas<'a> {
    fn start(mut d: Decoder<'a>, base_t: i64, version: u8) -> Result<Self, DecodeError> {
        let left = d.uvarint()?;
        let offset = if left == 0 { 0 } else { d.uvarint()? };
        Ok(ChunkMetas {
            d,
            left,
            prev_t: base_t,
            offset,
            flagged: version != VERSION_PLAIN,
        })
    }
}

impl Iterator for ChunkMetas<'_> {
    type Item = Result<(u64, IndexChunk), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let d = &mut self.d;
        let chunk = (|| {
            let mut len = 0;
            if self.flagged {
                let v = d.uvarint()?;
                len = u32::try_from(v >> 1).map_err(|_| d.err("chunk length above 4 GiB"))?;
                if v & 1 == 1 {
                    // Times and count live in the referenced column's header.
                    return Ok(IndexChunk {
                        meta: ChunkMeta::default(),
                        len,
                        ts_ref: Some(d.uvarint()?),
                    });
                }
            }
            let min_t = self.prev_t.wrapping_add(d.varint()?);
            let max_t = min_t.wrapping_add(d.uvarint()? as i64);
            let count = d.uvarint32()?;
            if !self.flagged {
                len = d.uvarint32()?;
            }
            Ok(IndexChunk {
                meta: ChunkMeta {
                    min_t,
                    max_t,
                    count,
                },
                len,
                ts_ref: None,
            })
        })();
        if chunk.is_err() {
            self.left = 0;
        }
        Some(chunk.map(|c| {
            let at = self.offset;
            if c.ts_ref.is_none() {
                self.prev_t = c.meta.max_t;
            }
            self.offset = self.offset.saturating_add(u64::from(c.len));
            (at, c)
        }))
    }
}

impl PostingsSource for IndexReader {
    fn all(&self) -> Result<Bitmap> {
        Ok(Bitmap::from_range(0..self.num_series))
    }

    fn names(&self) -> Result<Vec<String>> {
        self.names
            .iter()
            .map(|n| self.symbol(n.sym).map(str::to_string))
            .collect()
    }

    fn postings(&self, name: &str, value: &str) -> Result<Option<Bitmap>> {
        let Some(entry) = self.find_name(name)? else {
            return Ok(None);
        };
        let Some(sym) = self.find_symbol(value)? else {
            return Ok(None);
        };
        let vals = &self.values[entry.values.0 as usize..entry.values.1 as usize];
        Ok(vals
            .binary_search_by_key(&sym, |v| v.0)
            .ok()
            .map(|i| self.postings_view(entry.values.0 as usize + i).to_bitmap()))
    }

    fn for_each_value(
        &self,
        name: &str,
        prefix: &str,
        want: &mut dyn FnMut(&str) -> bool,
        visit: &mut dyn FnMut(&str, &Bitmap) -> ControlFlow<()>,
    ) -> Result<()> {
        let Some(entry) = self.find_name(name)? else {
            return Ok(());
        };
        let (a, b) = (entry.values.0 as usize, entry.values.1 as usize);
        // Symbol ids follow byte order, so the values with `prefix` are one contiguous run.
        let start = if prefix.is_empty() {
            0
        } else {
            self.lower_bound(prefix)?
        };
        let first = a + self.values[a..b].partition_point(|v| v.0 < start);
        for j in first..b {
            let v = self.symbol(self.values[j].0)?;
            if !v.starts_with(prefix) {
                break;
            }
            if want(v) && visit(v, &self.postings_view(j)).is_break() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::block::{Block, BlockId, BlockWriter, ChunkMeta};
    use crate::labels::Labels;

    /// Every symbol id gives back its own string (lengths whose varint takes one byte and
    /// two), in sorted order, and the first id past the table is an error, not a panic.
    #[test]
    fn symbols_come_back_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let long = "v".repeat(300);
        let values = ["a", "b", long.as_str(), "é", "zz"];
        let mut w = BlockWriter::new(dir.path(), BlockId::generate(), 0, 99, 1, vec![]).unwrap();
        let meta = ChunkMeta {
            min_t: 0,
            max_t: 1,
            count: 2,
        };
        let mut sets: Vec<Labels> = values
            .iter()
            .map(|v| Labels::from_pairs([("__name__", "m"), ("k", v)]))
            .collect();
        sets.sort();
        for l in &sets {
            w.add_series(l, &[(meta, b"..")]).unwrap();
        }
        let block = Block::open(&w.finish().unwrap()).unwrap();
        let index = block.index();
        let got: Vec<&str> = (0..index.num_symbols())
            .map(|id| index.symbol(id).unwrap())
            .collect();
        let mut want = vec!["__name__", "k", "m"];
        want.extend(values);
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(index.symbol(index.num_symbols()).is_err());
    }
}
