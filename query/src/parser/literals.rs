//! Literal values: number text to f64 (Go `ParseInt(…, 0, 64)` then `ParseFloat` rules),
//! durations (`1h30m` ↔ milliseconds, Prometheus `model.Duration`), string escapes (Go rules,
//! as Prometheus's `strutil.Unquote`), and Go-style quoting for printing and messages.

use nom::bytes::complete::take_while1;
use nom::combinator::all_consuming;
use nom::multi::many1;
use nom::{IResult, Parser as _};

/// Converts a number token to its value, or Prometheus's error text.
pub(crate) fn parse_number(text: &str) -> Result<f64, String> {
    match text.to_ascii_lowercase().as_str() {
        "inf" => return Ok(f64::INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    if let Some(v) = parse_go_int(text) {
        return Ok(v as f64);
    }
    parse_go_float(text).ok_or_else(|| {
        let why = if looks_like_decimal(text) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!(
            "error parsing number: strconv.ParseFloat: parsing {}: {why}",
            go_quote(text)
        )
    })
}

/// True if `s` is a well-formed decimal float literal (so a failure can only be a range error).
fn looks_like_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
}

/// Go's underscore rule: underscores only between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'x' | b'b' | b'o') {
        hex = (b[1] | 0x20) == b'x';
        i = 2;
    }
    // `saw` is '0' after a digit (or a base prefix), '_' after an underscore, '!' otherwise.
    let mut saw = if i == 2 { b'0' } else { b'^' };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go `strconv.ParseInt(s, 0, 64)` for unsigned input: `0x` hex, leading-zero octal, decimal.
fn parse_go_int(s: &str) -> Option<i64> {
    if s.contains('_') && !underscores_ok(s) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let (digits, radix) = if let Some(h) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        (h, 16)
    } else if clean.len() > 1 && clean.starts_with('0') {
        (&clean[1..], 8)
    } else {
        (clean.as_str(), 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(digits, radix).ok()
}

/// Go `strconv.ParseFloat(s, 64)` for the decimal forms the lexer produces. Hex floats need a
/// `p` exponent, which the lexer never produces, so hex text that is not an int fails.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.contains('_') && !underscores_ok(s) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    if clean.starts_with("0x") || clean.starts_with("0X") || clean.is_empty() {
        return None;
    }
    if !clean
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = clean.parse().ok()?;
    // Go reports overflow to ±Inf as an error ("value out of range").
    if v.is_infinite() {
        return None;
    }
    Some(v)
}

const MS_PER_UNIT: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// One `<digits><unit>` pair; the unit is every non-digit up to the next digit.
fn duration_part(s: &str) -> IResult<&str, (&str, &str)> {
    (
        take_while1(|c: char| c.is_ascii_digit()),
        take_while1(|c: char| !c.is_ascii_digit()),
    )
        .parse(s)
}

/// Parses a duration like `1h30m` into milliseconds (Prometheus `model.ParseDuration`): units
/// `y w d h m s ms`, each at most once, from largest to smallest.
pub(crate) fn parse_duration(text: &str) -> Result<i64, String> {
    if text == "0" {
        return Ok(0);
    }
    let invalid = || format!("not a valid duration string: {}", go_quote(text));
    let Ok((_, parts)) = all_consuming(many1(duration_part)).parse(text) else {
        return Err(invalid());
    };
    let mut last_unit = None;
    let mut total_ns: u128 = 0;
    for (digits, unit) in parts {
        let Some(idx) = MS_PER_UNIT.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "unknown unit {} in duration {}",
                go_quote(unit),
                go_quote(text)
            ));
        };
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(invalid());
        }
        last_unit = Some(idx);
        let v: u64 = digits.parse().map_err(|_| invalid())?;
        total_ns += u128::from(v) * u128::from(MS_PER_UNIT[idx].1) * 1_000_000;
        if total_ns > i64::MAX as u128 {
            return Err("duration out of range".into());
        }
    }
    Ok((total_ns / 1_000_000) as i64)
}

/// Formats milliseconds like Prometheus `model.Duration.String()`: `1h30m`, `90d`, `0s`.
/// Years and weeks are used only when they divide the value exactly.
pub(crate) fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let (sign, mut rest) = if ms < 0 {
        ("-", ms.unsigned_abs())
    } else {
        ("", ms as u64)
    };
    let mut out = String::from(sign);
    for (i, (unit, mult)) in MS_PER_UNIT.iter().enumerate() {
        let exact_only = i < 2;
        if exact_only && rest % mult != 0 {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            out.push_str(&v.to_string());
            out.push_str(unit);
            rest -= v * mult;
        }
    }
    out
}

/// Checks one escape sequence after a backslash inside a `quote`-delimited string, consuming it.
/// Errors carry Prometheus's lexer messages.
pub(crate) fn check_escape(
    chars: &mut impl Iterator<Item = (usize, char)>,
    quote: char,
) -> Result<(), String> {
    let Some((_, c)) = chars.next() else {
        return Err("escape sequence not terminated".into());
    };
    let (n, base, max): (usize, u32, u32) = match c {
        'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' => return Ok(()),
        c if c == quote => return Ok(()),
        '0'..='7' => (2, 8, 255),
        'x' => (2, 16, 255),
        'u' => (4, 16, 0x10FFFF),
        'U' => (8, 16, 0x10FFFF),
        c => return Err(format!("unknown escape sequence {}", go_unicode_desc(c))),
    };
    let mut x: u32 = if base == 8 {
        c.to_digit(8).unwrap_or(0)
    } else {
        0
    };
    for _ in 0..n {
        let Some((_, d)) = chars.next() else {
            return Err("escape sequence not terminated".into());
        };
        let Some(v) = d.to_digit(base) else {
            return Err(format!(
                "illegal character {} in escape sequence",
                go_unicode_desc(d)
            ));
        };
        x = x * base + v;
    }
    if x > max || (0xD800..0xE000).contains(&x) {
        return Err("escape sequence is an invalid Unicode code point".into());
    }
    Ok(())
}

/// Go's `%#U`: `U+0063 'c'`.
fn go_unicode_desc(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

/// Unquotes a string token (quotes included). The lexer has already validated the escapes;
/// when `\x`/octal escapes produce invalid UTF-8, which a Rust string cannot hold, the bytes
/// come back as the error (as a Go string, they are still a string to Prometheus).
pub(crate) fn unquote(tok: &str) -> Result<String, Vec<u8>> {
    let Some(quote) = tok.chars().next() else {
        return Ok(String::new());
    };
    let inner = &tok[quote.len_utf8()..tok.len() - quote.len_utf8()];
    if quote == '`' {
        return Ok(inner.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next().unwrap_or('\\');
        let simple = match e {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '\'' => Some(b'\''),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (n, base) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            _ => (2, 8),
        };
        let mut x = if base == 8 {
            e.to_digit(8).unwrap_or(0)
        } else {
            0
        };
        for _ in 0..n {
            x = x * base + chars.next().and_then(|d| d.to_digit(base)).unwrap_or(0);
        }
        if matches!(e, 'u' | 'U') {
            let ch = char::from_u32(x).unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        } else {
            // `\xNN` and `\NNN` are raw bytes, as in Go.
            out.push(x as u8);
        }
    }
    String::from_utf8(out).map_err(|e| e.into_bytes())
}

/// The parse error for a string that must be UTF-8 text where eddy cannot carry raw bytes
/// (label matchers: eddy's label names and values are Rust strings).
pub(crate) fn invalid_utf8_matcher(bytes: &[u8]) -> String {
    format!(
        "invalid UTF-8 in label matcher string {}: eddy label names and values must be valid UTF-8",
        go_quote_bytes(bytes)
    )
}

/// [`go_quote`] for bytes that may not be UTF-8: like Go's `strconv.Quote` on such a string,
/// each byte that does not start a valid sequence is written `\xNN`.
pub(crate) fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        let q = go_quote(chunk.valid());
        out.push_str(&q[1..q.len() - 1]);
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.Quote`: double quotes, `\"` `\\`, C escapes, `\xNN` for other control bytes,
/// `\uNNNN` for non-printable code points.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_go_unprintable(c) => {
                if (c as u32) <= 0xFFFF {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of "not `unicode.IsPrint`": controls, format characters, separators other
/// than the ASCII space, and unassigned-looking private/noncharacter ranges.
fn is_go_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c as u32, 0x00AD | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB)
        || (c.is_whitespace() && c != ' ')
        || matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_go_rules() {
        assert_eq!(parse_number("1"), Ok(1.0));
        assert_eq!(parse_number("0x1F"), Ok(31.0));
        assert_eq!(parse_number("010"), Ok(8.0));
        assert_eq!(parse_number("09"), Ok(9.0));
        assert_eq!(parse_number("1e3"), Ok(1000.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("5."), Ok(5.0));
        assert_eq!(parse_number("1_000"), Ok(1000.0));
        assert_eq!(parse_number("Inf"), Ok(f64::INFINITY));
        assert!(parse_number("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_number("99999999999999999999"), Ok(1e20));
        assert!(parse_number("1e999").is_err_and(|e| e.ends_with("value out of range")));
        assert!(parse_number("1__0").is_err());
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert_eq!(parse_duration("1y"), Ok(31_536_000_000));
        assert_eq!(
            parse_duration("5m1h"),
            Err(r#"not a valid duration string: "5m1h""#.into())
        );
        assert_eq!(
            parse_duration("5m1m"),
            Err(r#"not a valid duration string: "5m1m""#.into())
        );
        assert_eq!(
            parse_duration("5y1hs"),
            Err(r#"unknown unit "hs" in duration "5y1hs""#.into())
        );
        assert_eq!(
            parse_duration("1.5m"),
            Err(r#"unknown unit "." in duration "1.5m""#.into())
        );
        assert_eq!(
            parse_duration("m"),
            Err(r#"not a valid duration string: "m""#.into())
        );
        assert_eq!(parse_duration("300y"), Err("duration out of range".into()));
        for (ms, s) in [
            (5_400_000, "1h30m"),
            (0, "0s"),
            (7_776_000_000, "90d"),
            (604_800_000, "1w"),
            (1, "1ms"),
        ] {
            assert_eq!(format_duration(ms), s);
            if ms != 0 {
                assert_eq!(parse_duration(s), Ok(ms));
            }
        }
        assert_eq!(format_duration(-90_000), "-1m30s");
    }

    #[test]
    fn strings_unescape_like_go() {
        assert_eq!(unquote(r#""a\nb\t\"\\""#), Ok("a\nb\t\"\\".into()));
        assert_eq!(unquote(r"'\''"), Ok("'".into()));
        assert_eq!(unquote(r#""\x41\101\u00e9\U0001F600""#), Ok("AAé😀".into()));
        assert_eq!(unquote(r"`a\nb`"), Ok(r"a\nb".into()));
        assert_eq!(unquote(r#""a\xc5z""#), Err(b"a\xc5z".to_vec()));
        assert_eq!(unquote(r#""\303\251\377""#), Err(b"\xc3\xa9\xff".to_vec()));
        // Escapes that happen to form a valid sequence are text.
        assert_eq!(unquote(r#""\xc3\xa9""#), Ok("é".into()));
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(go_quote("\u{1}é"), r#""\x01é""#);
        assert_eq!(go_quote_bytes(b"a\xc5z"), r#""a\xc5z""#);
        assert_eq!(
            go_quote_bytes(b"\xff\"\n\xc3\xa9\xc3"),
            r#""\xff\"\né\xc3""#
        );
        assert_eq!(go_quote_bytes(b"plain"), go_quote("plain"));
    }
}
