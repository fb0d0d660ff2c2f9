//! The PromQL abstract syntax tree, shared by the parser and the evaluator.
//!
//! Durations and timestamps are integer milliseconds. The tree holds no storage state.

use std::fmt;

use eddy_storage::labels::MatchOp;
use eddy_storage::Matcher;

/// The type an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A single float.
    Scalar,
    /// An instant vector.
    Vector,
    /// A range vector (matrix).
    Matrix,
    /// A string.
    String,
}

impl ValueType {
    /// The name Prometheus uses in messages and in `resultType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
            ValueType::String => "string",
        }
    }

    /// The name used in type-check errors ("instant vector", "range vector"…).
    pub fn describe(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

/// A PromQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `1`, `1.5e3`, `Inf`, `NaN`, `0x1f`, and durations used as numbers (`5m` → 300).
    Number(f64),
    /// `"text"` or `'text'` or `` `raw` ``, unescaped.
    String(String),
    /// A string literal whose `\xNN` or octal escapes make it invalid UTF-8 (`"a\xc5z"`), kept
    /// as its bytes. Go strings hold any bytes, so Prometheus parses these and rejects them only
    /// where the string must be a label name (`count_values`, `label_replace`, `label_join`) at
    /// evaluation. A literal that is valid UTF-8 is always [`Expr::String`].
    ByteString(Vec<u8>),
    /// `metric{label="value"} offset 5m @ 123`.
    VectorSelector(VectorSelector),
    /// `metric{...}[5m]`.
    MatrixSelector(MatrixSelector),
    /// `expr[range:step]`.
    Subquery(Subquery),
    /// `-expr` / `+expr`.
    Unary(UnaryOp, Box<Expr>),
    /// `lhs op rhs` with modifiers.
    Binary(BinaryExpr),
    /// `sum by (x) (expr)` and friends.
    Aggregate(AggregateExpr),
    /// `func(args…)`.
    Call(Call),
    /// `(expr)`.
    Paren(Box<Expr>),
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Pos,
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AtModifier {
    /// `@ <unix seconds>`, stored as ms.
    Timestamp(i64),
    /// `@ start()`
    Start,
    /// `@ end()`
    End,
}

/// An instant vector selector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any (also present as a `__name__` matcher).
    pub name: Option<String>,
    /// All matchers, including `__name__="name"` when a name was written.
    pub matchers: Vec<Matcher>,
    /// `offset` in ms (may be negative).
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
}

impl VectorSelector {
    /// The metric name every selected series has: the value of a `__name__="…"` matcher (the
    /// first, if a selector has two; series must match both anyway).
    pub fn fixed_metric_name(&self) -> Option<&str> {
        self.matchers
            .iter()
            .find(|m| m.name == eddy_storage::labels::METRIC_NAME && m.op == MatchOp::Equal)
            .map(|m| m.value.as_str())
    }
}

/// A range vector selector.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSelector {
    /// The selector (its offset and `@` apply).
    pub selector: VectorSelector,
    /// Range in ms.
    pub range: i64,
}

/// A subquery `expr[range:step] offset … @ …`.
#[derive(Debug, Clone, PartialEq)]
pub struct Subquery {
    /// The inner expression.
    pub expr: Box<Expr>,
    /// Range in ms.
    pub range: i64,
    /// Step in ms; `None` means the engine's default evaluation interval.
    pub step: Option<i64>,
    /// `offset` in ms.
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinaryOp {
    /// True for `== != > < >= <=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Gt | BinaryOp::Lt | BinaryOp::Ge | BinaryOp::Le
        )
    }

    /// True for `and or unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Lt => "<",
            BinaryOp::Ge => ">=",
            BinaryOp::Le => "<=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }
}

/// Vector matching cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// Default for arithmetic and comparison.
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// `on(…)` / `ignoring(…)` and `group_left(…)` / `group_right(…)`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Cardinality,
    /// True for `on(labels)`, false for `ignoring(labels)` (or no clause).
    pub on: bool,
    /// The `on`/`ignoring` label list.
    pub labels: Vec<String>,
    /// Extra labels listed in `group_left(…)` / `group_right(…)`.
    pub include: Vec<String>,
}

/// A binary expression.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    /// Operator.
    pub op: BinaryOp,
    /// Left operand.
    pub lhs: Box<Expr>,
    /// Right operand.
    pub rhs: Box<Expr>,
    /// `bool` modifier on a comparison.
    pub return_bool: bool,
    /// Matching clause; `None` when neither side is a vector or no clause was written
    /// (the evaluator then uses one-to-one, or many-to-many for set operators).
    pub matching: Option<VectorMatching>,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `count_values`
    CountValues,
    /// `quantile`
    Quantile,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

impl AggregateOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Quantile => "quantile",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// True for operators that take a parameter before the expression.
    pub fn takes_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::CountValues
                | AggregateOp::Quantile
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }
}

/// An aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateExpr {
    /// Operator.
    pub op: AggregateOp,
    /// The aggregated expression.
    pub expr: Box<Expr>,
    /// Parameter (`k`, `φ`, label name for `count_values`).
    pub param: Option<Box<Expr>>,
    /// `by (…)` or `without (…)` labels.
    pub grouping: Vec<String>,
    /// True for `without`.
    pub without: bool,
}

/// A function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Function name as in Prometheus's function list.
    pub func: String,
    /// Arguments.
    pub args: Vec<Expr>,
}

impl Expr {
    /// Strips any number of enclosing parentheses.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let Expr::Paren(inner) = e {
            e = inner;
        }
        e
    }
}

impl fmt::Display for UnaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnaryOp::Neg => "-",
            UnaryOp::Pos => "+",
        })
    }
}
