//! Static typing: the type of each expression and Prometheus's type rules for binary
//! operators, function calls and aggregations, with Prometheus's messages.

use crate::ast::{
    AggregateOp, BinaryExpr, BinaryOp, Call, Cardinality, Expr, ValueType, VectorMatching,
};

use super::functions::{function, FunctionDef};
use super::grammar::{Node, PResult, Parser, Spanned};
use super::literals::go_quote;
use super::ParseError;

/// The static type of an expression, as Prometheus's `Type()`.
pub fn expr_type(e: &Expr) -> ValueType {
    match e {
        Expr::Number(_) => ValueType::Scalar,
        Expr::String(_) | Expr::ByteString(_) => ValueType::String,
        Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
        Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
        Expr::Unary(_, inner) | Expr::Paren(inner) => expr_type(inner),
        Expr::Binary(b) => {
            if expr_type(&b.lhs) == ValueType::Scalar && expr_type(&b.rhs) == ValueType::Scalar {
                ValueType::Scalar
            } else {
                ValueType::Vector
            }
        }
        // Unknown functions cannot come out of the parser; treat a hand-built one as a vector.
        Expr::Call(c) => function(&c.func).map_or(ValueType::Vector, |f| f.return_type),
    }
}

/// The modifiers written after a binary operator.
#[derive(Debug)]
pub(super) struct BinModifiers {
    pub(super) return_bool: bool,
    pub(super) on: bool,
    pub(super) labels: Vec<String>,
    pub(super) include: Vec<String>,
    pub(super) card: Cardinality,
}

impl Default for BinModifiers {
    fn default() -> Self {
        BinModifiers {
            return_bool: false,
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
            card: Cardinality::OneToOne,
        }
    }
}

impl Parser<'_> {
    /// Builds `lhs op rhs` and applies Prometheus's checks; `op_pos` is the operator's offset.
    pub(super) fn build_binary(
        &mut self,
        op: BinaryOp,
        lhs: Node,
        rhs: Node,
        m: BinModifiers,
        op_pos: usize,
    ) -> Node {
        let lt = expr_type(&lhs.expr);
        let rt = expr_type(&rhs.expr);
        let (scalar, vector) = (ValueType::Scalar, ValueType::Vector);
        if m.return_bool && !op.is_comparison() {
            self.defer(
                op_pos,
                "bool modifier can only be used on comparison operators",
            );
        }
        if op.is_comparison() && !m.return_bool && lt == scalar && rt == scalar {
            self.defer(op_pos, "comparisons between scalars must use BOOL modifier");
        }
        let mut card = m.card;
        if op.is_set() && card == Cardinality::OneToOne {
            card = Cardinality::ManyToMany;
        }
        if m.on {
            if let Some(l) = m.labels.iter().find(|l| m.include.contains(l)) {
                self.defer(
                    op_pos,
                    format!(
                        "label {} must not occur in ON and GROUP clause at once",
                        go_quote(l)
                    ),
                );
            }
        }
        if lt != scalar && lt != vector {
            self.defer(
                lhs.start,
                "binary expression must contain only scalar and instant vector types",
            );
        }
        if rt != scalar && rt != vector {
            self.defer(
                rhs.start,
                "binary expression must contain only scalar and instant vector types",
            );
        }
        let matching = if lt != vector || rt != vector {
            if !m.labels.is_empty() {
                self.defer(
                    lhs.start,
                    "vector matching only allowed between instant vectors",
                );
            }
            None
        } else {
            if op.is_set() && matches!(card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                self.defer(
                    lhs.start,
                    format!(
                        "no grouping allowed for {} operation",
                        go_quote(op.as_str())
                    ),
                );
            }
            Some(VectorMatching {
                card,
                on: m.on,
                labels: m.labels,
                include: m.include,
            })
        };
        if (lt == scalar || rt == scalar) && op.is_set() {
            self.defer(
                lhs.start,
                format!(
                    "set operator {} not allowed in binary scalar expression",
                    go_quote(op.as_str())
                ),
            );
        }
        Box::new(Spanned {
            expr: Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs.expr),
                rhs: Box::new(rhs.expr),
                return_bool: m.return_bool,
                matching,
            }),
            start: lhs.start,
        })
    }

    /// Builds a call, checking the name and the argument count (argument types were checked as
    /// the arguments were parsed). `had_deferred` says whether a type error was already pending
    /// before the arguments: if not, this call's own errors take precedence over those found
    /// inside its arguments, as in Prometheus's checker.
    pub(super) fn build_call(
        &mut self,
        name: &str,
        start: usize,
        args: Vec<Node>,
        had_deferred: bool,
    ) -> PResult<Node> {
        let Some(def) = function(name) else {
            return Err(self.err(
                start,
                format!("unknown function with name {}", go_quote(name)),
            ));
        };
        if let Some(own) = self.call_shape_error(def, start, &args) {
            if !had_deferred {
                self.deferred = Some(own);
            }
        }
        let call = Call {
            func: def.name.to_string(),
            args: args.into_iter().map(|a| a.expr).collect(),
        };
        Ok(Box::new(Spanned {
            expr: Expr::Call(call),
            start,
        }))
    }

    /// The argument-count error of a call, else `info()`'s label-filter error.
    fn call_shape_error(
        &self,
        def: &FunctionDef,
        start: usize,
        args: &[Node],
    ) -> Option<Box<ParseError>> {
        let (nargs, got) = (def.arg_types.len(), args.len());
        let q = go_quote(def.name);
        let min = nargs.saturating_sub(1);
        let max = min + def.variadic.max(0) as usize;
        let count_msg = if def.variadic == 0 && nargs != got {
            Some(format!(
                "expected {nargs} argument(s) in call to {q}, got {got}"
            ))
        } else if def.variadic != 0 && min > got {
            Some(format!(
                "expected at least {min} argument(s) in call to {q}, got {got}"
            ))
        } else if def.variadic > 0 && max < got {
            Some(format!(
                "expected at most {max} argument(s) in call to {q}, got {got}"
            ))
        } else {
            None
        };
        if let Some(msg) = count_msg {
            return Some(self.err(start, msg));
        }
        if def.name != "info" || got < 2 {
            return None;
        }
        let t = expr_type(&args[1].expr);
        if t != ValueType::Vector {
            let msg = format!(
                "expected type instant vector in call to function {q}, got {}",
                t.describe()
            );
            return Some(self.err(start, msg));
        }
        match &args[1].expr {
            Expr::VectorSelector(vs) if vs.name.is_some() => Some(self.err(
                args[1].start,
                "expected label selectors only, got vector selector instead",
            )),
            Expr::VectorSelector(_) => None,
            _ => Some(self.err(args[1].start, "expected label selectors only")),
        }
    }

    /// The type rule for argument `i` of a call to `def`.
    pub(super) fn check_arg_type(&mut self, def: &FunctionDef, i: usize, arg: &Node) {
        let nargs = def.arg_types.len();
        let idx = if i < nargs {
            i
        } else if def.variadic != 0 && nargs > 0 {
            nargs - 1
        } else {
            return;
        };
        let want = def.arg_types[idx];
        let t = expr_type(&arg.expr);
        if t != want {
            let msg = format!(
                "expected type {} in call to function {}, got {}",
                want.describe(),
                go_quote(def.name),
                t.describe()
            );
            self.defer(arg.start, msg);
        }
    }

    /// Type rules of an aggregation: the errors for its expression and for its parameter.
    pub(super) fn check_aggregate(
        &self,
        op: AggregateOp,
        expr: &Node,
        param: Option<&Node>,
    ) -> (Option<Box<ParseError>>, Option<Box<ParseError>>) {
        let t = expr_type(&expr.expr);
        let expr_err = (t != ValueType::Vector).then(|| {
            let msg = format!(
                "expected type instant vector in aggregation expression, got {}",
                t.describe()
            );
            self.err(expr.start, msg)
        });
        let param_err = param.and_then(|param| {
            let want = if op == AggregateOp::CountValues {
                ValueType::String
            } else {
                ValueType::Scalar
            };
            let t = expr_type(&param.expr);
            (t != want).then(|| {
                let msg = format!(
                    "expected type {} in aggregation parameter, got {}",
                    want.describe(),
                    t.describe()
                );
                self.err(param.start, msg)
            })
        });
        (expr_err, param_err)
    }
}
