//! Valid PromQL: each input's canonical printed form, exact ASTs for the tricky cases, and the
//! round trip parse(print(e)) == e over every case.

use eddy_query::ast::{
    AggregateOp, AtModifier, BinaryOp, Cardinality, Expr, MatrixSelector, UnaryOp, ValueType,
    VectorSelector,
};
use eddy_query::parser::{expr_type, function, parse, parse_metric_selector};
use eddy_storage::{MatchOp, Matcher};

#[path = "support/parser_support.rs"]
mod support;
use support::same_tree;

/// (input, canonical form).
const CASES: &[(&str, &str)] = &[
    // Numbers.
    ("1", "1"),
    ("1.5e3", "1500"),
    ("0x1F", "31"),
    ("0X1f", "31"),
    ("010", "8"),
    (".5", "0.5"),
    ("5.", "5"),
    ("1_000", "1000"),
    ("1e-7", "0.0000001"),
    ("Inf", "+Inf"),
    ("+inf", "+Inf"),
    ("-Inf", "-Inf"),
    ("NaN", "NaN"),
    ("nan", "NaN"),
    ("-1", "-1"),
    ("+1", "1"),
    ("- - 1", "1"),
    ("5m", "300"),
    ("1h30m", "5400"),
    ("100ms", "0.1"),
    // Strings.
    (r#""a\nb""#, r#""a\nb""#),
    (r#""tab\tquote\"back\\""#, r#""tab\tquote\"back\\""#),
    ("'single \\' quote'", r#""single ' quote""#),
    ("`raw\\n`", r#""raw\\n""#),
    (r#""\x41\101\u00e9\U0001F600""#, r#""AAé😀""#),
    // Selectors.
    ("foo", "foo"),
    ("foo{}", "foo"),
    ("foo:bar:baz", "foo:bar:baz"),
    (":foo", ":foo"),
    (r#"foo{a="b"}"#, r#"foo{a="b"}"#),
    (
        r#"foo{c!="d", a=~"b.*", e!~"f",}"#,
        r#"foo{a=~"b.*",c!="d",e!~"f"}"#,
    ),
    (r#"foo{a='b'}"#, r#"foo{a="b"}"#),
    (r#"{__name__="foo"}"#, r#"{__name__="foo"}"#),
    (
        r#"{__name__=~"foo|bar", job="x"}"#,
        r#"{__name__=~"foo|bar",job="x"}"#,
    ),
    (r#"{"foo.bar"}"#, r#"{__name__="foo.bar"}"#),
    (
        r#"{"foo.bar", "my.label"="x"}"#,
        r#"{"my.label"="x",__name__="foo.bar"}"#,
    ),
    (
        r#"foo{on="x", offset="y", sum="z"}"#,
        r#"foo{offset="y",on="x",sum="z"}"#,
    ),
    ("sum", "sum"),
    ("SUM", "SUM"),
    ("by", "by"),
    ("offset", "offset"),
    (r#"offset{step="1s"}[5m]"#, r#"offset{step="1s"}[5m]"#),
    ("start", "start"),
    ("fill", "fill"),
    ("fill + fill", "fill + fill"),
    ("foo # a comment", "foo"),
    ("foo{a=\"b\" # comment inside\n}", r#"foo{a="b"}"#),
    // Matrix selectors, subqueries, offset, @.
    ("foo[5m]", "foo[5m]"),
    ("foo[300]", "foo[5m]"),
    ("foo[1.5]", "foo[1s500ms]"),
    ("foo[1.0005]", "foo[1s]"),
    ("foo offset 0.0019", "foo offset 1ms"),
    ("foo[1h30m]", "foo[1h30m]"),
    ("foo[90m]", "foo[1h30m]"),
    ("foo[1d]", "foo[1d]"),
    ("foo[7d]", "foo[1w]"),
    ("foo[1y]", "foo[1y]"),
    ("foo[ 5m ]", "foo[5m]"),
    ("foo[5m+1m]", "foo[6m]"),
    ("foo[2m*(10+5)]", "foo[30m]"),
    ("foo[60*30]", "foo[30m]"),
    ("foo[-5m+10m]", "foo[5m]"),
    ("foo[max_of(1m, 30s)]", "foo[1m]"),
    ("foo[min_of(1m, 30s)]", "foo[30s]"),
    ("foo offset 5m", "foo offset 5m"),
    ("foo OFFSET 1h30m", "foo offset 1h30m"),
    ("foo offset -7m", "foo offset -7m"),
    ("foo offset 1.5", "foo offset 1s500ms"),
    ("foo offset +(5)", "foo offset 5s"),
    ("foo offset -(5)", "foo offset -5s"),
    ("foo offset (1m + 2m)", "foo offset 3m"),
    ("foo offset 5s-8", "foo offset 5s - 8"),
    ("foo offset -1^1", "foo offset -1s ^ 1"),
    ("foo[5m] offset 1w", "foo[5m] offset 1w"),
    ("foo @ 1609746000", "foo @ 1609746000.000"),
    ("foo @ 1609746000.5", "foo @ 1609746000.500"),
    ("foo @ -10", "foo @ -10.000"),
    ("foo @ 5m", "foo @ 300.000"),
    ("foo @ start()", "foo @ start()"),
    ("foo @ end()", "foo @ end()"),
    ("foo offset 5m @ 100", "foo @ 100.000 offset 5m"),
    ("foo @ 100 offset 5m", "foo @ 100.000 offset 5m"),
    ("foo[5m] @ 100 offset 1m", "foo[5m] @ 100.000 offset 1m"),
    ("foo[5m] offset 1m @ end()", "foo[5m] @ end() offset 1m"),
    ("foo offset 0 [5m]", "foo[5m]"),
    ("rate(foo[5m])[30m:1m]", "rate(foo[5m])[30m:1m]"),
    ("rate(foo[5m])[30m:]", "rate(foo[5m])[30m:]"),
    (
        "foo[5m:1m] offset 10m @ 123",
        "foo[5m:1m] @ 123.000 offset 10m",
    ),
    ("foo offset 1m [10m:5s]", "foo offset 1m[10m:5s]"),
    (
        "foo @ 123 offset 1m [10m:5s]",
        "foo @ 123.000 offset 1m[10m:5s]",
    ),
    ("(foo + bar)[5m:] offset 10m", "(foo + bar)[5m:] offset 10m"),
    ("sum(foo)[5m:1m]", "sum(foo)[5m:1m]"),
    (
        "min_over_time(rate(foo[2s])[5m:] offset 4m)[4m:3s]",
        "min_over_time(rate(foo[2s])[5m:] offset 4m)[4m:3s]",
    ),
    // Unary and precedence.
    ("-foo", "-foo"),
    ("+foo", "+foo"),
    ("-2^2", "-2 ^ 2"),
    ("2^3^2", "2 ^ 3 ^ 2"),
    ("2^-1", "2 ^ -1"),
    ("-foo offset 5m", "-foo offset 5m"),
    ("-(foo)", "-(foo)"),
    ("1 + 2 * 3", "1 + 2 * 3"),
    ("(1 + 2) * 3", "(1 + 2) * 3"),
    ("1 - -1", "1 - -1"),
    ("a and b or c unless d", "a and b or c unless d"),
    ("a > bool 1", "a > bool 1"),
    ("1 == bool 1", "1 == bool 1"),
    ("1 != bool 2", "1 != bool 2"),
    ("a atan2 b", "a atan2 b"),
    ("a ATAN2 b", "a atan2 b"),
    ("a AND b", "a and b"),
    ("foo and and", "foo and and"),
    ("a + on(x) group_left(y) b", "a + on (x) group_left (y) b"),
    ("a + on(x) group_left b", "a + on (x) group_left () b"),
    (
        "a * ignoring(x, y) group_right(z) b",
        "a * ignoring (x, y) group_right (z) b",
    ),
    ("a / ignoring(x) b", "a / ignoring (x) b"),
    ("a / ignoring() b", "a / b"),
    ("a / on() b", "a / on () b"),
    ("a and on(x) b", "a and on (x) b"),
    ("a == bool on(x) b", "a == bool on (x) b"),
    ("a + on(\"x.y\", offset) b", "a + on (\"x.y\", offset) b"),
    ("1 + vector(1)", "1 + vector(1)"),
    // Aggregations.
    ("sum(foo)", "sum(foo)"),
    ("sum by (job) (foo)", "sum by (job) (foo)"),
    ("sum(foo) by (job)", "sum by (job) (foo)"),
    ("sum without (a, b) (foo)", "sum without (a, b) (foo)"),
    ("sum(foo) without (a,b,)", "sum without (a, b) (foo)"),
    ("sum without () (foo)", "sum without () (foo)"),
    ("sum by () (foo)", "sum(foo)"),
    ("SUM BY (job) (foo)", "sum by (job) (foo)"),
    (
        "sum by (sum, on, by, group_left, bool) (foo)",
        "sum by (sum, on, by, group_left, bool) (foo)",
    ),
    ("sum by (\"a.b\") (foo)", "sum by (\"a.b\") (foo)"),
    ("sum by (foo:bar) (foo)", "sum by (\"foo:bar\") (foo)"),
    ("avg(foo)", "avg(foo)"),
    ("count(foo)", "count(foo)"),
    ("min(foo)", "min(foo)"),
    ("max(foo)", "max(foo)"),
    ("group(foo)", "group(foo)"),
    ("stddev(foo)", "stddev(foo)"),
    ("stdvar(foo)", "stdvar(foo)"),
    ("topk(5, foo)", "topk(5, foo)"),
    ("bottomk by (a) (5, foo)", "bottomk by (a) (5, foo)"),
    ("quantile(0.9, foo) by (a)", "quantile by (a) (0.9, foo)"),
    ("count_values(\"v\", foo)", "count_values(\"v\", foo)"),
    ("limitk(2, foo)", "limitk(2, foo)"),
    ("limit_ratio(0.5, foo)", "limit_ratio(0.5, foo)"),
    ("topk(scalar(bar), foo)", "topk(scalar(bar), foo)"),
    // Calls.
    ("time()", "time()"),
    ("pi()", "pi()"),
    ("rate(foo[5m])", "rate(foo[5m])"),
    (
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
    ),
    (
        r#"label_replace(up, "a", "$1", "b", "(.*)")"#,
        r#"label_replace(up, "a", "$1", "b", "(.*)")"#,
    ),
    (
        r#"label_join(up, "a", ",", "b", "c", "d")"#,
        r#"label_join(up, "a", ",", "b", "c", "d")"#,
    ),
    (r#"label_join(up, "a", ",")"#, r#"label_join(up, "a", ",")"#),
    ("round(foo)", "round(foo)"),
    ("round(foo, 0.5)", "round(foo, 0.5)"),
    ("hour()", "hour()"),
    ("hour(foo)", "hour(foo)"),
    ("clamp(foo, 0, 1)", "clamp(foo, 0, 1)"),
    (
        "predict_linear(foo[5m], 3600)",
        "predict_linear(foo[5m], 3600)",
    ),
    (
        "quantile_over_time(0.5, foo[5m])",
        "quantile_over_time(0.5, foo[5m])",
    ),
    (
        "holt_winters(foo[5m], 0.5, 0.5)",
        "holt_winters(foo[5m], 0.5, 0.5)",
    ),
    (
        "double_exponential_smoothing(foo[5m], 0.5, 0.5)",
        "double_exponential_smoothing(foo[5m], 0.5, 0.5)",
    ),
    (
        r#"sort_by_label(foo, "a", "b")"#,
        r#"sort_by_label(foo, "a", "b")"#,
    ),
    (r#"info(foo, {job="x"})"#, r#"info(foo, {job="x"})"#),
    (r#"info(foo, {job=~".*"})"#, r#"info(foo, {job=~".*"})"#),
    ("info(foo)", "info(foo)"),
    ("step()", "step()"),
    (
        "absent(nonexistent{job=\"x\"})",
        "absent(nonexistent{job=\"x\"})",
    ),
    ("vector(time())", "vector(time())"),
    ("scalar(foo) * 2", "scalar(foo) * 2"),
    // Whitespace and newlines anywhere.
    (
        "sum by (job)\n  (\n    rate(foo[5m])\n  )",
        "sum by (job) (rate(foo[5m]))",
    ),
    ("\tfoo\r\n+\nbar", "foo + bar"),
    // `+Inf ^ foo` would read back as `+(Inf ^ foo)`; elsewhere Inf prints as Go does.
    ("foo + Inf ^ foo", "foo + Inf ^ foo"),
    ("foo + Inf", "foo + +Inf"),
];

#[test]
fn cases_print_canonically() {
    let mut failures = Vec::new();
    for (input, want) in CASES {
        match parse(input) {
            Ok(e) if e.to_string() == *want => {}
            Ok(e) => failures.push(format!(
                "{input:?}: printed {:?}, want {want:?}",
                e.to_string()
            )),
            Err(err) => failures.push(format!("{input:?}: error {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn printed_form_parses_to_the_same_tree() {
    for (input, _) in CASES {
        let e = parse(input).unwrap_or_else(|err| panic!("{input:?}: {err}"));
        let printed = e.to_string();
        let again =
            parse(&printed).unwrap_or_else(|err| panic!("{input:?} printed as {printed:?}: {err}"));
        assert!(same_tree(&e, &again), "{input:?}: {e:?}\n!=\n{again:?}");
    }
}

fn sel(name: &str) -> VectorSelector {
    VectorSelector {
        name: Some(name.into()),
        matchers: vec![Matcher::equal("__name__", name)],
        offset: 0,
        at: None,
    }
}

fn vs(name: &str) -> Expr {
    Expr::VectorSelector(sel(name))
}

fn num(v: f64) -> Box<Expr> {
    Box::new(Expr::Number(v))
}

fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    let both_vectors = expr_type(&lhs) == ValueType::Vector && expr_type(&rhs) == ValueType::Vector;
    let card = if op.is_set() {
        Cardinality::ManyToMany
    } else {
        Cardinality::OneToOne
    };
    Expr::Binary(eddy_query::ast::BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool: false,
        matching: both_vectors.then(|| eddy_query::ast::VectorMatching {
            card,
            on: false,
            labels: vec![],
            include: vec![],
        }),
    })
}

#[track_caller]
fn check_ast(input: &str, want: Expr) {
    let got = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert_eq!(got, want, "{input:?}");
}

#[test]
fn precedence_and_associativity() {
    check_ast(
        "1 + 2 * 3",
        bin(
            BinaryOp::Add,
            Expr::Number(1.0),
            bin(BinaryOp::Mul, Expr::Number(2.0), Expr::Number(3.0)),
        ),
    );
    check_ast(
        "1 - 2 - 3",
        bin(
            BinaryOp::Sub,
            bin(BinaryOp::Sub, Expr::Number(1.0), Expr::Number(2.0)),
            Expr::Number(3.0),
        ),
    );
    check_ast(
        "2 ^ 3 ^ 2",
        bin(
            BinaryOp::Pow,
            Expr::Number(2.0),
            bin(BinaryOp::Pow, Expr::Number(3.0), Expr::Number(2.0)),
        ),
    );
    // `-2^2` is `-(2^2)`: unary minus binds looser than `^`.
    check_ast(
        "-2^2",
        Expr::Unary(
            UnaryOp::Neg,
            Box::new(bin(BinaryOp::Pow, Expr::Number(2.0), Expr::Number(2.0))),
        ),
    );
    // …but tighter than `*`.
    check_ast(
        "-a * b",
        bin(
            BinaryOp::Mul,
            Expr::Unary(UnaryOp::Neg, Box::new(vs("a"))),
            vs("b"),
        ),
    );
    check_ast(
        "a ^ -b * c",
        bin(
            BinaryOp::Mul,
            bin(
                BinaryOp::Pow,
                vs("a"),
                Expr::Unary(UnaryOp::Neg, Box::new(vs("b"))),
            ),
            vs("c"),
        ),
    );
    check_ast(
        "a or b and c",
        bin(BinaryOp::Or, vs("a"), bin(BinaryOp::And, vs("b"), vs("c"))),
    );
    check_ast(
        "a unless b and c",
        bin(
            BinaryOp::And,
            bin(BinaryOp::Unless, vs("a"), vs("b")),
            vs("c"),
        ),
    );
    check_ast(
        "a > b + c",
        bin(BinaryOp::Gt, vs("a"), bin(BinaryOp::Add, vs("b"), vs("c"))),
    );
    check_ast(
        "a == b and c",
        bin(BinaryOp::And, bin(BinaryOp::Eq, vs("a"), vs("b")), vs("c")),
    );
    check_ast(
        "a atan2 b + c",
        bin(
            BinaryOp::Add,
            bin(BinaryOp::Atan2, vs("a"), vs("b")),
            vs("c"),
        ),
    );
    check_ast(
        "a % b * c",
        bin(BinaryOp::Mul, bin(BinaryOp::Mod, vs("a"), vs("b")), vs("c")),
    );
    // Postfix modifiers bind tightest.
    let mut off = sel("b");
    off.offset = 300_000;
    check_ast(
        "a + b offset 5m",
        bin(BinaryOp::Add, vs("a"), Expr::VectorSelector(off)),
    );
}

#[test]
fn selector_and_modifier_asts() {
    let got = parse(r#"foo{a="b", c=~"d.*"}[5m] offset -1m @ 100.5"#).expect("valid");
    let want = Expr::MatrixSelector(MatrixSelector {
        selector: VectorSelector {
            name: Some("foo".into()),
            matchers: vec![
                Matcher::equal("__name__", "foo"),
                Matcher::equal("a", "b"),
                Matcher::new(MatchOp::RegexMatch, "c", "d.*").expect("regex"),
            ],
            offset: -60_000,
            at: Some(AtModifier::Timestamp(100_500)),
        },
        range: 300_000,
    });
    assert_eq!(got, want);

    let Expr::Subquery(sq) = parse("rate(x[1m])[1h:30s] @ end()").expect("valid") else {
        panic!("not a subquery")
    };
    assert_eq!(
        (sq.range, sq.step, sq.at, sq.offset),
        (3_600_000, Some(30_000), Some(AtModifier::End), 0)
    );
    let Expr::Subquery(sq) = parse("x[10m:]").expect("valid") else {
        panic!("not a subquery")
    };
    assert_eq!(sq.step, None);

    // A quoted name inside braces is a `__name__` matcher; `name` stays None.
    let Expr::VectorSelector(v) = parse(r#"{"a.b", c="d"}"#).expect("valid") else {
        panic!("not a selector")
    };
    assert_eq!(v.name, None);
    assert_eq!(
        v.matchers,
        vec![Matcher::equal("__name__", "a.b"), Matcher::equal("c", "d")]
    );
}

#[test]
fn binary_matching_and_types() {
    let Expr::Binary(b) = parse("a + on(x) group_left(y) b").expect("valid") else {
        panic!("not binary")
    };
    let m = b.matching.expect("vector matching");
    assert_eq!(
        (m.card, m.on, m.labels, m.include),
        (
            Cardinality::ManyToOne,
            true,
            vec!["x".into()],
            vec!["y".into()]
        )
    );
    let Expr::Binary(b) = parse("a or b").expect("valid") else {
        panic!("not binary")
    };
    assert_eq!(b.matching.map(|m| m.card), Some(Cardinality::ManyToMany));
    let Expr::Binary(b) = parse("a > bool 1").expect("valid") else {
        panic!("not binary")
    };
    assert!(b.return_bool);
    assert_eq!(b.matching, None);

    let types = [
        ("1", ValueType::Scalar),
        ("\"s\"", ValueType::String),
        ("foo", ValueType::Vector),
        ("foo[5m]", ValueType::Matrix),
        ("foo[5m:]", ValueType::Matrix),
        ("1 + 1", ValueType::Scalar),
        ("1 + foo", ValueType::Vector),
        ("-(1)", ValueType::Scalar),
        ("time()", ValueType::Scalar),
        ("sum(foo)", ValueType::Vector),
        ("(foo[5m])", ValueType::Matrix),
    ];
    for (q, t) in types {
        assert_eq!(expr_type(&parse(q).expect("valid")), t, "{q}");
    }
}

#[test]
fn aggregation_params() {
    let Expr::Aggregate(a) = parse("topk by (job) (3, foo)").expect("valid") else {
        panic!("not aggregate")
    };
    assert_eq!(a.op, AggregateOp::Topk);
    assert_eq!(a.param, Some(num(3.0)));
    assert_eq!(a.grouping, vec!["job".to_string()]);
    assert!(!a.without);
    let Expr::Aggregate(a) = parse("count_values without (x) (\"v\", foo)").expect("valid") else {
        panic!()
    };
    assert_eq!(a.param, Some(Box::new(Expr::String("v".into()))));
    assert!(a.without);
}

#[test]
fn function_table() {
    for name in [
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "deg",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_avg",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_sum",
        "histogram_stddev",
        "histogram_stdvar",
        "double_exponential_smoothing",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "info",
        "irate",
        "label_replace",
        "label_join",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "mad_over_time",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_desc",
        "sort_by_label",
        "sort_by_label_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
        "ts_of_max_over_time",
        "ts_of_min_over_time",
        "ts_of_last_over_time",
        "first_over_time",
    ] {
        assert!(function(name).is_some(), "{name} missing");
    }
    let hq = function("histogram_quantile").expect("exists");
    assert_eq!(
        (hq.arg_types, hq.return_type),
        (
            &[ValueType::Scalar, ValueType::Vector][..],
            ValueType::Vector
        )
    );
}

#[test]
fn metric_selectors_for_match_params() {
    assert_eq!(
        parse_metric_selector(r#"up{job="x"}"#),
        Ok(vec![
            Matcher::equal("__name__", "up"),
            Matcher::equal("job", "x")
        ])
    );
    assert_eq!(
        parse_metric_selector(r#"{"a.b"}"#),
        Ok(vec![Matcher::equal("__name__", "a.b")])
    );
    assert_eq!(
        parse_metric_selector("sum"),
        Ok(vec![Matcher::equal("__name__", "sum")])
    );
    // All-empty selectors are the caller's call, as in Prometheus.
    assert_eq!(parse_metric_selector("{}"), Ok(vec![]));
    assert_eq!(
        parse_metric_selector(r#"{a=""}"#),
        Ok(vec![Matcher::equal("a", "")])
    );
    for bad in [
        "up[5m]",
        "up offset 1m",
        "sum(up)",
        "1",
        "",
        "up + up",
        r#"up{__name__="x"}"#,
    ] {
        assert!(parse_metric_selector(bad).is_err(), "{bad:?} should fail");
    }
    let err = parse_metric_selector("up offset 1m").expect_err("invalid");
    assert_eq!(err.to_string(), "1:4: parse error: unexpected <offset>");
}
