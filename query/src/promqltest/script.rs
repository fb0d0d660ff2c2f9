//! Parsing of the promqltest script format: commands (`load`, `clear`, `eval…`), their
//! `expect` lines, and series descriptions like `metric{l="v"} 1+1x10 _ stale -2x3`.

use eddy_storage::{stale_nan, Labels};

/// One value of a series description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SeqValue {
    /// A float (stale markers included).
    Float(f64),
    /// `_`: no sample at this position.
    Omitted,
    /// `{{…}}`: a native histogram (not supported; the runner skips what uses it).
    Histogram,
}

/// A parsed series description.
#[derive(Debug, Clone)]
pub(crate) struct SeriesDesc {
    pub(crate) labels: Labels,
    pub(crate) values: Vec<SeqValue>,
}

/// An `expect warn|info|… [msg:|regex:] …` line.
#[derive(Debug, Clone)]
pub(crate) struct Expectation {
    pub(crate) kind: String,
    /// `Some((is_regex, text))` when a message or pattern was given.
    pub(crate) pattern: Option<(bool, String)>,
}

/// An `eval` command with its expectations.
#[derive(Debug, Clone, Default)]
pub(crate) struct EvalCmd {
    pub(crate) line: usize,
    pub(crate) expr: String,
    /// Instant: `start == end`, `step == 0`.
    pub(crate) is_range: bool,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
    pub(crate) fail: bool,
    pub(crate) ordered: bool,
    pub(crate) warn: bool,
    pub(crate) info: bool,
    pub(crate) fail_message: Option<String>,
    pub(crate) fail_regexp: Option<String>,
    pub(crate) expects: Vec<Expectation>,
    /// Expected scalar, if the result lines were a bare number.
    pub(crate) scalar: Option<f64>,
    /// Expected series: labels, position (1-based) and values.
    pub(crate) series: Vec<(Labels, usize, Vec<SeqValue>)>,
    pub(crate) string: Option<String>,
    /// `expect range vector from … to … step …` for an instant query returning a matrix.
    pub(crate) range_vector: Option<(i64, i64, i64)>,
    /// A histogram appears in the expected output.
    pub(crate) expects_histogram: bool,
    /// Parse problem of this eval's block (reported as a failure).
    pub(crate) error: Option<String>,
}

/// A script command.
#[derive(Debug, Clone)]
pub(crate) enum Cmd {
    Clear,
    Load {
        line: usize,
        interval: i64,
        with_nhcb: bool,
        series: Vec<SeriesDesc>,
        error: Option<String>,
    },
    Eval(Box<EvalCmd>),
}

/// Splits a script into commands. Lines are trimmed; `#` lines are blank.
pub(crate) fn parse_script(input: &str) -> Vec<Cmd> {
    let lines: Vec<String> = input
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].is_empty() {
            j += 1;
        }
        let body = &lines[i + 1..j];
        if word == "clear" {
            cmds.push(Cmd::Clear);
            j = i + 1;
        } else if word.starts_with("load") {
            cmds.push(parse_load(i + 1, l, body));
        } else if word.starts_with("eval") {
            cmds.push(Cmd::Eval(Box::new(parse_eval(i + 1, l, body))));
        }
        i = j;
    }
    cmds
}

fn parse_load(line: usize, head: &str, body: &[String]) -> Cmd {
    let mut parts = head.split_whitespace();
    let kw = parts.next().unwrap_or("");
    let with_nhcb = kw == "load_with_nhcb";
    let interval = parts.next().and_then(parse_duration);
    let mut series = Vec::new();
    let mut error = None;
    let Some(interval) = interval else {
        return Cmd::Load {
            line,
            interval: 0,
            with_nhcb,
            series,
            error: Some(format!("invalid load command {head:?}")),
        };
    };
    for (k, l) in body.iter().enumerate() {
        if l.contains("@st") {
            error.get_or_insert_with(|| {
                format!("line {}: start timestamps are not supported", line + k + 1)
            });
            continue;
        }
        match parse_series_desc(l) {
            Ok(d) => series.push(d),
            Err(e) => {
                error.get_or_insert_with(|| format!("line {}: {e}", line + k + 1));
            }
        }
    }
    Cmd::Load {
        line,
        interval,
        with_nhcb,
        series,
        error,
    }
}

fn parse_eval(line: usize, head: &str, body: &[String]) -> EvalCmd {
    let mut ev = EvalCmd {
        line,
        ..Default::default()
    };
    if let Err(e) = parse_eval_head(head, &mut ev) {
        ev.error = Some(e);
        return ev;
    }
    let mut pos = 0;
    for l in body {
        if ev.fail && l.starts_with("expected_fail_message") {
            ev.fail_message = Some(l["expected_fail_message".len()..].trim().to_string());
            break;
        }
        if ev.fail && l.starts_with("expected_fail_regexp") {
            ev.fail_regexp = Some(l["expected_fail_regexp".len()..].trim().to_string());
            break;
        }
        if let Some(rest) = l.strip_prefix("expect range vector") {
            match parse_range_spec(rest) {
                Some(r) => ev.range_vector = Some(r),
                None => ev.error = Some(format!("invalid range vector definition {l:?}")),
            }
            continue;
        }
        if let Some(rest) = l.strip_prefix("expect string") {
            match unquote(rest.trim()) {
                Some(s) => ev.string = Some(s),
                None => ev.error = Some(format!("invalid expected string {l:?}")),
            }
            continue;
        }
        if l.split(' ').next() == Some("expect") {
            match parse_expect(l) {
                Some(e) => ev.expects.push(e),
                None => ev.error = Some(format!("invalid expect statement {l:?}")),
            }
            continue;
        }
        if let Some(v) = parse_number(l) {
            ev.scalar = Some(v);
            break;
        }
        pos += 1;
        match parse_series_desc(l) {
            Ok(d) => {
                if d.values.contains(&SeqValue::Histogram) {
                    ev.expects_histogram = true;
                }
                ev.series.push((d.labels, pos, d.values));
            }
            Err(e) => {
                if l.contains("{{") {
                    ev.expects_histogram = true;
                } else {
                    ev.error = Some(format!("expected result {l:?}: {e}"));
                }
            }
        }
    }
    ev
}

fn parse_eval_head(head: &str, ev: &mut EvalCmd) -> Result<(), String> {
    let (kw, rest) = head
        .split_once(char::is_whitespace)
        .ok_or("eval without a query")?;
    match kw.strip_prefix("eval").unwrap_or("") {
        "" => {}
        "_fail" => ev.fail = true,
        "_warn" => ev.warn = true,
        "_info" => ev.info = true,
        "_ordered" => ev.ordered = true,
        other => return Err(format!("invalid eval modifier {other:?}")),
    }
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start();
        let r = r
            .strip_prefix("at")
            .ok_or("expected 'at' after 'instant'")?
            .trim_start();
        let (t, q) = r.split_once(char::is_whitespace).ok_or("missing query")?;
        let t = parse_duration(t).ok_or_else(|| format!("invalid timestamp definition {t:?}"))?;
        ev.start = t;
        ev.end = t;
        ev.expr = q.trim().to_string();
        return Ok(());
    }
    let r = rest
        .strip_prefix("range")
        .ok_or("expected 'instant' or 'range'")?
        .trim_start();
    let r = r
        .strip_prefix("from")
        .ok_or("expected 'from'")?
        .trim_start();
    let (from, r) = r.split_once(char::is_whitespace).ok_or("missing 'to'")?;
    let r = r
        .trim_start()
        .strip_prefix("to")
        .ok_or("expected 'to'")?
        .trim_start();
    let (to, r) = r.split_once(char::is_whitespace).ok_or("missing 'step'")?;
    let r = r
        .trim_start()
        .strip_prefix("step")
        .ok_or("expected 'step'")?
        .trim_start();
    let (step, q) = r.split_once(char::is_whitespace).ok_or("missing query")?;
    ev.is_range = true;
    ev.start = parse_duration(from).ok_or_else(|| format!("invalid start {from:?}"))?;
    ev.end = parse_duration(to).ok_or_else(|| format!("invalid end {to:?}"))?;
    ev.step = parse_duration(step).ok_or_else(|| format!("invalid step {step:?}"))?;
    ev.expr = q.trim().to_string();
    Ok(())
}

fn parse_range_spec(rest: &str) -> Option<(i64, i64, i64)> {
    let w: Vec<&str> = rest.split_whitespace().collect();
    match w.as_slice() {
        ["from", a, "to", b, "step", c] => {
            Some((parse_duration(a)?, parse_duration(b)?, parse_duration(c)?))
        }
        _ => None,
    }
}

fn parse_expect(l: &str) -> Option<Expectation> {
    let rest = l.strip_prefix("expect")?.trim();
    let (kind, tail) = match rest.split_once(char::is_whitespace) {
        Some((k, t)) => (k, t.trim()),
        None => (rest, ""),
    };
    if !matches!(
        kind,
        "ordered" | "fail" | "warn" | "no_warn" | "info" | "no_info"
    ) {
        return None;
    }
    let pattern = if tail.is_empty() {
        None
    } else if let Some(m) = tail.strip_prefix("msg:") {
        Some((false, m.trim().to_string()))
    } else if let Some(r) = tail.strip_prefix("regex:") {
        Some((true, r.trim().to_string()))
    } else {
        return None;
    };
    Some(Expectation {
        kind: kind.to_string(),
        pattern,
    })
}

/// Parses a Prometheus duration (`1h30m`, `10s53ms`, `0`) into ms.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if st == i {
            return None;
        }
        let n: i64 = s[st..i].parse().ok()?;
        let ust = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = match &s[ust..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(total)
}

/// A bare number line (`parseNumber`: integers incl. hex, or floats incl. Inf/NaN).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    if let Some(v) = parse_int(s) {
        return Some(v as f64);
    }
    parse_float(s)
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else if !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()) {
        body.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let neg = lower.starts_with('-');
    let v = match body {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if !body
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == b'.')
            {
                return None;
            }
            return s.parse::<f64>().ok();
        }
    };
    Some(if neg { -v } else { v })
}

/// Unquotes a Go string literal in `"…"`, `'…'` or `` `…` ``.
pub(crate) fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if !matches!(q, '"' | '\'' | '`') || s.len() < 2 || !s.ends_with(q) {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' {
        return Some(inner.to_string());
    }
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let h: String = it.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
            }
            'u' => {
                let h: String = it.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = it.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Parses `metric{l="v", …} values…` (name and braces optional, quoted names allowed).
pub(crate) fn parse_series_desc(line: &str) -> Result<SeriesDesc, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let s = line.trim();
    let mut rest = s;
    // Metric name.
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    if name_end > 0 && !rest.as_bytes()[0].is_ascii_digit() {
        let name = &rest[..name_end];
        if !matches!(name, "Inf" | "NaN" | "stale") || rest[name_end..].starts_with('{') {
            pairs.push(("__name__".into(), name.to_string()));
            rest = &rest[name_end..];
        }
    }
    let mut had_braces = false;
    if rest.starts_with('{') && !rest.starts_with("{{") {
        had_braces = true;
        let close = find_brace_end(rest).ok_or("unterminated label set")?;
        parse_label_list(&rest[1..close], &mut pairs)?;
        rest = &rest[close + 1..];
    }
    if pairs.is_empty() && !had_braces {
        return Err(format!("no metric name or labels in {line:?}"));
    }
    let values = parse_values(rest.trim())?;
    Ok(SeriesDesc {
        labels: Labels::from_pairs(pairs),
        values,
    })
}

/// Index of the `}` closing the label set that opens at 0, skipping quoted strings.
fn find_brace_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_label_list(s: &str, pairs: &mut Vec<(String, String)>) -> Result<(), String> {
    let mut rest = s.trim();
    while !rest.is_empty() {
        // Name: identifier or quoted.
        let (name, after) = take_name_or_string(rest)?;
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix('=') {
            let (value, after) = take_string(r.trim_start())?;
            pairs.push((name, value));
            rest = after.trim_start();
        } else {
            // A lone quoted string is the metric name.
            pairs.push(("__name__".into(), name));
        }
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(())
}

fn take_name_or_string(s: &str) -> Result<(String, &str), String> {
    if s.starts_with(['"', '\'', '`']) {
        return take_string(s);
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    if end == 0 {
        return Err(format!("expected label name at {s:?}"));
    }
    Ok((s[..end].to_string(), &s[end..]))
}

fn take_string(s: &str) -> Result<(String, &str), String> {
    let q = s.chars().next().ok_or("expected string")?;
    if !matches!(q, '"' | '\'' | '`') {
        return Err(format!("expected quoted string at {s:?}"));
    }
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() && b[i] != q as u8 {
        if b[i] == b'\\' && q != '`' {
            i += 1;
        }
        i += 1;
    }
    if i >= b.len() {
        return Err("unterminated string".into());
    }
    let lit = &s[..=i];
    Ok((
        unquote(lit).ok_or_else(|| format!("bad string {lit:?}"))?,
        &s[i + 1..],
    ))
}

/// Parses the value sequence of a series description.
fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        if rest.starts_with("{{") {
            let end = rest.find("}}").ok_or("unterminated histogram")?;
            rest = &rest[end + 2..];
            // Skip any `+{{…}}x3` / `x3` suffix.
            while !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                if rest.starts_with("{{") {
                    let e = rest.find("}}").ok_or("unterminated histogram")?;
                    rest = &rest[e + 2..];
                } else {
                    rest = &rest[rest.chars().next().map_or(1, char::len_utf8)..];
                }
            }
            out.push(SeqValue::Histogram);
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..end];
        rest = &rest[end..];
        parse_item(tok, &mut out)?;
    }
}

fn parse_item(tok: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if tok == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad repetition {tok:?}"))?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
        return Ok(());
    }
    // Split off `xN`.
    let (body, times) = match tok.rfind('x') {
        Some(i)
            if i > 0 && tok[i + 1..].bytes().all(|c| c.is_ascii_digit()) && i + 1 < tok.len() =>
        {
            (
                &tok[..i],
                Some(tok[i + 1..].parse::<usize>().map_err(|e| e.to_string())?),
            )
        }
        _ => (tok, None),
    };
    if body == "stale" {
        let n = times.map_or(1, |t| t + 1);
        out.extend(std::iter::repeat_n(SeqValue::Float(stale_nan()), n));
        return Ok(());
    }
    // `a+b` / `a-b`: find an operator after the first character (not an exponent sign).
    let bytes = body.as_bytes();
    let mut split = None;
    for i in 1..bytes.len() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            split = Some(i);
            break;
        }
    }
    match (split, times) {
        (Some(i), Some(n)) => {
            let a = parse_number(&body[..i]).ok_or_else(|| format!("bad number in {tok:?}"))?;
            let d = parse_number(&body[i..]).ok_or_else(|| format!("bad delta in {tok:?}"))?;
            let mut v = a;
            for _ in 0..=n {
                out.push(SeqValue::Float(v));
                v += d;
            }
        }
        (Some(_), None) => return Err(format!("expansion without repetition in {tok:?}")),
        (None, t) => {
            let v = parse_number(body).ok_or_else(|| format!("bad value {tok:?}"))?;
            let n = t.map_or(1, |t| t + 1);
            out.extend(std::iter::repeat_n(SeqValue::Float(v), n));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(v: &[SeqValue]) -> Vec<String> {
        v.iter()
            .map(|x| match x {
                SeqValue::Float(f) if eddy_storage::is_stale_nan(*f) => "stale".to_string(),
                SeqValue::Float(f) => f.to_string(),
                SeqValue::Omitted => "_".into(),
                SeqValue::Histogram => "h".into(),
            })
            .collect()
    }

    #[test]
    fn series_descriptions() {
        let d =
            parse_series_desc(r#"http_requests{job="api", instance="0"} 0+10x3 _ stale -2x2 1e3"#)
                .unwrap();
        assert_eq!(
            d.labels.to_string(),
            r#"http_requests{instance="0", job="api"}"#
        );
        assert_eq!(
            floats(&d.values),
            ["0", "10", "20", "30", "_", "stale", "-2", "-2", "-2", "1000"]
        );
        let d = parse_series_desc("m 1-1x2 _x2 Inf -Inf").unwrap();
        assert_eq!(floats(&d.values), ["1", "0", "-1", "_", "_", "inf", "-inf"]);
        let d = parse_series_desc(r#"{__name__="a", "b.c"="x"} {{schema:0 sum:1}}x2 3"#).unwrap();
        assert_eq!(d.labels.get("b.c"), Some("x"));
        assert_eq!(floats(&d.values), ["h", "3"]);
        assert!(parse_series_desc("{} 5").unwrap().labels.is_empty());
        assert!(parse_series_desc("5")
            .unwrap_err()
            .contains("no metric name"));
    }

    #[test]
    fn durations_and_numbers() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("10s53ms"), Some(10_053));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_number("0x10"), Some(16.0));
        assert!(parse_number("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_number("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_number("{a=\"b\"} 1"), None);
    }

    #[test]
    fn eval_blocks() {
        let script = "load 5m\n  m{a=\"1\"} 1 2 3\n\n# comment\neval instant at 10m m\n  expect no_warn\n  m{a=\"1\"} 3\n\neval range from 0 to 10m step 5m m\n  m{a=\"1\"} 1 2 3\n\nclear\neval_fail instant at 0m foo\n  expected_fail_message boom\n";
        let cmds = parse_script(script);
        assert_eq!(cmds.len(), 5);
        let Cmd::Eval(e) = &cmds[1] else { panic!() };
        assert_eq!(
            (e.start, e.expr.as_str(), e.series.len(), e.expects.len()),
            (600_000, "m", 1, 1)
        );
        let Cmd::Eval(e) = &cmds[2] else { panic!() };
        assert!(e.is_range && e.step == 300_000);
        let Cmd::Eval(e) = &cmds[4] else { panic!() };
        assert!(e.fail);
        assert_eq!(e.fail_message.as_deref(), Some("boom"));
    }
}
