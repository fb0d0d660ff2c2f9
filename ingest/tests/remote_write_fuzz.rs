//! A proptest random-input campaign for the remote_write decoder (the stable-toolchain
//! counterpart of `ingest/fuzz`): random bytes and mutated valid requests never panic and keep
//! the batch consistent; random series round-trip exactly through encoder and decoder.
//! Case counts scale with `PROPTEST_CASES` (default below).

#![allow(clippy::type_complexity)] // test tables spell their shapes out

use eddy_ingest::remote_write::{
    compress_snappy, decode_write_request, decompress_snappy, encode_write_request,
};
use eddy_storage::WriteBatch;
use proptest::prelude::*;

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Decodes `body`, checking the invariants every outcome must keep.
fn decode_checked(body: &[u8]) {
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    match decode_write_request(body, &mut batch, &mut meta) {
        Ok(stats) => {
            assert_eq!(stats.series, batch.series.len());
            assert_eq!(stats.samples, batch.sample_count());
            assert!(stats.invalid.len() <= stats.invalid_series);
            for s in &batch.series {
                assert!(s.samples.0 < s.samples.1, "no empty series");
                assert!(s.labels.0 < s.labels.1, "a valid series has __name__");
            }
        }
        Err(_) => assert!(
            batch.is_empty()
                && batch.labels.is_empty()
                && batch.timestamps.is_empty()
                && meta.is_empty()
        ),
    }
}

type Series = (Vec<(String, String)>, Vec<(i64, f64)>);

fn series_strategy() -> impl Strategy<Value = Series> {
    let label = ("[a-z_][a-z0-9_.]{0,12}", "\\PC{0,20}");
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,30}",
        prop::collection::btree_map(label.0, label.1, 0..6),
        prop::collection::vec((any::<i64>(), any::<u64>().prop_map(f64::from_bits)), 1..4),
    )
        .prop_map(|(name, labels, samples)| {
            let mut l = vec![("__name__".to_string(), name)];
            l.extend(labels.into_iter().filter(|(n, _)| n != "__name__"));
            (l, samples)
        })
}

proptest! {
    #![proptest_config(cases(1_000))]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_checked(&body);
        let mut out = Vec::new();
        if decompress_snappy(&body, &mut out, 1 << 16).is_ok() {
            decode_checked(&out);
        }
    }
}

proptest! {
    #![proptest_config(cases(200))]

    #[test]
    fn mutated_requests_never_panic(
        input in prop::collection::vec(series_strategy(), 1..5),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut body = Vec::new();
        encode_write_request(&input, &mut body);
        for (at, byte, kind) in edits {
            let i = at.index(body.len());
            match kind {
                0 => body[i] = byte,
                1 => body.insert(i, byte),
                _ => { body.remove(i); }
            }
            if body.is_empty() { break; }
        }
        decode_checked(&body);
    }

    #[test]
    fn random_series_round_trip_exactly(input in prop::collection::vec(series_strategy(), 0..8)) {
        let mut body = Vec::new();
        encode_write_request(&input, &mut body);
        let mut compressed = Vec::new();
        compress_snappy(&body, &mut compressed).unwrap();
        let mut plain = Vec::new();
        decompress_snappy(&compressed, &mut plain, body.len()).unwrap();
        prop_assert_eq!(&plain, &body);
        let mut batch = WriteBatch::new();
        let stats = decode_write_request(&plain, &mut batch, &mut Vec::new()).unwrap();
        prop_assert_eq!(stats.series, input.len());
        for (i, (labels, samples)) in input.iter().enumerate() {
            let got: Vec<(String, String)> =
                batch.series_labels(i).iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            prop_assert_eq!(&got, labels);
            let (ts, vs) = batch.series_samples(i);
            let want_ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
            let want_bits: Vec<u64> = samples.iter().map(|s| s.1.to_bits()).collect();
            let got_bits: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(ts, &want_ts[..]);
            prop_assert_eq!(got_bits, want_bits);
        }
    }
}
