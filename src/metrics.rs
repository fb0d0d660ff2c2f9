//! eddy's own metrics, rendered in the Prometheus text format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::response::IntoResponse;
use eddy_storage::{AppendOutcome, RejectReason};
use parking_lot::Mutex;

use crate::http::SharedState;

const FORMATS: [&str; 5] = ["remote_write", "influx", "otlp", "pushgateway", "scrape"];
const REASONS: [RejectReason; 5] = [
    RejectReason::OutOfOrder,
    RejectReason::DuplicateTimestamp,
    RejectReason::TooOld,
    RejectReason::InvalidLabels,
    RejectReason::SeriesLimit,
];

/// Counters kept by the server.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    samples: [AtomicU64; 5],
    requests: [AtomicU64; 5],
    rejected: [[AtomicU64; 5]; 5],
    /// InfluxDB string fields, which have no numeric value.
    pub string_fields_skipped: AtomicU64,
    /// OTLP points that cannot be stored faithfully.
    pub otlp_points_dropped: AtomicU64,
    /// Queries run and their total seconds, by endpoint (instant, range).
    pub queries: [AtomicU64; 2],
    /// Total query time in microseconds, by endpoint.
    pub query_micros: [AtomicU64; 2],
    /// Query failures.
    pub query_errors: AtomicU64,
    scratch: Mutex<String>,
}

impl ServerMetrics {
    /// Counts an append of one ingest format.
    pub fn record_append(&self, format: &str, outcome: &AppendOutcome) {
        let Some(f) = FORMATS.iter().position(|x| *x == format) else {
            return;
        };
        self.requests[f].fetch_add(1, Ordering::Relaxed);
        self.samples[f].fetch_add(outcome.accepted, Ordering::Relaxed);
        for (r, n) in &outcome.rejected {
            if let Some(i) = REASONS.iter().position(|x| x == r) {
                self.rejected[f][i].fetch_add(*n, Ordering::Relaxed);
            }
        }
    }

    /// Counts a query (`range` = query_range) and its duration.
    pub fn record_query(&self, range: bool, micros: u64, failed: bool) {
        let i = usize::from(range);
        self.queries[i].fetch_add(1, Ordering::Relaxed);
        self.query_micros[i].fetch_add(micros, Ordering::Relaxed);
        if failed {
            self.query_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `GET /metrics`.
pub async fn render(State(st): State<SharedState>) -> impl IntoResponse {
    let m = &st.metrics;
    let mut out = std::mem::take(&mut *m.scratch.lock());
    out.clear();
    family(
        &mut out,
        "eddy_ingest_samples_total",
        "counter",
        "Samples stored, by ingest format.",
    );
    for (i, f) in FORMATS.iter().enumerate() {
        let _ = writeln!(
            out,
            "eddy_ingest_samples_total{{format=\"{f}\"}} {}",
            m.samples[i].load(Ordering::Relaxed)
        );
    }
    family(
        &mut out,
        "eddy_ingest_requests_total",
        "counter",
        "Ingest requests that reached storage, by format.",
    );
    for (i, f) in FORMATS.iter().enumerate() {
        let _ = writeln!(
            out,
            "eddy_ingest_requests_total{{format=\"{f}\"}} {}",
            m.requests[i].load(Ordering::Relaxed)
        );
    }
    family(
        &mut out,
        "eddy_ingest_rejected_samples_total",
        "counter",
        "Samples not stored, by format and reason.",
    );
    for (i, f) in FORMATS.iter().enumerate() {
        for (j, r) in REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "eddy_ingest_rejected_samples_total{{format=\"{f}\",reason=\"{}\"}} {}",
                r.as_str(),
                m.rejected[i][j].load(Ordering::Relaxed)
            );
        }
    }
    family(
        &mut out,
        "eddy_ingest_influx_string_fields_skipped_total",
        "counter",
        "InfluxDB string field values skipped.",
    );
    let _ = writeln!(
        out,
        "eddy_ingest_influx_string_fields_skipped_total {}",
        m.string_fields_skipped.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "eddy_ingest_otlp_points_dropped_total",
        "counter",
        "OTLP points that could not be stored.",
    );
    let _ = writeln!(
        out,
        "eddy_ingest_otlp_points_dropped_total {}",
        m.otlp_points_dropped.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "eddy_ingest_series_key_cache_entries",
        "gauge",
        "remote_write label runs remembered with their series keys.",
    );
    let _ = writeln!(
        out,
        "eddy_ingest_series_key_cache_entries {}",
        st.series_keys.len()
    );
    let pool = &st.ingest_scratch;
    family(
        &mut out,
        "eddy_ingest_buffer_sets_idle",
        "gauge",
        "Ingest scratch sets kept between requests.",
    );
    let _ = writeln!(out, "eddy_ingest_buffer_sets_idle {}", pool.idle_sets());
    family(
        &mut out,
        "eddy_ingest_buffer_idle_bytes",
        "gauge",
        "Heap bytes held by the idle ingest scratch sets.",
    );
    let _ = writeln!(out, "eddy_ingest_buffer_idle_bytes {}", pool.idle_bytes());
    family(
        &mut out,
        "eddy_ingest_buffer_sets_created_total",
        "counter",
        "Ingest scratch sets created: requests that found no idle set.",
    );
    let _ = writeln!(
        out,
        "eddy_ingest_buffer_sets_created_total {}",
        pool.sets_created()
    );
    let head = st.db.head_stats();
    family(
        &mut out,
        "eddy_head_series",
        "gauge",
        "Active series in the head.",
    );
    let _ = writeln!(out, "eddy_head_series {}", head.series);
    family(
        &mut out,
        "eddy_head_series_created_total",
        "counter",
        "Series created in the head.",
    );
    let _ = writeln!(
        out,
        "eddy_head_series_created_total {}",
        head.series_created
    );
    family(
        &mut out,
        "eddy_head_series_removed_total",
        "counter",
        "Series removed from the head.",
    );
    let _ = writeln!(
        out,
        "eddy_head_series_removed_total {}",
        head.series_removed
    );
    family(
        &mut out,
        "eddy_head_samples_appended_total",
        "counter",
        "Samples appended to the head.",
    );
    let _ = writeln!(
        out,
        "eddy_head_samples_appended_total {}",
        head.samples_appended
    );
    let mapped = st.db.head().mapped_chunk_stats();
    for (name, kind, help, v) in [
        (
            "eddy_head_chunk_files",
            "gauge",
            "Files holding full head chunks (chunks_head/).",
            mapped.files,
        ),
        (
            "eddy_head_chunk_file_bytes",
            "gauge",
            "Bytes of full head chunks in files.",
            mapped.bytes,
        ),
        (
            "eddy_head_chunk_write_failures_total",
            "counter",
            "Full head chunks kept in memory because writing them to a file failed.",
            mapped.write_failures,
        ),
    ] {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    let dbm = st.db.metrics();
    let blocks = st.db.blocks();
    family(&mut out, "eddy_blocks_loaded", "gauge", "Blocks served.");
    let _ = writeln!(out, "eddy_blocks_loaded {}", blocks.len());
    for (name, help, v) in [
        (
            "eddy_head_cuts_total",
            "Blocks cut from the head.",
            &dbm.head_cuts,
        ),
        (
            "eddy_head_cut_seconds_total",
            "Time spent cutting the head into blocks.",
            &dbm.head_cut_ms,
        ),
        (
            "eddy_compactions_total",
            "Blocks written by compaction.",
            &dbm.compactions,
        ),
        (
            "eddy_compaction_seconds_total",
            "Time spent compacting.",
            &dbm.compaction_ms,
        ),
        (
            "eddy_retention_deleted_blocks_total",
            "Blocks deleted by retention.",
            &dbm.retention_deletions,
        ),
        (
            "eddy_wal_checkpoints_total",
            "WAL checkpoints written.",
            &dbm.wal_checkpoints,
        ),
        (
            "eddy_wal_write_failures_total",
            "WAL appends that failed (their requests failed).",
            &dbm.wal_failures,
        ),
        (
            "eddy_quarantined_blocks",
            "Blocks quarantined at start-up.",
            &dbm.quarantined_blocks,
        ),
    ] {
        family(&mut out, name, "counter", help);
        let raw = v.load(Ordering::Relaxed);
        if name.ends_with("_seconds_total") {
            let _ = writeln!(out, "{name} {}", raw as f64 / 1000.0);
        } else {
            let _ = writeln!(out, "{name} {raw}");
        }
    }
    let wal = st.db.wal_stats();
    for (name, help, v) in [
        (
            "eddy_wal_records_total",
            "Records appended to the WAL.",
            wal.records,
        ),
        (
            "eddy_wal_group_commits_total",
            "Group-commit batches written to the WAL (one write each).",
            wal.batches,
        ),
        (
            "eddy_wal_bytes_total",
            "Bytes written to the WAL.",
            wal.bytes,
        ),
        ("eddy_wal_fsyncs_total", "WAL fsyncs.", wal.fsyncs),
        (
            "eddy_wal_failed_batches_total",
            "WAL batches whose write or fsync failed.",
            wal.failed_batches,
        ),
    ] {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        &mut out,
        "eddy_queries_total",
        "counter",
        "Queries answered, by endpoint.",
    );
    family(
        &mut out,
        "eddy_query_seconds_total",
        "counter",
        "Time spent answering queries, by endpoint.",
    );
    for (i, ep) in ["query", "query_range"].iter().enumerate() {
        let _ = writeln!(
            out,
            "eddy_queries_total{{endpoint=\"{ep}\"}} {}",
            m.queries[i].load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "eddy_query_seconds_total{{endpoint=\"{ep}\"}} {}",
            m.query_micros[i].load(Ordering::Relaxed) as f64 / 1e6
        );
    }
    family(
        &mut out,
        "eddy_query_errors_total",
        "counter",
        "Queries that failed.",
    );
    let _ = writeln!(
        out,
        "eddy_query_errors_total {}",
        m.query_errors.load(Ordering::Relaxed)
    );
    let body = out.clone();
    *m.scratch.lock() = out;
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
