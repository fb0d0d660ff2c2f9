//! Prometheus remote read (`POST /api/v1/read`): a snappy `prometheus.ReadRequest` in, either a
//! snappy `ReadResponse` of raw samples or a stream of framed `ChunkedReadResponse`s of XOR
//! chunks out, as Prometheus's `storage/remote/read_handler.go` answers.
//!
//! Schema (prometheus `prompb/remote.proto`, `types.proto`):
//!
//! ```text
//! ReadRequest   { repeated Query queries = 1; repeated ResponseType accepted_response_types = 2; }
//!                 ResponseType: SAMPLES = 0, STREAMED_XOR_CHUNKS = 1
//! Query         { int64 start_timestamp_ms = 1; int64 end_timestamp_ms = 2;
//!                 repeated LabelMatcher matchers = 3; ReadHints hints = 4; }
//! LabelMatcher  { Type type = 1 (EQ, NEQ, RE, NRE); string name = 2; string value = 3; }
//! ReadResponse  { repeated QueryResult results = 1; }
//! QueryResult   { repeated TimeSeries timeseries = 1; }
//! TimeSeries    { repeated Label labels = 1; repeated Sample samples = 2; }
//! ChunkedReadResponse { repeated ChunkedSeries chunked_series = 1; int64 query_index = 2; }
//! ChunkedSeries { repeated Label labels = 1; repeated Chunk chunks = 2; }
//! Chunk         { int64 min_time_ms = 1; int64 max_time_ms = 2; Encoding type = 3 (XOR = 1);
//!                 bytes data = 4; }
//! ```
//!
//! A streamed frame is `uvarint(len) │ crc32c(message) <4 bytes big-endian> │ message`; each
//! frame holds one series (split over several frames when its chunks pass 1 MiB).

pub mod xor;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use eddy_ingest::remote_write::wire::{
    put_bytes, put_tag, put_varint, Reader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT,
};
use eddy_storage::{Labels, MatchOp, Matcher, Querier, Series};

use super::{ApiError, ErrorType, SharedState};

/// Content type of a streamed response.
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
/// A frame is closed once its chunks pass this size (Prometheus's default
/// `--storage.remote.read-max-bytes-in-frame`).
pub const MAX_BYTES_IN_FRAME: usize = 1 << 20;

/// `ReadRequest.ResponseType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// Whole series of raw samples in one snappy message.
    Samples,
    /// Framed messages of XOR chunks.
    StreamedXorChunks,
}

/// One decoded `Query`.
#[derive(Debug, Clone)]
pub struct ReadQuery {
    /// Inclusive start (ms).
    pub start_ms: i64,
    /// Inclusive end (ms).
    pub end_ms: i64,
    /// Label matchers; all must match.
    pub matchers: Vec<Matcher>,
}

/// A decoded `ReadRequest`.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// Queries, answered in order.
    pub queries: Vec<ReadQuery>,
    /// Response types the client accepts, in its order of preference.
    pub accepted: Vec<i64>,
}

impl ReadRequest {
    /// The first accepted type we implement; SAMPLES when the client names none.
    pub fn response_type(&self) -> Result<ResponseType, String> {
        if self.accepted.is_empty() {
            return Ok(ResponseType::Samples);
        }
        for &t in &self.accepted {
            match t {
                0 => return Ok(ResponseType::Samples),
                1 => return Ok(ResponseType::StreamedXorChunks),
                _ => {}
            }
        }
        Err(format!(
            "server does not support any of the requested response types: {:?}",
            self.accepted
        ))
    }
}

/// Decodes an uncompressed `ReadRequest`.
pub fn decode_read_request(body: &[u8]) -> Result<ReadRequest, String> {
    let pb = |e: eddy_ingest::Error| e.to_string().replace("remote_write", "remote read");
    let mut r = Reader::new(body);
    let mut req = ReadRequest {
        queries: Vec::new(),
        accepted: Vec::new(),
    };
    while let Some(f) = r.field().map_err(pb)? {
        match f.num {
            1 => {
                Reader::expect(f, WIRE_LEN).map_err(pb)?;
                let q = r.sub().map_err(pb)?;
                req.queries.push(decode_query(q)?);
            }
            2 if f.wire == WIRE_VARINT => req.accepted.push(r.varint().map_err(pb)? as i64),
            2 => {
                // Packed (proto3's default for repeated enums).
                Reader::expect(f, WIRE_LEN).map_err(pb)?;
                let mut p = r.sub().map_err(pb)?;
                while !p.is_empty() {
                    req.accepted.push(p.varint().map_err(pb)? as i64);
                }
            }
            _ => r.skip(f).map_err(pb)?,
        }
    }
    Ok(req)
}

fn decode_query(mut r: Reader<'_>) -> Result<ReadQuery, String> {
    let pb = |e: eddy_ingest::Error| e.to_string().replace("remote_write", "remote read");
    let mut q = ReadQuery {
        start_ms: 0,
        end_ms: 0,
        matchers: Vec::new(),
    };
    while let Some(f) = r.field().map_err(pb)? {
        match f.num {
            1 | 2 => {
                Reader::expect(f, WIRE_VARINT).map_err(pb)?;
                let v = r.varint().map_err(pb)? as i64;
                if f.num == 1 {
                    q.start_ms = v;
                } else {
                    q.end_ms = v;
                }
            }
            3 => {
                Reader::expect(f, WIRE_LEN).map_err(pb)?;
                let m = r.sub().map_err(pb)?;
                q.matchers.push(decode_matcher(m)?);
            }
            _ => r.skip(f).map_err(pb)?,
        }
    }
    Ok(q)
}

fn decode_matcher(mut r: Reader<'_>) -> Result<Matcher, String> {
    let pb = |e: eddy_ingest::Error| e.to_string().replace("remote_write", "remote read");
    let (mut ty, mut name, mut value) = (0u64, "", "");
    while let Some(f) = r.field().map_err(pb)? {
        match f.num {
            1 => {
                Reader::expect(f, WIRE_VARINT).map_err(pb)?;
                ty = r.varint().map_err(pb)?;
            }
            2 | 3 => {
                Reader::expect(f, WIRE_LEN).map_err(pb)?;
                let b = r.bytes().map_err(pb)?;
                let s = std::str::from_utf8(b)
                    .map_err(|_| "decode remote read request: matcher is not UTF-8".to_string())?;
                if f.num == 2 {
                    name = s;
                } else {
                    value = s;
                }
            }
            _ => r.skip(f).map_err(pb)?,
        }
    }
    let op = match ty {
        0 => MatchOp::Equal,
        1 => MatchOp::NotEqual,
        2 => MatchOp::RegexMatch,
        3 => MatchOp::RegexNoMatch,
        other => return Err(format!("invalid matcher type {other} for label {name:?}")),
    };
    Matcher::new(op, name, value).map_err(|e| e.to_string())
}

/// `POST /api/v1/read`.
pub async fn read(State(st): State<SharedState>, body: Bytes) -> Result<Response, ApiError> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .map_err(|e| ApiError::bad_data(format!("decompress remote read request: {e}")))?;
    let req = decode_read_request(&raw).map_err(ApiError::bad_data)?;
    let ty = req.response_type().map_err(ApiError::bad_data)?;
    let db = st.db.clone();
    // Selecting and encoding are CPU work: both run off the async threads.
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let results = req
            .queries
            .iter()
            .map(|q| {
                // TSDB selects nothing without a matcher; do the same rather than dump all.
                if q.matchers.is_empty() {
                    return Ok(Vec::new());
                }
                db.select(&q.matchers, q.start_ms, q.end_ms)
            })
            .collect::<eddy_storage::Result<Vec<Vec<Series>>>>()
            .map_err(ApiError::storage)?;
        match ty {
            ResponseType::Samples => {
                let msg = encode_read_response(&results);
                let mut out = Vec::new();
                eddy_ingest::remote_write::compress_snappy(&msg, &mut out).map_err(|e| {
                    ApiError::new(ErrorType::Internal, format!("compress read response: {e}"))
                })?;
                Ok(out)
            }
            ResponseType::StreamedXorChunks => Ok(encode_streamed(&results, MAX_BYTES_IN_FRAME)),
        }
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, format!("remote read task failed: {e}")))??;
    let mut resp = (StatusCode::OK, Body::from(body)).into_response();
    let h = resp.headers_mut();
    match ty {
        ResponseType::Samples => {
            h.insert(
                "content-type",
                HeaderValue::from_static("application/x-protobuf"),
            );
            h.insert("content-encoding", HeaderValue::from_static("snappy"));
        }
        ResponseType::StreamedXorChunks => {
            h.insert(
                "content-type",
                HeaderValue::from_static(STREAMED_CONTENT_TYPE),
            );
        }
    }
    Ok(resp)
}

fn put_labels(dst: &mut Vec<u8>, labels: &Labels, scratch: &mut Vec<u8>) {
    for l in labels.iter() {
        scratch.clear();
        put_bytes(scratch, 1, l.name.as_bytes());
        put_bytes(scratch, 2, l.value.as_bytes());
        put_bytes(dst, 1, scratch);
    }
}

/// The uncompressed `ReadResponse`: one `QueryResult` per query, in order.
pub fn encode_read_response(results: &[Vec<Series>]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut qr, mut ts, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    for series in results {
        qr.clear();
        for s in series {
            ts.clear();
            put_labels(&mut ts, &s.labels, &mut scratch);
            for (&t, &v) in s.timestamps.iter().zip(&s.values) {
                // Sample { double value = 1; int64 timestamp = 2; }: 9 bytes + tag + varint.
                put_tag(&mut ts, 2, WIRE_LEN);
                put_varint(
                    &mut ts,
                    10 + eddy_ingest::remote_write::wire::varint_len(t as u64) as u64,
                );
                put_tag(&mut ts, 1, WIRE_FIXED64);
                ts.extend_from_slice(&v.to_bits().to_le_bytes());
                put_tag(&mut ts, 2, WIRE_VARINT);
                put_varint(&mut ts, t as u64);
            }
            put_bytes(&mut qr, 1, &ts);
        }
        put_bytes(&mut out, 1, &qr);
    }
    out
}

/// The streamed body: for each query, each series as framed `ChunkedReadResponse`s.
pub fn encode_streamed(results: &[Vec<Series>], max_frame_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut labels, mut chunks, mut cs, mut msg, mut scratch) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (qi, series) in results.iter().enumerate() {
        for s in series {
            labels.clear();
            put_labels(&mut labels, &s.labels, &mut scratch);
            chunks.clear();
            let all = xor::encode_chunks(&s.timestamps, &s.values);
            for (i, (mint, maxt, data)) in all.iter().enumerate() {
                scratch.clear();
                put_tag(&mut scratch, 1, WIRE_VARINT);
                put_varint(&mut scratch, *mint as u64);
                put_tag(&mut scratch, 2, WIRE_VARINT);
                put_varint(&mut scratch, *maxt as u64);
                put_tag(&mut scratch, 3, WIRE_VARINT);
                put_varint(&mut scratch, 1); // XOR
                put_bytes(&mut scratch, 4, data);
                put_bytes(&mut chunks, 2, &scratch);
                if chunks.len() >= max_frame_bytes || i + 1 == all.len() {
                    cs.clear();
                    cs.extend_from_slice(&labels);
                    cs.extend_from_slice(&chunks);
                    msg.clear();
                    put_bytes(&mut msg, 1, &cs);
                    if qi != 0 {
                        put_tag(&mut msg, 2, WIRE_VARINT);
                        put_varint(&mut msg, qi as u64);
                    }
                    put_varint(&mut out, msg.len() as u64);
                    out.extend_from_slice(&crc32c::crc32c(&msg).to_be_bytes());
                    out.extend_from_slice(&msg);
                    chunks.clear();
                }
            }
        }
    }
    out
}
