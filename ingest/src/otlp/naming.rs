//! OTLP → Prometheus names, after the OpenTelemetry "Prometheus and OpenMetrics compatibility"
//! spec: invalid characters become `_` (runs collapsed), a unit suffix from the metric's UCUM
//! unit, and `_total` on monotonic sums. Flink metrics can skip the suffixes so that they keep
//! the names of Flink's Prometheus reporter.

use std::fmt::Write as _;

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

/// The Prometheus metric name of OTLP metric `raw`, given the unit word from [`prom_unit`]:
/// `raw` itself when it needs no change, else `None` and the name is appended to `dst`.
pub(crate) fn metric_name<'r>(
    dst: &mut String,
    raw: &'r str,
    unit_word: &str,
    kind: Kind,
    sfx: Suffixes,
) -> Option<&'r str> {
    let unit = sfx.unit && !unit_word.is_empty() && !has_word(raw, unit_word);
    let total = sfx.total && kind == Kind::Counter && !raw.ends_with("_total");
    if is_clean(raw, true) && !unit && !total {
        return Some(raw);
    }
    let start = dst.len();
    push_sanitized(dst, raw, true);
    if sfx.unit && !unit_word.is_empty() && !has_word(&dst[start..], unit_word) {
        if !dst.ends_with('_') {
            dst.push('_');
        }
        dst.push_str(unit_word);
    }
    if sfx.total && kind == Kind::Counter && !dst[start..].ends_with("_total") {
        if !dst.ends_with('_') {
            dst.push('_');
        }
        dst.push_str("total");
    }
    None
}

/// A Prometheus label name for attribute key `raw`: `raw` itself when it is valid, else
/// `None` and the sanitized name is appended to `dst`. Empty keys have no label (check first).
pub(crate) fn label_name<'r>(dst: &mut String, raw: &'r str) -> Option<&'r str> {
    if is_clean(raw, false) {
        return Some(raw);
    }
    push_sanitized(dst, raw, false);
    None
}

/// True if [`push_sanitized`] would copy `raw` unchanged.
pub(crate) fn is_clean(raw: &str, metric: bool) -> bool {
    let b = raw.as_bytes();
    if b.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    // One pass: every byte valid, and no `_` right after another.
    let mut prev = 0u8;
    for &c in b {
        if !valid(c, metric) || (c == b'_' && prev == b'_') {
            return false;
        }
        prev = c;
    }
    true
}

#[inline]
fn valid(c: u8, metric: bool) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || (metric && c == b':')
}

/// Appends `raw` with characters outside `[a-zA-Z0-9_]` (and `:` in metric names) replaced by
/// `_` and runs of `_` collapsed, as the spec requires. A leading digit gets a prefix (`_` for
/// metric names, `key_` for label names, as Prometheus does).
pub(crate) fn push_sanitized(dst: &mut String, raw: &str, metric: bool) {
    let start = dst.len();
    if raw.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        dst.push_str(if metric { "_" } else { "key_" });
    }
    for c in raw.chars() {
        let c = if c.is_ascii() && valid(c as u8, metric) {
            c
        } else {
            '_'
        };
        if c == '_' && dst.len() > start && dst.ends_with('_') {
            continue;
        }
        dst.push(c);
    }
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

/// Writes into `dst` (cleared first) the Prometheus unit word for a UCUM unit: `ms` →
/// `milliseconds`, `By/s` → `bytes_per_second`, `{packet}` → nothing, `1` → `ratio` (gauges
/// only, as Prometheus does). `plain` is scratch.
pub(crate) fn prom_unit(dst: &mut String, plain: &mut String, unit: &str, kind: Kind) {
    dst.clear();
    // Drop annotations in braces: "{packet}" is a count, "By{x}" is bytes.
    plain.clear();
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
        if kind == Kind::Gauge {
            dst.push_str("ratio");
        }
        return;
    }
    let (main, per) = match plain.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (plain, None),
    };
    // The words are sanitized as one label name would be, then stripped of outer `_`.
    let first = if main.is_empty() {
        per.filter(|p| !p.is_empty()).map(|_| "per_")
    } else {
        Some(unit_word(main))
    };
    if first.is_some_and(|f| f.as_bytes().first().is_some_and(u8::is_ascii_digit)) {
        dst.push_str("key_");
    }
    if !main.is_empty() {
        push_unit_part(dst, unit_word(main));
    }
    if let Some(p) = per.filter(|p| !p.is_empty()) {
        if !dst.is_empty() {
            push_unit_part(dst, "_");
        }
        push_unit_part(dst, "per_");
        push_unit_part(dst, per_unit_word(p));
    }
    while dst.ends_with('_') {
        dst.pop();
    }
}

/// Appends one piece of a unit word: invalid characters → `_`, no run of `_`, none leading.
fn push_unit_part(dst: &mut String, s: &str) {
    for c in s.chars() {
        let c = if c.is_ascii() && valid(c as u8, false) {
            c
        } else {
            '_'
        };
        if c == '_' && (dst.is_empty() || dst.ends_with('_')) {
            continue;
        }
        dst.push(c);
    }
}

fn unit_word(u: &str) -> &str {
    match u {
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
        other => other,
    }
}

fn per_unit_word(u: &str) -> &str {
    match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => unit_word(other),
    }
}

/// Formats a bucket bound or quantile like Prometheus (`strconv.FormatFloat(v, 'f', -1, 64)`):
/// shortest round-trip digits, no exponent, `+Inf`/`-Inf`/`NaN`. Common values are static;
/// the others are appended to `dst` (and `None` returned).
pub(crate) fn format_float(dst: &mut String, v: f64) -> Option<&'static str> {
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
        _ => {
            let _ = write!(dst, "{v}");
            return None;
        }
    };
    if v == 0.0 && v.is_sign_negative() {
        return Some("-0");
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Suffixes = Suffixes {
        unit: true,
        total: true,
    };

    fn name(raw: &str, unit: &str, kind: Kind, sfx: Suffixes) -> (String, bool) {
        let (mut word, mut plain) = (String::new(), String::new());
        prom_unit(&mut word, &mut plain, unit, kind);
        let mut dst = String::from("prefix");
        match metric_name(&mut dst, raw, &word, kind, sfx) {
            Some(n) => {
                assert_eq!(dst, "prefix", "nothing appended for a borrowed name");
                (n.to_string(), true)
            }
            None => (dst["prefix".len()..].to_string(), false),
        }
    }

    #[test]
    fn names() {
        let f = |raw, unit, kind| name(raw, unit, kind, ALL).0;
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
        assert_eq!(f("a.b_", "s", Kind::Counter), "a_b_seconds_total");
        // The unit word is found in the sanitized name too.
        assert_eq!(f("read.bytes", "By", Kind::Gauge), "read_bytes");
        assert_eq!(
            name("ok_name", "", Kind::Gauge, ALL),
            ("ok_name".to_string(), true)
        );
        assert_eq!(
            name("ok_name", "ms", Kind::Gauge, ALL),
            ("ok_name_milliseconds".to_string(), false)
        );
        let none = Suffixes {
            unit: false,
            total: false,
        };
        assert_eq!(
            name(
                "flink.taskmanager.job.task.operator.numRecordsIn",
                "",
                Kind::Counter,
                none
            ),
            (
                "flink_taskmanager_job_task_operator_numRecordsIn".to_string(),
                false
            )
        );
    }

    #[test]
    fn units() {
        let f = |unit, kind| {
            let (mut word, mut plain) = (String::from("stale"), String::new());
            prom_unit(&mut word, &mut plain, unit, kind);
            word
        };
        assert_eq!(f("ms", Kind::Other), "milliseconds");
        assert_eq!(f("By/s", Kind::Gauge), "bytes_per_second");
        assert_eq!(f("{packet}", Kind::Counter), "");
        assert_eq!(f("1", Kind::Gauge), "ratio");
        assert_eq!(f("1", Kind::Counter), "");
        assert_eq!(f("/s", Kind::Gauge), "per_second");
        assert_eq!(f("By{x}/ h ", Kind::Gauge), "bytes_per_hour");
        assert_eq!(f("m/s.x", Kind::Gauge), "meters_per_s_x");
        assert_eq!(f("-x-", Kind::Gauge), "x");
        assert_eq!(f("2x", Kind::Gauge), "key_2x");
    }

    #[test]
    fn labels() {
        let f = |raw: &str| {
            let mut dst = String::new();
            match label_name(&mut dst, raw) {
                Some(n) => n.to_string(),
                None => dst,
            }
        };
        assert_eq!(f("service.name"), "service_name");
        assert_eq!(f("__name__"), "_name_");
        assert_eq!(f("1st"), "key_1st");
        assert_eq!(f("tm_id"), "tm_id");
    }

    #[test]
    fn floats() {
        let f = |v: f64| {
            let mut dst = String::new();
            match format_float(&mut dst, v) {
                Some(s) => {
                    assert!(dst.is_empty());
                    s.to_string()
                }
                None => dst,
            }
        };
        assert_eq!(f(0.005), "0.005");
        assert_eq!(f(1e-7), "0.0000001");
        assert_eq!(f(250.0), "250");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(0.99), "0.99");
        assert_eq!(f(-0.0), "-0");
    }
}
