//! Pushgateway grouping paths: the part of `/metrics/job/<job>{/<label>/<value>}` after
//! `/metrics/`, turned into grouping labels, as the Pushgateway reads them.
//!
//! Rules (Pushgateway README and `handler`): the first pair is `job`; a label name with the
//! suffix `@base64` has its value in base64url (RFC 4648 §5) with optional `=` padding, which is
//! how values holding `/` or the empty value (`label@base64/=`) are written; names must match
//! `[a-zA-Z_][a-zA-Z0-9_]*` and must not start with the reserved `__`. Each segment is
//! percent-decoded after splitting on `/`, so `%2F` stays inside a value.

use crate::error::{Error, Result};

/// The suffix that marks a base64url-encoded value.
const BASE64_SUFFIX: &str = "@base64";

/// Parses a grouping path such as `job/flinkprobe/cluster/probe` or
/// `job@base64/Zmxpbms/path@base64/L3Zhci90bXA` into its labels, `job` first, in path order.
/// A leading `/` is ignored.
pub fn parse_grouping_path(path: &str) -> Result<Vec<(String, String)>> {
    let err = |reason: String| Error::GroupingPath {
        path: path.to_string(),
        reason,
    };
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Err(err(
            "missing job: the path must start with job/<name>".into()
        ));
    }
    let mut segments: Vec<&str> = trimmed.split('/').collect();
    // A trailing '/' after a complete pair is ignored (`job/a/`); after a name it gives that
    // label an empty value (`job/a/l/`), as Pushgateway's router reads it.
    if segments.len() & 1 == 1 && segments.last() == Some(&"") {
        segments.pop();
    }
    if segments.len() & 1 == 1 {
        return Err(err(format!(
            "odd number of path segments ({}): labels come as <name>/<value> pairs",
            segments.len()
        )));
    }
    let mut labels: Vec<(String, String)> = Vec::with_capacity(segments.len() / 2);
    for pair in segments.chunks_exact(2) {
        let raw_name = percent_decode(pair[0]).map_err(&err)?;
        let (name, encoded) = match raw_name.strip_suffix(BASE64_SUFFIX) {
            Some(n) => (n.to_string(), true),
            None => (raw_name, false),
        };
        if labels.is_empty() && name != "job" {
            return Err(err(format!(
                "missing job: the path must start with job/<name>, not {name:?}"
            )));
        }
        check_label_name(&name).map_err(&err)?;
        let value = if encoded {
            decode_base64url(pair[1])
                .map_err(|e| err(format!("invalid base64 value for label {name:?}: {e}")))?
        } else {
            percent_decode(pair[1]).map_err(&err)?
        };
        if name == "job" && value.is_empty() {
            return Err(err("empty job name".into()));
        }
        if labels.iter().any(|(n, _)| *n == name) {
            return Err(err(format!("label {name:?} given twice")));
        }
        labels.push((name, value));
    }
    Ok(labels)
}

/// Grouping label names must be legacy Prometheus names and not reserved (`__…`).
fn check_label_name(name: &str) -> std::result::Result<(), String> {
    let b = name.as_bytes();
    let valid = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    if !valid {
        return Err(format!(
            "invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "label name {name:?} is reserved (starts with \"__\")"
        ));
    }
    Ok(())
}

/// Decodes `%XX` escapes of a path segment; the result must be UTF-8.
fn percent_decode(s: &str) -> std::result::Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
            _ => return Err(format!("invalid percent-encoding in segment {s:?}")),
        }
        i += 3;
    }
    String::from_utf8(out)
        .map_err(|_| format!("segment {s:?} is not valid UTF-8 once percent-decoded"))
}

/// Decodes base64url (`-`, `_`) with optional trailing `=` padding, as Pushgateway does
/// (padding is stripped, then the unpadded form is decoded). The result must be UTF-8.
fn decode_base64url(s: &str) -> std::result::Result<String, String> {
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 {
        return Err(format!("{} characters cannot be base64", s.len()));
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(format!("illegal character {:?} at position {i}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).map_err(|_| "decoded value is not valid UTF-8".to_string())
}
