//! Metric names for line protocol points: `{measurement}_{field}` as VictoriaMetrics does, and
//! the Flink mapping that gives InfluxdbReporter data the names of Flink's PrometheusReporter.

use std::borrow::Cow;

use super::scan::FieldValue;

/// How the fields of one Flink line map to Prometheus-reporter names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlinkShape {
    /// Counter (`count`) or gauge (`value`): the field is the metric itself.
    Plain,
    /// Meter: `count` + `rate`. The Prometheus reporter exports only the rate, under the meter's
    /// name.
    Meter,
    /// Histogram: `count, min, max, mean, stddev, p50 … p999`. The Prometheus reporter exports a
    /// summary: `{quantile="0.5"}` … and `_count`. The InfluxdbReporter's `count` is not that
    /// `_count` (the histogram's total, `Histogram.getCount()`) but the number of values in the
    /// sliding window (`HistogramStatistics.size()`, e.g. a constant 500), so it is named
    /// `_window_size`: under `_count` it would break `rate()` and disagree with the other paths.
    Histogram,
}

/// Flink's InfluxdbReporter names measurements `<logical scope>_<metric>`; every logical scope
/// starts with `jobmanager` or `taskmanager`.
pub(crate) fn is_flink_measurement(m: &str) -> bool {
    m.starts_with("taskmanager_") || m.starts_with("jobmanager_")
}

/// Classifies a Flink line by its field keys.
pub(crate) fn flink_shape(fields: &[(Cow<'_, str>, FieldValue<'_>)]) -> FlinkShape {
    let mut shape = FlinkShape::Plain;
    for (k, _) in fields {
        match k.as_ref() {
            "value" | "count" => {}
            "rate" => {
                if shape == FlinkShape::Plain {
                    shape = FlinkShape::Meter;
                }
            }
            _ => shape = FlinkShape::Histogram,
        }
    }
    shape
}

/// The Prometheus quantile of a Flink histogram field: `p50` (2.x) or `50-percentile` (older
/// reporters) → `"0.5"`.
pub(crate) fn flink_quantile(field: &str) -> Option<&'static str> {
    let n = field
        .strip_prefix('p')
        .or_else(|| field.strip_suffix("-percentile"))?;
    Some(match n {
        "50" => "0.5",
        "75" => "0.75",
        "90" => "0.9",
        "95" => "0.95",
        "98" => "0.98",
        "99" => "0.99",
        "999" | "99.9" => "0.999",
        _ => return None,
    })
}

/// The metric name and optional `quantile` label of field `field` of Flink measurement `m`.
pub(crate) fn flink_name(
    m: &str,
    field: &str,
    shape: FlinkShape,
) -> (String, Option<&'static str>) {
    let mut name = String::with_capacity(6 + m.len() + 1 + field.len());
    name.push_str("flink_");
    push_sanitized(&mut name, m);
    let suffix = match (shape, field) {
        (FlinkShape::Plain, "value" | "count") => None,
        (FlinkShape::Meter, "rate") => None,
        (FlinkShape::Histogram, "count") => Some("window_size"),
        (FlinkShape::Histogram, f) => {
            if let Some(q) = flink_quantile(f) {
                return (name, Some(q));
            }
            Some(f)
        }
        (_, f) => Some(f),
    };
    if let Some(f) = suffix {
        name.push('_');
        push_sanitized(&mut name, f);
    }
    (name, None)
}

/// `{measurement}_{field}`; with `prom_names`, characters outside `[a-zA-Z0-9_:]` become `_`.
pub(crate) fn plain_name(m: &str, field: &str, prom_names: bool) -> String {
    let mut name = String::with_capacity(m.len() + 1 + field.len() + 1);
    if prom_names {
        if m.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            name.push('_');
        }
        push_sanitized(&mut name, m);
        name.push('_');
        push_sanitized(&mut name, field);
    } else {
        name.push_str(m);
        name.push('_');
        name.push_str(field);
    }
    name
}

/// Appends `s` with every character outside `[a-zA-Z0-9_:]` replaced by `_` (the rule of
/// Flink's Prometheus reporter for names and label values).
fn push_sanitized(dst: &mut String, s: &str) {
    for c in s.chars() {
        dst.push(if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        });
    }
}

/// Flink's Prometheus reporter label value filter: `[^a-zA-Z0-9:_]` → `_`. Borrows when the
/// value is already clean.
pub(crate) fn sanitize_label_value<'a>(v: &Cow<'a, str>) -> Cow<'a, str> {
    if v.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
    {
        return v.clone();
    }
    let mut out = String::with_capacity(v.len());
    push_sanitized(&mut out, v);
    Cow::Owned(out)
}

/// A Prometheus label name: `[^a-zA-Z0-9_]` → `_`, and `_` before a leading digit.
pub(crate) fn sanitize_label_name<'a>(v: &Cow<'a, str>) -> Cow<'a, str> {
    let b = v.as_bytes();
    let clean = b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    if clean && !b.first().is_some_and(u8::is_ascii_digit) {
        return v.clone();
    }
    let mut out = String::with_capacity(v.len() + 1);
    if b.first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    for c in v.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_names() {
        let m = "taskmanager_job_task_mailboxLatencyMs";
        let f = |field, shape| flink_name(m, field, shape);
        assert_eq!(f("count", FlinkShape::Plain), (format!("flink_{m}"), None));
        assert_eq!(f("value", FlinkShape::Plain), (format!("flink_{m}"), None));
        assert_eq!(f("rate", FlinkShape::Meter), (format!("flink_{m}"), None));
        assert_eq!(
            f("count", FlinkShape::Meter),
            (format!("flink_{m}_count"), None)
        );
        assert_eq!(
            f("p99", FlinkShape::Histogram),
            (format!("flink_{m}"), Some("0.99"))
        );
        assert_eq!(
            f("p999", FlinkShape::Histogram),
            (format!("flink_{m}"), Some("0.999"))
        );
        assert_eq!(
            f("50-percentile", FlinkShape::Histogram),
            (format!("flink_{m}"), Some("0.5"))
        );
        // Window size, not the total count of the Prometheus reporter's `_count`.
        assert_eq!(
            f("count", FlinkShape::Histogram),
            (format!("flink_{m}_window_size"), None)
        );
        assert_eq!(
            f("stddev", FlinkShape::Histogram),
            (format!("flink_{m}_stddev"), None)
        );
        assert_eq!(
            flink_name("jobmanager_G1 Old", "value", FlinkShape::Plain).0,
            "flink_jobmanager_G1_Old"
        );
    }

    #[test]
    fn sanitizers() {
        let v = Cow::Borrowed("Source: datagen-source -> double-map");
        assert_eq!(
            sanitize_label_value(&v),
            "Source:_datagen_source____double_map"
        );
        assert!(matches!(
            sanitize_label_value(&Cow::Borrowed("a:b_1")),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            sanitize_label_name(&Cow::Borrowed("node-name")),
            "node_name"
        );
        assert_eq!(sanitize_label_name(&Cow::Borrowed("1x")), "_1x");
        assert_eq!(
            plain_name("cpu.load", "usage-idle", true),
            "cpu_load_usage_idle"
        );
        assert_eq!(plain_name("9cpu", "v", true), "_9cpu_v");
        assert_eq!(plain_name("cpu.load", "v", false), "cpu.load_v");
    }
}
