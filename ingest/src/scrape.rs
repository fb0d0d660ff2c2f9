//! Pull ingestion: scrapes Prometheus text endpoints (Flink's PrometheusReporter on
//! `host:9249…`) on a schedule and writes the samples, with Prometheus's scrape semantics, to a
//! [`ScrapeSink`].
//!
//! Submodules: [`config`] (YAML shape, defaults, validation), `relabel` (relabel rules),
//! `discovery` (static and file-based targets), `target` (one task per target: fetch, label,
//! stale markers) and `http` (the HTTP/1.1 client).
//!
//! What a scrape writes, per target: every scraped series with the target labels (`job`,
//! `instance`, group labels; conflicts resolved by `honor_labels`) after
//! `metric_relabel_configs`, stamped with the scrape's start time when the body has no
//! timestamp; the report series `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added`; and stale markers for
//! series that were in the previous scrape but not in this one (all of them when the scrape
//! fails, when the target disappears, and on [`Scraper::stop`]). Flink drops a task's series
//! the moment it ends, so these markers are what ends them in queries.
//!
//! Memory per target stays small: the previous scrape is kept as its raw wire bytes (gzip when
//! the server compressed, 26× smaller for Flink) plus one 64-bit hash per series. Labels for
//! stale markers are rebuilt by re-parsing that body, which happens only when series vanish.

pub mod config;
mod discovery;
mod http;
mod relabel;
mod target;

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use eddy_storage::{AppendOutcome, WriteBatch};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    parse_config, ConfigError, FileSdConfig, GlobalConfig, ScrapeConfig, ScrapeFile, TargetGroup,
};
pub use relabel::{RelabelAction, RelabelRule};

use discovery::{TargetKey, TargetSpec};

/// Where scraped samples go. The server passes an implementation that calls `Db::append`.
///
/// Called from the scrape tasks, one batch per scrape (samples, report series and stale markers
/// together), concurrently for different targets. The batch borrows the scraped body and is
/// only valid during the call. On a multi-threaded runtime the call runs inside
/// `block_in_place`, so it may block briefly.
pub trait ScrapeSink: Send + Sync + 'static {
    /// Stores the batch.
    fn append(&self, batch: &mut WriteBatch<'_>) -> Result<AppendOutcome, String>;
}

impl<F> ScrapeSink for F
where
    F: Fn(&mut WriteBatch<'_>) -> Result<AppendOutcome, String> + Send + Sync + 'static,
{
    fn append(&self, batch: &mut WriteBatch<'_>) -> Result<AppendOutcome, String> {
        self(batch)
    }
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(String),
    /// The request could not be built (bad path or parameters).
    #[error("build request: {0}")]
    Request(String),
    /// The HTTP exchange failed.
    #[error("http: {0}")]
    Http(String),
    /// The server answered with a status other than 200.
    #[error("server returned HTTP status {0}")]
    Status(String),
    /// The scrape took longer than `scrape_timeout`.
    #[error("scrape timed out after {0:?}")]
    Timeout(Duration),
    /// The body (after decompression) exceeds `body_size_limit`.
    #[error("body exceeds the size limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// The gzip body is corrupt.
    #[error("decompress gzip body: {0}")]
    Decompress(String),
    /// The body is not UTF-8.
    #[error("body is not valid UTF-8 after byte {0}")]
    Utf8(usize),
    /// The body is not a valid exposition.
    #[error(transparent)]
    Parse(#[from] crate::Error),
    /// More series than `sample_limit`.
    #[error("sample_limit exceeded: {count} series > limit {limit}")]
    SampleLimit {
        /// Series after metric relabeling.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A series has more labels than `label_limit`.
    #[error("label_limit exceeded: a series has {count} labels > limit {limit}")]
    LabelLimit {
        /// Labels of the offending series.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// Health of a target, as Prometheus's `/api/v1/targets` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl Health {
    /// `"unknown"`, `"up"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// State of one target, for an API.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    /// Job name.
    pub job: String,
    /// `instance` label.
    pub instance: String,
    /// `http://host:port/path?params`.
    pub scrape_url: String,
    /// Target labels (job, instance, group labels), sorted by name.
    pub labels: Vec<(String, String)>,
    /// Result of the last scrape.
    pub health: Health,
    /// Error of the last scrape, if it failed; or of the last append.
    pub last_error: Option<String>,
    /// Start of the last scrape, ms since the epoch.
    pub last_scrape_ms: Option<i64>,
    /// Duration of the last scrape.
    pub last_duration: Duration,
    /// Series stored by the last scrape (after relabeling).
    pub last_samples: usize,
    /// Scrape interval and timeout.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
}

/// Runs the scrape loops of a [`ScrapeFile`]: one task per target plus one poller per
/// `file_sd_configs` entry, on the given runtime.
#[derive(Debug)]
pub struct Scraper {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sink: SinkRef,
    handle: Handle,
    state: Mutex<State>,
    done_tx: Mutex<mpsc::Sender<()>>,
    done_rx: Mutex<mpsc::Receiver<()>>,
}

#[derive(Clone)]
struct SinkRef(Arc<dyn ScrapeSink>);

impl std::fmt::Debug for SinkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeSink")
    }
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every reload, so pollers of an old config stop applying results.
    generation: u64,
    jobs: Vec<JobState>,
    running: HashMap<TargetKey, Running>,
    pollers: Vec<JoinHandle<()>>,
    stopped: bool,
}

#[derive(Debug)]
struct JobState {
    cfg: Arc<ScrapeConfig>,
    /// Groups found by each `file_sd_configs` entry.
    sd_groups: Vec<Vec<TargetGroup>>,
}

#[derive(Debug)]
struct Running {
    cfg: Arc<ScrapeConfig>,
    status: Arc<Mutex<TargetStatus>>,
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking scrape task cannot leave the maps half-updated; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Scraper {
    /// Starts scraping every target of `file`.
    pub fn start(file: ScrapeFile, sink: Arc<dyn ScrapeSink>, handle: Handle) -> Scraper {
        let (done_tx, done_rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            sink: SinkRef(sink),
            handle,
            state: Mutex::new(State::default()),
            done_tx: Mutex::new(done_tx),
            done_rx: Mutex::new(done_rx),
        });
        let s = Scraper { inner };
        s.reload(file);
        s
    }

    /// Applies a new config: starts new targets, stops removed ones (with stale markers) and
    /// restarts targets whose job's scrape settings changed.
    pub fn reload(&self, file: ScrapeFile) {
        let mut st = lock(&self.inner.state);
        if st.stopped {
            return;
        }
        st.generation += 1;
        for p in st.pollers.drain(..) {
            p.abort();
        }
        let old_jobs = std::mem::take(&mut st.jobs);
        for cfg in file.scrape_configs {
            // Keep what discovery found if the job's file_sd config is unchanged, so its
            // targets keep running across the reload instead of flapping.
            let sd_groups = old_jobs
                .iter()
                .find(|o| {
                    o.cfg.job_name == cfg.job_name && o.cfg.file_sd_configs == cfg.file_sd_configs
                })
                .map_or_else(
                    || vec![Vec::new(); cfg.file_sd_configs.len()],
                    |o| o.sd_groups.clone(),
                );
            st.jobs.push(JobState {
                cfg: Arc::new(cfg),
                sd_groups,
            });
        }
        self.inner.sync(&mut st);
        let generation = st.generation;
        let mut pollers = Vec::new();
        for (j, job) in st.jobs.iter().enumerate() {
            for (k, sd) in job.cfg.file_sd_configs.iter().enumerate() {
                let task = discovery::poll_files(
                    Arc::downgrade(&self.inner),
                    generation,
                    j,
                    k,
                    sd.clone(),
                );
                pollers.push(self.inner.handle.spawn(task));
            }
        }
        st.pollers = pollers;
    }

    /// Status of every running target, sorted by job and instance.
    pub fn targets(&self) -> Vec<TargetStatus> {
        let st = lock(&self.inner.state);
        let mut v: Vec<TargetStatus> = st
            .running
            .values()
            .map(|r| lock(&r.status).clone())
            .collect();
        v.sort_by(|a, b| (&a.job, &a.instance, &a.labels).cmp(&(&b.job, &b.instance, &b.labels)));
        v
    }

    /// Stops every target; each writes stale markers for all its series first. Blocks until
    /// they are written (bounded by the longest scrape timeout plus 5 s). On a multi-threaded
    /// runtime it may be called from a task; from a current-thread runtime use
    /// [`Scraper::shutdown`] instead.
    pub fn stop(self) {
        let (n, wait) = self.signal_stop();
        let rx = lock(&self.inner.done_rx);
        let deadline = Instant::now() + wait;
        let recv_all = || {
            for _ in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                if rx.recv_timeout(left).is_err() {
                    tracing::warn!("scraper stop: not every target finished in {wait:?}");
                    break;
                }
            }
        };
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(recv_all),
            Ok(_) => tracing::warn!("scraper stop on a current-thread runtime: not waiting"),
            Err(_) => recv_all(),
        }
    }

    /// Async form of [`Scraper::stop`].
    pub async fn shutdown(self) {
        let joins: Vec<JoinHandle<()>> = {
            let mut st = lock(&self.inner.state);
            st.stopped = true;
            for p in st.pollers.drain(..) {
                p.abort();
            }
            st.running
                .drain()
                .map(|(_, r)| {
                    let _ = r.stop.send(true);
                    r.join
                })
                .collect()
        };
        for j in joins {
            let _ = j.await;
        }
    }

    /// Signals every target to stop; returns how many and how long to wait for them.
    fn signal_stop(&self) -> (usize, Duration) {
        let mut st = lock(&self.inner.state);
        st.stopped = true;
        for p in st.pollers.drain(..) {
            p.abort();
        }
        let mut wait = Duration::ZERO;
        let n = st.running.len();
        for (_, r) in st.running.drain() {
            wait = wait.max(r.cfg.scrape_timeout);
            let _ = r.stop.send(true);
        }
        (n, wait + Duration::from_secs(5))
    }
}

impl Inner {
    /// Makes the running targets match the jobs' static and discovered groups.
    fn sync(&self, st: &mut State) {
        let mut desired: HashMap<TargetKey, (Arc<ScrapeConfig>, TargetSpec)> = HashMap::new();
        for job in &st.jobs {
            let groups = job
                .cfg
                .static_configs
                .iter()
                .chain(job.sd_groups.iter().flatten());
            for group in groups {
                for addr in &group.targets {
                    if let Some(spec) = discovery::target_spec(&job.cfg, addr, &group.labels) {
                        desired.insert(spec.key(), (Arc::clone(&job.cfg), spec));
                    }
                }
            }
        }
        let stale: Vec<TargetKey> = st
            .running
            .iter()
            .filter(|(k, r)| {
                desired
                    .get(*k)
                    .is_none_or(|(cfg, _)| !discovery::same_scrape(cfg, &r.cfg))
            })
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(r) = st.running.remove(&k) {
                let _ = r.stop.send(true);
            }
        }
        for (k, (cfg, spec)) in desired {
            if st.running.contains_key(&k) {
                continue;
            }
            let status = Arc::new(Mutex::new(spec.initial_status(&cfg)));
            let (stop_tx, stop_rx) = watch::channel(false);
            let done = lock(&self.done_tx).clone();
            let task = target::TargetLoop::new(
                Arc::new(spec),
                Arc::clone(&cfg),
                Arc::clone(&self.sink.0),
                Arc::clone(&status),
            );
            let join = self.handle.spawn(task.run(stop_rx, done));
            st.running.insert(
                k,
                Running {
                    cfg,
                    status,
                    stop: stop_tx,
                    join,
                },
            );
        }
    }

    /// Called by a file_sd poller with the groups it found.
    fn set_sd_groups(&self, generation: u64, job: usize, sd: usize, groups: Vec<TargetGroup>) {
        let mut st = lock(&self.state);
        if st.generation != generation || st.stopped {
            return;
        }
        let Some(slot) = st.jobs.get_mut(job).and_then(|j| j.sd_groups.get_mut(sd)) else {
            return;
        };
        if *slot == groups {
            return;
        }
        *slot = groups;
        self.sync(&mut st);
    }
}
