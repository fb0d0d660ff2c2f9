//! Integer streams: frame-of-reference bit packing with a few patched exceptions (PFOR).
//!
//! A stream holds `n` i64 values (`n` is known from context). Values are stored as
//! `x - base` in `width` bits; up to [`MAX_EXCEPTIONS`] outliers (a counter reset, a missed
//! scrape) are stored separately so they do not widen every other value. All arithmetic
//! wraps, so any i64 sequence round-trips.
//!
//! ```text
//! ┌───────────────────────────┬──────────────────┬─────────────────────────────┬─────────────────────┐
//! │ width <7 bit> exc? <1 bit>│ base <varint>    │ [n_exc <uvarint>, n_exc ×   │ packed              │
//! │                           │                  │  (gap <uvarint>, v <varint>)]│ <ceil(n·width/8) B> │
//! └───────────────────────────┴──────────────────┴─────────────────────────────┴─────────────────────┘
//! ```

use super::bitpack::{pack, packed_len, unpack_add};
use super::varint::{put_uvarint, put_varint, uvarint_len, zigzag, Reader};
use crate::error::{Error, Result};

/// Most outliers one stream may patch.
pub(crate) const MAX_EXCEPTIONS: usize = 16;

/// How a stream will be written: the frame and which values become exceptions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Smallest value stored in the frame.
    lo: i64,
    /// Largest value stored in the frame.
    hi: i64,
    width: u32,
    /// Estimated encoded size in bits, used to choose between codecs.
    pub(crate) bits: u64,
}

impl Plan {
    /// The same plan with a cost estimate that includes the caller's extra fields.
    pub(crate) fn with_bits(self, bits: u64) -> Self {
        Plan { bits, ..self }
    }
}

fn width_of(lo: i64, hi: i64) -> u32 {
    64 - (hi.wrapping_sub(lo) as u64).leading_zeros()
}

/// Bits one exception costs: index gap (estimated at 1 byte, 2 for long streams) and value.
fn exception_bits(x: i64, base: i64, n: usize) -> u64 {
    let gap = if n > 128 { 2 } else { 1 };
    8 * (gap + uvarint_len(zigzag(x.wrapping_sub(base))) as u64)
}

/// Chooses base, width and exceptions for `xs`. `scratch` is reused between calls.
pub(crate) fn plan(xs: &[i64], scratch: &mut Vec<i64>) -> Plan {
    let n = xs.len();
    if n == 0 {
        return Plan {
            lo: 0,
            hi: 0,
            width: 0,
            bits: 8,
        };
    }
    // Only the few smallest and largest values can become exceptions: partially sort them.
    let e = MAX_EXCEPTIONS.min(n / 4);
    scratch.clear();
    scratch.extend_from_slice(xs);
    if n > 2 * (e + 1) {
        scratch.select_nth_unstable(e);
        scratch[..=e].sort_unstable();
        let tail = &mut scratch[e + 1..];
        let k = tail.len() - e - 1;
        tail.select_nth_unstable(k);
        tail[k..].sort_unstable();
    } else {
        scratch.sort_unstable();
    }
    let s = &scratch[..];
    let header = |lo: i64| 8 + 8 * uvarint_len(zigzag(lo)) as u64;
    let mut best = Plan {
        lo: s[0],
        hi: s[n - 1],
        width: width_of(s[0], s[n - 1]),
        bits: 0,
    };
    best.bits = header(s[0]) + n as u64 * u64::from(best.width);
    for a in 0..=e {
        for b in 0..=(e - a) {
            if a + b == 0 {
                continue;
            }
            let (lo, hi) = (s[a], s[n - 1 - b]);
            let width = width_of(lo, hi);
            let exc: u64 = s[..a]
                .iter()
                .chain(&s[n - b..])
                .map(|&x| exception_bits(x, lo, n))
                .sum();
            let bits = header(lo) + 8 + exc + n as u64 * u64::from(width);
            if bits < best.bits {
                best = Plan {
                    lo,
                    hi,
                    width,
                    bits,
                };
            }
        }
    }
    best
}

/// Appends `xs` as a stream laid out by `plan` (from [`plan`] on the same `xs`).
pub(crate) fn encode(dst: &mut Vec<u8>, xs: &[i64], plan: &Plan, scratch: &mut Vec<u64>) {
    let Plan { lo, hi, width, .. } = *plan;
    let is_exc = |x: i64| x < lo || x > hi;
    let n_exc = xs.iter().filter(|&&x| is_exc(x)).count();
    debug_assert!(n_exc <= MAX_EXCEPTIONS, "BUG: plan left {n_exc} exceptions");
    dst.push(width as u8 | if n_exc > 0 { 0x80 } else { 0 });
    put_varint(dst, lo);
    if n_exc > 0 {
        put_uvarint(dst, n_exc as u64);
        let mut next = 0usize;
        for (i, &x) in xs.iter().enumerate().filter(|&(_, &x)| is_exc(x)) {
            put_uvarint(dst, (i - next) as u64);
            put_varint(dst, x.wrapping_sub(lo));
            next = i + 1;
        }
    }
    scratch.clear();
    scratch.extend(xs.iter().map(|&x| {
        if is_exc(x) {
            0
        } else {
            x.wrapping_sub(lo) as u64
        }
    }));
    pack(dst, scratch, width);
}

/// A parsed stream, borrowing its packed bytes. Exceptions are held inline (at most 16).
#[derive(Debug, Clone)]
pub(crate) struct Stream<'a> {
    width: u32,
    base: i64,
    n_exc: usize,
    exc: [(usize, i64); MAX_EXCEPTIONS],
    packed: &'a [u8],
}

impl<'a> Stream<'a> {
    /// Parses a stream of `n` values at the reader's position and advances past it.
    pub(crate) fn parse(r: &mut Reader<'a>, n: usize) -> Result<Self> {
        let head = r.u8("truncated int stream header")?;
        let width = u32::from(head & 0x7f);
        if width > 64 {
            return Err(Error::ChunkDecode("int stream bit width above 64"));
        }
        let base = r.varint("truncated int stream base")?;
        let mut s = Stream {
            width,
            base,
            n_exc: 0,
            exc: [(0, 0); MAX_EXCEPTIONS],
            packed: &[],
        };
        if head & 0x80 != 0 {
            let n_exc = r.uvarint("truncated exception count")?;
            if n_exc == 0 || n_exc > MAX_EXCEPTIONS as u64 || n_exc > n as u64 {
                return Err(Error::ChunkDecode("bad exception count in int stream"));
            }
            s.n_exc = n_exc as usize;
            let mut next = 0u64;
            for slot in &mut s.exc[..s.n_exc] {
                let idx = next.saturating_add(r.uvarint("truncated exception index")?);
                if idx >= n as u64 {
                    return Err(Error::ChunkDecode(
                        "exception index past the end of the stream",
                    ));
                }
                *slot = (
                    idx as usize,
                    base.wrapping_add(r.varint("truncated exception value")?),
                );
                next = idx + 1;
            }
        }
        s.packed = r.bytes(packed_len(n, width), "truncated packed ints")?;
        Ok(s)
    }

    /// Writes values `start..start + out.len()` into `out`, exceptions patched in.
    /// `start` must be a multiple of 8.
    pub(crate) fn decode(&self, start: usize, out: &mut [i64]) {
        unpack_add(self.packed, self.width, start, self.base, out);
        let end = start + out.len();
        for &(i, x) in &self.exc[..self.n_exc] {
            if (start..end).contains(&i) {
                out[i - start] = x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(xs: &[i64]) -> Vec<u8> {
        let p = plan(xs, &mut Vec::new());
        let mut dst = Vec::new();
        encode(&mut dst, xs, &p, &mut Vec::new());
        let mut r = Reader::new(&dst);
        let s = Stream::parse(&mut r, xs.len()).unwrap();
        assert_eq!(r.remaining(), 0);
        let mut out = vec![0; xs.len()];
        s.decode(0, &mut out);
        assert_eq!(out, xs);
        dst
    }

    #[test]
    fn constant_costs_no_packed_bits() {
        assert_eq!(round_trip(&[7; 100]), [0x00, 0x0e]);
    }

    #[test]
    fn outliers_become_exceptions() {
        let mut xs: Vec<i64> = (0..120).map(|i| 100 + (i % 4)).collect();
        xs[50] = -1_000_000;
        let b = round_trip(&xs);
        // width 2 with exceptions, base 100, one exception at index 50.
        assert_eq!(&b[..3], [0x82, 0xc8, 0x01]);
        // Count 1, index 50, value zigzag(-1_000_000 - 100) = 2_000_199 as a 3-byte varint.
        assert_eq!(&b[3..8], [1, 50, 0xc7, 0x8a, 0x7a]);
        assert_eq!(b.len(), 8 + 30);
    }

    #[test]
    fn extremes_round_trip() {
        round_trip(&[i64::MIN, i64::MAX, 0, -1, 1]);
        round_trip(&[i64::MIN; 3]);
        let xs: Vec<i64> = (0..100)
            .map(|i| if i % 2 == 0 { i64::MIN } else { i64::MAX })
            .collect();
        round_trip(&xs);
    }
}
