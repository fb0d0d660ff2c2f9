//! Compares eddy's chunk codecs with `pco` (pcodec) and `tsz-compress` on Flink-shaped
//! series, and measures what one timestamp column shared by a scrape's series would save.
//! Run with: cargo run --release -p eddy-benches --bin codec_compare
//!
//! Sizes are bytes per sample for timestamps + values; speeds are M samples/s of CPU time
//! on one core. Results and the decision are in docs/compression.md.

#[path = "../codec_shapes.rs"]
mod codec_shapes;

// The tsz derive macros expect `alloc` in scope.
extern crate alloc;

use std::hint::black_box;

use codec_shapes::{rate, timestamps, values, SHAPES, SIZES};
use eddy_storage::chunk::{decode_chunk, decode_values, encode_timestamps, ChunkEncoder};
use pco::standalone::{simple_compress, simple_decompress_into};
use pco::ChunkConfig;

/// tsz compresses rows of integers; one row is a sample. Its derive emits public items.
#[allow(unreachable_pub, missing_debug_implementations)]
mod tsz_row {
    use tsz_compress::prelude::*;

    #[derive(Debug, Copy, Clone, CompressV2, DecompressV2)]
    pub struct Row {
        pub ts: i64,
        pub v: i64,
    }
}

use tsz_compress::prelude::{TszCompressV2, TszDecompressV2};
use tsz_row::compress::RowCompressorImpl;
use tsz_row::decompress::RowDecompressorImpl;
use tsz_row::Row;

const SAMPLES_PER_RUN: usize = 4_000_000;

/// Integers for tsz: the values times the smallest power of ten (≤ 10^6) that makes every
/// one an exact integer, else the raw f64 bits (tsz has no float support).
fn tsz_ints(vals: &[f64]) -> (Vec<i64>, &'static str) {
    for k in 0..=6 {
        let p = 10f64.powi(k);
        let ints: Vec<i64> = vals.iter().map(|v| (v * p).round() as i64).collect();
        if ints
            .iter()
            .zip(vals)
            .all(|(&m, &v)| (m as f64 / p).to_bits() == v.to_bits())
        {
            return (ints, "scaled ints");
        }
    }
    (
        vals.iter().map(|v| v.to_bits() as i64).collect(),
        "f64 bits",
    )
}

struct Row3 {
    bytes: usize,
    enc: f64,
    dec: f64,
}

fn eddy(ts: &[i64], vals: &[f64]) -> Row3 {
    let n = ts.len();
    let mut enc = ChunkEncoder::new();
    let mut chunk = Vec::new();
    enc.encode_chunk(&mut chunk, ts, vals);
    let mut buf = Vec::new();
    let enc_rate = rate(n, SAMPLES_PER_RUN, || {
        buf.clear();
        enc.encode_chunk(&mut buf, black_box(ts), black_box(vals));
    });
    let (mut t2, mut v2) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let dec_rate = rate(n, SAMPLES_PER_RUN, || {
        t2.clear();
        v2.clear();
        black_box(decode_chunk(black_box(&chunk), &mut t2, &mut v2).expect("eddy decode"));
    });
    assert!(t2 == ts, "eddy round trip failed");
    Row3 {
        bytes: chunk.len(),
        enc: enc_rate,
        dec: dec_rate,
    }
}

fn pco(ts: &[i64], vals: &[f64]) -> Row3 {
    let n = ts.len();
    let cfg = ChunkConfig::default();
    let compress = |ts: &[i64], vals: &[f64]| {
        let a = simple_compress(ts, &cfg).expect("pco compress timestamps");
        let b = simple_compress(vals, &cfg).expect("pco compress values");
        (a, b)
    };
    let (a, b) = compress(ts, vals);
    let enc_rate = rate(n, SAMPLES_PER_RUN, || {
        black_box(compress(black_box(ts), black_box(vals)));
    });
    let (mut t2, mut v2) = (vec![0i64; n], vec![0f64; n]);
    let dec_rate = rate(n, SAMPLES_PER_RUN, || {
        simple_decompress_into(black_box(&a), &mut t2).expect("pco decompress timestamps");
        simple_decompress_into(black_box(&b), &mut v2).expect("pco decompress values");
        black_box((&t2, &v2));
    });
    assert!(t2 == ts, "pco round trip failed");
    assert!(v2.iter().zip(vals).all(|(x, y)| x.to_bits() == y.to_bits()));
    Row3 {
        bytes: a.len() + b.len(),
        enc: enc_rate,
        dec: dec_rate,
    }
}

fn tsz(ts: &[i64], ints: &[i64]) -> Row3 {
    let n = ts.len();
    let compress = |ts: &[i64], ints: &[i64]| {
        let mut c = RowCompressorImpl::new(n);
        for (&t, &v) in ts.iter().zip(ints) {
            c.compress(Row { ts: t, v });
        }
        c.finish()
    };
    let bytes = compress(ts, ints);
    let enc_rate = rate(n, SAMPLES_PER_RUN / 4, || {
        black_box(compress(black_box(ts), black_box(ints)));
    });
    // A decompressor appends to its columns, so each decode starts a new one.
    let dec_rate = rate(n, SAMPLES_PER_RUN / 4, || {
        let mut d = RowDecompressorImpl::new();
        d.decompress(black_box(&bytes)).expect("tsz decompress");
        black_box(&d);
    });
    let mut d = RowDecompressorImpl::new();
    d.decompress(&bytes).expect("tsz decompress");
    assert!(
        d.col_ts() == ts && d.col_v() == ints,
        "tsz round trip failed"
    );
    Row3 {
        bytes: bytes.len(),
        enc: enc_rate,
        dec: dec_rate,
    }
}

fn main() {
    println!("timestamps: 10 s scrapes with ±5 ms jitter; B/sample = timestamps + values");
    for s in &SHAPES {
        println!("  {:<15} like {} (mix weight {})", s.name, s.like, s.weight);
    }
    println!(
        "{:<15} {:>5} | {:>21} | {:>21} | {:>21} | tsz input",
        "", "", "eddy", "pco (level 8)", "tsz-compress v2"
    );
    println!(
        "{:<15} {:>5} | {:>6} {:>6} {:>7} | {:>6} {:>6} {:>7} | {:>6} {:>6} {:>7} |",
        "shape", "n", "B/s", "enc", "dec", "B/s", "enc", "dec", "B/s", "enc", "dec"
    );
    let mut mix = [[0.0f64; 3]; 2];
    for (si, shape) in SHAPES.iter().enumerate() {
        for (zi, &n) in SIZES.iter().enumerate() {
            let seed = (si * 10 + zi) as u64;
            let ts = timestamps(seed, n, 10_000, 5);
            let vals = values(shape.name, seed, n);
            let (ints, how) = tsz_ints(&vals);
            let rows = [eddy(&ts, &vals), pco(&ts, &vals), tsz(&ts, &ints)];
            let mut line = format!("{:<15} {:>5} |", shape.name, n);
            for (ci, r) in rows.iter().enumerate() {
                let bps = r.bytes as f64 / n as f64;
                mix[zi][ci] += shape.weight * bps;
                line += &format!(" {:>6.3} {:>6.1} {:>7.1} |", bps, r.enc, r.dec);
            }
            println!("{line} {how}");
        }
    }
    for (zi, &n) in SIZES.iter().enumerate() {
        println!(
            "weighted Flink mix, n={n}: eddy {:.3}, pco {:.3}, tsz {:.3} B/sample",
            mix[zi][0], mix[zi][1], mix[zi][2]
        );
    }
    shared_timestamps();
    values_only_decode();
}

/// One timestamp column per scrape group (~2,000 series with identical timestamps)
/// instead of one per series: what it saves per sample.
fn shared_timestamps() {
    const GROUP: usize = 2000;
    println!("\nshared timestamp column for a scrape group of {GROUP} series:");
    for &n in &SIZES {
        for jitter in [0, 5, 50] {
            let ts = timestamps(99, n, 10_000, jitter);
            let mut col = Vec::new();
            encode_timestamps(&mut col, &ts);
            let per_series = col.len() as f64 / n as f64;
            let shared = col.len() as f64 / (n * GROUP) as f64;
            println!(
                "  n={n:>5} jitter ±{jitter:>2} ms: per-series column {per_series:.4} B/sample, \
                 shared {shared:.6} B/sample, saves {:.4} B/sample",
                per_series - shared
            );
        }
    }
}

/// Decode speed of the value column alone on the 8,640-sample integer-ish shapes.
fn values_only_decode() {
    println!("\nvalue column decode, n=8640 (M samples/s per core):");
    let mut enc = ChunkEncoder::new();
    for name in [
        "counter-steady",
        "ms-time",
        "gauge-ratio",
        "per-second",
        "constant",
    ] {
        let vals = values(name, 5, 8640);
        let mut col = Vec::new();
        enc.encode_values(&mut col, &vals);
        let mut out = Vec::with_capacity(vals.len());
        let r = rate(vals.len(), 4 * SAMPLES_PER_RUN, || {
            out.clear();
            black_box(decode_values(black_box(&col), 8640, &mut out).expect("decode values"));
        });
        println!(
            "  {name:<15} {:>7.1}  ({:.3} B/sample)",
            r,
            col.len() as f64 / 8640.0
        );
    }
}
