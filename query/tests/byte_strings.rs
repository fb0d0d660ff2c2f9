//! String literals whose `\x`/octal escapes make invalid UTF-8 (`"a\xc5z"`): Go strings hold
//! any bytes, so Prometheus parses them and rejects them only where a label name (or, for eddy,
//! a label value) is needed. These tests pin the parse, the printing and each evaluation path.

use std::sync::atomic::AtomicBool;

use eddy_query::ast::Expr;
use eddy_query::engine::{Engine, EngineOptions};
use eddy_query::parser::parse;
use eddy_query::promqltest::mem::MemStorage;
use eddy_query::promqltest::TestStorage;
use eddy_query::value::{QueryError, Value};
use eddy_storage::Labels;

fn db() -> MemStorage {
    let mut db = MemStorage::new();
    for (src, v) in [("a-1", 1.0), ("b-2", 2.0)] {
        let labels = Labels::from_pairs([("__name__", "m"), ("src", src), ("x", "y")]);
        db.append(labels, &[(0, v)]);
    }
    db
}

fn eval(q: &str) -> Result<Value, QueryError> {
    let expr = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut db = db();
    let engine = Engine::new(EngineOptions::default());
    engine
        .instant(db.querier(), &expr, 0, &AtomicBool::new(false))
        .map(|r| r.value)
}

fn eval_err(q: &str) -> String {
    match eval(q) {
        Ok(v) => panic!("{q}: evaluated to {v:?}, want an error"),
        Err(e) => e.to_string(),
    }
}

/// The label sets of an instant vector result, as `name{a="b", …}` strings, sorted.
fn label_sets(q: &str) -> Vec<String> {
    match eval(q) {
        Ok(Value::Vector(v)) => {
            let mut out: Vec<String> = v.iter().map(|s| s.labels.to_string()).collect();
            out.sort();
            out
        }
        other => panic!("{q}: {other:?}"),
    }
}

#[test]
fn literals_that_are_not_utf8_parse_and_print_back() {
    let e = parse(r#"count_values("a\xc5z", m)"#).expect("parses, as in Prometheus");
    let Expr::Aggregate(a) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        a.param.as_deref(),
        Some(&Expr::ByteString(b"a\xc5z".to_vec()))
    );
    assert_eq!(e.to_string(), r#"count_values("a\xc5z", m)"#);
    assert_eq!(parse(&e.to_string()), Ok(e));

    // Octal escapes too; escapes that form valid UTF-8 stay a plain string.
    assert_eq!(
        parse(r#""\303\377""#),
        Ok(Expr::ByteString(vec![0xc3, 0xff]))
    );
    assert_eq!(parse(r#""\xc3\xa9""#), Ok(Expr::String("é".into())));
    assert_eq!(
        parse(r#"label_replace(m, "\xff", "", "src", "(.*)")"#)
            .expect("parses")
            .to_string(),
        r#"label_replace(m, "\xff", "", "src", "(.*)")"#
    );
}

#[test]
fn grouping_and_matchers_reject_them_at_parse_time() {
    let err = parse(r#"sum by ("a\xc5z") (m)"#).expect_err("grouping label");
    assert_eq!(err.msg, r#"invalid label name for grouping: "a\xc5z""#);
    assert_eq!(err.pos, 9);
    let err = parse(r#"m{x="\xff"}"#).expect_err("matcher value");
    assert!(
        err.msg
            .starts_with(r#"invalid UTF-8 in label matcher string "\xff""#),
        "{err}"
    );
    assert_eq!(err.pos, 4);
    let err = parse(r#"{"\xff"="v"}"#).expect_err("matcher name");
    assert_eq!(err.pos, 1);
}

#[test]
fn count_values_rejects_the_label_name_at_evaluation() {
    assert_eq!(
        eval_err(r#"count_values("a\xc5z", m)"#),
        r#"invalid label name "a\xc5z""#
    );
    assert_eq!(
        eval_err(r#"count_values("", m)"#),
        r#"invalid label name """#
    );
    assert_eq!(label_sets(r#"count_values("v", m)"#).len(), 2);
}

#[test]
fn label_replace_names_and_regex() {
    assert_eq!(
        eval_err(r#"label_replace(m, "\xff", "", "src", "(.*)")"#),
        "invalid destination label name in label_replace(): \u{fffd}"
    );
    // The regex is checked first, as in Prometheus.
    assert_eq!(
        eval_err(r#"label_replace(m, "\xff", "", "src", "a\xff")"#),
        "invalid regular expression in label_replace(): a\u{fffd}"
    );
    // A source name that is not UTF-8 names no label: its value is "".
    assert_eq!(
        label_sets(r#"label_replace(m, "d", "none", "\xff", "")"#),
        [
            r#"m{d="none", src="a-1", x="y"}"#,
            r#"m{d="none", src="b-2", x="y"}"#
        ]
    );
}

#[test]
fn label_replace_replacement_bytes_fail_only_when_written() {
    assert_eq!(
        eval_err(r#"label_replace(m, "d", "\xff$1", "src", "a-(.*)")"#),
        r#"label_replace(): replacement "\xff$1" makes a label value that is not valid UTF-8, which eddy cannot store"#
    );
    // No series matches the regex: nothing is written, the input comes back unchanged.
    assert_eq!(
        label_sets(r#"label_replace(m, "d", "\xff", "src", "zzz")"#),
        [r#"m{src="a-1", x="y"}"#, r#"m{src="b-2", x="y"}"#]
    );
}

#[test]
fn label_join_names_and_separator() {
    assert_eq!(
        eval_err(r#"label_join(m, "d", "-", "src", "\xff")"#),
        "invalid source label name in label_join(): \u{fffd}"
    );
    assert_eq!(
        eval_err(r#"label_join(m, "\xc5", "-", "src")"#),
        "invalid destination label name in label_join(): \u{fffd}"
    );
    assert_eq!(
        eval_err(r#"label_join(m, "d", "\xff", "src", "x")"#),
        r#"label_join(): separator "\xff" makes a label value that is not valid UTF-8, which eddy cannot store"#
    );
    // With one source the separator is never written.
    assert_eq!(
        label_sets(r#"label_join(m, "d", "\xff", "x")"#),
        [
            r#"m{d="y", src="a-1", x="y"}"#,
            r#"m{d="y", src="b-2", x="y"}"#
        ]
    );
}

#[test]
fn sort_by_label_ignores_a_name_no_series_has() {
    let Ok(Value::Vector(v)) = eval(r#"sort_by_label_desc(m, "\xff", "src")"#) else {
        panic!("sort_by_label_desc failed")
    };
    let srcs: Vec<&str> = v.iter().filter_map(|s| s.labels.get("src")).collect();
    assert_eq!(srcs, ["b-2", "a-1"]);
}

#[test]
fn a_string_result_replaces_the_bad_bytes() {
    match eval(r#""a\xc5z""#) {
        Ok(Value::String { v, .. }) => assert_eq!(v, "a\u{fffd}z"),
        other => panic!("{other:?}"),
    }
}
