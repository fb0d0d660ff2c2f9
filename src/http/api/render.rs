//! The JSON body of a query answer, byte for byte as Prometheus writes it. Written by hand
//! into one buffer sized up front: a range answer of a few dozen series has thousands of
//! points, and formatting them through `fmt` and `serde_json` (one `String` per label) cost
//! more than evaluating a small dashboard query.

use eddy_query::format::{write_float, write_u64, AsciiOut};
use eddy_query::value::{QueryResult, Value};
use eddy_storage::Labels;

/// Bytes a point takes at most in the common case: `[` 10-digit seconds `.` 3 digits `,"`
/// up to 24 value characters `"],`.
const POINT_BYTES: usize = 44;

/// Formats a timestamp (ms) as JSON seconds: `1435781451.781`, `1435781451`.
pub fn format_ts<O: AsciiOut + ?Sized>(out: &mut O, t: i64) {
    let secs = t / 1000;
    let ms = (t % 1000).unsigned_abs();
    if t < 0 {
        out.push_ascii("-");
    }
    write_u64(out, secs.unsigned_abs());
    if ms != 0 {
        // Three digits with the trailing zeros dropped: 781, 78, 7.
        let frac = [
            b'.',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
        ];
        let len = if !ms.is_multiple_of(10) {
            4
        } else if !ms.is_multiple_of(100) {
            3
        } else {
            2
        };
        out.push_ascii_bytes(&frac[..len]);
    }
}

/// Appends `s` as a JSON string. Label names and values almost never need escaping, so they
/// are copied as they are; otherwise serde_json escapes them (exactly as JSON requires).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn push_labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, &l.name);
        out.push(b':');
        push_json_str(out, &l.value);
    }
    out.push(b'}');
}

/// Bytes `labels` take as a JSON object (without escapes).
fn labels_bytes(labels: &Labels) -> usize {
    2 + labels
        .iter()
        .map(|l| l.name.len() + l.value.len() + 6)
        .sum::<usize>()
}

/// Writes `[item,item,…]`.
fn push_list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

fn push_point(out: &mut Vec<u8>, t: i64, v: f64) {
    out.push(b'[');
    format_ts(out, t);
    out.extend_from_slice(b",\"");
    write_float(out, v);
    out.extend_from_slice(b"\"]");
}

/// Timestamps spelled recently, in a small direct-mapped table: the series of a range answer
/// share one step grid, so each step's time is spelled once rather than once per series.
struct SpelledTimes {
    /// `(time, length, bytes)`; length 0 marks an empty slot.
    slots: Vec<(i64, u8, [u8; 24])>,
    scratch: Vec<u8>,
}

impl SpelledTimes {
    const SLOTS: usize = 256;

    fn new() -> Self {
        SpelledTimes {
            slots: vec![(0, 0, [0; 24]); Self::SLOTS],
            scratch: Vec::with_capacity(24),
        }
    }

    /// Appends `t` as [`format_ts`] spells it.
    fn push(&mut self, out: &mut Vec<u8>, t: i64) {
        // Fibonacci hashing: steps a minute apart spread over the table.
        let i = ((t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize;
        let slot = &mut self.slots[i];
        if slot.1 == 0 || slot.0 != t {
            self.scratch.clear();
            format_ts(&mut self.scratch, t);
            // At most 21 bytes: a sign, 16 digits of seconds, a point and 3 digits.
            let n = self.scratch.len().min(24);
            slot.2[..n].copy_from_slice(&self.scratch[..n]);
            slot.0 = t;
            slot.1 = n as u8;
        }
        out.extend_from_slice(&slot.2[..usize::from(slot.1)]);
    }
}

/// A capacity that holds the whole body in the common case, so the buffer is not regrown
/// (and copied) a dozen times on the way to tens of kilobytes.
fn body_capacity(v: &Value) -> usize {
    256 + match v {
        Value::Scalar { .. } => POINT_BYTES,
        Value::String { v, .. } => v.len() + POINT_BYTES,
        Value::Vector(samples) => samples
            .iter()
            .map(|s| labels_bytes(&s.labels) + 32 + POINT_BYTES)
            .sum(),
        Value::Matrix(series) => series
            .iter()
            .map(|s| labels_bytes(&s.labels) + 32 + s.points.len() * POINT_BYTES)
            .sum(),
    }
}

/// The JSON body of a successful query.
pub fn render_result(r: &QueryResult) -> Vec<u8> {
    let mut out = Vec::with_capacity(body_capacity(&r.value));
    out.extend_from_slice(b"{\"status\":\"success\",\"data\":{\"resultType\":\"");
    out.extend_from_slice(r.value.type_name().as_bytes());
    out.extend_from_slice(b"\",\"result\":");
    match &r.value {
        Value::Scalar { t, v } => push_point(&mut out, *t, *v),
        Value::String { t, v } => {
            out.push(b'[');
            format_ts(&mut out, *t);
            out.push(b',');
            push_json_str(&mut out, v);
            out.push(b']');
        }
        Value::Vector(samples) => push_list(&mut out, samples, |out, s| {
            out.extend_from_slice(b"{\"metric\":");
            push_labels(out, &s.labels);
            out.extend_from_slice(b",\"value\":");
            push_point(out, s.t, s.v);
            out.push(b'}');
        }),
        Value::Matrix(series) => {
            let mut times = SpelledTimes::new();
            push_list(&mut out, series, |out, s| {
                out.extend_from_slice(b"{\"metric\":");
                push_labels(out, &s.labels);
                out.extend_from_slice(b",\"values\":");
                push_list(out, &s.points, |out, &(t, v)| {
                    out.push(b'[');
                    times.push(out, t);
                    out.extend_from_slice(b",\"");
                    write_float(out, v);
                    out.extend_from_slice(b"\"]");
                });
                out.push(b'}');
            })
        }
    }
    out.push(b'}');
    push_annotations(&mut out, "warnings", &r.warnings);
    push_annotations(&mut out, "infos", &r.infos);
    out.push(b'}');
    out
}

/// Appends `,"key":[…]` when `list` has entries.
pub(super) fn push_annotations(out: &mut Vec<u8>, key: &str, list: &[String]) {
    if list.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    push_list(out, list, |out, w| push_json_str(out, w));
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_query::value::{RangeSeries, Sample};

    /// The formatting the hand-written one replaces (through `fmt`), kept as the reference.
    fn format_ts_reference(t: i64) -> String {
        let mut out = String::new();
        let secs = t / 1000;
        let ms = (t % 1000).abs();
        if t < 0 && secs == 0 && ms != 0 {
            out.push('-');
        }
        let _ = write!(out, "{secs}");
        if ms != 0 {
            let frac = format!("{ms:03}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out
    }

    use std::fmt::Write as _;

    #[test]
    fn timestamps_match_the_fmt_spelling() {
        let mut cases = vec![
            0,
            1,
            -1,
            7,
            10,
            100,
            999,
            -999,
            1000,
            -1000,
            -1500,
            4000,
            1_435_781_451_781,
            1_435_781_451_780,
            1_435_781_451_700,
            -1_435_781_451_001,
            i64::MAX,
            i64::MIN,
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x as i64);
            cases.push((x % 4_000_000_000_000) as i64 - 2_000_000_000_000);
        }
        for t in cases {
            let mut s = String::from("x");
            format_ts(&mut s, t);
            assert_eq!(&s[1..], format_ts_reference(t), "{t}");
            let mut b = b"x".to_vec();
            format_ts(&mut b, t);
            assert_eq!(&b[1..], &s.as_bytes()[1..], "{t}");
        }
    }

    /// Times spelled from the table equal fresh spellings, whatever collides in it.
    #[test]
    fn spelled_times_match_format_ts() {
        let mut times = SpelledTimes::new();
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut grid: Vec<i64> = (0..2000).map(|k| 1_795_665_960_000 + k * 15_500).collect();
        grid.extend((0..2000).map(|k| -k * 333));
        for round in 0..3 {
            for &t in &grid {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let t = if round == 2 { x as i64 } else { t };
                let (mut a, mut b) = (b"x".to_vec(), b"x".to_vec());
                times.push(&mut a, t);
                format_ts(&mut b, t);
                assert_eq!(a, b, "{t}");
            }
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "10.1.0.0",
            "quote\"d",
            "back\\slash",
            "tab\there",
            "nl\n\r\u{8}\u{c}\u{1}\u{1f}",
            "del\u{7f}",
            "ünïcödé ✓",
        ] {
            let mut out = b"x".to_vec();
            push_json_str(&mut out, s);
            assert_eq!(
                &out[1..],
                serde_json::to_string(s).unwrap().as_bytes(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn bodies_are_prometheus_shaped() {
        let labels = Labels::from_pairs([("host", "a\"b"), ("__name__", "m")]);
        let matrix = QueryResult {
            value: Value::Matrix(vec![RangeSeries {
                labels: labels.clone(),
                points: vec![(1_000, 1.5), (61_000, f64::NAN), (121_500, -2.0)],
            }]),
            warnings: vec!["w \"1\"".into()],
            infos: Vec::new(),
            samples_scanned: 0,
        };
        assert_eq!(
            String::from_utf8(render_result(&matrix)).unwrap(),
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"m","host":"a\"b"},"values":[[1,"1.5"],[61,"NaN"],[121.5,"-2"]]}]},"warnings":["w \"1\""]}"#
        );
        let vector = QueryResult {
            value: Value::Vector(vec![Sample {
                labels,
                t: -250,
                v: 1e21,
            }]),
            warnings: Vec::new(),
            infos: vec!["i".into()],
            samples_scanned: 0,
        };
        assert_eq!(
            String::from_utf8(render_result(&vector)).unwrap(),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"m","host":"a\"b"},"value":[-0.25,"1000000000000000000000"]}]},"infos":["i"]}"#
        );
        let empty = QueryResult {
            value: Value::Matrix(Vec::new()),
            warnings: Vec::new(),
            infos: Vec::new(),
            samples_scanned: 0,
        };
        assert_eq!(
            String::from_utf8(render_result(&empty)).unwrap(),
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#
        );
    }
}
