//! eddy-ingest: wire formats → `eddy_storage::WriteBatch`.
//!
//! Each decoder borrows label strings from the request body where it can and never allocates per
//! sample. Module map:
//! - [`remote_write`]: Prometheus remote_write 1.0 (snappy + protobuf), decoder and encoder.
//! - [`text`]: Prometheus text exposition 0.0.4 and OpenMetrics 1.0.
//! - [`pushgateway`]: Pushgateway grouping paths (`/metrics/job/<job>/<label>/<value>…`).
//! - [`error`]: the crate's error type.
//! - (to come) `influx`, `otlp`, `scrape`.

#![warn(missing_docs)]

pub mod error;
pub mod pushgateway;
pub mod remote_write;
pub mod text;

pub use error::{Error, Result};
