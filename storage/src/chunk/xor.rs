//! Gorilla XOR float compression, the fallback for values that are not short decimals.
//!
//! Each value is XORed with the previous one. The bit stream (MSB-first within bytes) is
//! the first value's 64 bits, then per value: `0` when equal to the previous; `10` and the
//! meaningful bits when they fit in the previous window of leading/trailing zeros; else
//! `11`, 5 bits of leading zeros (capped at 31), 6 bits of length (64 written as 0), bits.
//! Decoding is bit-serial, hence slow; the decimal path is preferred whenever it applies.

use crate::error::{Error, Result};

/// Appends bits MSB-first.
struct BitWriter<'a> {
    dst: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter<'_> {
    /// Writes the low `bits` bits of `v` (bits ≤ 64).
    fn write(&mut self, v: u64, bits: u32) {
        if bits == 0 {
            return;
        }
        let v = if bits == 64 {
            v
        } else {
            v & ((1u64 << bits) - 1)
        };
        let free = 64 - self.n;
        if bits <= free {
            self.acc |= if bits == 64 { v } else { v << (free - bits) };
            self.n += bits;
        } else {
            let spill = bits - free;
            self.acc |= v >> spill;
            self.dst.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = v << (64 - spill);
            self.n = spill;
        }
        if self.n == 64 {
            self.dst.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = 0;
            self.n = 0;
        }
    }

    fn finish(self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.dst.extend_from_slice(&self.acc.to_be_bytes()[..bytes]);
    }
}

/// Reads bits MSB-first; running past the end is an error.
struct BitReader<'a> {
    src: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    #[inline]
    fn read(&mut self, bits: u32) -> Result<u64> {
        if bits == 0 {
            return Ok(0);
        }
        let end = self.bit + bits as usize;
        if end > self.src.len() * 8 {
            return Err(Error::ChunkDecode("truncated xor value stream"));
        }
        let first = self.bit / 8;
        let skip = (self.bit % 8) as u32;
        let v = if skip + bits <= 64 && first + 8 <= self.src.len() {
            // One big-endian load holds all the bits (the common case: away from the end of
            // the stream, and every read but a 64-bit one at an odd offset).
            let mut word = [0u8; 8];
            word.copy_from_slice(&self.src[first..first + 8]);
            (u64::from_be_bytes(word) << skip) >> (64 - bits)
        } else {
            self.read_slow(first, end, bits)
        };
        self.bit = end;
        Ok(v)
    }

    /// Gathers the (at most 9) bytes covering bits `self.bit..end` into a u128 window.
    fn read_slow(&self, first: usize, end: usize, bits: u32) -> u64 {
        let last = (end - 1) / 8;
        let mut w = 0u128;
        for &b in &self.src[first..=last] {
            w = (w << 8) | u128::from(b);
        }
        let drop = (last + 1) * 8 - end;
        (w >> drop) as u64
            & if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            }
    }
}

/// Appends `src` (at least one value) as an XOR stream.
pub(crate) fn encode(dst: &mut Vec<u8>, src: &[f64]) {
    let mut w = BitWriter { dst, acc: 0, n: 0 };
    let Some(first) = src.first() else { return };
    let mut prev = first.to_bits();
    w.write(prev, 64);
    // (leading, trailing) zeros of the current window; None until the first full write.
    let mut window: Option<(u32, u32)> = None;
    for v in &src[1..] {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.write(0, 1);
            continue;
        }
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        match window {
            Some((plz, ptz)) if lz >= plz && tz >= ptz => {
                w.write(0b10, 2);
                w.write(x >> ptz, 64 - plz - ptz);
            }
            _ => {
                let sig = 64 - lz - tz;
                w.write(0b11, 2);
                w.write(u64::from(lz), 5);
                w.write(u64::from(sig & 63), 6);
                w.write(x >> tz, sig);
                window = Some((lz, tz));
            }
        }
    }
    w.finish();
}

/// Decodes `n` values, appending to `dst`; returns bytes consumed.
pub(crate) fn decode(src: &[u8], n: usize, dst: &mut Vec<f64>) -> Result<usize> {
    if n == 0 {
        return Ok(0);
    }
    // Every value costs at least one bit: refuse counts the input cannot hold before reserving.
    if n - 1 > src.len().saturating_mul(8) {
        return Err(Error::ChunkDecode(
            "xor value stream shorter than its count",
        ));
    }
    dst.reserve(n);
    let mut r = BitReader { src, bit: 0 };
    let mut prev = r.read(64)?;
    dst.push(f64::from_bits(prev));
    let (mut lz, mut tz) = (0u32, 0u32);
    let mut have_window = false;
    for _ in 1..n {
        if r.read(1)? == 1 {
            if r.read(1)? == 1 {
                lz = r.read(5)? as u32;
                let sig = match r.read(6)? as u32 {
                    0 => 64,
                    s => s,
                };
                if lz + sig > 64 {
                    return Err(Error::ChunkDecode("xor window wider than 64 bits"));
                }
                tz = 64 - lz - sig;
                have_window = true;
            } else if !have_window {
                return Err(Error::ChunkDecode(
                    "xor value reuses a window before one is set",
                ));
            }
            let sig = 64 - lz - tz;
            prev ^= r.read(sig)? << tz;
        }
        dst.push(f64::from_bits(prev));
    }
    Ok(r.bit.div_ceil(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_special_values() {
        let src = [
            1.0,
            1.0,
            f64::NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::MIN_POSITIVE / 3.0,
            1e300,
            -1.5,
        ];
        let mut b = Vec::new();
        encode(&mut b, &src);
        let mut out = Vec::new();
        assert_eq!(decode(&b, src.len(), &mut out).unwrap(), b.len());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(&src));
    }

    /// Gauges of every shape, long enough that reads happen both away from the end of the
    /// stream (one word load) and within its last bytes (the byte-wise path).
    #[test]
    fn round_trips_random_gauges_bit_for_bit() {
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for len in [1usize, 2, 3, 7, 8, 9, 64, 120, 265, 1000] {
            for shape in 0..4 {
                let mut v = 0.5f64;
                let src: Vec<f64> = (0..len)
                    .map(|_| {
                        let r = next();
                        match shape {
                            0 => f64::from_bits(r),
                            1 => {
                                v += (r % 1000) as f64 / 997.0 - 0.5;
                                v
                            }
                            2 => [1.0, 2.5, 2.5, -7.25][(r % 4) as usize],
                            _ => (r % 100_000) as f64 / 3.0,
                        }
                    })
                    .collect();
                let mut b = vec![0x55];
                encode(&mut b, &src);
                let mut out = vec![9.0];
                assert_eq!(decode(&b[1..], len, &mut out).unwrap(), b.len() - 1);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out[1..]), bits(&src), "len {len} shape {shape}");
            }
        }
    }

    #[test]
    fn pins_bytes_of_a_repeat_and_a_change() {
        let mut b = vec![0xaa];
        encode(&mut b, &[1.0, 1.0, 1.5]);
        // 1.0 = 0x3ff0…; the repeat is '0'; 1.5 ^ 1.0 = 0x0008_0000_0000_0000: lz 12, tz 51,
        // sig 1 → '11' 01100 000001 1. Bits: 0110_1100 0000_011(0) → 0x6c 0x06.
        assert_eq!(b, [0xaa, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x6c, 0x06]);
    }
}
