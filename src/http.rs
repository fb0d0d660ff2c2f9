//! The HTTP surface: the router, shared state, and the error type every handler returns.

pub mod admin;
pub mod api;
pub mod federate;
pub mod ingest;
pub mod remote_read;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use eddy_storage::Db;

use crate::metrics::ServerMetrics;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub db: Arc<Db>,
    /// Set once the data directory is open and the WAL replayed.
    pub ready: AtomicBool,
    /// Ingest settings.
    pub ingest: ingest::IngestConfig,
    /// Reused memory of the ingest requests in flight.
    pub ingest_scratch: ingest::ScratchPool,
    /// Counters for `/metrics`.
    pub metrics: ServerMetrics,
    /// Delta-to-cumulative state of OTLP sums.
    pub otlp_deltas: parking_lot::Mutex<eddy_ingest::otlp::DeltaAccumulator>,
    /// What each Pushgateway group pushed last, for stale markers on replace and delete.
    pub push_groups: ingest::PushGroups,
    /// remote_write label runs already seen and their series keys.
    pub series_keys: eddy_ingest::remote_write::SeriesKeyCache,
    /// Metric metadata seen at ingest.
    pub metadata: crate::metadata::MetadataStore,
    /// Query engine and limits.
    pub query: api::QueryConfig,
    /// The scraper, when `--config.file` has `scrape_configs`.
    pub scraper: parking_lot::Mutex<Option<eddy_ingest::scrape::Scraper>>,
    /// The YAML configuration file, re-read on reload.
    pub config_file: Option<std::path::PathBuf>,
}

/// Shared state handle.
pub type SharedState = Arc<AppState>;

/// Builds the router (no socket: tests call it with `oneshot`).
pub fn app(state: SharedState) -> Router {
    let body_limit = state.ingest.max_body_bytes;
    let ingest_routes = Router::new()
        .route("/api/v1/write", post(ingest::remote_write))
        .route("/write", post(ingest::influx_v1))
        .route("/api/v2/write", post(ingest::influx_v2))
        .route("/v1/metrics", post(ingest::otlp))
        .route(
            "/metrics/job/{*grouping}",
            axum::routing::put(ingest::push_put)
                .post(ingest::push_post)
                .delete(ingest::push_delete),
        )
        .route(
            "/metrics/job/",
            axum::routing::any(ingest::push_without_job),
        )
        .layer(DefaultBodyLimit::max(body_limit));
    let api_routes = Router::new()
        .route("/api/v1/query", get(api::query).post(api::query))
        .route(
            "/api/v1/query_range",
            get(api::query_range).post(api::query_range),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/metadata", get(api::metadata))
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/api/v1/status/tsdb", get(api::tsdb_status))
        .route(
            "/api/v1/query_exemplars",
            get(api::exemplars).post(api::exemplars),
        )
        .route("/api/v1/rules", get(api::rules))
        .route("/api/v1/alerts", get(api::alerts))
        .route(
            "/federate",
            get(federate::federate).post(federate::federate),
        )
        .layer(tower_http::compression::CompressionLayer::new());
    Router::new()
        .merge(ingest_routes)
        .merge(api_routes)
        .route("/-/healthy", get(|| async { "eddy is healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/api/v1/targets", get(api::targets))
        .route("/metrics", get(crate::metrics::render))
        .route("/api/v1/read", post(remote_read::read))
        .route("/api/v1/admin/flush", post(admin::flush))
        .route("/api/v1/admin/compact", post(admin::compact))
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .with_state(state)
}

async fn ready(State(st): State<SharedState>) -> Response {
    if st.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "eddy is ready.\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "eddy is starting: replaying the WAL.\n",
        )
            .into_response()
    }
}

async fn reload(State(st): State<SharedState>) -> Result<&'static str, ApiError> {
    crate::server::reload_config(&st).map_err(|e| ApiError::new(ErrorType::BadData, e))?;
    Ok("configuration reloaded\n")
}

/// Prometheus's error classes, which decide the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// 400: the request is wrong.
    BadData,
    /// 422: the query could not be executed.
    Execution,
    /// 503: the query took too long.
    Timeout,
    /// 499: the client went away.
    Canceled,
    /// 500: our fault; the body says "internal error" and the log has the details.
    Internal,
    /// 503: temporarily unable (e.g. the WAL cannot be written); retrying can help.
    Unavailable,
    /// 404.
    NotFound,
    /// 415.
    UnsupportedMediaType,
    /// 413.
    TooLarge,
    /// 429: a limit was hit; retry later.
    TooManyRequests,
}

impl ErrorType {
    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::UnsupportedMediaType => "bad_data",
            ErrorType::TooLarge => "bad_data",
            ErrorType::TooManyRequests => "unavailable",
        }
    }
}

/// An error answered in Prometheus's JSON shape: `{"status":"error","errorType":…,"error":…}`.
#[derive(Debug)]
pub struct ApiError {
    /// Class (decides the status code).
    pub kind: ErrorType,
    /// Message for the client; for `Internal` only "internal error" is sent.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// 400 bad_data.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadData, message)
    }

    /// Maps a storage error: I/O and closed storage are retryable (503), the rest internal.
    pub fn storage(e: eddy_storage::Error) -> Self {
        match e {
            eddy_storage::Error::Io { .. } | eddy_storage::Error::Closed(_) => {
                tracing::error!(error = %e, "storage write failed");
                Self::new(ErrorType::Unavailable, format!("storage unavailable: {e}"))
            }
            eddy_storage::Error::BadRegex { .. } => Self::bad_data(e.to_string()),
            other => {
                tracing::error!(error = %other, "storage error");
                Self::new(ErrorType::Internal, other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.kind == ErrorType::Internal {
            "internal error".to_string()
        } else {
            self.message
        };
        // Key order as Prometheus writes it.
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":\"{}\",\"error\":{}}}",
            self.kind.as_str(),
            serde_json::Value::String(message)
        );
        let mut resp = (self.kind.status(), body).into_response();
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        resp
    }
}

/// Current wall-clock time in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
