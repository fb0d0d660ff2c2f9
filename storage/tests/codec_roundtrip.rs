//! Round trips of the chunk codecs: fixed-seed Flink-shaped series of every shape (with
//! size budgets, so a codec that stops compressing fails), special float bit patterns,
//! and proptest over arbitrary f64 bits and arbitrary increasing timestamps.

use eddy_storage::chunk::{
    chunk_header, decode_chunk, decode_timestamps, decode_values, encode_chunk, encode_timestamps,
    encode_values, ChunkEncoder, LayoutHint,
};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const STALE: u64 = 0x7ff0_0000_0000_0002;

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Encodes a chunk after a prefix, checks the header and a bit-exact round trip; returns
/// the chunk's size in bytes.
#[track_caller]
fn round_trip(ts: &[i64], vals: &[f64]) -> usize {
    let mut buf = vec![0xab; 3];
    encode_chunk(&mut buf, ts, vals);
    assert_eq!(buf[..3], [0xab; 3]);
    let chunk = &buf[3..];
    let h = chunk_header(chunk).expect("header");
    assert_eq!(
        (h.count as usize, h.min_t, h.max_t),
        (ts.len(), ts[0], ts[ts.len() - 1])
    );
    let (mut ts2, mut vals2) = (vec![42], vec![4.2]);
    assert_eq!(
        decode_chunk(chunk, &mut ts2, &mut vals2).expect("decode"),
        ts.len()
    );
    assert_eq!(&ts2[1..], ts);
    assert_eq!(bits(&vals2[1..]), bits(vals));
    chunk.len()
}

fn scrape_ts(rng: &mut SmallRng, n: usize, interval: i64, jitter: i64) -> Vec<i64> {
    let start = 1_732_000_000_000i64;
    (0..n as i64)
        .map(|i| start + i * interval + rng.gen_range(-jitter..=jitter))
        .collect()
}

/// The value shapes of Flink metrics (see docs/compression.md).
fn shape(rng: &mut SmallRng, name: &str, n: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n);
    match name {
        "counter" => {
            let mut c = 0u64;
            for i in 0..n {
                if i % 500 == 499 {
                    c = 0; // task restart
                }
                c += 950 + rng.gen_range(0..100);
                v.push(c as f64);
            }
        }
        "cpu-load" => v.extend((0..n).map(|_| f64::from(rng.gen_range(0..10_000)) / 10_000.0)),
        "heap-bytes" => {
            v.extend((0..n).map(|_| f64::from(rng.gen_range(100_000_000u32..900_000_000))))
        }
        "constant" => v.resize(n, 4096.0),
        "per-second" => v.extend((0..n).map(|_| f64::from(rng.gen_range(0..200_000)) / 60.0)),
        "pool-usage-f32" => {
            // The same as Flink computes it: `(float) used / total`, widened to double.
            v.extend((0..n).map(|_| f64::from(rng.gen_range(0..=137u16) as f32 / 137.0)))
        }
        "pool-usage" => {
            // `used / total` of a pool of 137 buffers: a ratio, not a short decimal.
            v.extend((0..n).map(|_| f64::from(rng.gen_range(0..=137)) / 137.0))
        }
        "watermark" => {
            let mut w = 1_732_000_000_000i64;
            for _ in 0..n {
                w += 10_000 + rng.gen_range(-50..50);
                v.push(w as f64);
            }
        }
        "random-bits" => v.extend((0..n).map(|_| f64::from_bits(rng.gen()))),
        _ => unreachable!("unknown shape {name}"),
    }
    v
}

#[test]
fn flink_shapes_round_trip_within_size_budgets() {
    // (shape, bytes/sample budget for the value column at 120 and 8,640 samples)
    let cases = [
        ("counter", 1.0, 1.0),
        ("cpu-load", 2.0, 2.0),
        ("heap-bytes", 4.0, 4.0),
        ("constant", 0.1, 0.01),
        ("per-second", 2.3, 2.3),
        ("pool-usage", 1.1, 1.05),
        ("pool-usage-f32", 1.1, 1.05),
        ("watermark", 1.2, 1.2),
        ("random-bits", 8.1, 8.01),
    ];
    let mut rng = SmallRng::seed_from_u64(1); // Fixed seed for reproducibility.
    for (name, budget_small, budget_large) in cases {
        for (n, budget) in [(120, budget_small), (8640, budget_large)] {
            let ts = scrape_ts(&mut rng, n, 10_000, 0);
            let vals = shape(&mut rng, name, n);
            let regular = round_trip(&ts, &vals);
            let mut vbuf = Vec::new();
            encode_values(&mut vbuf, &vals);
            let per_sample = vbuf.len() as f64 / n as f64;
            assert!(
                per_sample <= budget,
                "{name} n={n}: {per_sample:.3} B/sample > {budget}"
            );
            // Regular timestamps cost only the header: version, count, first, span, mode (≤ 16 bytes).
            assert!(
                regular <= vbuf.len() + 16,
                "{name} n={n}: regular timestamps cost {}",
                regular - vbuf.len()
            );
        }
    }
}

#[test]
fn jittered_and_gappy_timestamps_stay_small() {
    let mut rng = SmallRng::seed_from_u64(2);
    for n in [32, 120, 8640] {
        // ±5 ms around a 10 s grid: residuals in 0..=10 fit 4 bits.
        let ts = scrape_ts(&mut rng, n, 10_000, 5);
        let mut b = Vec::new();
        encode_timestamps(&mut b, &ts);
        assert!(b.len() <= 16 + n / 2, "jitter n={n}: {} bytes", b.len());
        let mut out = Vec::new();
        assert_eq!(decode_timestamps(&b, &mut out).unwrap(), b.len());
        assert_eq!(out, ts);

        // Two missed scrapes: deltas with two exceptions instead of wide packing.
        let mut gappy = scrape_ts(&mut rng, n + 2, 15_000, 5);
        gappy.remove(n / 3);
        gappy.remove(2 * n / 3);
        let mut b = Vec::new();
        encode_timestamps(&mut b, &gappy);
        assert!(b.len() <= 30 + 5 * n / 8, "gaps n={n}: {} bytes", b.len());
        let mut out = Vec::new();
        decode_timestamps(&b, &mut out).unwrap();
        assert_eq!(out, gappy);
    }
}

#[test]
fn special_values_round_trip_bit_exact() {
    let specials = [
        f64::from_bits(STALE),
        f64::NAN,
        f64::from_bits(0xfff8_dead_beef_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        f64::MIN_POSITIVE / 1024.0,
        -f64::from_bits(1),
        f64::MAX,
        f64::MIN,
        -9.223_372_036_854_776e18,
        9.223_372_036_854_776e18,
        1e-300,
        840.116_666_666_666_7,
        0.1004,
    ];
    let mut rng = SmallRng::seed_from_u64(3);
    for n in [1, 2, 3, 7, 32, 120, 1000] {
        for &s in &specials {
            // A mostly-integer series with the special value sprinkled in, and a constant one.
            let mut vals: Vec<f64> = (0..n).map(|i| (i * 10) as f64).collect();
            vals[rng.gen_range(0..n)] = s;
            let ts: Vec<i64> = (0..n as i64).map(|i| i * 15_000).collect();
            round_trip(&ts, &vals);
            round_trip(&ts, &vec![s; n]);
        }
        let vals: Vec<f64> = (0..n)
            .map(|_| specials[rng.gen_range(0..specials.len())])
            .collect();
        let ts: Vec<i64> = (0..n as i64).map(|i| -1_000_000 + i * 7).collect();
        round_trip(&ts, &vals);
    }
}

#[test]
fn negative_zero_does_not_become_zero() {
    let vals = [1.0, -0.0, 2.0, 3.0, 0.0, 4.0];
    let ts = [1, 2, 3, 4, 5, 6];
    round_trip(&ts, &vals);
}

#[test]
fn timestamp_extremes_round_trip() {
    let cases: [&[i64]; 6] = [
        &[i64::MIN, i64::MAX],
        &[i64::MIN, 0, i64::MAX],
        &[i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX],
        &[-5, -3, -1, 1, 3],
        &[i64::MAX - 3, i64::MAX - 2, i64::MAX - 1, i64::MAX],
        &[i64::MIN, -1, 0, 1, i64::MAX - 10, i64::MAX],
    ];
    for ts in cases {
        round_trip(ts, &vec![1.0; ts.len()]);
    }
}

#[test]
fn reused_encoder_matches_free_functions() {
    let mut rng = SmallRng::seed_from_u64(4);
    let mut enc = ChunkEncoder::new();
    for name in ["counter", "cpu-load", "random-bits", "constant"] {
        let ts = scrape_ts(&mut rng, 300, 10_000, 3);
        let vals = shape(&mut rng, name, 300);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        enc.encode_chunk(&mut a, &ts, &vals);
        encode_chunk(&mut b, &ts, &vals);
        assert_eq!(a, b, "{name}");
    }
}

fn increasing_ts() -> impl Strategy<Value = Vec<i64>> {
    let gap = prop_oneof![
        4 => 1i64..20_000,
        1 => 1i64..i64::MAX,
        1 => Just(1i64),
    ];
    (any::<i64>(), prop::collection::vec(gap, 0..300)).prop_map(|(start, gaps)| {
        let mut ts = vec![start];
        for g in gaps {
            match ts[ts.len() - 1].checked_add(g) {
                Some(t) => ts.push(t),
                None => break,
            }
        }
        ts
    })
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits),
        3 => (-1_000_000i64..1_000_000, 0u32..6).prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
        1 => prop::sample::select(vec![f64::from_bits(STALE), f64::NAN, -0.0, 0.0, f64::INFINITY, 5e-324]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_any_values_round_trip(vals in prop::collection::vec(any_f64(), 1..400)) {
        let mut b = vec![9];
        encode_values(&mut b, &vals);
        let mut out = Vec::new();
        prop_assert_eq!(decode_values(&b[1..], vals.len(), &mut out).unwrap(), b.len() - 1);
        prop_assert_eq!(bits(&out), bits(&vals));
    }

    #[test]
    fn prop_any_bits_round_trip(raw in prop::collection::vec(any::<u64>(), 1..200)) {
        let vals: Vec<f64> = raw.iter().map(|&b| f64::from_bits(b)).collect();
        let mut b = Vec::new();
        encode_values(&mut b, &vals);
        prop_assert!(b.len() <= 1 + 8 * vals.len(), "raw bound exceeded: {}", b.len());
        let mut out = Vec::new();
        decode_values(&b, vals.len(), &mut out).unwrap();
        prop_assert_eq!(bits(&out), raw);
    }

    #[test]
    fn prop_increasing_timestamps_round_trip(ts in increasing_ts()) {
        let mut b = Vec::new();
        encode_timestamps(&mut b, &ts);
        let mut out = vec![1];
        prop_assert_eq!(decode_timestamps(&b, &mut out).unwrap(), b.len());
        prop_assert_eq!(&out[1..], &ts[..]);
    }

    #[test]
    fn prop_any_timestamps_round_trip(ts in prop::collection::vec(any::<i64>(), 0..100)) {
        // Unsorted input is outside encode_chunk's contract but the column codec keeps it.
        let mut b = Vec::new();
        encode_timestamps(&mut b, &ts);
        let mut out = Vec::new();
        decode_timestamps(&b, &mut out).unwrap();
        prop_assert_eq!(out, ts);
    }

    /// A chunk encoded after any earlier chunk (of any layouts, or with a byte of it changed)
    /// reads back exactly: a hint that no longer fits, or names no layout, is never trusted.
    #[test]
    fn prop_chunks_after_any_previous_round_trip(
        ts in increasing_ts().prop_filter("needs samples", |t| !t.is_empty() && t.len() <= 240),
        seed in any::<u64>(),
        split in any::<prop::sample::Index>(),
        damage in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let kind = rng.gen_range(0..5);
        let vals: Vec<f64> = (0..ts.len()).map(|i| match kind {
            0 => f64::from_bits(rng.gen()),
            1 => (i as f64) * 1003.0 + f64::from(rng.gen_range(0..3)),
            2 => f64::from(rng.gen_range(0..100_000)) / 100.0,
            3 => f64::from(rng.gen_range(0..=(i as u32 % 7 + 130))) / 137.0,
            _ => f64::from(rng.gen_range(0..10)),
        }).collect();
        let cut = split.index(ts.len()) + 1;
        let mut previous = Vec::new();
        encode_chunk(&mut previous, &ts[..cut], &vals[..cut]);
        if let Some((at, byte)) = damage {
            let i = at.index(previous.len());
            previous[i] = byte;
        }
        let mut after = Vec::new();
        ChunkEncoder::new().encode_chunk_after(&mut after, &ts, &vals, &previous);
        let (mut t2, mut v2) = (Vec::new(), Vec::new());
        prop_assert_eq!(decode_chunk(&after, &mut t2, &mut v2).unwrap(), ts.len());
        prop_assert_eq!(&t2, &ts);
        prop_assert_eq!(bits(&v2), bits(&vals));

        // An interim chunk (no outlier search), with that hint or none, reads back the same;
        // and the encoder is back to full planning afterwards.
        let mut enc = ChunkEncoder::new();
        for hint in [Some(LayoutHint::of(&previous)), None] {
            let mut interim = Vec::new();
            enc.encode_interim_hinted(&mut interim, &ts, &vals, hint);
            let (mut t3, mut v3) = (Vec::new(), Vec::new());
            prop_assert_eq!(decode_chunk(&interim, &mut t3, &mut v3).unwrap(), ts.len());
            prop_assert_eq!(&t3, &ts);
            prop_assert_eq!(bits(&v3), bits(&vals));
        }
        let (mut planned, mut reference) = (Vec::new(), Vec::new());
        enc.encode_chunk(&mut planned, &ts, &vals);
        encode_chunk(&mut reference, &ts, &vals);
        prop_assert_eq!(planned, reference);
    }

    /// Ratios `m / d` with any divisor up to 2^24 (and beyond, where they must fall back),
    /// some patched with NaN or the stale marker, round-trip bit for bit; with a small
    /// divisor they cost a few bits per value, not XOR's 5–7 bytes.
    #[test]
    fn prop_ratios_round_trip(
        d in prop_oneof![2u64..300, 2u64..(1 << 24), (1u64 << 24)..(1 << 40)],
        seed in any::<u64>(),
        n in 1usize..300,
        patched in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        let mut rng = SmallRng::seed_from_u64(seed);
        // Below 2^24 half of the cases divide in single precision, as Java floats do.
        let single = d < (1 << 24) && seed % 2 == 0;
        let mut vals: Vec<f64> = (0..n)
            .map(|_| {
                let m = rng.gen_range(0..=d);
                if single {
                    f64::from(m as f32 / d as f32)
                } else {
                    m as f64 / d as f64
                }
            })
            .collect();
        for (k, at) in patched.iter().enumerate() {
            vals[at.index(n)] = if k % 2 == 0 { f64::NAN } else { f64::from_bits(STALE) };
        }
        let mut b = Vec::new();
        encode_values(&mut b, &vals);
        let mut out = Vec::new();
        prop_assert_eq!(decode_values(&b, n, &mut out).unwrap(), b.len());
        prop_assert_eq!(bits(&out), bits(&vals));
        if d < 300 && n >= 100 && patched.is_empty() {
            // Integers 0..=d in a frame: the bits of d per value, plus a few header bytes.
            let budget = (n * (64 - d.leading_zeros() as usize)).div_ceil(8) + 16;
            prop_assert!(b.len() <= budget, "{} bytes for {} ratios of {}", b.len(), n, d);
        }
    }

    #[test]
    fn prop_chunks_round_trip(ts in increasing_ts(), seed in any::<u64>()) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let vals: Vec<f64> = (0..ts.len()).map(|_| match rng.gen_range(0..4) {
            0 => f64::from_bits(rng.gen()),
            1 => f64::from(rng.gen_range(0..1000)),
            _ => f64::from(rng.gen_range(0..100_000)) / 100.0,
        }).collect();
        round_trip(&ts, &vals);
    }
}

/// An interim chunk (`encode_interim_hinted`) packs a counter with a reset over its whole
/// range: it reads back exactly and comes out larger than the fully planned chunk.
#[test]
fn interim_chunks_skip_the_outlier_search() {
    // The full plan patches the reset as an exception and packs the rest narrowly.
    let ts: Vec<i64> = (0..64).map(|i| 1_795_000_000_000 + i * 10_000).collect();
    let vals: Vec<f64> = (0..64)
        .map(|i| {
            f64::from(if i < 40 {
                5_000_000 + i * 997
            } else {
                (i - 40) * 997
            })
        })
        .collect();
    let mut enc = ChunkEncoder::new();
    let mut planned = Vec::new();
    enc.encode_chunk(&mut planned, &ts, &vals);
    let mut interim = Vec::new();
    enc.encode_interim_hinted(&mut interim, &ts, &vals, Some(LayoutHint::of(&planned)));
    let (mut t2, mut v2) = (Vec::new(), Vec::new());
    assert_eq!(
        decode_chunk(&interim, &mut t2, &mut v2).expect("decode"),
        64
    );
    assert_eq!((t2, bits(&v2)), (ts, bits(&vals)));
    assert!(
        interim.len() > planned.len(),
        "interim {} bytes, planned {}",
        interim.len(),
        planned.len()
    );
}

/// A chunk encoded after an earlier one of the same series reads back bit for bit whatever
/// the earlier layout was (decimal at a scale the new values fit or outgrow, XOR, constant,
/// unreadable bytes), and stays close to the fully planned size.
#[test]
fn chunks_encoded_after_a_previous_layout_round_trip() {
    let ts: Vec<i64> = (0..100)
        .map(|i| 1_795_000_000_000 + i * 15_000 + (i * 7) % 5)
        .collect();
    let decimals: Vec<f64> = (0..100).map(|i| f64::from(i * 37 % 1000) / 100.0).collect();
    let finer: Vec<f64> = (0..100)
        .map(|i| f64::from(i * 37 % 1000) / 10_000.0)
        .collect();
    let rates: Vec<f64> = (0..100).map(|i| f64::from(1000 + i * 13) / 60.0).collect();
    let counter: Vec<f64> = (0..100).map(|i| f64::from(i * 1003)).collect();
    let mut rng = SmallRng::seed_from_u64(7);
    let noise: Vec<f64> = (0..100).map(|_| rng.gen::<f64>() * 1e3).collect();
    let mut stale = counter.clone();
    stale[40] = f64::from_bits(STALE);
    stale[41] = -0.0;
    let constant = vec![3.5; 100];
    let columns = [
        &decimals, &finer, &rates, &counter, &noise, &stale, &constant,
    ];
    let mut enc = ChunkEncoder::new();
    for (p, prev_vals) in columns.iter().enumerate() {
        let mut previous = Vec::new();
        encode_chunk(&mut previous, &ts[..30], &prev_vals[..30]);
        for (k, vals) in columns.iter().enumerate() {
            let mut after = Vec::new();
            enc.encode_chunk_after(&mut after, &ts, vals, &previous);
            let (mut t2, mut v2) = (Vec::new(), Vec::new());
            assert_eq!(decode_chunk(&after, &mut t2, &mut v2).expect("decode"), 100);
            assert_eq!(t2, ts);
            assert_eq!(bits(&v2), bits(vals), "column {k}");
            let full = round_trip(&ts, vals);
            // Same layout family as the previous chunk: never far from the full plan.
            if k == p {
                assert!(
                    after.len() <= full + full / 4 + 8,
                    "column {k}: {} vs {full}",
                    after.len()
                );
            }
        }
    }
    // Every timestamp layout as the hint (constant, grid with jitter, gaps, drift), each
    // followed by every other: exact, and near the full plan when the layout stays.
    let n = 100i64;
    let stamp_columns: Vec<Vec<i64>> = vec![
        (0..n).map(|i| 1_795_000_000_000 + i * 15_000).collect(),
        (0..n)
            .map(|i| 1_795_000_000_000 + i * 15_000 + (i * 7) % 9)
            .collect(),
        (0..n)
            .map(|i| 1_795_000_000_000 + i * 15_000 + if i > 60 { 600_000 } else { 0 })
            .collect(),
        (0..n)
            .map(|i| 1_795_000_000_000 + i * 15_000 + i * i * 3)
            .collect(),
    ];
    let vals = &counter[..n as usize];
    for (p, prev_ts) in stamp_columns.iter().enumerate() {
        let mut previous = Vec::new();
        encode_chunk(&mut previous, &prev_ts[..40], &vals[..40]);
        for (k, ts) in stamp_columns.iter().enumerate() {
            let mut after = Vec::new();
            enc.encode_chunk_after(&mut after, ts, vals, &previous);
            let (mut t2, mut v2) = (Vec::new(), Vec::new());
            assert_eq!(decode_chunk(&after, &mut t2, &mut v2).expect("decode"), 100);
            assert_eq!(&t2, ts, "timestamps {k} after {p}");
            assert_eq!(bits(&v2), bits(vals));
            let full = round_trip(ts, vals);
            if k == p {
                assert!(
                    after.len() <= full + full / 4 + 8,
                    "timestamps {k}: {} vs {full}",
                    after.len()
                );
            }
        }
    }
    // Any one byte of the previous chunk changed to any value (an unknown layout or
    // transform byte included): still exact.
    let (short_ts, short_vals) = (&stamp_columns[1][..60], &rates[..60]);
    let mut previous = Vec::new();
    encode_chunk(&mut previous, &stamp_columns[3][..20], &decimals[..20]);
    for i in 0..previous.len() {
        for byte in 0..=255u8 {
            let mut damaged = previous.clone();
            damaged[i] = byte;
            let mut after = Vec::new();
            enc.encode_chunk_after(&mut after, short_ts, short_vals, &damaged);
            let (mut t2, mut v2) = (Vec::new(), Vec::new());
            assert_eq!(decode_chunk(&after, &mut t2, &mut v2).expect("decode"), 60);
            assert_eq!(
                (&t2[..], bits(&v2)),
                (short_ts, bits(short_vals)),
                "byte {i} = {byte}"
            );
        }
    }
    // Bytes that are not a chunk give no hint: the full plan, byte for byte.
    let mut after = Vec::new();
    enc.encode_chunk_after(&mut after, &ts, &rates, &[0xff, 0x01]);
    let mut full = Vec::new();
    encode_chunk(&mut full, &ts, &rates);
    assert_eq!(after, full);
}
