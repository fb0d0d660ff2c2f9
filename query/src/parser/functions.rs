//! Prometheus's function table: each function's argument types, optional trailing arguments and
//! return type, as in Prometheus's `promql/parser/functions.go` (main branch, 2026), plus
//! `holt_winters` from 2.x (renamed `double_exponential_smoothing` in 3.0).

use crate::ast::ValueType;

/// The signature of a PromQL function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionDef {
    /// Name as written in queries.
    pub name: &'static str,
    /// Argument types. With `variadic != 0` the last type repeats for the optional arguments.
    pub arg_types: &'static [ValueType],
    /// 0: exactly `arg_types.len()` arguments; -1: the last argument may repeat without limit
    /// (and may be absent); n > 0: up to n optional trailing arguments of the last type (the last
    /// listed argument itself being optional).
    pub variadic: i32,
    /// Result type.
    pub return_type: ValueType,
    /// Behind `--enable-feature=promql-experimental-functions` in Prometheus.
    pub experimental: bool,
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

const fn f(
    name: &'static str,
    arg_types: &'static [ValueType],
    return_type: ValueType,
) -> FunctionDef {
    FunctionDef {
        name,
        arg_types,
        variadic: 0,
        return_type,
        experimental: false,
    }
}

const fn var(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: i32,
    return_type: ValueType,
) -> FunctionDef {
    FunctionDef {
        name,
        arg_types,
        variadic,
        return_type,
        experimental: false,
    }
}

const fn exp(def: FunctionDef) -> FunctionDef {
    FunctionDef {
        experimental: true,
        ..def
    }
}

/// All functions, sorted by name (looked up by binary search).
static FUNCTIONS: &[FunctionDef] = &[
    f("abs", &[V], V),
    f("absent", &[V], V),
    f("absent_over_time", &[M], V),
    f("acos", &[V], V),
    f("acosh", &[V], V),
    f("asin", &[V], V),
    f("asinh", &[V], V),
    f("atan", &[V], V),
    f("atanh", &[V], V),
    f("avg_over_time", &[M], V),
    f("ceil", &[V], V),
    f("changes", &[M], V),
    f("clamp", &[V, S, S], V),
    f("clamp_max", &[V, S], V),
    f("clamp_min", &[V, S], V),
    f("cos", &[V], V),
    f("cosh", &[V], V),
    f("count_over_time", &[M], V),
    var("day_of_month", &[V], 1, V),
    var("day_of_week", &[V], 1, V),
    var("day_of_year", &[V], 1, V),
    var("days_in_month", &[V], 1, V),
    f("deg", &[V], V),
    f("delta", &[M], V),
    f("deriv", &[M], V),
    exp(f("double_exponential_smoothing", &[M, S, S], V)),
    exp(f("end", &[], S)),
    f("exp", &[V], V),
    f("first_over_time", &[M], V),
    f("floor", &[V], V),
    f("histogram_avg", &[V], V),
    f("histogram_count", &[V], V),
    f("histogram_fraction", &[S, S, V], V),
    f("histogram_quantile", &[S, V], V),
    exp(var("histogram_quantiles", &[V, Str, S, S], 9, V)),
    f("histogram_stddev", &[V], V),
    f("histogram_stdvar", &[V], V),
    f("histogram_sum", &[V], V),
    f("holt_winters", &[M, S, S], V),
    var("hour", &[V], 1, V),
    f("idelta", &[M], V),
    f("increase", &[M], V),
    exp(var("info", &[V, V], 1, V)),
    f("irate", &[M], V),
    var("label_join", &[V, Str, Str, Str], -1, V),
    f("label_replace", &[V, Str, Str, Str, Str], V),
    f("last_over_time", &[M], V),
    f("ln", &[V], V),
    f("log10", &[V], V),
    f("log2", &[V], V),
    exp(f("mad_over_time", &[M], V)),
    exp(f("max_of", &[S, S], S)),
    f("max_over_time", &[M], V),
    exp(f("min_of", &[S, S], S)),
    f("min_over_time", &[M], V),
    var("minute", &[V], 1, V),
    var("month", &[V], 1, V),
    f("pi", &[], S),
    f("predict_linear", &[M, S], V),
    f("present_over_time", &[M], V),
    f("quantile_over_time", &[S, M], V),
    f("rad", &[V], V),
    exp(f("range", &[], S)),
    f("rate", &[M], V),
    f("resets", &[M], V),
    var("round", &[V, S], 1, V),
    f("scalar", &[V], S),
    f("sgn", &[V], V),
    f("sin", &[V], V),
    f("sinh", &[V], V),
    f("sort", &[V], V),
    exp(var("sort_by_label", &[V, Str], -1, V)),
    exp(var("sort_by_label_desc", &[V, Str], -1, V)),
    f("sort_desc", &[V], V),
    f("sqrt", &[V], V),
    exp(f("start", &[], S)),
    exp(f("start_timestamp", &[V], V)),
    f("stddev_over_time", &[M], V),
    f("stdvar_over_time", &[M], V),
    exp(f("step", &[], S)),
    f("sum_over_time", &[M], V),
    f("tan", &[V], V),
    f("tanh", &[V], V),
    f("time", &[], S),
    f("timestamp", &[V], V),
    exp(f("ts_of_first_over_time", &[M], V)),
    exp(f("ts_of_last_over_time", &[M], V)),
    exp(f("ts_of_max_over_time", &[M], V)),
    exp(f("ts_of_min_over_time", &[M], V)),
    f("vector", &[S], V),
    var("year", &[V], 1, V),
];

/// Looks up a function by its exact (case-sensitive) name.
pub fn function(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS
        .binary_search_by(|d| d.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

/// Every known function, sorted by name.
pub fn all_functions() -> &'static [FunctionDef] {
    FUNCTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn lookups() {
        let rate = function("rate").expect("rate exists");
        assert_eq!(rate.arg_types, &[ValueType::Matrix]);
        assert_eq!(rate.return_type, ValueType::Vector);
        assert_eq!(function("label_join").map(|d| d.variadic), Some(-1));
        assert_eq!(function("round").map(|d| d.variadic), Some(1));
        assert!(function("RATE").is_none());
        assert!(function("info").is_some_and(|d| d.experimental));
    }
}
