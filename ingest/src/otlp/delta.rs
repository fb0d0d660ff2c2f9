//! Turns DELTA monotonic sums into cumulative counters (Flink 2.x's OpenTelemetry reporter sends
//! every Counter as a DELTA sum), remembering one running total per series.
//!
//! A point continues its series when its start time equals the end time of the series' last
//! point (the OTLP delta contract; Flink sends exactly that) or is unset. Any other start time
//! means the sender restarted or exports were lost: the total restarts from this point's value,
//! which PromQL's `rate`/`increase` read as a counter reset. Points not newer than the last one
//! are dropped. Memory is bounded: series idle longer than the TTL are evicted, and at most
//! `max_series` totals are kept.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use eddy_storage::api::BatchSeries;
use eddy_storage::WriteBatch;

use super::{OtlpStats, Pending};

/// What happened to one delta point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeltaOutcome {
    /// The running total after this point.
    Total(f64),
    /// The point is not newer than the series' last point; drop it.
    OutOfOrder,
    /// A new series, but the accumulator is full; drop it.
    Full,
    /// The delta is NaN or infinite; it would poison the total, so drop it.
    NotFinite,
}

#[derive(Debug, Clone, Copy)]
struct State {
    last_ns: u64,
    total: f64,
    last_seen_ms: i64,
}

/// Running totals of delta series, keyed by a hash of the series' labels. `Send`; one per
/// server (behind a lock) or one per ingest worker with requests routed by sender.
#[derive(Debug)]
pub struct DeltaAccumulator {
    series: HashMap<u64, State>,
    idle_ttl_ms: i64,
    max_series: usize,
    last_sweep_ms: i64,
}

impl Default for DeltaAccumulator {
    /// 15 minutes idle TTL (Flink reports every 10–60 s), one million series.
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), 1_000_000)
    }
}

impl DeltaAccumulator {
    /// An accumulator that forgets series idle for `idle_ttl` and holds at most `max_series`.
    pub fn new(idle_ttl: Duration, max_series: usize) -> Self {
        DeltaAccumulator {
            series: HashMap::new(),
            idle_ttl_ms: i64::try_from(idle_ttl.as_millis()).unwrap_or(i64::MAX),
            max_series,
            last_sweep_ms: i64::MIN,
        }
    }

    /// Number of series with a running total.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Adds one delta point of series `key` covering `(start_ns, time_ns]`; `now_ms` is the
    /// server clock, used only for idle eviction.
    pub fn add(
        &mut self,
        key: u64,
        start_ns: u64,
        time_ns: u64,
        delta: f64,
        now_ms: i64,
    ) -> DeltaOutcome {
        if !delta.is_finite() {
            return DeltaOutcome::NotFinite;
        }
        if let Some(s) = self.series.get_mut(&key) {
            if time_ns <= s.last_ns {
                return DeltaOutcome::OutOfOrder;
            }
            if start_ns == 0 || start_ns == s.last_ns {
                s.total += delta;
            } else {
                s.total = delta;
            }
            s.last_ns = time_ns;
            s.last_seen_ms = now_ms;
            return DeltaOutcome::Total(s.total);
        }
        if self.series.len() >= self.max_series {
            self.maybe_evict(now_ms, true);
            if self.series.len() >= self.max_series {
                return DeltaOutcome::Full;
            }
        }
        self.series.insert(
            key,
            State {
                last_ns: time_ns,
                total: delta,
                last_seen_ms: now_ms,
            },
        );
        DeltaOutcome::Total(delta)
    }

    /// Evicts idle series if a quarter TTL passed since the last sweep (or `force`).
    pub(crate) fn maybe_evict(&mut self, now_ms: i64, force: bool) {
        if force || now_ms.saturating_sub(self.last_sweep_ms) >= self.idle_ttl_ms / 4 {
            self.evict_idle(now_ms);
        }
    }

    /// Forgets series not seen since `now_ms - idle_ttl`; returns how many.
    pub fn evict_idle(&mut self, now_ms: i64) -> usize {
        self.last_sweep_ms = now_ms;
        let cutoff = now_ms.saturating_sub(self.idle_ttl_ms);
        let before = self.series.len();
        self.series.retain(|_, s| s.last_seen_ms >= cutoff);
        before - self.series.len()
    }
}

/// A hash of a label set that does not depend on label order (the batch keeps labels in
/// arrival order; storage sorts them later).
pub(crate) fn series_key<'l>(labels: impl Iterator<Item = (&'l str, &'l str)>) -> u64 {
    let mut sum: u64 = 0;
    let mut n: u64 = 0;
    for (name, value) in labels {
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        value.hash(&mut h);
        sum = sum.wrapping_add(h.finish());
        n += 1;
    }
    let mut h = DefaultHasher::new();
    (sum, n).hash(&mut h);
    h.finish()
}

/// Replaces the raw delta values of the request's delta series with running totals, and
/// removes the series whose points the accumulator refused.
pub(super) fn apply_deltas(
    batch: &mut WriteBatch<'_>,
    pending: &[Pending],
    first_series: usize,
    acc: &mut DeltaAccumulator,
    now_ms: i64,
    stats: &mut OtlpStats,
) {
    let mut drop: Vec<bool> = Vec::new();
    for p in pending {
        let idx = p.series as usize;
        let key = series_key(
            batch
                .series_labels(idx)
                .iter()
                .map(|(n, v)| (n.as_ref(), v.as_ref())),
        );
        let sample = batch.series[idx].samples.0 as usize;
        match acc.add(key, p.start_ns, p.time_ns, batch.values[sample], now_ms) {
            DeltaOutcome::Total(t) => batch.values[sample] = t,
            outcome => {
                match outcome {
                    DeltaOutcome::OutOfOrder => stats.delta_out_of_order += 1,
                    DeltaOutcome::Full => stats.delta_limit_dropped += 1,
                    _ => stats.points_dropped += 1,
                }
                if drop.is_empty() {
                    drop.resize(batch.series.len() - first_series, false);
                }
                drop[idx - first_series] = true;
            }
        }
    }
    if !drop.is_empty() {
        stats.samples -= drop.iter().filter(|&&d| d).count() as u64;
        remove_series(batch, first_series, &drop);
    }
}

/// Removes series `first + i` for every `drop[i]`, moving the rest down in place.
fn remove_series(batch: &mut WriteBatch<'_>, first: usize, drop: &[bool]) {
    let Some(s0) = batch.series.get(first).copied() else {
        return;
    };
    let (mut lw, mut sw, mut w) = (s0.labels.0 as usize, s0.samples.0 as usize, first);
    for (i, &dropped) in drop.iter().enumerate() {
        let s = batch.series[first + i];
        if dropped {
            continue;
        }
        let (la, lb) = (s.labels.0 as usize, s.labels.1 as usize);
        let (sa, sb) = (s.samples.0 as usize, s.samples.1 as usize);
        for k in la..lb {
            batch.labels.swap(lw + k - la, k);
        }
        batch.timestamps.copy_within(sa..sb, sw);
        batch.values.copy_within(sa..sb, sw);
        let (ln, sn) = (lb - la, sb - sa);
        batch.series[w] = BatchSeries {
            labels: (lw as u32, (lw + ln) as u32),
            samples: (sw as u32, (sw + sn) as u32),
            key: None,
            series_ref: None,
        };
        lw += ln;
        sw += sn;
        w += 1;
    }
    batch.labels.truncate(lw);
    batch.timestamps.truncate(sw);
    batch.values.truncate(sw);
    batch.series.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_resets_and_drops() {
        let mut acc = DeltaAccumulator::default();
        assert_eq!(acc.add(1, 100, 200, 5.0, 0), DeltaOutcome::Total(5.0));
        assert_eq!(acc.add(1, 200, 300, 2.0, 0), DeltaOutcome::Total(7.0));
        assert_eq!(acc.add(1, 0, 400, 1.0, 0), DeltaOutcome::Total(8.0));
        assert_eq!(acc.add(1, 300, 400, 1.0, 0), DeltaOutcome::OutOfOrder);
        // A start time that does not continue the series: the sender restarted.
        assert_eq!(acc.add(1, 1000, 1100, 3.0, 0), DeltaOutcome::Total(3.0));
        assert_eq!(acc.add(2, 100, 200, 1.0, 0), DeltaOutcome::Total(1.0));
        assert_eq!(acc.add(2, 200, 300, f64::NAN, 0), DeltaOutcome::NotFinite);
        assert_eq!(acc.add(2, 200, 300, 1.0, 0), DeltaOutcome::Total(2.0));
        assert_eq!(acc.len(), 2);
    }

    #[test]
    fn bounded() {
        let mut acc = DeltaAccumulator::new(Duration::from_secs(60), 2);
        acc.add(1, 0, 1, 1.0, 0);
        acc.add(2, 0, 1, 1.0, 30_000);
        assert_eq!(acc.add(3, 0, 1, 1.0, 50_000), DeltaOutcome::Full);
        // Series 1 is idle for more than a minute at t=61 s: it makes room.
        assert_eq!(acc.add(3, 0, 1, 1.0, 61_000), DeltaOutcome::Total(1.0));
        assert_eq!(acc.len(), 2);
        assert_eq!(acc.evict_idle(200_000), 2);
        assert!(acc.is_empty());
    }

    #[test]
    fn key_ignores_order() {
        let a = series_key([("a", "1"), ("b", "2")].into_iter());
        let b = series_key([("b", "2"), ("a", "1")].into_iter());
        let c = series_key([("a", "2"), ("b", "1")].into_iter());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
