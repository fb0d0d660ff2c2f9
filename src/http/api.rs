//! The Prometheus HTTP query API: `/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`, `metadata`, `status/*`, and the empty `rules`/`alerts`/
//! `query_exemplars`. Bodies are byte-compatible with Prometheus's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use eddy_query::ast::Expr;
use eddy_query::engine::{Engine, EngineOptions};
use eddy_query::value::{QueryError, QueryResult};
use eddy_storage::{Matcher, Querier};

use super::{ApiError, ErrorType, SharedState};
use crate::config::ServeArgs;

mod render;

use render::push_annotations;
pub use render::{format_ts, render_result};

/// Prometheus's limit on points per series in a range query.
const MAX_POINTS: i64 = 11_000;
/// Smallest and largest times the API accepts (Prometheus's `minTime`/`maxTime`, in ms).
const MIN_TIME_MS: i64 = -9_223_372_036_854_775 / 1000 * 1000;
const MAX_TIME_MS: i64 = 9_223_372_036_854_775 / 1000 * 1000;

/// Query engine and limits.
#[derive(Debug)]
pub struct QueryConfig {
    /// The engine.
    pub engine: Engine,
    /// Default and maximum query timeout.
    pub timeout: Duration,
}

impl QueryConfig {
    /// From the serve flags.
    pub fn from_args(args: &ServeArgs) -> Self {
        QueryConfig {
            engine: Engine::new(EngineOptions {
                lookback_delta_ms: args.lookback_delta.as_millis() as i64,
                max_samples: args.query_max_samples,
                timeout: args.query_timeout,
                ..Default::default()
            }),
            timeout: args.query_timeout,
        }
    }
}

/// Request parameters from the URL query string and, for POST, the form body.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Collects parameters; a POST body counts only when it is a form.
    pub fn from_request(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = match uri.query() {
            Some(q) => serde_urlencoded::from_str(q)
                .map_err(|e| ApiError::bad_data(format!("invalid query string: {e}")))?,
            None => Vec::new(),
        };
        if method == Method::POST && !body.is_empty() {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if ct.starts_with("application/x-www-form-urlencoded") {
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                    .map_err(|e| ApiError::bad_data(format!("invalid form body: {e}")))?;
                pairs.extend(form);
            }
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses a Prometheus API time: float seconds or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (f * 1000.0).round();
        if ms < MIN_TIME_MS as f64 || ms > MAX_TIME_MS as f64 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok(ms as i64);
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to ms.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let mut padded: String = digits.chars().take(3).collect();
        while padded.len() < 3 {
            padded.push('0');
        }
        frac_ms = padded.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let v = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *c == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + frac_ms)
}

/// Proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a step or timeout: float seconds or a Prometheus duration.
pub fn parse_duration_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = (f * 1000.0).round();
        if !f.is_finite() || ms > i64::MAX as f64 || ms < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms as i64);
    }
    crate::config::parse_duration_ms(s)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(v) => parse_time(v)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
    }
}

/// A required parameter parsed with `parse`; errors name the parameter as Prometheus does.
fn required(
    p: &Params,
    name: &str,
    parse: fn(&str) -> Result<i64, String>,
) -> Result<i64, ApiError> {
    let v = p.get(name).ok_or_else(|| {
        ApiError::bad_data(format!("invalid parameter \"{name}\": {name} is required"))
    })?;
    parse(v).map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}")))
}

fn parse_query(q: &str) -> Result<Expr, ApiError> {
    eddy_query::parser::parse(q)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))
}

/// Parses `match[]` selectors; each must be a plain series selector.
fn parse_matchers(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]")
        .into_iter()
        .map(|m| {
            let e = eddy_query::parser::parse(m)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
            match e.unparen() {
                Expr::VectorSelector(vs) => Ok(vs.matchers.clone()),
                _ => Err(ApiError::bad_data(format!(
                    "invalid parameter \"match[]\": {m:?} is not a series selector"
                ))),
            }
        })
        .collect()
}

fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Parse(m) => ApiError::bad_data(m.to_string()),
        QueryError::BadData(m) => ApiError::bad_data(m),
        QueryError::Execution(m) => ApiError::new(ErrorType::Execution, m),
        QueryError::TooManySamples { .. } => ApiError::new(ErrorType::Execution, e.to_string()),
        QueryError::Timeout => ApiError::new(ErrorType::Timeout, e.to_string()),
        QueryError::Canceled => ApiError::new(ErrorType::Canceled, e.to_string()),
        QueryError::Storage(s) => ApiError::new(ErrorType::Internal, s.to_string()),
    }
}

/// Sets the flag when dropped: a handler future dropped by a disconnecting client cancels its
/// query.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// `GET|POST /api/v1/query`.
pub async fn query(
    State(st): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let q = p
        .get("query")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": query is required"))?
        .to_string();
    let t = time_param(&p, "time", super::now_ms())?;
    let expr = parse_query(&q)?;
    run_query(st, p, false, move |engine, db, cancel| {
        engine.instant(db, &expr, t, cancel)
    })
    .await
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(
    State(st): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let q = p
        .get("query")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": query is required"))?
        .to_string();
    let start = required(&p, "start", parse_time)?;
    let end = required(&p, "end", parse_time)?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = required(&p, "step", parse_duration_param)?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = parse_query(&q)?;
    run_query(st, p, true, move |engine, db, cancel| {
        engine.range(db, &expr, start, end, step, cancel)
    })
    .await
}

async fn run_query<F>(st: SharedState, p: Params, range: bool, f: F) -> Result<Response, ApiError>
where
    F: FnOnce(&Engine, &dyn Querier, &AtomicBool) -> Result<QueryResult, QueryError>
        + Send
        + 'static,
{
    let timeout = match p.get("timeout") {
        Some(v) => Duration::from_millis(
            parse_duration_param(v)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"timeout\": {e}")))?
                .max(1) as u64,
        )
        .min(st.query.timeout),
        None => st.query.timeout,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let began = Instant::now();
    let st2 = st.clone();
    let task = tokio::task::spawn_blocking(move || {
        let engine = &st2.query.engine;
        f(engine, &*st2.db, &cancel)
    });
    let outcome = match tokio::time::timeout(timeout + Duration::from_millis(50), task).await {
        Ok(joined) => joined
            .map_err(|e| ApiError::new(ErrorType::Internal, format!("query task failed: {e}")))?,
        Err(_) => Err(QueryError::Timeout),
    };
    st.metrics
        .record_query(range, began.elapsed().as_micros() as u64, outcome.is_err());
    let result = outcome.map_err(query_error)?;
    Ok(json_response(render_result(&result)))
}

fn json_response(body: impl Into<axum::body::Body>) -> Response {
    ([("content-type", "application/json")], body.into()).into_response()
}

fn success(data: serde_json::Value, warnings: Vec<String>) -> Response {
    // Key order as Prometheus writes it: status, data, warnings.
    let mut body = b"{\"status\":\"success\",\"data\":".to_vec();
    body.extend_from_slice(data.to_string().as_bytes());
    push_annotations(&mut body, "warnings", &warnings);
    body.push(b'}');
    json_response(body)
}

fn limit_param(p: &Params) -> Result<Option<usize>, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(0) => Ok(None),
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            _ => Err(ApiError::bad_data(format!(
                "invalid parameter \"limit\": cannot parse {v:?}: must be a non-negative integer"
            ))),
        },
    }
}

/// Runs a metadata lookup on the blocking pool over each `match[]` set (or none).
async fn lookup<T, F>(st: &SharedState, p: &Params, f: F) -> Result<Vec<T>, ApiError>
where
    T: Ord + Send + 'static,
    F: Fn(&dyn Querier, &[Matcher], i64, i64) -> eddy_storage::Result<Vec<T>> + Send + 'static,
{
    let sets = parse_matchers(p)?;
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    let db = st.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        if sets.is_empty() {
            all = f(&*db, &[], start, end)?;
        } else {
            for m in &sets {
                all.extend(f(&*db, m, start, end)?);
            }
            all.sort();
            all.dedup();
        }
        Ok(all)
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, format!("lookup task failed: {e}")))?
    .map_err(ApiError::storage)
}

fn truncate<T>(v: &mut Vec<T>, limit: Option<usize>) -> Vec<String> {
    match limit {
        Some(l) if v.len() > l => {
            v.truncate(l);
            vec!["results truncated due to limit".to_string()]
        }
        _ => Vec::new(),
    }
}

/// `GET|POST /api/v1/series`.
pub async fn series(
    State(st): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    if p.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let limit = limit_param(&p)?;
    let mut sets = lookup(&st, &p, |q, m, s, e| q.series(m, s, e)).await?;
    let warnings = truncate(&mut sets, limit);
    let data: Vec<serde_json::Value> = sets
        .iter()
        .map(|l| {
            serde_json::Value::Object(
                l.iter()
                    .map(|l| (l.name.clone(), serde_json::Value::String(l.value.clone())))
                    .collect(),
            )
        })
        .collect();
    Ok(success(serde_json::Value::Array(data), warnings))
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(
    State(st): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let limit = limit_param(&p)?;
    let mut names = lookup(&st, &p, |q, m, s, e| q.label_names(m, s, e)).await?;
    let warnings = truncate(&mut names, limit);
    Ok(success(serde_json::json!(names), warnings))
}

/// `GET /api/v1/label/<name>/values`.
pub async fn label_values(
    State(st): State<SharedState>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let name = decode_label_name(&name)?;
    let limit = limit_param(&p)?;
    let mut values = lookup(&st, &p, move |q, m, s, e| q.label_values(&name, m, s, e)).await?;
    let warnings = truncate(&mut values, limit);
    Ok(success(serde_json::json!(values), warnings))
}

/// Label names in the path may be `U__`-escaped UTF-8 (Prometheus 3).
fn decode_label_name(name: &str) -> Result<String, ApiError> {
    let Some(rest) = name.strip_prefix("U__") else {
        return Ok(name.to_string());
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            if chars.peek() == Some(&'_') {
                chars.next();
                out.push('_');
                continue;
            }
            let hex: String = chars.by_ref().take_while(|c| *c != '_').collect();
            let cp = u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| ApiError::bad_data(format!("invalid label name {name:?}")))?;
            out.push(cp);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `GET /api/v1/metadata`.
pub async fn metadata(
    State(st): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let limit = limit_param(&p)?;
    let entries = st.metadata.query(p.get("metric"), limit);
    let mut data = serde_json::Map::new();
    for (name, e) in entries {
        data.insert(name, serde_json::json!([e]));
    }
    Ok(success(serde_json::Value::Object(data), Vec::new()))
}

/// `GET /api/v1/status/buildinfo`. `version` is the Prometheus API level eddy answers, so
/// that clients that switch features on it (Grafana) treat eddy as a current Prometheus.
pub async fn buildinfo() -> Response {
    success(
        serde_json::json!({
            "version": "3.5.0",
            "revision": env!("CARGO_PKG_VERSION"),
            "branch": "eddy",
            "buildUser": "eddy",
            "buildDate": "",
            "goVersion": "rust",
            "application": "eddy",
            "eddyVersion": env!("CARGO_PKG_VERSION"),
        }),
        Vec::new(),
    )
}

/// `/api/v1/query_exemplars`: eddy stores no exemplars.
pub async fn exemplars() -> Response {
    success(serde_json::json!([]), Vec::new())
}

/// `/api/v1/rules`: no rules yet.
pub async fn rules() -> Response {
    success(serde_json::json!({"groups": []}), Vec::new())
}

/// `/api/v1/alerts`: no alerts yet.
pub async fn alerts() -> Response {
    success(serde_json::json!({"alerts": []}), Vec::new())
}

/// `/api/v1/status/tsdb`: head statistics and the top cardinality by metric and label.
pub async fn tsdb_status(
    State(st): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, &uri, &headers, &body)?;
    let limit = limit_param(&p)?.unwrap_or(10);
    let db = st.db.clone();
    let card = tokio::task::spawn_blocking(move || db.head().cardinality(limit))
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, format!("status task failed: {e}")))?
        .map_err(ApiError::storage)?;
    let stats = st.db.head_stats();
    let pairs = |v: &[(String, u64)]| -> serde_json::Value {
        serde_json::Value::Array(
            v.iter()
                .map(|(n, c)| serde_json::json!({"name": n, "value": c}))
                .collect(),
        )
    };
    let (min_t, max_t) = if stats.series == 0 {
        (0, 0)
    } else {
        (stats.min_t, stats.max_t)
    };
    Ok(success(
        serde_json::json!({
            "headStats": {"numSeries": stats.series, "numLabelPairs": card.num_label_pairs, "chunkCount": 0, "minTime": min_t, "maxTime": max_t},
            "seriesCountByMetricName": pairs(&card.series_by_metric),
            "labelValueCountByLabelName": pairs(&card.values_by_label),
            "memoryInBytesByLabelName": pairs(&card.bytes_by_label),
            "seriesCountByLabelValuePair": pairs(&card.series_by_pair),
        }),
        Vec::new(),
    ))
}

/// `GET /api/v1/targets`: the scraper's targets in Prometheus's shape.
pub async fn targets(State(st): State<SharedState>) -> Response {
    let targets = st
        .scraper
        .lock()
        .as_ref()
        .map(|s| s.targets())
        .unwrap_or_default();
    let active: Vec<serde_json::Value> = targets
        .iter()
        .map(|t| {
            let labels: serde_json::Map<String, serde_json::Value> = t
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let mut last = String::new();
            if let Some(ms) = t.last_scrape_ms {
                let mut secs = String::new();
                format_ts(&mut secs, ms);
                last = secs;
            }
            serde_json::json!({
                "discoveredLabels": labels.clone(),
                "labels": labels,
                "scrapePool": t.job,
                "scrapeUrl": t.scrape_url,
                "globalUrl": t.scrape_url,
                "lastError": t.last_error.clone().unwrap_or_default(),
                "lastScrape": last,
                "lastScrapeDuration": t.last_duration.as_secs_f64(),
                "health": t.health.as_str(),
                "scrapeInterval": format!("{}s", t.interval.as_secs()),
                "scrapeTimeout": format!("{}s", t.timeout.as_secs()),
            })
        })
        .collect();
    success(
        serde_json::json!({"activeTargets": active, "droppedTargets": []}),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_formats() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51+02:00").unwrap(),
            1_435_781_451_000
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
        let mut s = String::new();
        format_ts(&mut s, 1_435_781_451_781);
        s.push(' ');
        format_ts(&mut s, 4000);
        s.push(' ');
        format_ts(&mut s, -1500);
        s.push(' ');
        format_ts(&mut s, 1_435_781_451_780);
        assert_eq!(s, "1435781451.781 4 -1.5 1435781451.78");
        let mut v = String::new();
        for x in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            2.0,
            0.1,
            1e21,
            -9.223372036854776e18,
        ] {
            eddy_query::format::write_float(&mut v, x);
            v.push(' ');
        }
        assert_eq!(
            v,
            "NaN +Inf -Inf 2 0.1 1000000000000000000000 -9223372036854776000 "
        );
        assert_eq!(parse_duration_param("15s").unwrap(), 15_000);
        assert_eq!(parse_duration_param("0.5").unwrap(), 500);
        assert_eq!(decode_label_name("U__foo_2e_bar").unwrap(), "foo.bar");
    }
}
