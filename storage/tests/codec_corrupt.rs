//! Decoding arbitrary, truncated or bit-flipped bytes returns an error or some samples,
//! never panics, and leaves the output buffers untouched on error.

use eddy_storage::chunk::{
    chunk_header, decode_chunk, decode_split_chunk, decode_timestamps, decode_values, encode_chunk,
    encode_values, split_chunk, timestamps_header, MAX_CHUNK_SAMPLES,
};
use eddy_storage::Error;
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Decodes `src` every way there is; checks error paths keep the buffers as they were.
fn decode_all_ways(src: &[u8], n: usize) {
    let (mut ts, mut vals) = (vec![1i64], vec![1.0f64]);
    match decode_chunk(src, &mut ts, &mut vals) {
        Ok(k) => {
            assert_eq!(ts.len(), 1 + k);
            assert_eq!(vals.len(), 1 + k);
        }
        Err(_) => assert_eq!((ts.len(), vals.len()), (1, 1)),
    }
    let _ = chunk_header(src);
    let mut ts = vec![1i64];
    let framed = timestamps_header(src);
    match decode_timestamps(src, &mut ts) {
        // The framing read alone must agree with the full decode on where the column ends.
        Ok(used) => {
            assert!(used <= src.len());
            assert_eq!(framed.map(|f| f.1).ok(), Some(used));
        }
        Err(_) => assert_eq!(ts, [1]),
    }
    if let Ok(cols) = split_chunk(src) {
        let parts = cols.version.len() + cols.timestamps.len() + cols.values.len();
        assert_eq!(parts, src.len());
        let rest = [cols.version, cols.values].concat();
        let (mut ts, mut vals) = (vec![1i64], vec![1.0f64]);
        match decode_split_chunk(cols.timestamps, &rest, &mut ts, &mut vals) {
            Ok(k) => assert_eq!((ts.len(), vals.len()), (1 + k, 1 + k)),
            Err(_) => assert_eq!((ts.len(), vals.len()), (1, 1)),
        }
    }
    let mut vals = vec![1.0f64];
    match decode_values(src, n, &mut vals) {
        Ok(used) => {
            assert!(used <= src.len());
            assert_eq!(vals.len(), 1 + n);
        }
        Err(_) => assert_eq!(vals, [1.0]),
    }
}

/// Valid chunks of several shapes, to truncate and corrupt.
fn valid_chunks() -> Vec<(Vec<u8>, usize)> {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut out = Vec::new();
    for n in [1, 2, 3, 9, 64, 300] {
        let ts: Vec<i64> = (0..n as i64)
            .map(|i| 1_700_000_000_000 + i * 10_000 + rng.gen_range(-5..=5))
            .collect();
        let shapes: [Vec<f64>; 5] = [
            vec![3.25; n],
            (0..n)
                .map(|i| (i * 1000 + rng.gen_range(0..50)) as f64)
                .collect(),
            (0..n)
                .map(|_| f64::from(rng.gen_range(0..10_000)) / 10_000.0)
                .collect(),
            (0..n).map(|_| f64::from_bits(rng.gen())).collect(),
            (0..n)
                .map(|i| {
                    if i % 40 == 39 {
                        f64::from_bits(0x7ff0_0000_0000_0002)
                    } else {
                        (i / 3) as f64
                    }
                })
                .collect(),
        ];
        for vals in shapes {
            let mut b = Vec::new();
            encode_chunk(&mut b, &ts, &vals);
            out.push((b, n));
        }
    }
    out
}

#[test]
fn every_truncation_of_valid_chunks_is_handled() {
    for (chunk, n) in valid_chunks() {
        for cut in 0..chunk.len() {
            let src = &chunk[..cut];
            decode_all_ways(src, n);
            let (mut ts, mut vals) = (Vec::new(), Vec::new());
            // A chunk cut short can only decode if the cut fell in unused trailing bits.
            if let Ok(k) = decode_chunk(src, &mut ts, &mut vals) {
                assert_eq!(k, n, "cut at {cut} of {}", chunk.len());
            }
        }
    }
}

#[test]
fn every_single_bit_flip_of_valid_chunks_is_handled() {
    for (chunk, n) in valid_chunks().into_iter().filter(|(c, _)| c.len() < 400) {
        let mut c = chunk.clone();
        for bit in 0..c.len() * 8 {
            c[bit / 8] ^= 1 << (bit % 8);
            decode_all_ways(&c, n);
            c[bit / 8] ^= 1 << (bit % 8);
        }
    }
}

#[test]
fn specific_malformed_inputs_are_errors() {
    let err = |src: &[u8]| {
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        matches!(
            decode_chunk(src, &mut ts, &mut vals),
            Err(Error::ChunkDecode(_))
        )
    };
    assert!(err(&[]), "empty");
    assert!(err(&[2]), "unknown version");
    assert!(err(&[1, 0]), "zero samples");
    assert!(err(&[1, 1, 0]), "one sample, no value column");
    assert!(err(&[1, 1, 0, 0x40]), "unknown value mode");
    // A count above the limit is refused before anything is allocated.
    assert!(
        err(&[1, 0x80, 0x80, 0x80, 0x01, 0, 0]),
        "count 2^21 > MAX_CHUNK_SAMPLES"
    );
    let mut vals = Vec::new();
    assert!(decode_values(
        &[0, 0, 0, 0, 0, 0, 0, 0, 0],
        MAX_CHUNK_SAMPLES + 1,
        &mut vals
    )
    .is_err());
    assert!(vals.is_empty());
    // Constant-delta timestamps whose span is not a multiple of the steps.
    assert!(decode_timestamps(&[3, 0, 5, 0], &mut Vec::new()).is_err());
    // A bit width above 64.
    assert!(decode_timestamps(&[3, 0, 5, 1, 65, 0], &mut Vec::new()).is_err());
    // Values: raw mode with too few bytes, xor mode with no bytes.
    assert!(decode_values(&[0x30, 1, 2, 3], 1, &mut Vec::new()).is_err());
    assert!(decode_values(&[0x20], 2, &mut Vec::new()).is_err());
    // Decimal scale 19 is out of range.
    assert!(decode_values(&[0x10, 19, 0, 0], 1, &mut Vec::new()).is_err());
    // An encoded value column decoded with a larger count than it holds.
    let mut v = Vec::new();
    encode_values(&mut v, &[1.0, 2.5, 7.0, 1e300, f64::NAN]);
    let mut out = Vec::new();
    decode_values(&v, 5, &mut out).unwrap();
    assert!(decode_values(&v, 500, &mut Vec::new()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn prop_random_bytes_never_panic(src in prop::collection::vec(any::<u8>(), 0..200), n in 0usize..3000) {
        decode_all_ways(&src, n);
    }

    #[test]
    fn prop_random_bytes_after_a_valid_header_never_panic(
        mode in 0u8..=0x3f,
        rest in prop::collection::vec(any::<u8>(), 0..120),
        n in 3u64..200,
    ) {
        // Well-formed count/first/span so the fuzz reaches the column modes.
        let mut src = vec![1];
        for b in [n, 2_000, n * 1000] {
            let mut v = b;
            while v >= 0x80 { src.push(v as u8 | 0x80); v >>= 7; }
            src.push(v as u8);
        }
        src.push(mode & 0x03);
        src.extend_from_slice(&rest);
        decode_all_ways(&src, n as usize);
        let mut vals = vec![mode];
        vals.extend_from_slice(&rest);
        decode_all_ways(&vals, n as usize);
    }
}
