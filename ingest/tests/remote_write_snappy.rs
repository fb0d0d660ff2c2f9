//! Snappy raw-block handling for remote_write: round trips, size limits, truncated and garbage
//! input, and the append-to-`dst` contract.

#![allow(clippy::type_complexity)] // test tables spell their shapes out

use eddy_ingest::remote_write::{
    compress_snappy, decode_write_request, decompress_snappy, encode_write_request, SnappyBuffer,
};
use eddy_ingest::Error;
use eddy_storage::WriteBatch;

fn request() -> Vec<u8> {
    let names: Vec<String> = (0..200).map(|i| format!("subtask_{i}")).collect();
    let series: Vec<(Vec<(&str, &str)>, Vec<(i64, f64)>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                vec![
                    ("__name__", "flink_taskmanager_job_task_numRecordsIn"),
                    ("subtask_index", n.as_str()),
                ],
                vec![(1_795_617_769_014 + i as i64, i as f64)],
            )
        })
        .collect();
    let mut body = Vec::new();
    encode_write_request(&series, &mut body);
    body
}

#[test]
fn round_trip_appends_after_existing_bytes() {
    let body = request();
    let mut compressed = b"prefix".to_vec();
    compress_snappy(&body, &mut compressed).unwrap();
    assert_eq!(&compressed[..6], b"prefix");
    assert!(
        compressed.len() - 6 < body.len() / 2,
        "repetitive labels compress well"
    );
    let mut out = b"keep".to_vec();
    decompress_snappy(&compressed[6..], &mut out, body.len()).unwrap();
    assert_eq!(&out[..4], b"keep");
    assert_eq!(&out[4..], &body[..]);

    let mut batch = WriteBatch::new();
    let stats = decode_write_request(&out[4..], &mut batch, &mut Vec::new()).unwrap();
    assert_eq!(stats.series, 200);
    assert_eq!(batch.series_samples(199).1, &[199.0]);
}

#[test]
fn size_limit_is_checked_before_decompressing() {
    let body = request();
    let mut compressed = Vec::new();
    compress_snappy(&body, &mut compressed).unwrap();
    let mut out = Vec::new();
    match decompress_snappy(&compressed, &mut out, body.len() - 1) {
        Err(Error::SnappyTooLarge { len, max }) => {
            assert_eq!((len, max), (body.len(), body.len() - 1));
        }
        other => panic!("want SnappyTooLarge, got {other:?}"),
    }
    assert!(out.is_empty() && out.capacity() == 0, "nothing allocated");
    let msg = decompress_snappy(&compressed, &mut out, 10)
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        format!(
            "decompress snappy block: decoded size {} bytes exceeds the limit of 10 bytes",
            body.len()
        )
    );
}

#[test]
fn every_truncation_of_a_block_is_an_error_and_leaves_dst_alone() {
    let body = request();
    let mut compressed = Vec::new();
    compress_snappy(&body, &mut compressed).unwrap();
    for cut in 0..compressed.len() {
        let mut out = b"x".to_vec();
        let err = decompress_snappy(&compressed[..cut], &mut out, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::Snappy { .. }), "cut {cut}: {err}");
        assert!(err.to_string().starts_with("decompress snappy block: "));
        assert_eq!(out, b"x", "cut {cut}");
    }
}

#[test]
fn garbage_and_corrupt_blocks_are_errors() {
    let mut out = Vec::new();
    // Header claims 5 bytes, then a copy referring back before the start of the output.
    assert!(decompress_snappy(&[0x05, 0x01, 0x10], &mut out, 100).is_err());
    // A varint header that never ends.
    assert!(decompress_snappy(&[0xff; 12], &mut out, 100).is_err());
    // Literal longer than the announced size.
    assert!(decompress_snappy(&[0x01, 0x08, b'a', b'b', b'c'], &mut out, 100).is_err());
    assert!(out.is_empty());
    // The smallest valid block: an empty payload.
    decompress_snappy(&[0x00], &mut out, 0).unwrap();
    assert!(out.is_empty());
    // A literal of three bytes.
    decompress_snappy(&[0x03, 0x08, b'a', b'b', b'c'], &mut out, 3).unwrap();
    assert_eq!(out, b"abc");
}

#[test]
fn reused_buffer_returns_each_request_whole_and_only_it() {
    let big = request();
    let small = &big[..big.len() / 3];
    let mut buf = SnappyBuffer::new();
    let compress = |b: &[u8]| {
        let mut c = Vec::new();
        compress_snappy(b, &mut c).unwrap();
        c
    };
    for body in [&big[..], small, &big[..], &[][..], small] {
        let compressed = compress(body);
        assert_eq!(buf.decompress(&compressed, body.len()).unwrap(), body);
    }
    // Errors leave the buffer usable, and the limit is checked before growing.
    let compressed = compress(&big);
    let cap = buf.capacity();
    assert!(matches!(
        buf.decompress(&compressed, big.len() - 1),
        Err(Error::SnappyTooLarge { .. })
    ));
    assert!(buf
        .decompress(&compressed[..compressed.len() / 2], big.len())
        .is_err());
    assert_eq!(buf.capacity(), cap);
    assert_eq!(
        buf.decompress(&compress(small), small.len()).unwrap(),
        small
    );
}
