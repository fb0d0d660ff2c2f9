//! The remote_write encoder: `prometheus.WriteRequest` protobuf and snappy compression, for
//! tests, the benchmark generator and the import command.

use super::wire::{
    len_field_size, put_bytes, put_tag, put_varint, varint_len, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT,
};
use super::MetricMetadata;
use crate::error::{Error, Result};

/// Appends a `prometheus.WriteRequest` holding `series` to `dst`. Each series is its labels as
/// `(name, value)` pairs (written in the given order; empty strings are omitted as proto3 does)
/// and its `(timestamp_ms, value)` samples. Appending two requests yields one request with the
/// series of both, as protobuf concatenates repeated fields.
pub fn encode_write_request<L, N, V, S>(series: &[(L, S)], dst: &mut Vec<u8>)
where
    L: AsRef<[(N, V)]>,
    N: AsRef<str>,
    V: AsRef<str>,
    S: AsRef<[(i64, f64)]>,
{
    for (labels, samples) in series {
        let labels = labels.as_ref();
        let samples = samples.as_ref();
        let mut size = 0usize;
        for (n, v) in labels {
            size += len_field_size(label_size(n.as_ref(), v.as_ref()));
        }
        for &(ts, _) in samples {
            size += len_field_size(sample_size(ts));
        }
        put_tag(dst, 1, WIRE_LEN);
        put_varint(dst, size as u64);
        for (n, v) in labels {
            let (n, v) = (n.as_ref(), v.as_ref());
            put_tag(dst, 1, WIRE_LEN);
            put_varint(dst, label_size(n, v) as u64);
            put_str(dst, 1, n);
            put_str(dst, 2, v);
        }
        for &(ts, v) in samples {
            put_tag(dst, 2, WIRE_LEN);
            put_varint(dst, sample_size(ts) as u64);
            put_tag(dst, 1, WIRE_FIXED64);
            dst.extend_from_slice(&v.to_bits().to_le_bytes());
            put_tag(dst, 2, WIRE_VARINT);
            put_varint(dst, ts as u64);
        }
    }
}

/// Appends `meta` as `WriteRequest.metadata` entries (field 3) to `dst`; valid after, before or
/// between [`encode_write_request`] output.
pub fn encode_metadata(meta: &[MetricMetadata<'_>], dst: &mut Vec<u8>) {
    for m in meta {
        let ty = m.metric_type.to_proto();
        let mut size = 0usize;
        if ty != 0 {
            size += 1 + varint_len(ty);
        }
        for s in [&m.family, &m.help, &m.unit] {
            if !s.is_empty() {
                size += len_field_size(s.len());
            }
        }
        put_tag(dst, 3, WIRE_LEN);
        put_varint(dst, size as u64);
        if ty != 0 {
            put_tag(dst, 1, WIRE_VARINT);
            put_varint(dst, ty);
        }
        put_str(dst, 2, &m.family);
        put_str(dst, 4, &m.help);
        put_str(dst, 5, &m.unit);
    }
}

/// Appends the snappy raw-block compression of `src` to `dst`.
pub fn compress_snappy(src: &[u8], dst: &mut Vec<u8>) -> Result<()> {
    let start = dst.len();
    dst.resize(start + snap::raw::max_compress_len(src.len()), 0);
    match snap::raw::Encoder::new().compress(src, &mut dst[start..]) {
        Ok(n) => {
            dst.truncate(start + n);
            Ok(())
        }
        Err(source) => {
            dst.truncate(start);
            Err(Error::Snappy { source })
        }
    }
}

fn put_str(dst: &mut Vec<u8>, num: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(dst, num, s.as_bytes());
    }
}

fn label_size(n: &str, v: &str) -> usize {
    let opt = |s: &str| {
        if s.is_empty() {
            0
        } else {
            len_field_size(s.len())
        }
    };
    opt(n) + opt(v)
}

/// A sample always carries both fields: 1 + 8 bytes of value, 1 + varint bytes of timestamp.
fn sample_size(ts: i64) -> usize {
    9 + 1 + varint_len(ts as u64)
}
