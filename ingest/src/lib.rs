//! eddy-ingest: wire formats → `eddy_storage::WriteBatch`.
//!
//! Each decoder borrows label strings from the request body where it can and never allocates per
//! sample. Module map:
//! - `influx`: InfluxDB line protocol (`/write`, `/api/v2/write`).
//! - `otlp`: OTLP/HTTP metrics (`/v1/metrics`, protobuf).
//! - (to come) `remote_write`, `text`, `pushgateway`, `scrape`.

#![warn(missing_docs)]

pub mod influx;
pub mod otlp;
