//! WAL throughput: appends/s of 1,000-sample records from 4 threads under each sync policy, and
//! the samples-record codec on its own. Ignored by default; numbers go to `docs/format/wal.md`.
//! Run with: cargo test -p eddy-storage --release --test wal_bench -- --ignored --nocapture

#![allow(clippy::unwrap_used)] // Test helpers outside #[test] fns may unwrap too.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use eddy_storage::wal::{self, SamplesRecord, SyncPolicy, Wal, WalOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const THREADS: usize = 4;
const SAMPLES_PER_RECORD: usize = 1000;
const RUN_FOR: Duration = Duration::from_secs(2);

/// One scrape's worth of a Flink task manager: 1,000 series with nearby refs, timestamps with
/// millisecond jitter, gauge-like values. Fixed seed for reproducibility.
fn flink_batch(seed: u64) -> (Vec<u32>, Vec<i64>, Vec<f64>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let base_ref = rng.gen_range(0..1_000_000u32);
    let refs = (0..SAMPLES_PER_RECORD as u32)
        .map(|i| base_ref + i * 3)
        .collect();
    let ts = (0..SAMPLES_PER_RECORD)
        .map(|_| 1_732_500_000_000 + rng.gen_range(0..20))
        .collect();
    let vals = (0..SAMPLES_PER_RECORD)
        .map(|_| (rng.gen::<f64>() * 1e4).round() / 100.0)
        .collect();
    (refs, ts, vals)
}

#[test]
#[ignore]
fn bench_wal_append() {
    println!("{THREADS} threads, records of {SAMPLES_PER_RECORD} samples, {RUN_FOR:?} per policy");
    for (name, sync) in [
        ("Always", SyncPolicy::Always),
        ("Interval(1s)", SyncPolicy::Interval(Duration::from_secs(1))),
        ("Never", SyncPolicy::Never),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let w = Arc::new(
            Wal::open(
                dir.path(),
                WalOptions {
                    sync,
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let appends = Arc::new(AtomicU64::new(0));
        let mut record_len = 0;
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (w, stop, appends) = (Arc::clone(&w), Arc::clone(&stop), Arc::clone(&appends));
                let (refs, ts, vals) = flink_batch(t as u64);
                let mut rec = Vec::new();
                wal::encode_samples(&mut rec, &refs, &ts, &vals);
                record_len = rec.len();
                thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        rec.clear();
                        wal::encode_samples(&mut rec, &refs, &ts, &vals);
                        w.append(&rec).unwrap();
                        n += 1;
                    }
                    appends.fetch_add(n, Ordering::Relaxed);
                })
            })
            .collect();
        let start = Instant::now();
        thread::sleep(RUN_FOR);
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let s = w.stats();
        w.close().unwrap();
        let n = appends.load(Ordering::Relaxed) as f64;
        // Replay what was just written: frame checks plus decoding every samples record.
        let mut rec = SamplesRecord::default();
        let mut replayed = 0u64;
        let start = Instant::now();
        let report = wal::replay(dir.path(), &mut |r| {
            rec.decode(r)?;
            replayed += rec.len() as u64;
            Ok(())
        })
        .unwrap();
        let replay_secs = start.elapsed().as_secs_f64();
        assert_eq!(report.records, s.records);
        println!(
            "{name:>13}: {:>8.0} appends/s  {:>6.2} M samples/s  {:>6.1} MB/s  \
             {:.1} records/batch  {:>5.0} fsyncs/s  (record {record_len} B); \
             replay+decode {:.1} M samples/s",
            n / secs,
            n * SAMPLES_PER_RECORD as f64 / secs / 1e6,
            s.bytes as f64 / secs / 1e6,
            s.records as f64 / s.batches.max(1) as f64,
            s.fsyncs as f64 / secs,
            replayed as f64 / replay_secs / 1e6,
        );
    }
}

#[test]
#[ignore]
fn bench_samples_codec() {
    let (refs, ts, vals) = flink_batch(7);
    let mut dst = Vec::new();
    let rounds = 20_000;
    let start = Instant::now();
    for _ in 0..rounds {
        dst.clear();
        wal::encode_samples(&mut dst, black_box(&refs), black_box(&ts), black_box(&vals));
        black_box(&dst);
    }
    let enc = start.elapsed().as_secs_f64();
    let mut rec = SamplesRecord::default();
    let start = Instant::now();
    for _ in 0..rounds {
        rec.decode(black_box(&dst)).unwrap();
        black_box(&rec);
    }
    let dec = start.elapsed().as_secs_f64();
    let samples = (rounds * SAMPLES_PER_RECORD) as f64;
    println!(
        "samples record: {:.2} bytes/sample, encode {:.0} M samples/s, decode {:.0} M samples/s",
        dst.len() as f64 / SAMPLES_PER_RECORD as f64,
        samples / enc / 1e6,
        samples / dec / 1e6,
    );
}
