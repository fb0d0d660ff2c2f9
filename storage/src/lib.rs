//! eddy-storage: the database that holds Flink's metrics.
//!
//! Data model: a series is a canonical label set ([`Labels`]) with samples `(i64 ms, f64)`.
//! Writes arrive as a [`WriteBatch`], go to the WAL, then to the in-memory head; the head is
//! cut into immutable, compressed, memory-mapped blocks. Reads go through [`Querier`].
//!
//! Module map:
//! - [`labels`]: label sets, matchers.
//! - [`api`]: write batches, the `Querier` trait, stale markers.
//! - [`chunk`]: columnar sample codecs (timestamps, values).
//! - [`index`]: symbols, roaring postings, matcher evaluation; on-disk index.
//! - [`wal`]: write-ahead log segments, replay, repair.
//! - [`block`]: immutable on-disk blocks (meta, index, chunks), read through mmap.

#![warn(missing_docs)]

pub mod api;
pub mod block;
pub mod chunk;
pub mod db;
pub mod error;
pub mod head;
pub mod index;
mod label_tails;
pub mod labels;
pub mod querier;
pub mod series_key;
pub mod wal;

pub use api::{
    is_stale_nan, stale_nan, AppendOutcome, Querier, RejectReason, Series, SeriesRef, SeriesSet,
    WriteBatch,
};
pub use db::{Db, DbOptions};
pub use error::{Error, Result};
pub use labels::{Label, Labels, MatchOp, Matcher, Projection};
pub use series_key::{KeyScratch, SeriesKey};
