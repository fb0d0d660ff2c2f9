//! Prometheus XOR ("Gorilla") chunks, as remote read's `STREAMED_XOR_CHUNKS` carries them.
//!
//! The layout is Prometheus's `tsdb/chunkenc/xor.go`, bit for bit, so a Prometheus client can
//! iterate our chunks with its own decoder:
//!
//! ```text
//! num_samples <u16 big-endian>
//! t0 <signed varint, zig-zag>        v0 <64 bits>
//! t1 - t0 <unsigned varint>          xor(v1)
//! dod(t2) xor(v2) … (bit-packed, most significant bit first)
//!
//! dod:  0 → '0' | '10' + 14 bits | '110' + 17 bits | '1110' + 20 bits | '1111' + 64 bits
//! xor:  same as previous → '0'
//!       '10' + meaningful bits, inside the previous leading/trailing window
//!       '11' + leading <5 bits> + meaningful length <6 bits, 64 as 0> + meaningful bits
//! ```
//!
//! Values are written by their bits, so NaNs and the stale marker survive exactly.

use thiserror::Error;

/// Prometheus cuts a head chunk at this many samples; remote read clients expect no more.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Why a chunk could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum XorError {
    /// The chunk is shorter than its 2-byte header.
    #[error("decode xor chunk: missing the 2-byte sample count header")]
    NoHeader,
    /// The bitstream ended before the announced number of samples.
    #[error("decode xor chunk: bitstream ends after {decoded} of {expected} samples")]
    Truncated {
        /// Samples decoded before the end.
        decoded: usize,
        /// Samples the header announced.
        expected: usize,
    },
    /// A varint in the stream is longer than 10 bytes.
    #[error("decode xor chunk: varint of sample {sample} is longer than 10 bytes")]
    BadVarint {
        /// Index of the sample.
        sample: usize,
    },
    /// A meaningful-bits window does not fit in 64 bits.
    #[error("decode xor chunk: value of sample {sample} has an invalid bit window")]
    BadWindow {
        /// Index of the sample.
        sample: usize,
    },
}

/// Appends bits most-significant first, with Prometheus's `bstream` byte layout: a whole byte
/// written while byte-aligned leaves a fresh zero byte open after it, so a chunk whose last write
/// was such a byte ends with one zero byte more than the bits need. We keep that byte so our
/// chunks are byte-identical to Prometheus's (the test against promtool's blocks checks it).
#[derive(Debug)]
struct BitWriter {
    buf: Vec<u8>,
    /// Unwritten low bits of the last byte.
    free: u32,
}

impl BitWriter {
    #[inline]
    fn bit(&mut self, one: bool) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        if one {
            if let Some(last) = self.buf.last_mut() {
                *last |= 1 << (self.free - 1);
            }
        }
        self.free -= 1;
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        if let Some(last) = self.buf.last_mut() {
            *last |= b >> (8 - self.free);
        }
        // The rest of `b` starts the next byte (nothing of it when `free` was 8).
        self.buf.push((u16::from(b) << self.free) as u8);
    }

    /// Writes the low `n` bits of `v` (n ≤ 64): whole bytes first, then single bits.
    #[inline]
    fn bits(&mut self, v: u64, mut n: u32) {
        if n == 0 {
            return;
        }
        let mut u = v << (64 - n);
        while n >= 8 {
            self.byte((u >> 56) as u8);
            u <<= 8;
            n -= 8;
        }
        while n > 0 {
            self.bit(u >> 63 == 1);
            u <<= 1;
            n -= 1;
        }
    }
}

/// Builds one XOR chunk; [`XorEncoder::finish`] returns its bytes.
#[derive(Debug)]
pub struct XorEncoder {
    w: BitWriter,
    num: u16,
    t: i64,
    t_delta: u64,
    v: u64,
    /// Leading zeros of the current window; 0xff before the first window is set.
    leading: u8,
    trailing: u8,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0, 0]);
        XorEncoder {
            w: BitWriter { buf, free: 0 },
            num: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Samples appended so far.
    pub fn len(&self) -> usize {
        usize::from(self.num)
    }

    /// True before the first append.
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// Appends a sample; timestamps must increase (the caller cuts chunks at
    /// [`MAX_SAMPLES_PER_CHUNK`], far below the u16 count limit).
    pub fn append(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        match self.num {
            0 => {
                let zz = ((t << 1) ^ (t >> 63)) as u64;
                self.varint_bytes(zz);
                self.w.bits(bits, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t) as u64;
                self.varint_bytes(delta);
                self.xor_value(bits);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t) as u64;
                let dod = delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.w.bit(false);
                } else if fits(dod, 14) {
                    self.w.bits(0b10, 2);
                    self.w.bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.w.bits(0b110, 3);
                    self.w.bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.w.bits(0b1110, 4);
                    self.w.bits(dod as u64, 20);
                } else {
                    self.w.bits(0b1111, 4);
                    self.w.bits(dod as u64, 64);
                }
                self.xor_value(bits);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = bits;
        self.num = self.num.saturating_add(1);
    }

    /// The chunk bytes: count header and bitstream.
    pub fn finish(mut self) -> Vec<u8> {
        self.w.buf[..2].copy_from_slice(&self.num.to_be_bytes());
        self.w.buf
    }

    fn varint_bytes(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.w.bits((v & 0x7f) | 0x80, 8);
            v >>= 7;
        }
        self.w.bits(v, 8);
    }

    fn xor_value(&mut self, bits: u64) {
        let delta = bits ^ self.v;
        if delta == 0 {
            self.w.bit(false);
            return;
        }
        self.w.bit(true);
        // The window's leading-zero count has 5 bits.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.bit(false);
            let n = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.bits(delta >> self.trailing, n);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.w.bit(true);
            self.w.bits(u64::from(leading), 5);
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            // 64 does not fit in 6 bits; it is written as 0.
            self.w.bits(u64::from(sig), 6);
            self.w.bits(delta >> trailing, sig);
        }
    }
}

/// Whether `dod` fits the `n`-bit bucket as Prometheus defines it: −(2ⁿ⁻¹−1) ..= 2ⁿ⁻¹.
#[inline]
fn fits(dod: i64, n: u32) -> bool {
    let half = 1i64 << (n - 1);
    -(half - 1) <= dod && dod <= half
}

/// Encodes `(timestamps, values)` as chunks of at most [`MAX_SAMPLES_PER_CHUNK`] samples:
/// `(min_time_ms, max_time_ms, bytes)` each.
pub fn encode_chunks(ts: &[i64], vs: &[f64]) -> Vec<(i64, i64, Vec<u8>)> {
    let n = ts.len().min(vs.len());
    let mut out = Vec::with_capacity(n.div_ceil(MAX_SAMPLES_PER_CHUNK));
    let mut start = 0;
    while start < n {
        let end = (start + MAX_SAMPLES_PER_CHUNK).min(n);
        let mut enc = XorEncoder::new();
        for i in start..end {
            enc.append(ts[i], vs[i]);
        }
        out.push((ts[start], ts[end - 1], enc.finish()));
        start = end;
    }
    out
}

/// Reads bits most-significant first.
#[derive(Debug)]
struct BitReader<'a> {
    buf: &'a [u8],
    /// Next bit, counted from the start of `buf`.
    pos: usize,
}

impl BitReader<'_> {
    fn bits(&mut self, n: u32) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            let byte = *self.buf.get(self.pos / 8)?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos += 1;
        }
        Some(v)
    }

    fn varint(&mut self) -> Option<Option<u64>> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.bits(8)?;
            v |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(Some(v));
            }
        }
        Some(None)
    }
}

/// Decodes a chunk to `(timestamp, value bits)` pairs (bits, so NaN payloads compare exactly).
/// Used by tests and by anyone checking what we send.
pub fn decode_chunk(data: &[u8]) -> Result<Vec<(i64, u64)>, XorError> {
    let header = data.get(..2).ok_or(XorError::NoHeader)?;
    let expected = usize::from(u16::from_be_bytes([header[0], header[1]]));
    let mut r = BitReader { buf: data, pos: 16 };
    let mut out = Vec::with_capacity(expected);
    let (mut t, mut v, mut t_delta) = (0i64, 0u64, 0u64);
    let (mut leading, mut trailing) = (0u32, 0u32);
    let truncated = |decoded| XorError::Truncated { decoded, expected };
    for i in 0..expected {
        match i {
            0 => {
                let zz = r
                    .varint()
                    .ok_or(truncated(i))?
                    .ok_or(XorError::BadVarint { sample: i })?;
                t = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
                v = r.bits(64).ok_or(truncated(i))?;
            }
            _ => {
                if i == 1 {
                    t_delta = r
                        .varint()
                        .ok_or(truncated(i))?
                        .ok_or(XorError::BadVarint { sample: i })?;
                } else {
                    let mut prefix = 0;
                    while prefix < 4 && r.bits(1).ok_or(truncated(i))? == 1 {
                        prefix += 1;
                    }
                    let width = [0, 14, 17, 20, 64][prefix];
                    let dod = if width == 0 {
                        0
                    } else {
                        let raw = r.bits(width).ok_or(truncated(i))?;
                        if width < 64 && raw > (1u64 << (width - 1)) {
                            raw as i64 - (1i64 << width)
                        } else {
                            raw as i64
                        }
                    };
                    t_delta = t_delta.wrapping_add(dod as u64);
                }
                t = t.wrapping_add(t_delta as i64);
                if r.bits(1).ok_or(truncated(i))? == 1 {
                    if r.bits(1).ok_or(truncated(i))? == 1 {
                        leading = r.bits(5).ok_or(truncated(i))? as u32;
                        let mut sig = r.bits(6).ok_or(truncated(i))? as u32;
                        if sig == 0 {
                            sig = 64;
                        }
                        trailing = 64u32
                            .checked_sub(leading + sig)
                            .ok_or(XorError::BadWindow { sample: i })?;
                    }
                    let sig = 64 - leading - trailing;
                    if sig == 0 {
                        return Err(XorError::BadWindow { sample: i });
                    }
                    let bits = r.bits(sig).ok_or(truncated(i))?;
                    v ^= bits << trailing;
                }
            }
        }
        out.push((t, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[(i64, f64)]) {
        let mut enc = XorEncoder::new();
        for &(t, v) in samples {
            enc.append(t, v);
        }
        let data = enc.finish();
        let got = decode_chunk(&data).unwrap();
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn known_bytes_of_a_two_sample_chunk() {
        // t0=1000 → zig-zag 2000 = varint d0 0f; v0=1.0 → 3ff0…; Δt=10 → 0a; v1 == v0 → bit 0.
        let mut enc = XorEncoder::new();
        enc.append(1000, 1.0);
        enc.append(1010, 1.0);
        assert_eq!(
            enc.finish(),
            [0, 2, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x0a, 0x00]
        );
        // A chunk ending on a whole byte keeps bstream's open zero byte, as Prometheus's does.
        let mut enc = XorEncoder::new();
        enc.append(1000, 1.0);
        assert_eq!(
            enc.finish(),
            [0, 1, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x00]
        );
    }

    #[test]
    fn every_dod_bucket_and_value_shape_round_trips() {
        let mut s = vec![
            (-5_000i64, 0.0f64),
            (0, 1.5),
            (15_000, 1.5),
            (30_000, -2.25),
        ];
        let mut t = 30_000i64;
        let mut delta = 15_000i64;
        // Bucket edges: 2^13, -(2^13-1), 2^16, 2^19 and beyond.
        for dod in [
            0i64,
            8192,
            -8191,
            8193,
            65_536,
            -65_535,
            524_288,
            524_289,
            1 << 40,
        ] {
            delta += dod;
            t += delta;
            s.push((t, t as f64 * 0.1));
        }
        s.push((t + 1, f64::NAN));
        s.push((t + 2, f64::from_bits(eddy_storage::api::STALE_NAN_BITS)));
        s.push((t + 3, f64::INFINITY));
        s.push((t + 4, f64::from_bits(1)));
        s.push((t + 5, -0.0));
        s.push((t + 6, f64::MIN));
        round_trip(&s);
    }

    #[test]
    fn chunks_are_cut_at_120_samples() {
        let ts: Vec<i64> = (0..250).map(|i| i * 1000).collect();
        let vs: Vec<f64> = (0..250).map(|i| (i % 7) as f64).collect();
        let chunks = encode_chunks(&ts, &vs);
        assert_eq!(
            chunks.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(),
            [(0, 119_000), (120_000, 239_000), (240_000, 249_000)]
        );
        let mut all = Vec::new();
        for (_, _, data) in &chunks {
            all.extend(decode_chunk(data).unwrap());
        }
        let want: Vec<(i64, u64)> = ts.iter().zip(&vs).map(|(&t, v)| (t, v.to_bits())).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn damaged_chunks_are_errors() {
        assert_eq!(decode_chunk(&[1]), Err(XorError::NoHeader));
        let mut enc = XorEncoder::new();
        for i in 0..10 {
            enc.append(i * 10, i as f64);
        }
        let data = enc.finish();
        assert!(matches!(
            decode_chunk(&data[..data.len() - 3]),
            Err(XorError::Truncated { expected: 10, .. })
        ));
    }
}
