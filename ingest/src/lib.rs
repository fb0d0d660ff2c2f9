//! eddy-ingest: wire formats → `eddy_storage::WriteBatch`.
//!
//! Each decoder borrows label strings from the request body where it can and never allocates per
//! sample. Module map:
//! - [`remote_write`]: Prometheus remote_write 1.0 (snappy + protobuf), decoder and encoder.
//! - [`text`]: Prometheus text exposition 0.0.4 and OpenMetrics 1.0.
//! - [`pushgateway`]: Pushgateway grouping paths (`/metrics/job/<job>/<label>/<value>…`).
//! - [`error`]: the crate's error type.
//! - [`influx`]: InfluxDB line protocol (1.x `/write`, 2.x `/api/v2/write`).
//! - [`otlp`]: OTLP/HTTP metrics, with delta-to-cumulative accumulation.
//! - [`key_cache`]: the memory of label bytes already seen (hash → series key) that the push
//!   formats share.
//! - [`scrape`]: the scraper that pulls Prometheus text endpoints (Flink's PrometheusReporter).

#![warn(missing_docs)]

mod arena;
pub mod error;
pub mod influx;
pub mod key_cache;
pub mod otlp;
pub mod pushgateway;
pub mod remote_write;
pub mod scrape;
pub mod text;

pub use error::{Error, Result};
