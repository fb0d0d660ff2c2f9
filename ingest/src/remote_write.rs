//! Prometheus remote_write 1.0 (`POST /api/v1/write`): snappy raw block + protobuf
//! `prometheus.WriteRequest`, decoded into a [`WriteBatch`] without copying label strings.
//!
//! The protobuf walk is written by hand over the request bytes (see `wire`), because decoding
//! into owned structs costs an allocation per label and is ~40× slower (DESIGN.md). Schema, from
//! prometheus `prompb/remote.proto` and `types.proto`:
//!
//! ```text
//! WriteRequest   { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
//! TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2;
//!                  repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
//! Label          { string name = 1; string value = 2; }
//! Sample         { double value = 1; int64 timestamp = 2; }
//! MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4;
//!                  string unit = 5; }
//! ```
//!
//! Wire-level damage fails the whole request (with the byte offset); a series whose labels are
//! unusable is left out and described in [`DecodeStats::invalid`], as Prometheus rejects such
//! series but keeps the rest of the request.

mod decode;
mod encode;
pub mod wire;

use std::borrow::Cow;

pub use crate::key_cache::{label_run_hash, KnownSeries, RunKeyMap, SeriesKeyCache};
pub use decode::{decode_write_request, decode_write_request_keyed, push_run_labels, KeyedSeries};
pub use encode::{compress_snappy, encode_metadata, encode_write_request};

use crate::error::{Error, Result};

/// How many invalid-series descriptions [`DecodeStats::invalid`] keeps; the rest are only counted.
pub const MAX_INVALID_MESSAGES: usize = 10;

/// What a decoded request contained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Series appended to the batch.
    pub series: usize,
    /// Float samples appended to the batch.
    pub samples: usize,
    /// Native histogram samples seen; not supported, so not stored (the request still succeeds).
    pub histograms: usize,
    /// Exemplars seen and skipped.
    pub exemplars: usize,
    /// Series left out because their labels are invalid.
    pub invalid_series: usize,
    /// Descriptions of the first [`MAX_INVALID_MESSAGES`] invalid series, naming each by index.
    pub invalid: Vec<String>,
}

/// The type of a metric family, as remote_write and `# TYPE` lines carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// Unknown or untyped.
    #[default]
    Unknown,
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// Gauge histogram (OpenMetrics).
    GaugeHistogram,
    /// Summary (quantiles, `_sum`, `_count`).
    Summary,
    /// Info metric (OpenMetrics).
    Info,
    /// State set (OpenMetrics).
    StateSet,
}

impl MetricType {
    /// From the protobuf enum number; unknown numbers map to `Unknown`.
    pub fn from_proto(n: u64) -> Self {
        match n {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }

    /// The protobuf enum number.
    pub fn to_proto(self) -> u64 {
        match self {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        }
    }

    /// From a `# TYPE` word (`untyped` is the 0.0.4 spelling of `unknown`).
    pub fn from_text(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// The lower-case name used by `# TYPE` and the metadata API.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }
}

/// Metadata of one metric family: from remote_write's `metadata` field or from `# HELP` /
/// `# TYPE` / `# UNIT` lines. Strings borrow from the request body unless they needed unescaping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricMetadata<'a> {
    /// Family name (the metric name without `_bucket`/`_sum`/… suffixes).
    pub family: Cow<'a, str>,
    /// Declared type.
    pub metric_type: MetricType,
    /// Help text (may be empty).
    pub help: Cow<'a, str>,
    /// Unit (may be empty).
    pub unit: Cow<'a, str>,
}

/// Appends the decompressed contents of the snappy raw block `src` to `dst` (callers reuse
/// `dst` across requests and clear it themselves). Fails before allocating if the block
/// announces more than `max_len` bytes, and on bad or truncated input; on error `dst` is left
/// as it was.
pub fn decompress_snappy(src: &[u8], dst: &mut Vec<u8>, max_len: usize) -> Result<()> {
    let len = snap::raw::decompress_len(src).map_err(|source| Error::Snappy { source })?;
    if len > max_len {
        return Err(Error::SnappyTooLarge { len, max: max_len });
    }
    let start = dst.len();
    dst.resize(start + len, 0);
    match snap::raw::Decoder::new().decompress(src, &mut dst[start..]) {
        Ok(n) => {
            dst.truncate(start + n);
            Ok(())
        }
        Err(source) => {
            dst.truncate(start);
            Err(Error::Snappy { source })
        }
    }
}

/// A decompression buffer for a thread that decodes one request after another. Unlike
/// [`decompress_snappy`] into a cleared `Vec`, it zero-fills its memory only when it grows:
/// snappy needs an initialised output slice, and zeroing a request's worth of bytes every
/// time was 4 % of the server's ingest instructions.
#[derive(Debug, Default)]
pub struct SnappyBuffer {
    /// Initialised bytes; only a prefix holds the current request.
    bytes: Vec<u8>,
}

impl SnappyBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decompresses the snappy raw block `src` and returns its contents. Fails before
    /// allocating if the block announces more than `max_len` bytes, and on bad or truncated
    /// input.
    pub fn decompress(&mut self, src: &[u8], max_len: usize) -> Result<&[u8]> {
        let len = snap::raw::decompress_len(src).map_err(|source| Error::Snappy { source })?;
        if len > max_len {
            return Err(Error::SnappyTooLarge { len, max: max_len });
        }
        if self.bytes.len() < len {
            self.bytes.resize(len, 0);
        }
        let n = snap::raw::Decoder::new()
            .decompress(src, &mut self.bytes[..len])
            .map_err(|source| Error::Snappy { source })?;
        Ok(&self.bytes[..n])
    }

    /// Bytes held, for callers that drop oversized buffers after a large request.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}
