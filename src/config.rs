//! Command-line flags of `eddy serve` and the durations they take.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

/// Settings of the server, from flags (names follow Prometheus where they mean the same).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// YAML configuration file with `scrape_configs` (Prometheus's shape) for pulling Flink's
    /// PrometheusReporter endpoints. Re-read on `POST /-/reload` and SIGHUP.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,

    /// Address to listen on. Loopback by default: nobody else reaches eddy until you open it.
    #[arg(
        long = "listen",
        visible_alias = "web.listen-address",
        default_value = "127.0.0.1:9201"
    )]
    pub listen: SocketAddr,

    /// Directory for the WAL and blocks; created if missing.
    #[arg(
        long = "data-dir",
        visible_alias = "storage.tsdb.path",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// How long blocks are kept, measured back from the newest sample (e.g. 15d, 36h).
    #[arg(long = "storage.tsdb.retention.time", visible_alias = "retention", default_value = "15d", value_parser = parse_duration)]
    pub retention: Duration,

    /// When the WAL is fsynced: `always` (before every acknowledgement; survives power loss),
    /// `interval:<dur>` (every <dur>; survives a crash of eddy, power loss may cost <dur>), or
    /// `never` (the OS decides).
    #[arg(long = "storage.wal.sync", default_value = "interval:1s", value_parser = parse_sync)]
    pub wal_sync: eddy_storage::wal::SyncPolicy,

    /// How far behind a series' newest sample an older sample is still accepted.
    #[arg(long = "storage.tsdb.out-of-order-time-window", default_value = "10m", value_parser = parse_duration)]
    pub ooo_window: Duration,

    /// Time span of a block cut from the in-memory head.
    #[arg(long = "storage.tsdb.block-duration", default_value = "2h", value_parser = parse_duration)]
    pub block_duration: Duration,

    /// Maximum active series; new series beyond it are rejected with an error (0 = no limit).
    #[arg(long = "storage.max-series", default_value_t = 0)]
    pub max_series: u64,

    /// Maximum active series of one metric name (0 = no limit).
    #[arg(long = "storage.max-series-per-metric", default_value_t = 0)]
    pub max_series_per_metric: u64,

    /// Maximum series created per hour, e.g. to contain a restart storm (0 = no limit).
    #[arg(long = "storage.max-new-series-per-hour", default_value_t = 0)]
    pub max_new_series_per_hour: u64,

    /// Maximum series of one metric name created per hour (0 = no limit).
    #[arg(
        long = "storage.max-new-series-per-hour-per-metric",
        default_value_t = 0
    )]
    pub max_new_series_per_hour_per_metric: u64,

    /// Largest accepted request body for ingest, after decompression, in bytes.
    #[arg(long = "ingest.max-body-bytes", default_value_t = 64 << 20)]
    pub max_body_bytes: usize,

    /// Requests decoded and appended at once; more wait (their bodies already read) for a
    /// worker. 0 = one per core, or four per core (at least 8) with
    /// `--storage.wal.sync always`, where appends wait for an fsync.
    #[arg(long = "ingest.workers", default_value_t = 0)]
    pub ingest_workers: usize,

    /// Labels removed from every ingested series (repeatable), e.g. `task_attempt_id`.
    #[arg(long = "ingest.drop-label")]
    pub drop_labels: Vec<String>,

    /// Longest a query may run before it fails with a timeout.
    #[arg(long = "query.timeout", default_value = "2m", value_parser = parse_duration)]
    pub query_timeout: Duration,

    /// Most samples a single query may load.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = parse_duration)]
    pub lookback_delta: Duration,

    /// How often background maintenance (head cut, compaction, retention) runs.
    #[arg(long = "storage.maintenance-interval", default_value = "1m", value_parser = parse_duration)]
    pub maintenance_interval: Duration,
}

/// Parses a Prometheus-style duration: `1y2w3d4h5m6s7ms` (units in descending order), or a
/// plain number of seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    parse_duration_ms(s).map(|ms| Duration::from_millis(ms as u64))
}

/// Like [`parse_duration`], in milliseconds.
pub fn parse_duration_ms(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if s.is_empty() {
        bail!("empty duration");
    }
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            bail!("invalid duration {s:?}");
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_unit = usize::MAX;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            bail!("invalid duration {s:?}: expected a number");
        }
        let n: i64 = rest[..digits]
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            bail!("invalid duration {s:?}: unknown unit {unit:?}");
        };
        if last_unit != usize::MAX && pos <= last_unit {
            bail!("invalid duration {s:?}: units must be in descending order");
        }
        last_unit = pos;
        total = n
            .checked_mul(UNITS[pos].1)
            .and_then(|v| v.checked_add(total))
            .with_context(|| format!("duration {s:?} is too long"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn parse_sync(s: &str) -> anyhow::Result<eddy_storage::wal::SyncPolicy> {
    use eddy_storage::wal::SyncPolicy;
    match s {
        "always" => Ok(SyncPolicy::Always),
        "never" => Ok(SyncPolicy::Never),
        _ => match s.strip_prefix("interval:") {
            Some(d) => Ok(SyncPolicy::Interval(parse_duration(d)?)),
            None => {
                bail!("invalid WAL sync policy {s:?}: use always, never or interval:<duration>")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15d").unwrap(), 15 * 86_400_000);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("100ms").unwrap(), 100);
        assert_eq!(parse_duration_ms("1.5").unwrap(), 1500);
        assert!(parse_duration_ms("30m1h").is_err());
        assert!(parse_duration_ms("5x").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_sync("interval:200ms").is_ok());
        assert!(parse_sync("sometimes").is_err());
    }
}
