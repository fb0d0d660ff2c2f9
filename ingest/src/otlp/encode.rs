//! A small encoder for `ExportMetricsServiceRequest`, so that tests, benches and fuzz seeds can
//! build realistic requests (e.g. Flink's: one `Metric` per series) without protoc.
//! It writes fields in field-number order, as protobuf encoders do.

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue {
    /// `string_value`.
    Str(String),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value` (not mapped to labels).
    Bytes(Vec<u8>),
}

/// A `KeyValue` attribute.
pub type KeyValue = (String, AnyValue);

/// String attributes from pairs.
pub fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), AnyValue::Str(v.to_string())))
        .collect()
}

/// The whole request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `resource_metrics`.
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// Metrics of one resource.
#[derive(Debug, Clone, Default)]
pub struct ResourceMetrics {
    /// Resource attributes (`service.name`, …).
    pub resource: Vec<KeyValue>,
    /// Scopes.
    pub scope_metrics: Vec<ScopeMetrics>,
}

/// Metrics of one instrumentation scope.
#[derive(Debug, Clone, Default)]
pub struct ScopeMetrics {
    /// Scope name, e.g. `io.confluent.flink.common.metrics`.
    pub name: String,
    /// Scope version.
    pub version: String,
    /// Metrics.
    pub metrics: Vec<Metric>,
}

/// One metric.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Name, e.g. `flink.taskmanager.job.task.operator.numRecordsIn`.
    pub name: String,
    /// UCUM unit.
    pub unit: String,
    /// The data.
    pub data: Data,
}

/// `AggregationTemporality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// 0.
    Unspecified = 0,
    /// 1.
    Delta = 1,
    /// 2.
    Cumulative = 2,
}

/// The `data` oneof of `Metric`.
#[derive(Debug, Clone)]
pub enum Data {
    /// `gauge`.
    Gauge(Vec<NumberPoint>),
    /// `sum`.
    Sum {
        /// Points.
        points: Vec<NumberPoint>,
        /// Temporality.
        temporality: Temporality,
        /// `is_monotonic`.
        monotonic: bool,
    },
    /// `histogram` (explicit buckets).
    Histogram {
        /// Points.
        points: Vec<HistogramPoint>,
        /// Temporality.
        temporality: Temporality,
    },
    /// `exponential_histogram`, with only the count of each point encoded.
    ExponentialHistogram(Vec<u64>),
    /// `summary`.
    Summary(Vec<SummaryPoint>),
}

/// A `NumberDataPoint`.
#[derive(Debug, Clone, Default)]
pub struct NumberPoint {
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// `start_time_unix_nano`.
    pub start_ns: u64,
    /// `time_unix_nano`.
    pub time_ns: u64,
    /// `as_int` if set, else `as_double`.
    pub int: Option<i64>,
    /// `as_double`.
    pub double: f64,
    /// `flags` (1 = no recorded value).
    pub flags: u32,
}

/// A `HistogramDataPoint`.
#[derive(Debug, Clone, Default)]
pub struct HistogramPoint {
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// `start_time_unix_nano`.
    pub start_ns: u64,
    /// `time_unix_nano`.
    pub time_ns: u64,
    /// `count`.
    pub count: u64,
    /// `sum`.
    pub sum: Option<f64>,
    /// `bucket_counts` (per bucket, not cumulative).
    pub bucket_counts: Vec<u64>,
    /// `explicit_bounds`.
    pub bounds: Vec<f64>,
}

/// A `SummaryDataPoint`.
#[derive(Debug, Clone, Default)]
pub struct SummaryPoint {
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// `start_time_unix_nano`.
    pub start_ns: u64,
    /// `time_unix_nano`.
    pub time_ns: u64,
    /// `count`.
    pub count: u64,
    /// `sum`.
    pub sum: f64,
    /// `(quantile, value)` pairs.
    pub quantiles: Vec<(f64, f64)>,
}

impl Request {
    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut dst = Vec::new();
        for rm in &self.resource_metrics {
            put_msg(&mut dst, 1, |d| rm.encode(d));
        }
        dst
    }
}

impl ResourceMetrics {
    fn encode(&self, dst: &mut Vec<u8>) {
        put_msg(dst, 1, |d| {
            self.resource
                .iter()
                .for_each(|kv| put_msg(d, 1, |d| put_kv(d, kv)))
        });
        for sm in &self.scope_metrics {
            put_msg(dst, 2, |d| sm.encode(d));
        }
    }
}

impl ScopeMetrics {
    fn encode(&self, dst: &mut Vec<u8>) {
        put_msg(dst, 1, |d| {
            put_str(d, 1, &self.name);
            put_str(d, 2, &self.version);
        });
        for m in &self.metrics {
            put_msg(dst, 2, |d| m.encode(d));
        }
    }
}

impl Metric {
    fn encode(&self, dst: &mut Vec<u8>) {
        put_str(dst, 1, &self.name);
        put_str(dst, 3, &self.unit);
        match &self.data {
            Data::Gauge(points) => put_msg(dst, 5, |d| {
                points.iter().for_each(|p| put_msg(d, 1, |d| p.encode(d)))
            }),
            Data::Sum {
                points,
                temporality,
                monotonic,
            } => put_msg(dst, 7, |d| {
                points.iter().for_each(|p| put_msg(d, 1, |d| p.encode(d)));
                put_varint_field(d, 2, *temporality as u64);
                put_varint_field(d, 3, u64::from(*monotonic));
            }),
            Data::Histogram {
                points,
                temporality,
            } => put_msg(dst, 9, |d| {
                points.iter().for_each(|p| put_msg(d, 1, |d| p.encode(d)));
                put_varint_field(d, 2, *temporality as u64);
            }),
            Data::ExponentialHistogram(counts) => put_msg(dst, 10, |d| {
                counts
                    .iter()
                    .for_each(|&c| put_msg(d, 1, |d| put_fixed64(d, 4, c)));
                put_varint_field(d, 2, Temporality::Cumulative as u64);
            }),
            Data::Summary(points) => put_msg(dst, 11, |d| {
                points.iter().for_each(|p| put_msg(d, 1, |d| p.encode(d)))
            }),
        }
    }
}

impl NumberPoint {
    fn encode(&self, dst: &mut Vec<u8>) {
        put_fixed64(dst, 2, self.start_ns);
        put_fixed64(dst, 3, self.time_ns);
        match self.int {
            Some(i) => put_fixed64(dst, 6, i as u64),
            None => put_fixed64(dst, 4, self.double.to_bits()),
        }
        self.attributes
            .iter()
            .for_each(|kv| put_msg(dst, 7, |d| put_kv(d, kv)));
        if self.flags != 0 {
            put_varint_field(dst, 8, u64::from(self.flags));
        }
    }
}

impl HistogramPoint {
    fn encode(&self, dst: &mut Vec<u8>) {
        put_fixed64(dst, 2, self.start_ns);
        put_fixed64(dst, 3, self.time_ns);
        put_fixed64(dst, 4, self.count);
        if let Some(s) = self.sum {
            put_fixed64(dst, 5, s.to_bits());
        }
        put_msg(dst, 6, |d| {
            self.bucket_counts
                .iter()
                .for_each(|c| d.extend_from_slice(&c.to_le_bytes()))
        });
        put_msg(dst, 7, |d| {
            self.bounds
                .iter()
                .for_each(|b| d.extend_from_slice(&b.to_bits().to_le_bytes()))
        });
        self.attributes
            .iter()
            .for_each(|kv| put_msg(dst, 9, |d| put_kv(d, kv)));
    }
}

impl SummaryPoint {
    fn encode(&self, dst: &mut Vec<u8>) {
        put_fixed64(dst, 2, self.start_ns);
        put_fixed64(dst, 3, self.time_ns);
        put_fixed64(dst, 4, self.count);
        put_fixed64(dst, 5, self.sum.to_bits());
        for &(q, v) in &self.quantiles {
            put_msg(dst, 6, |d| {
                put_fixed64(d, 1, q.to_bits());
                put_fixed64(d, 2, v.to_bits());
            });
        }
        self.attributes
            .iter()
            .for_each(|kv| put_msg(dst, 7, |d| put_kv(d, kv)));
    }
}

fn put_kv(dst: &mut Vec<u8>, (k, v): &KeyValue) {
    put_str(dst, 1, k);
    put_msg(dst, 2, |d| match v {
        // A oneof member is written even when empty.
        AnyValue::Str(s) => {
            put_key(d, 1, 2);
            put_varint(d, s.len() as u64);
            d.extend_from_slice(s.as_bytes());
        }
        AnyValue::Bool(b) => put_varint_field(d, 2, u64::from(*b)),
        AnyValue::Int(i) => put_varint_field(d, 3, *i as u64),
        AnyValue::Double(f) => put_fixed64(d, 4, f.to_bits()),
        AnyValue::Bytes(b) => {
            put_key(d, 7, 2);
            put_varint(d, b.len() as u64);
            d.extend_from_slice(b);
        }
    });
}

/// Appends a varint.
pub fn put_varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

fn put_key(dst: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(dst, (u64::from(field) << 3) | u64::from(wire));
}

fn put_varint_field(dst: &mut Vec<u8>, field: u32, v: u64) {
    put_key(dst, field, 0);
    put_varint(dst, v);
}

fn put_fixed64(dst: &mut Vec<u8>, field: u32, v: u64) {
    put_key(dst, field, 1);
    dst.extend_from_slice(&v.to_le_bytes());
}

fn put_str(dst: &mut Vec<u8>, field: u32, s: &str) {
    if s.is_empty() {
        return;
    }
    put_key(dst, field, 2);
    put_varint(dst, s.len() as u64);
    dst.extend_from_slice(s.as_bytes());
}

/// Appends a length-delimited field whose payload `f` writes.
fn put_msg(dst: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    f(&mut body);
    put_key(dst, field, 2);
    put_varint(dst, body.len() as u64);
    dst.extend_from_slice(&body);
}
