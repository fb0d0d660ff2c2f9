//! Synthetic data in the shape of the compliance tester's demo service (three instances of job
//! `demo`): gauges, counters with a process restart, a classic histogram, a batch-job timestamp
//! and an intermittent series that goes stale. Deterministic (a fixed seed), so every run
//! compares the same numbers.

/// One series and its samples in time order.
pub(crate) struct Series {
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) samples: Vec<(i64, f64)>,
}

/// The staleness marker Prometheus writes when a series disappears.
pub(crate) const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The bucket bounds of `demo_api_request_duration_seconds`.
const BUCKETS: [&str; 10] = [
    "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf",
];

/// splitmix64: small, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Labels sorted by name, as the remote_write protocol requires.
fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

/// Generates the demo data for scrapes at `interval_ms` in `[start_ms, end_ms)`. Each instance
/// scrapes at its own offset inside the interval (as real targets do), with a little jitter.
pub(crate) fn generate(start_ms: i64, end_ms: i64, interval_ms: i64) -> Vec<Series> {
    let mut rng = Rng(0x5eed_ed01);
    let mut out = Vec::new();
    let steps = ((end_ms - start_ms) / interval_ms) as usize;
    for inst in 0..3usize {
        let instance = format!("demo.promlabs.com:{}", 10000 + inst);
        let base = [("instance", instance.as_str()), ("job", "demo")];
        let with = |extra: &[(&str, &str)], name: &str| {
            let mut l = vec![("__name__", name)];
            l.extend_from_slice(&base);
            l.extend_from_slice(extra);
            labels(&l)
        };
        let offset = 1_170 + 4_333 * inst as i64;
        let times: Vec<i64> = (0..steps)
            .map(|i| start_ms + i as i64 * interval_ms + offset + (rng.next_u64() % 40) as i64)
            .collect();
        // The instance restarts (counters drop to zero) at this scrape; instance 0 never does.
        let restart = match inst {
            1 => steps * 2 / 5,
            2 => steps * 7 / 10,
            _ => usize::MAX,
        };
        let cpus = [4.0, 8.0, 2.0][inst];

        out.push(Series {
            labels: with(&[], "demo_num_cpus"),
            samples: times.iter().map(|&t| (t, cpus)).collect(),
        });

        for (k, ty) in ["buffers", "cached", "free", "used"].iter().enumerate() {
            let scale = (k as f64 + 1.0) * (inst as f64 + 1.0) * 1.5e8;
            let samples = times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let wave = (i as f64 / (40.0 + 7.0 * k as f64)).sin();
                    let v = scale * (2.0 + wave) + rng.unit() * 1e7;
                    (t, v.round())
                })
                .collect();
            out.push(Series {
                labels: with(&[("type", ty)], "demo_memory_usage_bytes"),
                samples,
            });
        }

        for (share, mode) in [(0.6, "idle"), (0.15, "system"), (0.25, "user")] {
            let mut c = 1000.0 * share * (inst as f64 + 1.0);
            let samples = times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    if i == restart {
                        c = 0.0;
                    }
                    c += cpus * share * interval_ms as f64 / 1000.0 * (0.5 + rng.unit());
                    (t, c)
                })
                .collect();
            out.push(Series {
                labels: with(&[("mode", mode)], "demo_cpu_usage_seconds_total"),
                samples,
            });
        }

        // Disk usage grows and is cleaned up every 37 minutes.
        let mut disk = 2e10 * (inst as f64 + 1.0);
        let cleanup = 37 * 60 * 1000 / interval_ms as usize;
        let samples = times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if i > 0 && i % cleanup == 0 {
                    disk *= 0.6;
                }
                disk += 1e5 * (1.0 + inst as f64) * rng.unit();
                (t, disk.round())
            })
            .collect();
        out.push(Series {
            labels: with(&[], "demo_disk_usage_bytes"),
            samples,
        });
        out.push(Series {
            labels: with(&[], "demo_disk_total_bytes"),
            samples: times.iter().map(|&t| (t, 1e11)).collect(),
        });

        // A batch job that succeeds most 5-minute runs: the gauge is the last success time.
        let mut last = (start_ms / 1000) as f64;
        let run_every = 5 * 60 * 1000 / interval_ms as usize;
        let samples = times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if i % run_every == inst && rng.unit() < 0.8 {
                    last = (t / 1000) as f64 + 0.25;
                }
                (t, last)
            })
            .collect();
        out.push(Series {
            labels: with(&[], "demo_batch_last_success_timestamp_seconds"),
            samples,
        });

        // Present for 7 minutes, absent for 4; a stale marker ends every presence.
        let period = 11 * 60 * 1000 / interval_ms as usize;
        let present = 7 * 60 * 1000 / interval_ms as usize;
        let mut samples = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            let phase = (i + inst * 5) % period;
            if phase < present {
                samples.push((t, (inst * 10 + phase % 7) as f64));
            } else if phase == present {
                samples.push((t, f64::from_bits(STALE_NAN)));
            }
        }
        out.push(Series {
            labels: with(&[], "demo_intermittent_metric"),
            samples,
        });

        // The request-duration histogram, per method, path and status.
        for method in ["GET", "POST"] {
            for path in ["/api/foo", "/api/bar"] {
                for status in ["200", "500"] {
                    let rate = match (method, status) {
                        (_, "500") => 2.0,
                        ("GET", _) => 40.0,
                        _ => 12.0,
                    };
                    let slow = if path == "/api/bar" { 4.0 } else { 1.0 };
                    let mut counts = [0u64; BUCKETS.len()];
                    let mut sum = 0.0f64;
                    let mut buckets: Vec<Vec<(i64, f64)>> = vec![Vec::new(); BUCKETS.len()];
                    let mut sums = Vec::new();
                    let mut totals = Vec::new();
                    for (i, &t) in times.iter().enumerate() {
                        if i == restart {
                            counts = [0; BUCKETS.len()];
                            sum = 0.0;
                        }
                        let n = (rate * (0.5 + rng.unit())) as usize;
                        for _ in 0..n {
                            // Exponential latency with a mean of 20 ms (80 ms for /api/bar).
                            let lat = -0.02 * slow * (1.0 - rng.unit()).ln();
                            sum += lat;
                            for (b, le) in BUCKETS.iter().enumerate() {
                                let bound: f64 = le.parse().unwrap_or(f64::INFINITY);
                                if lat <= bound {
                                    counts[b] += 1;
                                }
                            }
                        }
                        for (b, c) in counts.iter().enumerate() {
                            buckets[b].push((t, *c as f64));
                        }
                        sums.push((t, sum));
                        totals.push((t, counts[BUCKETS.len() - 1] as f64));
                    }
                    let extra = [("method", method), ("path", path), ("status", status)];
                    for (b, samples) in buckets.into_iter().enumerate() {
                        let mut e = extra.to_vec();
                        e.push(("le", BUCKETS[b]));
                        out.push(Series {
                            labels: with(&e, "demo_api_request_duration_seconds_bucket"),
                            samples,
                        });
                    }
                    out.push(Series {
                        labels: with(&extra, "demo_api_request_duration_seconds_sum"),
                        samples: sums,
                    });
                    out.push(Series {
                        labels: with(&extra, "demo_api_request_duration_seconds_count"),
                        samples: totals,
                    });
                }
            }
        }
    }
    out
}

/// A series as the remote_write encoder takes it.
type WireSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// The data as snappy-compressed remote_write bodies, one per `window_ms` of time, oldest first:
/// every request holds every series' samples of its window, so no receiver ever sees a sample far
/// older than one it already holds.
pub(crate) fn remote_write_bodies(
    series: &[Series],
    start_ms: i64,
    end_ms: i64,
    window_ms: i64,
) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let mut from = start_ms;
    while from < end_ms + window_ms {
        let to = from + window_ms;
        let part: Vec<WireSeries<'_>> = series
            .iter()
            .filter_map(|s| {
                let samples: Vec<(i64, f64)> = s
                    .samples
                    .iter()
                    .copied()
                    .filter(|&(t, _)| t >= from && t < to)
                    .collect();
                if samples.is_empty() {
                    return None;
                }
                let l = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                Some((l, samples))
            })
            .collect();
        if !part.is_empty() {
            let mut raw = Vec::new();
            eddy_ingest::remote_write::encode_write_request(&part, &mut raw);
            let mut body = Vec::new();
            eddy_ingest::remote_write::compress_snappy(&raw, &mut body)
                .expect("snappy compression of a test body");
            bodies.push(body);
        }
        from = to;
    }
    bodies
}
