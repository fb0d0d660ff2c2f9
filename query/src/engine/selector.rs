//! Selectors and subqueries: reading storage once per selector over the whole query span,
//! then sliding lookback windows (instant selectors) or range windows (range selectors,
//! subqueries) over the decoded points.

use eddy_storage::api::STALE_NAN_BITS;
use eddy_storage::{is_stale_nan, Labels, SeriesSet};

use super::parallel::{map_series, PARALLEL_MIN_WORK};
use super::{EvalResult, Evaluator, Series, Val};
use crate::ast::{Expr, Subquery, ValueType, VectorSelector};
use crate::value::QueryError;

/// Where a range input's series come from.
enum RangeSource<'q> {
    /// A matrix selector: read from storage series by series, stale markers dropped.
    Storage(Box<dyn SeriesSet + 'q>),
    /// A subquery: series already evaluated.
    Evaluated(Vec<Series>),
}

/// The input of a range-vector function: series whose raw samples (stale markers removed) are
/// read one at a time into a [`Columns`], and how to place the window `(end - range, end]`
/// for a step.
pub(crate) struct RangeInput<'q> {
    src: RangeSource<'q>,
    /// Window length in ms.
    pub(crate) range: i64,
    /// `offset` in ms.
    pub(crate) offset: i64,
    /// Resolved `@` time, if any.
    pub(crate) at: Option<i64>,
}

/// Reusable per-thread sample columns that [`RangeInput::read`] fills.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    ts: Vec<i64>,
    vals: Vec<f64>,
}

impl<'q> RangeInput<'q> {
    /// The inclusive end of the window evaluated at step `ts`.
    #[inline]
    pub(crate) fn window_end(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts).saturating_sub(self.offset)
    }

    /// True when series are read from storage: their samples count as loaded
    /// ([`Evaluator::add_samples`]) when read. A subquery's were counted when evaluated.
    pub(crate) fn is_stored(&self) -> bool {
        matches!(self.src, RangeSource::Storage(_))
    }

    /// Number of series.
    pub(crate) fn len(&self) -> usize {
        match &self.src {
            RangeSource::Storage(set) => set.len(),
            RangeSource::Evaluated(series) => series.len(),
        }
    }

    /// An upper bound of the samples reading every series yields.
    pub(crate) fn sample_hint(&self) -> usize {
        match &self.src {
            RangeSource::Storage(set) => set.sample_hint(),
            RangeSource::Evaluated(series) => series.iter().map(|s| s.points.len()).sum(),
        }
    }

    /// Reads series `i`'s samples, stale markers removed, as `(timestamps, values)` columns.
    /// Safe to call from several threads, each with its own `cols`.
    pub(crate) fn read<'c>(
        &self,
        i: usize,
        cols: &'c mut Columns,
    ) -> EvalResult<(&'c [i64], &'c [f64])> {
        let Columns { ts, vals } = cols;
        match &self.src {
            RangeSource::Storage(set) => {
                set.read(i, ts, vals)?;
                drop_stale(ts, vals);
            }
            RangeSource::Evaluated(series) => {
                ts.clear();
                vals.clear();
                ts.extend(series[i].points.iter().map(|p| p.0));
                vals.extend(series[i].points.iter().map(|p| p.1));
            }
        }
        Ok((ts, vals))
    }

    /// Each series' labels and name-removal flag, in series order.
    pub(crate) fn into_labels(self) -> Vec<(Labels, bool)> {
        match self.src {
            RangeSource::Storage(set) => {
                set.into_labels().into_iter().map(|l| (l, false)).collect()
            }
            RangeSource::Evaluated(series) => series
                .into_iter()
                .map(|s| (s.labels, s.drop_name))
                .collect(),
        }
    }

    /// The matrix value of a top-level range expression in an instant query.
    pub(crate) fn into_matrix(self, ev: &mut Evaluator<'_>) -> EvalResult<Vec<Series>> {
        let end = self.window_end(ev.start);
        let start = end.saturating_sub(self.range);
        let mut cols = Columns::default();
        let mut points = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            ev.check()?;
            let (ts, vals) = self.read(i, &mut cols)?;
            if self.is_stored() {
                ev.add_samples(ts.len())?;
            }
            points.push(
                ts.iter()
                    .zip(vals)
                    .filter(|(t, _)| **t > start && **t <= end)
                    .map(|(t, v)| (*t, *v))
                    .collect::<Vec<_>>(),
            );
        }
        Ok(self
            .into_labels()
            .into_iter()
            .zip(points)
            .filter(|(_, p)| !p.is_empty())
            .map(|((labels, drop_name), points)| Series {
                labels,
                drop_name,
                points,
            })
            .collect())
    }
}

/// Removes stale markers from the columns in place (only when there are any).
fn drop_stale(ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
    // Branch-free first (it vectorizes): most series hold no stale marker in the range.
    let any = vals
        .iter()
        .fold(false, |any, v| any | (v.to_bits() == STALE_NAN_BITS));
    if !any {
        return;
    }
    let Some(first) = vals.iter().position(|v| is_stale_nan(*v)) else {
        return;
    };
    let mut w = first;
    for r in first + 1..vals.len() {
        if !is_stale_nan(vals[r]) {
            ts[w] = ts[r];
            vals[w] = vals[r];
            w += 1;
        }
    }
    ts.truncate(w);
    vals.truncate(w);
}

/// An upper bound of the points a series with samples at `times` gives over `steps`, when a
/// step `t` can only see samples in `(t - offset - reach, t - offset]` (`reach`: the lookback
/// or the range): the steps from the first sample to the last one plus `reach`. With `@`
/// every step sees the same samples.
pub(crate) fn point_bound(
    steps: &[i64],
    times: &[i64],
    at: Option<i64>,
    offset: i64,
    reach: i64,
) -> usize {
    match (times.first(), times.last()) {
        (Some(_), Some(_)) if at.is_some() => steps.len(),
        (Some(&first), Some(&last)) => {
            let lo = first.saturating_add(offset);
            let hi = last.saturating_add(offset).saturating_add(reach);
            steps.partition_point(|&s| s < hi) - steps.partition_point(|&s| s < lo)
        }
        _ => 0,
    }
}

/// Sliding window over one series' timestamps: the index range of samples in
/// `(end - range, end]`. Window ends must not decrease between calls.
#[derive(Debug, Default)]
pub(crate) struct Window {
    lo: usize,
    hi: usize,
}

impl Window {
    /// Advances the window to end at `end` and returns the index range inside it.
    #[inline]
    pub(crate) fn slide(&mut self, ts: &[i64], end: i64, range: i64) -> std::ops::Range<usize> {
        let start = end.saturating_sub(range);
        if self.hi > 0 && ts.get(self.hi - 1).is_some_and(|&t| t > end) {
            // The end moved backwards (cannot happen for a fixed grid); restart.
            self.lo = 0;
            self.hi = 0;
        }
        while self.hi < ts.len() && ts[self.hi] <= end {
            self.hi += 1;
        }
        if self.lo > self.hi {
            self.lo = 0;
        }
        while self.lo < self.hi && ts[self.lo] <= start {
            self.lo += 1;
        }
        self.lo..self.hi
    }
}

impl<'a> Evaluator<'a> {
    /// The last step timestamp of the current grid (the end aligned down to the step).
    pub(crate) fn aligned_end(&self) -> i64 {
        let steps = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.step);
        i64::try_from(i128::from(self.start) + steps * i128::from(self.step)).unwrap_or(self.end)
    }

    /// Threads worth using for `work` (samples plus series × steps).
    pub(crate) fn threads_for(&self, work: usize) -> usize {
        if work < PARALLEL_MIN_WORK {
            1
        } else {
            self.threads
        }
    }

    /// Selects `vs`'s series in `[mint, maxt]`: projected when an aggregation planned that
    /// for this selector ([`super::projection`]), in full otherwise.
    fn select(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> EvalResult<Box<dyn SeriesSet + 'a>> {
        let set = match self.projected.iter().rev().find(|p| p.is_for(vs)) {
            Some(p) => self
                .q
                .select_lazy_projected(&vs.matchers, mint, maxt, &p.keep)?,
            None => self.q.select_lazy(&vs.matchers, mint, maxt)?,
        };
        Ok(set)
    }

    /// Evaluates an instant vector selector. With `timestamps`, values are the sample
    /// timestamps in seconds (for `timestamp()`), and the name is marked for removal.
    pub(crate) fn eval_vector_selector(
        &mut self,
        vs: &VectorSelector,
        timestamps: bool,
    ) -> EvalResult<Vec<Series>> {
        let at = self.at_time(vs.at);
        let lookback = self.opts.lookback_delta_ms;
        let ref_min = at.unwrap_or(self.start).saturating_sub(vs.offset);
        let ref_max = at.unwrap_or(self.aligned_end()).saturating_sub(vs.offset);
        let set = self.select(
            vs,
            ref_min.saturating_sub(lookback).saturating_add(1),
            ref_max,
        )?;
        let steps: Vec<i64> = self.step_times().collect();
        // Each step's sample bounds, the same for every series, worked out once: a step takes
        // the last sample at or before `r` if it is after `r - lookback`.
        let bounds: Vec<(i64, i64)> = steps
            .iter()
            .map(|&ts| {
                let r = at.unwrap_or(ts).saturating_sub(vs.offset);
                (r, r.saturating_sub(lookback))
            })
            .collect();
        let work = set.sample_hint() + set.len() * steps.len();
        let offset = vs.offset;
        let set_ref = &*set;
        let points = map_series(
            set.len(),
            self.threads_for(work),
            self.stop(),
            Columns::default,
            |i, cols| {
                let Columns { ts: times, vals } = cols;
                set_ref.read(i, times, vals)?;
                let mut j = 0;
                let n = times.len();
                // Sized once instead of grown by doubling: at most one point per step from the
                // first sample to the last one plus the lookback.
                let cap = point_bound(&steps, times, at, offset, lookback);
                let mut points = Vec::with_capacity(cap);
                for (&ts, &(r, low)) in steps.iter().zip(&bounds) {
                    while j < n && times[j] <= r {
                        j += 1;
                    }
                    if j == 0 {
                        continue;
                    }
                    let (t, v) = (times[j - 1], vals[j - 1]);
                    if t <= low || is_stale_nan(v) {
                        continue;
                    }
                    points.push((ts, if timestamps { t as f64 / 1000.0 } else { v }));
                }
                Ok(points)
            },
        )?;
        let mut out = Vec::with_capacity(points.len());
        for (labels, points) in set.into_labels().into_iter().zip(points) {
            if !points.is_empty() {
                self.add_samples(points.len())?;
                out.push(Series {
                    labels,
                    drop_name: timestamps,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a matrix selector or subquery into raw points for windowing.
    pub(crate) fn eval_range_input(&mut self, expr: &Expr) -> EvalResult<RangeInput<'a>> {
        match expr.unparen() {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                let at = self.at_time(vs.at);
                let ref_min = at.unwrap_or(self.start).saturating_sub(vs.offset);
                let ref_max = at.unwrap_or(self.aligned_end()).saturating_sub(vs.offset);
                let set = self.select(
                    vs,
                    ref_min.saturating_sub(ms.range).saturating_add(1),
                    ref_max,
                )?;
                Ok(RangeInput {
                    src: RangeSource::Storage(set),
                    range: ms.range,
                    offset: vs.offset,
                    at,
                })
            }
            Expr::Subquery(sq) => self.eval_subquery(sq),
            other => Err(QueryError::Execution(format!(
                "expected range vector, got {}",
                super::value_type(other).describe()
            ))),
        }
    }

    /// Runs a subquery's inner expression on its own step grid, aligned to multiples of the
    /// subquery step, covering every window the outer steps will need.
    fn eval_subquery(&mut self, sq: &Subquery) -> EvalResult<RangeInput<'a>> {
        let at = self.at_time(sq.at);
        let step = sq.step.unwrap_or(self.opts.default_subquery_step_ms).max(1);
        let ref_min = at.unwrap_or(self.start).saturating_sub(sq.offset);
        let ref_max = at.unwrap_or(self.aligned_end()).saturating_sub(sq.offset);
        let lo = ref_min.saturating_sub(sq.range);
        let mut inner_start = lo.div_euclid(step) * step;
        if inner_start <= lo {
            inner_start = inner_start.saturating_add(step);
        }
        let input = RangeInput {
            src: RangeSource::Evaluated(Vec::new()),
            range: sq.range,
            offset: sq.offset,
            at,
        };
        if inner_start > ref_max {
            return Ok(input);
        }
        let saved = (self.start, self.end, self.step);
        self.start = inner_start;
        self.end = ref_max;
        self.step = step;
        let res = self.check_grid().and_then(|_| self.eval(&sq.expr));
        let times = self.step_times();
        (self.start, self.end, self.step) = saved;
        let series = match res? {
            Val::Vector(series) => series,
            Val::Scalar(vals) => vec![Series {
                labels: Default::default(),
                drop_name: false,
                points: times.zip(vals).collect(),
            }],
            _ => {
                return Err(QueryError::Execution(format!(
                    "subquery is only allowed on instant vector, got {}",
                    ValueType::Matrix.describe()
                )))
            }
        };
        Ok(RangeInput {
            src: RangeSource::Evaluated(series),
            ..input
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{drop_stale, Window};
    use eddy_storage::stale_nan;

    #[test]
    fn window_is_left_open_and_slides() {
        let ts = [10, 20, 30, 40];
        let mut w = Window::default();
        assert_eq!(w.slide(&ts, 5, 10), 0..0);
        assert_eq!(w.slide(&ts, 20, 10), 1..2);
        assert_eq!(w.slide(&ts, 30, 20), 1..3);
        assert_eq!(w.slide(&ts, 100, 70), 3..4);
        assert_eq!(w.slide(&ts, 200, 10), 4..4);
        // An end that moves back restarts the window.
        assert_eq!(w.slide(&ts, 30, 15), 1..3);
    }

    #[test]
    fn stale_markers_are_dropped_in_place() {
        let mut ts = vec![1, 2, 3, 4, 5];
        let mut vals = vec![stale_nan(), 2.0, stale_nan(), f64::NAN, 5.0];
        drop_stale(&mut ts, &mut vals);
        assert_eq!(ts, vec![2, 4, 5]);
        assert_eq!(vals[0], 2.0);
        assert!(vals[1].is_nan() && !eddy_storage::is_stale_nan(vals[1]));
        assert_eq!(vals[2], 5.0);
        let (mut ts, mut vals) = (vec![7], vec![7.0]);
        drop_stale(&mut ts, &mut vals);
        assert_eq!((ts, vals), (vec![7], vec![7.0]));
    }
}
