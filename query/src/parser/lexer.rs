//! PromQL tokenizer: turns the query text into a token list, with the same context rules as
//! Prometheus's lexer (keywords are plain identifiers inside `{…}`, `[…]` holds durations and
//! duration arithmetic, `(`/`[` balance is checked at the end of input).
//!
//! Lexing stops at the first bad character: the list then ends with a [`Kind::Error`] token that
//! carries Prometheus's message, and the parser reports it when (and only when) it reaches it.

mod numbers;
mod token;

use nom::bytes::complete::take_while;
use nom::Parser as _;

use numbers::{accept_remaining_duration, scan_number};
use token::{duration_keyword, keyword};
pub(crate) use token::{Kind, Kw, Op, Token};

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

pub(super) fn is_alnum(c: char) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

/// Go's `%q` of a single rune, as used in Prometheus's lexer messages.
pub(crate) fn quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '\\' => "'\\\\'".to_string(),
        '\n' => "'\\n'".to_string(),
        '\t' => "'\\t'".to_string(),
        '\r' => "'\\r'".to_string(),
        c if c.is_control() => {
            if (c as u32) < 0x80 {
                format!("'\\x{:02x}'", c as u32)
            } else {
                format!("'\\u{:04x}'", c as u32)
            }
        }
        c => format!("'{c}'"),
    }
}

/// Lexer state, mirroring the modes of Prometheus's state machine.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    paren_depth: i64,
    brace_open: bool,
    bracket_open: bool,
    /// Right after `[` (or an operator inside it): Prometheus's `lexDurationExpr` state.
    duration_state: bool,
    got_colon: bool,
    got_duration: bool,
    out: Vec<Token>,
}

/// Tokenizes `src`. The result always ends with an `Eof` or an `Error` token.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let mut lx = Lexer {
        src,
        pos: 0,
        paren_depth: 0,
        brace_open: false,
        bracket_open: false,
        duration_state: false,
        got_colon: false,
        got_duration: false,
        out: Vec::new(),
    };
    loop {
        let tok_start = lx.pos;
        let emitted = lx.out.len();
        let step = if lx.brace_open {
            lx.inside_braces()
        } else if lx.bracket_open && lx.duration_state {
            lx.duration_expr()
        } else {
            lx.statement()
        };
        if let Err(msg) = step {
            // Like Prometheus, an error replaces a token emitted in the same step and is
            // positioned after it; otherwise it sits at the start of the bad token.
            let start = if lx.out.len() > emitted {
                lx.out.pop().map_or(tok_start, |t| t.end)
            } else {
                tok_start
            };
            lx.out.push(Token {
                kind: Kind::Error(msg),
                start,
                end: start,
            });
            return lx.out;
        }
        if matches!(
            lx.out.last(),
            Some(Token {
                kind: Kind::Eof,
                ..
            })
        ) {
            return lx.out;
        }
    }
}

type Step = Result<(), String>;

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.rest().chars();
        it.next();
        it.next()
    }

    fn emit(&mut self, kind: Kind, start: usize) {
        self.out.push(Token {
            kind,
            start,
            end: self.pos,
        });
    }

    /// Emits a token of `len` bytes starting at the current position.
    fn emit_len(&mut self, kind: Kind, len: usize) {
        let start = self.pos;
        self.pos += len;
        self.emit(kind, start);
    }

    fn skip_spaces(&mut self) {
        let n = self.rest().len() - self.rest().trim_start_matches(is_space).len();
        self.pos += n;
    }

    fn skip_comment(&mut self) {
        let n = self.rest().find(['\n', '\r']).unwrap_or(self.rest().len());
        self.pos += n;
    }

    /// Top-level state (`lexStatements`).
    fn statement(&mut self) -> Step {
        let Some(c) = self.peek() else {
            if self.paren_depth != 0 {
                return Err("unclosed left parenthesis".into());
            }
            if self.bracket_open {
                return Err("unclosed left bracket".into());
            }
            self.emit(Kind::Eof, self.pos);
            return Ok(());
        };
        match c {
            '#' => self.skip_comment(),
            c if is_space(c) => self.skip_spaces(),
            ',' => self.emit_len(Kind::Comma, 1),
            '*' => self.emit_len(Kind::Op(Op::Mul), 1),
            '/' => self.emit_len(Kind::Op(Op::Div), 1),
            '%' => self.emit_len(Kind::Op(Op::Mod), 1),
            '+' => self.emit_len(Kind::Op(Op::Add), 1),
            '-' => self.emit_len(Kind::Op(Op::Sub), 1),
            '^' => self.emit_len(Kind::Op(Op::Pow), 1),
            '@' => self.emit_len(Kind::Op(Op::At), 1),
            '=' => match self.peek2() {
                Some('=') => self.emit_len(Kind::Op(Op::Eqlc), 2),
                Some('~') => {
                    return Err(format!(
                        "unexpected character after '=': {}",
                        quote_rune('~')
                    ));
                }
                _ => self.emit_len(Kind::Eql, 1),
            },
            '!' => match self.peek2() {
                Some('=') => self.emit_len(Kind::Op(Op::Neq), 2),
                other => {
                    let shown = other.map_or("'\u{fffd}'".to_string(), quote_rune);
                    return Err(format!("unexpected character after '!': {shown}"));
                }
            },
            '<' => match self.peek2() {
                Some('=') => self.emit_len(Kind::Op(Op::Lte), 2),
                Some('/') => self.emit_len(Kind::Op(Op::TrimUpper), 2),
                _ => self.emit_len(Kind::Op(Op::Lss), 1),
            },
            '>' => match self.peek2() {
                Some('=') => self.emit_len(Kind::Op(Op::Gte), 2),
                Some('/') => self.emit_len(Kind::Op(Op::TrimLower), 2),
                _ => self.emit_len(Kind::Op(Op::Gtr), 1),
            },
            c if c.is_ascii_digit()
                || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.number_or_duration()?;
            }
            '"' | '\'' => self.string(c)?,
            '`' => self.raw_string()?,
            c if is_alpha(c) || c == ':' => {
                if !self.bracket_open {
                    self.keyword_or_identifier();
                } else if c == ':' {
                    if self.got_colon {
                        return Err(format!("unexpected colon {}", quote_rune(':')));
                    }
                    self.emit_len(Kind::Colon, 1);
                    self.got_colon = true;
                } else if !self.duration_word() {
                    return Err(format!(
                        "unexpected character: {}, expected {}",
                        quote_rune(c),
                        quote_rune(':')
                    ));
                }
            }
            '(' => {
                self.emit_len(Kind::LParen, 1);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit_len(Kind::RParen, 1);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return Err(format!("unexpected right parenthesis {}", quote_rune(')')));
                }
            }
            '{' => {
                self.emit_len(Kind::LBrace, 1);
                self.brace_open = true;
            }
            '[' => {
                if self.bracket_open {
                    return Err(format!("unexpected left bracket {}", quote_rune('[')));
                }
                self.got_colon = false;
                self.got_duration = false;
                self.emit_len(Kind::LBracket, 1);
                self.skip_spaces();
                self.bracket_open = true;
                self.duration_state = true;
            }
            ']' => {
                if !self.bracket_open {
                    return Err(format!("unexpected right bracket {}", quote_rune(']')));
                }
                self.emit_len(Kind::RBracket, 1);
                self.bracket_open = false;
            }
            c => return Err(format!("unexpected character: {}", quote_rune(c))),
        }
        Ok(())
    }

    /// Inside `[…]` right after `[` or an operator (`lexDurationExpr`).
    fn duration_expr(&mut self) -> Step {
        let Some(c) = self.peek() else {
            return Err("unexpected end of input in duration expression".into());
        };
        match c {
            ']' => {
                self.emit_len(Kind::RBracket, 1);
                self.bracket_open = false;
                self.got_colon = false;
                self.duration_state = false;
            }
            ':' => {
                self.emit_len(Kind::Colon, 1);
                if !self.got_duration {
                    return Err("unexpected colon before duration in duration expression".into());
                }
                if self.got_colon {
                    return Err("unexpected repeated colon in duration expression".into());
                }
                self.got_colon = true;
            }
            '(' => {
                self.emit_len(Kind::LParen, 1);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit_len(Kind::RParen, 1);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return Err(format!("unexpected right parenthesis {}", quote_rune(')')));
                }
            }
            c if is_space(c) => self.skip_spaces(),
            '+' => self.emit_len(Kind::Op(Op::Add), 1),
            '-' => self.emit_len(Kind::Op(Op::Sub), 1),
            '*' => self.emit_len(Kind::Op(Op::Mul), 1),
            '/' => self.emit_len(Kind::Op(Op::Div), 1),
            '%' => self.emit_len(Kind::Op(Op::Mod), 1),
            '^' => self.emit_len(Kind::Op(Op::Pow), 1),
            ',' => self.emit_len(Kind::Comma, 1),
            c if is_alpha(c) => {
                if !self.duration_word() {
                    return Err(format!(
                        "unexpected character in duration expression: {}",
                        quote_rune(c)
                    ));
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.got_duration = true;
                self.duration_state = false;
                self.number_or_duration()?;
            }
            c => {
                return Err(format!(
                    "unexpected character in duration expression: {}",
                    quote_rune(c)
                ))
            }
        }
        Ok(())
    }

    /// Lexes `step`, `range`, `max_of` or `min_of` inside brackets; false if the word is none.
    fn duration_word(&mut self) -> bool {
        let word_len = self
            .rest()
            .find(|c: char| !is_alpha(c))
            .unwrap_or(self.rest().len());
        match duration_keyword(&self.rest()[..word_len]) {
            Some(kind) => {
                self.emit_len(kind, word_len);
                true
            }
            None => false,
        }
    }

    /// Inside `{…}`: label names, match operators, strings.
    fn inside_braces(&mut self) -> Step {
        let Some(c) = self.peek() else {
            return Err("unexpected end of input inside braces".into());
        };
        match c {
            '#' => self.skip_comment(),
            c if is_space(c) => self.skip_spaces(),
            c if is_alpha(c) => {
                let len = self
                    .rest()
                    .find(|c: char| !is_alnum(c))
                    .unwrap_or(self.rest().len());
                self.emit_len(Kind::Ident, len);
            }
            ',' => self.emit_len(Kind::Comma, 1),
            '"' | '\'' => self.string(c)?,
            '`' => self.raw_string()?,
            '=' => {
                if self.peek2() == Some('~') {
                    self.emit_len(Kind::EqlRegex, 2);
                } else {
                    self.emit_len(Kind::Eql, 1);
                }
            }
            '!' => match self.peek2() {
                Some('~') => self.emit_len(Kind::NeqRegex, 2),
                Some('=') => self.emit_len(Kind::Op(Op::Neq), 2),
                other => {
                    let shown = other.map_or("'\u{fffd}'".to_string(), quote_rune);
                    return Err(format!(
                        "unexpected character after '!' inside braces: {shown}"
                    ));
                }
            },
            '{' => return Err(format!("unexpected left brace {}", quote_rune('{'))),
            '}' => {
                self.emit_len(Kind::RBrace, 1);
                self.brace_open = false;
            }
            c => {
                return Err(format!(
                    "unexpected character inside braces: {}",
                    quote_rune(c)
                ))
            }
        }
        Ok(())
    }

    /// An identifier, keyword, or metric name with colons.
    fn keyword_or_identifier(&mut self) {
        let src: &str = self.src;
        let rest = &src[self.pos..];
        let mut ident = take_while::<_, &str, ()>(|c: char| is_alnum(c) || c == ':');
        let len = ident.parse(rest).map_or(0, |(_, w)| w.len());
        let word = &rest[..len];
        let kind = match keyword(word) {
            // fill/fill_left/fill_right are keywords only before `(`, so that existing metrics
            // with those names keep working.
            Some(Kind::Kw(Kw::Fill | Kw::FillLeft | Kw::FillRight))
                if !rest[len..].trim_start_matches(is_space).starts_with('(') =>
            {
                Kind::Ident
            }
            Some(k) => k,
            None if word.contains(':') => Kind::MetricIdent,
            None => Kind::Ident,
        };
        self.emit_len(kind, len);
    }

    /// A number or a duration; the text is validated again when it is converted.
    fn number_or_duration(&mut self) -> Step {
        let start = self.pos;
        let (n, ok) = scan_number(self.rest());
        if ok {
            self.emit_len(Kind::Number, n);
            return Ok(());
        }
        self.pos += n;
        match accept_remaining_duration(self.rest()) {
            Ok(d) => {
                self.pos += d;
                self.emit(Kind::Duration, start);
                Ok(())
            }
            Err(read) => {
                let text = &self.src[start..self.pos + read];
                let msg = format!(
                    "bad number or duration syntax: {}",
                    super::literals::go_quote(text)
                );
                self.pos = start;
                Err(msg)
            }
        }
    }

    /// A single- or double-quoted string with escapes; validated here, unquoted by the parser.
    fn string(&mut self, quote: char) -> Step {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Err(msg) = super::literals::check_escape(&mut chars, quote) {
                        self.pos = start;
                        return Err(msg);
                    }
                }
                '\n' => {
                    self.pos = start;
                    return Err("unterminated quoted string".into());
                }
                c if c == quote => {
                    self.pos += i + 1;
                    self.emit(Kind::Str, start);
                    return Ok(());
                }
                _ => {}
            }
        }
        Err("unterminated quoted string".into())
    }

    /// A backtick string: no escapes, may span lines.
    fn raw_string(&mut self) -> Step {
        match self.rest()[1..].find('`') {
            Some(i) => {
                self.emit_len(Kind::Str, i + 2);
                Ok(())
            }
            None => Err("unterminated raw string".into()),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::AggregateOp;

    fn kinds(s: &str) -> Vec<Kind> {
        tokenize(s).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(kinds("1.5e3"), vec![Kind::Number, Kind::Eof]);
        assert_eq!(kinds("0x1F"), vec![Kind::Number, Kind::Eof]);
        assert_eq!(kinds("5m"), vec![Kind::Duration, Kind::Eof]);
        assert_eq!(kinds("1h30m"), vec![Kind::Duration, Kind::Eof]);
        assert_eq!(kinds("100ms"), vec![Kind::Duration, Kind::Eof]);
        assert_eq!(kinds(".5"), vec![Kind::Number, Kind::Eof]);
        assert_eq!(kinds("1_000"), vec![Kind::Number, Kind::Eof]);
    }

    #[test]
    fn bad_numbers_carry_prometheus_text() {
        assert_eq!(
            kinds("2.5."),
            vec![Kind::Error(
                r#"bad number or duration syntax: "2.5.""#.into()
            )]
        );
        assert_eq!(
            kinds("100..4"),
            vec![Kind::Error(
                r#"bad number or duration syntax: "100..""#.into()
            )]
        );
        assert_eq!(
            kinds("0deadbeef"),
            vec![Kind::Error(
                r#"bad number or duration syntax: "0de""#.into()
            )]
        );
        assert_eq!(
            kinds("5mm"),
            vec![Kind::Error(
                r#"bad number or duration syntax: "5mm""#.into()
            )]
        );
        assert_eq!(
            kinds("5m1"),
            vec![Kind::Error(
                r#"bad number or duration syntax: "5m1""#.into()
            )]
        );
    }

    #[test]
    fn keywords_are_case_insensitive_outside_braces_only() {
        assert_eq!(kinds("SUM"), vec![Kind::Aggr(AggregateOp::Sum), Kind::Eof]);
        assert_eq!(
            kinds("{on=\"x\"}"),
            vec![
                Kind::LBrace,
                Kind::Ident,
                Kind::Eql,
                Kind::Str,
                Kind::RBrace,
                Kind::Eof
            ]
        );
        assert_eq!(kinds("fill"), vec![Kind::Ident, Kind::Eof]);
        assert_eq!(kinds("fill (1)")[0], Kind::Kw(Kw::Fill));
        assert_eq!(kinds("a:b"), vec![Kind::MetricIdent, Kind::Eof]);
    }

    #[test]
    fn brackets_and_comments() {
        assert_eq!(
            kinds("x[5m:1m] # c"),
            vec![
                Kind::Ident,
                Kind::LBracket,
                Kind::Duration,
                Kind::Colon,
                Kind::Duration,
                Kind::RBracket,
                Kind::Eof
            ]
        );
        assert_eq!(
            kinds("(1"),
            vec![
                Kind::LParen,
                Kind::Number,
                Kind::Error("unclosed left parenthesis".into())
            ]
        );
        assert_eq!(
            kinds("x[foo]")[2],
            Kind::Error("unexpected character in duration expression: 'f'".into())
        );
    }
}
