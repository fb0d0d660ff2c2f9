//! One target's scrape loop: schedule (jittered offset), fetch, parse, label, write, and stale
//! markers for vanished series, failed scrapes and the end of the loop.
//!
//! Buffers live in the loop and are reused: the wire body, its decompressed form, the
//! previous scrape's wire body, and the vectors of the two batches (parsed and output), whose
//! label vectors are re-typed to each scrape's body lifetime without reallocating.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eddy_storage::labels::hash_label_pairs;
use eddy_storage::{stale_nan, WriteBatch};
use tokio::sync::watch;

use super::config::ScrapeConfig;
use super::discovery::TargetSpec;
use super::http::{gunzip, Fetched, HttpTarget};
use super::relabel::{relabel, LabelPair, RelabelScratch};
use super::{lock, Health, ScrapeError, ScrapeSink, TargetStatus};
use crate::remote_write::MetricMetadata;
use crate::text::{parse_text, TextOptions};

/// Report series written with every scrape, in this order.
const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Marks parsed samples without their own timestamp when re-parsing the previous body.
const NO_TIMESTAMP: i64 = i64::MIN;

/// Vectors of a [`WriteBatch`] kept between scrapes.
#[derive(Debug, Default)]
struct BatchBufs {
    labels: Vec<LabelPair<'static>>,
    series: Vec<eddy_storage::api::BatchSeries>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

impl BatchBufs {
    fn take<'a>(&mut self) -> WriteBatch<'a> {
        WriteBatch {
            labels: retype(std::mem::take(&mut self.labels)),
            series: std::mem::take(&mut self.series),
            timestamps: std::mem::take(&mut self.timestamps),
            values: std::mem::take(&mut self.values),
        }
    }

    fn put(&mut self, mut b: WriteBatch<'_>) {
        b.clear();
        self.labels = retype(b.labels);
        self.series = b.series;
        self.timestamps = b.timestamps;
        self.values = b.values;
    }
}

/// Empties `v` and gives it another lifetime. The in-place `collect` keeps the allocation
/// (the element types differ only in lifetime); `filter_map` is what lets the type change.
#[allow(clippy::unnecessary_filter_map)]
fn retype<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Counts of one scrape.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    scraped: usize,
    post_relabel: usize,
    added: usize,
}

/// The state of one target's loop.
pub(crate) struct TargetLoop {
    spec: Arc<TargetSpec>,
    cfg: Arc<ScrapeConfig>,
    sink: Arc<dyn ScrapeSink>,
    status: Arc<Mutex<TargetStatus>>,
    http: HttpTarget,
    raw: Vec<u8>,
    body: Vec<u8>,
    /// Wire bytes of the last successful scrape, and how to read them.
    prev_raw: Vec<u8>,
    prev_fetched: Option<Fetched>,
    prev_body: Vec<u8>,
    /// Hashes of the series of the last successful scrape, and of the current one.
    prev_set: HashSet<u64>,
    cur_set: HashSet<u64>,
    /// Whether report series were written (they get stale markers at the end).
    reported: bool,
    parsed: BatchBufs,
    out: BatchBufs,
    relabel: RelabelScratch,
    /// Metadata parsed from bodies: not stored, but its vector is reused.
    meta: Vec<MetricMetadata<'static>>,
    /// Error of the last append, reported in the status.
    append_err: Option<String>,
}

impl TargetLoop {
    pub(crate) fn new(
        spec: Arc<TargetSpec>,
        cfg: Arc<ScrapeConfig>,
        sink: Arc<dyn ScrapeSink>,
        status: Arc<Mutex<TargetStatus>>,
    ) -> Self {
        let http = HttpTarget::new(
            spec.address.clone(),
            spec.path_and_query.clone(),
            cfg.scrape_timeout.as_secs_f64(),
        );
        TargetLoop {
            spec,
            cfg,
            sink,
            status,
            http,
            raw: Vec::new(),
            body: Vec::new(),
            prev_raw: Vec::new(),
            prev_fetched: None,
            prev_body: Vec::new(),
            prev_set: HashSet::new(),
            cur_set: HashSet::new(),
            reported: false,
            parsed: BatchBufs::default(),
            out: BatchBufs::default(),
            relabel: RelabelScratch::default(),
            meta: Vec::new(),
            append_err: None,
        }
    }

    /// Scrapes until `stop` turns true (or its sender is dropped), then writes stale markers
    /// for everything this target wrote and signals `done`.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>, done: mpsc::Sender<()>) {
        let interval = self.cfg.scrape_interval;
        let first = tokio::time::Instant::now() + self.offset(interval);
        let mut ticker = tokio::time::interval_at(first, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticker.tick() => {}
            }
            let ts = now_ms();
            let started = Instant::now();
            let timeout = self.cfg.scrape_timeout;
            let limit = self.cfg.body_size_limit;
            let res = tokio::select! {
                _ = stop.changed() => break,
                r = tokio::time::timeout(timeout, self.http.fetch(&mut self.raw, limit)) => r,
            };
            let res = res.unwrap_or_else(|_| {
                self.http.reset();
                Err(ScrapeError::Timeout(timeout))
            });
            self.after_fetch(ts, started, res);
        }
        self.end_of_run(now_ms());
        let _ = done.send(());
    }

    /// Time until the first scrape: each target has a fixed phase within the interval, from
    /// the hash of its identity, so a fleet of TaskManagers is scraped spread out.
    fn offset(&self, interval: Duration) -> Duration {
        let iv = interval.as_nanos().max(1) as u64;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let phase = self.spec.key().0 % iv;
        let base = iv - now % iv;
        let mut next = base + phase;
        if next > iv {
            next -= iv;
        }
        Duration::from_nanos(next)
    }

    fn after_fetch(&mut self, ts: i64, started: Instant, res: Result<Fetched, ScrapeError>) {
        let res = res.and_then(|f| self.ingest(ts, started, &f).map(|c| (c, f)));
        let duration = started.elapsed();
        let (health, err, samples) = match res {
            Ok((counts, fetched)) => {
                std::mem::swap(&mut self.raw, &mut self.prev_raw);
                std::mem::swap(&mut self.prev_set, &mut self.cur_set);
                self.prev_fetched = Some(fetched);
                (Health::Up, None, counts.post_relabel)
            }
            Err(e) => {
                tracing::debug!(target = %self.spec.scrape_url(), "scrape failed: {e}");
                self.fail(ts, duration);
                (Health::Down, Some(e.to_string()), 0)
            }
        };
        let mut st = lock(&self.status);
        st.health = health;
        st.last_error = err.or_else(|| self.append_err.take());
        st.last_scrape_ms = Some(ts);
        st.last_duration = duration;
        st.last_samples = samples;
    }

    /// Writes a successful scrape: samples, stale markers of vanished series, report series.
    fn ingest(&mut self, ts: i64, started: Instant, f: &Fetched) -> Result<Counts, ScrapeError> {
        decompress(&self.raw, &mut self.body, f.gzip, self.cfg.body_size_limit)?;
        let text = as_text(&self.raw, &self.body, f.gzip)?;
        let opts = TextOptions::for_content_type(f.content_type.as_deref(), ts);
        let mut parsed = self.parsed.take();
        let mut meta = retype(std::mem::take(&mut self.meta));
        let mut out = self.out.take();
        let res = scrape_series(
            text,
            &opts,
            &self.cfg,
            &self.spec,
            &mut parsed,
            &mut meta,
            &mut out,
            &mut self.relabel,
            &mut self.cur_set,
            &self.prev_set,
        );
        let counts = match res {
            Ok(c) => c,
            Err(e) => {
                self.parsed.put(parsed);
                self.meta = retype(meta);
                self.out.put(out);
                return Err(e);
            }
        };
        parsed.clear();
        let vanished = self.prev_set.len() + counts.added - counts.post_relabel;
        if vanished > 0 {
            if let Some(pf) = &self.prev_fetched {
                let cur = &self.cur_set;
                match decompress(&self.prev_raw, &mut self.prev_body, pf.gzip, u64::MAX)
                    .and_then(|()| as_text(&self.prev_raw, &self.prev_body, pf.gzip))
                {
                    Ok(prev_text) => stale_from(
                        prev_text,
                        pf,
                        &self.cfg,
                        &self.spec,
                        &mut parsed,
                        &mut meta,
                        &mut out,
                        &mut self.relabel,
                        ts,
                        |h| !cur.contains(&h),
                    ),
                    Err(e) => tracing::warn!("BUG: decode previous scrape: {e}"),
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let report = [
            1.0,
            secs,
            counts.scraped as f64,
            counts.post_relabel as f64,
            counts.added as f64,
        ];
        push_report(&self.spec, &mut out, ts, report);
        self.reported = true;
        self.append_err = write(&*self.sink, &self.spec, &mut out);
        self.parsed.put(parsed);
        self.meta = retype(meta);
        self.out.put(out);
        Ok(counts)
    }

    /// A failed scrape: `up` 0 and stale markers for every series of the last success.
    fn fail(&mut self, ts: i64, duration: Duration) {
        self.finish(ts, [0.0, duration.as_secs_f64(), 0.0, 0.0, 0.0]);
    }

    /// The target is gone: stale markers for its series and its report series.
    fn end_of_run(&mut self, ts: i64) {
        let report = [stale_nan(); 5];
        self.finish(ts, report);
    }

    /// Stale markers for all series of the last successful scrape, then the report series
    /// (unless they are stale markers for series never written); forgets the last scrape.
    fn finish(&mut self, ts: i64, report: [f64; 5]) {
        let mut parsed = self.parsed.take();
        let mut meta = retype(std::mem::take(&mut self.meta));
        let mut out = self.out.take();
        if let (Some(pf), false) = (&self.prev_fetched, self.prev_set.is_empty()) {
            match decompress(&self.prev_raw, &mut self.prev_body, pf.gzip, u64::MAX)
                .and_then(|()| as_text(&self.prev_raw, &self.prev_body, pf.gzip))
            {
                Ok(prev_text) => stale_from(
                    prev_text,
                    pf,
                    &self.cfg,
                    &self.spec,
                    &mut parsed,
                    &mut meta,
                    &mut out,
                    &mut self.relabel,
                    ts,
                    |_| true,
                ),
                Err(e) => tracing::warn!("BUG: decode previous scrape: {e}"),
            }
        }
        let stale_report = stale_nan().to_bits() == report[0].to_bits();
        if !stale_report || self.reported {
            push_report(&self.spec, &mut out, ts, report);
            self.reported = !stale_report;
        }
        if !out.is_empty() {
            self.append_err = write(&*self.sink, &self.spec, &mut out);
        }
        self.parsed.put(parsed);
        self.meta = retype(meta);
        self.out.put(out);
        self.prev_set.clear();
        self.prev_raw.clear();
        self.prev_fetched = None;
    }
}

/// Passes a batch to the sink; on a multi-threaded runtime inside `block_in_place`, as the
/// sink may block on storage. Returns the sink's error.
fn write(sink: &dyn ScrapeSink, spec: &TargetSpec, out: &mut WriteBatch<'_>) -> Option<String> {
    let res = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| sink.append(out))
        }
        _ => sink.append(out),
    };
    let e = res.err()?;
    tracing::warn!(target = %spec.scrape_url(), "append scraped samples: {e}");
    Some(format!("append: {e}"))
}

/// Parses the current body into `out` (labels, relabeling, duplicates, limits) and fills
/// `cur` with the series hashes.
#[allow(clippy::too_many_arguments)]
fn scrape_series<'a>(
    text: &'a str,
    opts: &TextOptions,
    cfg: &ScrapeConfig,
    spec: &'a TargetSpec,
    parsed: &mut WriteBatch<'a>,
    meta: &mut Vec<MetricMetadata<'a>>,
    out: &mut WriteBatch<'a>,
    rs: &mut RelabelScratch,
    cur: &mut HashSet<u64>,
    prev: &HashSet<u64>,
) -> Result<Counts, ScrapeError> {
    let stats = parse_text(text, opts, parsed, meta)?;
    meta.clear();
    cur.clear();
    let mut common = 0usize;
    let mut err = None;
    transform(cfg, spec, parsed, out, rs, |hash, nlabels, t, v| {
        if cfg.label_limit > 0 && nlabels > cfg.label_limit {
            err.get_or_insert(ScrapeError::LabelLimit {
                count: nlabels,
                limit: cfg.label_limit,
            });
        }
        if !cur.insert(hash) {
            return None; // a duplicate series in one body: keep the first
        }
        common += usize::from(prev.contains(&hash));
        Some((t, v))
    });
    if let Some(e) = err {
        return Err(e);
    }
    let post = out.series.len();
    if cfg.sample_limit > 0 && post > cfg.sample_limit {
        return Err(ScrapeError::SampleLimit {
            count: post,
            limit: cfg.sample_limit,
        });
    }
    Ok(Counts {
        scraped: stats.series,
        post_relabel: post,
        added: post - common,
    })
}

/// Re-parses the previous body and writes stale markers at `ts` for its series for which
/// `want(hash)` holds. Series that carried their own timestamps get none (as in Prometheus).
#[allow(clippy::too_many_arguments)]
fn stale_from<'a>(
    text: &'a str,
    f: &Fetched,
    cfg: &ScrapeConfig,
    spec: &'a TargetSpec,
    parsed: &mut WriteBatch<'a>,
    meta: &mut Vec<MetricMetadata<'a>>,
    out: &mut WriteBatch<'a>,
    rs: &mut RelabelScratch,
    ts: i64,
    mut want: impl FnMut(u64) -> bool,
) {
    let opts = TextOptions::for_content_type(f.content_type.as_deref(), NO_TIMESTAMP);
    let res = parse_text(text, &opts, parsed, meta);
    meta.clear();
    if let Err(e) = res {
        // It parsed before, so this is a bug; markers are lost, not data.
        tracing::warn!(
            "BUG: re-parse previous scrape of {}: {e}",
            spec.scrape_url()
        );
        return;
    }
    transform(cfg, spec, parsed, out, rs, |hash, _, t, _| {
        (t == NO_TIMESTAMP && want(hash)).then(|| (ts, stale_nan()))
    });
}

/// Decompresses a gzip body into `scratch`; nothing to do for a plain one.
fn decompress(
    raw: &[u8],
    scratch: &mut Vec<u8>,
    gzip: bool,
    limit: u64,
) -> Result<(), ScrapeError> {
    if gzip {
        gunzip(raw, scratch, limit)?;
    }
    Ok(())
}

/// The body as text: `scratch` if it was gzip (after [`decompress`]), else `raw`.
fn as_text<'b>(raw: &'b [u8], scratch: &'b [u8], gzip: bool) -> Result<&'b str, ScrapeError> {
    let bytes = if gzip { scratch } else { raw };
    std::str::from_utf8(bytes).map_err(|e| ScrapeError::Utf8(e.valid_up_to()))
}

/// Moves each parsed series into `out` with target labels (honoring `honor_labels`), empty
/// labels removed, metric relabeling applied and labels sorted. `keep(hash, label_count, ts,
/// value)` returns the sample to write, or `None` to leave the series out.
fn transform<'a>(
    cfg: &ScrapeConfig,
    spec: &'a TargetSpec,
    parsed: &mut WriteBatch<'a>,
    out: &mut WriteBatch<'a>,
    rs: &mut RelabelScratch,
    mut keep: impl FnMut(u64, usize, i64, f64) -> Option<(i64, f64)>,
) {
    for i in 0..parsed.series.len() {
        let (la, lb) = parsed.series[i].labels;
        let (sa, _) = parsed.series[i].samples;
        let (t, v) = (parsed.timestamps[sa as usize], parsed.values[sa as usize]);
        let start = out.labels.len();
        let empty = || (Cow::Borrowed(""), Cow::Borrowed(""));
        for j in la as usize..lb as usize {
            let pair = std::mem::replace(&mut parsed.labels[j], empty());
            out.labels.push(pair);
        }
        add_target_labels(spec, cfg.honor_labels, &mut out.labels, start);
        if !relabel(&cfg.metric_relabel_configs, &mut out.labels, start, rs) {
            out.labels.truncate(start);
            continue;
        }
        retain_non_empty(&mut out.labels, start);
        let ls = &mut out.labels[start..];
        ls.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let hash = hash_label_pairs(ls.iter().map(|(n, v)| (n.as_ref(), v.as_ref())));
        match keep(hash, ls.len(), t, v) {
            Some((t, v)) => {
                out.series.push(eddy_storage::api::BatchSeries {
                    labels: (start as u32, out.labels.len() as u32),
                    samples: (out.timestamps.len() as u32, out.timestamps.len() as u32 + 1),
                    key: None,
                    series_ref: None,
                });
                out.timestamps.push(t);
                out.values.push(v);
            }
            None => out.labels.truncate(start),
        }
    }
}

/// Adds the target labels to a scraped series in `labels[start..]`. Without `honor_labels`
/// target labels win and a scraped label of the same name is kept as `exported_<name>`; with
/// it, scraped labels win.
fn add_target_labels<'a>(
    spec: &'a TargetSpec,
    honor: bool,
    labels: &mut Vec<LabelPair<'a>>,
    start: usize,
) {
    let find = |labels: &[LabelPair<'a>], name: &str| {
        labels[start..]
            .iter()
            .position(|(n, v)| n == name && !v.is_empty())
            .map(|p| p + start)
    };
    for (n, v) in &spec.labels {
        match find(labels, n) {
            Some(_) if honor => continue,
            Some(i) => {
                let mut exported = format!("exported_{n}");
                while find(labels, &exported).is_some() {
                    exported.insert_str(0, "exported_");
                }
                labels[i].0 = Cow::Owned(exported);
            }
            None => {}
        }
        // An empty scraped label of this name is replaced, not duplicated.
        if let Some(p) = labels[start..].iter().position(|(ln, _)| ln == n) {
            labels[start + p].1 = Cow::Borrowed(v.as_str());
            labels[start + p].0 = Cow::Borrowed(n.as_str());
        } else {
            labels.push((Cow::Borrowed(n.as_str()), Cow::Borrowed(v.as_str())));
        }
    }
}

fn retain_non_empty(labels: &mut Vec<LabelPair<'_>>, start: usize) {
    let mut i = start;
    while i < labels.len() {
        if labels[i].1.is_empty() {
            labels.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Appends the five report series with the target labels.
fn push_report<'a>(spec: &'a TargetSpec, out: &mut WriteBatch<'a>, ts: i64, values: [f64; 5]) {
    for (name, v) in REPORT_NAMES.iter().zip(values) {
        out.start_series();
        out.push_label("__name__", *name);
        for (n, lv) in &spec.labels {
            out.push_label(n.as_str(), lv.as_str());
        }
        out.push_sample(ts, v);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
