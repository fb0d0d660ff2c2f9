//! Protobuf wire-format primitives: a zero-copy field reader over a byte slice, and the
//! matching writers used by the encoder.
//!
//! The reader keeps absolute offsets into the whole request body, so every error names the
//! byte where decoding failed, even inside nested messages.

use crate::error::{Error, Result};

/// Wire type of a varint field (int32, int64, uint64, bool, enum).
pub const WIRE_VARINT: u8 = 0;
/// Wire type of a fixed 8-byte field (double, fixed64).
pub const WIRE_FIXED64: u8 = 1;
/// Wire type of a length-delimited field (string, bytes, embedded message).
pub const WIRE_LEN: u8 = 2;
/// Wire type of a fixed 4-byte field (float, fixed32).
pub const WIRE_FIXED32: u8 = 5;

/// One decoded field: its number, wire type, and where its payload starts.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Field number from the schema.
    pub num: u32,
    /// Wire type (`WIRE_*`).
    pub wire: u8,
    /// Offset of the field's tag, for error messages.
    pub at: usize,
}

/// A cursor over `buf[pos..end]`; offsets are absolute into `buf`.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    /// True when the bounded region is exhausted.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    #[inline]
    fn err<T>(at: usize, reason: &'static str) -> Result<T> {
        Err(Error::Protobuf { offset: at, reason })
    }

    /// Reads a base-128 varint of at most 10 bytes.
    #[inline]
    pub fn varint(&mut self) -> Result<u64> {
        // Fast path: tags and short lengths are single bytes.
        if self.pos < self.end {
            let b = self.buf[self.pos];
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            if self.pos >= self.end {
                return Self::err(start, "truncated varint");
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Self::err(start, "varint overflows 64 bits");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Self::err(start, "varint longer than 10 bytes");
            }
        }
    }

    /// Reads a field tag; `None` at the end of the region.
    #[inline]
    pub fn field(&mut self) -> Result<Option<Field>> {
        if self.is_empty() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let num = key >> 3;
        if num == 0 || num > u64::from(u32::MAX >> 3) {
            return Self::err(at, "invalid field number");
        }
        Ok(Some(Field {
            num: num as u32,
            wire: (key & 7) as u8,
            at,
        }))
    }

    /// Reads 8 little-endian bytes.
    #[inline]
    pub fn fixed64(&mut self) -> Result<u64> {
        match self.buf.get(self.pos..self.pos + 8) {
            Some(b) if self.pos + 8 <= self.end => {
                self.pos += 8;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(u64::from_le_bytes(a))
            }
            _ => Self::err(self.pos, "truncated fixed64"),
        }
    }

    /// Reads a length prefix and returns a reader bounded to the payload, advancing past it.
    #[inline]
    pub fn sub(&mut self) -> Result<Reader<'a>> {
        let at = self.pos;
        let len = self.varint()?;
        let avail = (self.end - self.pos) as u64;
        if len > avail {
            return Self::err(
                at,
                "length-delimited field runs past the end of its message",
            );
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(Reader {
            buf: self.buf,
            pos: start,
            end: self.pos,
        })
    }

    /// Reads a length-delimited payload as bytes.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let r = self.sub()?;
        Ok(r.remaining())
    }

    /// The unread bytes of the bounded region.
    #[inline]
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..self.end]
    }

    /// Bytes `start..end` (absolute offsets) of the underlying buffer.
    #[inline]
    pub fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        &self.buf[start..end]
    }

    /// Offset of the cursor relative to the start of `outer`'s unread bytes, for slicing
    /// a region read from `outer` (both share the same underlying buffer).
    #[inline]
    pub fn offset_from(&self, outer_start: usize) -> usize {
        self.pos - outer_start
    }

    /// Absolute position of the cursor.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Skips the payload of a field of wire type `f.wire`.
    pub fn skip(&mut self, f: Field) -> Result<()> {
        match f.wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.fixed64().map(drop),
            WIRE_LEN => self.sub().map(drop),
            WIRE_FIXED32 => {
                if self.end - self.pos < 4 {
                    return Self::err(self.pos, "truncated fixed32");
                }
                self.pos += 4;
                Ok(())
            }
            _ => Self::err(f.at, "unsupported wire type (groups or invalid)"),
        }
    }

    /// Checks that field `f` has the wire type its schema requires.
    #[inline]
    pub fn expect(f: Field, wire: u8) -> Result<()> {
        if f.wire == wire {
            Ok(())
        } else {
            Self::err(f.at, "field has the wrong wire type for its schema")
        }
    }
}

/// Appends `v` as a base-128 varint.
#[inline]
pub fn put_varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Bytes that `put_varint(v)` writes.
#[inline]
pub fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends a field tag.
#[inline]
pub fn put_tag(dst: &mut Vec<u8>, num: u32, wire: u8) {
    put_varint(dst, (u64::from(num) << 3) | u64::from(wire));
}

/// Appends a length-delimited field holding `payload`.
#[inline]
pub fn put_bytes(dst: &mut Vec<u8>, num: u32, payload: &[u8]) {
    put_tag(dst, num, WIRE_LEN);
    put_varint(dst, payload.len() as u64);
    dst.extend_from_slice(payload);
}

/// Size of a length-delimited field with a one-byte tag and `len` payload bytes.
#[inline]
pub fn len_field_size(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_len() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut dst = b"pre".to_vec();
            put_varint(&mut dst, v);
            assert_eq!(dst.len() - 3, varint_len(v), "len of {v}");
            let mut r = Reader::new(&dst);
            r.pos = 3;
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_empty());
        }
        let mut dst = Vec::new();
        put_varint(&mut dst, 300);
        assert_eq!(dst, [0xac, 0x02]);
    }

    #[test]
    fn varint_errors() {
        let long = [0xffu8; 11];
        assert!(matches!(
            Reader::new(&long).varint(),
            Err(Error::Protobuf { offset: 0, .. })
        ));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&overflow).varint().is_err());
        let truncated = [0x80u8, 0x80];
        assert!(Reader::new(&truncated).varint().is_err());
    }
}
