//! The storage API that the other crates use: write batches in, series out.
//!
//! `ingest` fills a [`WriteBatch`] (borrowing label strings from the request body where it can)
//! and hands it to the database's append; `query` reads through the [`Querier`] trait, which the
//! head, each block and the merged view implement.

use std::borrow::Cow;

use crate::error::Result;
use crate::labels::{Labels, Matcher, Projection};
use crate::series_key::SeriesKey;

/// Where the head last held a series: a hint that lets an append of a keyed series skip the
/// head's hash lookup (Prometheus's `SeriesRef` plays the same part). Only a hint: the head
/// checks that the entry at this place has the series' key before using it, so a reference
/// made stale by a head cut, by a removed series or by a restart only costs the lookup it
/// would have saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef(std::num::NonZeroU32);

impl SeriesRef {
    /// The reference to position `pos` of a head shard's entries (`None` past `u32::MAX - 1`).
    pub(crate) fn at(pos: usize) -> Option<SeriesRef> {
        u32::try_from(pos)
            .ok()
            .and_then(|p| p.checked_add(1))
            .and_then(std::num::NonZeroU32::new)
            .map(SeriesRef)
    }

    /// The position it refers to.
    pub(crate) fn pos(self) -> usize {
        self.0.get() as usize - 1
    }

    /// The reference as a non-zero number, for callers that store it (in an atomic, say).
    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// A reference stored by [`get`](Self::get) (`None` for zero).
    pub fn from_raw(raw: u32) -> Option<SeriesRef> {
        std::num::NonZeroU32::new(raw).map(SeriesRef)
    }
}

/// The Prometheus stale marker: a NaN with this exact bit pattern ends a series.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True if `v` is the stale marker (compared by bits, as NaN != NaN).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The stale marker as an `f64`.
#[inline]
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// One series of a [`WriteBatch`]: ranges into the batch's flat label and sample arrays.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchSeries {
    /// Range of this series' labels in [`WriteBatch::labels`].
    pub labels: (u32, u32),
    /// Range of this series' samples in the timestamp and value columns.
    pub samples: (u32, u32),
    /// The series' key when the writer knows it (see [`WriteBatch::start_keyed_series`]).
    pub key: Option<SeriesKey>,
    /// With a key: where the head held the series the last time (see [`SeriesRef`]; ignored
    /// without a key). The append replaces it with where the head holds the series now for
    /// every series it found or created, so that a writer can keep it; it stays as it was
    /// for series without samples, unresolved ones and refused ones.
    pub series_ref: Option<SeriesRef>,
}

/// Samples grouped by series, in flat arrays so that decoding allocates per batch, not per
/// sample. Labels may be in any order; storage canonicalizes them.
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    /// All label pairs of all series, concatenated.
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Series in arrival order.
    pub series: Vec<BatchSeries>,
    /// Sample timestamps (ms since epoch).
    pub timestamps: Vec<i64>,
    /// Sample values, parallel to `timestamps`.
    pub values: Vec<f64>,
}

impl<'a> WriteBatch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the batch, keeping capacity.
    pub fn clear(&mut self) {
        self.labels.clear();
        self.series.clear();
        self.timestamps.clear();
        self.values.clear();
    }

    /// Empties the batch and hands its allocations to a batch that may borrow from other
    /// data: a thread that decodes one request after another keeps one batch (as
    /// `WriteBatch<'static>` between requests) instead of growing four vectors from nothing
    /// each time, which cost ~7 % of remote_write's instructions in reallocation copies.
    pub fn recycle<'b>(mut self) -> WriteBatch<'b> {
        self.clear();
        WriteBatch {
            // The vector is empty, so the closure never runs (it only names the new type);
            // collecting a vector's own iterator into a type of the same layout keeps the
            // allocation, which the unit test below checks.
            labels: self
                .labels
                .into_iter()
                .map(|(n, v)| (Cow::Owned(n.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
            series: self.series,
            timestamps: self.timestamps,
            values: self.values,
        }
    }

    /// Heap bytes held by the batch's vectors (their capacity).
    pub fn allocated_bytes(&self) -> usize {
        self.labels.capacity() * std::mem::size_of::<(Cow<'a, str>, Cow<'a, str>)>()
            + self.series.capacity() * std::mem::size_of::<BatchSeries>()
            + self.timestamps.capacity() * 8
            + self.values.capacity() * 8
    }

    /// Starts a new series; following `push_label` / `push_sample` calls belong to it.
    pub fn start_series(&mut self) {
        let l = self.labels.len() as u32;
        let s = self.timestamps.len() as u32;
        self.series.push(BatchSeries {
            labels: (l, l),
            samples: (s, s),
            key: None,
            series_ref: None,
        });
    }

    /// Starts a series whose key the writer computed earlier with [`SeriesKey::of`] from the
    /// same labels. The head then trusts the key instead of checking and hashing the labels.
    /// The labels may be left out: if the head does not hold the series, the append reports
    /// it in [`AppendOutcome::unresolved`] and stores none of its samples, and the writer
    /// appends it again with its labels.
    pub fn start_keyed_series(&mut self, key: SeriesKey) {
        self.start_keyed_series_at(key, None);
    }

    /// [`start_keyed_series`](Self::start_keyed_series) with the reference an earlier append
    /// left in [`BatchSeries::series_ref`] for the same key.
    #[inline]
    pub fn start_keyed_series_at(&mut self, key: SeriesKey, series_ref: Option<SeriesRef>) {
        self.start_series();
        if let Some(s) = self.series.last_mut() {
            s.key = Some(key);
            s.series_ref = series_ref;
        }
    }

    /// Adds a label to the current series.
    #[inline]
    pub fn push_label(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.labels.push((name.into(), value.into()));
        if let Some(s) = self.series.last_mut() {
            s.labels.1 = self.labels.len() as u32;
        }
    }

    /// Adds a sample to the current series.
    #[inline]
    pub fn push_sample(&mut self, ts: i64, value: f64) {
        self.timestamps.push(ts);
        self.values.push(value);
        if let Some(s) = self.series.last_mut() {
            s.samples.1 = self.timestamps.len() as u32;
        }
    }

    /// Convenience: adds a whole series.
    pub fn add_series<N, V>(
        &mut self,
        labels: impl IntoIterator<Item = (N, V)>,
        samples: &[(i64, f64)],
    ) where
        N: Into<Cow<'a, str>>,
        V: Into<Cow<'a, str>>,
    {
        self.start_series();
        for (n, v) in labels {
            self.push_label(n, v);
        }
        for &(t, v) in samples {
            self.push_sample(t, v);
        }
    }

    /// Labels of series `i`.
    pub fn series_labels(&self, i: usize) -> &[(Cow<'a, str>, Cow<'a, str>)] {
        let (a, b) = self.series[i].labels;
        &self.labels[a as usize..b as usize]
    }

    /// Samples of series `i` as (timestamps, values).
    pub fn series_samples(&self, i: usize) -> (&[i64], &[f64]) {
        let (a, b) = self.series[i].samples;
        (
            &self.timestamps[a as usize..b as usize],
            &self.values[a as usize..b as usize],
        )
    }

    /// Number of samples in the batch.
    pub fn sample_count(&self) -> usize {
        self.timestamps.len()
    }

    /// True when the batch carries no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Why a sample or series was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Older than the newest sample minus the out-of-order window.
    OutOfOrder,
    /// Same timestamp as a stored sample but a different value.
    DuplicateTimestamp,
    /// Older than the oldest time the head still accepts (already cut into a block).
    TooOld,
    /// The label set is not valid (no metric name, bad name, duplicate names…).
    InvalidLabels,
    /// A series limit stopped a new series.
    SeriesLimit,
}

impl RejectReason {
    /// Short snake_case name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::TooOld => "too_old",
            RejectReason::InvalidLabels => "invalid_labels",
            RejectReason::SeriesLimit => "series_limit",
        }
    }
}

/// What happened to a batch: counts, plus the first few rejections spelled out for the client.
#[derive(Debug, Clone, Default)]
pub struct AppendOutcome {
    /// Samples stored.
    pub accepted: u64,
    /// Samples rejected, by reason.
    pub rejected: Vec<(RejectReason, u64)>,
    /// New series created by this batch.
    pub new_series: u64,
    /// Human-readable descriptions of the first rejections (bounded).
    pub messages: Vec<String>,
    /// Batch indices of keyed series sent without labels that the head does not hold; none
    /// of their samples were stored or rejected (see [`WriteBatch::start_keyed_series`]).
    pub unresolved: Vec<u32>,
}

impl AppendOutcome {
    /// Total rejected samples.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|r| r.1).sum()
    }

    /// Adds the counts and messages of a further append of the same request (`unresolved`
    /// is left as it is: it names series of the first batch).
    pub fn absorb(&mut self, other: AppendOutcome) {
        self.accepted += other.accepted;
        self.new_series += other.new_series;
        for (reason, n) in other.rejected {
            match self.rejected.iter_mut().find(|(r, _)| *r == reason) {
                Some(slot) => slot.1 += n,
                None => self.rejected.push((reason, n)),
            }
        }
        self.rejected.sort_unstable_by_key(|&(r, _)| r);
        let room = MAX_OUTCOME_MESSAGES.saturating_sub(self.messages.len());
        self.messages.extend(other.messages.into_iter().take(room));
    }
}

/// Messages an [`AppendOutcome`] keeps (the rest are only counted).
pub const MAX_OUTCOME_MESSAGES: usize = 10;

/// One series read back: canonical labels and its samples, time-ordered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Canonical labels.
    pub labels: Labels,
    /// Timestamps in ms, strictly increasing.
    pub timestamps: Vec<i64>,
    /// Values parallel to `timestamps` (stale markers included).
    pub values: Vec<f64>,
}

/// A selection whose samples are read on demand, one series at a time, from any number of
/// threads at once: what [`Querier::select_lazy`] returns. Series are sorted by labels, as
/// [`Querier::select`] returns them, but a series may turn out to hold no samples in the
/// range (its index entry matched, its chunks only straddle the range); callers treat such a
/// series as absent.
pub trait SeriesSet: Send + Sync {
    /// Number of series.
    fn len(&self) -> usize;

    /// True when the set holds no series.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Labels of series `i` (`i < len()`).
    fn labels(&self, i: usize) -> &Labels;

    /// An upper bound of the samples that reading every series yields, known without
    /// decoding; for deciding whether work is worth spreading over threads.
    fn sample_hint(&self) -> usize;

    /// Clears `ts` and `vals` and fills them with series `i`'s samples in the selected
    /// range, time-ordered (stale markers included). The buffers are the caller's to reuse.
    fn read(&self, i: usize, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<()>;

    /// The label sets in series order, consuming the set (so callers need not clone them).
    fn into_labels(self: Box<Self>) -> Vec<Labels>;
}

/// The eager form: series already read.
impl SeriesSet for Vec<Series> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn labels(&self, i: usize) -> &Labels {
        &self[i].labels
    }

    fn sample_hint(&self) -> usize {
        self.iter().map(|s| s.timestamps.len()).sum()
    }

    fn read(&self, i: usize, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<()> {
        ts.clear();
        vals.clear();
        ts.extend_from_slice(&self[i].timestamps);
        vals.extend_from_slice(&self[i].values);
        Ok(())
    }

    fn into_labels(self: Box<Self>) -> Vec<Labels> {
        self.into_iter().map(|s| s.labels).collect()
    }
}

/// A selection whose labels were projected after it was made: the default of
/// [`Querier::select_lazy_projected`]. Samples are read from the wrapped set.
struct ProjectedSet<'a> {
    inner: Box<dyn SeriesSet + 'a>,
    labels: Vec<Labels>,
}

impl<'a> ProjectedSet<'a> {
    fn new(inner: Box<dyn SeriesSet + 'a>, keep: &Projection) -> Self {
        let labels = (0..inner.len())
            .map(|i| {
                let l = inner.labels(i);
                keep.build(l.pairs())
            })
            .collect();
        ProjectedSet { inner, labels }
    }
}

impl SeriesSet for ProjectedSet<'_> {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn labels(&self, i: usize) -> &Labels {
        &self.labels[i]
    }

    fn sample_hint(&self) -> usize {
        self.inner.sample_hint()
    }

    fn read(&self, i: usize, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<()> {
        self.inner.read(i, ts, vals)
    }

    fn into_labels(self: Box<Self>) -> Vec<Labels> {
        self.labels
    }
}

/// Read access to stored series. Implementations: the head, a block, and the merged view.
/// Methods are safe to call concurrently; results are a consistent snapshot at call time.
pub trait Querier: Send + Sync {
    /// Series matching all `matchers` that have samples in `[mint, maxt]` (inclusive, ms),
    /// with those samples, sorted by labels.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>>;

    /// Like [`select`](Self::select), but samples are decoded only when a series is
    /// [read](SeriesSet::read), into the caller's buffers, so a query engine can decode and
    /// evaluate series in parallel without holding every column at once. The set is a
    /// snapshot as of this call. The default reads everything through `select`.
    fn select_lazy(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn SeriesSet + '_>> {
        Ok(Box::new(self.select(matchers, mint, maxt)?))
    }

    /// Like [`select_lazy`](Self::select_lazy), but the set's [`labels`](SeriesSet::labels)
    /// hold only the names `keep` lists: for a query that needs a few labels of each series
    /// (an aggregation `by (job)`), building the others cost about a third of its
    /// instructions. Everything else is as `select_lazy` gives it: the same series in the
    /// same order (sorted by their full labels), the same samples. Series stay distinct by
    /// their full labels, so two series of the set may carry equal projected labels; callers
    /// must tell series apart by position. The default selects through `select_lazy` and
    /// projects after; the merged view builds only the kept labels.
    fn select_lazy_projected(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        keep: &Projection,
    ) -> Result<Box<dyn SeriesSet + '_>> {
        let set = self.select_lazy(matchers, mint, maxt)?;
        Ok(Box::new(ProjectedSet::new(set, keep)))
    }

    /// Label sets (no samples) of series matching `matchers` with data in `[mint, maxt]`.
    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Labels>>;

    /// Sorted label names of series matching `matchers` (all series if empty) in `[mint, maxt]`.
    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>>;

    /// Sorted values of label `name` among series matching `matchers` in `[mint, maxt]`.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A querier that implements only the required methods, over fixed series.
    struct Fixed(Vec<Series>);

    impl Querier for Fixed {
        fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<Series>> {
            Ok(self.0.clone())
        }
        fn series(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<Labels>> {
            Ok(Vec::new())
        }
        fn label_names(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
        fn label_values(&self, _: &str, _: &[Matcher], _: i64, _: i64) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
    }

    /// The default projected selection keeps the series, their order and samples, and only
    /// the kept labels; equal projected label sets stay two series.
    #[test]
    fn default_projected_selection_projects_after_selecting() {
        let series = |task: &str, v: f64| Series {
            labels: Labels::from_pairs([("__name__", "m"), ("job", "j"), ("task", task)]),
            timestamps: vec![1, 2],
            values: vec![v, stale_nan()],
        };
        let q = Fixed(vec![series("1", 1.0), series("2", 2.0)]);
        let keep = Projection::new(["job"]);
        let set = q.select_lazy_projected(&[], 0, 10, &keep).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.sample_hint(), 4);
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        set.read(1, &mut ts, &mut vals).unwrap();
        assert_eq!(ts, [1, 2]);
        assert_eq!(vals[0], 2.0);
        assert!(is_stale_nan(vals[1]));
        let want = Labels::from_pairs([("job", "j")]);
        assert_eq!(set.labels(0), &want);
        assert_eq!(set.into_labels(), [want.clone(), want]);
    }

    #[test]
    fn recycled_batch_is_empty_and_keeps_its_allocations() {
        let owned: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        let mut batch = WriteBatch::new();
        for v in &owned {
            batch.add_series(
                [("__name__", "m"), ("i", v.as_str())],
                &[(1, 2.0), (3, 4.0)],
            );
        }
        let bytes = batch.allocated_bytes();
        let labels_cap = batch.labels.capacity();
        let again: WriteBatch<'static> = batch.recycle();
        assert!(again.labels.is_empty() && again.series.is_empty());
        assert!(again.timestamps.is_empty() && again.values.is_empty());
        assert_eq!(again.labels.capacity(), labels_cap);
        assert_eq!(again.allocated_bytes(), bytes);
        assert!(bytes >= 1000 * 2 * 48 + 1000 * 16 + 2000 * 16);
    }
}
