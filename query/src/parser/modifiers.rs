//! Postfix forms: range selectors `[5m]`, subqueries `[5m:1m]`, `offset` and `@`, and the
//! duration expressions inside them. Constant duration arithmetic (`[5m+1m]`, `offset (2*1m)`,
//! `max_of(…)`) is folded here; `step()`/`range()` are rejected as unsupported.

use crate::ast::{AtModifier, Expr, MatrixSelector, Subquery, ValueType};

use super::check::expr_type;
use super::grammar::{Node, PResult, Parser, Spanned};
use super::lexer::{Kind, Kw, Op};
use super::literals::{parse_duration, parse_number};

/// Largest duration in seconds that fits in Go's `time.Duration` (Prometheus's limit).
const MAX_DURATION_SECS: f64 = 9_223_372_036.854_775;

const DURATION_EXPECTED: &str = "number, duration, step(), or range()";

impl Parser<'_> {
    /// Applies `[…]`, `offset` and `@` that follow an operand.
    pub(super) fn postfix(&mut self, mut node: Node) -> PResult<Node> {
        let saved = self.depth_guard();
        loop {
            node = match self.peek().kind {
                Kind::LBracket => self.range_or_subquery(node)?,
                Kind::Kw(Kw::Offset) => self.offset(node)?,
                Kind::Op(Op::At) => self.at(node)?,
                Kind::Kw(k @ (Kw::Anchored | Kw::Smoothed)) => {
                    let word = if k == Kw::Anchored {
                        "anchored"
                    } else {
                        "smoothed"
                    };
                    return Err(self.err(
                        node.start,
                        format!("{word} modifier is experimental and not supported"),
                    ));
                }
                _ => break,
            };
            // Each modifier wraps the node; count it towards the depth limit.
            self.enter()?;
        }
        self.restore_depth(saved);
        Ok(node)
    }

    /// `[range]` or `[range:step]` / `[range:]`.
    fn range_or_subquery(&mut self, node: Node) -> PResult<Node> {
        let lb = self.advance();
        if !starts_duration(&self.peek().kind) {
            return Err(self.unexpected("subquery or range selector", DURATION_EXPECTED));
        }
        let range = self.positive_duration("subquery or range selector")?;
        match self.peek().kind {
            Kind::RBracket => {
                self.advance();
                let Expr::VectorSelector(vs) = node.expr else {
                    return Err(self.err(lb.start, "ranges only allowed for vector selectors"));
                };
                if vs.offset != 0 {
                    return Err(self.err(lb.start, "no offset modifiers allowed before range"));
                }
                if vs.at.is_some() {
                    return Err(self.err(lb.start, "no @ modifiers allowed before range"));
                }
                Ok(Box::new(Spanned {
                    expr: Expr::MatrixSelector(MatrixSelector {
                        selector: vs,
                        range,
                    }),
                    start: node.start,
                }))
            }
            Kind::Colon => {
                self.advance();
                let step = if self.peek().kind == Kind::RBracket {
                    None
                } else if starts_duration(&self.peek().kind) {
                    Some(self.positive_duration("subquery selector")?)
                } else {
                    return Err(self.unexpected(
                        "subquery selector",
                        "number, duration, step(), range(), or \"]\"",
                    ));
                };
                self.expect(&Kind::RBracket, "subquery selector", "\"]\"")?;
                let t = expr_type(&node.expr);
                if t != ValueType::Vector {
                    self.defer(
                        node.start,
                        format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            t.as_str()
                        ),
                    );
                }
                let sq = Subquery {
                    expr: Box::new(node.expr),
                    range,
                    step,
                    offset: 0,
                    at: None,
                };
                Ok(Box::new(Spanned {
                    expr: Expr::Subquery(sq),
                    start: node.start,
                }))
            }
            _ => Err(self.unexpected("subquery or range", "\":\" or \"]\"")),
        }
    }

    /// A duration expression that must be positive, in ms.
    fn positive_duration(&mut self, context: &str) -> PResult<i64> {
        let start = self.peek().start;
        let secs = self.duration_expr(0, context)?;
        if secs.is_nan() || secs <= 0.0 {
            return Err(self.err(start, "duration must be greater than 0"));
        }
        if secs > MAX_DURATION_SECS {
            return Err(self.err(start, "duration out of range"));
        }
        let ms = secs_to_ms(secs);
        if ms == 0 {
            return Err(self.err(start, "duration must be at least 1ms"));
        }
        Ok(ms)
    }

    /// Constant duration arithmetic in seconds: `+ - * / % ^`, unary signs, parentheses,
    /// `min_of`/`max_of`.
    fn duration_expr(&mut self, min_prec: u8, context: &str) -> PResult<f64> {
        let saved = self.depth_guard();
        self.enter()?;
        let mut lhs = self.duration_unary(context)?;
        loop {
            let (prec, right) = match self.peek().kind {
                Kind::Op(Op::Add | Op::Sub) => (1, false),
                Kind::Op(Op::Mul | Op::Div | Op::Mod) => (2, false),
                Kind::Op(Op::Pow) => (3, true),
                _ => break,
            };
            if prec < min_prec {
                break;
            }
            let op = self.advance();
            let rhs = self.duration_expr(if right { prec } else { prec + 1 }, context)?;
            lhs = match op.kind {
                Kind::Op(Op::Add) => lhs + rhs,
                Kind::Op(Op::Sub) => lhs - rhs,
                Kind::Op(Op::Mul) => lhs * rhs,
                Kind::Op(Op::Div) if rhs == 0.0 => {
                    return Err(self.err(op.start, "division by zero"))
                }
                Kind::Op(Op::Div) => lhs / rhs,
                Kind::Op(Op::Mod) if rhs == 0.0 => return Err(self.err(op.start, "modulo by zero")),
                Kind::Op(Op::Mod) => lhs % rhs,
                _ => lhs.powf(rhs),
            };
            self.enter()?;
        }
        self.restore_depth(saved);
        Ok(lhs)
    }

    fn duration_unary(&mut self, context: &str) -> PResult<f64> {
        match self.peek().kind {
            Kind::Op(Op::Add) => {
                self.advance();
                self.duration_expr(3, context)
            }
            Kind::Op(Op::Sub) => {
                self.advance();
                Ok(-self.duration_expr(3, context)?)
            }
            _ => self.duration_primary(context),
        }
    }

    fn duration_primary(&mut self, context: &str) -> PResult<f64> {
        match self.peek().kind {
            Kind::Number | Kind::Duration => self.duration_literal(),
            Kind::LParen => self.duration_paren(context),
            Kind::Kw(k @ (Kw::MaxOf | Kw::MinOf)) => self.duration_min_max(k == Kw::MaxOf, context),
            Kind::Kw(Kw::Step | Kw::Range) => self.duration_step_or_range(context),
            _ => Err(self.unexpected(context, DURATION_EXPECTED)),
        }
    }

    fn duration_paren(&mut self, context: &str) -> PResult<f64> {
        self.advance();
        let v = self.duration_expr(0, context)?;
        self.expect(&Kind::RParen, context, "\")\"")?;
        Ok(v)
    }

    /// `max_of(a, b)` / `min_of(a, b)`.
    fn duration_min_max(&mut self, max: bool, context: &str) -> PResult<f64> {
        self.advance();
        self.expect(&Kind::LParen, context, "\"(\"")?;
        let a = self.duration_expr(0, context)?;
        self.expect(&Kind::Comma, context, "\",\"")?;
        let b = self.duration_expr(0, context)?;
        self.expect(&Kind::RParen, context, "\")\"")?;
        Ok(if max { a.max(b) } else { a.min(b) })
    }

    /// `step()` and `range()` depend on the query; eddy does not support them in durations.
    fn duration_step_or_range(&mut self, context: &str) -> PResult<f64> {
        let start = self.advance().start;
        if self.peek().kind != Kind::LParen {
            return Err(self.unexpected(context, DURATION_EXPECTED));
        }
        Err(self.err(
            start,
            "step() and range() in durations are experimental and not supported",
        ))
    }

    /// A number (seconds) or duration literal, in seconds, range-checked.
    fn duration_literal(&mut self) -> PResult<f64> {
        let t = self.advance();
        let text = self.text(&t);
        let secs = if t.kind == Kind::Duration {
            parse_duration(text).map_err(|m| self.err(t.start, m))? as f64 / 1000.0
        } else {
            parse_number(text).map_err(|m| self.err(t.start, m))?
        };
        if secs.abs() > MAX_DURATION_SECS {
            return Err(self.err(t.start, "duration out of range"));
        }
        Ok(secs)
    }

    /// `offset [+|-]duration` (or a parenthesised duration expression).
    fn offset(&mut self, mut node: Node) -> PResult<Node> {
        self.advance();
        let sign_pos = self.peek().start;
        let neg = match self.peek().kind {
            Kind::Op(Op::Sub) => {
                self.advance();
                true
            }
            Kind::Op(Op::Add) => {
                self.advance();
                false
            }
            _ => false,
        };
        let secs = match self.peek().kind {
            Kind::Number | Kind::Duration => self.duration_literal()?,
            Kind::LParen | Kind::Kw(Kw::MaxOf | Kw::MinOf | Kw::Step | Kw::Range) => {
                self.duration_primary("offset")?
            }
            _ => return Err(self.unexpected("offset", DURATION_EXPECTED)),
        };
        let secs = if neg { -secs } else { secs };
        if secs.abs() > MAX_DURATION_SECS {
            return Err(self.err(sign_pos, "duration out of range"));
        }
        let ms = secs_to_ms(secs);
        let slot = match &mut node.expr {
            Expr::VectorSelector(vs) => &mut vs.offset,
            Expr::MatrixSelector(m) => &mut m.selector.offset,
            Expr::Subquery(sq) => &mut sq.offset,
            _ => {
                return Err(self.err(
                    node.start,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        // Like Prometheus, a zero offset counts as "not set".
        if *slot != 0 {
            return Err(self.err(node.start, "offset may not be set multiple times"));
        }
        *slot = ms;
        Ok(node)
    }

    /// `@ timestamp`, `@ start()`, `@ end()`.
    fn at(&mut self, mut node: Node) -> PResult<Node> {
        self.advance();
        let at = match self.peek().kind {
            Kind::Kw(k @ (Kw::Start | Kw::End)) => {
                self.advance();
                self.expect(&Kind::LParen, "@", "timestamp")?;
                self.expect(&Kind::RParen, "@", "timestamp")?;
                if k == Kw::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                }
            }
            Kind::Op(Op::Add | Op::Sub) | Kind::Number | Kind::Duration => {
                let neg = self.peek().kind == Kind::Op(Op::Sub);
                if matches!(self.peek().kind, Kind::Op(_)) {
                    self.advance();
                }
                let t = self.peek().clone();
                let secs = match t.kind {
                    Kind::Number => {
                        parse_number(self.text(&t)).map_err(|m| self.err(t.start, m))?
                    }
                    Kind::Duration => {
                        parse_duration(self.text(&t)).map_err(|m| self.err(t.start, m))? as f64
                            / 1000.0
                    }
                    _ => return Err(self.unexpected("@", "timestamp")),
                };
                self.advance();
                let secs = if neg { -secs } else { secs };
                if !secs.is_finite() || secs >= i64::MAX as f64 || secs <= i64::MIN as f64 {
                    return Err(self.err(
                        node.start,
                        format!(
                            "timestamp out of bounds for @ modifier: {}",
                            go_float_f(secs)
                        ),
                    ));
                }
                AtModifier::Timestamp((secs * 1000.0).round() as i64)
            }
            _ => return Err(self.unexpected("@", "timestamp")),
        };
        let slot = match &mut node.expr {
            Expr::VectorSelector(vs) => &mut vs.at,
            Expr::MatrixSelector(m) => &mut m.selector.at,
            Expr::Subquery(sq) => &mut sq.at,
            _ => {
                return Err(self.err(
                    node.start,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        if slot.is_some() {
            return Err(self.err(node.start, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        Ok(node)
    }
}

/// Tokens that can start a duration expression.
fn starts_duration(k: &Kind) -> bool {
    matches!(
        k,
        Kind::Number
            | Kind::Duration
            | Kind::LParen
            | Kind::Op(Op::Add | Op::Sub)
            | Kind::Kw(Kw::Step | Kw::Range | Kw::MaxOf | Kw::MinOf)
            | Kind::Error(_)
    )
}

/// Seconds to whole milliseconds as Prometheus does: round to the nanosecond (its
/// `time.Duration`), then truncate to milliseconds when evaluating.
fn secs_to_ms(secs: f64) -> i64 {
    ((secs * 1e9).round() / 1e6).trunc() as i64
}

/// Go's `%f` formatting, used in the @ bounds message.
fn go_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:.6}")
    }
}
