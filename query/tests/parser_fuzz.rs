//! Property tests: the parser never panics, errors point inside the input with consistent
//! line/column, and whatever parses prints to text that parses back to the same tree. Inputs
//! are random strings over PromQL's alphabet and random edits of valid queries.

use eddy_query::parser::{parse, ParseError};
use proptest::prelude::*;

#[path = "support/parser_support.rs"]
mod support;
use support::same_tree;

const SEEDS: &[&str] = &[
    r#"sum by (job) (rate(http_requests_total{job="api", code=~"5.."}[5m]))"#,
    "histogram_quantile(0.99, sum without (instance) (rate(x_bucket[1h:1m] offset 5m)))",
    "a + on(x) group_left(y) b > bool 0.5 and c unless d or -e ^ 2",
    r#"topk(3, count_values("v", foo @ 1609746000)) / scalar(bar offset -1h30m)"#,
    r#"label_replace({"my.metric", x!~'y'}, "a", "$1", "b", "(.*)") # comment"#,
    "max_over_time(deriv(foo[5m:30s])[1h:] @ end()) - 0x1F * Inf + 1e3 % NaN",
    "rate(foo[5m+1m] offset (2*1m)) atan2 quantile(0.9, bar) by (a,)",
    "(((1))) == bool -(2)",
];

/// The number of cases: `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Checks the invariants for one input.
fn check(input: &str) -> Result<(), TestCaseError> {
    match parse(input) {
        Ok(e) => {
            let printed = e.to_string();
            let again = parse(&printed).map_err(|err| {
                TestCaseError::fail(format!("{input:?} printed as {printed:?}: {err}"))
            })?;
            prop_assert!(
                same_tree(&e, &again),
                "{input:?} printed as {printed:?} parses differently"
            );
        }
        Err(ParseError {
            pos,
            line,
            col,
            msg,
        }) => {
            prop_assert!(pos <= input.len(), "{input:?}: position {pos} past the end");
            prop_assert!(
                input.is_char_boundary(pos),
                "{input:?}: position {pos} inside a character"
            );
            let before = &input[..pos];
            prop_assert_eq!(line, 1 + before.matches('\n').count());
            prop_assert_eq!(col, pos - before.rfind('\n').map_or(0, |i| i + 1) + 1);
            prop_assert!(!msg.is_empty());
        }
    }
    Ok(())
}

/// Tokens and characters PromQL uses, so random strings reach deep into the grammar.
fn promql_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "foo",
            "bar",
            "sum",
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
            "bool",
            "offset",
            "@",
            "start()",
            "end()",
            "rate",
            "topk",
            "count_values",
            "and",
            "or",
            "unless",
            "atan2",
            "Inf",
            "NaN",
            "(",
            ")",
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "=",
            "!=",
            "=~",
            "!~",
            "==",
            "<=",
            ">=",
            "<",
            ">",
            "+",
            "-",
            "*",
            "/",
            "%",
            "^",
            "\"x\"",
            "'y'",
            "`z`",
            "5m",
            "1h30m",
            "0.5",
            "1e3",
            "0x1f",
            "#",
            "\n",
            " ",
            "le",
            "__name__",
            "histogram_quantile",
            "abs",
            "label_join",
            "fill",
            "anchored",
            "step()",
            "max_of",
            "\\",
            "\"",
        ])
        .prop_map(str::to_string),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn selector() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["foo", "bar:baz", "sum", "offset", "by", "_x1"]);
    let matcher = (
        prop::sample::select(vec!["a", "job", "__name__", "\"x.y\"", "on"]),
        prop::sample::select(vec!["=", "!=", "=~", "!~"]),
        prop::sample::select(vec!["\"v\"", "'w.*'", "`a|b`", "\"\\n\\\"\""]),
    )
        .prop_map(|(l, op, v)| format!("{l}{op}{v}"));
    (name, prop::collection::vec(matcher, 0..3)).prop_map(|(n, ms)| {
        if ms.iter().any(|m| m.starts_with("__name__")) {
            format!("{{job=\"x\",{}}}", ms.join(","))
        } else if ms.is_empty() {
            n.to_string()
        } else {
            format!("{n}{{{}}}", ms.join(", "))
        }
    })
}

fn modifiers() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        " offset 5m",
        " offset -1h30m",
        " @ 100",
        " @ start()",
        " offset 1m @ end()",
        " @ 1.5 offset 10s",
    ])
    .prop_map(str::to_string)
}

fn range() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["5m", "1h30m", "300", "1.5", "2m*3", "1d"]).prop_map(str::to_string)
}

fn matrix(vector: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        (selector(), range(), modifiers()).prop_map(|(s, r, m)| format!("{s}[{r}]{m}")),
        (
            vector,
            range(),
            prop::sample::select(vec!["", "1m", "10s"]),
            modifiers()
        )
            .prop_map(|(v, r, st, m)| format!("({v})[{r}:{st}]{m}")),
    ]
}

fn scalar_leaf() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "1", "0.5", "-2", "Inf", "NaN", "0x10", "1e-3", "5m", "time()", "pi()",
    ])
    .prop_map(str::to_string)
}

/// Type-correct random queries: (instant vector, scalar) text.
fn vector_query() -> impl Strategy<Value = String> {
    let leaf = (selector(), modifiers())
        .prop_map(|(s, m)| format!("{s}{m}"))
        .boxed();
    leaf.prop_recursive(5, 48, 4, |inner| {
        let arith = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "^", "atan2", "== bool", "> bool", "<=",
        ]);
        let set = prop::sample::select(vec!["and", "or", "unless"]);
        let matching = prop::sample::select(vec![
            "",
            " on (a)",
            " ignoring (a, b)",
            " on () group_left",
            " on (a) group_right (b)",
            " ignoring (x) group_left (\"y.z\")",
        ]);
        let agg = prop::sample::select(vec![
            "sum", "avg", "max", "min", "count", "group", "stddev", "stdvar",
        ]);
        let grouping = prop::sample::select(vec![
            "",
            " by (a)",
            " without (a, b)",
            " by ()",
            " without ()",
        ]);
        let range_fn = prop::sample::select(vec![
            "rate",
            "increase",
            "max_over_time",
            "changes",
            "absent_over_time",
        ]);
        prop_oneof![
            (inner.clone(), arith, matching.clone(), inner.clone()).prop_map(|(a, op, m, b)| {
                let m = if m.contains("group") && op.starts_with(['=', '>', '<']) {
                    ""
                } else {
                    m
                };
                // A bare `group_left` before `(` would take the parenthesis as its label list.
                let fix = if m.ends_with("group_left") { " ()" } else { "" };
                if m.is_empty() {
                    format!("{a} {op} {b}")
                } else {
                    // Operands in parentheses, so that precedence cannot put a scalar next to `on`.
                    format!("({a}) {op}{m}{fix} ({b})")
                }
            }),
            (inner.clone(), set, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (
                inner.clone(),
                prop::sample::select(vec!["+", "*", "<", "> bool"]),
                scalar_leaf()
            )
                .prop_map(|(a, op, s)| format!("{a} {op} {s}")),
            (agg, grouping.clone(), inner.clone()).prop_map(|(op, g, v)| format!("{op}{g} ({v})")),
            (
                prop::sample::select(vec!["topk", "bottomk", "limitk"]),
                grouping.clone(),
                inner.clone()
            )
                .prop_map(|(op, g, v)| format!("{op}{g} (2, {v})")),
            (inner.clone(), grouping).prop_map(|(v, g)| format!("quantile(0.9, {v}){g}")),
            inner
                .clone()
                .prop_map(|v| format!("count_values(\"v\", {v})")),
            (range_fn, matrix(inner.clone().boxed())).prop_map(|(f, m)| format!("{f}({m})")),
            inner.clone().prop_map(|v| format!("-({v})")),
            inner.clone().prop_map(|v| format!("abs({v})")),
            inner
                .clone()
                .prop_map(|v| format!("histogram_quantile(0.9, {v})")),
            inner
                .clone()
                .prop_map(|v| format!("label_replace({v}, \"a\", \"$1\", \"b\", \"(.*)\")")),
            inner.clone().prop_map(|v| format!("vector(scalar({v}))")),
            inner.prop_map(|v| format!("(\n  {v} # note\n)")),
        ]
    })
}

proptest! {
    // Generated queries are long; fewer cases keep the debug-build run short (the engine
    // helper runs this crate's tests often). Raise PROPTEST_CASES for a longer run.
    #![proptest_config(ProptestConfig { cases: cases(300), ..ProptestConfig::default() })]

    #[test]
    fn generated_valid_queries_round_trip(q in vector_query()) {
        let e = parse(&q).map_err(|err| TestCaseError::fail(format!("{q:?}: {err}")))?;
        check(&q)?;
        // The printed form is a fixed point of print ∘ parse.
        let printed = e.to_string();
        let again = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed:?}: {err}")))?;
        prop_assert_eq!(again.to_string(), printed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn random_token_soup(pieces in prop::collection::vec(promql_piece(), 0..24)) {
        check(&pieces.concat())?;
    }

    #[test]
    fn arbitrary_strings(s in ".{0,64}") {
        check(&s)?;
    }

    #[test]
    fn mutated_valid_queries(
        seed in prop::sample::select(SEEDS),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, promql_piece()), 1..4),
    ) {
        let mut q = seed.to_string();
        for (at, kind, piece) in edits {
            let boundaries: Vec<usize> = (0..=q.len()).filter(|&i| q.is_char_boundary(i)).collect();
            let i = boundaries[at.index(boundaries.len())];
            let next = boundaries.iter().copied().find(|&j| j > i).unwrap_or(i);
            match kind {
                0 => q.insert_str(i, &piece),
                1 => q.replace_range(i..next, ""),
                _ => q.replace_range(i..next, &piece),
            }
        }
        check(&q)?;
    }
}

#[test]
fn seeds_are_valid() {
    for s in SEEDS {
        assert!(parse(s).is_ok(), "{s}: {:?}", parse(s).err());
    }
}
