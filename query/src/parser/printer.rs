//! Canonical PromQL printing (`impl Display for Expr`), in the form of Prometheus's `String()`:
//! `sum by (job) (rate(x{a="b"}[5m] offset 1m))`. Parsing the printed text yields the same tree.

use std::fmt::{self, Write as _};

use eddy_storage::Matcher;

use crate::ast::{
    AggregateExpr, AtModifier, BinaryExpr, BinaryOp, Cardinality, Expr, MatrixSelector, Subquery,
    VectorSelector,
};

use super::literals::{format_duration, go_quote, go_quote_bytes};

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(v) => write_number(f, *v),
            Expr::String(s) => f.write_str(&go_quote(s)),
            Expr::ByteString(b) => f.write_str(&go_quote_bytes(b)),
            Expr::VectorSelector(vs) => {
                write_selector(f, vs)?;
                write_at_offset(f, vs.at, vs.offset)
            }
            Expr::MatrixSelector(m) => write_matrix(f, m),
            Expr::Subquery(sq) => write_subquery(f, sq),
            Expr::Unary(op, inner) => write!(f, "{op}{inner}"),
            Expr::Binary(b) => write_binary(f, b),
            Expr::Aggregate(a) => write_aggregate(f, a),
            Expr::Call(c) => {
                write!(f, "{}(", c.func)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(')')
            }
            Expr::Paren(inner) => write!(f, "({inner})"),
        }
    }
}

/// Go's `FormatFloat(v, 'f', -1, 64)`: shortest exact digits, no exponent, `+Inf`/`-Inf`/`NaN`.
fn write_number(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str("NaN")
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        write!(f, "{v}")
    }
}

/// True for names that need no quoting: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_legacy_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn write_label_name(out: &mut String, name: &str) {
    if is_legacy_label_name(name) {
        out.push_str(name);
    } else {
        out.push_str(&go_quote(name));
    }
}

fn matcher_string(m: &Matcher) -> String {
    let mut s = String::new();
    write_label_name(&mut s, &m.name);
    s.push_str(m.op.as_str());
    s.push_str(&go_quote(&m.value));
    s
}

/// `name{a="b",c="d"}` without modifiers; matchers sorted as strings, the name matcher implied.
fn write_selector(f: &mut fmt::Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    let name = vs.name.as_deref().unwrap_or("");
    let mut parts: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name == "__name__"
                && m.op == eddy_storage::MatchOp::Equal
                && m.value == name
                && !name.is_empty())
        })
        .map(matcher_string)
        .collect();
    parts.sort();
    f.write_str(name)?;
    if !parts.is_empty() || name.is_empty() {
        write!(f, "{{{}}}", parts.join(","))?;
    }
    Ok(())
}

fn write_at_offset(f: &mut fmt::Formatter<'_>, at: Option<AtModifier>, offset: i64) -> fmt::Result {
    match at {
        Some(AtModifier::Timestamp(ms)) => write!(f, " @ {:.3}", ms as f64 / 1000.0)?,
        Some(AtModifier::Start) => f.write_str(" @ start()")?,
        Some(AtModifier::End) => f.write_str(" @ end()")?,
        None => {}
    }
    if offset != 0 {
        write!(f, " offset {}", format_duration(offset))?;
    }
    Ok(())
}

fn write_matrix(f: &mut fmt::Formatter<'_>, m: &MatrixSelector) -> fmt::Result {
    write_selector(f, &m.selector)?;
    write!(f, "[{}]", format_duration(m.range))?;
    write_at_offset(f, m.selector.at, m.selector.offset)
}

fn write_subquery(f: &mut fmt::Formatter<'_>, sq: &Subquery) -> fmt::Result {
    write!(f, "{}[{}:", sq.expr, format_duration(sq.range))?;
    if let Some(step) = sq.step {
        f.write_str(&format_duration(step))?;
    }
    f.write_char(']')?;
    write_at_offset(f, sq.at, sq.offset)
}

fn label_list(labels: &[String]) -> String {
    let mut s = String::new();
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        write_label_name(&mut s, l);
    }
    s
}

fn write_binary(f: &mut fmt::Formatter<'_>, b: &BinaryExpr) -> fmt::Result {
    match (&*b.lhs, b.op) {
        // `+Inf ^ x` would read back as `+(Inf ^ x)`: unary operators bind looser than `^`.
        (Expr::Number(v), BinaryOp::Pow) if *v == f64::INFINITY => f.write_str("Inf")?,
        (lhs, _) => write!(f, "{lhs}")?,
    }
    write!(f, " {}", b.op.as_str())?;
    if b.return_bool {
        f.write_str(" bool")?;
    }
    if let Some(vm) = &b.matching {
        let grouped = matches!(vm.card, Cardinality::ManyToOne | Cardinality::OneToMany);
        if !vm.labels.is_empty() || vm.on || grouped {
            let tag = if vm.on { "on" } else { "ignoring" };
            write!(f, " {tag} ({})", label_list(&vm.labels))?;
        }
        if grouped {
            let side = if vm.card == Cardinality::ManyToOne {
                "left"
            } else {
                "right"
            };
            write!(f, " group_{side} ({})", label_list(&vm.include))?;
        }
    }
    write!(f, " {}", b.rhs)
}

fn write_aggregate(f: &mut fmt::Formatter<'_>, a: &AggregateExpr) -> fmt::Result {
    f.write_str(a.op.as_str())?;
    if a.without {
        write!(f, " without ({}) ", label_list(&a.grouping))?;
    } else if !a.grouping.is_empty() {
        write!(f, " by ({}) ", label_list(&a.grouping))?;
    }
    f.write_char('(')?;
    if let Some(p) = &a.param {
        write!(f, "{p}, ")?;
    }
    write!(f, "{})", a.expr)
}
