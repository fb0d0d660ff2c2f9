//! A series' newest samples before they are compressed into a chunk, packed as they arrive.
//!
//! Every active series has one of these, so its size is the head's floor per series. Raw
//! `(i64, f64)` pairs cost 16 bytes a sample (512 bytes for a 32-sample buffer); packed, a
//! Flink scrape sample costs 3–5 bytes (integer counters and gauges) and at most 11 (float
//! gauges with jittered timestamps). The encoding only needs to be cheap to append and to
//! read back in order; the chunk codec does the real compression when the buffer is sealed.
//!
//! Per sample: the timestamp's delta-of-delta as a zig-zag varint (the first sample's time
//! itself), then one value token, a varint `x`: `x` even means the value is an integer and
//! `x >> 1` is the zig-zag difference from the previous integer value (0 when the previous
//! value was not an integer); `x == 1` means eight raw little-endian bytes of the `f64` follow.
//! Values round-trip bit for bit (NaN payloads, -0.0 and infinities take the raw form).

use std::ptr::NonNull;

use crate::chunk::varint::{unzigzag, zigzag};

/// Seal when the buffer holds this many samples.
pub(crate) const MAX_SAMPLES: u16 = 64;
/// Seal before the bytes could outgrow this capacity (so a float-heavy series keeps a
/// 256-byte buffer instead of doubling to 512).
const MAX_BYTES: usize = 256;
/// The first allocation: three steps to `MAX_BYTES` per sealing cycle instead of four from 32
/// bytes, for ~4 more bytes per series on average (a buffer passes 32 bytes after ~8 of its
/// 64 samples).
const MIN_BYTES: usize = 64;
/// Longest encoding of one sample: a 10-byte timestamp varint and a 9-byte raw value.
const MAX_SAMPLE_BYTES: usize = 19;

/// Integers up to this magnitude convert to and from `f64` exactly.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Packed samples in time order.
///
/// Every head series holds one inline, in the first cache line of its head entry together
/// with the series key (see `Entry`), so an append touches two lines: that one and the end of
/// the bytes. The fields are kept small for that: the bytes are a thin pointer whose capacity
/// is a `u16` here (a boxed slice would take 16 bytes), and `last_t` stays when the buffer is
/// emptied, so it is the series' newest in-order timestamp and the series needs no field of
/// its own for that.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct OpenBuffer {
    bytes: ThinBytes,
    /// Time of the newest sample ever pushed, also after `clear` and `release`
    /// (`i64::MIN` before the first).
    last_t: i64,
    last_delta: i64,
    last_v: f64,
    /// Bytes allocated at `bytes`: `MAX_BYTES` at most, more only while a rebuild re-packs
    /// an inserted sample (65 samples of 19 bytes at the very most, far below `u16::MAX`).
    cap: u16,
    /// Bytes of `bytes` in use.
    used: u16,
    len: u16,
}

/// A heap byte array that does not know its length: the owner keeps it (`OpenBuffer::cap`)
/// and passes it to every call. The buffer's `unsafe` is this type and the few `OpenBuffer`
/// methods that hand it `cap`.
struct ThinBytes(NonNull<u8>);

// SAFETY: `ThinBytes` owns its allocation exclusively (like a `Box<[u8]>`), and shared
// references only read it.
unsafe impl Send for ThinBytes {}
// SAFETY: as above; `&ThinBytes` gives no way to write.
unsafe impl Sync for ThinBytes {}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThinBytes({:p})", self.0)
    }
}

impl ThinBytes {
    /// No allocation (capacity 0).
    const EMPTY: ThinBytes = ThinBytes(NonNull::dangling());

    /// `cap` zeroed bytes (`cap > 0`).
    fn zeroed(cap: usize) -> ThinBytes {
        let boxed: Box<[u8]> = vec![0u8; cap].into_boxed_slice();
        let raw = Box::into_raw(boxed) as *mut u8;
        // A boxed slice's pointer is never null (it is dangling only for length 0).
        ThinBytes(NonNull::new(raw).unwrap_or(NonNull::dangling()))
    }

    /// SAFETY (for callers): `cap` is the capacity this was created with (0 for `EMPTY`).
    unsafe fn as_slice(&self, cap: usize) -> &[u8] {
        // SAFETY: `cap` bytes at the pointer are allocated and initialised (zeroed at
        // creation); a dangling pointer with length 0 is a valid empty slice.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), cap) }
    }

    /// SAFETY: as for [`as_slice`](Self::as_slice).
    unsafe fn as_mut_slice(&mut self, cap: usize) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), cap) }
    }

    /// Frees the bytes and leaves `EMPTY` behind.
    /// SAFETY: `cap` is the capacity this was created with.
    unsafe fn free(&mut self, cap: usize) {
        let ptr = std::mem::replace(self, ThinBytes::EMPTY).0;
        if cap > 0 {
            // SAFETY: the pointer came from `Box::<[u8]>::into_raw` of a slice of `cap` bytes
            // and was replaced by `EMPTY`, so it is freed once.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr.as_ptr(), cap)) });
        }
    }
}

fn as_int(v: f64) -> Option<i64> {
    // Two conversions and a compare (no `trunc` call, which is a libm call on baseline
    // x86-64). NaN converts to 0 and fails the compare; -0.0 would lose its sign.
    let i = v as i64;
    (i as f64 == v && i.unsigned_abs() <= EXACT_INT as u64 && v.to_bits() != NEG_ZERO_BITS)
        .then_some(i)
}

const NEG_ZERO_BITS: u64 = 0x8000_0000_0000_0000;

/// Writes `v` as a LEB128 varint at `buf[at..]`; returns the end. `buf` has room for 10 bytes
/// past `at` (callers size it for the longest sample).
#[inline]
fn put_varint_at(buf: &mut [u8; MAX_SAMPLE_BYTES], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 && at < MAX_SAMPLE_BYTES {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    if at < MAX_SAMPLE_BYTES {
        buf[at] = v as u8;
    }
    at + 1
}

/// Reads a LEB128 varint at `b[*pos..]`; `None` on a short or overlong one. (The chunk codec's
/// `varint::Reader` builds an error naming the field on failure; this buffer's bytes were all
/// written by `push`, so a plain `Option` serves and keeps the per-sample walk short.)
#[inline]
fn get_varint_at(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    *pos += 1;
    if first < 0x80 {
        return Some(u64::from(first));
    }
    let mut v = u64::from(first & 0x7f);
    for shift in (7..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

impl Default for OpenBuffer {
    fn default() -> Self {
        OpenBuffer {
            bytes: ThinBytes::EMPTY,
            last_t: i64::MIN,
            last_delta: 0,
            last_v: 0.0,
            cap: 0,
            used: 0,
            len: 0,
        }
    }
}

impl Drop for OpenBuffer {
    fn drop(&mut self) {
        // SAFETY: `cap` is always the capacity `bytes` was created with.
        unsafe { self.bytes.free(usize::from(self.cap)) }
    }
}

impl OpenBuffer {
    /// Starts loading the cache line the next sample is written to (see `Head::append`).
    #[inline]
    pub(crate) fn prefetch_tail(&self) {
        if self.cap > 0 {
            let tail = self.bytes.0.as_ptr().wrapping_add(usize::from(self.used));
            super::prefetch::prefetch_line(tail.cast_const());
        }
    }

    /// The newest timestamp ever pushed (`i64::MIN` if none), whether or not the buffer still
    /// holds it.
    #[inline]
    pub(crate) fn newest_t(&self) -> i64 {
        self.last_t
    }

    fn all_bytes(&self) -> &[u8] {
        // SAFETY: `cap` is always the capacity `bytes` was created with.
        unsafe { self.bytes.as_slice(usize::from(self.cap)) }
    }

    fn filled(&self) -> &[u8] {
        &self.all_bytes()[..usize::from(self.used)]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Bytes reserved on the heap.
    pub(crate) fn capacity(&self) -> usize {
        usize::from(self.cap)
    }

    /// The newest sample (`None` when empty).
    pub(crate) fn last(&self) -> Option<(i64, f64)> {
        (self.len > 0).then_some((self.last_t, self.last_v))
    }

    /// True once the buffer should be compressed into a chunk.
    pub(crate) fn is_full(&self) -> bool {
        self.len >= MAX_SAMPLES || usize::from(self.used) + MAX_SAMPLE_BYTES > MAX_BYTES
    }

    /// Appends a sample newer than every sample held.
    pub(crate) fn push(&mut self, t: i64, v: f64) {
        // Both fields are written into a stack buffer and copied once: one capacity check
        // per sample instead of one per byte.
        let mut tmp = [0u8; MAX_SAMPLE_BYTES];
        let mut n;
        if self.len == 0 {
            n = put_varint_at(&mut tmp, 0, zigzag(t));
            self.last_delta = 0;
        } else {
            let delta = t.wrapping_sub(self.last_t);
            n = put_varint_at(&mut tmp, 0, zigzag(delta.wrapping_sub(self.last_delta)));
            self.last_delta = delta;
        }
        let base = if self.len == 0 {
            0
        } else {
            as_int(self.last_v).unwrap_or(0)
        };
        match as_int(v) {
            Some(i) => n = put_varint_at(&mut tmp, n, zigzag(i.wrapping_sub(base)) << 1),
            None => {
                tmp[n] = 1;
                tmp[n + 1..n + 9].copy_from_slice(&v.to_bits().to_le_bytes());
                n += 9;
            }
        }
        let used = usize::from(self.used);
        let need = used + n;
        if need > usize::from(self.cap) {
            // Power-of-two steps from MIN_BYTES up to MAX_BYTES, which `is_full` keeps the
            // bytes under (a rebuild after an insertion may exceed it by one sample).
            let cap = need
                .next_power_of_two()
                .clamp(MIN_BYTES, MAX_BYTES.max(need));
            let mut grown = ThinBytes::zeroed(cap);
            // SAFETY: `grown` was just created with `cap` bytes; `self.cap` is the capacity
            // of `self.bytes`.
            unsafe {
                grown.as_mut_slice(cap)[..used].copy_from_slice(self.filled());
                self.bytes.free(usize::from(self.cap));
            }
            self.bytes = grown;
            self.cap = cap as u16;
        }
        // SAFETY: `cap` is the capacity of `bytes`, and `need <= cap`.
        let bytes = unsafe { self.bytes.as_mut_slice(usize::from(self.cap)) };
        bytes[used..need].copy_from_slice(&tmp[..n]);
        // A buffer holds at most MAX_SAMPLES (+1 while an insertion is rebuilt) samples of at
        // most MAX_SAMPLE_BYTES each: far below u16::MAX.
        self.used = need as u16;
        self.last_t = t;
        self.last_v = v;
        self.len += 1;
    }

    /// Visits every sample in time order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(i64, f64)) {
        let b = self.filled();
        let mut pos = 0;
        let (mut t, mut delta, mut v) = (0i64, 0i64, 0f64);
        for i in 0..self.len {
            // The bytes were written by `push`, so every read succeeds; a failed one could
            // only be a bug, and ends the walk instead of panicking.
            let Some(word) = get_varint_at(b, &mut pos) else {
                return;
            };
            if i == 0 {
                t = unzigzag(word);
            } else {
                delta = delta.wrapping_add(unzigzag(word));
                t = t.wrapping_add(delta);
            }
            let Some(token) = get_varint_at(b, &mut pos) else {
                return;
            };
            v = if token == 1 {
                let Some(raw) = b.get(pos..pos + 8) else {
                    return;
                };
                let mut le = [0u8; 8];
                le.copy_from_slice(raw);
                pos += 8;
                f64::from_bits(u64::from_le_bytes(le))
            } else {
                let base = if i == 0 { 0 } else { as_int(v).unwrap_or(0) };
                base.wrapping_add(unzigzag(token >> 1)) as f64
            };
            f(t, v);
        }
    }

    /// Oldest timestamp (`None` when empty).
    pub(crate) fn first_t(&self) -> Option<i64> {
        (self.len > 0)
            .then(|| get_varint_at(self.filled(), &mut 0).map(unzigzag))
            .flatten()
    }

    /// The value stored at `t`, if any.
    pub(crate) fn find(&self, t: i64) -> Option<f64> {
        let mut found = None;
        self.for_each(|x, v| {
            if x == t {
                found = Some(v);
            }
        });
        found
    }

    /// Appends the samples with `mint <= t <= maxt` to `ts`/`vals`.
    pub(crate) fn read_range(&self, mint: i64, maxt: i64, ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
        self.for_each(|t, v| {
            if t >= mint && t <= maxt {
                ts.push(t);
                vals.push(v);
            }
        });
    }

    /// Appends every sample to `ts`/`vals` and empties the buffer (keeping its capacity).
    pub(crate) fn drain_into(&mut self, ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
        self.read_range(i64::MIN, i64::MAX, ts, vals);
        self.clear();
    }

    /// Empties the buffer, keeping its capacity and the newest timestamp.
    pub(crate) fn clear(&mut self) {
        self.used = 0;
        self.len = 0;
    }

    /// Frees the heap bytes (the buffer must be empty to keep its samples); keeps the newest
    /// timestamp.
    pub(crate) fn release(&mut self) {
        debug_assert!(self.is_empty());
        // SAFETY: `cap` is the capacity of `bytes`.
        unsafe { self.bytes.free(usize::from(self.cap)) };
        self.cap = 0;
        self.used = 0;
        self.len = 0;
        self.last_delta = 0;
        self.last_v = 0.0;
    }

    /// Rebuilds the buffer from `ts`/`vals` (sorted), e.g. after an insertion or truncation.
    fn rebuild(&mut self, ts: &[i64], vals: &[f64]) {
        self.clear();
        for (&t, &v) in ts.iter().zip(vals) {
            self.push(t, v);
        }
    }

    /// Inserts an older sample at its place (the caller checked it is not a duplicate);
    /// `ts`/`vals` are scratch space.
    pub(crate) fn insert(&mut self, t: i64, v: f64, ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
        ts.clear();
        vals.clear();
        self.read_range(i64::MIN, i64::MAX, ts, vals);
        let i = ts.partition_point(|&x| x < t);
        ts.insert(i, t);
        vals.insert(i, v);
        self.rebuild(ts, vals);
    }

    /// Drops samples older than `t`; `ts`/`vals` are scratch space.
    pub(crate) fn truncate_before(&mut self, t: i64, ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
        if self.first_t().is_none_or(|first| first >= t) {
            return;
        }
        ts.clear();
        vals.clear();
        self.read_range(t, i64::MAX, ts, vals);
        self.rebuild(ts, vals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::stale_nan;

    fn contents(b: &OpenBuffer) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        b.for_each(|t, v| out.push((t, v.to_bits())));
        out
    }

    #[test]
    fn every_value_round_trips_bit_exact() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            EXACT_INT,
            -EXACT_INT,
            EXACT_INT * 2.0,
            0.1,
            -9.22e18,
            f64::NAN,
            stale_nan(),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            5e-324,
            12_345_678.0,
        ];
        let times = [i64::MIN, -5, 0, 7, 10_007, 20_003, i64::MAX / 2, i64::MAX];
        let mut b = OpenBuffer::default();
        let mut want = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            let t = times[0].wrapping_add(i as i64 * 1_000_003);
            b.push(t, v);
            want.push((t, v.to_bits()));
        }
        assert_eq!(contents(&b), want);
        // Extreme timestamp steps wrap in the deltas and still decode.
        let mut b = OpenBuffer::default();
        for &t in &times {
            b.push(t, 3.0);
        }
        assert_eq!(contents(&b).iter().map(|s| s.0).collect::<Vec<_>>(), times);
        assert_eq!(b.first_t(), Some(i64::MIN));
        assert_eq!(b.last(), Some((i64::MAX, 3.0)));
    }

    #[test]
    fn flink_scrapes_pack_small_and_seal_by_count_or_bytes() {
        let mut counter = OpenBuffer::default();
        let mut t = 1_700_000_000_000i64;
        let mut n = 0.0;
        while !counter.is_full() {
            t += 15_000 + (t % 7) - 3;
            n += 1234.0;
            counter.push(t, n);
        }
        assert_eq!(counter.len(), usize::from(MAX_SAMPLES));
        assert!(counter.capacity() <= 256, "{}", counter.capacity());
        let mut gauge = OpenBuffer::default();
        let mut g = 0.25f64;
        while !gauge.is_full() {
            t += 15_000 + (t % 7) - 3;
            g = g * 1.37 % 1.0;
            gauge.push(t, g);
        }
        assert!(gauge.len() < usize::from(MAX_SAMPLES));
        assert!(gauge.capacity() <= MAX_BYTES, "{}", gauge.capacity());
    }

    #[test]
    fn insert_find_truncate_and_drain() {
        let mut b = OpenBuffer::default();
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        for i in 0..10 {
            b.push(i * 10, i as f64);
        }
        b.insert(35, 0.5, &mut ts, &mut vals);
        assert_eq!(b.find(35), Some(0.5));
        assert_eq!(b.find(30), Some(3.0));
        assert_eq!(b.find(36), None);
        assert_eq!(b.len(), 11);
        b.truncate_before(31, &mut ts, &mut vals);
        assert_eq!(b.first_t(), Some(35));
        let (mut t2, mut v2) = (Vec::new(), Vec::new());
        b.read_range(40, 60, &mut t2, &mut v2);
        assert_eq!((t2, v2), (vec![40, 50, 60], vec![4.0, 5.0, 6.0]));
        let (mut t3, mut v3) = (Vec::new(), Vec::new());
        b.drain_into(&mut t3, &mut v3);
        assert_eq!(t3, vec![35, 40, 50, 60, 70, 80, 90]);
        assert!(b.is_empty());
        assert_eq!(b.first_t(), None);
        assert_eq!(b.last(), None);
        b.push(5, 1.0);
        assert_eq!(contents(&b), vec![(5, 1f64.to_bits())]);
    }
}
