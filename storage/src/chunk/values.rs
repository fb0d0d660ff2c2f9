//! The value column: one mode byte, then the cheapest layout for this chunk's floats.
//!
//! - `CONST` (0x00): all values have the same bits; 8 bytes follow.
//! - `DECIMAL` (0x10 | transform | patches flag): short decimals as integers, see `decimal`.
//! - `XOR` (0x20): Gorilla XOR stream, see `xor`.
//! - `RAW` (0x30): 8 little-endian bytes per value; bounds the worst case.
//!
//! The count is not stored here: the chunk's timestamp column (or the caller) knows it.

use super::varint::Reader;
use super::{check_count, decimal, xor, Scratch};
use crate::error::{Error, Result};

const CONST: u8 = 0x00;
const DECIMAL: u8 = 0x10;
const XOR: u8 = 0x20;
const RAW: u8 = 0x30;
/// The bits of a decimal mode byte that name its integer transform.
const TRANSFORM_BITS: u8 = 0x07;

/// Above this many bits per value, the decimal layout is compared against XOR.
const DECIMAL_GOOD_ENOUGH_BITS: u64 = 16;

pub(crate) fn encode(dst: &mut Vec<u8>, src: &[f64], scratch: &mut Scratch) {
    if write_if_constant(dst, src) {
        return;
    }
    let n = src.len() as u64;
    let dec = decimal::plan(src, scratch);
    if let Some(p) = &dec {
        if p.bits <= DECIMAL_GOOD_ENOUGH_BITS * n {
            decimal::encode(dst, src, p, scratch, DECIMAL);
            return;
        }
    }
    let mut x = std::mem::take(&mut scratch.bytes);
    x.clear();
    x.push(XOR);
    xor::encode(&mut x, src);
    let raw_len = 1 + 8 * n;
    let dec_len = dec.as_ref().map_or(u64::MAX, |p| p.bits.div_ceil(8));
    match dec {
        Some(p) if dec_len < x.len() as u64 && dec_len < raw_len => {
            decimal::encode(dst, src, &p, scratch, DECIMAL);
        }
        _ if x.len() as u64 <= raw_len => dst.extend_from_slice(&x),
        _ => write_raw(dst, src),
    }
    scratch.bytes = x;
}

/// Writes the `CONST` layout if every value has the same bits (or `src` is empty, which writes
/// nothing); false otherwise.
fn write_if_constant(dst: &mut Vec<u8>, src: &[f64]) -> bool {
    let Some(first) = src.first() else {
        return true;
    };
    let b0 = first.to_bits();
    if !src.iter().all(|v| v.to_bits() == b0) {
        return false;
    }
    dst.push(CONST);
    dst.extend_from_slice(&b0.to_le_bytes());
    true
}

/// Writes the `RAW` layout: 8 little-endian bytes per value.
fn write_raw(dst: &mut Vec<u8>, src: &[f64]) {
    dst.push(RAW);
    for v in src {
        dst.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// The layout an earlier chunk of the same series chose, to try first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// Decimal at this divisor, with this integer transform.
    Decimal(decimal::ScaleCode, u8),
    /// Gorilla XOR (or raw, which XOR bounds well enough for a head chunk).
    Xor,
}

impl Hint {
    /// The hint a value column gives; `None` for constant columns (cheap to re-plan) and
    /// anything unreadable.
    pub(crate) fn of(column: &[u8]) -> Option<Hint> {
        match column {
            [mode, rest @ ..] if mode & 0xf0 == DECIMAL => {
                let transform = mode & TRANSFORM_BITS;
                if !matches!(transform, decimal::FOR | decimal::DELTA | decimal::DOD) {
                    return None;
                }
                decimal::ScaleCode::of(rest).map(|scale| Hint::Decimal(scale, transform))
            }
            [XOR | RAW, ..] => Some(Hint::Xor),
            _ => None,
        }
    }
}

/// [`encode`] trying `hint`'s layout first; falls back to the full plan when the values no
/// longer fit it (a value that needs more digits, a constant run).
pub(crate) fn encode_hinted(dst: &mut Vec<u8>, src: &[f64], scratch: &mut Scratch, hint: Hint) {
    if write_if_constant(dst, src) {
        return;
    }
    match hint {
        Hint::Decimal(scale, transform) => {
            match decimal::plan_at_scale(src, scale, transform, scratch) {
                Some(p) => decimal::encode(dst, src, &p, scratch, DECIMAL),
                None => encode(dst, src, scratch),
            }
        }
        Hint::Xor => {
            let start = dst.len();
            dst.push(XOR);
            xor::encode(dst, src);
            if dst.len() - start > 1 + 8 * src.len() {
                dst.truncate(start);
                write_raw(dst, src);
            }
        }
    }
}

/// Decodes `n` values, appending to `dst`; returns bytes consumed. On error `dst` may have
/// grown; the public wrapper truncates it.
pub(crate) fn decode(src: &[u8], n: usize, dst: &mut Vec<f64>) -> Result<usize> {
    decode_from(src, n, 0, dst)
}

/// Like [`decode`], but appends only values `skip..n` (`skip <= n`): a query that needs the
/// end of a chunk leaves out the start without converting, storing and then removing it.
pub(crate) fn decode_from(src: &[u8], n: usize, skip: usize, dst: &mut Vec<f64>) -> Result<usize> {
    if n == 0 {
        return Ok(0);
    }
    check_count(n as u64)?;
    if skip > n {
        return Err(Error::ChunkDecode("values skipped past the chunk's count"));
    }
    let mut r = Reader::new(src);
    let mode = r.u8("truncated value mode")?;
    match mode & 0xf0 {
        CONST if mode == CONST => {
            let v = f64::from_bits(r.u64_le("truncated constant value")?);
            dst.extend(std::iter::repeat_n(v, n - skip));
        }
        DECIMAL => decimal::decode(&mut r, mode, n, skip, dst)?,
        XOR if mode == XOR => {
            // Each value depends on the one before: decode all, then drop the start.
            let old = dst.len();
            let used = xor::decode(r.rest(), n, dst)?;
            r.skip(used, "truncated xor value stream")?;
            dst.drain(old..old + skip);
        }
        RAW if mode == RAW => {
            let b = r.bytes(n * 8, "truncated raw values")?;
            dst.extend(b[skip * 8..].chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_bits(u64::from_le_bytes(a))
            }));
        }
        _ => return Err(Error::ChunkDecode("unknown value mode")),
    }
    Ok(r.pos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::stale_nan;

    /// Value shapes that make the encoder pick each layout: constant, decimal frame of
    /// reference, deltas and deltas of deltas (with and without patched values), XOR, raw;
    /// 600 values so the decimal decoder crosses its 256-value blocks.
    fn shapes() -> Vec<Vec<f64>> {
        let n = 600;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let counter: Vec<f64> = (0..n)
            .scan(0.0, |c, i| {
                *c += f64::from((i * 7 % 13) as u32);
                Some(*c)
            })
            .collect();
        let mut patched = counter.clone();
        patched[3] = stale_nan();
        patched[400] = f64::NAN;
        vec![
            vec![3.5; n],
            (0..n)
                .map(|i| f64::from((i * 37 % 101) as u32) / 4.0)
                .collect(),
            counter,
            patched,
            (0..n).map(|i| 1_000.0 + (i * i) as f64).collect(),
            // Neighbours of 1e-300 a few ulps apart, in runs: no short decimal, cheap as XOR.
            (0..n)
                .map(|i| f64::from_bits(1e-300_f64.to_bits() + (i / 20 % 3) as u64))
                .collect(),
            (0..n).map(|_| f64::from_bits(noise() >> 2)).collect(),
        ]
    }

    #[test]
    fn skipped_values_are_left_out_in_every_layout() {
        let mut modes = Vec::new();
        for src in shapes() {
            let mut col = Vec::new();
            encode(&mut col, &src, &mut Scratch::default());
            modes.push(col[0]);
            let n = src.len();
            for skip in (0..=n).filter(|s| s % 37 < 3 || *s >= n - 2) {
                let mut dst = vec![-1.0];
                let used = decode_from(&col, n, skip, &mut dst).unwrap();
                assert_eq!(used, col.len(), "mode {:#x}, skip {skip}", col[0]);
                assert_eq!(dst.len(), 1 + n - skip);
                let got: Vec<u64> = dst[1..].iter().map(|v| v.to_bits()).collect();
                let want: Vec<u64> = src[skip..].iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "mode {:#x}, skip {skip}", col[0]);
            }
            assert!(decode_from(&col, n, n + 1, &mut Vec::new()).is_err());
        }
        let has = |m: u8| modes.contains(&m);
        assert!(has(CONST) && has(XOR) && has(RAW), "{modes:x?}");
        for transform in [decimal::FOR, decimal::DELTA, decimal::DOD] {
            assert!(has(DECIMAL | transform), "{transform} in {modes:x?}");
        }
        assert!(
            modes
                .iter()
                .any(|m| m & 0xf8 == DECIMAL | decimal::HAS_PATCHES),
            "{modes:x?}"
        );
    }
}
