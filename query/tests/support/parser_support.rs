//! Helpers shared by the parser tests: tree normalisation for round-trip comparisons and the
//! extraction of queries from Prometheus's test files.

#![allow(dead_code)]

use eddy_query::ast::Expr;

/// Sorts each selector's matchers after the implied name matcher, since the printer writes them
/// sorted (as Prometheus does) and order does not change what a selector selects.
pub(crate) fn normalize(e: &Expr) -> Expr {
    let mut e = e.clone();
    normalize_in_place(&mut e);
    e
}

fn sort_matchers(vs: &mut eddy_query::ast::VectorSelector) {
    let skip = usize::from(vs.name.is_some());
    vs.matchers[skip..].sort_by(|a, b| {
        (&a.name, a.op.as_str(), &a.value).cmp(&(&b.name, b.op.as_str(), &b.value))
    });
}

fn normalize_in_place(e: &mut Expr) {
    match e {
        Expr::VectorSelector(vs) => sort_matchers(vs),
        Expr::MatrixSelector(m) => sort_matchers(&mut m.selector),
        Expr::Subquery(sq) => normalize_in_place(&mut sq.expr),
        Expr::Unary(_, inner) | Expr::Paren(inner) => normalize_in_place(inner),
        Expr::Binary(b) => {
            normalize_in_place(&mut b.lhs);
            normalize_in_place(&mut b.rhs);
        }
        Expr::Aggregate(a) => {
            normalize_in_place(&mut a.expr);
            if let Some(p) = &mut a.param {
                normalize_in_place(p);
            }
        }
        Expr::Call(c) => c.args.iter_mut().for_each(normalize_in_place),
        Expr::Number(_) | Expr::String(_) | Expr::ByteString(_) => {}
    }
}

/// Equality that treats NaN literals as equal and ignores matcher order.
pub(crate) fn same_tree(a: &Expr, b: &Expr) -> bool {
    format!("{:?}", normalize(a)) == format!("{:?}", normalize(b))
}
