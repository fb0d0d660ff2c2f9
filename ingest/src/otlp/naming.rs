//! OTLP → Prometheus names, after the OpenTelemetry "Prometheus and OpenMetrics compatibility"
//! spec: invalid characters become `_` (runs collapsed), a unit suffix from the metric's UCUM
//! unit, and `_total` on monotonic sums. Flink metrics can skip the suffixes so that they keep
//! the names of Flink's Prometheus reporter.

use std::borrow::Cow;

/// What the metric becomes in Prometheus, which decides its suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
    /// Histograms and summaries: unit suffix only (their `_bucket/_sum/_count` come later).
    Other,
}

/// Suffix choices for one metric.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Suffixes {
    pub unit: bool,
    pub total: bool,
}

/// The Prometheus metric name of OTLP metric `raw` with UCUM `unit`.
pub(crate) fn metric_name<'a>(raw: &'a str, unit: &str, kind: Kind, sfx: Suffixes) -> Cow<'a, str> {
    let mut name = sanitize(raw, true);
    if sfx.unit {
        let unit = prom_unit(unit, kind);
        if !unit.is_empty() && !has_word(&name, &unit) {
            let n = name.to_mut();
            if !n.ends_with('_') {
                n.push('_');
            }
            n.push_str(&unit);
        }
    }
    if sfx.total && kind == Kind::Counter && !name.ends_with("_total") {
        let n = name.to_mut();
        if !n.ends_with('_') {
            n.push('_');
        }
        n.push_str("total");
    }
    name
}

/// A Prometheus label name for attribute key `raw`; `None` for an empty key.
pub(crate) fn label_name(raw: &str) -> Option<Cow<'_, str>> {
    if raw.is_empty() {
        return None;
    }
    Some(sanitize(raw, false))
}

/// Replaces characters outside `[a-zA-Z0-9_]` (and `:` in metric names) with `_` and collapses
/// runs of `_`, as the spec requires. A leading digit gets a prefix (`_` for metric names,
/// `key_` for label names, as Prometheus does). Borrows when nothing changes.
pub(crate) fn sanitize(raw: &str, metric: bool) -> Cow<'_, str> {
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || (metric && c == b':');
    let b = raw.as_bytes();
    let leading_digit = b.first().is_some_and(u8::is_ascii_digit);
    let clean = b.iter().all(|&c| ok(c)) && !raw.contains("__") && !leading_digit;
    if clean {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 4);
    if leading_digit {
        out.push_str(if metric { "_" } else { "key_" });
    }
    for c in raw.chars() {
        let c = if c.is_ascii() && ok(c as u8) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// True if `word` (which may contain `_`) appears in `name` between `_` boundaries.
fn has_word(name: &str, word: &str) -> bool {
    name.match_indices(word).any(|(i, _)| {
        let before = i == 0 || name.as_bytes()[i - 1] == b'_';
        let end = i + word.len();
        let after = end == name.len() || name.as_bytes()[end] == b'_';
        before && after
    })
}

/// The Prometheus unit word for a UCUM unit: `ms` → `milliseconds`, `By/s` →
/// `bytes_per_second`, `{packet}` → nothing, `1` → `ratio` (gauges only, as Prometheus does).
pub(crate) fn prom_unit(unit: &str, kind: Kind) -> String {
    // Drop annotations in braces: "{packet}" is a count, "By{x}" is bytes.
    let mut plain = String::with_capacity(unit.len());
    let mut depth = 0u32;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.trim();
    if plain == "1" {
        return if kind == Kind::Gauge {
            "ratio".to_string()
        } else {
            String::new()
        };
    }
    let (main, per) = match plain.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (plain, None),
    };
    let mut out = String::new();
    if !main.is_empty() {
        out.push_str(&unit_word(main));
    }
    if let Some(p) = per.filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str("per_");
        out.push_str(&per_unit_word(p));
    }
    sanitize(&out, false).trim_matches('_').to_string()
}

fn unit_word(u: &str) -> Cow<'_, str> {
    Cow::Borrowed(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        other => return Cow::Borrowed(other),
    })
}

fn per_unit_word(u: &str) -> Cow<'_, str> {
    Cow::Borrowed(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => return unit_word(other),
    })
}

/// Formats a bucket bound or quantile like Prometheus (`strconv.FormatFloat(v, 'f', -1, 64)`):
/// shortest round-trip digits, no exponent, `+Inf`/`-Inf`/`NaN`. Common values are static.
pub(crate) fn format_float(v: f64) -> Cow<'static, str> {
    let s = match v {
        0.0 => "0",
        0.5 => "0.5",
        0.75 => "0.75",
        0.9 => "0.9",
        0.95 => "0.95",
        0.98 => "0.98",
        0.99 => "0.99",
        0.999 => "0.999",
        1.0 => "1",
        f64::INFINITY => "+Inf",
        f64::NEG_INFINITY => "-Inf",
        _ if v.is_nan() => "NaN",
        _ => return Cow::Owned(format!("{v}")),
    };
    if v == 0.0 && v.is_sign_negative() {
        return Cow::Borrowed("-0");
    }
    Cow::Borrowed(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Suffixes = Suffixes {
        unit: true,
        total: true,
    };

    #[test]
    fn names() {
        let f = |raw, unit, kind| metric_name(raw, unit, kind, ALL).into_owned();
        assert_eq!(
            f("http.server.duration", "ms", Kind::Other),
            "http_server_duration_milliseconds"
        );
        assert_eq!(
            f("process.cpu.time", "s", Kind::Counter),
            "process_cpu_time_seconds_total"
        );
        assert_eq!(f("requests", "{request}", Kind::Counter), "requests_total");
        assert_eq!(f("requests_total", "", Kind::Counter), "requests_total");
        assert_eq!(
            f("cpu.utilization", "1", Kind::Gauge),
            "cpu_utilization_ratio"
        );
        assert_eq!(f("net.io", "By/s", Kind::Gauge), "net_io_bytes_per_second");
        assert_eq!(f("disk_bytes_used", "By", Kind::Gauge), "disk_bytes_used");
        assert_eq!(f("a..b--c", "", Kind::Gauge), "a_b_c");
        assert_eq!(f("2xx.count", "", Kind::Gauge), "_2xx_count");
        assert_eq!(f("ns:metric", "", Kind::Gauge), "ns:metric");
        assert!(matches!(
            metric_name("ok_name", "", Kind::Gauge, ALL),
            Cow::Borrowed(_)
        ));
        let none = Suffixes {
            unit: false,
            total: false,
        };
        assert_eq!(
            metric_name(
                "flink.taskmanager.job.task.operator.numRecordsIn",
                "",
                Kind::Counter,
                none
            ),
            "flink_taskmanager_job_task_operator_numRecordsIn"
        );
    }

    #[test]
    fn labels() {
        assert_eq!(label_name("service.name").unwrap(), "service_name");
        assert_eq!(label_name("__name__").unwrap(), "_name_");
        assert_eq!(label_name("1st").unwrap(), "key_1st");
        assert_eq!(label_name("tm_id").unwrap(), "tm_id");
        assert!(label_name("").is_none());
    }

    #[test]
    fn floats() {
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(1e-7), "0.0000001");
        assert_eq!(format_float(250.0), "250");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(0.99), "0.99");
        assert_eq!(format_float(-0.0), "-0");
    }
}
