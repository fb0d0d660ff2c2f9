//! The expression grammar: precedence climbing for binary operators, unary signs, and the
//! primary forms (literals, selectors, calls, aggregations, parentheses).
//!
//! Errors come in two tiers, as in Prometheus: syntax errors and grammar-rule errors end the
//! parse at once; static type errors (which Prometheus finds in a pass after parsing) are kept
//! aside and reported only if the whole input parses.

use crate::ast::{AggregateExpr, AggregateOp, BinaryOp, Cardinality, Expr, UnaryOp, ValueType};

use super::check::{expr_type, BinModifiers};
use super::functions::{function, FunctionDef};
use super::lexer::{tokenize, Kind, Kw, Op, Token};
use super::literals::{go_quote, go_quote_bytes, parse_duration, parse_number, unquote};
use super::{ParseError, MAX_DEPTH};

/// The first type error found inside each argument of an aggregation.
type ArgErrors = Vec<Option<Box<ParseError>>>;

/// Results inside the parser. Errors are boxed so that `Result`s stay small: the recursive
/// descent moves them through every level, and debug builds keep a stack slot for each copy.
pub(super) type PResult<T> = Result<T, Box<ParseError>>;

/// An expression with the byte offset where it starts, for error positions.
#[derive(Debug)]
pub(super) struct Spanned {
    pub(super) expr: Expr,
    pub(super) start: usize,
}

/// Parsed expressions are boxed for the same reason as errors: small frames per nesting level.
pub(super) type Node = Box<Spanned>;

/// The message for a selector that would select every series.
pub(super) const EMPTY_SELECTOR: &str =
    "vector selector must contain at least one non-empty matcher";

/// Binding power of unary `+`/`-`: its operand takes only `^` and postfix modifiers, so
/// `-2 ^ 2` is `-(2 ^ 2)` while `-a * b` is `(-a) * b`.
const PREC_POW: u8 = 6;

/// Parser state over the token list.
pub(crate) struct Parser<'a> {
    pub(super) src: &'a str,
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    /// The first static type error, reported only if parsing succeeds.
    pub(super) deferred: Option<Box<ParseError>>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Parser {
            src,
            toks: tokenize(src),
            i: 0,
            depth: 0,
            deferred: None,
        }
    }

    /// Parses the whole input as one expression.
    pub(crate) fn parse_all(mut self) -> Result<Expr, ParseError> {
        if self.peek().kind == Kind::Eof {
            return Err(*self.err(0, "no expression found in input"));
        }
        let parsed = self.expr(0).and_then(|node| {
            if self.peek().kind != Kind::Eof {
                return Err(self.unexpected("", ""));
            }
            match self.deferred.take() {
                Some(e) => Err(e),
                None => Ok(node.expr),
            }
        });
        parsed.map_err(|e| *e)
    }

    /// Parses the whole input as a bare series selector (`name{…}` or `{…}`, no modifiers), as
    /// Prometheus's `ParseMetricSelector` does for the `match[]` API parameters. Selectors whose
    /// matchers all match the empty string are accepted; callers decide about those.
    pub(crate) fn parse_selector(mut self) -> Result<Vec<eddy_storage::Matcher>, ParseError> {
        let kind = self.peek().kind.clone();
        let parsed = match kind {
            Kind::LBrace => {
                let start = self.peek().start;
                self.vector_selector(None, start)
            }
            Kind::Ident
            | Kind::MetricIdent
            | Kind::Aggr(_)
            | Kind::Op(Op::Land | Op::Lor | Op::Lunless) => self.named_selector(),
            Kind::Kw(k) if is_metric_keyword(k) => self.named_selector(),
            _ => Err(self.unexpected("", "")),
        };
        let parsed = parsed.and_then(|node| {
            if self.peek().kind != Kind::Eof {
                return Err(self.unexpected("", ""));
            }
            match (self.deferred.take(), node.expr) {
                (Some(e), _) if e.msg != EMPTY_SELECTOR => Err(e),
                (_, Expr::VectorSelector(vs)) => Ok(vs.matchers),
                _ => unreachable!("BUG: a selector parse produced another node"),
            }
        });
        parsed.map_err(|e| *e)
    }

    // ---- token helpers ----

    pub(super) fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    pub(super) fn peek_kind_at(&self, n: usize) -> &Kind {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].kind
    }

    pub(super) fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    pub(super) fn text(&self, t: &Token) -> &'a str {
        &self.src[t.start..t.end]
    }

    pub(super) fn err(&self, pos: usize, msg: impl Into<String>) -> Box<ParseError> {
        Box::new(ParseError::at(self.src, pos, msg))
    }

    /// Records a static type error; only the first one is kept.
    pub(super) fn defer(&mut self, pos: usize, msg: impl Into<String>) {
        if self.deferred.is_none() {
            self.deferred = Some(self.err(pos, msg));
        }
    }

    /// Prometheus's description of a token in "unexpected …" messages.
    fn describe(&self, t: &Token) -> String {
        let text = self.text(t);
        match &t.kind {
            Kind::Eof => "end of input".into(),
            Kind::Error(msg) => msg.clone(),
            Kind::Ident => format!("identifier {}", go_quote(text)),
            Kind::MetricIdent => format!("metric identifier {}", go_quote(text)),
            Kind::Number => format!("number {}", go_quote(text)),
            Kind::Duration => format!("duration {}", go_quote(text)),
            Kind::Str if text.chars().count() > 10 => {
                format!(
                    "string {}...",
                    go_quote(&text.chars().take(10).collect::<String>())
                )
            }
            Kind::Str => format!("string {}", go_quote(text)),
            Kind::Op(_) | Kind::EqlRegex | Kind::NeqRegex => format!("<op:{text}>"),
            Kind::Aggr(_) => format!("<aggr:{text}>"),
            Kind::Kw(k) if k.is_preprocessor() => go_quote(text),
            Kind::Kw(_) => format!("<{text}>"),
            _ => go_quote(text),
        }
    }

    /// An "unexpected <token> [in <context>][, expected <what>]" error at the current token, or
    /// the lexer's error if the current token is one.
    pub(super) fn unexpected(&self, context: &str, expected: &str) -> Box<ParseError> {
        let t = self.peek();
        if let Kind::Error(msg) = &t.kind {
            return self.err(t.start, msg.clone());
        }
        let mut msg = format!("unexpected {}", self.describe(t));
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.err(t.start, msg)
    }

    /// Consumes a token of `kind` or fails with an "unexpected" error.
    pub(super) fn expect(&mut self, kind: &Kind, context: &str, expected: &str) -> PResult<Token> {
        if &self.peek().kind == kind {
            Ok(self.advance())
        } else {
            Err(self.unexpected(context, expected))
        }
    }

    /// Enters one nesting level, failing past [`MAX_DEPTH`].
    pub(super) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let pos = self.peek().start;
            return Err(self.err(
                pos,
                format!("expression nesting too deep (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    /// The current depth, to restore after a loop that counted levels with [`Self::enter`].
    pub(super) fn depth_guard(&self) -> usize {
        self.depth
    }

    pub(super) fn restore_depth(&mut self, saved: usize) {
        self.depth = saved;
    }

    // ---- expressions ----

    // The functions on the recursive path (expr → unary → primary → paren/call/aggregate →
    // expr) keep their own frames small and move everything else into helpers: debug builds
    // give every local of a function its own stack slot, so a fat frame here multiplies by the
    // nesting depth.

    /// Parses operators of precedence `min_prec` and tighter.
    pub(super) fn expr(&mut self, min_prec: u8) -> PResult<Node> {
        let saved = self.depth;
        self.enter()?;
        let mut lhs = self.unary()?;
        while let Some((op, prec, right_assoc)) = binary_op(&self.peek().kind) {
            if prec < min_prec {
                break;
            }
            // A chain `a + b + c …` builds a left-deep tree without recursing here; count each
            // operator as a level so the tree's depth stays bounded.
            self.enter()?;
            lhs = self.binary_rhs(lhs, op, if right_assoc { prec } else { prec + 1 })?;
        }
        self.depth = saved;
        Ok(lhs)
    }

    /// The operator, its modifiers and the right operand of a binary expression.
    fn binary_rhs(&mut self, lhs: Node, op: Option<BinaryOp>, rhs_prec: u8) -> PResult<Node> {
        let op_tok = self.advance();
        let Some(op) = op else {
            return Err(self.trim_op_error(&op_tok));
        };
        let mods = self.bin_modifiers()?;
        let rhs = self.expr(rhs_prec)?;
        Ok(self.build_binary(op, lhs, rhs, mods, op_tok.start))
    }

    #[cold]
    fn trim_op_error(&self, t: &Token) -> Box<ParseError> {
        let msg = format!(
            "the {} operator (native histogram trimming) is not supported",
            self.text(t)
        );
        self.err(t.start, msg)
    }

    /// `bool`, `on(…)`/`ignoring(…)`, `group_left(…)`/`group_right(…)` after an operator.
    fn bin_modifiers(&mut self) -> PResult<BinModifiers> {
        let mut m = BinModifiers::default();
        if self.peek().kind == Kind::Kw(Kw::Bool) {
            self.advance();
            m.return_bool = true;
        }
        if let Kind::Kw(k @ (Kw::On | Kw::Ignoring)) = self.peek().kind {
            self.advance();
            m.on = k == Kw::On;
            m.labels = self.grouping_labels()?;
            if let Kind::Kw(g @ (Kw::GroupLeft | Kw::GroupRight)) = self.peek().kind {
                self.advance();
                m.card = if g == Kw::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                if self.peek().kind == Kind::LParen {
                    m.include = self.grouping_labels()?;
                }
            }
        }
        if let Kind::Kw(Kw::Fill | Kw::FillLeft | Kw::FillRight) = self.peek().kind {
            let pos = self.peek().start;
            return Err(self.err(
                pos,
                "binop fill modifiers are experimental and not supported",
            ));
        }
        Ok(m)
    }

    /// Unary `+`/`-` or a postfixed primary.
    fn unary(&mut self) -> PResult<Node> {
        match self.peek().kind {
            Kind::Op(Op::Add) => self.signed(UnaryOp::Pos),
            Kind::Op(Op::Sub) => self.signed(UnaryOp::Neg),
            _ => {
                let p = self.primary()?;
                self.postfix(p)
            }
        }
    }

    /// `-expr` / `+expr`.
    fn signed(&mut self, op: UnaryOp) -> PResult<Node> {
        let start = self.advance().start;
        let inner = self.expr(PREC_POW)?;
        Ok(self.build_unary(op, inner, start))
    }

    fn build_unary(&mut self, op: UnaryOp, inner: Node, start: usize) -> Node {
        // A sign directly on a number literal folds into the literal, as in Prometheus.
        if let Expr::Number(v) = inner.expr {
            let v = if op == UnaryOp::Neg { -v } else { v };
            return Box::new(Spanned {
                expr: Expr::Number(v),
                start,
            });
        }
        let t = expr_type(&inner.expr);
        if t != ValueType::Scalar && t != ValueType::Vector {
            self.defer(
                start,
                format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    go_quote(t.describe())
                ),
            );
        }
        Box::new(Spanned {
            expr: Expr::Unary(op, Box::new(inner.expr)),
            start,
        })
    }

    /// Literals, selectors, calls, aggregations and parenthesised expressions.
    fn primary(&mut self) -> PResult<Node> {
        let next_is_paren = *self.peek_kind_at(1) == Kind::LParen;
        match self.peek().kind {
            Kind::Number | Kind::Duration | Kind::Str => self.literal(),
            Kind::LParen => self.paren(),
            Kind::LBrace => {
                let start = self.peek().start;
                self.vector_selector(None, start)
            }
            Kind::Ident if next_is_paren => self.call(),
            Kind::Aggr(op)
                if next_is_paren
                    || matches!(self.peek_kind_at(1), Kind::Kw(Kw::By | Kw::Without)) =>
            {
                self.aggregate(op)
            }
            Kind::Kw(Kw::Start | Kw::End | Kw::Step | Kw::Range | Kw::MaxOf | Kw::MinOf)
                if next_is_paren =>
            {
                self.call()
            }
            Kind::Ident | Kind::MetricIdent | Kind::Aggr(_) => self.named_selector(),
            Kind::Op(Op::Land | Op::Lor | Op::Lunless) => self.named_selector(),
            Kind::Kw(k) if is_metric_keyword(k) => self.named_selector(),
            _ => Err(self.unexpected("", "")),
        }
    }

    /// `(expr)`.
    fn paren(&mut self) -> PResult<Node> {
        let start = self.advance().start;
        let inner = self.expr(0)?;
        self.expect(&Kind::RParen, "", "")?;
        Ok(paren_node(inner, start))
    }

    /// A number, duration or string literal.
    fn literal(&mut self) -> PResult<Node> {
        let t = self.advance();
        let text = self.text(&t);
        let expr = match t.kind {
            Kind::Number => Expr::Number(parse_number(text).map_err(|m| self.err(t.start, m))?),
            Kind::Duration => Expr::Number(
                parse_duration(text).map_err(|m| self.err(t.start, m))? as f64 / 1000.0,
            ),
            _ => match unquote(text) {
                Ok(s) => Expr::String(s),
                Err(bytes) => Expr::ByteString(bytes),
            },
        };
        Ok(Box::new(Spanned {
            expr,
            start: t.start,
        }))
    }

    /// A selector that starts with a metric name.
    fn named_selector(&mut self) -> PResult<Node> {
        let t = self.advance();
        let name = self.text(&t).to_string();
        self.vector_selector(Some(name), t.start)
    }

    /// `name(args…)`.
    fn call(&mut self) -> PResult<Node> {
        let name_tok = self.advance();
        let name = self.text(&name_tok);
        let had_deferred = self.deferred.is_some();
        let args = self.call_args(name == "info", function(name))?;
        self.build_call(name, name_tok.start, args, had_deferred)
    }

    /// `( expr, … )` of a call or aggregation. For `info()`, the second argument is a bare label
    /// filter that may match empty values, so its empty-matcher error is dropped.
    /// With `func`, each argument's type is checked right after it is parsed, so that errors
    /// come in Prometheus's order (an argument's own errors, then its type, then the next).
    fn call_args(
        &mut self,
        is_info: bool,
        func: Option<&'static FunctionDef>,
    ) -> PResult<Vec<Node>> {
        self.advance(); // `(`, checked by the caller
        let args: Vec<Node> = Vec::new();
        if self.peek().kind == Kind::RParen {
            self.advance();
            return Ok(args);
        }
        // An argument list costs about twice the stack of a parenthesis; charge it so.
        let saved = self.depth;
        self.enter()?;
        let (args, _) = self.call_arg_list(args, is_info, func, false)?;
        self.depth = saved;
        Ok(args)
    }

    /// The arguments of an aggregation, each with the first type error found inside it
    /// (Prometheus checks the aggregated expression before the parameter).
    fn aggregate_args(&mut self) -> PResult<(Vec<Node>, ArgErrors)> {
        self.advance(); // `(`, checked by the caller
        if self.peek().kind == Kind::RParen {
            self.advance();
            return Ok((Vec::new(), Vec::new()));
        }
        let saved = self.depth;
        self.enter()?;
        let r = self.call_arg_list(Vec::new(), false, None, true)?;
        self.depth = saved;
        Ok(r)
    }

    /// Parses `arg, …)`. With `split_errors`, each argument's type errors are taken out and
    /// returned per argument instead of being kept in `deferred`.
    fn call_arg_list(
        &mut self,
        mut args: Vec<Node>,
        is_info: bool,
        func: Option<&'static FunctionDef>,
        split_errors: bool,
    ) -> PResult<(Vec<Node>, ArgErrors)> {
        let mut errors = Vec::new();
        loop {
            let had_deferred = self.deferred.is_some();
            let outer = if split_errors {
                self.deferred.take()
            } else {
                None
            };
            args.push(self.expr(0)?);
            if split_errors {
                errors.push(std::mem::replace(&mut self.deferred, outer));
            }
            if is_info && args.len() == 2 && !had_deferred {
                self.forgive_label_filter(&args[1]);
            }
            if let (Some(def), Some(arg)) = (func, args.last()) {
                self.check_arg_type(def, args.len() - 1, arg);
            }
            match self.peek().kind {
                Kind::Comma => {
                    let comma = self.advance();
                    if self.peek().kind == Kind::RParen {
                        return Err(self.err(
                            comma.start,
                            "trailing commas not allowed in function call args",
                        ));
                    }
                }
                Kind::RParen => {
                    self.advance();
                    return Ok((args, errors));
                }
                _ => return Err(self.unexpected("", "")),
            }
        }
    }

    fn forgive_label_filter(&mut self, arg: &Node) {
        if let Expr::VectorSelector(vs) = &arg.expr {
            if vs.name.is_none() {
                self.deferred = None;
            }
        }
    }

    /// `op [by|without (…)] (args) [by|without (…)]`.
    fn aggregate(&mut self, op: AggregateOp) -> PResult<Node> {
        let op_pos = self.advance().start;
        let mut grouping = self.aggregate_modifier()?;
        if self.peek().kind != Kind::LParen {
            return Err(self.unexpected("", ""));
        }
        let (args, arg_errors) = self.aggregate_args()?;
        if grouping.is_none() {
            grouping = self.aggregate_modifier()?;
        }
        self.build_aggregate(op, op_pos, args, arg_errors, grouping.unwrap_or_default())
    }

    /// An optional `by (…)` or `without (…)`: (labels, is_without).
    fn aggregate_modifier(&mut self) -> PResult<Option<(Vec<String>, bool)>> {
        match self.peek().kind {
            Kind::Kw(k @ (Kw::By | Kw::Without)) => {
                self.advance();
                Ok(Some((self.grouping_labels()?, k == Kw::Without)))
            }
            _ => Ok(None),
        }
    }

    fn build_aggregate(
        &mut self,
        op: AggregateOp,
        op_pos: usize,
        mut args: Vec<Node>,
        mut arg_errors: ArgErrors,
        (grouping, without): (Vec<String>, bool),
    ) -> PResult<Node> {
        if args.is_empty() {
            return Err(self.err(op_pos, "no arguments for aggregate expression provided"));
        }
        let want = if op.takes_param() { 2 } else { 1 };
        if args.len() != want {
            let msg = format!(
                "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                args.len()
            );
            return Err(self.err(op_pos, msg));
        }
        let expr = args
            .pop()
            .unwrap_or_else(|| unreachable!("BUG: aggregate args checked above"));
        let param = args.pop();
        let (expr_type_err, param_type_err) = self.check_aggregate(op, &expr, param.as_ref());
        let expr_errs = arg_errors.pop().flatten();
        let param_errs = arg_errors.pop().flatten();
        if let Some(first) = [expr_errs, expr_type_err, param_errs, param_type_err]
            .into_iter()
            .flatten()
            .next()
        {
            if self.deferred.is_none() {
                self.deferred = Some(first);
            }
        }
        let agg = AggregateExpr {
            op,
            expr: Box::new(expr.expr),
            param: param.map(|p| Box::new(p.expr)),
            grouping,
            without,
        };
        Ok(Box::new(Spanned {
            expr: Expr::Aggregate(agg),
            start: op_pos,
        }))
    }

    /// `( label, … )` after `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.
    pub(super) fn grouping_labels(&mut self) -> PResult<Vec<String>> {
        self.expect(&Kind::LParen, "grouping opts", "\"(\"")?;
        let mut labels = Vec::new();
        loop {
            let t = self.peek().clone();
            match &t.kind {
                Kind::RParen => {
                    self.advance();
                    return Ok(labels);
                }
                Kind::Str => {
                    self.advance();
                    // Prometheus accepts any non-empty UTF-8 name here.
                    let s = match unquote(self.text(&t)) {
                        Ok(s) if !s.is_empty() => s,
                        bad => {
                            let quoted = match bad {
                                Ok(s) => go_quote(&s),
                                Err(bytes) => go_quote_bytes(&bytes),
                            };
                            return Err(self.err(
                                t.start + 1,
                                format!("invalid label name for grouping: {quoted}"),
                            ));
                        }
                    };
                    labels.push(s);
                }
                k if is_label_word(k) => {
                    self.advance();
                    labels.push(self.text(&t).to_string());
                }
                _ => return Err(self.unexpected("grouping opts", "label")),
            }
            match self.peek().kind {
                Kind::Comma => {
                    self.advance();
                }
                Kind::RParen => {}
                _ => return Err(self.unexpected("grouping opts", "\",\" or \")\"")),
            }
        }
    }
}

/// Wraps `inner` in parentheses (kept apart so that `paren`'s frame stays small).
fn paren_node(inner: Node, start: usize) -> Node {
    Box::new(Spanned {
        expr: Expr::Paren(Box::new(inner.expr)),
        start,
    })
}

/// Operator token → (operator, precedence, right-associative). `None` as the operator marks
/// the unsupported histogram trim operators.
fn binary_op(k: &Kind) -> Option<(Option<BinaryOp>, u8, bool)> {
    let Kind::Op(op) = k else { return None };
    let r = match op {
        Op::Lor => (Some(BinaryOp::Or), 1, false),
        Op::Land => (Some(BinaryOp::And), 2, false),
        Op::Lunless => (Some(BinaryOp::Unless), 2, false),
        Op::Eqlc => (Some(BinaryOp::Eq), 3, false),
        Op::Neq => (Some(BinaryOp::Ne), 3, false),
        Op::Gtr => (Some(BinaryOp::Gt), 3, false),
        Op::Lss => (Some(BinaryOp::Lt), 3, false),
        Op::Gte => (Some(BinaryOp::Ge), 3, false),
        Op::Lte => (Some(BinaryOp::Le), 3, false),
        Op::TrimUpper | Op::TrimLower => (None, 3, false),
        Op::Add => (Some(BinaryOp::Add), 4, false),
        Op::Sub => (Some(BinaryOp::Sub), 4, false),
        Op::Mul => (Some(BinaryOp::Mul), 5, false),
        Op::Div => (Some(BinaryOp::Div), 5, false),
        Op::Mod => (Some(BinaryOp::Mod), 5, false),
        Op::Atan2 => (Some(BinaryOp::Atan2), 5, false),
        Op::Pow => (Some(BinaryOp::Pow), PREC_POW, true),
        Op::At => return None,
    };
    Some(r)
}

/// Keywords that Prometheus accepts as metric names (its `metric_identifier` rule).
fn is_metric_keyword(k: Kw) -> bool {
    !matches!(
        k,
        Kw::Bool | Kw::On | Kw::Ignoring | Kw::GroupLeft | Kw::GroupRight
    )
}

/// Tokens accepted as label names in grouping lists (Prometheus's `maybe_label` rule).
fn is_label_word(k: &Kind) -> bool {
    match k {
        Kind::Ident | Kind::MetricIdent | Kind::Aggr(_) => true,
        Kind::Op(op) => matches!(op, Op::Land | Op::Lor | Op::Lunless | Op::Atan2),
        Kind::Kw(kw) => *kw != Kw::Without,
        _ => false,
    }
}
