//! Columnar sample codecs: a chunk holds one series' samples for a time span as two
//! columns, timestamps (i64 ms) and values (f64), each compressed with the cheapest of a
//! few layouts chosen per chunk. The byte layout is drawn in `docs/format/chunk.md`.
//!
//! ```text
//! chunk  = version <1 byte = 1> │ timestamp column │ value column
//! ```
//!
//! - Timestamps ([`encode_timestamps`]): count, first and last up front (so
//!   [`chunk_header`] is cheap), then constant delta (0 bits/sample), deltas, deltas of
//!   deltas, or residuals from a regular grid, bit-packed with a per-column width.
//! - Values ([`encode_values`]): constant, decimal integers (delta / delta-of-delta /
//!   frame of reference, bit-packed), Gorilla XOR, or raw. Every value round-trips bit
//!   for bit, NaN payloads (the stale marker), ±Inf and -0.0 included.
//!
//! Decoding never panics on bad bytes: it returns [`Error::ChunkDecode`] and leaves the
//! output buffers as they were.
//!
//! ```
//! use eddy_storage::chunk::{chunk_header, decode_chunk, encode_chunk};
//! let ts: Vec<i64> = (0..120).map(|i| 1_700_000_000_000 + i * 10_000).collect();
//! let vals: Vec<f64> = (0..120).map(|i| (i * 37) as f64).collect();
//! let mut buf = Vec::new();
//! encode_chunk(&mut buf, &ts, &vals);
//! assert!(buf.len() < 20);
//! let h = chunk_header(&buf).unwrap();
//! assert_eq!((h.count, h.min_t, h.max_t), (120, ts[0], ts[119]));
//! let (mut ts2, mut vals2) = (Vec::new(), Vec::new());
//! assert_eq!(decode_chunk(&buf, &mut ts2, &mut vals2).unwrap(), 120);
//! assert_eq!((ts2, vals2), (ts, vals));
//! ```

mod bitpack;
mod decimal;
mod ints;
mod timestamps;
mod values;
pub(crate) mod varint;
mod xor;

use crate::error::{Error, Result};
use varint::Reader;

/// The format version written as a chunk's first byte.
pub const CHUNK_VERSION: u8 = 1;

/// Most samples one chunk or column may hold. Decoders refuse larger counts, so corrupt
/// input cannot make them allocate more than `MAX_CHUNK_SAMPLES × 8` bytes per column.
pub const MAX_CHUNK_SAMPLES: usize = 1 << 20;

/// What [`chunk_header`] reads without decoding the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Number of samples.
    pub count: u32,
    /// First (smallest) timestamp.
    pub min_t: i64,
    /// Last (largest) timestamp.
    pub max_t: i64,
}

/// The layouts an encoded chunk chose (timestamp layout; value layout with its decimal scale
/// and integer transform), a few bytes a series can keep to encode its next chunk the same
/// way ([`ChunkEncoder::encode_chunk_hinted`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayoutHint {
    timestamps: Option<u8>,
    values: Option<values::Hint>,
}

impl LayoutHint {
    /// The layouts of `chunk`; nothing for bytes that are not a chunk.
    pub fn of(chunk: &[u8]) -> LayoutHint {
        match split_chunk(chunk) {
            Ok(c) => LayoutHint {
                timestamps: timestamps::mode_of(c.timestamps),
                values: values::Hint::of(c.values),
            },
            Err(_) => LayoutHint::default(),
        }
    }
}

/// Reusable encoder scratch. The free functions build one per call; a compactor that
/// writes many chunks should keep one and call its methods, so encoding does not allocate.
#[derive(Debug, Default)]
pub struct ChunkEncoder {
    scratch: Scratch,
}

/// Buffers the codecs share while encoding one column.
#[derive(Debug, Default)]
struct Scratch {
    a: Vec<i64>,
    b: Vec<i64>,
    c: Vec<i64>,
    packed: Vec<u64>,
    patches: Vec<usize>,
    bytes: Vec<u8>,
    /// Plan integer streams as their whole range, without the search for outliers
    /// ([`ChunkEncoder::encode_interim_hinted`]).
    frame_only: bool,
}

impl ChunkEncoder {
    /// A new encoder with empty scratch.
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`encode_chunk`].
    pub fn encode_chunk(&mut self, dst: &mut Vec<u8>, ts: &[i64], vals: &[f64]) {
        self.encode_with_hint(dst, ts, vals, None, None);
    }

    /// [`encode_chunk`](Self::encode_chunk) for a chunk that replaces `previous`, a chunk of
    /// the same series holding a prefix of these samples (the head re-encodes its growing
    /// chunk this way several times before it is full). The layouts `previous` chose are
    /// tried first: for values the decimal scale and integer transform, or straight to XOR;
    /// for timestamps the one layout it used. The search over decimal bases, transforms and
    /// timestamp layouts runs only when a layout no longer fits. The result decodes like any
    /// chunk; it may be a little larger than a fully planned one.
    pub fn encode_chunk_after(
        &mut self,
        dst: &mut Vec<u8>,
        ts: &[i64],
        vals: &[f64],
        previous: &[u8],
    ) {
        self.encode_chunk_hinted(dst, ts, vals, LayoutHint::of(previous));
    }

    /// [`encode_chunk_after`](Self::encode_chunk_after) with the layouts of an earlier chunk
    /// kept as a [`LayoutHint`] instead of the chunk itself.
    pub fn encode_chunk_hinted(
        &mut self,
        dst: &mut Vec<u8>,
        ts: &[i64],
        vals: &[f64],
        hint: LayoutHint,
    ) {
        self.encode_with_hint(dst, ts, vals, hint.timestamps, hint.values);
    }

    /// [`encode_chunk_hinted`](Self::encode_chunk_hinted) (or [`encode_chunk`](Self::encode_chunk)
    /// without a hint) for an interim chunk that will be re-encoded with more samples or into a
    /// block: integer streams take their whole range, without the search for outliers that
    /// would keep a counter reset from widening every value. Faster to write, sometimes
    /// larger; decodes like any chunk.
    pub fn encode_interim_hinted(
        &mut self,
        dst: &mut Vec<u8>,
        ts: &[i64],
        vals: &[f64],
        hint: Option<LayoutHint>,
    ) {
        self.scratch.frame_only = true;
        let (ts_hint, values_hint) = hint.map_or((None, None), |h| (h.timestamps, h.values));
        self.encode_with_hint(dst, ts, vals, ts_hint, values_hint);
        self.scratch.frame_only = false;
    }

    fn encode_with_hint(
        &mut self,
        dst: &mut Vec<u8>,
        ts: &[i64],
        vals: &[f64],
        ts_hint: Option<u8>,
        hint: Option<values::Hint>,
    ) {
        assert!(
            !ts.is_empty() && ts.len() == vals.len() && ts.len() <= MAX_CHUNK_SAMPLES,
            "BUG: encode_chunk needs 1..={MAX_CHUNK_SAMPLES} samples and equal columns, got {} timestamps and {} values",
            ts.len(),
            vals.len()
        );
        debug_assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "BUG: chunk timestamps not strictly increasing"
        );
        dst.push(CHUNK_VERSION);
        match ts_hint {
            Some(mode) => timestamps::encode_hinted(dst, ts, &mut self.scratch, mode),
            None => timestamps::encode(dst, ts, &mut self.scratch),
        }
        match hint {
            Some(h) => values::encode_hinted(dst, vals, &mut self.scratch, h),
            None => values::encode(dst, vals, &mut self.scratch),
        }
    }

    /// See [`encode_timestamps`].
    pub fn encode_timestamps(&mut self, dst: &mut Vec<u8>, src: &[i64]) {
        assert!(
            src.len() <= MAX_CHUNK_SAMPLES,
            "BUG: {} timestamps exceed the column limit",
            src.len()
        );
        timestamps::encode(dst, src, &mut self.scratch);
    }

    /// See [`encode_values`].
    pub fn encode_values(&mut self, dst: &mut Vec<u8>, src: &[f64]) {
        assert!(
            src.len() <= MAX_CHUNK_SAMPLES,
            "BUG: {} values exceed the column limit",
            src.len()
        );
        values::encode(dst, src, &mut self.scratch);
    }
}

/// Appends one encoded chunk to `dst` (never clears `dst`).
///
/// `ts` must be strictly increasing and `ts.len() == vals.len()`, between 1 and
/// [`MAX_CHUNK_SAMPLES`]; a violated length contract panics (it is a caller bug).
pub fn encode_chunk(dst: &mut Vec<u8>, ts: &[i64], vals: &[f64]) {
    ChunkEncoder::new().encode_chunk(dst, ts, vals);
}

/// Decodes a chunk, appending to the column buffers; returns the sample count.
/// Bytes after the chunk are ignored. On error both buffers keep their old length.
pub fn decode_chunk(src: &[u8], ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<usize> {
    let (ts_len, vals_len) = (ts.len(), vals.len());
    let res = decode_chunk_inner(src, ts, vals);
    if res.is_err() {
        ts.truncate(ts_len);
        vals.truncate(vals_len);
    }
    res
}

fn decode_chunk_inner(src: &[u8], ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<usize> {
    let body = check_version(src)?;
    let before = ts.len();
    let used = timestamps::decode(body, ts)?;
    let n = ts.len() - before;
    if n == 0 {
        return Err(Error::ChunkDecode("chunk holds no samples"));
    }
    values::decode(&body[used..], n, vals)?;
    Ok(n)
}

fn check_version(src: &[u8]) -> Result<&[u8]> {
    match src.split_first() {
        Some((&CHUNK_VERSION, body)) => Ok(body),
        Some(_) => Err(Error::ChunkDecode("unknown chunk version")),
        None => Err(Error::ChunkDecode("empty chunk bytes")),
    }
}

/// An encoded chunk cut into its columns (slices of the chunk bytes), by [`split_chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkColumns<'a> {
    /// Count, first and last timestamp.
    pub header: ChunkHeader,
    /// The version byte.
    pub version: &'a [u8],
    /// The timestamp column, exactly.
    pub timestamps: &'a [u8],
    /// Everything after the timestamp column: the value column (not validated here).
    pub values: &'a [u8],
}

/// Cuts a chunk into version byte, timestamp column and value column without decoding either
/// column (reads the timestamp column's framing only). A block stores a timestamp column that
/// several series share once (`docs/format/block.md`).
pub fn split_chunk(src: &[u8]) -> Result<ChunkColumns<'_>> {
    let body = check_version(src)?;
    let (h, ts_len) = timestamps::column_len(body)?;
    if h.count == 0 {
        return Err(Error::ChunkDecode("chunk holds no samples"));
    }
    Ok(ChunkColumns {
        header: ChunkHeader {
            count: h.count as u32,
            min_t: h.first,
            max_t: h.last,
        },
        version: &src[..1],
        timestamps: &body[..ts_len],
        values: &body[ts_len..],
    })
}

/// The header and byte length of a timestamp column, without decoding its payload.
pub fn timestamps_header(src: &[u8]) -> Result<(ChunkHeader, usize)> {
    let (h, len) = timestamps::column_len(src)?;
    Ok((
        ChunkHeader {
            count: h.count as u32,
            min_t: h.first,
            max_t: h.last,
        },
        len,
    ))
}

/// Decodes a chunk whose columns are stored apart: `ts_src` is a timestamp column, `rest` is
/// the chunk's version byte followed by its value column. Appends to the column buffers and
/// returns the sample count; on error both buffers keep their old length.
pub fn decode_split_chunk(
    ts_src: &[u8],
    rest: &[u8],
    ts: &mut Vec<i64>,
    vals: &mut Vec<f64>,
) -> Result<usize> {
    let vals_src = check_version(rest)?;
    let before = ts.len();
    decode_timestamps(ts_src, ts)?;
    let n = ts.len() - before;
    if n == 0 {
        return Err(Error::ChunkDecode("chunk holds no samples"));
    }
    if let Err(e) = decode_values(vals_src, n, vals) {
        ts.truncate(before);
        return Err(e);
    }
    Ok(n)
}

/// Decodes the value column of a chunk stored apart from its timestamps (`rest` as in
/// [`decode_split_chunk`]) whose `n` timestamps the caller already has.
pub fn decode_split_values(rest: &[u8], n: usize, vals: &mut Vec<f64>) -> Result<usize> {
    decode_values(check_version(rest)?, n, vals)
}

/// Like [`decode_split_values`], but appends only values `skip..n` (`skip <= n`), for a
/// reader that needs the end of the chunk; on error `vals` keeps its old length.
pub fn decode_split_values_from(
    rest: &[u8],
    n: usize,
    skip: usize,
    vals: &mut Vec<f64>,
) -> Result<usize> {
    let src = check_version(rest)?;
    let old = vals.len();
    let res = values::decode_from(src, n, skip, vals);
    if res.is_err() {
        vals.truncate(old);
    }
    res
}

/// Reads only the header (cheap): count, first and last timestamp.
pub fn chunk_header(src: &[u8]) -> Result<ChunkHeader> {
    let mut r = Reader::new(check_version(src)?);
    let h = timestamps::read_header(&mut r)?;
    if h.count == 0 {
        return Err(Error::ChunkDecode("chunk holds no samples"));
    }
    Ok(ChunkHeader {
        count: h.count as u32,
        min_t: h.first,
        max_t: h.last,
    })
}

/// Appends an encoded timestamp column (usable alone, e.g. one column shared by all the
/// series of a scrape). Any i64 sequence round-trips; increasing ones compress well.
pub fn encode_timestamps(dst: &mut Vec<u8>, src: &[i64]) {
    ChunkEncoder::new().encode_timestamps(dst, src);
}

/// Decodes a timestamp column, appending to `dst`; returns the bytes consumed.
/// On error `dst` keeps its old length.
pub fn decode_timestamps(src: &[u8], dst: &mut Vec<i64>) -> Result<usize> {
    let old = dst.len();
    let res = timestamps::decode(src, dst);
    if res.is_err() {
        dst.truncate(old);
    }
    res
}

/// Appends an encoded value column. The count is not stored: the decoder is told it.
pub fn encode_values(dst: &mut Vec<u8>, src: &[f64]) {
    ChunkEncoder::new().encode_values(dst, src);
}

/// Decodes `n` values, appending to `dst`; returns the bytes consumed.
/// On error `dst` keeps its old length.
pub fn decode_values(src: &[u8], n: usize, dst: &mut Vec<f64>) -> Result<usize> {
    let old = dst.len();
    let res = values::decode(src, n, dst);
    if res.is_err() {
        dst.truncate(old);
    }
    res
}

/// Refuses counts above [`MAX_CHUNK_SAMPLES`] before anything is allocated for them.
fn check_count(n: u64) -> Result<usize> {
    if n > MAX_CHUNK_SAMPLES as u64 {
        return Err(Error::ChunkDecode("sample count above the chunk limit"));
    }
    Ok(n as usize)
}
