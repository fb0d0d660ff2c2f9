//! A zero-copy protobuf reader: walks fields of one message, lending strings and sub-messages
//! as slices of the request body.

use super::error::OtlpError;

type Result<T> = std::result::Result<T, OtlpError>;

/// Protobuf wire types used by proto3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Varint,
    I64,
    Len,
    I32,
}

impl Wire {
    fn code(self) -> u8 {
        match self {
            Wire::Varint => 0,
            Wire::I64 => 1,
            Wire::Len => 2,
            Wire::I32 => 5,
        }
    }
}

/// Reads the fields of one message. `base` is the offset of `buf[0]` in the whole body, so
/// errors point into the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Offset of the next byte in the body.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    #[inline]
    pub(crate) fn field(&mut self) -> Result<Option<(u32, Wire, usize)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.offset();
        let key = self.varint("field key")?;
        let wire = match key & 7 {
            0 => Wire::Varint,
            1 => Wire::I64,
            2 => Wire::Len,
            5 => Wire::I32,
            _ => return Err(OtlpError::InvalidKey { offset: at, key }),
        };
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(OtlpError::InvalidKey { offset: at, key });
        }
        Ok(Some((number as u32, wire, at)))
    }

    #[inline]
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64> {
        // Keys, lengths of short strings and small ints are one byte.
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_slow(what),
        }
    }

    #[cold]
    fn varint_slow(&mut self, what: &'static str) -> Result<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(OtlpError::Truncated {
                    offset: self.offset(),
                    what,
                });
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(OtlpError::VarintTooLong {
            offset: self.offset() - 10,
        })
    }

    pub(crate) fn fixed64(&mut self, what: &'static str) -> Result<u64> {
        let Some(bytes) = self.buf.get(self.pos..self.pos + 8) else {
            return Err(OtlpError::Truncated {
                offset: self.offset(),
                what,
            });
        };
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(a))
    }

    fn fixed32(&mut self, what: &'static str) -> Result<u32> {
        let Some(bytes) = self.buf.get(self.pos..self.pos + 4) else {
            return Err(OtlpError::Truncated {
                offset: self.offset(),
                what,
            });
        };
        self.pos += 4;
        let mut a = [0u8; 4];
        a.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(a))
    }

    /// A length-delimited payload and the body offset of its first byte.
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<(&'a [u8], usize)> {
        let len = self.varint(what)?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.buf.len())
            .ok_or(OtlpError::Truncated {
                offset: self.base + start,
                what,
            })?;
        self.pos = end;
        Ok((&self.buf[start..end], self.base + start))
    }

    /// A sub-message as a new reader.
    pub(crate) fn message(&mut self, what: &'static str) -> Result<Reader<'a>> {
        let (b, at) = self.bytes(what)?;
        Ok(Reader::new(b, at))
    }

    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'a str> {
        let (b, at) = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| OtlpError::InvalidUtf8 { offset: at, what })
    }

    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64> {
        self.fixed64(what).map(f64::from_bits)
    }

    /// Skips a field's value.
    pub(crate) fn skip(&mut self, wire: Wire) -> Result<()> {
        match wire {
            Wire::Varint => self.varint("skipped varint").map(drop),
            Wire::I64 => self.fixed64("skipped fixed64").map(drop),
            Wire::I32 => self.fixed32("skipped fixed32").map(drop),
            Wire::Len => self.bytes("skipped field").map(drop),
        }
    }
}

/// Fails unless a known field has the expected wire type.
pub(crate) fn expect(wire: Wire, want: Wire, what: &'static str, at: usize) -> Result<()> {
    if wire == want {
        Ok(())
    } else {
        Err(OtlpError::WrongWireType {
            offset: at,
            what,
            wire_type: wire.code(),
        })
    }
}

/// Reads a repeated fixed64 / double field that may be packed (one `Len` field) or not (one
/// `I64` field per element), appending to `dst`.
pub(crate) fn repeated_fixed64(
    r: &mut Reader<'_>,
    wire: Wire,
    what: &'static str,
    at: usize,
    dst: &mut Vec<u64>,
) -> Result<()> {
    match wire {
        Wire::I64 => dst.push(r.fixed64(what)?),
        Wire::Len => {
            let (b, off) = r.bytes(what)?;
            if b.len() % 8 != 0 {
                return Err(OtlpError::Truncated {
                    offset: off + b.len() / 8 * 8,
                    what,
                });
            }
            dst.extend(b.chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            }));
        }
        other => {
            return Err(OtlpError::WrongWireType {
                offset: at,
                what,
                wire_type: other.code(),
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut r = Reader::new(
            &[
                0x96, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            0,
        );
        assert_eq!(r.varint("a"), Ok(150));
        assert_eq!(r.varint("b"), Ok(u64::MAX));
        assert_eq!(
            r.varint("c"),
            Err(OtlpError::Truncated {
                offset: 12,
                what: "c"
            })
        );
        let mut r = Reader::new(&[0xff; 11], 5);
        assert_eq!(r.varint("d"), Err(OtlpError::VarintTooLong { offset: 5 }));
    }

    #[test]
    fn keys_and_lengths() {
        // field 1, LEN, length 3 but only 2 bytes.
        let mut r = Reader::new(&[0x0a, 0x03, b'a', b'b'], 100);
        assert_eq!(r.field(), Ok(Some((1, Wire::Len, 100))));
        assert_eq!(
            r.str("name"),
            Err(OtlpError::Truncated {
                offset: 102,
                what: "name"
            })
        );
        // Wire type 3 (group start) is refused.
        let mut r = Reader::new(&[0x0b], 0);
        assert_eq!(
            r.field(),
            Err(OtlpError::InvalidKey {
                offset: 0,
                key: 0x0b
            })
        );
        // Field number 0 is refused.
        let mut r = Reader::new(&[0x02, 0x00], 0);
        assert!(matches!(r.field(), Err(OtlpError::InvalidKey { .. })));
        let mut r = Reader::new(&[0x0a, 0x02, 0xff, 0xfe], 0);
        r.field().unwrap();
        assert_eq!(
            r.str("s"),
            Err(OtlpError::InvalidUtf8 {
                offset: 2,
                what: "s"
            })
        );
    }
}
