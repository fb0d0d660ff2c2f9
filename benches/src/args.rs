//! Minimal `--name value` command-line parsing for the benchmark binaries (no clap: the
//! benches crate stays quick to build), plus the workload options they share.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context};

use crate::flink::Config;

/// Parsed `--name value` pairs and bare `--flag`s.
#[derive(Debug, Default)]
pub struct Args {
    map: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()` (skipping the program name).
    pub fn from_env() -> anyhow::Result<Args> {
        Self::parse(std::env::args().skip(1))
    }

    /// Parses `--name value`, `--name=value` and bare `--flag` (value "true").
    pub fn parse(it: impl IntoIterator<Item = String>) -> anyhow::Result<Args> {
        let mut map = HashMap::new();
        let mut it = it.into_iter().peekable();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?} (options are --name value)");
            };
            if let Some((n, v)) = name.split_once('=') {
                map.insert(n.to_string(), v.to_string());
            } else if it.peek().is_some_and(|n| !n.starts_with("--")) {
                let v = it.next().unwrap_or_default();
                map.insert(name.to_string(), v);
            } else {
                map.insert(name.to_string(), "true".to_string());
            }
        }
        Ok(Args { map })
    }

    /// The raw value of `--name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// True when `--name` was given (as a flag or with any value but "false").
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "false")
    }

    /// `--name` parsed, or `default`.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| anyhow!("parse --{name} {v:?}: {e}")),
        }
    }

    /// `--name` as a duration in ms (`250ms`, `15s`, `90m`, `6h`; bare numbers are seconds).
    pub fn duration_ms(&self, name: &str, default_ms: i64) -> anyhow::Result<i64> {
        match self.get(name) {
            None => Ok(default_ms),
            Some(v) => parse_duration_ms(v).with_context(|| format!("parse --{name}")),
        }
    }
}

/// Parses `250ms`, `15s`, `90m`, `6h`, `1.5h`; a bare number is seconds.
pub fn parse_duration_ms(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|e| anyhow!("bad duration {s:?}: {e}"))?;
    let scale = match unit {
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        "d" => 86_400e3,
        _ => bail!("bad duration unit in {s:?} (ms, s, m, h, d)"),
    };
    if !n.is_finite() || n < 0.0 {
        bail!("bad duration {s:?}: must be a non-negative number");
    }
    Ok((n * scale) as i64)
}

/// The workload options shared by the binaries: `--tms`, `--hours`, `--interval`,
/// `--restart-every`, `--seed`, `--slots`, `--tms-per-job`, `--end` (ms or `now`).
pub fn workload(args: &Args, default_tms: usize, default_hours: f64) -> anyhow::Result<Config> {
    let d = Config::default();
    let end_ms = match args.get("end") {
        None | Some("now") => now_ms(),
        Some(v) => v.parse().map_err(|e| anyhow!("parse --end {v:?}: {e}"))?,
    };
    let cfg = Config {
        tms: args.num("tms", default_tms)?,
        tms_per_job: args.num("tms-per-job", d.tms_per_job)?,
        slots: args.num("slots", d.slots)?,
        hours: args.num("hours", default_hours)?,
        interval_ms: args.duration_ms("interval", d.interval_ms)?,
        jitter_ms: args.num("jitter-ms", d.jitter_ms)?,
        restart_every_ms: args.duration_ms("restart-every", d.restart_every_ms)?,
        seed: args.num("seed", d.seed)?,
        end_ms,
    };
    if cfg.interval_ms <= 2 * cfg.jitter_ms {
        bail!(
            "--interval must exceed twice the jitter ({} ms)",
            cfg.jitter_ms
        );
    }
    Ok(cfg)
}

/// Wall-clock time in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15s").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("1.5h").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert_eq!(parse_duration_ms("10").unwrap(), 10_000);
        assert!(parse_duration_ms("5y").is_err());
        assert!(parse_duration_ms("-1s").is_err());
    }

    #[test]
    fn options() {
        let a = Args::parse(["--tms", "8", "--quick", "--hours=0.5"].map(String::from)).unwrap();
        assert_eq!(a.num("tms", 1usize).unwrap(), 8);
        assert!(a.flag("quick"));
        assert_eq!(a.num("hours", 1.0f64).unwrap(), 0.5);
        assert!(a.num::<usize>("hours", 1).is_err());
        assert!(Args::parse(["stray".to_string()]).is_err());
    }
}
