//! Cardinality limits on new series: active series in total and per metric, and series created
//! per hour in total and per metric. Checked only when a series is created, so the common
//! append path never touches them.

use std::collections::HashMap;

use parking_lot::Mutex;

/// The limits; 0 disables one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesLimitOptions {
    /// Active series in the head.
    pub max_series: u64,
    /// Active series of one metric name.
    pub max_series_per_metric: u64,
    /// Series created per wall-clock hour.
    pub max_new_series_per_hour: u64,
    /// Series of one metric name created per wall-clock hour.
    pub max_new_series_per_hour_per_metric: u64,
}

#[derive(Debug, Default)]
struct State {
    hour: i64,
    new_total: u64,
    new_per_metric: HashMap<String, u64>,
    active_per_metric: HashMap<String, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct SeriesLimits {
    opts: SeriesLimitOptions,
    state: Mutex<State>,
}

impl SeriesLimits {
    pub(crate) fn new(opts: SeriesLimitOptions) -> Self {
        SeriesLimits {
            opts,
            state: Mutex::new(State::default()),
        }
    }

    /// True when per-metric active counts must be kept (and released on removal).
    pub(crate) fn tracks_metrics(&self) -> bool {
        self.opts.max_series_per_metric > 0
    }

    /// Admits a new series of `metric` given the current active total, counting it; or says
    /// which limit refuses it.
    pub(crate) fn admit(&self, metric: &str, active: u64, now_ms: i64) -> Result<(), String> {
        let o = &self.opts;
        if o == &SeriesLimitOptions::default() {
            return Ok(());
        }
        if o.max_series > 0 && active >= o.max_series {
            return Err(format!("limit of {} active series reached", o.max_series));
        }
        let mut s = self.state.lock();
        let hour = now_ms.div_euclid(3_600_000);
        if s.hour != hour {
            s.hour = hour;
            s.new_total = 0;
            s.new_per_metric.clear();
        }
        if o.max_new_series_per_hour > 0 && s.new_total >= o.max_new_series_per_hour {
            return Err(format!(
                "limit of {} new series per hour reached",
                o.max_new_series_per_hour
            ));
        }
        let new_metric = s.new_per_metric.get(metric).copied().unwrap_or(0);
        if o.max_new_series_per_hour_per_metric > 0
            && new_metric >= o.max_new_series_per_hour_per_metric
        {
            return Err(format!(
                "limit of {} new series per hour for metric {metric:?} reached",
                o.max_new_series_per_hour_per_metric
            ));
        }
        let active_metric = s.active_per_metric.get(metric).copied().unwrap_or(0);
        if o.max_series_per_metric > 0 && active_metric >= o.max_series_per_metric {
            return Err(format!(
                "limit of {} active series for metric {metric:?} reached",
                o.max_series_per_metric
            ));
        }
        s.new_total += 1;
        if o.max_new_series_per_hour_per_metric > 0 {
            *s.new_per_metric.entry(metric.to_string()).or_default() += 1;
        }
        if self.tracks_metrics() {
            *s.active_per_metric.entry(metric.to_string()).or_default() += 1;
        }
        Ok(())
    }

    /// A series of `metric` was removed from the head.
    pub(crate) fn release(&self, metric: &str) {
        if !self.tracks_metrics() {
            return;
        }
        let mut s = self.state.lock();
        if let Some(n) = s.active_per_metric.get_mut(metric) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.active_per_metric.remove(metric);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_refuses_with_its_own_message() {
        let l = SeriesLimits::new(SeriesLimitOptions {
            max_series_per_metric: 2,
            max_new_series_per_hour: 3,
            ..Default::default()
        });
        assert!(l.admit("a", 0, 0).is_ok());
        assert!(l.admit("a", 1, 0).is_ok());
        assert_eq!(
            l.admit("a", 2, 0).unwrap_err(),
            "limit of 2 active series for metric \"a\" reached"
        );
        assert!(l.admit("b", 2, 0).is_ok());
        assert_eq!(
            l.admit("c", 3, 0).unwrap_err(),
            "limit of 3 new series per hour reached"
        );
        // The next hour resets the hourly budget; removal frees a per-metric slot.
        l.release("a");
        assert!(l.admit("a", 2, 3_600_000).is_ok());
        let g = SeriesLimits::new(SeriesLimitOptions {
            max_series: 5,
            max_new_series_per_hour_per_metric: 1,
            ..Default::default()
        });
        assert_eq!(
            g.admit("x", 5, 0).unwrap_err(),
            "limit of 5 active series reached"
        );
        assert!(g.admit("x", 0, 0).is_ok());
        assert!(g
            .admit("x", 1, 0)
            .unwrap_err()
            .contains("new series per hour for metric \"x\""));
    }
}
