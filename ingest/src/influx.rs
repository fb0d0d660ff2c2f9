//! InfluxDB line protocol (`POST /write` of InfluxDB 1.x, `POST /api/v2/write` of 2.x) decoded
//! into a [`WriteBatch`]: one series per (point, numeric field).
//!
//! Naming follows VictoriaMetrics: metric `{measurement}_{field}`, tags become labels, and the
//! caller's extra labels (e.g. `db`) are added unless the line has a tag of that name. Lines
//! from Flink's InfluxdbReporter can instead get the names of Flink's PrometheusReporter (see
//! [`FlinkNames`] and `docs/ingest-influx.md`).
//!
//! Like InfluxDB 1.x, a bad line does not stop the body: valid lines are decoded and each bad
//! line is reported in [`InfluxStats::errors`] with its line number; the HTTP layer answers 400
//! naming them after writing the rest.
//!
//! Labels borrow from the body; the strings a body does not contain as such (metric names,
//! unescaped and sanitized tags) are written once per request into an [`InfluxScratch`] that
//! the batch borrows too, so decoding allocates nothing per sample.

mod error;
mod keyed;
mod naming;
mod scan;

use std::borrow::Cow;
use std::io::Read;

use eddy_storage::WriteBatch;

pub use error::{InfluxError, LineErrorKind};
pub use keyed::KeyedLines;

use crate::arena::{Arena, Str};
use crate::key_cache::RunKeyMap;
use naming::FlinkShape;
use scan::{FieldValue, Scanned, Scanner};

/// Result type of this module.
pub type Result<T, E = InfluxError> = std::result::Result<T, E>;

/// At most this many line errors are kept in [`InfluxStats::errors`]; the rest are counted.
pub const MAX_REPORTED_ERRORS: usize = 16;

/// Longest line excerpt kept in an error message, in bytes.
const MAX_ERROR_TEXT: usize = 256;

/// Unit of the timestamps in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds (the default of both APIs).
    #[default]
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// Minutes (1.x only).
    M,
    /// Hours (1.x only).
    H,
}

impl Precision {
    /// Converts a timestamp in this precision to milliseconds, rounding toward negative
    /// infinity (so `-1ns` is `-1ms`, and `1ms + 999_999ns` is still `1ms`). `None` on overflow.
    pub fn to_ms(self, ts: i64) -> Option<i64> {
        match self {
            Precision::Ns => Some(ts.div_euclid(1_000_000)),
            Precision::Us => Some(ts.div_euclid(1_000)),
            Precision::Ms => Some(ts),
            Precision::S => ts.checked_mul(1_000),
            Precision::M => ts.checked_mul(60_000),
            Precision::H => ts.checked_mul(3_600_000),
        }
    }
}

/// Parses the `precision` query parameter: 1.x spells `n, u, ms, s, m, h`, 2.x spells
/// `ns, us, ms, s`. Both spellings are accepted on both endpoints; `µ` is an alias of `u`.
pub fn parse_precision(s: &str) -> Result<Precision> {
    Ok(match s {
        "n" | "ns" => Precision::Ns,
        "u" | "us" | "µ" | "µs" => Precision::Us,
        "ms" => Precision::Ms,
        "s" => Precision::S,
        "m" => Precision::M,
        "h" => Precision::H,
        _ => {
            return Err(InfluxError::UnknownPrecision {
                value: s.to_string(),
            })
        }
    })
}

/// When lines get Flink's Prometheus-reporter names instead of `{measurement}_{field}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlinkNames {
    /// Never: every line is named `{measurement}_{field}`.
    Off,
    /// Lines whose measurement starts with `jobmanager_` or `taskmanager_` (every Flink logical
    /// scope does). The default.
    #[default]
    Auto,
    /// Every line.
    On,
}

/// How to decode a request.
#[derive(Debug, Clone, Default)]
pub struct InfluxOptions {
    /// Unit of the timestamps in the body.
    pub precision: Precision,
    /// Timestamp (ms) for lines without one: the server's clock when the request arrived.
    pub now_ms: i64,
    /// Labels added to every series unless the line has a tag of the same name, e.g.
    /// `("db", "flink")` from the 1.x `db` parameter (as VictoriaMetrics does).
    pub extra_labels: Vec<(String, String)>,
    /// Flink naming; see [`FlinkNames`].
    pub flink_names: FlinkNames,
    /// For lines with Flink names, filter tag values like Flink's Prometheus reporter does
    /// (`[^a-zA-Z0-9:_]` → `_`), so that they equal the scrape path's label values. Off by
    /// default: the InfluxdbReporter sends raw values, and those are kept.
    pub flink_sanitize_tag_values: bool,
    /// Make metric and label names Prometheus-compatible (`[^a-zA-Z0-9_:]` → `_`), like
    /// VictoriaMetrics' `-usePromCompatibleNaming`. Off by default: names are kept as sent.
    pub prom_names: bool,
}

/// Reusable buffers of the decoder: the derived strings of one request, which the request's
/// batch borrows. Keep one per worker thread and pass it to every [`parse_lines`] call; after
/// the first few requests it has grown to size and decoding allocates nothing more in it.
#[derive(Debug, Default)]
pub struct InfluxScratch {
    arena: Arena,
}

impl InfluxScratch {
    /// An empty scratch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Heap bytes kept for the next request, so a caller can drop a scratch that one huge
    /// request blew up.
    pub fn retained_bytes(&self) -> usize {
        self.arena.retained_bytes()
    }
}

/// What one body contained.
#[derive(Debug, Default)]
pub struct InfluxStats {
    /// Points (lines) decoded without error.
    pub lines: u64,
    /// Lines rejected; the first [`MAX_REPORTED_ERRORS`] are in `errors`.
    pub bad_lines: u64,
    /// Samples added to the batch.
    pub samples: u64,
    /// String field values, which have no numeric value and are not stored.
    pub string_fields_skipped: u64,
    /// The first rejected lines, in body order.
    pub errors: Vec<InfluxError>,
}

impl InfluxStats {
    /// The errors as one InfluxDB-style message (one line per error), or `None` if every line
    /// was valid.
    pub fn error_message(&self) -> Option<String> {
        if self.bad_lines == 0 {
            return None;
        }
        let mut msg = self
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let more = self.bad_lines - self.errors.len() as u64;
        if more > 0 {
            msg.push_str(&format!("\n… and {more} more bad lines"));
        }
        Some(msg)
    }
}

/// Decodes a body that may not be UTF-8: an invalid byte rejects the whole body (we cannot
/// tell which line boundaries to trust), with its line and column.
pub fn parse_body<'a>(
    body: &'a [u8],
    opts: &'a InfluxOptions,
    scratch: &'a mut InfluxScratch,
    batch: &mut WriteBatch<'a>,
) -> Result<InfluxStats> {
    parse_lines(body_text(body)?, opts, scratch, batch)
}

/// [`parse_body`] with the label-run memory: a line whose measurement, tags and field keys
/// (under these options) are in `known` goes into the batch as keyed series without labels,
/// listed in `keyed.hits`; the series of other keyable lines are listed in `keyed.misses`
/// with the entry to remember once they are keyed (after any label drops). A keyed series
/// that the head turns out not to hold is decoded again, with labels, by
/// [`parse_series_again`].
pub fn parse_body_keyed<'a>(
    body: &'a [u8],
    opts: &'a InfluxOptions,
    scratch: &'a mut InfluxScratch,
    batch: &mut WriteBatch<'a>,
    known: &RunKeyMap,
    keyed: &mut KeyedLines,
) -> Result<InfluxStats> {
    keyed.clear();
    decode(body_text(body)?, opts, scratch, batch, Some((known, keyed)))
}

fn body_text(body: &[u8]) -> Result<&str> {
    if let Ok(text) = simdutf8::basic::from_utf8(body) {
        return Ok(text);
    }
    // The fast check says only whether the body is valid; std's says where it is not.
    std::str::from_utf8(body).map_err(|e| {
        let bad = e.valid_up_to();
        let line = body[..bad].iter().filter(|&&c| c == b'\n').count() as u32 + 1;
        let line_start = body[..bad]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        InfluxError::InvalidUtf8 {
            line,
            column: (bad - line_start) as u32 + 1,
        }
    })
}

/// Decodes line protocol into `batch`: for every valid line, one series per numeric or boolean
/// field (booleans become 1/0), with labels borrowed from `body`, from `opts` (extra labels)
/// and from `scratch` (metric names, unescaped or sanitized tags; each distinct string once).
/// `scratch` is emptied first and stays borrowed as long as the batch.
///
/// Bad lines are skipped and reported in the returned stats; `Err` only for a body that the
/// batch cannot hold, and then the batch is left as it was.
pub fn parse_lines<'a>(
    body: &'a str,
    opts: &'a InfluxOptions,
    scratch: &'a mut InfluxScratch,
    batch: &mut WriteBatch<'a>,
) -> Result<InfluxStats> {
    decode(body, opts, scratch, batch, None)
}

/// Adds to `batch`, with their labels, the keyed series `which` (batch indices of the
/// request's first batch, listed in `keyed.hits`) of a body that [`parse_body_keyed`]
/// decoded with the same options: each from its line, with its sample. Returns `false` if
/// one of them is not a keyed series or no longer decodes as it did.
pub fn parse_series_again<'a>(
    body: &'a [u8],
    opts: &'a InfluxOptions,
    scratch: &'a mut InfluxScratch,
    batch: &mut WriteBatch<'a>,
    keyed: &KeyedLines,
    which: &[u32],
) -> Result<bool> {
    let body = body_text(body)?;
    let arena = &mut scratch.arena;
    arena.clear();
    let mut stats = InfluxStats::default();
    let mut scanner = Scanner::new(body);
    let mut extra_skip: Vec<bool> = vec![false; opts.extra_labels.len()];
    let mut complete = true;
    for &index in which {
        let Some((line, nth)) = keyed.line_of(index) else {
            complete = false;
            continue;
        };
        scanner.seek(line as usize, 1);
        let point = match scanner.begin_point().map(|i| scanner.scan_full(i, arena)) {
            Some((Scanned::Point(point), _)) => point,
            _ => {
                complete = false;
                continue;
            }
        };
        let Some(ts) = point_time(opts, point.timestamp) else {
            complete = false;
            continue;
        };
        let before = batch.series.len();
        let mut out = Out {
            arena: &mut *arena,
            batch: &mut *batch,
            stats: &mut stats,
        };
        out.point(
            &mut scanner,
            point.measurement,
            ts,
            opts,
            &mut extra_skip,
            Some(nth),
        );
        complete &= batch.series.len() == before + 1;
    }
    let scratch: &'a InfluxScratch = scratch;
    if scratch.arena.resolve(batch).is_err() {
        return Err(InfluxError::DerivedTooLarge);
    }
    Ok(complete)
}

/// The sample time (ms) of a point: its timestamp, or the request's arrival for a point
/// without one; `None` when the timestamp does not fit in milliseconds.
fn point_time(opts: &InfluxOptions, timestamp: Option<i64>) -> Option<i64> {
    match timestamp {
        None => Some(opts.now_ms),
        Some(t) => opts.precision.to_ms(t),
    }
}

/// The decoder behind [`parse_lines`] and [`parse_body_keyed`].
fn decode<'a>(
    body: &'a str,
    opts: &'a InfluxOptions,
    scratch: &'a mut InfluxScratch,
    batch: &mut WriteBatch<'a>,
    mut keyed: Option<(&RunKeyMap, &mut KeyedLines)>,
) -> Result<InfluxStats> {
    // WriteBatch indexes with u32; every label and sample takes at least one body byte...
    // except extra labels, so leave generous room.
    let limit = (u32::MAX / 4) as usize;
    if body.len() > limit {
        return Err(InfluxError::BodyTooLarge {
            len: body.len(),
            limit,
        });
    }
    let mark = (
        batch.labels.len(),
        batch.series.len(),
        batch.timestamps.len(),
    );
    let arena = &mut scratch.arena;
    arena.clear();
    let mut stats = InfluxStats::default();
    let mut scanner = Scanner::new(body);
    let mut extra_skip: Vec<bool> = vec![false; opts.extra_labels.len()];
    let seed = keyed
        .as_ref()
        .map_or(0, |(known, _)| keyed::line_seed(opts, known.secret()));
    let mut ctx = Decoding {
        body,
        opts,
        arena: &mut *arena,
        batch: &mut *batch,
        stats: &mut stats,
        extra_skip: &mut extra_skip,
    };
    match keyed.as_mut() {
        None => {
            while let Some(i) = scanner.begin_point() {
                ctx.full_line(&mut scanner, i, None, None);
            }
        }
        Some((known, lines)) => {
            lines.refs.start(known);
            // First every line is scanned (fields and timestamp) and keyed, then the keys are
            // looked up a few lines ahead of their use: the lookups miss the CPU caches when
            // many series are live, and this way their misses overlap (perf: the lookup
            // inside the scan loop was 14 % of the server's time at 44 k series).
            lines.scan_all(&mut scanner, ctx.arena, seed, |series| {
                is_flink(opts, series)
            });
            const AHEAD: usize = 8;
            for k in 0..lines.pending_len() {
                lines.prefetch(known, k + AHEAD);
                let pending = lines.pending(k);
                if let Some(ts) = point_time(opts, pending.timestamp) {
                    if lines.find_all(k, known) {
                        ctx.stats.lines += 1;
                        ctx.stats.string_fields_skipped += lines.strings_of(k) as u64;
                        ctx.stats.samples += lines.push_found(ctx.batch, ts, pending.start) as u64;
                        continue;
                    }
                }
                scanner.seek(pending.start, pending.line_no);
                ctx.full_line(&mut scanner, pending.start, pending.key, Some(lines));
            }
        }
    }
    // Decoding is done: the arena is frozen and the batch may borrow from it.
    let scratch: &'a InfluxScratch = scratch;
    if scratch.arena.resolve(batch).is_err() {
        batch.labels.truncate(mark.0);
        batch.series.truncate(mark.1);
        batch.timestamps.truncate(mark.2);
        batch.values.truncate(mark.2);
        if let Some((_, lines)) = keyed {
            lines.clear();
        }
        return Err(InfluxError::DerivedTooLarge);
    }
    Ok(stats)
}

/// What decoding a line with its labels writes to.
struct Decoding<'d, 'a> {
    body: &'a str,
    opts: &'a InfluxOptions,
    arena: &'d mut Arena,
    batch: &'d mut WriteBatch<'a>,
    stats: &'d mut InfluxStats,
    extra_skip: &'d mut Vec<bool>,
}

impl<'a> Decoding<'_, 'a> {
    /// Decodes the point at `i` with its tags into the batch, or records its error. With a
    /// line key, its series are listed as misses in `lines`.
    fn full_line(
        &mut self,
        scanner: &mut Scanner<'a>,
        i: usize,
        line_key: Option<u128>,
        lines: Option<&mut KeyedLines>,
    ) {
        let (scanned, line_no) = scanner.scan_full(i, self.arena);
        match scanned {
            Scanned::Point(point) => {
                let Some(ts) = point_time(self.opts, point.timestamp) else {
                    let kind = LineErrorKind::TimestampOutOfRange;
                    record_error(
                        self.stats,
                        self.body,
                        point.start,
                        point.start,
                        line_no,
                        kind,
                    );
                    return;
                };
                self.stats.lines += 1;
                let before = self.batch.series.len();
                let mut out = Out {
                    arena: &mut *self.arena,
                    batch: &mut *self.batch,
                    stats: &mut *self.stats,
                };
                out.point(
                    scanner,
                    point.measurement,
                    ts,
                    self.opts,
                    self.extra_skip,
                    None,
                );
                if let (Some(key), Some(lines)) = (line_key, lines) {
                    for (n, index) in (before..self.batch.series.len()).enumerate() {
                        lines
                            .misses
                            .push((index as u32, keyed::entry_key(key, n as u32)));
                    }
                }
            }
            Scanned::Error { err, line_start } => {
                record_error(
                    self.stats, self.body, line_start, err.pos, line_no, err.kind,
                );
            }
        }
    }
}

/// Whether a point with this measurement gets Flink's names.
fn is_flink(opts: &InfluxOptions, measurement: &str) -> bool {
    match opts.flink_names {
        FlinkNames::Off => false,
        FlinkNames::Auto => naming::is_flink_measurement(measurement),
        FlinkNames::On => true,
    }
}

/// The sample value of a field, or `None` for a string field, which is not stored. Flink's
/// InfluxdbReporter sends boolean gauges as the strings "true"/"false"; the Prometheus
/// reporter exports them as 1/0, so Flink lines get the same.
fn field_number(value: FieldValue<'_>, flink: bool) -> Option<f64> {
    match value {
        FieldValue::Float(v) => Some(v),
        FieldValue::Int(v) => Some(v as f64),
        FieldValue::UInt(v) => Some(v as f64),
        FieldValue::Bool(b) => Some(f64::from(u8::from(b))),
        FieldValue::Str("true") if flink => Some(1.0),
        FieldValue::Str("false") if flink => Some(0.0),
        FieldValue::Str(_) => None,
    }
}

/// Where decoded points go.
struct Out<'o, 'a> {
    arena: &'o mut Arena,
    batch: &'o mut WriteBatch<'a>,
    stats: &'o mut InfluxStats,
}

impl<'a> Out<'_, 'a> {
    /// Adds one series per field of the scanned point, or only its series number `only`.
    fn point(
        &mut self,
        scanner: &mut Scanner<'a>,
        measurement: Str<'a>,
        ts: i64,
        opts: &'a InfluxOptions,
        extra_skip: &mut [bool],
        only: Option<u32>,
    ) {
        let arena = &mut *self.arena;
        let flink = is_flink(opts, arena.get(measurement));
        // Rewrite the tags once per line; every series of the line then shares them.
        for (k, v) in scanner.tags.iter_mut() {
            if opts.prom_names && !naming::label_name_is_clean(arena.get(*k)) {
                let raw = *k;
                *k = Str::Derived(arena.derive(|a, dst| naming::push_label_name(dst, a.get(raw))));
            }
            if flink
                && opts.flink_sanitize_tag_values
                && !naming::label_value_is_clean(arena.get(*v))
            {
                let raw = *v;
                *v = Str::Derived(arena.derive(|a, dst| naming::push_label_value(dst, a.get(raw))));
            }
        }
        for (skip, (name, _)) in extra_skip.iter_mut().zip(&opts.extra_labels) {
            *skip = scanner.tags.iter().any(|(k, _)| arena.get(*k) == name);
        }
        let shape = if flink {
            naming::flink_shape(scanner.fields.iter().map(|(k, _)| arena.get(*k)))
        } else {
            FlinkShape::Plain
        };
        let mut nth = 0u32;
        for &(key, value) in &scanner.fields {
            let Some(v) = field_number(value, flink) else {
                self.stats.string_fields_skipped += u64::from(only.is_none());
                continue;
            };
            nth += 1;
            if only.is_some_and(|o| o != nth - 1) {
                continue;
            }
            let arena = &mut *self.arena;
            let mut quantile = None;
            let name = arena.derive(|a, dst| {
                let (m, f) = (a.get(measurement), a.get(key));
                if flink {
                    quantile = naming::flink_name(dst, m, f, shape);
                } else {
                    naming::plain_name(dst, m, f, opts.prom_names);
                }
            });
            let batch = &mut *self.batch;
            batch.start_series();
            arena.push_label(batch, Str::Borrowed("__name__"), Str::Derived(name));
            if let Some(q) = quantile {
                batch.push_label("quantile", q);
            }
            for &(k, v) in &scanner.tags {
                arena.push_label(batch, k, v);
            }
            for ((k, v), &skip) in opts.extra_labels.iter().zip(extra_skip.iter()) {
                if !skip {
                    batch.push_label(k.as_str(), v.as_str());
                }
            }
            batch.push_sample(ts, v);
            self.stats.samples += 1;
        }
    }
}

/// Counts a bad line and keeps its description if there is room.
fn record_error(
    stats: &mut InfluxStats,
    body: &str,
    line_start: usize,
    pos: usize,
    line_no: u32,
    kind: LineErrorKind,
) {
    stats.bad_lines += 1;
    if stats.errors.len() >= MAX_REPORTED_ERRORS {
        return;
    }
    let b = body.as_bytes();
    let pos = pos.min(b.len());
    // The error may sit on a later physical line than the point's first (multi-line strings).
    let line = line_no
        + b[line_start.min(pos)..pos]
            .iter()
            .filter(|&&c| c == b'\n')
            .count() as u32;
    let phys_start = b[..pos]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let column = (pos - phys_start) as u32 + 1;
    let first_line_end = b[line_start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| line_start + p);
    let mut text = body[line_start..first_line_end].trim_end_matches('\r');
    if text.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text = &text[..cut];
    }
    stats.errors.push(InfluxError::Line {
        line,
        column,
        kind,
        text: text.to_string(),
    });
}

/// Inflates a gzip body (one or more members) into `dst`, refusing to produce more than
/// `max_len` bytes so that a small bomb cannot exhaust memory. `dst` is appended to.
pub fn gunzip(src: &[u8], dst: &mut Vec<u8>, max_len: usize) -> Result<()> {
    let start = dst.len();
    let mut decoder = flate2::read::MultiGzDecoder::new(src).take(max_len as u64 + 1);
    decoder
        .read_to_end(dst)
        .map_err(|source| InfluxError::Gzip { source })?;
    if dst.len() - start > max_len {
        dst.truncate(start);
        return Err(InfluxError::GzipTooLarge { limit: max_len });
    }
    Ok(())
}

/// Unescapes a string field value (`\"`, `\\`); string fields are not stored, but callers that
/// want them (e.g. logs of bad data) can decode them with this.
pub fn unescape_string_field(raw: &str) -> Cow<'_, str> {
    scan::unescape_string_field(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_to_ms_floors() {
        assert_eq!(Precision::Ns.to_ms(1_999_999), Some(1));
        assert_eq!(Precision::Ns.to_ms(-1), Some(-1));
        assert_eq!(Precision::Us.to_ms(-1_001), Some(-2));
        assert_eq!(Precision::H.to_ms(2), Some(7_200_000));
        assert_eq!(Precision::S.to_ms(i64::MAX), None);
    }
}
