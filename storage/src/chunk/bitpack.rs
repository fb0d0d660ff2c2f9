//! Fixed-width bit packing: `n` unsigned integers of `width` bits each (0..=64), packed
//! LSB-first into a little-endian byte stream with no per-value headers.
//!
//! Eight values of width `w` fill exactly `w` bytes, so the decoder works on groups of 8
//! whose bit offsets are compile-time constants (one instantiation per width). That keeps
//! the unpacking loop free of branches and bounds checks so LLVM can unroll and vectorise it.

/// Number of bytes that `n` values of `width` bits occupy.
pub(crate) fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(8)
}

/// Appends `src` packed at `width` bits per value. Bits above `width` are ignored.
pub(crate) fn pack(dst: &mut Vec<u8>, src: &[u64], width: u32) {
    if width == 0 {
        return;
    }
    let mask = mask(width);
    dst.reserve(packed_len(src.len(), width));
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &v in src {
        acc |= u128::from(v & mask) << bits;
        bits += width;
        if bits >= 64 {
            dst.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    let tail = bits.div_ceil(8) as usize;
    dst.extend_from_slice(&acc.to_le_bytes()[..tail]);
}

fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Writes `base + v` (wrapping) for the packed values `start..start + out.len()` into `out`.
///
/// `start` must be a multiple of 8 and `packed` must hold at least
/// `packed_len(start + out.len(), width)` bytes; callers check both when parsing.
pub(crate) fn unpack_add(packed: &[u8], width: u32, start: usize, base: i64, out: &mut [i64]) {
    debug_assert_eq!(
        start % 8,
        0,
        "BUG: unpack start {start} not a multiple of 8"
    );
    macro_rules! dispatch {
        ($($w:literal)*) => {
            match width {
                0 => out.fill(base),
                $($w => unpack_w::<$w>(packed, start, base, out),)*
                _ => unreachable!("BUG: bit width {width} > 64"),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
        33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64);
}

fn unpack_w<const W: usize>(packed: &[u8], start: usize, base: i64, out: &mut [i64]) {
    let packed = packed.get((start / 8) * W..).unwrap_or(&[]);
    let full = (out.len() / 8).min(packed.len() / W);
    let (head, rest) = out.split_at_mut(full * 8);
    for (g, o) in packed.chunks_exact(W).zip(head.chunks_exact_mut(8)) {
        let (Ok(g), Ok(o)) = (<&[u8; W]>::try_from(g), <&mut [i64; 8]>::try_from(o)) else {
            unreachable!("BUG: chunks_exact yielded a short chunk")
        };
        unpack_group::<W>(g, base, o);
    }
    // What is left is at most one group, possibly short in bytes: pad it with zero bytes.
    if !rest.is_empty() {
        let tail = packed.get(full * W..).unwrap_or(&[]);
        let take = tail.len().min(W);
        let mut g = [0u8; 64];
        g[..take].copy_from_slice(&tail[..take]);
        let Ok(gw) = <&[u8; W]>::try_from(&g[..W]) else {
            unreachable!("BUG: padded group shorter than its width")
        };
        let mut o = [0i64; 8];
        unpack_group::<W>(gw, base, &mut o);
        let n = rest.len().min(8);
        rest[..n].copy_from_slice(&o[..n]);
    }
}

/// Unpacks 8 values of `W` bits from exactly `W` bytes. All offsets are constants.
// Index loops on purpose: with constant bounds LLVM unrolls them into fixed loads.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn unpack_group<const W: usize>(g: &[u8; W], base: i64, out: &mut [i64; 8]) {
    let mask = mask(W as u32);
    for (k, o) in out.iter_mut().enumerate() {
        let bit = k * W;
        let first = bit / 8;
        let last = (bit + W - 1) / 8;
        let v = if last - first < 8 {
            let mut v = 0u64;
            for b in first..=last {
                v |= u64::from(g[b]) << ((b - first) * 8);
            }
            (v >> (bit % 8)) & mask
        } else {
            // Widths above 56 can straddle 9 bytes.
            let mut v = 0u128;
            for b in first..=last {
                v |= u128::from(g[b]) << ((b - first) * 8);
            }
            ((v >> (bit % 8)) as u64) & mask
        };
        *o = base.wrapping_add(v as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_layout_is_lsb_first() {
        let mut dst = vec![0xee];
        pack(&mut dst, &[1, 2, 3], 3);
        // 001 010 011 → bits 0..9 = 1 | 2<<3 | 3<<6 = 0b0_1101_0001 → [0xd1, 0x00]
        assert_eq!(dst, [0xee, 0xd1, 0x00]);
        assert_eq!(packed_len(3, 3), 2);
    }

    #[test]
    fn every_width_round_trips_at_every_length_and_start() {
        for width in 0..=64u32 {
            let m = mask(width);
            let src: Vec<u64> = (0..37u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32) & m)
                .collect();
            for n in [0, 1, 7, 8, 9, 16, 37] {
                let mut packed = Vec::new();
                pack(&mut packed, &src[..n], width);
                assert_eq!(packed.len(), packed_len(n, width));
                for start in (0..n).step_by(8) {
                    let mut out = vec![0i64; n - start];
                    unpack_add(&packed, width, start, -5, &mut out);
                    for (j, &v) in out.iter().enumerate() {
                        assert_eq!(
                            v,
                            (-5i64).wrapping_add(src[start + j] as i64),
                            "w={width} n={n} i={}",
                            start + j
                        );
                    }
                }
            }
        }
    }
}
