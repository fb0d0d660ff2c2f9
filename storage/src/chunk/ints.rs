//! Integer streams: frame-of-reference bit packing with patched exceptions (PFOR).
//!
//! A stream holds `n` i64 values (`n` is known from context). Values are stored as
//! `x - base` in `width` bits; a few outliers (a counter reset, a missed scrape) are stored
//! separately so they do not widen every other value. All arithmetic wraps, so any i64
//! sequence round-trips.
//!
//! ```text
//! ┌─────────────────────┬──────────────┬───────────────────────────────┬─────────────────────┐
//! │ width <7 bit>       │ base         │ [n_exc <uvarint>, n_exc ×     │ packed              │
//! │ has_exc <1 bit, top>│ <varint>     │  (gap <uvarint>, v <varint>)] │ <ceil(n·width/8) B> │
//! └─────────────────────┴──────────────┴───────────────────────────────┴─────────────────────┘
//! ```

use super::bitpack::{pack, packed_len, unpack_add};
use super::varint::{put_uvarint, put_varint, uvarint_len, zigzag, Reader};
use crate::error::{Error, Result};

/// Most outliers a stream of `n` values may patch: 16, or one in 64 for long streams.
pub(crate) fn max_exceptions(n: usize) -> usize {
    (n / 64).max(16)
}

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

/// Chooses base, width and exceptions for `xs` in three linear passes.
///
/// Exceptions are the values farthest from a sample median `c`: a histogram of the bit
/// lengths of `|x - c|` prices every window `c ± 2^b` at once, and the cheapest one that
/// leaves at most [`max_exceptions`] outside is compared with plain frame of reference.
pub(crate) fn plan(xs: &[i64]) -> Plan {
    let n = xs.len();
    let full = plan_whole_range(xs);
    if n < 8 || full.width <= 1 {
        return full;
    }
    let c = sample_median(xs);
    let dist = |x: i64| {
        if x >= c {
            x.wrapping_sub(c) as u64
        } else {
            c.wrapping_sub(x) as u64
        }
    };
    // Four histograms, one per position mod 4, summed below: neighbouring values mostly fall
    // in the same bucket, and with a single histogram each increment waited for the one
    // before it (a store-to-load chain; this loop was a third of `plan`, perf).
    let mut hists = [[0u32; 65]; 4];
    let mut quads = xs.chunks_exact(4);
    for q in &mut quads {
        for (hist, &x) in hists.iter_mut().zip(q) {
            hist[64 - dist(x).leading_zeros() as usize] += 1;
        }
    }
    for &x in quads.remainder() {
        hists[0][64 - dist(x).leading_zeros() as usize] += 1;
    }
    // Outliers cost about as much as the full range needs, plus the index gap.
    let exc_bytes = u64::from(full.width + 1).div_ceil(7) + if n > 128 { 2 } else { 1 };
    let (mut inside, mut best_b, mut best_bits) = (0, 64, full.bits);
    for b in 0..65 {
        inside += hists.iter().map(|h| h[b] as usize).sum::<usize>();
        let outside = n - inside;
        if outside == 0 {
            // No window from here on leaves an exception, so none is a candidate.
            break;
        }
        if outside > max_exceptions(n) {
            continue;
        }
        let width = (b as u64 + 1).min(64);
        let bits = 24 + 8 * exc_bytes * outside as u64 + n as u64 * width;
        if bits < best_bits {
            (best_b, best_bits) = (b, bits);
        }
    }
    if best_b == 64 {
        return full;
    }
    // Exact frame of the values inside the chosen window.
    let inside = |x: i64| 64 - dist(x).leading_zeros() as usize <= best_b;
    let (wlo, whi, exc_sum) = xs.iter().fold((i64::MAX, i64::MIN, 0u64), |(l, h, e), &x| {
        if inside(x) {
            (l.min(x), h.max(x), e)
        } else {
            (l, h, e + 1)
        }
    });
    let windowed = plan_frame(n, wlo, whi, exc_sum, exc_bytes);
    if windowed.bits < full.bits {
        windowed
    } else {
        full
    }
}

/// [`plan`] when `wanted`, else a plan that no comparison of sizes picks (for codecs that
/// plan only the layout a hint names). With `frame_only` the plan is the values' whole range,
/// without the search for outliers (one pass instead of three, for interim chunks).
pub(crate) fn plan_if(wanted: bool, frame_only: bool, xs: &[i64]) -> Plan {
    if !wanted {
        plan_frame(0, 0, 0, 0, 0).with_bits(u64::MAX)
    } else if frame_only {
        plan_whole_range(xs)
    } else {
        plan(xs)
    }
}

/// Plain frame of reference over all of `xs` (no exceptions).
fn plan_whole_range(xs: &[i64]) -> Plan {
    if xs.is_empty() {
        return plan_frame(0, 0, 0, 0, 0);
    }
    let (lo, hi) = xs
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    plan_frame(xs.len(), lo, hi, 0, 0)
}

/// The cost of storing `n` values in the frame `[lo, hi]` with `exc` exceptions.
fn plan_frame(n: usize, lo: i64, hi: i64, exc: u64, exc_bytes: u64) -> Plan {
    let width = width_of(lo, hi);
    let exc_bits = if exc > 0 { 8 + 8 * exc * exc_bytes } else { 0 };
    let bits = 8 + 8 * uvarint_len(zigzag(lo)) as u64 + exc_bits + n as u64 * u64::from(width);
    Plan {
        lo,
        hi,
        width,
        bits,
    }
}

/// The median of up to 31 evenly spaced values: a cheap, outlier-proof centre.
fn sample_median(xs: &[i64]) -> i64 {
    let k = xs.len().min(31);
    let mut sample = [0i64; 31];
    for (i, s) in sample[..k].iter_mut().enumerate() {
        *s = xs[i * xs.len() / k];
    }
    *sample[..k].select_nth_unstable(k / 2).1
}

/// Appends `xs` as a stream laid out by `plan` (from [`plan`] on the same `xs`).
pub(crate) fn encode(dst: &mut Vec<u8>, xs: &[i64], plan: &Plan, scratch: &mut Vec<u64>) {
    let Plan { lo, hi, width, .. } = *plan;
    let is_exc = |x: i64| x < lo || x > hi;
    let n_exc = xs.iter().filter(|&&x| is_exc(x)).count();
    debug_assert!(
        n_exc <= max_exceptions(xs.len()),
        "BUG: plan left {n_exc} exceptions"
    );
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

/// A parsed, validated stream borrowing its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Stream<'a> {
    width: u32,
    base: i64,
    n_exc: usize,
    /// The exception list (already validated).
    exc: &'a [u8],
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
        let mut n_exc = 0;
        let exc_start = r.rest();
        if head & 0x80 != 0 {
            let count = r.uvarint("truncated exception count")?;
            if count == 0 || count > max_exceptions(n) as u64 || count > n as u64 {
                return Err(Error::ChunkDecode("bad exception count in int stream"));
            }
            n_exc = count as usize;
            let mut next = 0u64;
            for _ in 0..n_exc {
                let idx = next.saturating_add(r.uvarint("truncated exception index")?);
                if idx >= n as u64 {
                    return Err(Error::ChunkDecode(
                        "exception index past the end of the stream",
                    ));
                }
                r.varint("truncated exception value")?;
                next = idx + 1;
            }
        }
        let exc = &exc_start[..exc_start.len() - r.remaining()];
        let packed = r.bytes(packed_len(n, width), "truncated packed ints")?;
        Ok(Stream {
            width,
            base,
            n_exc,
            exc,
            packed,
        })
    }

    /// A cursor that decodes the stream front to back.
    pub(crate) fn decoder(&self) -> Decoder<'a> {
        let mut exc = Reader::new(self.exc);
        if self.n_exc > 0 {
            // The count was validated by `parse`; skip it.
            let _ = exc.uvarint("exception count");
        }
        let mut d = Decoder {
            s: self.clone(),
            pos: 0,
            exc,
            left: self.n_exc,
            next: None,
            next_from: 0,
        };
        d.advance();
        d
    }
}

/// Decodes a stream in consecutive pieces, patching exceptions as it goes.
#[derive(Debug)]
pub(crate) struct Decoder<'a> {
    s: Stream<'a>,
    pos: usize,
    exc: Reader<'a>,
    left: usize,
    /// The next exception: (index, value).
    next: Option<(usize, i64)>,
    next_from: usize,
}

impl Decoder<'_> {
    fn advance(&mut self) {
        self.next = None;
        if self.left == 0 {
            return;
        }
        self.left -= 1;
        // Validated by `Stream::parse`, so these reads succeed.
        let (Ok(gap), Ok(v)) = (
            self.exc.uvarint("exception index"),
            self.exc.varint("exception value"),
        ) else {
            return;
        };
        let idx = self.next_from + gap as usize;
        self.next = Some((idx, self.s.base.wrapping_add(v)));
        self.next_from = idx + 1;
    }

    /// Writes the next `out.len()` values. Every call but the last must decode a
    /// multiple of 8 values.
    pub(crate) fn next(&mut self, out: &mut [i64]) {
        unpack_add(self.s.packed, self.s.width, self.pos, self.s.base, out);
        let end = self.pos + out.len();
        while let Some((i, x)) = self.next.filter(|&(i, _)| i < end) {
            out[i - self.pos] = x;
            self.advance();
        }
        self.pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(xs: &[i64]) -> Vec<u8> {
        let p = plan(xs);
        let mut dst = Vec::new();
        encode(&mut dst, xs, &p, &mut Vec::new());
        let mut r = Reader::new(&dst);
        let s = Stream::parse(&mut r, xs.len()).unwrap();
        assert_eq!(r.remaining(), 0);
        let mut out = vec![0; xs.len()];
        s.decoder().next(&mut out);
        let mut pieces = vec![0; xs.len()];
        let mut d = s.decoder();
        for c in pieces.chunks_mut(16) {
            d.next(c);
        }
        assert_eq!(pieces, xs);
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
