//! Byte-level lexing shared by the text-exposition line parsers: a cursor over one line,
//! names, quoted strings with escapes, and numbers.

use std::borrow::Cow;

/// A lexing failure at byte `at` of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub(crate) at: usize,
    pub(crate) msg: String,
}

pub(crate) type LexResult<T> = Result<T, LexError>;

pub(crate) fn fail<T>(at: usize, msg: impl Into<String>) -> LexResult<T> {
    Err(LexError {
        at,
        msg: msg.into(),
    })
}

/// A cursor over one line (without its line break).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    pub(crate) line: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(line: &'a str) -> Self {
        Cursor { line, pos: 0 }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// The unread rest of the line.
    pub(crate) fn rest(&self) -> &'a str {
        &self.line[self.pos..]
    }

    /// Skips spaces and tabs; returns how many were skipped.
    #[inline]
    pub(crate) fn skip_ws(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Consumes `c` or fails with `what`.
    pub(crate) fn expect(&mut self, c: u8, what: &str) -> LexResult<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            fail(self.pos, format!("expected {what}, found {}", self.found()))
        }
    }

    /// Describes the byte at the cursor for error messages.
    pub(crate) fn found(&self) -> String {
        match self.rest().chars().next() {
            None => "end of line".to_string(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[inline]
    pub(crate) fn metric_name(&mut self) -> LexResult<&'a str> {
        self.ident(true)
    }

    /// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[inline]
    pub(crate) fn label_name(&mut self) -> LexResult<&'a str> {
        self.ident(false)
    }

    fn ident(&mut self, colon: bool) -> LexResult<&'a str> {
        let b = self.line.as_bytes();
        let start = self.pos;
        let ok_first = |c: u8| c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':');
        if !b.get(start).is_some_and(|&c| ok_first(c)) {
            let what = if colon { "metric name" } else { "label name" };
            return fail(start, format!("expected {what}, found {}", self.found()));
        }
        let mut i = start + 1;
        while b.get(i).is_some_and(|&c| ok_first(c) || c.is_ascii_digit()) {
            i += 1;
        }
        self.pos = i;
        Ok(&self.line[start..i])
    }

    /// A double-quoted string starting at the cursor. Borrowed unless it holds escapes:
    /// `\\`, `\"` and `\n` are unescaped; any other `\x` is kept as written (as Prometheus does).
    pub(crate) fn quoted(&mut self) -> LexResult<Cow<'a, str>> {
        let open = self.pos;
        self.expect(b'"', "'\"'")?;
        let b = self.line.as_bytes();
        let start = self.pos;
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(Cow::Borrowed(&self.line[start..i]));
                }
                b'\\' => return self.quoted_escaped(start, i),
                _ => i += 1,
            }
        }
        fail(open, "unterminated quoted string")
    }

    /// Slow path of [`Cursor::quoted`]: the string has an escape at `first_escape`.
    fn quoted_escaped(&mut self, start: usize, first_escape: usize) -> LexResult<Cow<'a, str>> {
        let b = self.line.as_bytes();
        let mut out = String::with_capacity(first_escape - start + 16);
        out.push_str(&self.line[start..first_escape]);
        let mut i = first_escape;
        let mut run = i; // start of the pending unescaped run
        while i < b.len() {
            match b[i] {
                b'"' => {
                    out.push_str(&self.line[run..i]);
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    out.push_str(&self.line[run..i]);
                    match b.get(i + 1) {
                        Some(b'\\') => out.push('\\'),
                        Some(b'"') => out.push('"'),
                        Some(b'n') => out.push('\n'),
                        Some(_) => {
                            // Keep unknown escapes verbatim; the next run starts at the backslash.
                            run = i;
                            i += 1;
                            continue;
                        }
                        None => break,
                    }
                    i += 2;
                    run = i;
                }
                _ => i += 1,
            }
        }
        fail(start - 1, "unterminated quoted string")
    }

    /// A whitespace-delimited token (value or timestamp).
    pub(crate) fn token(&mut self) -> &'a str {
        let b = self.line.as_bytes();
        let start = self.pos;
        while self.pos < b.len() && !matches!(b[self.pos], b' ' | b'\t') {
            self.pos += 1;
        }
        &self.line[start..self.pos]
    }
}

/// Parses a sample value as Prometheus does (Go `ParseFloat`): decimal and `E` notation,
/// `NaN`, `+Inf`, `-Inf`, `Inf` (case-insensitive).
pub(crate) fn parse_value(tok: &str) -> Option<f64> {
    // Rust's parser accepts the same spellings, case-insensitively ("inf", "infinity", "nan").
    // Reject things Go would reject but Rust would not: nothing known; hex floats fail in both.
    if tok.is_empty() {
        return None;
    }
    tok.parse::<f64>().ok()
}

/// Unescapes HELP text: `\\` and `\n` (and `\"` in OpenMetrics, harmless to accept always).
pub(crate) fn unescape_help(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_borrows_without_escapes_and_unescapes_with_them() {
        let mut c = Cursor::new(r#""plain" rest"#);
        assert!(matches!(c.quoted().unwrap(), Cow::Borrowed("plain")));
        assert_eq!(c.rest(), " rest");
        let mut c = Cursor::new(r#""a\\b\"c\nd\te""#);
        let q = c.quoted().unwrap();
        assert!(matches!(q, Cow::Owned(_)));
        assert_eq!(q, "a\\b\"c\nd\\te");
        assert!(c.at_end());
        assert_eq!(
            Cursor::new(r#""abc"#).quoted().unwrap_err().msg,
            "unterminated quoted string"
        );
        assert_eq!(Cursor::new(r#""ab\"#).quoted().unwrap_err().at, 0);
        assert_eq!(Cursor::new(r#""a\"b"#).quoted().unwrap_err().at, 0);
    }

    #[test]
    fn values_parse_like_go() {
        assert_eq!(parse_value("1.795617769014E12"), Some(1.795617769014E12));
        assert_eq!(
            parse_value("-9.223372036854776E18"),
            Some(-9.223372036854776E18)
        );
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_value("1e-3"), Some(0.001));
        assert_eq!(parse_value(""), None);
        assert_eq!(parse_value("1,0"), None);
        assert_eq!(parse_value("0x10"), None);
    }

    #[test]
    fn help_unescaping() {
        assert!(matches!(unescape_help("plain text"), Cow::Borrowed(_)));
        assert_eq!(unescape_help(r"a\\b\nc\x"), "a\\b\nc\\x");
    }
}
