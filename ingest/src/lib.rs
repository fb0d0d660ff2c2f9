//! eddy-ingest: wire formats → `eddy_storage::WriteBatch`.
//!
//! Each decoder borrows label strings from the request body where it can and never allocates per
//! sample. Module map:
//! - (to come) `remote_write`, `text`, `influx`, `otlp`, `pushgateway`, `scrape`.

#![warn(missing_docs)]

pub mod influx;
pub mod otlp;
