//! OTLP/HTTP metrics (`POST /v1/metrics`, protobuf `ExportMetricsServiceRequest`) decoded into
//! a [`WriteBatch`] with Prometheus names, by a hand-written zero-copy protobuf walk.
//!
//! Mapping (OpenTelemetry's Prometheus compatibility spec, as Prometheus's OTLP receiver with
//! `UnderscoreEscapingWithSuffixes` does; see `docs/ingest-influx.md` § OTLP):
//! - names: invalid characters → `_`, unit suffix, `_total` on monotonic sums;
//! - gauges and non-monotonic cumulative sums → gauges; monotonic sums → counters, DELTA ones
//!   accumulated into cumulative totals by a [`DeltaAccumulator`];
//! - summaries → `{quantile=…}`, `_sum`, `_count`; histograms → `_bucket{le=…}`, `_sum`,
//!   `_count`; exponential histograms and delta histograms are skipped and counted;
//! - data point attributes → labels; resource `service.namespace/service.name` → `job`,
//!   `service.instance.id` → `instance`, the other resource attributes → one `target_info`.
//!
//! Flink 2.x's OpenTelemetry reporter (scope `io.confluent.flink.common.metrics`, names
//! `flink.<scope>.<metric>`) gets no suffixes by default, so its series carry the names of
//! Flink's Prometheus reporter (see [`FlinkNames`]).
//!
//! Strings borrow from the body; the ones it does not contain (sanitized names, formatted
//! numbers, joined values) are written once per request into an [`OtlpScratch`] that the batch
//! borrows too, so decoding allocates nothing per data point.

mod delta;
pub mod encode;
mod error;
mod histogram;
mod naming;
mod proto;

use std::fmt::Write as _;

use eddy_storage::api::stale_nan;
use eddy_storage::WriteBatch;

pub use delta::{DeltaAccumulator, DeltaOutcome};
pub use error::OtlpError;

use crate::arena::{Arena, Str};
use naming::{Kind, Suffixes};
use proto::{expect, Reader, Wire};

/// Result type of this module.
pub type Result<T, E = OtlpError> = std::result::Result<T, E>;

/// The instrumentation scope of Flink's OpenTelemetry metric reporter.
pub const FLINK_SCOPE: &str = "io.confluent.flink.common.metrics";

/// When metrics keep Flink's Prometheus-reporter names (no unit or `_total` suffix, meter
/// `<name>.rate` under `<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlinkNames {
    /// Never: every metric follows the spec.
    Off,
    /// Metrics of scope [`FLINK_SCOPE`] or named `flink.*`. The default.
    #[default]
    Auto,
    /// Every metric.
    On,
}

/// How to decode a request.
#[derive(Debug, Clone)]
pub struct OtlpOptions {
    /// Server clock (ms): timestamp for points without one, and delta-series idle eviction.
    pub now_ms: i64,
    /// Append the unit (`_seconds`, `_bytes`, `_ratio`…) to names. Default true.
    pub unit_suffixes: bool,
    /// Append `_total` to monotonic sums. Default true.
    pub total_suffix: bool,
    /// Flink naming; see [`FlinkNames`].
    pub flink_names: FlinkNames,
    /// Emit `target_info{job, instance, <other resource attributes>} 1` per resource. Default
    /// true.
    pub target_info: bool,
    /// Add `otel_scope_name` and `otel_scope_version` labels to every series. Default false (as
    /// Prometheus; it would also split Flink series from the scrape path's).
    pub scope_labels: bool,
    /// Resource attributes copied onto every series as labels (sanitized names).
    pub promote_resource_attributes: Vec<String>,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        OtlpOptions {
            now_ms: 0,
            unit_suffixes: true,
            total_suffix: true,
            flink_names: FlinkNames::Auto,
            target_info: true,
            scope_labels: false,
            promote_resource_attributes: Vec::new(),
        }
    }
}

/// What one request contained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpStats {
    /// `ResourceMetrics` messages.
    pub resource_metrics: u64,
    /// `Metric` messages.
    pub metrics: u64,
    /// Data points decoded (all types).
    pub data_points: u64,
    /// Samples added to the batch.
    pub samples: u64,
    /// Exponential histogram points, skipped.
    pub exponential_histogram_points_skipped: u64,
    /// Points dropped because eddy cannot store them faithfully: delta non-monotonic sums,
    /// delta histograms, unspecified temporality, number points without a value, NaN or
    /// infinite deltas.
    pub points_dropped: u64,
    /// Delta points not newer than their series' last point.
    pub delta_out_of_order: u64,
    /// Delta points of new series refused because the accumulator is full.
    pub delta_limit_dropped: u64,
    /// Attributes with empty keys or values that do not map to a label (bytes, arrays, maps).
    pub attributes_dropped: u64,
    /// Histogram points whose bucket counts do not match their bounds (only `+Inf` is kept).
    pub invalid_histograms: u64,
}

/// Reusable buffers of the decoder: the derived strings of one request (which the request's
/// batch borrows) and per-point scratch. Keep one per worker thread and pass it to every
/// [`decode_metrics_request`]; once grown to size, decoding allocates nothing more in it.
#[derive(Debug, Default)]
pub struct OtlpScratch {
    arena: Arena,
    bufs: Bufs,
}

/// The lifetime-free scratch vectors, moved into the decoder for one request and back.
#[derive(Debug, Default)]
struct Bufs {
    buckets: Vec<u64>,
    bounds: Vec<u64>,
    quantiles: Vec<(f64, f64)>,
    pending: Vec<Pending>,
    unit_word: String,
    unit_plain: String,
}

impl OtlpScratch {
    /// An empty scratch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Heap bytes kept for the next request, so a caller can drop a scratch that one huge
    /// request blew up.
    pub fn retained_bytes(&self) -> usize {
        let b = &self.bufs;
        self.arena.retained_bytes()
            + (b.buckets.capacity() + b.bounds.capacity()) * 8
            + b.quantiles.capacity() * 16
            + b.pending.capacity() * std::mem::size_of::<Pending>()
            + b.unit_word.capacity()
            + b.unit_plain.capacity()
    }
}

/// Decodes one `ExportMetricsServiceRequest` into `batch`, accumulating DELTA sums in `acc`.
/// Labels borrow from `body`, from `opts` (promoted attribute names) and from `scratch`
/// (derived names and values; each distinct string once). `scratch` is emptied first and stays
/// borrowed as long as the batch. On error the batch and the accumulator are left as they were.
pub fn decode_metrics_request<'a>(
    body: &'a [u8],
    opts: &'a OtlpOptions,
    acc: &mut DeltaAccumulator,
    scratch: &'a mut OtlpScratch,
    batch: &mut WriteBatch<'a>,
) -> Result<OtlpStats> {
    let mark = (
        batch.labels.len(),
        batch.series.len(),
        batch.timestamps.len(),
    );
    scratch.arena.clear();
    let mut d = Decoder::new(
        opts,
        &mut scratch.arena,
        batch,
        std::mem::take(&mut scratch.bufs),
    );
    let res = d.request(body);
    let mut stats = d.stats;
    scratch.bufs = d.bufs;
    // Decoding is done: the arena is frozen and the batch may borrow from it.
    let scratch: &'a OtlpScratch = scratch;
    let res = res.and_then(|()| {
        scratch
            .arena
            .resolve(batch)
            .map_err(|_| OtlpError::DerivedTooLarge)
    });
    if let Err(e) = res {
        batch.labels.truncate(mark.0);
        batch.series.truncate(mark.1);
        batch.timestamps.truncate(mark.2);
        batch.values.truncate(mark.2);
        return Err(e);
    }
    let pending = &scratch.bufs.pending;
    delta::apply_deltas(batch, pending, mark.1, acc, opts.now_ms, &mut stats);
    acc.maybe_evict(opts.now_ms, false);
    Ok(stats)
}

/// A delta point waiting for the accumulator: it is applied only once the whole request has
/// decoded, so a malformed request changes nothing.
#[derive(Debug, Clone, Copy)]
struct Pending {
    series: u32,
    start_ns: u64,
    time_ns: u64,
}

/// How the points of one metric become series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Delta,
}

type LabelVec<'a> = Vec<(Str<'a>, Str<'a>)>;

struct Decoder<'a, 'b> {
    opts: &'a OtlpOptions,
    arena: &'b mut Arena,
    batch: &'b mut WriteBatch<'a>,
    stats: OtlpStats,
    /// Labels of the current resource (job, instance, promoted) then scope labels.
    res_labels: LabelVec<'a>,
    /// Resource attributes for `target_info`.
    res_other: LabelVec<'a>,
    /// Labels of the current data point, and their attribute keys as sent.
    point_labels: LabelVec<'a>,
    raw_keys: Vec<&'a str>,
    sanitized_keys: bool,
    bufs: Bufs,
    max_ts: Option<i64>,
}

impl<'a, 'b> Decoder<'a, 'b> {
    fn new(
        opts: &'a OtlpOptions,
        arena: &'b mut Arena,
        batch: &'b mut WriteBatch<'a>,
        mut bufs: Bufs,
    ) -> Self {
        bufs.pending.clear();
        // Label lists are short; one allocation each per request.
        Decoder {
            opts,
            arena,
            batch,
            stats: OtlpStats::default(),
            res_labels: Vec::with_capacity(16),
            res_other: Vec::with_capacity(16),
            point_labels: Vec::with_capacity(32),
            raw_keys: Vec::with_capacity(32),
            sanitized_keys: false,
            bufs,
            max_ts: None,
        }
    }

    /// Text of a label string (a body slice or an arena range).
    fn text(&self, s: Str<'a>) -> &str {
        self.arena.get(s)
    }

    fn request(&mut self, body: &'a [u8]) -> Result<()> {
        let mut r = Reader::new(body, 0);
        while let Some((f, w, at)) = r.field()? {
            match f {
                1 => {
                    expect(w, Wire::Len, "resource_metrics", at)?;
                    self.resource_metrics(r.message("resource_metrics")?)?;
                }
                _ => r.skip(w)?,
            }
        }
        Ok(())
    }

    fn resource_metrics(&mut self, r: Reader<'a>) -> Result<()> {
        self.stats.resource_metrics += 1;
        self.res_labels.clear();
        self.res_other.clear();
        self.max_ts = None;
        // The resource may follow its metrics on the wire; read it first.
        let mut pass = r;
        while let Some((f, w, at)) = pass.field()? {
            if f == 1 {
                expect(w, Wire::Len, "resource", at)?;
                self.resource(pass.message("resource")?)?;
            } else {
                pass.skip(w)?;
            }
        }
        let mut pass = r;
        while let Some((f, w, at)) = pass.field()? {
            if f == 2 {
                expect(w, Wire::Len, "scope_metrics", at)?;
                self.scope_metrics(pass.message("scope_metrics")?)?;
            } else {
                pass.skip(w)?;
            }
        }
        self.target_info();
        Ok(())
    }

    fn resource(&mut self, mut r: Reader<'a>) -> Result<()> {
        let (mut name, mut namespace, mut instance) = (None, None, None);
        while let Some((f, w, at)) = r.field()? {
            if f != 1 {
                r.skip(w)?;
                continue;
            }
            expect(w, Wire::Len, "resource attribute", at)?;
            let Some((key, value)) = self.key_value(r.message("resource attribute")?)? else {
                continue;
            };
            match key {
                "service.name" => name = Some(value),
                "service.namespace" => namespace = Some(value),
                "service.instance.id" => instance = Some(value),
                _ => {
                    if key.is_empty() {
                        continue;
                    }
                    let label = self.label_name(key);
                    if self
                        .opts
                        .promote_resource_attributes
                        .iter()
                        .any(|p| p.as_str() == key)
                    {
                        // Same name as the target_info label, but also wanted on every series.
                        self.res_labels.push((label, value));
                    }
                    self.res_other.push((label, value));
                }
            }
        }
        let job = match (namespace, name) {
            (Some(ns), Some(n)) if !self.text(ns).is_empty() => {
                Some(Str::Derived(self.arena.derive(|a, dst| {
                    let _ = write!(dst, "{}/{}", a.get(ns), a.get(n));
                })))
            }
            (_, n) => n,
        };
        if let Some(job) = job {
            self.res_labels.push((Str::Borrowed("job"), job));
        }
        if let Some(instance) = instance {
            self.res_labels.push((Str::Borrowed("instance"), instance));
        }
        Ok(())
    }

    /// The label name of attribute key `key` (not empty): the key itself when valid.
    fn label_name(&mut self, key: &'a str) -> Str<'a> {
        if naming::is_clean(key, false) {
            return Str::Borrowed(key);
        }
        Str::Derived(self.arena.derive(|_, dst| {
            naming::label_name(dst, key);
        }))
    }

    /// `target_info` for the resource just decoded, at the newest timestamp of its points.
    fn target_info(&mut self) {
        let (Some(ts), true) = (self.max_ts, self.opts.target_info) else {
            return;
        };
        if self.res_other.is_empty() {
            return;
        }
        self.batch.start_series();
        self.batch.push_label("__name__", "target_info");
        for &(n, v) in &self.res_labels {
            if matches!(self.arena.get(n), "job" | "instance") {
                self.arena.push_label(self.batch, n, v);
            }
        }
        for &(n, v) in &self.res_other {
            self.arena.push_label(self.batch, n, v);
        }
        self.batch.push_sample(ts, 1.0);
        self.stats.samples += 1;
    }

    fn scope_metrics(&mut self, r: Reader<'a>) -> Result<()> {
        let (mut scope_name, mut scope_version) = ("", "");
        let mut pass = r;
        while let Some((f, w, at)) = pass.field()? {
            if f != 1 {
                pass.skip(w)?;
                continue;
            }
            expect(w, Wire::Len, "scope", at)?;
            let mut s = pass.message("scope")?;
            while let Some((f, w, at)) = s.field()? {
                match f {
                    1 => {
                        scope_name = expect(w, Wire::Len, "scope name", at)
                            .and_then(|_| s.str("scope name"))?
                    }
                    2 => {
                        scope_version = expect(w, Wire::Len, "scope version", at)
                            .and_then(|_| s.str("scope version"))?
                    }
                    _ => s.skip(w)?,
                }
            }
        }
        let res_len = self.res_labels.len();
        if self.opts.scope_labels {
            if !scope_name.is_empty() {
                self.res_labels
                    .push((Str::Borrowed("otel_scope_name"), Str::Borrowed(scope_name)));
            }
            if !scope_version.is_empty() {
                self.res_labels.push((
                    Str::Borrowed("otel_scope_version"),
                    Str::Borrowed(scope_version),
                ));
            }
        }
        let flink_scope = scope_name == FLINK_SCOPE;
        let mut pass = r;
        let mut res = Ok(());
        while let Some((f, w, at)) = pass.field()? {
            if f == 2 {
                expect(w, Wire::Len, "metric", at)?;
                res = self.metric(pass.message("metric")?, flink_scope);
                if res.is_err() {
                    break;
                }
            } else {
                pass.skip(w)?;
            }
        }
        self.res_labels.truncate(res_len);
        res
    }

    fn metric(&mut self, mut r: Reader<'a>, flink_scope: bool) -> Result<()> {
        self.stats.metrics += 1;
        let (mut name, mut unit, mut data) = ("", "", None);
        while let Some((f, w, at)) = r.field()? {
            match f {
                1 => {
                    name = expect(w, Wire::Len, "metric name", at)
                        .and_then(|_| r.str("metric name"))?
                }
                3 => {
                    unit = expect(w, Wire::Len, "metric unit", at)
                        .and_then(|_| r.str("metric unit"))?
                }
                5 | 7 | 9 | 10 | 11 => {
                    expect(w, Wire::Len, "metric data", at)?;
                    data = Some((f, r.message("metric data")?));
                }
                _ => r.skip(w)?,
            }
        }
        let Some((kind, data)) = data else {
            return Ok(());
        };
        let flink = match self.opts.flink_names {
            FlinkNames::Off => false,
            FlinkNames::On => true,
            FlinkNames::Auto => flink_scope || name.starts_with("flink."),
        };
        let sfx = if flink {
            Suffixes {
                unit: false,
                total: false,
            }
        } else {
            Suffixes {
                unit: self.opts.unit_suffixes,
                total: self.opts.total_suffix,
            }
        };
        match kind {
            5 => {
                // Flink meters arrive as `<name>.rate` (gauge) + `<name>.count` (sum); the
                // Prometheus reporter exports the rate under `<name>`.
                let base = if flink {
                    name.strip_suffix(".rate").unwrap_or(name)
                } else {
                    name
                };
                let n = self.metric_name(base, unit, Kind::Gauge, sfx);
                self.number_points(data, n, Mode::Plain)
            }
            7 => self.sum(data, name, unit, sfx),
            9 => self.histogram(data, name, unit, sfx),
            10 => {
                self.stats.exponential_histogram_points_skipped += count_points(data)?;
                Ok(())
            }
            _ => self.summary(data, name, unit, sfx),
        }
    }

    fn sum(&mut self, data: Reader<'a>, name: &'a str, unit: &str, sfx: Suffixes) -> Result<()> {
        let (mut temporality, mut monotonic) = (0, false);
        let mut pass = data;
        while let Some((f, w, at)) = pass.field()? {
            match f {
                2 => {
                    temporality = expect(w, Wire::Varint, "temporality", at)
                        .and_then(|_| pass.varint("temporality"))?
                }
                3 => {
                    monotonic = expect(w, Wire::Varint, "is_monotonic", at)
                        .and_then(|_| pass.varint("is_monotonic"))?
                        != 0
                }
                _ => pass.skip(w)?,
            }
        }
        let (kind, mode) = match (temporality, monotonic) {
            (2, true) => (Kind::Counter, Mode::Plain),
            (1, true) => (Kind::Counter, Mode::Delta),
            (2, false) => (Kind::Gauge, Mode::Plain),
            _ => {
                self.stats.points_dropped += count_points(data)?;
                return Ok(());
            }
        };
        let n = self.metric_name(name, unit, kind, sfx);
        self.number_points(data, n, mode)
    }

    /// The Prometheus name of metric `raw`: the raw name when it needs no change, else an
    /// interned arena string (Flink repeats each name for every subtask).
    pub(crate) fn metric_name(
        &mut self,
        raw: &'a str,
        unit: &str,
        kind: Kind,
        sfx: Suffixes,
    ) -> Str<'a> {
        let b = &mut self.bufs;
        if sfx.unit {
            naming::prom_unit(&mut b.unit_word, &mut b.unit_plain, unit, kind);
        } else {
            b.unit_word.clear();
        }
        let word = b.unit_word.as_str();
        let mut borrowed = None;
        let span = self.arena.derive(|_, dst| {
            borrowed = naming::metric_name(dst, raw, word, kind, sfx);
        });
        match borrowed {
            Some(raw) => Str::Borrowed(raw),
            None => Str::Derived(span),
        }
    }

    /// Emits the points of a Gauge or Sum.
    fn number_points(&mut self, data: Reader<'a>, name: Str<'a>, mode: Mode) -> Result<()> {
        let mut r = data;
        while let Some((f, w, at)) = r.field()? {
            if f != 1 {
                r.skip(w)?;
                continue;
            }
            expect(w, Wire::Len, "data point", at)?;
            self.number_point(r.message("data point")?, name, mode)?;
        }
        Ok(())
    }

    fn number_point(&mut self, mut r: Reader<'a>, name: Str<'a>, mode: Mode) -> Result<()> {
        self.begin_point();
        let (mut start, mut time, mut value, mut flags) = (0, 0, None, 0);
        while let Some((f, w, at)) = r.field()? {
            match f {
                7 => self.attribute(&mut r, w, at, None)?,
                2 => {
                    start = expect(w, Wire::I64, "start_time_unix_nano", at)
                        .and_then(|_| r.fixed64("start time"))?
                }
                3 => {
                    time = expect(w, Wire::I64, "time_unix_nano", at)
                        .and_then(|_| r.fixed64("time"))?
                }
                4 => {
                    value = Some(
                        expect(w, Wire::I64, "as_double", at).and_then(|_| r.f64("as_double"))?,
                    )
                }
                6 => {
                    value = Some(
                        expect(w, Wire::I64, "as_int", at).and_then(|_| r.fixed64("as_int"))? as i64
                            as f64,
                    )
                }
                8 => {
                    flags = expect(w, Wire::Varint, "flags", at).and_then(|_| r.varint("flags"))?
                }
                _ => r.skip(w)?,
            }
        }
        self.stats.data_points += 1;
        let no_value = flags & 1 != 0;
        let v = match value {
            _ if no_value => stale_nan(),
            Some(v) => v,
            None => {
                self.stats.points_dropped += 1;
                return Ok(());
            }
        };
        self.finish_labels();
        let ts = self.ts_ms(time);
        let series = self.emit(name, None, ts, v);
        if mode == Mode::Delta && !no_value {
            self.bufs.pending.push(Pending {
                series,
                start_ns: start,
                time_ns: time,
            });
        }
        Ok(())
    }

    fn begin_point(&mut self) {
        self.point_labels.clear();
        self.raw_keys.clear();
        self.sanitized_keys = false;
    }

    /// Reads one attribute `KeyValue` into the point's labels. Attributes named like a resource
    /// label (`job`, `instance`, promoted) or `reserved` (`le`, `quantile`) are dropped: the
    /// series' own value wins.
    fn attribute(
        &mut self,
        r: &mut Reader<'a>,
        w: Wire,
        at: usize,
        reserved: Option<&str>,
    ) -> Result<()> {
        expect(w, Wire::Len, "attribute", at)?;
        let Some((key, value)) = self.key_value(r.message("attribute")?)? else {
            return Ok(());
        };
        if key.is_empty() {
            self.stats.attributes_dropped += 1;
            return Ok(());
        }
        let name = self.label_name(key);
        let text = self.text(name);
        if reserved == Some(text) || self.res_labels.iter().any(|&(n, _)| self.text(n) == text) {
            self.stats.attributes_dropped += 1;
            return Ok(());
        }
        self.sanitized_keys |= matches!(name, Str::Derived(_));
        self.point_labels.push((name, value));
        self.raw_keys.push(key);
        Ok(())
    }

    /// Merges attributes whose sanitized names collide: values joined with `;` in the order of
    /// the original keys (spec). Only sanitized names can collide, so this is rare, and the
    /// merge (which allocates) runs only when two names are equal.
    fn finish_labels(&mut self) {
        if !self.sanitized_keys || self.point_labels.len() < 2 {
            return;
        }
        let labels = &self.point_labels;
        let name = |i: usize| self.arena.get(labels[i].0);
        let collide = (1..labels.len()).any(|a| (0..a).any(|b| name(a) == name(b)));
        if !collide {
            return;
        }
        let mut items: Vec<_> = self
            .point_labels
            .drain(..)
            .zip(self.raw_keys.drain(..))
            .collect();
        let arena = &mut *self.arena;
        items.sort_by(|a, b| (arena.get(a.0 .0), a.1).cmp(&(arena.get(b.0 .0), b.1)));
        for ((name, value), key) in items {
            match self.point_labels.last_mut() {
                Some((last, v)) if arena.get(*last) == arena.get(name) => {
                    let prev = *v;
                    *v = Str::Derived(arena.derive(|a, dst| {
                        dst.push_str(a.get(prev));
                        dst.push(';');
                        dst.push_str(a.get(value));
                    }));
                }
                _ => {
                    self.point_labels.push((name, value));
                    self.raw_keys.push(key);
                }
            }
        }
    }

    /// Parses a `KeyValue`; `None` (counted) when the value has no label form.
    fn key_value(&mut self, mut r: Reader<'a>) -> Result<Option<(&'a str, Str<'a>)>> {
        let (mut key, mut value) = ("", None);
        while let Some((f, w, at)) = r.field()? {
            match f {
                1 => {
                    key = expect(w, Wire::Len, "attribute key", at)
                        .and_then(|_| r.str("attribute key"))?
                }
                2 => {
                    expect(w, Wire::Len, "attribute value", at)?;
                    value = any_value(r.message("attribute value")?, self.arena)?;
                }
                _ => r.skip(w)?,
            }
        }
        match value {
            Some(v) if !key.is_empty() => Ok(Some((key, v))),
            _ => {
                self.stats.attributes_dropped += 1;
                Ok(None)
            }
        }
    }

    fn ts_ms(&mut self, time_ns: u64) -> i64 {
        let ts = if time_ns == 0 {
            self.opts.now_ms
        } else {
            (time_ns / 1_000_000) as i64
        };
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        ts
    }

    /// Adds one series with the current resource and point labels; returns its index.
    fn emit(
        &mut self,
        name: Str<'a>,
        extra: Option<(&'static str, Str<'a>)>,
        ts: i64,
        v: f64,
    ) -> u32 {
        let idx = self.batch.series.len() as u32;
        self.batch.start_series();
        self.arena
            .push_label(self.batch, Str::Borrowed("__name__"), name);
        if let Some((n, value)) = extra {
            self.arena.push_label(self.batch, Str::Borrowed(n), value);
        }
        for &(n, value) in self.res_labels.iter().chain(self.point_labels.iter()) {
            self.arena.push_label(self.batch, n, value);
        }
        self.batch.push_sample(ts, v);
        self.stats.samples += 1;
        idx
    }
}

/// Renders an `AnyValue` as a label value: strings borrowed, bool/int/double formatted into
/// the arena; bytes, arrays and key-value lists have no label form (`None`).
fn any_value<'a>(mut r: Reader<'a>, arena: &mut Arena) -> Result<Option<Str<'a>>> {
    let mut out = None;
    while let Some((f, w, at)) = r.field()? {
        out = match f {
            1 => Some(Str::Borrowed(
                expect(w, Wire::Len, "string_value", at).and_then(|_| r.str("string_value"))?,
            )),
            2 => {
                let b = expect(w, Wire::Varint, "bool_value", at)
                    .and_then(|_| r.varint("bool_value"))?;
                Some(Str::Borrowed(if b != 0 { "true" } else { "false" }))
            }
            3 => {
                let i = expect(w, Wire::Varint, "int_value", at)
                    .and_then(|_| r.varint("int_value"))? as i64;
                Some(Str::Derived(arena.derive(|_, dst| {
                    let _ = write!(dst, "{i}");
                })))
            }
            4 => {
                let d =
                    expect(w, Wire::I64, "double_value", at).and_then(|_| r.f64("double_value"))?;
                Some(Str::Derived(arena.derive(|_, dst| {
                    let _ = write!(dst, "{d}");
                })))
            }
            _ => {
                r.skip(w)?;
                None
            }
        };
    }
    Ok(out)
}

/// Number of data points (field 1) in a Gauge/Sum/Histogram/Summary message.
fn count_points(mut r: Reader<'_>) -> Result<u64> {
    let mut n = 0;
    while let Some((f, w, _)) = r.field()? {
        if f == 1 {
            n += 1;
        }
        r.skip(w)?;
    }
    Ok(n)
}
