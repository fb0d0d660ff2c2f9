//! `flinkgen`: a deterministic, Flink-shaped metrics workload.
//!
//! N TaskManagers, grouped into jobs of `tms_per_job` TMs; every TM has `slots` slots, and each
//! slot runs one subtask of each of the job's six vertices (fifteen operators), so a TM exposes
//! 40 + slots × (6 × 60 + 177) series (2,188 with 4 slots), named and labelled as Flink's
//! Prometheus reporter does (see `metrics` and `/work/shared/FLINK.md`).
//!
//! Time: every TM is scraped every `interval_ms`, at its own phase within the interval plus a
//! few ms of jitter. Jobs restart every `restart_every_ms` (each job at its own phase): the
//! task and operator series of the job are replaced (new `task_attempt_id`, `task_attempt_num`
//! + 1), their counters start again from 0 and watermarks read `Long.MIN_VALUE` for 30 s.
//!
//! The workload is produced scrape by scrape — (timestamp, TM) → series with one sample each —
//! keeping only one f64 of state per series, so it can describe millions of series for hours
//! without holding samples. Everything is a function of `seed`; a partition (`tm % n == k`)
//! yields exactly the scrapes of those TMs that the whole workload would.

mod metrics;

use std::fmt::Write as _;

use eddy_storage::WriteBatch;

use metrics::{Kind, MetricDef, OPERATOR, SINK_EXTRA, SOURCE_EXTRA, TASK, TM, VERTICES};

/// Flink's `Long.MIN_VALUE` watermark, as the reporter prints it: `-9.223372036854776E18`.
pub const NO_WATERMARK: f64 = i64::MIN as f64;

/// How long after a restart watermarks stay at [`NO_WATERMARK`].
const WATERMARK_DELAY_MS: i64 = 30_000;

/// Size and shape of a workload.
#[derive(Debug, Clone)]
pub struct Config {
    /// TaskManagers.
    pub tms: usize,
    /// TaskManagers per job (the last job may have fewer).
    pub tms_per_job: usize,
    /// Slots per TaskManager (subtasks per vertex per TM).
    pub slots: usize,
    /// Hours of data.
    pub hours: f64,
    /// Scrape interval (ms).
    pub interval_ms: i64,
    /// Each scrape is shifted by up to ± this many ms.
    pub jitter_ms: i64,
    /// Every job restarts this often (ms); 0 = never.
    pub restart_every_ms: i64,
    /// Seed of everything random.
    pub seed: u64,
    /// Timestamp (ms) the data ends at (exclusive); it starts `hours` earlier.
    pub end_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tms: 4,
            tms_per_job: 8,
            slots: 4,
            hours: 1.0,
            interval_ms: 15_000,
            jitter_ms: 8,
            restart_every_ms: 2 * 3600 * 1000,
            seed: 1,
            // 2026-01-01T00:15:00Z: a quarter past a 6 h boundary, so that workloads of 6.25 h
            // or more hold a whole 6 h compaction window that the head has moved past.
            end_ms: 1_767_226_500_000,
        }
    }
}

impl Config {
    /// First scrape round's base time (ms), a multiple of the interval.
    pub fn start_ms(&self) -> i64 {
        let span = (self.hours * 3_600_000.0) as i64;
        (self.end_ms - span).div_euclid(self.interval_ms) * self.interval_ms
    }

    /// Scrapes per TaskManager.
    pub fn rounds(&self) -> u64 {
        ((self.end_ms - self.start_ms()) / self.interval_ms).max(0) as u64
    }

    /// Series each TaskManager exposes at any time.
    pub fn series_per_tm(&self) -> usize {
        template(self.slots).len()
    }

    /// Active series at any time (all TMs).
    pub fn active_series(&self) -> u64 {
        (self.tms * self.series_per_tm()) as u64
    }

    /// Samples in the whole workload.
    pub fn total_samples(&self) -> u64 {
        self.active_series() * self.rounds()
    }

    /// Jobs.
    pub fn jobs(&self) -> usize {
        self.tms.div_ceil(self.tms_per_job.max(1))
    }
}

/// Where a series lives: TM process, a subtask (slot, vertex), or an operator instance.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Tm,
    Task { slot: u16, vertex: u16 },
    Op { slot: u16, vertex: u16, op: u16 },
}

#[derive(Debug, Clone, Copy)]
struct SeriesTemplate {
    def: &'static MetricDef,
    scope: Scope,
}

/// The series every TM exposes, in a fixed order.
fn template(slots: usize) -> Vec<SeriesTemplate> {
    let mut out: Vec<SeriesTemplate> = TM
        .iter()
        .map(|def| SeriesTemplate {
            def,
            scope: Scope::Tm,
        })
        .collect();
    let last = VERTICES.len() - 1;
    for slot in 0..slots as u16 {
        for (v, ops) in VERTICES.iter().enumerate() {
            let vertex = v as u16;
            for def in TASK {
                out.push(SeriesTemplate {
                    def,
                    scope: Scope::Task { slot, vertex },
                });
            }
            for o in 0..ops.len() {
                let scope = Scope::Op {
                    slot,
                    vertex,
                    op: o as u16,
                };
                let extra: &'static [MetricDef] = match (v, o) {
                    (0, 0) => SOURCE_EXTRA,
                    (v, o) if v == last && o == ops.len() - 1 => SINK_EXTRA,
                    _ => &[],
                };
                for def in OPERATOR.iter().chain(extra) {
                    out.push(SeriesTemplate { def, scope });
                }
            }
        }
    }
    out
}

/// SplitMix64 finaliser: a good 64-bit mix of `x`.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn mix2(a: u64, b: u64) -> u64 {
    mix(mix(a) ^ b.rotate_left(17))
}

/// A uniform f64 in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Debug)]
struct TmState {
    idx: usize,
    phase_ms: i64,
    /// Restart epoch of the job at the previous scrape (`u64::MAX` before the first).
    epoch: u64,
    values: Vec<f64>,
}

/// The workload iterator: call [`Workload::next_scrape`] until it returns false.
#[derive(Debug)]
pub struct Workload {
    cfg: Config,
    template: Vec<SeriesTemplate>,
    /// This partition's TMs, in scrape order within a round (by phase).
    tms: Vec<TmState>,
    round: u64,
    pos: usize,
    rounds: u64,
}

impl Workload {
    /// The whole workload.
    pub fn new(cfg: Config) -> Self {
        Self::partition(cfg, 0, 1)
    }

    /// Only the TMs with `tm % n == k`.
    pub fn partition(cfg: Config, k: usize, n: usize) -> Self {
        let template = template(cfg.slots);
        let interval = cfg.interval_ms.max(1);
        let mut tms: Vec<TmState> = (0..cfg.tms)
            .filter(|tm| tm % n.max(1) == k)
            .map(|idx| TmState {
                idx,
                phase_ms: (mix2(cfg.seed, idx as u64 ^ 0x7068_6173) % interval as u64) as i64,
                epoch: u64::MAX,
                values: vec![f64::NAN; template.len()],
            })
            .collect();
        tms.sort_by_key(|t| (t.phase_ms, t.idx));
        let rounds = cfg.rounds();
        Workload {
            cfg,
            template,
            tms,
            round: 0,
            pos: 0,
            rounds,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Scrape round the next scrape belongs to.
    pub fn round(&self) -> u64 {
        if self.pos == self.tms.len() {
            self.round + 1
        } else {
            self.round
        }
    }

    /// Restart epoch of `job` at `ts` and the time that epoch began.
    fn epoch(&self, job: usize, ts: i64) -> (u64, i64) {
        let start = self.cfg.start_ms();
        let every = self.cfg.restart_every_ms;
        if every <= 0 {
            return (0, i64::MIN);
        }
        let phase = (mix2(self.cfg.seed, job as u64 ^ 0x006a_6f62) % every as u64) as i64;
        let first = start + phase;
        if ts < first {
            return (0, i64::MIN);
        }
        let e = (ts - first) / every;
        (e as u64 + 1, first + e * every)
    }

    /// Fills `out` with the next scrape; false when the workload is done.
    pub fn next_scrape(&mut self, out: &mut Scrape) -> bool {
        if self.pos == self.tms.len() {
            self.pos = 0;
            self.round += 1;
        }
        if self.round >= self.rounds || self.tms.is_empty() {
            return false;
        }
        let (round, pos) = (self.round, self.pos);
        self.pos += 1;
        let idx = self.tms[pos].idx;
        let cfg = &self.cfg;
        let rng = mix2(mix2(cfg.seed, idx as u64), round);
        let jitter = if cfg.jitter_ms > 0 {
            (rng % (2 * cfg.jitter_ms as u64 + 1)) as i64 - cfg.jitter_ms
        } else {
            0
        };
        let ts = cfg.start_ms() + round as i64 * cfg.interval_ms + self.tms[pos].phase_ms + jitter;
        let job = idx / cfg.tms_per_job.max(1);
        let (epoch, epoch_start) = self.epoch(job, ts);
        let cfg = &self.cfg;
        let state = &mut self.tms[pos];
        let restarted = state.epoch != u64::MAX && state.epoch != epoch;
        state.epoch = epoch;
        out.reset(idx, ts);
        out.build_labels(cfg, &self.template, idx, job, epoch);
        let ctx = ValueCtx {
            ts,
            dt_s: cfg.interval_ms as f64 / 1000.0,
            since_restart: if epoch == 0 {
                i64::MAX
            } else {
                ts - epoch_start
            },
        };
        let tm_key = mix2(cfg.seed ^ 0x005e_71e5, idx as u64);
        for (i, t) in self.template.iter().enumerate() {
            let prev = &mut state.values[i];
            let job_scoped = !matches!(t.scope, Scope::Tm);
            if restarted && job_scoped && matches!(t.def.kind, Kind::Counter(_)) {
                *prev = 0.0;
            }
            let v = next_value(
                t.def.kind,
                mix2(tm_key, i as u64),
                mix2(rng, i as u64),
                *prev,
                &ctx,
            );
            *prev = v;
            out.values.push(v);
        }
        true
    }
}

struct ValueCtx {
    ts: i64,
    dt_s: f64,
    since_restart: i64,
}

/// The next value of a series of `kind`; `key` is fixed per series, `r` fresh per scrape,
/// `prev` the previous value (NaN before the first scrape).
fn next_value(kind: Kind, key: u64, r: u64, prev: f64, ctx: &ValueCtx) -> f64 {
    let level = unit(key);
    let noise = unit(r);
    // Per-series rate spread over 1/4×..4× the family's scale.
    let spread = (level * 4.0 - 2.0).exp2();
    match kind {
        Kind::Counter(scale) => {
            let rate = scale * spread;
            if prev.is_nan() {
                // Running for up to a day before the data starts.
                return (rate * unit(mix(key)) * 86_400.0).floor();
            }
            prev + (rate * ctx.dt_s * (0.8 + 0.4 * noise)).floor()
        }
        Kind::Meter(scale) => {
            let rate = scale * spread;
            // The 60 s window is still filling right after a restart.
            let part = (ctx.since_restart as f64 / 60_000.0).min(1.0);
            (rate * 60.0 * part * (0.9 + 0.2 * noise)).round() / 60.0
        }
        Kind::Fraction => {
            let d = 100.0 + (key % 200) as f64;
            let x = (level * 0.6 + (noise - 0.5) * 0.1).clamp(0.0, 0.99);
            (x * d).round() / d
        }
        Kind::MsPerSecond => (level * 1000.0 + (noise - 0.5) * 100.0)
            .round()
            .clamp(0.0, 1000.0),
        Kind::Bytes(base) => {
            let l = base * (0.5 + level);
            (l * (0.8 + 0.4 * noise) / 8.0).round() * 8.0
        }
        Kind::NearConst(base) => {
            if prev.is_nan() {
                return (base * (0.8 + 0.4 * level)).round();
            }
            if noise < 0.01 {
                prev + 1.0
            } else if noise > 0.99 && prev >= 1.0 {
                prev - 1.0
            } else {
                prev
            }
        }
        Kind::Const(c) => c,
        Kind::Watermark => {
            if ctx.since_restart < WATERMARK_DELAY_MS {
                NO_WATERMARK
            } else {
                (ctx.ts - 200 - (key % 3000) as i64 - (noise * 500.0) as i64) as f64
            }
        }
        Kind::Quantile(q) => q + if noise < 0.1 { 1.0 } else { 0.0 },
        Kind::Flag => {
            if noise < 0.02 {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// A label value: a static string or a range of the scrape's arena.
#[derive(Debug, Clone, Copy)]
enum Val {
    Static(&'static str),
    Arena(u32, u32),
}

/// One TaskManager scrape: every series the TM exposes, one sample each at `ts`.
/// Reuse one `Scrape` for many [`Workload::next_scrape`] calls; it keeps its buffers.
#[derive(Debug, Default)]
pub struct Scrape {
    /// TaskManager index.
    pub tm: usize,
    /// Timestamp (ms) of every sample of this scrape.
    pub ts: i64,
    arena: String,
    labels: Vec<(&'static str, Val)>,
    series: Vec<(u32, u32)>,
    values: Vec<f64>,
}

const JOB_NAMES: [&str; 6] = [
    "fraud_detection",
    "orders_enrichment",
    "clickstream_sessions",
    "payments_ledger",
    "inventory_sync",
    "ad_attribution",
];

impl Scrape {
    fn reset(&mut self, tm: usize, ts: i64) {
        self.tm = tm;
        self.ts = ts;
        self.arena.clear();
        self.labels.clear();
        self.series.clear();
        self.values.clear();
    }

    fn push_str(&mut self, f: impl FnOnce(&mut String)) -> Val {
        let a = self.arena.len() as u32;
        f(&mut self.arena);
        Val::Arena(a, self.arena.len() as u32)
    }

    fn build_labels(
        &mut self,
        cfg: &Config,
        template: &[SeriesTemplate],
        tm: usize,
        job: usize,
        epoch: u64,
    ) {
        let s = cfg.seed;
        let ip = (1 + tm / 65536, (tm / 256) % 256, tm % 256);
        let host = self.push_str(|b| {
            let _ = write!(b, "10.{}.{}.{}", ip.0, ip.1, ip.2);
        });
        let tm_id = self.push_str(|b| {
            let rnd = mix2(s, tm as u64) & 0xff_ffff;
            let _ = write!(b, "10.{}.{}.{}:6122_{rnd:06x}", ip.0, ip.1, ip.2);
        });
        let job_id = self.push_str(|b| hex32(b, mix2(s, job as u64 ^ 0x1d)));
        let job_name = self.push_str(|b| {
            let _ = write!(b, "{}_{}", JOB_NAMES[job % JOB_NAMES.len()], job);
        });
        let graph_id = mix2(mix2(s, job as u64 ^ 0xe9), epoch);
        let first_subtask = (tm % cfg.tms_per_job.max(1)) * cfg.slots;
        // Per vertex: task id and name; per operator: id and name.
        let mut vtx: Vec<(Val, Val, u64)> = Vec::with_capacity(VERTICES.len());
        let mut ops: Vec<Vec<(Val, Val)>> = Vec::with_capacity(VERTICES.len());
        for (v, names) in VERTICES.iter().enumerate() {
            let task_key = mix2(mix2(s, job as u64 ^ 0x7a), v as u64);
            let task_id = self.push_str(|b| hex32(b, task_key));
            let task_name = self.push_str(|b| b.push_str(&metrics::task_name(names)));
            vtx.push((task_id, task_name, task_key));
            let mut list = Vec::with_capacity(names.len());
            for (o, name) in names.iter().enumerate() {
                // The head operator of a chain shares the task's id, as in Flink.
                let op_key = if o == 0 {
                    task_key
                } else {
                    mix2(task_key, o as u64)
                };
                let op_id = self.push_str(|b| hex32(b, op_key));
                let op_name = self.push_str(|b| b.push_str(&metrics::sanitize(name)));
                list.push((op_id, op_name));
            }
            ops.push(list);
        }
        // Per (slot, vertex): subtask index, attempt id, attempt number.
        let mut sub: Vec<(Val, Val, Val)> = Vec::with_capacity(cfg.slots * VERTICES.len());
        for slot in 0..cfg.slots {
            let subtask = first_subtask + slot;
            for &(_, _, task_key) in &vtx {
                let idx = self.push_str(|b| {
                    let _ = write!(b, "{subtask}");
                });
                let attempt_id = self.push_str(|b| {
                    hex32(b, graph_id);
                    b.push('_');
                    hex32(b, task_key);
                    let _ = write!(b, "_{subtask}_{epoch}");
                });
                let attempt_num = self.push_str(|b| {
                    let _ = write!(b, "{epoch}");
                });
                sub.push((idx, attempt_id, attempt_num));
            }
        }
        for t in template {
            let a = self.labels.len() as u32;
            self.labels.push(("__name__", Val::Static(t.def.name)));
            self.labels.push(("host", host));
            self.labels.push(("tm_id", tm_id));
            let (slot, vertex, op) = match t.scope {
                Scope::Tm => (0, 0, None),
                Scope::Task { slot, vertex } => (slot, vertex, None),
                Scope::Op { slot, vertex, op } => (slot, vertex, Some(op)),
            };
            if !matches!(t.scope, Scope::Tm) {
                let (task_id, task_name, _) = vtx[vertex as usize];
                let (idx, attempt_id, attempt_num) =
                    sub[slot as usize * VERTICES.len() + vertex as usize];
                self.labels.extend_from_slice(&[
                    ("job_id", job_id),
                    ("job_name", job_name),
                    ("task_id", task_id),
                    ("task_name", task_name),
                    ("subtask_index", idx),
                    ("task_attempt_id", attempt_id),
                    ("task_attempt_num", attempt_num),
                ]);
            }
            if let Some(op) = op {
                let (op_id, op_name) = ops[vertex as usize][op as usize];
                self.labels.push(("operator_id", op_id));
                self.labels.push(("operator_name", op_name));
            }
            if let Some((n, v)) = t.def.extra {
                self.labels.push((n, Val::Static(v)));
            }
            self.series.push((a, self.labels.len() as u32));
        }
    }

    fn val(&self, v: Val) -> &str {
        match v {
            Val::Static(s) => s,
            Val::Arena(a, b) => &self.arena[a as usize..b as usize],
        }
    }

    /// Series in this scrape.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when the scrape holds no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Labels of series `i` (metric name as `__name__` first).
    pub fn labels(&self, i: usize) -> impl Iterator<Item = (&str, &str)> + '_ {
        let (a, b) = self.series[i];
        self.labels[a as usize..b as usize]
            .iter()
            .map(move |&(n, v)| (n, self.val(v)))
    }

    /// Value of series `i`.
    pub fn value(&self, i: usize) -> f64 {
        self.values[i]
    }

    /// Adds every series of this scrape to `batch`, borrowing the label strings.
    pub fn fill_batch<'a>(&'a self, batch: &mut WriteBatch<'a>) {
        for i in 0..self.series.len() {
            batch.start_series();
            for (n, v) in self.labels(i) {
                batch.push_label(n, v);
            }
            batch.push_sample(self.ts, self.values[i]);
        }
    }

    /// Appends this scrape as a remote_write `WriteRequest` protobuf (not compressed) to `dst`.
    /// Appending several scrapes yields one request holding all of them.
    pub fn encode_remote_write(&self, dst: &mut Vec<u8>) {
        type Sample = [(i64, f64); 1];
        let series: Vec<(Vec<(&str, &str)>, Sample)> = (0..self.series.len())
            .map(|i| (self.labels(i).collect(), [(self.ts, self.values[i])]))
            .collect();
        eddy_ingest::remote_write::encode_write_request(&series, dst);
    }

    /// Appends this scrape as InfluxDB line protocol, one line per series in the shape
    /// Flink's InfluxdbReporter writes: the metric name without the Prometheus reporter's
    /// `flink_` prefix as measurement, the other labels as tags, one `value` field and a
    /// nanosecond timestamp. Label values are sanitised to `[a-zA-Z0-9:_]`, so nothing needs
    /// escaping.
    pub fn encode_influx(&self, dst: &mut Vec<u8>) {
        use std::io::Write as _;
        let ts_ns = i128::from(self.ts) * 1_000_000;
        for i in 0..self.series.len() {
            let name = self
                .labels(i)
                .find(|(n, _)| *n == "__name__")
                .map_or("", |(_, v)| v);
            dst.extend_from_slice(name.strip_prefix("flink_").unwrap_or(name).as_bytes());
            for (n, v) in self.labels(i).filter(|(n, _)| *n != "__name__") {
                let _ = write!(dst, ",{n}={v}");
            }
            let _ = writeln!(dst, " value={:?} {ts_ns}", self.values[i]);
        }
    }
}

fn hex32(b: &mut String, key: u64) {
    let _ = write!(b, "{:016x}{:016x}", mix(key), mix(key ^ 0x5555));
}

#[cfg(test)]
mod tests;
