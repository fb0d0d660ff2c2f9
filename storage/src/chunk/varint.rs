//! Byte-level helpers shared by the chunk codecs: LEB128 varints, zigzag, and a
//! bounds-checked reader that turns every short read into an error instead of a panic.

use crate::error::{Error, Result};

/// Appends `v` as an unsigned LEB128 varint (7 bits per byte, low groups first).
pub(crate) fn put_uvarint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Appends `v` zigzag-encoded as an unsigned varint.
pub(crate) fn put_varint(dst: &mut Vec<u8>, v: i64) {
    put_uvarint(dst, zigzag(v));
}

/// The number of bytes [`put_uvarint`] writes for `v`.
pub(crate) fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Maps small-magnitude signed values to small unsigned ones: 0, -1, 1, -2, … → 0, 1, 2, 3, …
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// A cursor over encoded bytes. Every read checks bounds; `what` names the field for the error.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a [u8]) -> Self {
        Reader { src, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.src.len() - self.pos
    }

    /// The unread rest of the input.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.src[self.pos..]
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        // Not `ok_or(Error::…)`: that builds and drops an `Error` on every byte read.
        let Some(&b) = self.src.get(self.pos) else {
            return Err(Error::ChunkDecode(what));
        };
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self, what: &'static str) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8(what)?;
            // The 10th byte may only hold the top bit of a u64.
            if i == 9 && b > 1 {
                return Err(Error::ChunkDecode(what));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Error::ChunkDecode(what))
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i64> {
        self.uvarint(what).map(unzigzag)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::ChunkDecode(what));
        }
        let b = &self.src[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub(crate) fn u64_le(&mut self, what: &'static str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips `n` bytes (already validated by the caller's length math).
    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.bytes(n, what).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trip_and_len() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b.len(), uvarint_len(v), "len of {v}");
            let mut r = Reader::new(&b);
            assert_eq!(r.uvarint("x").unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
    }

    #[test]
    fn zigzag_maps_small_magnitudes_to_small_codes() {
        let cases = [
            (0i64, 0u64),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ];
        for (v, z) in cases {
            assert_eq!(zigzag(v), z);
            assert_eq!(unzigzag(z), v);
        }
    }

    #[test]
    fn overlong_or_truncated_varints_are_errors() {
        assert!(Reader::new(&[0x80]).uvarint("x").is_err());
        assert!(Reader::new(&[0xff; 10]).uvarint("x").is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .uvarint("x")
                .is_err()
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
                .uvarint("x")
                .unwrap(),
            u64::MAX
        );
    }
}
