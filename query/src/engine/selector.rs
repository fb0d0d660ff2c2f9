//! Selectors and subqueries: reading storage once per selector over the whole query span,
//! then sliding lookback windows (instant selectors) or range windows (range selectors,
//! subqueries) over the decoded points.

use eddy_storage::is_stale_nan;

use super::{EvalResult, Evaluator, Series, Val};
use crate::ast::{Expr, Subquery, ValueType, VectorSelector};
use crate::value::QueryError;

/// The input of a range-vector function: raw points per series (stale markers removed) and
/// how to place the window `(end - range, end]` for a step.
#[derive(Debug, Default)]
pub(crate) struct RangeInput {
    /// Series with their raw points.
    pub(crate) series: Vec<Series>,
    /// Window length in ms.
    pub(crate) range: i64,
    /// `offset` in ms.
    pub(crate) offset: i64,
    /// Resolved `@` time, if any.
    pub(crate) at: Option<i64>,
}

impl RangeInput {
    /// The inclusive end of the window evaluated at step `ts`.
    #[inline]
    pub(crate) fn window_end(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts).saturating_sub(self.offset)
    }

    /// The matrix value of a top-level range expression in an instant query.
    pub(crate) fn into_matrix(self, ev: &Evaluator<'_>) -> Vec<Series> {
        let end = self.window_end(ev.start);
        let start = end.saturating_sub(self.range);
        self.series
            .into_iter()
            .filter_map(|mut s| {
                s.points.retain(|p| p.0 > start && p.0 <= end);
                (!s.points.is_empty()).then_some(s)
            })
            .collect()
    }
}

/// Sliding window over one series' points: returns the index range of points in
/// `(end - range, end]`. Window ends must not decrease between calls.
#[derive(Debug, Default)]
pub(crate) struct Window {
    lo: usize,
    hi: usize,
}

impl Window {
    /// Advances the window to end at `end` and returns the points inside it.
    #[inline]
    pub(crate) fn slide<'p>(
        &mut self,
        points: &'p [(i64, f64)],
        end: i64,
        range: i64,
    ) -> &'p [(i64, f64)] {
        let start = end.saturating_sub(range);
        if self.hi > 0 && points.get(self.hi - 1).is_some_and(|p| p.0 > end) {
            // The end moved backwards (cannot happen for a fixed grid); restart.
            self.lo = 0;
            self.hi = 0;
        }
        while self.hi < points.len() && points[self.hi].0 <= end {
            self.hi += 1;
        }
        if self.lo > self.hi {
            self.lo = 0;
        }
        while self.lo < self.hi && points[self.lo].0 <= start {
            self.lo += 1;
        }
        &points[self.lo..self.hi]
    }
}

impl Evaluator<'_> {
    /// The last step timestamp of the current grid (the end aligned down to the step).
    pub(crate) fn aligned_end(&self) -> i64 {
        let steps = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.step);
        i64::try_from(i128::from(self.start) + steps * i128::from(self.step)).unwrap_or(self.end)
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
        let raw = self.q.select(
            &vs.matchers,
            ref_min.saturating_sub(lookback).saturating_add(1),
            ref_max,
        )?;
        let mut out = Vec::with_capacity(raw.len());
        for s in raw {
            self.check()?;
            let mut points = Vec::new();
            let mut j = 0;
            let n = s.timestamps.len();
            for ts in self.step_times() {
                let r = at.unwrap_or(ts).saturating_sub(vs.offset);
                while j < n && s.timestamps[j] <= r {
                    j += 1;
                }
                if j == 0 {
                    continue;
                }
                let (t, v) = (s.timestamps[j - 1], s.values[j - 1]);
                if t <= r.saturating_sub(lookback) || is_stale_nan(v) {
                    continue;
                }
                points.push((ts, if timestamps { t as f64 / 1000.0 } else { v }));
            }
            if !points.is_empty() {
                self.add_samples(points.len())?;
                out.push(Series {
                    labels: s.labels,
                    drop_name: timestamps,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a matrix selector or subquery into raw points for windowing.
    pub(crate) fn eval_range_input(&mut self, expr: &Expr) -> EvalResult<RangeInput> {
        match expr.unparen() {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                let at = self.at_time(vs.at);
                let ref_min = at.unwrap_or(self.start).saturating_sub(vs.offset);
                let ref_max = at.unwrap_or(self.aligned_end()).saturating_sub(vs.offset);
                let raw = self.q.select(
                    &vs.matchers,
                    ref_min.saturating_sub(ms.range).saturating_add(1),
                    ref_max,
                )?;
                let mut series = Vec::with_capacity(raw.len());
                for s in raw {
                    self.check()?;
                    let points: Vec<(i64, f64)> = s
                        .timestamps
                        .iter()
                        .zip(&s.values)
                        .filter(|(_, v)| !is_stale_nan(**v))
                        .map(|(t, v)| (*t, *v))
                        .collect();
                    self.add_samples(points.len())?;
                    series.push(Series {
                        labels: s.labels,
                        drop_name: false,
                        points,
                    });
                }
                Ok(RangeInput {
                    series,
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
    fn eval_subquery(&mut self, sq: &Subquery) -> EvalResult<RangeInput> {
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
            series: Vec::new(),
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
        Ok(RangeInput { series, ..input })
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn window_is_left_open_and_slides() {
        let pts = [(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)];
        let mut w = Window::default();
        assert_eq!(w.slide(&pts, 5, 10), &[]);
        assert_eq!(w.slide(&pts, 20, 10), &[(20, 2.0)]);
        assert_eq!(w.slide(&pts, 30, 20), &[(20, 2.0), (30, 3.0)]);
        assert_eq!(w.slide(&pts, 100, 70), &[(40, 4.0)]);
        assert_eq!(w.slide(&pts, 200, 10), &[]);
    }
}
