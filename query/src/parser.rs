//! PromQL parser: text to [`ast::Expr`](crate::ast::Expr), with Prometheus 3.x grammar, type
//! checks and error messages, plus the canonical printer (`impl Display for Expr`).
//!
//! Layout: `lexer` tokenizes with Prometheus's context rules (`lexer/token.rs` the token kinds,
//! `lexer/numbers.rs` number and duration scanning); `grammar` is a recursive-descent parser
//! with precedence climbing for binary operators; `selector` parses `name{…}`; `modifiers`
//! handles `[range]`, subqueries, `offset` and `@`; `check` holds the static type rules;
//! `literals` converts numbers, durations and strings; `functions` is the function table;
//! `printer` prints canonical PromQL.
//!
//! ```
//! use eddy_query::parser::parse;
//! let e = parse("sum by (job) (rate(http_requests_total[5m]))").unwrap();
//! assert_eq!(e.to_string(), "sum by (job) (rate(http_requests_total[5m]))");
//! let err = parse("rate(x)").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
//! );
//! ```
//!
//! Semantics worth knowing: a selector's `__name__` matcher comes first in `matchers` when a
//! name was written before the braces; a sign on a number literal folds into it (`-1` is
//! `Number(-1)`); binary expressions between two instant vectors always carry a
//! `VectorMatching` (one-to-one, or many-to-many for `and`/`or`/`unless`), others carry none;
//! durations are whole milliseconds (Prometheus rounds to nanoseconds, then truncates).
//!
//! Not supported (clear parse errors): the experimental `fill()`/`fill_left()`/`fill_right()`
//! binary modifiers, `anchored`/`smoothed` range modifiers, the `</` and `>/` histogram trim
//! operators, `step()`/`range()` inside durations (they need the query's step and range), and
//! `\xNN`/octal escapes that make invalid UTF-8 in label matchers. (Elsewhere such a string
//! parses to [`Expr::ByteString`](crate::ast::Expr::ByteString), as in Prometheus.) Constant duration arithmetic
//! (`foo[5m+1m]`, `offset (2*1m)`, `max_of(1m, 30s)`) is folded to a fixed duration.

// Parsed nodes stay boxed as they pass between functions, on purpose: it keeps the frames of
// the recursive descent small (see `grammar`).
#![allow(clippy::boxed_local)]

mod check;
mod functions;
mod grammar;
mod lexer;
mod literals;
mod modifiers;
mod printer;
mod selector;

use thiserror::Error;

use eddy_storage::Matcher;

use crate::ast::Expr;

pub use check::expr_type;
pub use functions::{all_functions, function, FunctionDef};
pub(crate) use literals::{go_quote, go_quote_bytes};

/// Maximum nesting depth of an expression (parentheses, operands, arguments, operator chains).
/// Deeper input is rejected, so recursive code over the tree cannot overflow the stack.
pub const MAX_DEPTH: usize = 1000;

/// A parse or static type error, positioned like Prometheus's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{col}: parse error: {msg}")]
pub struct ParseError {
    /// Byte offset in the input where the problem starts.
    pub pos: usize,
    /// 1-based line of `pos`.
    pub line: usize,
    /// 1-based byte column of `pos` within its line.
    pub col: usize,
    /// The message, e.g. `unexpected <op:*>`.
    pub msg: String,
}

impl ParseError {
    /// Builds an error at byte offset `pos` of `input`.
    pub(crate) fn at(input: &str, pos: usize, msg: impl Into<String>) -> Self {
        let pos = pos.min(input.len());
        let before = &input.as_bytes()[..pos];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let col = pos
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        ParseError {
            pos,
            line,
            col,
            msg: msg.into(),
        }
    }
}

/// Parses a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    grammar::Parser::new(input).parse_all()
}

/// Parses a bare series selector such as `up{job="x"}` or `{__name__=~"a.*"}` (the `match[]`
/// parameter of the series, labels and label-values APIs) into its matchers, the `__name__`
/// matcher first when a name is written before the braces. Offsets, `@`, ranges and other
/// expressions are errors. Unlike [`parse`], a selector whose matchers all match the empty
/// string (`{}` or `{a=""}`) is accepted, as in Prometheus; the caller decides.
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    grammar::Parser::new(input).parse_selector()
}
