//! Projected reads: which selector may ask storage for only the labels an aggregation keeps
//! ([`Querier::select_lazy_projected`](eddy_storage::Querier::select_lazy_projected)).
//!
//! `max by (job) (x > 0)` needs one label of each of `x`'s series, but a full read builds
//! every label (two strings each) and the aggregation drops them again: about a third of
//! such a query's instructions. A selector is read projected only when every node between
//! it and the aggregation is known not to look at labels beyond the kept ones and never
//! compares label sets: then the answer, its annotations and its errors are those of the
//! full read. The shapes, checked on the syntax tree before the aggregation's argument is
//! evaluated:
//!
//! - the aggregation is `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`, `stdvar` or
//!   `quantile`, grouped `by (…)` (or not grouped): its output holds only the grouping
//!   labels. Not `without` (it keeps labels not named), not `topk`/`bottomk`/`limitk`/
//!   `limit_ratio` (they return input series) nor `count_values`;
//! - between it and the selector only parentheses, unary `-`/`+`, a binary operator (not
//!   `and`/`or`/`unless`) whose other side is a scalar expression, a label-keeping instant
//!   function ([`functions::keeps_labels`]) with scalar parameters, or a range function over
//!   a matrix selector ([`functions::range_function_keeps_labels`]) with scalar parameters.
//!   These work on each series in place, by position: two series whose kept labels are equal
//!   stay two series until the aggregation groups them, as the full read's series would.
//!
//! Anything else (vector/vector operators, `label_replace`, `absent`, `sort`, subqueries,
//! `timestamp`, date functions…) reads in full. `__name__` is kept when the aggregation
//! groups by it, or when a range function on the way reads it: `rate` and `increase` note
//! "metric might not be a counter" by metric name, unless the selector fixes the name with
//! `__name__="…"` (as `metric{…}` does), which the note then takes instead. Other nodes never
//! read it (they only set the flag that drops it at the end).
//!
//! The selector is found by its address in the syntax tree, which the evaluation borrows
//! throughout; the evaluator holds the plan only while the aggregation's argument is
//! evaluated.

use eddy_storage::labels::METRIC_NAME;
use eddy_storage::Projection;

use crate::ast::{AggregateExpr, AggregateOp, Expr, ValueType, VectorSelector};
use crate::functions;

use super::value_type;

/// A selector that may be read projected, and the labels to keep.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// The selector's address (of the [`VectorSelector`] itself, inside a matrix selector
    /// for range functions).
    selector: usize,
    pub(crate) keep: Projection,
}

impl Planned {
    /// True when this plan is for `vs`.
    pub(crate) fn is_for(&self, vs: &VectorSelector) -> bool {
        self.selector == address(vs)
    }
}

fn address(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// The selector under aggregation `a` that may be read projected, if there is one.
pub(crate) fn plan(a: &AggregateExpr) -> Option<Planned> {
    let groups_by = matches!(
        a.op,
        AggregateOp::Sum
            | AggregateOp::Avg
            | AggregateOp::Count
            | AggregateOp::Min
            | AggregateOp::Max
            | AggregateOp::Group
            | AggregateOp::Stddev
            | AggregateOp::Stdvar
            | AggregateOp::Quantile
    );
    if !groups_by || a.without {
        return None;
    }
    let mut needs_name = false;
    let vs = selector_on_path(&a.expr, &mut needs_name)?;
    let names = a.grouping.iter().map(String::as_str);
    let keep = if needs_name {
        Projection::new(names.chain([METRIC_NAME]))
    } else {
        Projection::new(names)
    };
    Some(Planned {
        selector: address(vs),
        keep,
    })
}

/// The selector `e` reaches through label-keeping nodes only (see the module doc); sets
/// `needs_name` when a node on the way reads the metric name.
fn selector_on_path<'e>(e: &'e Expr, needs_name: &mut bool) -> Option<&'e VectorSelector> {
    match e {
        Expr::Paren(inner) | Expr::Unary(_, inner) => selector_on_path(inner, needs_name),
        Expr::VectorSelector(vs) => Some(vs),
        Expr::Binary(b) if !b.op.is_set() => match (value_type(&b.lhs), value_type(&b.rhs)) {
            (ValueType::Vector, ValueType::Scalar) => selector_on_path(&b.lhs, needs_name),
            (ValueType::Scalar, ValueType::Vector) => selector_on_path(&b.rhs, needs_name),
            _ => None,
        },
        Expr::Call(c) => {
            let name = c.func.as_str();
            let (vector_arg, ty) = if functions::range_function_keeps_labels(name) {
                (
                    functions::range_function_matrix_arg(name),
                    ValueType::Matrix,
                )
            } else if functions::keeps_labels(name) {
                (0, ValueType::Vector)
            } else {
                return None;
            };
            let scalar_params = c
                .args
                .iter()
                .enumerate()
                .all(|(i, a)| i == vector_arg || value_type(a) == ValueType::Scalar);
            let arg = c.args.get(vector_arg)?;
            if !scalar_params || value_type(arg) != ty {
                return None;
            }
            match (ty, arg.unparen()) {
                (ValueType::Matrix, Expr::MatrixSelector(ms)) => {
                    // The note names the metric; a selector that fixes the name tells it.
                    *needs_name |= functions::range_function_reads_name(name)
                        && ms.selector.fixed_metric_name().is_none();
                    Some(&ms.selector)
                }
                (ValueType::Vector, inner) => selector_on_path(inner, needs_name),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
