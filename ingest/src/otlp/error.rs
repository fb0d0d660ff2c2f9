//! Errors of the OTLP metrics decoder. Every one names the byte offset in the request body.

/// A malformed `ExportMetricsServiceRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    /// The body ends inside a value or a length-delimited field.
    #[error("decode OTLP request: truncated {what} at offset {offset}")]
    Truncated {
        /// Byte offset where the missing bytes should start.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A varint longer than 10 bytes.
    #[error("decode OTLP request: varint too long at offset {offset}")]
    VarintTooLong {
        /// Byte offset of the varint.
        offset: usize,
    },
    /// A field key with number 0 or a wire type that proto3 does not use (groups, 6, 7).
    #[error("decode OTLP request: invalid field key {key:#x} at offset {offset}")]
    InvalidKey {
        /// Byte offset of the key.
        offset: usize,
        /// The key as read.
        key: u64,
    },
    /// A known field with the wrong wire type.
    #[error("decode OTLP request: field {what} has wire type {wire_type} at offset {offset}")]
    WrongWireType {
        /// Byte offset of the field key.
        offset: usize,
        /// Which field.
        what: &'static str,
        /// The wire type found.
        wire_type: u8,
    },
    /// A string field that is not UTF-8.
    #[error("decode OTLP request: {what} is not UTF-8 at offset {offset}")]
    InvalidUtf8 {
        /// Byte offset of the string.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
    /// The names and values derived from the request pass the batch's 32-bit offsets (4 GiB).
    #[error("decode OTLP request: its derived metric names and labels exceed 4 GiB")]
    DerivedTooLarge,
}
