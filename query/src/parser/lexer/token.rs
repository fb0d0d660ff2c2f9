//! Token kinds of the PromQL lexer and the reserved-word tables.

use crate::ast::AggregateOp;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A name without `:` (may still be a function name or label name).
    Ident,
    /// A name containing `:` (only valid as a metric name).
    MetricIdent,
    /// A number literal, including `Inf` and `NaN`.
    Number,
    /// A duration literal such as `5m` or `1h30m`.
    Duration,
    /// A quoted string, quotes included in the token text.
    Str,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    /// `=` (label matching only).
    Eql,
    /// `=~`
    EqlRegex,
    /// `!~`
    NeqRegex,
    /// Binary operators, `@`, and the word operators `and or unless atan2`.
    Op(Op),
    /// Aggregation operators (`sum`, `topk`…).
    Aggr(AggregateOp),
    /// Other reserved words.
    Kw(Kw),
    /// End of input.
    Eof,
    /// A lexing error with Prometheus's message.
    Error(String),
}

/// Operator tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eqlc,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    /// `</` (experimental native-histogram trimming).
    TrimUpper,
    /// `>/` (experimental native-histogram trimming).
    TrimLower,
    Land,
    Lor,
    Lunless,
    Atan2,
    At,
}

/// Keywords (besides operators and aggregators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    Bool,
    By,
    GroupLeft,
    GroupRight,
    Fill,
    FillLeft,
    FillRight,
    Ignoring,
    Offset,
    Smoothed,
    Anchored,
    On,
    Without,
    Start,
    End,
    Step,
    Range,
    MaxOf,
    MinOf,
}

impl Kw {
    /// Prometheus lists `start end step range max_of min_of` as "preprocessors", which it
    /// describes in messages as quoted words rather than `<keyword>`.
    pub(crate) fn is_preprocessor(self) -> bool {
        matches!(
            self,
            Kw::Start | Kw::End | Kw::Step | Kw::Range | Kw::MaxOf | Kw::MinOf
        )
    }
}

/// One token: its kind and byte range in the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Looks up a reserved word (case-insensitive, as Prometheus does).
pub(super) fn keyword(word: &str) -> Option<Kind> {
    let lower = word.to_ascii_lowercase();
    let k = match lower.as_str() {
        "and" => Kind::Op(Op::Land),
        "or" => Kind::Op(Op::Lor),
        "unless" => Kind::Op(Op::Lunless),
        "atan2" => Kind::Op(Op::Atan2),
        "sum" => Kind::Aggr(AggregateOp::Sum),
        "avg" => Kind::Aggr(AggregateOp::Avg),
        "count" => Kind::Aggr(AggregateOp::Count),
        "min" => Kind::Aggr(AggregateOp::Min),
        "max" => Kind::Aggr(AggregateOp::Max),
        "group" => Kind::Aggr(AggregateOp::Group),
        "stddev" => Kind::Aggr(AggregateOp::Stddev),
        "stdvar" => Kind::Aggr(AggregateOp::Stdvar),
        "topk" => Kind::Aggr(AggregateOp::Topk),
        "bottomk" => Kind::Aggr(AggregateOp::Bottomk),
        "count_values" => Kind::Aggr(AggregateOp::CountValues),
        "quantile" => Kind::Aggr(AggregateOp::Quantile),
        "limitk" => Kind::Aggr(AggregateOp::Limitk),
        "limit_ratio" => Kind::Aggr(AggregateOp::LimitRatio),
        "offset" => Kind::Kw(Kw::Offset),
        "smoothed" => Kind::Kw(Kw::Smoothed),
        "anchored" => Kind::Kw(Kw::Anchored),
        "by" => Kind::Kw(Kw::By),
        "without" => Kind::Kw(Kw::Without),
        "on" => Kind::Kw(Kw::On),
        "ignoring" => Kind::Kw(Kw::Ignoring),
        "group_left" => Kind::Kw(Kw::GroupLeft),
        "group_right" => Kind::Kw(Kw::GroupRight),
        "fill" => Kind::Kw(Kw::Fill),
        "fill_left" => Kind::Kw(Kw::FillLeft),
        "fill_right" => Kind::Kw(Kw::FillRight),
        "bool" => Kind::Kw(Kw::Bool),
        "start" => Kind::Kw(Kw::Start),
        "end" => Kind::Kw(Kw::End),
        "step" => Kind::Kw(Kw::Step),
        "range" => Kind::Kw(Kw::Range),
        "max_of" => Kind::Kw(Kw::MaxOf),
        "min_of" => Kind::Kw(Kw::MinOf),
        "inf" | "nan" => Kind::Number,
        _ => return None,
    };
    Some(k)
}

/// The duration keywords that may appear inside `[…]`.
pub(super) fn duration_keyword(word: &str) -> Option<Kind> {
    match word.to_ascii_lowercase().as_str() {
        "step" => Some(Kind::Kw(Kw::Step)),
        "range" => Some(Kind::Kw(Kw::Range)),
        "max_of" => Some(Kind::Kw(Kw::MaxOf)),
        "min_of" => Some(Kind::Kw(Kw::MinOf)),
        _ => None,
    }
}
