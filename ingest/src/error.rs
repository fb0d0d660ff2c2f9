//! The ingest crate's error type, shared by every decoder.
//!
//! Variants are grouped by the decoder that raises them, so each format's errors stay
//! separate: remote_write and snappy, the text exposition, and Pushgateway paths first;
//! other formats add their own groups below.

/// Errors of the ingest decoders. Messages are lower-case and name the operation and the bad
/// value or its location.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- remote_write / snappy ----
    /// A snappy raw block could not be decompressed (bad or truncated input).
    #[error("decompress snappy block: {source}")]
    Snappy {
        /// The codec's complaint.
        #[source]
        source: snap::Error,
    },
    /// A snappy raw block would decompress to more than the allowed size.
    #[error("decompress snappy block: decoded size {len} bytes exceeds the limit of {max} bytes")]
    SnappyTooLarge {
        /// Decoded size announced by the block header.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The remote_write protobuf is malformed at the wire level.
    #[error("decode remote_write request at byte {offset}: {reason}")]
    Protobuf {
        /// Byte offset in the (decompressed) request body where decoding failed.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },

    // ---- Prometheus text exposition / OpenMetrics ----
    /// A line of a text exposition could not be parsed.
    #[error("parse text exposition at line {line}, column {col}: {msg}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// 1-based byte column within the line.
        col: usize,
        /// What was expected or wrong.
        msg: String,
    },

    // ---- Pushgateway grouping path ----
    /// A Pushgateway grouping path (`job/<job>{/<label>/<value>}`) is invalid.
    #[error("parse pushgateway grouping path {path:?}: {reason}")]
    GroupingPath {
        /// The path as given (after `/metrics/`).
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
