//! `GET|POST /federate`: the latest sample of every series matching `match[]`, in the Prometheus
//! text exposition format, as Prometheus's `web/federate.go` writes it.
//!
//! Per series, the newest sample within the lookback window ending now is sent, with its
//! timestamp; a stale marker there drops the series (the text format cannot carry one). Families
//! are grouped by metric name, each under a `# TYPE <name> untyped` line. As Prometheus does
//! with no external `instance` label configured, series without an `instance` label get
//! `instance=""` appended, so a scraping Prometheus with `honor_labels` keeps it empty.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use eddy_query::ast::Expr;
use eddy_storage::labels::METRIC_NAME;
use eddy_storage::{is_stale_nan, Labels, Matcher, Querier};

use super::SharedState;

/// Content type of text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET|POST /federate`.
pub async fn federate(
    State(st): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sets = match match_params(&method, &uri, &headers, &body) {
        Ok(s) => s,
        Err(msg) => return (StatusCode::BAD_REQUEST, msg + "\n").into_response(),
    };
    let maxt = super::now_ms();
    let mint = maxt - st.query.engine.options().lookback_delta_ms;
    let db = st.db.clone();
    let found = tokio::task::spawn_blocking(move || latest_samples(&*db, &sets, mint, maxt)).await;
    let samples = match found {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "federation select failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("federation task failed: {e}\n"),
            )
                .into_response()
        }
    };
    let mut resp = render(&samples).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(TEXT_CONTENT_TYPE));
    resp
}

/// Parses every `match[]` of the query string and, for a form POST, the body.
fn match_params(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<Vec<Matcher>>, String> {
    let mut pairs: Vec<(String, String)> = match uri.query() {
        Some(q) => {
            serde_urlencoded::from_str(q).map_err(|e| format!("error parsing form values: {e}"))?
        }
        None => Vec::new(),
    };
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && form && !body.is_empty() {
        let more: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| format!("error parsing form values: {e}"))?;
        pairs.extend(more);
    }
    pairs
        .iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, m)| {
            let e = eddy_query::parser::parse(m).map_err(|e| e.to_string())?;
            match e {
                Expr::VectorSelector(vs) => Ok(vs.matchers.clone()),
                _ => Err(format!("{m:?} is not a series selector")),
            }
        })
        .collect()
}

/// The newest non-stale sample in `[mint, maxt]` of each series matching any set, sorted by
/// metric name, then labels.
pub fn latest_samples(
    db: &dyn Querier,
    sets: &[Vec<Matcher>],
    mint: i64,
    maxt: i64,
) -> eddy_storage::Result<Vec<(Labels, i64, f64)>> {
    let mut out = Vec::new();
    for m in sets {
        for s in db.select(m, mint, maxt)? {
            if let (Some(&t), Some(&v)) = (s.timestamps.last(), s.values.last()) {
                if !is_stale_nan(v) {
                    out.push((s.labels, t, v));
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (a.0.metric_name(), &a.0)
            .cmp(&(b.0.metric_name(), &b.0))
            .then(a.1.cmp(&b.1))
    });
    // A series matched by several sets is sent once.
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

/// Text exposition of `samples` (sorted by name), as `expfmt` writes untyped families.
pub fn render(samples: &[(Labels, i64, f64)]) -> String {
    let mut out = String::with_capacity(samples.len() * 96);
    let mut last_name: Option<&str> = None;
    for (labels, t, v) in samples {
        // Nameless series cannot be exposed; Prometheus skips them too.
        let Some(name) = labels.metric_name() else {
            continue;
        };
        if last_name != Some(name) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            last_name = Some(name);
        }
        out.push_str(name);
        out.push('{');
        let mut first = true;
        let mut has_instance = false;
        for l in labels.iter().filter(|l| l.name != METRIC_NAME) {
            has_instance |= l.name == "instance";
            push_pair(&mut out, &mut first, &l.name, &l.value);
        }
        if !has_instance {
            push_pair(&mut out, &mut first, "instance", "");
        }
        out.push_str("} ");
        format_go_float(&mut out, *v);
        let _ = writeln!(out, " {t}");
    }
    out
}

fn push_pair(out: &mut String, first: &mut bool, name: &str, value: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)` with the exposition format's
/// `+Inf`/`-Inf`/`NaN`: the shortest round-tripping digits, in exponent form (`1e+06`,
/// `1.5e-05`) when the decimal exponent is below -4 or at least 6.
pub fn format_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: `-1.2345e-7`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(
            out,
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(v: f64) -> String {
        let mut s = String::new();
        format_go_float(&mut s, v);
        s
    }

    #[test]
    fn floats_format_as_go_g_shortest() {
        assert_eq!(go(1.0), "1");
        assert_eq!(go(-0.5), "-0.5");
        assert_eq!(go(123456.0), "123456");
        assert_eq!(go(1e6), "1e+06");
        assert_eq!(go(1234567.0), "1.234567e+06");
        assert_eq!(go(1.7e12), "1.7e+12");
        assert_eq!(go(0.0001), "0.0001");
        assert_eq!(go(0.00001), "1e-05");
        assert_eq!(go(-1.5e-7), "-1.5e-07");
        assert_eq!(go(1e100), "1e+100");
        assert_eq!(go(f64::NAN), "NaN");
        assert_eq!(go(f64::NEG_INFINITY), "-Inf");
        assert_eq!(go(-0.0), "-0");
    }

    #[test]
    fn render_groups_families_and_escapes() {
        let a = Labels::from_pairs([("__name__", "a"), ("job", "x\"y\\z\n")]);
        let a2 = Labels::from_pairs([("__name__", "a"), ("instance", "i"), ("job", "j")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        let nameless = Labels::from_pairs([("job", "j")]);
        let text = render(&[
            (a, 1000, 1.5),
            (a2, 2000, 2e6),
            (b, 3000, f64::INFINITY),
            (nameless, 4000, 1.0),
        ]);
        assert_eq!(
            text,
            "# TYPE a untyped\n\
             a{job=\"x\\\"y\\\\z\\n\",instance=\"\"} 1.5 1000\n\
             a{instance=\"i\",job=\"j\"} 2e+06 2000\n\
             # TYPE b untyped\n\
             b{instance=\"\"} +Inf 3000\n"
        );
    }
}
