//! Byte-level pieces of the index file: magic, section table, varints and a bounds-checked
//! decoder. The layout is drawn in `docs/format/index.md`.

/// First four bytes of an index file.
pub(crate) const MAGIC: [u8; 4] = *b"EDIX";
/// Index format version written by this code when a chunk shares its timestamp column
/// (chunk metas carry a flag and a reference).
pub(crate) const VERSION: u8 = 2;
/// Index format version without shared timestamp columns, written when no chunk needs them.
pub(crate) const VERSION_PLAIN: u8 = 1;
/// Index format version with a table of label tails (the labels after the first that
/// several series share) at the start of the series section; chunk metas as in version 2.
pub(crate) const VERSION_TAILS: u8 = 3;
/// Magic, version byte, three zero bytes, base time (i64 LE), CRC32C of those 16 bytes.
pub(crate) const HEADER_LEN: usize = 20;

/// The sections, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Symbols = 0,
    Series = 1,
    SeriesOffsets = 2,
    LabelIndex = 3,
    Postings = 4,
}

pub(crate) const SECTIONS: [Section; 5] = [
    Section::Symbols,
    Section::Series,
    Section::SeriesOffsets,
    Section::LabelIndex,
    Section::Postings,
];

impl Section {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Section::Symbols => "symbols",
            Section::Series => "series",
            Section::SeriesOffsets => "series offsets",
            Section::LabelIndex => "label index",
            Section::Postings => "postings",
        }
    }
}

/// One table-of-contents entry: offset u64, length u64, CRC32C u32, all little-endian.
pub(crate) const TOC_ENTRY_LEN: usize = 20;
/// The table of contents: one entry per section, then the CRC32C of the entries.
pub(crate) const TOC_LEN: usize = SECTIONS.len() * TOC_ENTRY_LEN + 4;

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_uvarint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Appends `v` zig-zag encoded, so small negative numbers stay short.
#[inline]
pub(crate) fn put_varint(dst: &mut Vec<u8>, v: i64) {
    put_uvarint(dst, ((v << 1) ^ (v >> 63)) as u64);
}

/// A decoding failure: where (file offset) and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub(crate) offset: u64,
    pub(crate) reason: &'static str,
}

/// Reads varints and bytes from a slice, reporting failures at their file offset.
#[derive(Debug, Clone)]
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Self {
        Decoder { buf, pos: 0, base }
    }

    pub(crate) fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.base + self.pos as u64,
            reason,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        // One byte (label counts, most references and lengths) skips the loop, which lives
        // out of line so that this part inlines into the series decoders (the call was a
        // fifth of decoding a series' labels).
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.uvarint_long()
    }

    #[inline(never)]
    fn uvarint_long(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        Err(self.err("varint overflows 64 bits"))
    }

    #[inline]
    pub(crate) fn uvarint32(&mut self) -> Result<u32, DecodeError> {
        let at = self.pos;
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| DecodeError {
            offset: self.base + at as u64,
            reason: "value exceeds u32",
        })
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(self.err("length past end of section"));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

/// Reads a little-endian u32 at `at`; `None` when out of bounds.
#[inline]
pub(crate) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u64 at `at`; `None` when out of bounds.
#[inline]
pub(crate) fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_after_prefix() {
        let vals = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let mut dst = b"prefix".to_vec();
        for &v in &vals {
            put_uvarint(&mut dst, v);
        }
        assert_eq!(&dst[..6], b"prefix");
        assert_eq!(&dst[6..10], &[0x00, 0x01, 0x7f, 0x80]);
        let mut d = Decoder::new(&dst[6..], 6);
        for &v in &vals {
            assert_eq!(d.uvarint(), Ok(v));
        }
        assert!(d.is_empty());
        assert_eq!(
            d.uvarint(),
            Err(DecodeError {
                offset: dst.len() as u64,
                reason: "truncated varint"
            })
        );
    }

    #[test]
    fn zigzag_round_trip() {
        let mut dst = Vec::new();
        for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            dst.clear();
            put_varint(&mut dst, v);
            assert_eq!(Decoder::new(&dst, 0).varint(), Ok(v));
        }
        dst.clear();
        put_varint(&mut dst, -1);
        assert_eq!(dst, [1]);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let buf = [0xffu8; 11];
        assert_eq!(
            Decoder::new(&buf, 10).uvarint().map_err(|e| e.reason),
            Err("varint overflows 64 bits")
        );
        let big = [0x80, 0x80, 0x80, 0x80, 0x10];
        assert_eq!(
            Decoder::new(&big, 0).uvarint32().map_err(|e| e.offset),
            Err(0)
        );
    }
}
