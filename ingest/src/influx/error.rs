//! Errors of the InfluxDB line protocol decoder: one bad line, or a problem with the whole body.

use std::fmt;

/// Why one line of line protocol was rejected. The messages follow InfluxDB's wording, so
/// clients that grep for them keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineErrorKind {
    /// The line starts with a comma, or has no measurement.
    MissingMeasurement,
    /// The measurement (and tags) are not followed by a field set.
    MissingFields,
    /// `m,=v` or `m,,`.
    MissingTagKey,
    /// `m,k` or `m,k=` without a value.
    MissingTagValue,
    /// The same tag key twice in one point.
    DuplicateTags,
    /// An unescaped `=` inside a tag value.
    InvalidTagFormat,
    /// `m =1` or `m a=1,=2`.
    MissingFieldKey,
    /// `m a=` or `m a=,b=1`.
    MissingFieldValue,
    /// A field without `=`, e.g. `m a=1,b`.
    InvalidFieldFormat,
    /// A string field value without its closing quote.
    UnbalancedQuotes,
    /// A number that does not parse (also NaN and ±Inf, which InfluxDB rejects).
    InvalidNumber,
    /// An integer (`i`) or unsigned (`u`) value outside its 64-bit range.
    IntegerOutOfRange,
    /// A float beyond the range of f64.
    InvalidFloat,
    /// A bare word that is not one of the accepted boolean spellings.
    InvalidBoolean,
    /// The timestamp is not an integer.
    BadTimestamp,
    /// The timestamp does not fit in i64 milliseconds after applying the precision.
    TimestampOutOfRange,
    /// Something other than spaces follows the timestamp.
    TrailingGarbage,
    /// A tag key or field key that eddy reserves (`__name__`).
    ReservedKey,
}

impl LineErrorKind {
    /// The InfluxDB-style reason text.
    pub fn as_str(self) -> &'static str {
        match self {
            LineErrorKind::MissingMeasurement => "missing measurement",
            LineErrorKind::MissingFields => "missing fields",
            LineErrorKind::MissingTagKey => "missing tag key",
            LineErrorKind::MissingTagValue => "missing tag value",
            LineErrorKind::DuplicateTags => "duplicate tags",
            LineErrorKind::InvalidTagFormat => "invalid tag format",
            LineErrorKind::MissingFieldKey => "missing field key",
            LineErrorKind::MissingFieldValue => "missing field value",
            LineErrorKind::InvalidFieldFormat => "invalid field format",
            LineErrorKind::UnbalancedQuotes => "unbalanced quotes",
            LineErrorKind::InvalidNumber => "invalid number",
            LineErrorKind::IntegerOutOfRange => "integer out of range",
            LineErrorKind::InvalidFloat => "invalid float",
            LineErrorKind::InvalidBoolean => "invalid boolean",
            LineErrorKind::BadTimestamp => "bad timestamp",
            LineErrorKind::TimestampOutOfRange => "timestamp out of range",
            LineErrorKind::TrailingGarbage => {
                "point is invalid: unexpected text after the timestamp"
            }
            LineErrorKind::ReservedKey => "key __name__ is reserved",
        }
    }
}

impl fmt::Display for LineErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of [`crate::influx`].
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// One line was rejected. `line` and `column` are 1-based; `column` counts bytes.
    #[error("unable to parse '{text}': {kind} (line {line}, column {column})")]
    Line {
        /// 1-based line number in the body.
        line: u32,
        /// 1-based byte column of the problem within its line.
        column: u32,
        /// What was wrong.
        kind: LineErrorKind,
        /// The offending line, cut to a bounded length.
        text: String,
    },
    /// The body is not UTF-8.
    #[error("decode line protocol body: invalid UTF-8 at line {line}, column {column}")]
    InvalidUtf8 {
        /// 1-based line number.
        line: u32,
        /// 1-based byte column.
        column: u32,
    },
    /// The `precision` parameter is not one InfluxDB knows.
    #[error("parse precision {value:?}: expected one of n, ns, u, us, µ, ms, s, m, h")]
    UnknownPrecision {
        /// The value as given.
        value: String,
    },
    /// The body is larger than the batch's 32-bit indices or a configured limit allow.
    #[error("decode line protocol body: {len} bytes is more than the limit of {limit} bytes")]
    BodyTooLarge {
        /// Body length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The metric names and tags derived from the body pass the batch's 32-bit offsets (4 GiB).
    #[error("decode line protocol body: its derived metric names and labels exceed 4 GiB")]
    DerivedTooLarge,
    /// A gzip body is corrupt.
    #[error("gunzip body: {source}")]
    Gzip {
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// A gzip body inflates past the allowed size.
    #[error("gunzip body: inflated size exceeds the limit of {limit} bytes")]
    GzipTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl InfluxError {
    /// The 1-based line number, for errors that concern one line.
    pub fn line(&self) -> Option<u32> {
        match self {
            InfluxError::Line { line, .. } | InfluxError::InvalidUtf8 { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The kind of line error, if this is one.
    pub fn kind(&self) -> Option<LineErrorKind> {
        match self {
            InfluxError::Line { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
