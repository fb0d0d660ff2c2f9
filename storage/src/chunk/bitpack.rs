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

/// Bytes one group may touch: up to 64 bytes of values plus a 16-byte load overrun.
const WINDOW: usize = 80;

fn unpack_w<const W: usize>(packed: &[u8], start: usize, base: i64, out: &mut [i64]) {
    let packed = packed.get((start / 8) * W..).unwrap_or(&[]);
    // Groups whose whole load window lies inside `packed` take the fast path.
    let fast = (out.len() / 8).min((packed.len().saturating_sub(WINDOW) / W) + 1);
    let fast = if packed.len() >= WINDOW { fast } else { 0 };
    let (head, rest) = out.split_at_mut(fast * 8);
    for (g, o) in head.chunks_exact_mut(8).enumerate() {
        let (Some(Ok(win)), Ok(o)) = (
            packed
                .get(g * W..g * W + WINDOW)
                .map(<&[u8; WINDOW]>::try_from),
            <&mut [i64; 8]>::try_from(o),
        ) else {
            unreachable!("BUG: fast unpack window out of bounds")
        };
        unpack_group::<W>(win, base, o);
    }
    // The last few groups (fewer than WINDOW + W bytes): copy them once into a zero-padded
    // buffer and unpack from there.
    if !rest.is_empty() {
        let tail = packed.get(fast * W..).unwrap_or(&[]);
        let mut buf = [0u8; 2 * WINDOW + 64];
        let take = tail.len().min(WINDOW + 64);
        buf[..take].copy_from_slice(&tail[..take]);
        for (g, o) in rest.chunks_mut(8).enumerate() {
            let Some(Ok(win)) = buf
                .get(g * W..g * W + WINDOW)
                .map(<&[u8; WINDOW]>::try_from)
            else {
                break; // only when `packed` is shorter than the caller promised
            };
            let mut group = [0i64; 8];
            unpack_group::<W>(win, base, &mut group);
            o.copy_from_slice(&group[..o.len()]);
        }
    }
}

/// Unpacks 8 values of `W` bits starting at the first byte of `win`. The loop has constant
/// bounds and, once unrolled, constant offsets: 8 unaligned loads, shifts and masks.
#[inline(always)]
fn unpack_group<const W: usize>(win: &[u8; WINDOW], base: i64, out: &mut [i64; 8]) {
    let mask = mask(W as u32);
    for (k, o) in out.iter_mut().enumerate() {
        let bit = k * W;
        let (byte, shift) = (bit / 8, bit % 8);
        let v = if W <= 56 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&win[byte..byte + 8]);
            (u64::from_le_bytes(b) >> shift) & mask
        } else {
            // Wider values can straddle 9 bytes.
            let mut b = [0u8; 16];
            b.copy_from_slice(&win[byte..byte + 16]);
            (u128::from_le_bytes(b) >> shift) as u64 & mask
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
