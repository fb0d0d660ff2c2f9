//! Fixed-seed Flink-shaped sample series for the codec benchmarks (`chunk_codec`,
//! `codec_compare`). Each shape is named after the Flink metrics it imitates; see
//! docs/compression.md for the list and the mix weights.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A value shape: its name, the Flink metrics it stands for, and its weight in the mix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) name: &'static str,
    pub(crate) like: &'static str,
    /// Share of a Flink deployment's series with this shape (an estimate, sums to 1).
    pub(crate) weight: f64,
}

pub(crate) const SHAPES: [Shape; 7] = [
    Shape {
        name: "counter-steady",
        like: "numRecordsIn, numBytesOut (resets on restart)",
        weight: 0.25,
    },
    Shape {
        name: "gauge-ratio",
        like: "CPU.Load 0.1004, outPoolUsage",
        weight: 0.08,
    },
    Shape {
        name: "gauge-bytes",
        like: "Memory.Heap.Used (GC sawtooth)",
        weight: 0.10,
    },
    Shape {
        name: "constant",
        like: "Memory.Heap.Max, idle 0.0 rates",
        weight: 0.30,
    },
    Shape {
        name: "per-second",
        like: "numRecordsInPerSecond 840.1166666666667",
        weight: 0.17,
    },
    Shape {
        name: "watermark",
        like: "currentOutputWatermark (epoch ms)",
        weight: 0.05,
    },
    Shape {
        name: "ms-time",
        like: "busyTimeMsPerSecond, checkpoint durations",
        weight: 0.05,
    },
];

/// Chunk sizes: a head chunk (20 min at 10 s) and a compacted day (8,640 at 10 s).
pub(crate) const SIZES: [usize; 2] = [120, 8640];

/// Epoch ms of the first sample.
const START: i64 = 1_732_000_000_000;

/// Scrape timestamps every `interval_ms` with uniform ±`jitter_ms` jitter.
pub(crate) fn timestamps(seed: u64, n: usize, interval_ms: i64, jitter_ms: i64) -> Vec<i64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n as i64)
        .map(|i| {
            START
                + i * interval_ms
                + if jitter_ms > 0 {
                    rng.gen_range(-jitter_ms..=jitter_ms)
                } else {
                    0
                }
        })
        .collect()
}

/// `n` values of `shape`, deterministic for a given seed.
pub(crate) fn values(shape: &str, seed: u64, n: usize) -> Vec<f64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    match shape {
        "counter-steady" => {
            // ~100 records/s with noise; a task restart every ~2,500 scrapes resets to 0.
            let mut c: u64 = rng.gen_range(0..1_000_000);
            for _ in 0..n {
                if rng.gen_range(0..2500) == 0 {
                    c = 0;
                }
                c += 1000 + rng.gen_range(0..60) - 30;
                out.push(c as f64);
            }
        }
        "gauge-ratio" => {
            // A load average with 4 decimals that wanders around 0.1.
            let mut x: i64 = 1004;
            for _ in 0..n {
                x = (x + rng.gen_range(-40..=40)).clamp(0, 10_000);
                out.push(x as f64 / 10_000.0);
            }
        }
        "gauge-bytes" => {
            // Heap used: grows by allocation, drops at each young GC.
            let mut used: i64 = 200 << 20;
            for _ in 0..n {
                used += rng.gen_range(1 << 20..8 << 20);
                if used > 900 << 20 {
                    used = rng.gen_range(150 << 20..250 << 20);
                }
                out.push(used as f64);
            }
        }
        "constant" => out.resize(n, 1_073_741_824.0),
        "per-second" => {
            // Meter rate: a 60 s window count divided by 60, so thirds and sixths repeat forever.
            let mut rate: i64 = 50_000;
            for _ in 0..n {
                rate = (rate + rng.gen_range(-500..=500)).max(0);
                out.push(rate as f64 / 60.0);
            }
        }
        "watermark" => {
            let mut w = START - 5_000;
            for _ in 0..n {
                w += 10_000 + rng.gen_range(-200..=200);
                out.push(w as f64);
            }
        }
        "ms-time" => out.extend((0..n).map(|_| f64::from(rng.gen_range(0..1000)))),
        _ => unreachable!("BUG: unknown shape {shape}"),
    }
    out
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux). The benches
/// share a busy 2-core machine, so wall time would mostly measure other processes.
/// Falls back to wall time elsewhere.
pub(crate) fn cpu_now() -> std::time::Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(std::time::Duration::from_nanos)
        .unwrap_or_else(|| {
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            START.get_or_init(std::time::Instant::now).elapsed()
        })
}

/// Runs `f` (which handles `n` samples) until about `total` samples are done, three times;
/// returns the best rate in M samples/s of CPU time (of wall time if the CPU clock did not
/// move, which happens when the scheduler has not yet accounted a very short run).
pub(crate) fn rate(n: usize, total: usize, mut f: impl FnMut()) -> f64 {
    let reps = (total / n).max(1);
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let (t, w) = (cpu_now(), std::time::Instant::now());
        for _ in 0..reps {
            f();
        }
        let cpu = cpu_now().saturating_sub(t);
        best = best.min(if cpu.is_zero() { w.elapsed() } else { cpu });
    }
    (reps * n) as f64 / best.as_secs_f64().max(1e-9) / 1e6
}
