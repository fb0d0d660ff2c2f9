//! Parses every query in Prometheus's promqltest files (`../shared/promqltest`) and the PromQL
//! compliance tester's query templates (`../shared/promql-compliance`), and checks that each
//! query expected to work parses and round-trips through the printer. Run with `--nocapture` to
//! see the counts.

use std::fs;
use std::path::{Path, PathBuf};

use eddy_query::parser::parse;

#[path = "support/parser_support.rs"]
mod support;
use support::same_tree;

/// Messages of the experimental syntax eddy rejects on purpose.
const UNSUPPORTED: &[&str] = &[
    "fill modifiers are experimental and not supported",
    "anchored modifier is experimental and not supported",
    "smoothed modifier is experimental and not supported",
    "step() and range() in durations are experimental and not supported",
    "(native histogram trimming) is not supported",
];

struct Query {
    origin: String,
    text: String,
    expect_fail: bool,
}

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The query of an `eval…` line: the text after `instant at <t>` or `range from <a> to <b> step <s>`.
fn eval_query(line: &str) -> Option<(bool, String)> {
    let rest = line.trim_start().strip_prefix("eval")?;
    let (cmd, rest) = rest.split_once(char::is_whitespace)?;
    let fail = cmd == "_fail";
    let words: Vec<&str> = rest.split_whitespace().collect();
    let skip = match *words.first()? {
        "instant" => 3,
        "range" => 7,
        _ => return None,
    };
    // Re-find the query in the original text so inner spacing is kept.
    let mut tail = rest.trim_start();
    for _ in 0..skip {
        tail = tail
            .split_once(char::is_whitespace)
            .map_or("", |(_, t)| t)
            .trim_start();
    }
    Some((fail, tail.to_string()))
}

fn promqltest_queries() -> Vec<Query> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        shared_dir().join("promqltest"),
        shared_dir().join("promqltest/v3.5.0"),
    ] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        files.extend(
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "test")),
        );
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some((mut fail, q)) = eval_query(line) else {
                continue;
            };
            // Newer files mark failures on the following indented lines.
            for next in lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with([' ', '\t']) && !l.trim().is_empty())
            {
                fail |= next.trim_start().starts_with("expect fail");
            }
            let name = f
                .strip_prefix(shared_dir())
                .unwrap_or(&f)
                .display()
                .to_string();
            out.push(Query {
                origin: format!("{name}:{}", i + 1),
                text: q,
                expect_fail: fail,
            });
        }
    }
    out
}

/// Values the compliance tester substitutes for its `{{.placeholder}}`s.
fn variants(name: &str) -> &'static [&'static str] {
    match name {
        "offset" => &["1m", "5m", "10m"],
        "range" => &["1s", "15s", "1m", "5m", "15m", "1h"],
        "simpleAggrOp" => &["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
        "topBottomOp" => &["topk", "bottomk"],
        "quantile" => &[
            "-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5",
        ],
        "arithBinOp" => &["+", "-", "*", "/", "%", "^"],
        "compBinOp" => &["==", "!=", "<", ">", "<=", ">="],
        "binOp" => &[
            "+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">=",
        ],
        "simpleMathFunc" => &[
            "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round",
        ],
        "extrapolatedRateFunc" => &["delta", "rate", "increase"],
        "instantRateFunc" => &["idelta", "irate"],
        "clampFunc" => &["clamp_min", "clamp_max"],
        "dateFunc" => &[
            "day_of_month",
            "day_of_week",
            "days_in_month",
            "hour",
            "minute",
            "month",
            "year",
        ],
        "simpleTimeAggrOp" => &["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
        _ => &[],
    }
}

/// Expands every `{{.name}}` placeholder with every value (cartesian product).
fn expand(template: &str) -> Vec<String> {
    let Some(open) = template.find("{{.") else {
        return vec![template.to_string()];
    };
    let Some(close) = template[open..].find("}}") else {
        return vec![template.to_string()];
    };
    let name = &template[open + 3..open + close];
    let values = variants(name);
    assert!(!values.is_empty(), "unknown placeholder {name}");
    let placeholder = &template[open..open + close + 2];
    values
        .iter()
        .flat_map(|v| expand(&template.replace(placeholder, v)))
        .collect()
}

fn compliance_queries() -> Vec<Query> {
    let path = shared_dir().join("promql-compliance/promql-test-queries.yml");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start().trim_start_matches('-').trim_start();
        let Some(raw) = t.strip_prefix("query:") else {
            continue;
        };
        let raw = raw.trim();
        let template = if let Some(s) = raw.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            s.replace("''", "'")
        } else if let Some(s) = raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            s.replace("\\\"", "\"").replace("\\\\", "\\")
        } else {
            raw.to_string()
        };
        let fail = lines
            .get(i + 1)
            .is_some_and(|l| l.trim() == "should_fail: true");
        for q in expand(&template) {
            out.push(Query {
                origin: format!("promql-test-queries.yml:{}", i + 1),
                text: q,
                expect_fail: fail,
            });
        }
    }
    out
}

/// Parses all queries; returns (parsed, failed-but-expected-to-work lines, total).
fn run(queries: &[Query]) -> (usize, Vec<String>) {
    let mut parsed = 0;
    let mut bad = Vec::new();
    for q in queries {
        match parse(&q.text) {
            Ok(e) => {
                parsed += 1;
                let printed = e.to_string();
                match parse(&printed) {
                    Ok(again) if same_tree(&e, &again) => {}
                    Ok(again) => bad.push(format!(
                        "{}: {:?} round trip changed:\n  {e:?}\n  {again:?}",
                        q.origin, q.text
                    )),
                    Err(err) => bad.push(format!(
                        "{}: {:?} printed as {printed:?} fails: {err}",
                        q.origin, q.text
                    )),
                }
            }
            Err(err) if q.expect_fail => {
                let _ = err; // a parse error is a valid way to fail
            }
            Err(err) if UNSUPPORTED.iter().any(|m| err.msg.contains(m)) => {}
            Err(err) => bad.push(format!("{}: {:?}: {err}", q.origin, q.text)),
        }
    }
    (parsed, bad)
}

#[test]
fn promqltest_queries_parse() {
    let queries = promqltest_queries();
    assert!(
        queries.len() > 3000,
        "expected the shared promqltest files, found {} queries",
        queries.len()
    );
    let (parsed, bad) = run(&queries);
    let expect_fail = queries.iter().filter(|q| q.expect_fail).count();
    let unsupported: Vec<&Query> = queries
        .iter()
        .filter(|q| parse(&q.text).is_err_and(|e| UNSUPPORTED.iter().any(|m| e.msg.contains(m))))
        .collect();
    eprintln!(
        "promqltest: {} eval queries, {parsed} parse, {} fail to parse ({expect_fail} are expected to fail at parse or \
         run time; {} use unsupported experimental syntax)",
        queries.len(),
        queries.len() - parsed,
        unsupported.len()
    );
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn compliance_queries_parse() {
    let queries = compliance_queries();
    assert!(
        queries.len() > 500,
        "expected the compliance templates, found {} queries",
        queries.len()
    );
    let (parsed, bad) = run(&queries);
    eprintln!(
        "promql-compliance: {} expanded queries, {parsed} parse",
        queries.len()
    );
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // The compliance file's `should_fail` queries that fail in the parser.
    for q in queries.iter().filter(|q| q.expect_fail) {
        if let Err(e) = parse(&q.text) {
            eprintln!("  expected failure at parse time: {:?}: {e}", q.text);
        }
    }
}
