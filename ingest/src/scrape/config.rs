//! The `global` and `scrape_configs` sections of eddy's YAML config, in Prometheus's shape:
//! deserialization, defaults and validation into typed values.
//!
//! Parsing is two-step: serde reads each section into a raw struct that keeps durations and
//! sizes as strings, then [`parse_config`] validates them with the job and field named, so an
//! operator reads `job "flink": scrape_timeout 20s is greater than scrape_interval 15s`
//! instead of a bare serde message. Unknown fields are errors inside `global` and in each scrape
//! config; other top-level sections belong to the server and are ignored here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::relabel::{RelabelConfig, RelabelRule};

/// Prometheus's default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default scrape timeout.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default file_sd refresh interval.
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);
/// Body size limit when none is configured: a Flink TaskManager serves well under 1 MiB.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 64 << 20;

/// A scrape config file (or the scrape part of eddy's config).
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeFile {
    /// Defaults for every job.
    pub global: Option<GlobalConfig>,
    /// One entry per job.
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// The `global` section: defaults for the jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// Default interval between scrapes of a target.
    pub scrape_interval: Duration,
    /// Default time limit for one scrape.
    pub scrape_timeout: Duration,
}

/// One `scrape_configs` entry: a job and its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeConfig {
    /// Value of the `job` label; unique in the file.
    pub job_name: String,
    /// Time between scrapes of each target.
    pub scrape_interval: Duration,
    /// Time limit of one scrape; at most `scrape_interval`.
    pub scrape_timeout: Duration,
    /// HTTP path (default `/metrics`).
    pub metrics_path: String,
    /// Always `http` (https is refused at parse time).
    pub scheme: String,
    /// Scraped `job`/`instance`/… labels win over target labels.
    pub honor_labels: bool,
    /// Query parameters sent with each scrape.
    pub params: BTreeMap<String, Vec<String>>,
    /// Fixed target groups.
    pub static_configs: Vec<TargetGroup>,
    /// File-based discovery.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Rules applied to each target's labels before scraping.
    pub relabel_configs: Vec<RelabelRule>,
    /// Rules applied to each scraped series before storage.
    pub metric_relabel_configs: Vec<RelabelRule>,
    /// A scrape with more series than this (after metric relabeling) fails; 0 = no limit.
    pub sample_limit: usize,
    /// A scrape with a series of more labels than this fails; 0 = no limit.
    pub label_limit: usize,
    /// Largest accepted (uncompressed) body in bytes.
    pub body_size_limit: u64,
}

/// A group of targets sharing labels: a `static_configs` entry or one entry of a file_sd file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSdConfig {
    /// File paths; the last path segment may contain `*` wildcards.
    pub files: Vec<String>,
    /// How often files are checked for changes.
    pub refresh_interval: Duration,
}

/// A scrape config that cannot be used, naming the job (when known) and the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The YAML could not be read into the expected shape.
    #[error("parse scrape config{}: {msg}", job_suffix(.job))]
    Syntax {
        /// Job name, or `scrape_configs[i]` when the entry has no readable name.
        job: Option<String>,
        /// The YAML reader's message (names the field).
        msg: String,
    },
    /// A field has a value that is not allowed.
    #[error("scrape config{}: {field}: {msg}", job_suffix(.job))]
    Invalid {
        /// Job name (none for `global`).
        job: Option<String>,
        /// The field, e.g. `scrape_timeout` or `metric_relabel_configs[0].regex`.
        field: String,
        /// What is wrong, with the bad value.
        msg: String,
    },
}

fn job_suffix(job: &Option<String>) -> String {
    match job {
        Some(j) if j.starts_with("scrape_configs[") => format!(" {j}"),
        Some(j) => format!(" of job {j:?}"),
        None => String::new(),
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    global: Option<RawGlobal>,
    #[serde(default)]
    scrape_configs: Vec<serde_norway::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    // Accepted so a Prometheus `global` section can be reused; not used by the scraper.
    #[allow(dead_code)]
    evaluation_interval: Option<String>,
    #[allow(dead_code)]
    external_labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScrapeConfig {
    job_name: String,
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    metrics_path: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    honor_labels: bool,
    #[serde(default)]
    params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    static_configs: Vec<TargetGroup>,
    #[serde(default)]
    file_sd_configs: Vec<RawFileSd>,
    #[serde(default)]
    relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    metric_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    sample_limit: usize,
    #[serde(default)]
    label_limit: usize,
    body_size_limit: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSd {
    files: Vec<String>,
    refresh_interval: Option<String>,
}

/// Parses and validates the `global` and `scrape_configs` sections of a YAML document. Other
/// top-level keys are ignored (they configure the rest of eddy).
pub fn parse_config(yaml: &str) -> Result<ScrapeFile, ConfigError> {
    let raw: RawFile = serde_norway::from_str(yaml).map_err(|e| ConfigError::Syntax {
        job: None,
        msg: e.to_string(),
    })?;
    let global = raw.global.map(validate_global).transpose()?;
    let (def_interval, def_timeout) = global
        .as_ref()
        .map_or((DEFAULT_SCRAPE_INTERVAL, DEFAULT_SCRAPE_TIMEOUT), |g| {
            (g.scrape_interval, g.scrape_timeout)
        });
    let mut scrape_configs = Vec::with_capacity(raw.scrape_configs.len());
    for (i, value) in raw.scrape_configs.into_iter().enumerate() {
        let job_hint = value
            .get("job_name")
            .and_then(|v| v.as_str())
            .map_or_else(|| format!("scrape_configs[{i}]"), str::to_string);
        let rc: RawScrapeConfig =
            serde_norway::from_value(value).map_err(|e| ConfigError::Syntax {
                job: Some(job_hint),
                msg: e.to_string(),
            })?;
        let sc = validate_job(rc, def_interval, def_timeout)?;
        if scrape_configs
            .iter()
            .any(|o: &ScrapeConfig| o.job_name == sc.job_name)
        {
            return Err(invalid(
                Some(&sc.job_name),
                "job_name",
                "duplicate job name".into(),
            ));
        }
        scrape_configs.push(sc);
    }
    Ok(ScrapeFile {
        global,
        scrape_configs,
    })
}

fn invalid(job: Option<&str>, field: &str, msg: String) -> ConfigError {
    ConfigError::Invalid {
        job: job.map(str::to_string),
        field: field.to_string(),
        msg,
    }
}

fn validate_global(g: RawGlobal) -> Result<GlobalConfig, ConfigError> {
    let dur = |v: &Option<String>, field: &str, def: Duration| match v {
        None => Ok(def),
        Some(s) => parse_duration(s).map_err(|msg| invalid(None, &format!("global.{field}"), msg)),
    };
    let scrape_interval = dur(
        &g.scrape_interval,
        "scrape_interval",
        DEFAULT_SCRAPE_INTERVAL,
    )?;
    // As in Prometheus, an unset timeout is min(default, interval).
    let scrape_timeout = dur(
        &g.scrape_timeout,
        "scrape_timeout",
        DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
    )?;
    if scrape_timeout > scrape_interval {
        return Err(invalid(
            None,
            "global.scrape_timeout",
            format!(
                "{} is greater than scrape_interval {}",
                fmt_duration(scrape_timeout),
                fmt_duration(scrape_interval)
            ),
        ));
    }
    Ok(GlobalConfig {
        scrape_interval,
        scrape_timeout,
    })
}

fn validate_job(
    rc: RawScrapeConfig,
    def_interval: Duration,
    def_timeout: Duration,
) -> Result<ScrapeConfig, ConfigError> {
    let job = rc.job_name.as_str();
    if job.is_empty() {
        return Err(invalid(None, "job_name", "must not be empty".into()));
    }
    let dur = |v: &Option<String>, field: &str| -> Result<Option<Duration>, ConfigError> {
        v.as_deref()
            .map(|s| parse_duration(s).map_err(|msg| invalid(Some(job), field, msg)))
            .transpose()
    };
    let scrape_interval = dur(&rc.scrape_interval, "scrape_interval")?.unwrap_or(def_interval);
    if scrape_interval.is_zero() {
        return Err(invalid(
            Some(job),
            "scrape_interval",
            "must be greater than 0s".into(),
        ));
    }
    let scrape_timeout =
        dur(&rc.scrape_timeout, "scrape_timeout")?.unwrap_or(def_timeout.min(scrape_interval));
    if scrape_timeout.is_zero() {
        return Err(invalid(
            Some(job),
            "scrape_timeout",
            "must be greater than 0s".into(),
        ));
    }
    if scrape_timeout > scrape_interval {
        return Err(invalid(
            Some(job),
            "scrape_timeout",
            format!(
                "{} is greater than scrape_interval {}",
                fmt_duration(scrape_timeout),
                fmt_duration(scrape_interval)
            ),
        ));
    }
    let scheme = rc.scheme.unwrap_or_else(|| "http".into());
    if scheme != "http" {
        let msg = if scheme == "https" {
            "https is not supported by eddy's scraper; expose the endpoint over http".to_string()
        } else {
            format!("unknown scheme {scheme:?}; only \"http\" is supported")
        };
        return Err(invalid(Some(job), "scheme", msg));
    }
    let metrics_path = rc.metrics_path.unwrap_or_else(|| "/metrics".into());
    if !metrics_path.starts_with('/') {
        return Err(invalid(
            Some(job),
            "metrics_path",
            format!("{metrics_path:?} must start with \"/\""),
        ));
    }
    for (i, g) in rc.static_configs.iter().enumerate() {
        for t in &g.targets {
            check_address(t)
                .map_err(|msg| invalid(Some(job), &format!("static_configs[{i}].targets"), msg))?;
        }
    }
    let mut file_sd_configs = Vec::with_capacity(rc.file_sd_configs.len());
    for (i, f) in rc.file_sd_configs.into_iter().enumerate() {
        let field = format!("file_sd_configs[{i}]");
        let refresh_interval = dur(&f.refresh_interval, &format!("{field}.refresh_interval"))?
            .unwrap_or(DEFAULT_FILE_SD_REFRESH);
        for p in &f.files {
            check_sd_pattern(p)
                .map_err(|msg| invalid(Some(job), &format!("{field}.files"), msg))?;
        }
        file_sd_configs.push(FileSdConfig {
            files: f.files,
            refresh_interval,
        });
    }
    let compile = |rules: Vec<RelabelConfig>, field: &str| {
        rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.compile()
                    .map_err(|(sub, msg)| invalid(Some(job), &format!("{field}[{i}].{sub}"), msg))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let relabel_configs = compile(rc.relabel_configs, "relabel_configs")?;
    let metric_relabel_configs = compile(rc.metric_relabel_configs, "metric_relabel_configs")?;
    let body_size_limit = match &rc.body_size_limit {
        None => DEFAULT_BODY_SIZE_LIMIT,
        Some(v) => match parse_size(v) {
            Ok(0) => DEFAULT_BODY_SIZE_LIMIT,
            Ok(n) => n,
            Err(msg) => return Err(invalid(Some(job), "body_size_limit", msg)),
        },
    };
    Ok(ScrapeConfig {
        job_name: rc.job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path,
        scheme,
        honor_labels: rc.honor_labels,
        params: rc.params,
        static_configs: rc.static_configs,
        file_sd_configs,
        relabel_configs,
        metric_relabel_configs,
        sample_limit: rc.sample_limit,
        label_limit: rc.label_limit,
        body_size_limit,
    })
}

/// A target address must be `host:port` without scheme or path.
pub(crate) fn check_address(addr: &str) -> Result<(), String> {
    if addr.contains('/') {
        return Err(format!(
            "target {addr:?} must be host:port, without scheme or path"
        ));
    }
    let port = addr.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
    match port {
        Some((h, Ok(_))) if !h.is_empty() => Ok(()),
        _ => Err(format!("target {addr:?} must be host:port")),
    }
}

/// file_sd patterns: `.json`, `.yml` or `.yaml`, wildcards only in the last path segment.
fn check_sd_pattern(p: &str) -> Result<(), String> {
    let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
    if dir.contains('*') {
        return Err(format!(
            "{p:?}: wildcards are only allowed in the file name"
        ));
    }
    if !(name.ends_with(".json") || name.ends_with(".yml") || name.ends_with(".yaml")) {
        return Err(format!("{p:?} must end in .json, .yml or .yaml"));
    }
    Ok(())
}

/// Parses a Prometheus duration: one or more `<int><unit>` with units `y w d h m s ms`, largest
/// first (`1h30m`, `15s`, `500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad = || format!("invalid duration {s:?}; expected e.g. \"15s\", \"1m30s\" or \"500ms\"");
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_unit = 0usize; // index into UNITS; units must strictly decrease
    let mut first = true;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let idx = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if !first && idx <= last_unit {
            return Err(bad());
        }
        first = false;
        last_unit = idx;
        total_ms = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| v.checked_add(total_ms))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way Prometheus writes it (`1m30s`, `500ms`, `0s`).
pub fn fmt_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 24 * 3600 * 1000u128),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Parses a size: a byte count or a number with `KB`/`MB`/`GB` (powers of 1024, as Prometheus's
/// `body_size_limit`) or `KiB`/`MiB`/`GiB`.
fn parse_size(v: &serde_norway::Value) -> Result<u64, String> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    let Some(s) = v.as_str() else {
        return Err(format!("invalid size {v:?}; expected e.g. 10MB"));
    };
    let bad = || format!("invalid size {s:?}; expected e.g. \"10MB\" or a byte count");
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().map_err(|_| bad())?;
    let mult: u64 = match s[digits..].trim() {
        "" | "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str, ms: u64| assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)));
        ok("15s", 15_000);
        ok("1m30s", 90_000);
        ok("500ms", 500);
        ok("1h", 3_600_000);
        ok("0s", 0);
        for bad in ["", "10", "10 s", "s", "1s1m", "1.5s", "-1s", "10sec"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(fmt_duration(Duration::from_millis(90_500)), "1m30s500ms");
    }

    #[test]
    fn addresses() {
        assert!(check_address("127.0.0.1:9249").is_ok());
        assert!(check_address("tm-1.example:9250").is_ok());
        assert!(check_address("http://x:1").is_err());
        assert!(check_address("x").is_err());
        assert!(check_address(":80").is_err());
        assert!(check_address("x:99999").is_err());
    }
}
