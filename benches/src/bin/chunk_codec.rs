//! Encode/decode throughput and size of eddy's chunk codecs on Flink-shaped series.
//! Run with: cargo run --release -p eddy-benches --bin chunk_codec
//!
//! Plain timing loops (no criterion) on the thread's CPU time: each case encodes and
//! decodes the same chunk repeatedly into reused buffers, passes results through
//! `black_box`, and counts heap allocations per decode with a counting global allocator
//! (it should be 0). Rates are M samples/s per core.

#[path = "../codec_shapes.rs"]
mod codec_shapes;

use std::hint::black_box;

use codec_shapes::{timestamps, values, SHAPES, SIZES};

fn rate(n: usize, f: impl FnMut()) -> f64 {
    codec_shapes::rate(n, SAMPLES_PER_RUN, f)
}
use eddy_benches::alloc_count::{allocations, CountingAlloc};
use eddy_storage::chunk::{decode_chunk, decode_timestamps, decode_values, ChunkEncoder};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Samples processed per measurement: enough for ~50 ms at 300 M samples/s.
const SAMPLES_PER_RUN: usize = 16_000_000;

fn main() {
    let mut enc = ChunkEncoder::new();
    println!("timestamps: 10 s scrapes with ±5 ms jitter; values: Flink shapes (benches/src/codec_shapes.rs)");
    for s in &SHAPES {
        println!("  {:<15} like {} (mix weight {})", s.name, s.like, s.weight);
    }
    println!(
        "{:<15} {:>5} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "shape",
        "n",
        "B/sample",
        "ts B/s",
        "val B/s",
        "enc M/s",
        "dec M/s",
        "ts dec",
        "val dec",
        "allocs"
    );
    let mut mix = [0.0f64; 2];
    for (si, shape) in SHAPES.iter().enumerate() {
        for (zi, &n) in SIZES.iter().enumerate() {
            let seed = (si * 10 + zi) as u64;
            let ts = timestamps(seed, n, 10_000, 5);
            let vals = values(shape.name, seed, n);
            let mut chunk = Vec::new();
            enc.encode_chunk(&mut chunk, &ts, &vals);
            let mut ts_col = Vec::new();
            enc.encode_timestamps(&mut ts_col, &ts);
            let mut val_col = Vec::new();
            enc.encode_values(&mut val_col, &vals);

            let mut buf = Vec::with_capacity(chunk.len());
            let enc_rate = rate(n, || {
                buf.clear();
                enc.encode_chunk(&mut buf, black_box(&ts), black_box(&vals));
                black_box(&buf);
            });
            let (mut ts_out, mut val_out) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let dec_rate = rate(n, || {
                ts_out.clear();
                val_out.clear();
                let k = decode_chunk(black_box(&chunk), &mut ts_out, &mut val_out)
                    .expect("decode chunk");
                black_box((k, &ts_out, &val_out));
            });
            let ts_rate = rate(n, || {
                ts_out.clear();
                black_box(
                    decode_timestamps(black_box(&ts_col), &mut ts_out).expect("decode timestamps"),
                );
            });
            let val_rate = rate(n, || {
                val_out.clear();
                black_box(
                    decode_values(black_box(&val_col), n, &mut val_out).expect("decode values"),
                );
            });
            assert_eq!((&ts_out, val_out.len()), (&ts, n));
            let before = allocations();
            for _ in 0..100 {
                ts_out.clear();
                val_out.clear();
                decode_chunk(&chunk, &mut ts_out, &mut val_out).expect("decode chunk");
            }
            let allocs = (allocations() - before) as f64 / 100.0;
            let bps = chunk.len() as f64 / n as f64;
            mix[zi] += shape.weight * bps;
            println!(
                "{:<15} {:>5} {:>8.3} {:>8.3} {:>8.3} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7.1}",
                shape.name,
                n,
                bps,
                ts_col.len() as f64 / n as f64,
                val_col.len() as f64 / n as f64,
                enc_rate,
                dec_rate,
                ts_rate,
                val_rate,
                allocs
            );
        }
    }
    for (zi, &n) in SIZES.iter().enumerate() {
        println!("weighted Flink mix, n={n}: {:.3} B/sample", mix[zi]);
    }
}
