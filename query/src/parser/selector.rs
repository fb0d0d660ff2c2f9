//! Instant vector selectors: `name`, `name{…}`, `{…}` with label matchers, quoted (UTF-8)
//! metric and label names, and Prometheus's selector checks.

use eddy_storage::{MatchOp, Matcher};

use crate::ast::{Expr, VectorSelector};

use super::grammar::{Node, PResult, Parser, Spanned, EMPTY_SELECTOR};
use super::lexer::{Kind, Op};
use super::literals::{go_quote, invalid_utf8_matcher, unquote};

/// The label holding the metric name.
const NAME_LABEL: &str = "__name__";

impl Parser<'_> {
    /// Parses the rest of a selector: `name` was already consumed (if any) and started at `start`.
    pub(super) fn vector_selector(&mut self, name: Option<String>, start: usize) -> PResult<Node> {
        let mut matchers = Vec::new();
        if let Some(n) = &name {
            matchers.push(Matcher::equal(NAME_LABEL, n.clone()));
        }
        if self.peek().kind == Kind::LBrace {
            self.label_matchers(&mut matchers)?;
        }
        match &name {
            Some(n) => {
                if let Some(m) = matchers[1..].iter().find(|m| m.name == NAME_LABEL) {
                    let msg = format!(
                        "metric name must not be set twice: {} or {}",
                        go_quote(n),
                        go_quote(&m.value)
                    );
                    self.defer(start, msg);
                }
            }
            None => {
                if matchers.iter().all(Matcher::matches_empty) {
                    self.defer(start, EMPTY_SELECTOR);
                }
            }
        }
        let vs = VectorSelector {
            name,
            matchers,
            offset: 0,
            at: None,
        };
        Ok(Box::new(Spanned {
            expr: Expr::VectorSelector(vs),
            start,
        }))
    }

    /// `{ matcher, … }`, appending to `out`.
    fn label_matchers(&mut self, out: &mut Vec<Matcher>) -> PResult<()> {
        self.advance(); // `{`
        loop {
            let t = self.peek().clone();
            match &t.kind {
                Kind::RBrace => {
                    self.advance();
                    return Ok(());
                }
                Kind::Ident => {
                    self.advance();
                    let name = self.text(&t).to_string();
                    let Some(op) = match_op(&self.peek().kind) else {
                        return Err(self.unexpected("label matching", "label matching operator"));
                    };
                    self.advance();
                    out.push(self.matcher_value(op, name, t.start)?);
                }
                Kind::Str => {
                    self.advance();
                    let name = unquote(self.text(&t))
                        .map_err(|b| self.err(t.start, invalid_utf8_matcher(&b)))?;
                    match match_op(&self.peek().kind) {
                        Some(op) => {
                            self.advance();
                            out.push(self.matcher_value(op, name, t.start)?);
                        }
                        // A lone quoted string is the metric name: `{"my.metric", job="x"}`.
                        None => out.push(Matcher::equal(NAME_LABEL, name)),
                    }
                }
                _ => return Err(self.unexpected("label matching", "identifier or \"}\"")),
            }
            match self.peek().kind {
                Kind::Comma => {
                    self.advance();
                }
                Kind::RBrace => {}
                _ => return Err(self.unexpected("label matching", "\",\" or \"}\"")),
            }
        }
    }

    /// The string after a match operator, building the matcher (regex errors are parse errors).
    fn matcher_value(&mut self, op: MatchOp, name: String, name_pos: usize) -> PResult<Matcher> {
        let t = self.peek().clone();
        if t.kind != Kind::Str {
            return Err(self.unexpected("label matching", "string"));
        }
        self.advance();
        let value =
            unquote(self.text(&t)).map_err(|b| self.err(t.start, invalid_utf8_matcher(&b)))?;
        Matcher::new(op, name, value).map_err(|e| self.err(name_pos, e.to_string()))
    }
}

fn match_op(k: &Kind) -> Option<MatchOp> {
    match k {
        Kind::Eql => Some(MatchOp::Equal),
        Kind::Op(Op::Neq) => Some(MatchOp::NotEqual),
        Kind::EqlRegex => Some(MatchOp::RegexMatch),
        Kind::NeqRegex => Some(MatchOp::RegexNoMatch),
        _ => None,
    }
}
