//! Record encodings that the head writes into the WAL: new series (ref + labels) and samples.
//!
//! The WAL itself stores opaque bytes; these functions give those bytes a meaning. Every record
//! starts with a type byte. Samples records are the hot path (one per ingested batch), so they are
//! columnar and encoded into a caller-owned `dst` with no allocation per sample:
//!
//! ```text
//! series:  0x01 │ entry*                      (entries run to the end of the record)
//!          entry = ref uvarint │ n uvarint │ n × (name_len uvarint │ name │ value_len uvarint │ value)
//! samples: 0x02 │ n uvarint │ n × ref  (zigzag varint delta to the previous ref, first from 0)
//!                            │ n × ts   (zigzag varint delta to the previous ts, first from 0)
//!                            │ n × value (8 bytes, little-endian IEEE-754 bits)
//! ```
//!
//! Values are stored as raw bits, so NaN payloads (the stale marker) and -0.0 survive exactly.
//! Decoding never panics: malformed bytes give a [`DecodeError`] with the offset in the record.

use std::path::PathBuf;

use crate::error::Error;
use crate::labels::Labels;

/// Type byte of a series record.
pub const RECORD_SERIES: u8 = 1;
/// Type byte of a samples record.
pub const RECORD_SAMPLES: u8 = 2;

/// The smallest encoding of one sample (1-byte ref delta, 1-byte ts delta, 8-byte value); bounds
/// the sample count a record of a given length can claim, so a corrupt count cannot make the
/// decoder reserve gigabytes.
const MIN_SAMPLE_LEN: usize = 10;

/// Malformed record bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decode WAL record at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Byte offset inside the record where decoding failed.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl From<DecodeError> for Error {
    /// Becomes [`Error::Corruption`] with an empty path; [`replay`](super::replay) fills in the
    /// segment file and the record's offset when a callback returns it.
    fn from(e: DecodeError) -> Self {
        Error::Corruption {
            path: PathBuf::new(),
            offset: e.offset as u64,
            reason: format!("decode WAL record: {}", e.reason),
        }
    }
}

/// The kind of a record, from its type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// New series: refs and label sets.
    Series,
    /// Samples of known series.
    Samples,
}

/// Reads the type byte of `src`.
pub fn record_type(src: &[u8]) -> Result<RecordType, DecodeError> {
    match src.first() {
        Some(&RECORD_SERIES) => Ok(RecordType::Series),
        Some(&RECORD_SAMPLES) => Ok(RecordType::Samples),
        Some(_) => Err(DecodeError {
            offset: 0,
            reason: "unknown record type",
        }),
        None => Err(DecodeError {
            offset: 0,
            reason: "empty record",
        }),
    }
}

/// Appends a series record for `series` (ref, label set) to `dst`.
pub fn encode_series(dst: &mut Vec<u8>, series: &[(u32, &Labels)]) {
    begin_series(dst);
    for (series_ref, labels) in series {
        push_series(dst, *series_ref, labels.pairs());
    }
}

/// Starts a series record in `dst`; follow with [`push_series`] once per series. Lets the head
/// encode label pairs it borrows from a request without building [`Labels`] first.
pub fn begin_series(dst: &mut Vec<u8>) {
    dst.push(RECORD_SERIES);
}

/// Appends one series entry to a record started with [`begin_series`].
pub fn push_series<'a>(
    dst: &mut Vec<u8>,
    series_ref: u32,
    labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) {
    put_uvarint(dst, u64::from(series_ref));
    put_uvarint(dst, labels.len() as u64);
    for (name, value) in labels {
        put_uvarint(dst, name.len() as u64);
        dst.extend_from_slice(name.as_bytes());
        put_uvarint(dst, value.len() as u64);
        dst.extend_from_slice(value.as_bytes());
    }
}

/// Appends a samples record to `dst`: sample `i` is `(refs[i], ts[i], vals[i])`.
///
/// # Panics
/// If the three slices differ in length (a caller bug).
pub fn encode_samples(dst: &mut Vec<u8>, refs: &[u32], ts: &[i64], vals: &[f64]) {
    assert!(
        refs.len() == ts.len() && ts.len() == vals.len(),
        "BUG: encode_samples columns differ in length: {} refs, {} ts, {} values",
        refs.len(),
        ts.len(),
        vals.len()
    );
    // Worst case: type + count + 5-byte ref delta + 10-byte ts delta + 8-byte value per sample.
    dst.reserve(1 + 10 + refs.len() * 23);
    dst.push(RECORD_SAMPLES);
    put_uvarint(dst, refs.len() as u64);
    let mut prev = 0i64;
    for &r in refs {
        let r = i64::from(r);
        put_uvarint(dst, zigzag(r - prev));
        prev = r;
    }
    let mut prev = 0i64;
    for &t in ts {
        put_uvarint(dst, zigzag(t.wrapping_sub(prev)));
        prev = t;
    }
    for &v in vals {
        dst.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// One series of a decoded series record; the strings borrow from the record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry<'a> {
    /// The head's id for the series.
    pub series_ref: u32,
    /// Label pairs in the order they were encoded.
    pub labels: Vec<(&'a str, &'a str)>,
}

impl SeriesEntry<'_> {
    /// The entry's labels as a canonical [`Labels`] (allocates).
    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.labels.iter().copied())
    }
}

/// A decoded samples record. Reuse one across records with [`SamplesRecord::decode`] to keep
/// replay free of per-record allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplesRecord {
    /// Series ref of each sample.
    pub refs: Vec<u32>,
    /// Timestamp (ms) of each sample.
    pub ts: Vec<i64>,
    /// Value of each sample, bit-exact.
    pub vals: Vec<f64>,
}

impl SamplesRecord {
    /// Empties the columns, keeping their capacity.
    pub fn reset(&mut self) {
        self.refs.clear();
        self.ts.clear();
        self.vals.clear();
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// True when the record holds no samples.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Replaces the contents with the samples record `src` (type byte included).
    pub fn decode(&mut self, src: &[u8]) -> Result<(), DecodeError> {
        self.reset();
        if record_type(src)? != RecordType::Samples {
            return Err(DecodeError {
                offset: 0,
                reason: "not a samples record",
            });
        }
        let mut r = Reader { src, pos: 1 };
        let n = r.uvarint()?;
        if n > ((src.len() - r.pos) / MIN_SAMPLE_LEN) as u64 {
            return Err(r.err("sample count exceeds record length"));
        }
        let n = n as usize;
        self.refs.reserve(n);
        self.ts.reserve(n);
        self.vals.reserve(n);
        let mut prev = 0i64;
        for _ in 0..n {
            let at = r.pos;
            let v = prev.wrapping_add(unzigzag(r.uvarint()?));
            let series_ref = u32::try_from(v).map_err(|_| DecodeError {
                offset: at,
                reason: "series ref out of range",
            })?;
            self.refs.push(series_ref);
            prev = v;
        }
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(unzigzag(r.uvarint()?));
            self.ts.push(prev);
        }
        let vals = r.take(n * 8, "values truncated")?;
        self.vals.extend(vals.chunks_exact(8).map(|b| {
            let mut bits = [0u8; 8];
            bits.copy_from_slice(b);
            f64::from_bits(u64::from_le_bytes(bits))
        }));
        if r.pos != src.len() {
            return Err(r.err("trailing bytes after samples"));
        }
        Ok(())
    }
}

/// Decodes the series record `src` (type byte included), borrowing label strings from it.
pub fn decode_series(src: &[u8]) -> Result<Vec<SeriesEntry<'_>>, DecodeError> {
    if record_type(src)? != RecordType::Series {
        return Err(DecodeError {
            offset: 0,
            reason: "not a series record",
        });
    }
    let mut r = Reader { src, pos: 1 };
    let mut out = Vec::new();
    while r.pos < src.len() {
        let at = r.pos;
        let series_ref = u32::try_from(r.uvarint()?).map_err(|_| DecodeError {
            offset: at,
            reason: "series ref out of range",
        })?;
        let n = r.uvarint()?;
        // Each label needs at least two length bytes.
        if n > ((src.len() - r.pos) / 2) as u64 {
            return Err(r.err("label count exceeds record length"));
        }
        let mut labels = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name = r.str()?;
            let value = r.str()?;
            labels.push((name, value));
        }
        out.push(SeriesEntry { series_ref, labels });
    }
    Ok(out)
}

/// A decoded record of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedRecord<'a> {
    /// New series.
    Series(Vec<SeriesEntry<'a>>),
    /// Samples.
    Samples(SamplesRecord),
}

/// Decodes any record. Allocates a fresh [`SamplesRecord`]; the replay hot path should dispatch
/// on [`record_type`] and reuse one with [`SamplesRecord::decode`] instead.
pub fn decode_record(src: &[u8]) -> Result<DecodedRecord<'_>, DecodeError> {
    match record_type(src)? {
        RecordType::Series => decode_series(src).map(DecodedRecord::Series),
        RecordType::Samples => {
            let mut s = SamplesRecord::default();
            s.decode(src)?;
            Ok(DecodedRecord::Samples(s))
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as LEB128.
fn put_uvarint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// A bounds-checked cursor over record bytes.
struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason,
        }
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.src.get(self.pos) else {
                return Err(self.err("varint truncated"));
            };
            // The 10th byte may only carry the top bit of a u64.
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows u64"));
            }
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint overflows u64"))
    }

    fn take(&mut self, n: usize, reason: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.src.len())
            .ok_or(self.err(reason))?;
        let s = &self.src[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.uvarint()?;
        let at = self.pos;
        let len = usize::try_from(len).map_err(|_| self.err("string length out of range"))?;
        let bytes = self.take(len, "string truncated")?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            offset: at,
            reason: "label is not UTF-8",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[track_caller]
    fn check_samples(refs: &[u32], ts: &[i64], vals: &[f64], want_hex: &str) {
        let mut dst = b"prefix".to_vec();
        encode_samples(&mut dst, refs, ts, vals);
        assert_eq!(&dst[..6], b"prefix");
        assert_eq!(hex(&dst[6..]), want_hex);
        let mut got = SamplesRecord::default();
        got.decode(&dst[6..]).unwrap();
        assert_eq!(got.refs, refs);
        assert_eq!(got.ts, ts);
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got.vals), bits(vals));
    }

    #[test]
    fn samples_exact_bytes() {
        check_samples(&[], &[], &[], "0200");
        check_samples(
            &[1, 2],
            &[1000, 1015],
            &[1.0, -0.0],
            // type, n=2, ref deltas +1 +1, ts deltas +1000 (d00f) +15 (1e), then raw LE bits.
            "02020202d00f1e000000000000f03f0000000000000080",
        );
    }

    #[test]
    fn samples_extremes_round_trip() {
        let refs = [u32::MAX, 0, 5, u32::MAX, 3];
        let ts = [i64::MIN, i64::MAX, 0, -1, i64::MIN];
        let stale = f64::from_bits(crate::api::STALE_NAN_BITS);
        let vals = [
            stale,
            f64::from_bits(0x7ff8_dead_beef_0001),
            -0.0,
            f64::INFINITY,
            f64::MIN_POSITIVE,
        ];
        let mut dst = Vec::new();
        encode_samples(&mut dst, &refs, &ts, &vals);
        let got = match decode_record(&dst).unwrap() {
            DecodedRecord::Samples(s) => s,
            other => panic!("wrong kind {other:?}"),
        };
        assert_eq!(got.refs, refs);
        assert_eq!(got.ts, ts);
        for (g, w) in got.vals.iter().zip(vals) {
            assert_eq!(g.to_bits(), w.to_bits());
        }
    }

    #[test]
    fn samples_record_reuse_keeps_capacity() {
        let mut dst = Vec::new();
        let refs: Vec<u32> = (0..1000).collect();
        let ts: Vec<i64> = (0..1000).map(|i| 1_700_000_000_000 + i * 15).collect();
        let vals: Vec<f64> = (0..1000).map(|i| i as f64 * 0.5).collect();
        encode_samples(&mut dst, &refs, &ts, &vals);
        // Regular refs and timestamps cost one byte each.
        assert_eq!(dst.len(), 1 + 2 + 1000 + 6 + 999 + 8000);
        let mut rec = SamplesRecord::default();
        rec.decode(&dst).unwrap();
        let cap = rec.refs.capacity();
        let ptr = rec.refs.as_ptr();
        rec.decode(&dst).unwrap();
        assert_eq!(rec.refs.capacity(), cap);
        assert_eq!(rec.refs.as_ptr(), ptr);
        assert_eq!(rec.len(), 1000);
        assert_eq!(rec.ts[999], 1_700_000_000_000 + 999 * 15);
    }

    #[test]
    fn series_exact_bytes_and_round_trip() {
        let a = Labels::from_pairs([("a", "b")]);
        let b = Labels::from_pairs([("__name__", "flink_up"), ("job", "j1"), ("task", "ü")]);
        let mut dst = b"prefix".to_vec();
        encode_series(&mut dst, &[(7, &a)]);
        assert_eq!(hex(&dst[6..]), "01070101610162");
        dst.clear();
        encode_series(
            &mut dst,
            &[(7, &a), (u32::MAX, &b), (0, &Labels::default())],
        );
        let got = decode_series(&dst).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            SeriesEntry {
                series_ref: 7,
                labels: vec![("a", "b")]
            }
        );
        assert_eq!(got[1].series_ref, u32::MAX);
        assert_eq!(got[1].to_labels(), b);
        assert_eq!(
            got[2],
            SeriesEntry {
                series_ref: 0,
                labels: vec![]
            }
        );
        assert_eq!(decode_series(&[RECORD_SERIES]).unwrap(), vec![]);
    }

    #[test]
    fn bad_bytes_are_errors() {
        #[track_caller]
        fn bad(src: &[u8], offset: usize, reason: &str) {
            let e = decode_record(src).unwrap_err();
            assert_eq!((e.offset, e.reason), (offset, reason), "{src:?}");
        }
        bad(&[], 0, "empty record");
        bad(&[9], 0, "unknown record type");
        bad(&[2], 1, "varint truncated");
        bad(&[2, 100, 1], 2, "sample count exceeds record length");
        bad(&[2, 0, 0], 2, "trailing bytes after samples");
        // ref delta -1 from 0 is out of u32 range.
        bad(
            &[2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            2,
            "series ref out of range",
        );
        bad(
            &[2, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            5,
            "values truncated",
        );
        bad(
            &[
                2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
            ],
            10,
            "varint overflows u64",
        );
        bad(&[1, 1, 1, 5, b'a'], 4, "string truncated");
        bad(&[1, 1, 1, 1, 0xff, 0], 4, "label is not UTF-8");
        bad(&[1, 1, 100, 0], 3, "label count exceeds record length");
        bad(
            &[1, 0x80, 0x80, 0x80, 0x80, 0x10, 0],
            1,
            "series ref out of range",
        );
        let mut ok = Vec::new();
        encode_samples(&mut ok, &[1], &[2], &[3.0]);
        assert_eq!(
            decode_series(&ok).unwrap_err().reason,
            "not a series record"
        );
        let mut s = SamplesRecord::default();
        assert_eq!(s.decode(&[1]).unwrap_err().reason, "not a samples record");
    }

    #[test]
    fn decoding_any_prefix_or_mutation_never_panics() {
        let mut rec = Vec::new();
        encode_samples(&mut rec, &[1, 9, 4], &[10, 20, 5], &[1.5, f64::NAN, 0.0]);
        let mut series = Vec::new();
        encode_series(&mut series, &[(3, &Labels::from_pairs([("job", "x")]))]);
        for src in [rec, series] {
            for cut in 0..src.len() {
                let _ = decode_record(&src[..cut]);
            }
            for i in 0..src.len() {
                for bit in 0..8 {
                    let mut m = src.clone();
                    m[i] ^= 1 << bit;
                    let _ = decode_record(&m);
                }
            }
        }
    }

    use proptest::collection::vec as vec_of;
    use proptest::prelude::{any, prop_assert_eq, proptest};

    proptest! {
        #[test]
        fn samples_round_trip_any_input(
            cols in vec_of((any::<u32>(), any::<i64>(), any::<u64>()), 0..200)
        ) {
            let refs: Vec<u32> = cols.iter().map(|c| c.0).collect();
            let ts: Vec<i64> = cols.iter().map(|c| c.1).collect();
            let vals: Vec<f64> = cols.iter().map(|c| f64::from_bits(c.2)).collect();
            let mut dst = vec![0xee];
            encode_samples(&mut dst, &refs, &ts, &vals);
            let mut got = SamplesRecord::default();
            got.decode(&dst[1..]).unwrap();
            prop_assert_eq!(&got.refs, &refs);
            prop_assert_eq!(&got.ts, &ts);
            let bits: Vec<u64> = got.vals.iter().map(|v| v.to_bits()).collect();
            let want: Vec<u64> = cols.iter().map(|c| c.2).collect();
            prop_assert_eq!(bits, want);
        }

        #[test]
        fn series_round_trip_any_labels(
            entries in vec_of((any::<u32>(), vec_of((".{0,12}", ".{0,12}"), 0..6)), 0..20)
        ) {
            let mut dst = Vec::new();
            begin_series(&mut dst);
            for (r, labels) in &entries {
                push_series(&mut dst, *r, labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            }
            let got = decode_series(&dst).unwrap();
            prop_assert_eq!(got.len(), entries.len());
            for (g, (r, labels)) in got.iter().zip(&entries) {
                prop_assert_eq!(g.series_ref, *r);
                let want: Vec<(&str, &str)> =
                    labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                prop_assert_eq!(&g.labels, &want);
            }
        }
    }

    #[test]
    fn decode_error_converts_to_corruption() {
        let e: Error = DecodeError {
            offset: 4,
            reason: "varint truncated",
        }
        .into();
        assert_eq!(
            e.to_string(),
            r#"corrupt "" at offset 4: decode WAL record: varint truncated"#
        );
    }
}
