//! Metric names for line protocol points: `{measurement}_{field}` as VictoriaMetrics does, and
//! the Flink mapping that gives InfluxdbReporter data the names of Flink's PrometheusReporter.

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
pub(crate) fn flink_shape<'k>(keys: impl Iterator<Item = &'k str>) -> FlinkShape {
    let mut shape = FlinkShape::Plain;
    for k in keys {
        match k {
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

/// Appends the metric name of field `field` of Flink measurement `m` to `dst`; returns the
/// `quantile` label of histogram percentiles.
pub(crate) fn flink_name(
    dst: &mut String,
    m: &str,
    field: &str,
    shape: FlinkShape,
) -> Option<&'static str> {
    dst.push_str("flink_");
    push_sanitized(dst, m);
    let suffix = match (shape, field) {
        (FlinkShape::Plain, "value" | "count") => None,
        (FlinkShape::Meter, "rate") => None,
        (FlinkShape::Histogram, "count") => Some("window_size"),
        (FlinkShape::Histogram, f) => {
            if let Some(q) = flink_quantile(f) {
                return Some(q);
            }
            Some(f)
        }
        (_, f) => Some(f),
    };
    if let Some(f) = suffix {
        dst.push('_');
        push_sanitized(dst, f);
    }
    None
}

/// Appends `{measurement}_{field}` to `dst`; with `prom_names`, characters outside
/// `[a-zA-Z0-9_:]` become `_`.
pub(crate) fn plain_name(dst: &mut String, m: &str, field: &str, prom_names: bool) {
    if prom_names {
        if m.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            dst.push('_');
        }
        push_sanitized(dst, m);
        dst.push('_');
        push_sanitized(dst, field);
    } else {
        dst.push_str(m);
        dst.push('_');
        dst.push_str(field);
    }
}

#[inline]
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Appends `s` with every character outside `[a-zA-Z0-9_:]` replaced by `_` (the rule of
/// Flink's Prometheus reporter for names and label values).
fn push_sanitized(dst: &mut String, s: &str) {
    // Names are mostly clean: copy clean runs whole, one `_` per other character.
    let mut rest = s;
    while let Some(p) = rest.bytes().position(|c| !is_name_byte(c)) {
        dst.push_str(&rest[..p]);
        dst.push('_');
        let len = rest[p..].chars().next().map_or(1, char::len_utf8);
        rest = &rest[p + len..];
    }
    dst.push_str(rest);
}

/// True if Flink's Prometheus reporter label value filter (`[^a-zA-Z0-9:_]` → `_`) leaves `v`
/// as it is.
pub(crate) fn label_value_is_clean(v: &str) -> bool {
    v.bytes().all(is_name_byte)
}

/// Appends `v` filtered like Flink's Prometheus reporter filters label values.
pub(crate) fn push_label_value(dst: &mut String, v: &str) {
    push_sanitized(dst, v);
}

/// True if `v` is already a Prometheus label name (`[a-zA-Z0-9_]`, no leading digit).
pub(crate) fn label_name_is_clean(v: &str) -> bool {
    let b = v.as_bytes();
    b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        && !b.first().is_some_and(u8::is_ascii_digit)
}

/// Appends `v` as a Prometheus label name: `[^a-zA-Z0-9_]` → `_`, and `_` before a leading
/// digit.
pub(crate) fn push_label_name(dst: &mut String, v: &str) {
    if v.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        dst.push('_');
    }
    for c in v.chars() {
        dst.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flink(m: &str, field: &str, shape: FlinkShape) -> (String, Option<&'static str>) {
        let mut dst = String::from("prefix:");
        let q = flink_name(&mut dst, m, field, shape);
        assert_eq!(&dst[..7], "prefix:", "appends");
        (dst[7..].to_string(), q)
    }

    #[test]
    fn flink_names() {
        let m = "taskmanager_job_task_mailboxLatencyMs";
        let f = |field, shape| flink(m, field, shape);
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
            flink("jobmanager_G1 Old", "value", FlinkShape::Plain).0,
            "flink_jobmanager_G1_Old"
        );
        // One `_` per character, multi-byte ones included.
        assert_eq!(
            flink("jobmanager_é-x", "value", FlinkShape::Plain).0,
            "flink_jobmanager___x"
        );
    }

    #[test]
    fn shapes() {
        let f = |keys: &[&str]| flink_shape(keys.iter().copied());
        assert_eq!(f(&["value"]), FlinkShape::Plain);
        assert_eq!(f(&["count", "rate"]), FlinkShape::Meter);
        assert_eq!(f(&["rate", "count", "p99"]), FlinkShape::Histogram);
    }

    #[test]
    fn sanitizers() {
        let value = |v: &str| {
            let mut dst = String::new();
            push_label_value(&mut dst, v);
            assert_eq!(label_value_is_clean(v), dst == v, "{v}");
            dst
        };
        assert_eq!(
            value("Source: datagen-source -> double-map"),
            "Source:_datagen_source____double_map"
        );
        assert_eq!(value("a:b_1"), "a:b_1");
        let name = |v: &str| {
            let mut dst = String::new();
            push_label_name(&mut dst, v);
            assert_eq!(label_name_is_clean(v), dst == v, "{v}");
            dst
        };
        assert_eq!(name("node-name"), "node_name");
        assert_eq!(name("1x"), "_1x");
        assert_eq!(name("a:b"), "a_b");
        assert_eq!(name("ok_1"), "ok_1");
        let plain = |m: &str, f: &str, prom: bool| {
            let mut dst = String::new();
            plain_name(&mut dst, m, f, prom);
            dst
        };
        assert_eq!(plain("cpu.load", "usage-idle", true), "cpu_load_usage_idle");
        assert_eq!(plain("9cpu", "v", true), "_9cpu_v");
        assert_eq!(plain("cpu.load", "v", false), "cpu.load_v");
    }
}
