//! Query results and errors: the values the evaluator hands to callers (the HTTP API, the
//! promqltest runner) and the error type with Prometheus-like messages.

use std::fmt;

use eddy_storage::Labels;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series labels.
    pub labels: Labels,
    /// Timestamp in ms (the evaluation time).
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series of a range result (a matrix): labels and time-ordered points.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Series labels.
    pub labels: Labels,
    /// `(timestamp ms, value)` points, increasing in time.
    pub points: Vec<(i64, f64)>,
}

/// The value of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at time `t`.
    Scalar {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// A string at time `t`.
    String {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        v: String,
    },
    /// An instant vector (instant queries).
    Vector(Vec<Sample>),
    /// A matrix: range queries, and range-vector expressions in instant queries.
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The Prometheus `resultType` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// The result of a query: the value plus annotations and statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The value.
    pub value: Value,
    /// Warning annotations (`PromQL warning: …`).
    pub warnings: Vec<String>,
    /// Info annotations (`PromQL info: …`).
    pub infos: Vec<String>,
    /// Samples read from storage and processed (for limits and stats).
    pub samples_scanned: u64,
}

/// Query failures. `Execution` and `BadData` map to HTTP 422, `Timeout` to 503,
/// `Canceled` to 499/503, `TooManySamples` to 422, `Storage` to 500.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse or type-check.
    #[error(transparent)]
    Parse(#[from] crate::parser::ParseError),
    /// Evaluation failed (Prometheus messages, e.g. "vector cannot contain metrics with the same labelset").
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout.
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// The caller canceled the query.
    #[error("query was canceled in expression evaluation")]
    Canceled,
    /// The query would hold more samples in memory than allowed.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples {
        /// The configured limit.
        limit: usize,
    },
    /// Storage failed while selecting series.
    #[error("expanding series: {0}")]
    Storage(#[from] eddy_storage::Error),
    /// Bad query parameters (e.g. a range query whose expression is a range vector).
    #[error("{0}")]
    BadData(String),
}

impl fmt::Display for RangeSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} =>", self.labels)?;
        for (t, v) in &self.points {
            write!(f, " {v} @[{t}]")?;
        }
        Ok(())
    }
}
