//! The compliance tester's query list: a reader for the subset of YAML that
//! `promql-test-queries.yml` uses, and the expansion of `{{.name}}` placeholders into every
//! combination of the tester's variant values.

/// One template of the list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pub(crate) query: String,
    pub(crate) variant_args: Vec<String>,
    pub(crate) should_fail: bool,
}

/// One expanded query.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) query: String,
    pub(crate) should_fail: bool,
}

/// The values the compliance tester substitutes for each placeholder, in its order.
fn variant_values(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "range" => &["1s", "15s", "1m", "5m", "15m", "1h"],
        "offset" => &["1m", "5m", "10m"],
        "simpleAggrOp" => &["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
        "simpleTimeAggrOp" => &[
            "sum", "avg", "max", "min", "count", "stddev", "stdvar", "absent", "last",
        ],
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
        "clampFunc" => &["clamp_min", "clamp_max"],
        "instantRateFunc" => &["idelta", "irate"],
        "dateFunc" => &[
            "day_of_month",
            "day_of_week",
            "days_in_month",
            "hour",
            "minute",
            "month",
            "year",
        ],
        "smoothingFactor" | "trendFactor" => &["0.1", "0.5", "0.8"],
        _ => return None,
    })
}

/// Unquotes a YAML scalar: single-quoted (`''` is a quote), double-quoted (backslash escapes) or
/// plain.
fn scalar(v: &str) -> Result<String, String> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .ok_or_else(|| format!("unterminated single-quoted scalar {v:?}"))?;
        return Ok(inner.replace("''", "'"));
    }
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or_else(|| format!("unterminated double-quoted scalar {v:?}"))?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => return Err(format!("dangling escape in {v:?}")),
                }
            } else {
                out.push(c);
            }
        }
        return Ok(out);
    }
    Ok(v.to_string())
}

/// Parses the `test_cases:` list.
pub(crate) fn parse(yaml: &str) -> Result<Vec<Template>, String> {
    let mut out: Vec<Template> = Vec::new();
    let mut in_cases = false;
    for (n, line) in yaml.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('-') {
            in_cases = t == "test_cases:";
            continue;
        }
        if !in_cases {
            continue;
        }
        let mut rest = t;
        if let Some(r) = rest.strip_prefix('-') {
            out.push(Template {
                query: String::new(),
                variant_args: Vec::new(),
                should_fail: false,
            });
            rest = r.trim_start();
            if rest.starts_with('#') || rest.is_empty() {
                continue;
            }
        }
        let cur = out
            .last_mut()
            .ok_or_else(|| format!("line {}: key outside a list item", n + 1))?;
        let (key, val) = rest
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected `key: value`: {t:?}", n + 1))?;
        match key.trim() {
            "query" => cur.query = scalar(val)?,
            "should_fail" => cur.should_fail = val.trim() == "true",
            "skip_comparison" => {}
            "variant_args" => {
                let list = val
                    .trim()
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .ok_or_else(|| format!("line {}: variant_args is not a flow list", n + 1))?;
                cur.variant_args = list.split(',').map(scalar).collect::<Result<Vec<_>, _>>()?;
            }
            other => return Err(format!("line {}: unknown key {other:?}", n + 1)),
        }
    }
    if let Some(bad) = out.iter().find(|t| t.query.is_empty()) {
        return Err(format!("test case without a query: {bad:?}"));
    }
    Ok(out)
}

/// Every combination of the template's variant values, the first argument varying slowest.
pub(crate) fn expand(t: &Template) -> Result<Vec<Case>, String> {
    let mut queries = vec![t.query.clone()];
    for arg in &t.variant_args {
        let vals = variant_values(arg).ok_or_else(|| format!("unknown variant arg {arg:?}"))?;
        let hole = format!("{{{{.{arg}}}}}");
        queries = queries
            .iter()
            .flat_map(|q| {
                let hole = &hole;
                vals.iter().map(move |v| q.replace(hole, v))
            })
            .collect();
    }
    if let Some(q) = queries.iter().find(|q| q.contains("{{")) {
        return Err(format!("placeholder left after expansion: {q:?}"));
    }
    Ok(queries
        .into_iter()
        .map(|query| Case {
            query,
            should_fail: t.should_fail,
        })
        .collect())
}

/// Queries one per line; blank lines and `#` comments are skipped.
pub(crate) fn parse_lines(text: &str) -> Vec<Case> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Case {
            query: l.to_string(),
            should_fail: false,
        })
        .collect()
}
