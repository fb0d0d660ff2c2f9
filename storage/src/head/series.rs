//! One series in the head: an open buffer of its newest samples (packed, see [`super::open`]),
//! sealed compressed chunks behind it, and a sorted side buffer for out-of-order samples.
//!
//! The open buffer is sealed when it is full; a sealed chunk keeps absorbing sealed buffers
//! until it holds [`SEALED_TARGET`] samples, so the head keeps few, well-compressed chunks per
//! series while the open buffer stays small (memory per active series is a budget). Full chunks
//! move to the chunk files of [`super::mapped`] when the head has them.

use super::mapped::{ChunkRef, MappedChunks};
use super::open::OpenBuffer;
use crate::api::RejectReason;
use crate::chunk::{decode_chunk, ChunkEncoder, LayoutHint};
use crate::error::Result;

/// A sealed chunk grows by merging until it holds about this many samples.
pub(crate) const SEALED_TARGET: u32 = 128;

/// Reusable decode/encode buffers, owned by the shard that holds the series lock.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) ts: Vec<i64>,
    pub(crate) vals: Vec<f64>,
    pub(crate) bytes: Vec<u8>,
    /// Kept so that sealing does not allocate codec buffers per chunk.
    pub(crate) encoder: ChunkEncoder,
}

/// A series keeps a few of these per 128 samples it holds, so the fields are packed to 32
/// bytes: the newest time as an offset from the oldest, and 16-bit counts.
#[derive(Debug)]
pub(crate) struct SealedChunk {
    pub(crate) min_t: i64,
    /// `max_t - min_t`, or [`SPAN_UNKNOWN`] when that does not fit (a chunk over 49 days,
    /// possible only in a head that is never cut): [`max_t`](Self::max_t) then answers
    /// `i64::MAX`, which every reader treats as "may hold anything after `min_t`".
    span: u32,
    /// Samples held (a sealed chunk stops growing at [`SEALED_TARGET`] + one open buffer).
    count: u16,
    /// Length of a mapped chunk's bytes (kept here rather than in `data`, so that `data` is
    /// 16 bytes; a heap chunk's slice knows its own length).
    mapped_len: u16,
    pub(crate) data: ChunkBytes,
}

/// [`SealedChunk::span`] of a chunk whose span does not fit in 32 bits.
const SPAN_UNKNOWN: u32 = u32::MAX;

/// Where a sealed chunk's bytes are: on the heap while it still grows (or when the chunk
/// files cannot be written), in a chunk file once it is full.
#[derive(Debug)]
pub(crate) enum ChunkBytes {
    Heap(Box<[u8]>),
    Mapped { file: u32, offset: u32 },
}

/// Writes `bytes` to the chunk files: the location and length, or `None` (store disabled, a
/// failed write, or a chunk too long for the `u16` length, which sealed chunks never are).
fn write_mapped(store: &MappedChunks, bytes: &[u8], max_t: i64) -> Option<(ChunkBytes, u16)> {
    let len = u16::try_from(bytes.len()).ok()?;
    let (file, offset, _) = store.write(bytes, max_t)?.parts();
    Some((ChunkBytes::Mapped { file, offset }, len))
}

impl SealedChunk {
    /// A chunk of `bytes`; full chunks (and, with `to_file`, any chunk) go to the chunk files
    /// when those take them.
    fn new(ts: &[i64], bytes: &[u8], store: &MappedChunks, to_file: bool) -> SealedChunk {
        let (min_t, max_t) = (ts[0], ts[ts.len() - 1]);
        let count = u16::try_from(ts.len()).unwrap_or(u16::MAX);
        let span = u32::try_from(max_t.wrapping_sub(min_t))
            .ok()
            .filter(|&s| s != SPAN_UNKNOWN)
            .unwrap_or(SPAN_UNKNOWN);
        let (data, mapped_len) = match (to_file || u32::from(count) >= SEALED_TARGET)
            .then(|| write_mapped(store, bytes, max_t))
            .flatten()
        {
            Some(m) => m,
            None => (ChunkBytes::Heap(bytes.into()), 0),
        };
        SealedChunk {
            min_t,
            span,
            count,
            mapped_len,
            data,
        }
    }

    /// Newest sample time, or `i64::MAX` when the span did not fit (see `span`).
    #[inline]
    pub(crate) fn max_t(&self) -> i64 {
        if self.span == SPAN_UNKNOWN {
            i64::MAX
        } else {
            self.min_t + i64::from(self.span)
        }
    }

    /// Decodes the chunk, appending to `ts`/`vals`.
    fn decode(&self, store: &MappedChunks, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<()> {
        match &self.data {
            ChunkBytes::Heap(b) => decode_chunk(b, ts, vals).map(|_| ()),
            ChunkBytes::Mapped { file, offset } => store
                .with_bytes(
                    ChunkRef::from_parts(*file, *offset, u32::from(self.mapped_len)),
                    |b| decode_chunk(b, ts, vals),
                )?
                .map(|_| ()),
        }
    }

    fn heap_bytes(&self) -> usize {
        match &self.data {
            ChunkBytes::Heap(b) => b.len(),
            ChunkBytes::Mapped { .. } => 0,
        }
    }
}

/// A series' out-of-order samples, sorted by time: rare, so a single null pointer in the
/// series until there are some (a boxed slice would take 16 bytes in every series).
#[derive(Debug, Default)]
// The box is the point: one pointer in every series instead of a `Vec`'s three words.
#[allow(clippy::box_collection)]
struct OutOfOrder(Option<Box<Vec<(i64, f64)>>>);

impl OutOfOrder {
    /// Inserts a sample at its place (the caller checked that `t` is not held).
    fn insert(&mut self, t: i64, v: f64) {
        let samples = self.0.get_or_insert_with(Box::default);
        let i = samples.partition_point(|&(x, _)| x < t);
        samples.reserve_exact(1);
        samples.insert(i, (t, v));
    }

    /// Drops the samples older than `t`.
    fn drop_before(&mut self, t: i64) {
        if let Some(samples) = &mut self.0 {
            let keep = samples.partition_point(|&(x, _)| x < t);
            samples.drain(..keep);
            if samples.is_empty() {
                self.0 = None;
            } else if keep > 0 {
                samples.shrink_to_fit();
            }
        }
    }
}

impl std::ops::Deref for OutOfOrder {
    type Target = [(i64, f64)];

    fn deref(&self) -> &[(i64, f64)] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }
}

/// What the head accepts at the moment of an append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendLimits {
    /// How far behind a series' newest sample an older sample may land (ms).
    pub(crate) ooo_window: i64,
    /// Samples older than this are already covered by blocks.
    pub(crate) min_valid_t: i64,
}

/// Outcome of appending one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Stored.
    Stored,
    /// Same timestamp and same value as a stored sample: nothing to do.
    Duplicate,
    /// Not stored.
    Rejected(RejectReason),
}

#[derive(Debug)]
#[repr(C)]
pub(crate) struct MemSeries {
    /// First, so that it shares the head entry's first cache line with the key (see `Entry`).
    open: OpenBuffer,
    /// Sized exactly (a chunk is added every ~128 samples, so the reallocation is cheap and
    /// a doubling Vec's slack would cost more than the metadata itself).
    sealed: Box<[SealedChunk]>,
    /// Out-of-order samples older than the newest sealed chunk's end, sorted by time.
    ooo: OutOfOrder,
    /// The layouts of the series' last fully planned full chunk and that chunk's size: later
    /// chunks start from these layouts, and the whole layout search runs again only when a
    /// full chunk comes out much larger than that.
    layout: Option<(LayoutHint, u32)>,
}

impl MemSeries {
    /// Bytes at the start of the series that an append reads (the open buffer).
    #[cfg(test)]
    pub(crate) const HOT_BYTES: usize = std::mem::size_of::<OpenBuffer>();

    /// Starts loading the end of the open buffer, where the next sample goes (see
    /// `Head::append`).
    #[inline]
    pub(crate) fn prefetch_open_tail(&self) {
        self.open.prefetch_tail();
    }

    pub(crate) fn new() -> Self {
        MemSeries {
            open: OpenBuffer::default(),
            sealed: Box::default(),
            ooo: OutOfOrder::default(),
            layout: None,
        }
    }

    /// Newest in-order timestamp ever appended (`i64::MIN` before the first), whether or not
    /// the series still holds that sample (see `OpenBuffer::newest_t`).
    pub(crate) fn max_t(&self) -> i64 {
        self.open.newest_t()
    }

    /// Oldest timestamp held, or `i64::MAX` if empty.
    pub(crate) fn min_t(&self) -> i64 {
        let mut m = i64::MAX;
        if let Some(c) = self.sealed.first() {
            m = c.min_t;
        } else if let Some(t) = self.open.first_t() {
            m = t;
        }
        if let Some(&(t, _)) = self.ooo.first() {
            m = m.min(t);
        }
        m
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty() && self.sealed.is_empty() && self.ooo.is_empty()
    }

    /// Appends one sample under `limits` (WAL replay passes an unbounded out-of-order window:
    /// the sample was accepted once already).
    pub(crate) fn append(
        &mut self,
        t: i64,
        v: f64,
        limits: AppendLimits,
        scratch: &mut Scratch,
        store: &MappedChunks,
    ) -> Result<Appended> {
        if t < limits.min_valid_t {
            return Ok(Appended::Rejected(RejectReason::TooOld));
        }
        let max_t = self.open.newest_t();
        if t > max_t {
            self.open.push(t, v);
            if self.open.is_full() {
                self.seal(scratch, store, false)?;
            }
            return Ok(Appended::Stored);
        }
        if t == max_t {
            return Ok(match self.open.last() {
                Some((_, last)) if last.to_bits() == v.to_bits() => Appended::Duplicate,
                Some(_) => Appended::Rejected(RejectReason::DuplicateTimestamp),
                // The newest sample sits in a sealed chunk (just sealed): look it up.
                None => self
                    .check_existing(t, v, scratch, store)?
                    .unwrap_or(Appended::Rejected(RejectReason::OutOfOrder)),
            });
        }
        if t < max_t.saturating_sub(limits.ooo_window) {
            return Ok(Appended::Rejected(RejectReason::OutOfOrder));
        }
        self.insert_out_of_order(t, v, scratch, store)
    }

    /// Inserts an older sample: into the open buffer when it falls inside it, otherwise into the
    /// out-of-order side buffer, after checking for a duplicate anywhere.
    fn insert_out_of_order(
        &mut self,
        t: i64,
        v: f64,
        scratch: &mut Scratch,
        store: &MappedChunks,
    ) -> Result<Appended> {
        if let Some(found) = self.check_existing(t, v, scratch, store)? {
            return Ok(found);
        }
        let sealed_end = self.sealed.last().map_or(i64::MIN, SealedChunk::max_t);
        if t > sealed_end {
            self.open.insert(t, v, &mut scratch.ts, &mut scratch.vals);
            if self.open.is_full() {
                self.seal(scratch, store, false)?;
            }
        } else {
            self.ooo.insert(t, v);
        }
        Ok(Appended::Stored)
    }

    /// If a sample at `t` exists: `Some(Duplicate)` for the same value, `Some(Rejected)` otherwise.
    fn check_existing(
        &self,
        t: i64,
        v: f64,
        scratch: &mut Scratch,
        store: &MappedChunks,
    ) -> Result<Option<Appended>> {
        let same = |old: f64| {
            Some(if old.to_bits() == v.to_bits() {
                Appended::Duplicate
            } else {
                Appended::Rejected(RejectReason::DuplicateTimestamp)
            })
        };
        if let Some(old) = self.open.find(t) {
            return Ok(same(old));
        }
        if let Ok(i) = self.ooo.binary_search_by(|&(x, _)| x.cmp(&t)) {
            return Ok(same(self.ooo[i].1));
        }
        for c in self
            .sealed
            .iter()
            .filter(|c| c.min_t <= t && t <= c.max_t())
        {
            scratch.ts.clear();
            scratch.vals.clear();
            c.decode(store, &mut scratch.ts, &mut scratch.vals)?;
            if let Ok(i) = scratch.ts.binary_search(&t) {
                return Ok(same(scratch.vals[i]));
            }
        }
        Ok(None)
    }

    /// Compresses the open buffer, merging it into the last sealed chunk while that is small.
    /// With `to_file` the result goes to the chunk files even when it is not full (the series
    /// went idle: its last chunk is unlikely to grow again, and if it does, the next seal
    /// reads it back from the file).
    fn seal(&mut self, scratch: &mut Scratch, store: &MappedChunks, to_file: bool) -> Result<()> {
        if self.open.is_empty() {
            return Ok(());
        }
        scratch.ts.clear();
        scratch.vals.clear();
        let merge = self
            .sealed
            .last()
            .is_some_and(|c| u32::from(c.count) < SEALED_TARGET);
        if merge {
            if let Some(last) = self.sealed.last() {
                last.decode(store, &mut scratch.ts, &mut scratch.vals)?;
            }
        }
        self.open.drain_into(&mut scratch.ts, &mut scratch.vals);
        // The buffer grows again from 64 bytes (three steps to its 256-byte cap) instead of
        // keeping the full size: series are spread over all points of their sealing cycle, so
        // the average buffer holds ~175 bytes instead of 256 (measured: 22.9 MB of open
        // buffers for 87,520 active series kept at full size). Costs three small allocations
        // per 64 samples.
        self.open.release();
        scratch.bytes.clear();
        // The whole layout search (decimal bases, integer transforms, timestamp layouts) was
        // most of sealing's cost, and head chunks are re-encoded with it when they go into a
        // block anyway. So a chunk starts from the layouts of the one it replaces, or of the
        // series' last fully planned chunk, and the search runs for a series' first full
        // chunk and when a full chunk comes out over 25 % larger than that one.
        let full = scratch.ts.len() >= SEALED_TARGET as usize;
        let hint = if full && self.layout.is_none() {
            None
        } else if merge {
            match self.sealed.last() {
                Some(SealedChunk {
                    data: ChunkBytes::Heap(b),
                    ..
                }) => Some(LayoutHint::of(b)),
                _ => None,
            }
        } else {
            self.layout.map(|(h, _)| h)
        };
        // A chunk short of the target is re-encoded when the next samples are sealed into
        // it (or when it goes into a block), so it skips the outlier search: that was a third
        // of the integer planning at sealing (the 64-sample half of each 128-sample chunk).
        match hint {
            _ if !full => scratch.encoder.encode_interim_hinted(
                &mut scratch.bytes,
                &scratch.ts,
                &scratch.vals,
                hint,
            ),
            Some(h) => scratch.encoder.encode_chunk_hinted(
                &mut scratch.bytes,
                &scratch.ts,
                &scratch.vals,
                h,
            ),
            None => scratch
                .encoder
                .encode_chunk(&mut scratch.bytes, &scratch.ts, &scratch.vals),
        }
        if full {
            let outgrown = hint.is_some()
                && self
                    .layout
                    .is_some_and(|(_, planned)| 4 * scratch.bytes.len() > 5 * planned as usize);
            if outgrown {
                scratch.bytes.clear();
                scratch
                    .encoder
                    .encode_chunk(&mut scratch.bytes, &scratch.ts, &scratch.vals);
            }
            if hint.is_none() || outgrown {
                self.layout = Some((LayoutHint::of(&scratch.bytes), scratch.bytes.len() as u32));
            }
        }
        let chunk = SealedChunk::new(&scratch.ts, &scratch.bytes, store, to_file);
        if merge {
            if let Some(last) = self.sealed.last_mut() {
                *last = chunk;
            }
        } else {
            let at = self.sealed.len();
            self.sealed = with_inserted(std::mem::take(&mut self.sealed), at, chunk);
        }
        Ok(())
    }

    /// Appends this series' samples with `mint <= t <= maxt` to `ts`/`vals` in time order.
    pub(crate) fn read(
        &self,
        mint: i64,
        maxt: i64,
        ts: &mut Vec<i64>,
        vals: &mut Vec<f64>,
        scratch: &mut Scratch,
        store: &MappedChunks,
    ) -> Result<()> {
        let start = ts.len();
        for c in self
            .sealed
            .iter()
            .filter(|c| c.max_t() >= mint && c.min_t <= maxt)
        {
            if c.min_t >= mint && c.max_t() <= maxt {
                c.decode(store, ts, vals)?;
            } else {
                scratch.ts.clear();
                scratch.vals.clear();
                c.decode(store, &mut scratch.ts, &mut scratch.vals)?;
                push_range(&scratch.ts, &scratch.vals, mint, maxt, ts, vals);
            }
        }
        self.open.read_range(mint, maxt, ts, vals);
        let in_range = self.ooo.iter().filter(|(t, _)| *t >= mint && *t <= maxt);
        if in_range.clone().next().is_some() {
            merge_sorted(ts, vals, start, in_range.copied(), scratch);
        }
        Ok(())
    }

    /// Drops every sample older than `t`. Returns true if the series is now empty.
    pub(crate) fn truncate_before(
        &mut self,
        t: i64,
        scratch: &mut Scratch,
        store: &MappedChunks,
    ) -> Result<bool> {
        if self.sealed.iter().any(|c| c.max_t() < t) {
            let mut kept = std::mem::take(&mut self.sealed).into_vec();
            kept.retain(|c| c.max_t() >= t);
            self.sealed = kept.into_boxed_slice();
        }
        // A chunk of unknown span may still be here although it ends before `t`: such chunks
        // are dropped once decoded, and the next one is looked at.
        while let Some(first) = self.sealed.first_mut() {
            if first.min_t >= t {
                break;
            }
            scratch.ts.clear();
            scratch.vals.clear();
            first.decode(store, &mut scratch.ts, &mut scratch.vals)?;
            let keep = scratch.ts.partition_point(|&x| x < t);
            if keep < scratch.ts.len() {
                scratch.bytes.clear();
                scratch.encoder.encode_chunk(
                    &mut scratch.bytes,
                    &scratch.ts[keep..],
                    &scratch.vals[keep..],
                );
                let on_heap = matches!(first.data, ChunkBytes::Heap(_));
                *first = SealedChunk::new(&scratch.ts[keep..], &scratch.bytes, store, !on_heap);
                break;
            }
            let mut rest = std::mem::take(&mut self.sealed).into_vec();
            rest.remove(0);
            self.sealed = rest.into_boxed_slice();
        }
        self.open
            .truncate_before(t, &mut scratch.ts, &mut scratch.vals);
        self.ooo.drop_before(t);
        Ok(self.is_empty())
    }

    /// Approximate heap bytes held by this series' samples (for head statistics).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.open.capacity()
            + self
                .sealed
                .iter()
                .map(|c| c.heap_bytes() + std::mem::size_of::<SealedChunk>())
                .sum::<usize>()
            + self.ooo.len() * 16
    }

    /// Compresses the open buffer and frees it, and moves a last chunk still on the heap to
    /// the chunk files (a series that stopped receiving samples keeps no sample bytes on the
    /// heap). Returns true if anything was freed.
    pub(crate) fn release_buffers(
        &mut self,
        scratch: &mut Scratch,
        store: &MappedChunks,
    ) -> Result<bool> {
        let mut freed = false;
        if !self.open.is_empty() {
            self.seal(scratch, store, true)?;
            freed = true;
        } else if let Some(last) = self.sealed.last_mut() {
            if let ChunkBytes::Heap(b) = &last.data {
                if let Some((data, len)) = write_mapped(store, b, last.max_t()) {
                    last.data = data;
                    last.mapped_len = len;
                    freed = true;
                }
            }
        }
        if self.open.capacity() > 0 {
            self.open.release();
            freed = true;
        }
        Ok(freed)
    }
}

/// `items` with `x` inserted at `at`, sized exactly: series hold their chunk lists as boxed
/// slices (16 bytes instead of a `Vec`'s 24, and no doubling slack); a list changes every
/// ~128 samples at most.
fn with_inserted<T>(items: Box<[T]>, at: usize, x: T) -> Box<[T]> {
    let mut v = items.into_vec();
    v.reserve_exact(1);
    v.insert(at, x);
    v.into_boxed_slice()
}

fn push_range(
    src_t: &[i64],
    src_v: &[f64],
    mint: i64,
    maxt: i64,
    ts: &mut Vec<i64>,
    vals: &mut Vec<f64>,
) {
    let a = src_t.partition_point(|&x| x < mint);
    let b = src_t.partition_point(|&x| x <= maxt);
    if a < b {
        ts.extend_from_slice(&src_t[a..b]);
        vals.extend_from_slice(&src_v[a..b]);
    }
}

/// Merges the sorted samples of `extra` into `ts[start..]`/`vals[start..]`, which is sorted;
/// on equal timestamps the existing sample wins.
fn merge_sorted(
    ts: &mut Vec<i64>,
    vals: &mut Vec<f64>,
    start: usize,
    extra: impl Iterator<Item = (i64, f64)>,
    scratch: &mut Scratch,
) {
    scratch.ts.clear();
    scratch.vals.clear();
    scratch.ts.extend_from_slice(&ts[start..]);
    scratch.vals.extend_from_slice(&vals[start..]);
    ts.truncate(start);
    vals.truncate(start);
    let mut i = 0;
    for (t, v) in extra {
        while i < scratch.ts.len() && scratch.ts[i] < t {
            ts.push(scratch.ts[i]);
            vals.push(scratch.vals[i]);
            i += 1;
        }
        if i < scratch.ts.len() && scratch.ts[i] == t {
            continue;
        }
        ts.push(t);
        vals.push(v);
    }
    ts.extend_from_slice(&scratch.ts[i..]);
    vals.extend_from_slice(&scratch.vals[i..]);
}
