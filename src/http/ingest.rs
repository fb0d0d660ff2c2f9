//! Ingest routes: remote_write, InfluxDB line protocol (1.x and 2.x), OTLP/HTTP and the
//! Pushgateway protocol. Decoding and appending run on the blocking pool; a request is answered
//! only after its samples are in the WAL.

mod scratch;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use axum::body::{Body, HttpBody};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eddy_ingest::influx::{self, InfluxOptions, InfluxScratch, KeyedLines};
use eddy_ingest::otlp::{self, OtlpOptions};
use eddy_ingest::remote_write::{self, KeyedSeries, MetricMetadata};
use eddy_ingest::text::{self, TextOptions};
use eddy_storage::{stale_nan, AppendOutcome, KeyScratch, Labels, SeriesKey, WriteBatch};
use parking_lot::Mutex;
use serde::Deserialize;

use super::{now_ms, ApiError, ErrorType, SharedState};
pub use scratch::ScratchPool;
use scratch::{BatchUse, ScratchSet};

/// Ingest settings shared by every format.
#[derive(Debug, Clone, Default)]
pub struct IngestConfig {
    /// Largest body accepted, after decompression.
    pub max_body_bytes: usize,
    /// Label names removed from every series before storage.
    pub drop_labels: HashSet<String>,
}

/// Reused state of the keyed remote_write path.
#[derive(Default)]
struct KeyedRequest {
    seen: KeyedSeries,
    fresh: NewKeys,
}

/// Reused state of the keyed line protocol path.
#[derive(Default)]
struct KeyedInflux {
    lines: KeyedLines,
    fresh: NewKeys,
}

/// Keys of series a request sent with labels, to remember in the label-run memory.
#[derive(Default)]
struct NewKeys {
    entries: Vec<(u128, SeriesKey)>,
    scratch: KeyScratch,
}

impl NewKeys {
    /// Keys the batch series listed in `misses` (batch index, label-run hash) from their
    /// labels, after the configured drops, as the head would, and remembers them in the
    /// server's label-run memory.
    fn key_and_remember(
        &mut self,
        st: &SharedState,
        batch: &mut WriteBatch<'_>,
        misses: &[(u32, u128)],
    ) {
        self.entries.clear();
        for &(i, hash) in misses {
            if let Ok(key) = SeriesKey::of(batch.series_labels(i as usize), &mut self.scratch) {
                batch.series[i as usize].key = Some(key);
                self.entries.push((hash, key));
            }
        }
        st.series_keys.insert_all(
            &self.entries,
            st.db.head_stats().series as usize,
            st.db.head().max_t(),
        );
    }

    fn retained_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u128, SeriesKey)>()
    }
}

/// Reads the request body into `dst` (emptied first), sized once from `Content-Length` so a
/// body hyper delivers in many chunks is copied once into reused memory, not gathered into a
/// new buffer per request. Refuses bodies over `max` bytes with 413.
async fn read_body(
    body: Body,
    content_length: Option<usize>,
    max: usize,
    dst: &mut Vec<u8>,
) -> Result<(), ApiError> {
    dst.clear();
    let too_large = |len: usize| {
        ApiError::new(
            ErrorType::TooLarge,
            format!("request body of {len} bytes or more is over the limit of {max} bytes"),
        )
    };
    if let Some(len) = content_length {
        if len > max {
            return Err(too_large(len));
        }
        if dst.capacity() < len {
            // A fresh block rather than `reserve`: the buffer is empty, and growing it through
            // `realloc` copied the old block's bytes (1.3 % of line protocol ingest's
            // instructions). An eighth more than this body, so that the next, slightly
            // larger body from the same reporter fits; doubling would pin twice the memory.
            *dst = Vec::with_capacity(len.saturating_add(len / 8));
        }
    }
    let mut body = body;
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| ApiError::bad_data(format!("read request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if dst.len() + data.len() > max {
                return Err(too_large(dst.len() + data.len()));
            }
            dst.extend_from_slice(&data);
        }
    }
    Ok(())
}

/// Reads the request body into a reused buffer, waits for an ingest worker, and runs `f` on
/// the blocking pool with the body and the worker's scratch set.
async fn with_scratch_set<F>(
    st: SharedState,
    content_length: Option<usize>,
    body: Body,
    f: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&SharedState, &[u8], &mut ScratchSet) -> Result<Response, ApiError> + Send + 'static,
{
    let pool = &st.ingest_scratch;
    let mut wire = pool.wire();
    let read = read_body(
        body,
        content_length,
        st.ingest.max_body_bytes,
        &mut wire.bytes,
    )
    .await;
    if let Err(e) = read {
        pool.return_wire(wire);
        return Err(e);
    }
    let Some(mut lent) = pool.checkout().await else {
        // Only while the server shuts down: another instance may take the retry.
        return Err(ApiError::new(
            ErrorType::Unavailable,
            "ingest workers are shut down",
        ));
    };
    tokio::task::spawn_blocking(move || {
        let r = f(&st, &wire.bytes, &mut lent.set);
        st.ingest_scratch.checkin(lent, wire);
        r
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, format!("ingest task failed: {e}")))?
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    header(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Decompresses `body` per `Content-Encoding` (gzip, snappy framing is not HTTP's) into `buf`,
/// or returns it as is.
fn decoded_body<'b>(
    headers: &HeaderMap,
    body: &'b [u8],
    buf: &'b mut Vec<u8>,
    max: usize,
) -> Result<&'b [u8], ApiError> {
    match header(headers, "content-encoding").map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(body),
        Some(e) if e.is_empty() || e == "identity" => Ok(body),
        Some(e) if e == "gzip" || e == "x-gzip" => {
            influx::gunzip(body, buf, max).map_err(|e| {
                let msg = e.to_string();
                if msg.contains("limit") {
                    ApiError::new(ErrorType::TooLarge, msg)
                } else {
                    ApiError::bad_data(msg)
                }
            })?;
            Ok(buf.as_slice())
        }
        Some(e) => Err(ApiError::new(
            ErrorType::UnsupportedMediaType,
            format!("unsupported Content-Encoding {e:?}"),
        )),
    }
}

/// Removes the configured labels (an empty value is dropped by storage) and appends.
pub(crate) fn store(
    st: &SharedState,
    batch: &mut WriteBatch<'_>,
    format: &'static str,
) -> Result<AppendOutcome, ApiError> {
    drop_configured_labels(st, batch);
    let outcome = st.db.append(batch).map_err(ApiError::storage)?;
    st.metrics.record_append(format, &outcome);
    Ok(outcome)
}

fn drop_configured_labels(st: &SharedState, batch: &mut WriteBatch<'_>) {
    if !st.ingest.drop_labels.is_empty() {
        for (name, value) in batch.labels.iter_mut() {
            if st.ingest.drop_labels.contains(name.as_ref()) {
                *value = Cow::Borrowed("");
            }
        }
    }
}

/// Decodes a remote_write request and appends it, skipping the labels of series whose label
/// bytes were seen before ([`eddy_ingest::remote_write::SeriesKeyCache`]). A series that
/// was skipped but is no longer in the head is appended again with its labels.
fn decode_and_store_remote_write<'a>(
    st: &SharedState,
    body: &'a [u8],
    batch: &mut WriteBatch<'a>,
    meta: &mut Vec<MetricMetadata<'a>>,
    keyed: &mut KeyedRequest,
) -> Result<(AppendOutcome, remote_write::DecodeStats), ApiError> {
    let stats = {
        let known = st.series_keys.read();
        remote_write::decode_write_request_keyed(body, batch, meta, &known, &mut keyed.seen)
            .map_err(|e| ApiError::bad_data(e.to_string()))?
    };
    drop_configured_labels(st, batch);
    keyed.fresh.key_and_remember(st, batch, &keyed.seen.misses);
    let mut outcome = st.db.append(batch).map_err(ApiError::storage)?;
    st.series_keys
        .remember_refs(batch, &keyed.seen.refs, &keyed.seen.misses);
    if !outcome.unresolved.is_empty() {
        let mut again = WriteBatch::new();
        for &i in &outcome.unresolved {
            let run = keyed.seen.run_of(i).ok_or_else(|| {
                ApiError::new(
                    ErrorType::Internal,
                    format!("series {i} was not sent keyed"),
                )
            })?;
            again.start_series();
            if !remote_write::push_run_labels(body, run, &mut again) {
                return Err(ApiError::new(
                    ErrorType::Internal,
                    format!("the labels of series {i} no longer decode"),
                ));
            }
            let (ts, vals) = batch.series_samples(i as usize);
            for (&t, &v) in ts.iter().zip(vals) {
                again.push_sample(t, v);
            }
        }
        drop_configured_labels(st, &mut again);
        outcome.absorb(st.db.append(&mut again).map_err(ApiError::storage)?);
    }
    st.metrics.record_append("remote_write", &outcome);
    Ok((outcome, stats))
}

/// Decodes a line protocol body and appends it, skipping the labels of lines whose
/// measurement, tags and field keys were seen before (the label-run memory). A series that
/// was skipped but is no longer in the head is decoded again from its line, with labels.
fn decode_and_store_influx<'a>(
    st: &SharedState,
    body: &'a [u8],
    opts: &'a InfluxOptions,
    scratch: &'a mut InfluxScratch,
    batch: &mut WriteBatch<'a>,
    keyed: &mut KeyedInflux,
) -> Result<(influx::InfluxStats, AppendOutcome), ApiError> {
    let stats = {
        let known = st.series_keys.read();
        influx::parse_body_keyed(body, opts, scratch, batch, &known, &mut keyed.lines)
            .map_err(|e| ApiError::bad_data(e.to_string()))?
    };
    st.metrics
        .string_fields_skipped
        .fetch_add(stats.string_fields_skipped, Ordering::Relaxed);
    drop_configured_labels(st, batch);
    keyed.fresh.key_and_remember(st, batch, &keyed.lines.misses);
    let mut outcome = st.db.append(batch).map_err(ApiError::storage)?;
    st.series_keys
        .remember_refs(batch, &keyed.lines.refs, &keyed.lines.misses);
    if !outcome.unresolved.is_empty() {
        let mut again_scratch = InfluxScratch::new();
        let mut again = WriteBatch::new();
        let complete = influx::parse_series_again(
            body,
            opts,
            &mut again_scratch,
            &mut again,
            &keyed.lines,
            &outcome.unresolved,
        )
        .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))?;
        if !complete {
            return Err(ApiError::new(
                ErrorType::Internal,
                "a remembered line no longer decodes as it did",
            ));
        }
        drop_configured_labels(st, &mut again);
        outcome.absorb(st.db.append(&mut again).map_err(ApiError::storage)?);
    }
    st.metrics.record_append("influx", &outcome);
    Ok((stats, outcome))
}

/// Joins the rejections of an append and the decoder's complaints into one 400 message, or
/// `None` when everything was stored.
fn rejection_message(
    outcome: &AppendOutcome,
    decode_errors: &[String],
    decode_error_count: usize,
) -> Option<String> {
    let rejected = outcome.rejected_total();
    if rejected == 0 && decode_error_count == 0 {
        return None;
    }
    let mut parts: Vec<String> = decode_errors.to_vec();
    if decode_error_count > decode_errors.len() {
        parts.push(format!(
            "… and {} more invalid series",
            decode_error_count - decode_errors.len()
        ));
    }
    if rejected > 0 {
        let counts: Vec<String> = outcome
            .rejected
            .iter()
            .map(|(r, n)| format!("{n} {}", r.as_str()))
            .collect();
        parts.push(format!(
            "{rejected} samples rejected ({}); {} stored",
            counts.join(", "),
            outcome.accepted
        ));
        parts.extend(outcome.messages.iter().cloned());
    }
    Some(parts.join("\n"))
}

/// `POST /api/v1/write`: Prometheus remote_write 1.0 (protobuf, snappy raw block).
pub async fn remote_write(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(ct) = header(&headers, "content-type") {
        let ct = ct.to_ascii_lowercase();
        if !ct.starts_with("application/x-protobuf") {
            return Err(ApiError::new(
                ErrorType::UnsupportedMediaType,
                format!(
                    "unsupported Content-Type {ct:?}: remote_write needs application/x-protobuf"
                ),
            ));
        }
        if ct.contains("proto=io.prometheus.write.v2") {
            return Err(ApiError::new(
                ErrorType::UnsupportedMediaType,
                "remote_write 2.0 is not supported; send prometheus.WriteRequest (1.0)",
            ));
        }
    }
    if let Some(enc) = header(&headers, "content-encoding") {
        if !enc.eq_ignore_ascii_case("snappy") {
            return Err(ApiError::new(
                ErrorType::UnsupportedMediaType,
                format!("unsupported Content-Encoding {enc:?}: remote_write needs snappy"),
            ));
        }
    }
    with_scratch_set(
        st,
        content_length(&headers),
        body,
        decode_and_store_remote_write_request,
    )
    .await
}

fn decode_and_store_remote_write_request(
    st: &SharedState,
    wire: &[u8],
    set: &mut ScratchSet,
) -> Result<Response, ApiError> {
    let ScratchSet {
        snappy,
        batch,
        keyed,
        ..
    } = set;
    let buf = snappy
        .decompress(wire, st.ingest.max_body_bytes)
        .map_err(|e| match e {
            eddy_ingest::Error::SnappyTooLarge { .. } => {
                ApiError::new(ErrorType::TooLarge, e.to_string())
            }
            e => ApiError::bad_data(e.to_string()),
        })?;
    let request_bytes = buf.len();
    let (r, used) = ScratchSet::lend_batch(batch, |batch| {
        let mut meta = Vec::new();
        let (outcome, stats) = decode_and_store_remote_write(st, buf, batch, &mut meta, keyed)?;
        st.metadata.update(&meta);
        match rejection_message(&outcome, &stats.invalid, stats.invalid_series) {
            Some(msg) => Err(ApiError::bad_data(msg)),
            None => Ok(StatusCode::NO_CONTENT.into_response()),
        }
    });
    set.note(request_bytes, used);
    r
}

/// Query parameters of InfluxDB's write endpoints (1.x and 2.x names).
#[derive(Debug, Deserialize)]
pub struct InfluxParams {
    db: Option<String>,
    #[allow(dead_code)]
    rp: Option<String>,
    bucket: Option<String>,
    #[allow(dead_code)]
    org: Option<String>,
    precision: Option<String>,
}

/// `POST /write`: InfluxDB 1.x line protocol (as Flink's InfluxdbReporter sends).
pub async fn influx_v1(
    st: State<SharedState>,
    q: Query<InfluxParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    influx_write(st, q, headers, body, false).await
}

/// `POST /api/v2/write`: InfluxDB 2.x line protocol.
pub async fn influx_v2(
    st: State<SharedState>,
    q: Query<InfluxParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    influx_write(st, q, headers, body, true).await
}

async fn influx_write(
    State(st): State<SharedState>,
    Query(q): Query<InfluxParams>,
    headers: HeaderMap,
    body: Body,
    v2: bool,
) -> Response {
    let result = with_scratch_set(st, content_length(&headers), body, move |st, wire, set| {
        let precision = match q.precision.as_deref() {
            None | Some("") => influx::Precision::default(),
            Some(p) => influx::parse_precision(p).map_err(|e| ApiError::bad_data(e.to_string()))?,
        };
        let mut extra_labels = Vec::new();
        let db = if v2 { q.bucket } else { q.db };
        if let Some(db) = db.filter(|d| !d.is_empty()) {
            extra_labels.push(("db".to_string(), db));
        }
        let opts = InfluxOptions {
            precision,
            now_ms: now_ms(),
            extra_labels,
            ..Default::default()
        };
        let ScratchSet {
            body: unzipped,
            batch,
            keyed_lines,
            influx: scratch,
            ..
        } = set;
        let body = decoded_body(&headers, wire, unzipped, st.ingest.max_body_bytes)?;
        let request_bytes = body.len();
        let (r, used) = ScratchSet::lend_batch(batch, |batch| {
            decode_and_store_influx(st, body, &opts, scratch, batch, keyed_lines)
        });
        set.note(request_bytes, used);
        let (stats, outcome) = r?;
        let mut problems = Vec::new();
        if let Some(m) = stats.error_message() {
            problems.push(m);
        }
        if let Some(m) = rejection_message(&outcome, &[], 0) {
            problems.push(m);
        }
        if problems.is_empty() {
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(ApiError::bad_data(format!(
                "partial write: {}",
                problems.join("\n")
            )))
        }
    })
    .await;
    // InfluxDB clients expect `{"error": …}` bodies.
    match result {
        Ok(r) => r,
        Err(e) => {
            let status = e.kind.status();
            let msg = if e.kind == ErrorType::Internal {
                "internal error".to_string()
            } else {
                e.message
            };
            (
                status,
                [("content-type", "application/json")],
                serde_json::json!({ "error": msg }).to_string(),
            )
                .into_response()
        }
    }
}

/// `POST /v1/metrics`: OTLP/HTTP metrics in protobuf.
pub async fn otlp(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ct = header(&headers, "content-type")
        .unwrap_or("application/x-protobuf")
        .to_ascii_lowercase();
    if ct.starts_with("application/json") {
        return Err(ApiError::new(
            ErrorType::UnsupportedMediaType,
            "OTLP/JSON is not supported; send application/x-protobuf",
        ));
    }
    if !ct.starts_with("application/x-protobuf") && !ct.starts_with("application/protobuf") {
        return Err(ApiError::new(
            ErrorType::UnsupportedMediaType,
            format!("unsupported Content-Type {ct:?}: OTLP needs application/x-protobuf"),
        ));
    }
    with_scratch_set(st, content_length(&headers), body, move |st, wire, set| {
        let opts = OtlpOptions {
            now_ms: now_ms(),
            ..Default::default()
        };
        let ScratchSet {
            body: unzipped,
            batch,
            otlp: scratch,
            ..
        } = set;
        let body = decoded_body(&headers, wire, unzipped, st.ingest.max_body_bytes)?;
        let request_bytes = body.len();
        let (outcome, used) = ScratchSet::lend_batch(batch, |batch| {
            let stats = {
                let mut acc = st.otlp_deltas.lock();
                otlp::decode_metrics_request(body, &opts, &mut acc, scratch, batch)
                    .map_err(|e| ApiError::bad_data(e.to_string()))?
            };
            st.metrics.otlp_points_dropped.fetch_add(
                stats.points_dropped + stats.exponential_histogram_points_skipped,
                Ordering::Relaxed,
            );
            store(st, batch, "otlp")
        });
        set.note(request_bytes, used);
        let outcome = outcome?;
        match rejection_message(&outcome, &[], 0) {
            Some(msg) => Err(ApiError::bad_data(msg)),
            // An empty ExportMetricsServiceResponse is zero bytes of protobuf.
            None => Ok((
                StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
                .into_response()),
        }
    })
    .await
}

/// Series most recently pushed to each Pushgateway group, so a replacing push or a delete can
/// end the series that are gone with stale markers (Flink pushes have no other end signal).
#[derive(Debug, Default)]
pub struct PushGroups {
    groups: Mutex<HashMap<String, Vec<Labels>>>,
}

enum PushMode {
    /// PUT: the push replaces the whole group.
    ReplaceGroup,
    /// POST: the push replaces the metric families it contains.
    ReplaceFamilies,
}

/// `PUT /metrics/job/<job>{/<label>/<value>}`.
pub async fn push_put(
    st: State<SharedState>,
    path: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    push(st, path, headers, body, PushMode::ReplaceGroup).await
}

/// `POST /metrics/job/<job>{/<label>/<value>}`.
pub async fn push_post(
    st: State<SharedState>,
    path: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    push(st, path, headers, body, PushMode::ReplaceFamilies).await
}

fn grouping_key(grouping: &[(String, String)]) -> String {
    let mut g: Vec<&(String, String)> = grouping.iter().collect();
    g.sort();
    g.iter().map(|(k, v)| format!("{k}\u{1}{v}\u{2}")).collect()
}

async fn push(
    State(st): State<SharedState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
    mode: PushMode,
) -> Result<Response, ApiError> {
    let grouping = eddy_ingest::pushgateway::parse_grouping_path(&format!("job/{path}"))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    with_scratch_set(st, content_length(&headers), body, move |st, wire, set| {
        let body = decoded_body(&headers, wire, &mut set.body, st.ingest.max_body_bytes)?;
        let request_bytes = body.len();
        let r = store_push(st, body, &headers, &grouping, mode);
        set.note(request_bytes, BatchUse::default());
        r
    })
    .await
}

/// Parses a push body and stores it, with stale markers for the group's series it ended.
fn store_push(
    st: &SharedState,
    body: &[u8],
    headers: &HeaderMap,
    grouping: &[(String, String)],
    mode: PushMode,
) -> Result<Response, ApiError> {
    {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_data(format!("push body is not UTF-8: {e}")))?;
        let now = now_ms();
        let opts = TextOptions::for_content_type(header(headers, "content-type"), now);
        let mut parsed = WriteBatch::new();
        let mut meta: Vec<MetricMetadata<'_>> = Vec::new();
        text::parse_text(text, &opts, &mut parsed, &mut meta)
            .map_err(|e| ApiError::bad_data(e.to_string()))?;
        if parsed.timestamps.iter().any(|&t| t != now) {
            return Err(ApiError::bad_data(
                "pushed metrics must not have timestamps",
            ));
        }
        st.metadata.update(&meta);
        // Grouping labels win over labels of the same name in the body, as the Pushgateway does.
        let mut batch = WriteBatch::new();
        let mut pushed: Vec<Labels> = Vec::with_capacity(parsed.series.len());
        for i in 0..parsed.series.len() {
            batch.start_series();
            for (n, v) in parsed.series_labels(i) {
                if !grouping.iter().any(|(g, _)| g == n.as_ref()) {
                    batch.push_label(n.clone(), v.clone());
                }
            }
            for (n, v) in grouping {
                batch.push_label(n.as_str(), v.as_str());
            }
            let (ts, vals) = parsed.series_samples(i);
            for (&t, &v) in ts.iter().zip(vals) {
                batch.push_sample(t, v);
            }
            pushed.push(Labels::from_pairs(
                batch
                    .series_labels(i)
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string())),
            ));
        }
        let key = grouping_key(grouping);
        let ended = {
            let mut groups = st.push_groups.groups.lock();
            let old = groups.remove(&key).unwrap_or_default();
            let now_set: HashSet<&Labels> = pushed.iter().collect();
            let (ended, kept): (Vec<Labels>, Vec<Labels>) = match mode {
                PushMode::ReplaceGroup => (
                    old.into_iter().filter(|l| !now_set.contains(l)).collect(),
                    Vec::new(),
                ),
                PushMode::ReplaceFamilies => {
                    let families: HashSet<&str> =
                        pushed.iter().filter_map(|l| l.metric_name()).collect();
                    old.into_iter()
                        .filter(|l| !now_set.contains(l))
                        .partition(|l| l.metric_name().is_some_and(|n| families.contains(n)))
                }
            };
            let mut next = kept;
            next.extend(pushed.iter().cloned());
            groups.insert(key, next);
            ended
        };
        append_stale(&mut batch, &ended, now);
        let outcome = store(st, &mut batch, "pushgateway")?;
        match rejection_message(&outcome, &[], 0) {
            Some(msg) => Err(ApiError::bad_data(msg)),
            None => Ok(StatusCode::OK.into_response()),
        }
    }
}

fn append_stale(batch: &mut WriteBatch<'_>, ended: &[Labels], t: i64) {
    for l in ended {
        batch.start_series();
        for label in l.iter() {
            batch.push_label(label.name.clone(), label.value.clone());
        }
        batch.push_sample(t, stale_nan());
    }
}

/// `DELETE /metrics/job/<job>{/<label>/<value>}`: ends every series of the group.
pub async fn push_delete(
    State(st): State<SharedState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let grouping = eddy_ingest::pushgateway::parse_grouping_path(&format!("job/{path}"))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let ended = st
            .push_groups
            .groups
            .lock()
            .remove(&grouping_key(&grouping))
            .unwrap_or_default();
        let mut batch = WriteBatch::new();
        append_stale(&mut batch, &ended, now_ms());
        store(&st, &mut batch, "pushgateway")?;
        Ok(StatusCode::ACCEPTED.into_response())
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, format!("ingest task failed: {e}")))?
}

/// `/metrics/job/` without a job name.
pub async fn push_without_job() -> ApiError {
    ApiError::bad_data(
        "parse pushgateway grouping path: the job name is missing (use /metrics/job/<job>)",
    )
}
