//! Fuzzes the remote_write path: snappy decompression (with a size limit) and the protobuf
//! walk, on both the raw input and its decompression. Any panic is a bug; errors are fine.
#![no_main]

use eddy_ingest::remote_write::{decode_write_request, decompress_snappy};
use eddy_storage::WriteBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    if let Ok(stats) = decode_write_request(data, &mut batch, &mut meta) {
        // Accepted series and samples must match what the batch holds.
        assert_eq!(stats.series, batch.series.len());
        assert_eq!(stats.samples, batch.sample_count());
    } else {
        assert!(batch.is_empty() && batch.labels.is_empty() && meta.is_empty());
    }
    let mut buf = Vec::new();
    if decompress_snappy(data, &mut buf, 1 << 20).is_ok() {
        let mut batch = WriteBatch::new();
        let _ = decode_write_request(&buf, &mut batch, &mut Vec::new());
    }
});
