//! Fuzzes the remote_write path: snappy decompression (with a size limit) and the protobuf
//! walk, on both the raw input and its decompression. Any panic is a bug; errors are fine. The
//! keyed decoder (the server's, with the label-run memory) must accept exactly what the plain
//! one accepts and, with its hits given their labels back, give the same batch, with nothing
//! known and after remembering its own misses.
#![no_main]

use eddy_ingest::remote_write::{
    decode_write_request, decode_write_request_keyed, decompress_snappy, push_run_labels,
    KeyedSeries, RunKeyMap,
};
use eddy_ingest_fuzz::{series, Series};
use eddy_storage::{KeyScratch, SeriesKey, WriteBatch};
use libfuzzer_sys::fuzz_target;

fn check_keyed(data: &[u8]) {
    let mut batch = WriteBatch::new();
    let plain = decode_write_request(data, &mut batch, &mut Vec::new());
    let want: Vec<Series> = (0..batch.series.len()).map(|i| series(&batch, i)).collect();
    let mut known = RunKeyMap::default();
    let mut seen = KeyedSeries::default();
    let mut key_scratch = KeyScratch::default();
    for _ in 0..2 {
        let mut got = WriteBatch::new();
        let keyed = decode_write_request_keyed(data, &mut got, &mut Vec::new(), &known, &mut seen);
        assert_eq!(keyed.is_ok(), plain.is_ok());
        let (Ok(k), Ok(p)) = (&keyed, &plain) else {
            return;
        };
        assert_eq!(
            (k.series, k.samples, &k.invalid),
            (p.series, p.samples, &p.invalid)
        );
        assert_eq!(got.series.len(), want.len());
        for (i, w) in want.iter().enumerate() {
            let mut full = WriteBatch::new();
            full.start_series();
            match seen.run_of(i as u32) {
                Some(run) => assert!(push_run_labels(data, run, &mut full)),
                None => {
                    for (n, v) in got.series_labels(i) {
                        full.push_label(n.clone(), v.clone());
                    }
                }
            }
            let (labels, ts, vs) = series(&got, i);
            assert_eq!((&ts, &vs), (&w.1, &w.2));
            if seen.run_of(i as u32).is_some() {
                assert!(labels.is_empty());
            }
            assert_eq!(series(&full, 0).0, w.0);
        }
        for &(i, hash) in &seen.misses {
            if let Ok(key) = SeriesKey::of(got.series_labels(i as usize), &mut key_scratch) {
                known.insert(hash, key);
            }
        }
    }
}

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
    check_keyed(data);
    let mut buf = Vec::new();
    if decompress_snappy(data, &mut buf, 1 << 20).is_ok() {
        let mut batch = WriteBatch::new();
        let _ = decode_write_request(&buf, &mut batch, &mut Vec::new());
        check_keyed(&buf);
    }
});
