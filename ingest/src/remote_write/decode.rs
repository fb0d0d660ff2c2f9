//! The zero-copy walk of a `prometheus.WriteRequest` into a [`WriteBatch`], with per-series
//! label validation.

use std::borrow::Cow;
use std::fmt::Write as _;

use eddy_storage::labels::METRIC_NAME;
use eddy_storage::WriteBatch;

use super::wire::{Reader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT};
use super::{DecodeStats, MetricMetadata, MetricType, MAX_INVALID_MESSAGES};
use crate::error::Result;
use crate::key_cache::{label_run_hash, Found, HitRefs, RunKeyMap};

/// Series with more labels than this are checked for duplicate names by sorting instead of
/// comparing every pair.
const QUADRATIC_DUP_CHECK_MAX: usize = 24;

/// Why one series was left out. Formatted only when it happens, so valid series cost nothing.
#[derive(Debug, Clone, Copy)]
enum Problem {
    /// Label number `label` had invalid UTF-8 in its name (`in_name`) or value.
    Utf8 { label: usize, in_name: bool },
    /// Label number `label` has an empty name.
    EmptyName { label: usize },
    /// Two labels share a name; the index is of the second.
    Duplicate { label: usize },
    /// No `__name__` label, or an empty one.
    NoMetricName,
}

/// Batch lengths at the start of a series or request, for rolling back.
#[derive(Debug, Clone, Copy)]
struct Mark {
    labels: usize,
    series: usize,
    samples: usize,
}

impl Mark {
    fn of(b: &WriteBatch<'_>) -> Self {
        Mark {
            labels: b.labels.len(),
            series: b.series.len(),
            samples: b.timestamps.len(),
        }
    }

    fn rollback(self, b: &mut WriteBatch<'_>) {
        b.labels.truncate(self.labels);
        b.series.truncate(self.series);
        b.timestamps.truncate(self.samples);
        b.values.truncate(self.samples);
    }
}

/// How series are decoded: always by the general field walk (tests compare against it), by
/// the common-layout fast path where it applies, or by the fast path with known label runs.
enum Path<'k> {
    #[cfg(test)]
    General,
    Common,
    /// The series' label runs looked up beforehand ([`look_up_label_runs`]).
    Keyed(&'k mut KeyedSeries),
}

/// What [`decode_write_request_keyed`] saw of the series it decoded by the fast path, for the
/// caller's next steps. Reused from request to request.
#[derive(Debug, Default)]
pub struct KeyedSeries {
    /// Series whose label run was known: batch index and the run's byte range in the body.
    /// They are in the batch keyed and without labels; [`push_run_labels`] decodes the run
    /// for a series the head turns out not to hold.
    pub hits: Vec<(u32, (u32, u32))>,
    /// Series decoded with their labels whose run was not known: batch index and the run's
    /// hash, to key (after any label drops) and remember.
    pub misses: Vec<(u32, u128)>,
    /// The hits' map slots and series references, for
    /// [`super::SeriesKeyCache::remember_refs`].
    pub refs: HitRefs,
    /// Per `TimeSeries` of the request: its common-layout label run, if it has one.
    runs: Vec<Option<LabelRun>>,
}

/// A series' leading run of common-layout label fields, as [`look_up_label_runs`] found it.
#[derive(Debug, Clone, Copy)]
struct LabelRun {
    /// Length in bytes.
    len: usize,
    /// [`label_run_hash`] of those bytes.
    hash: u128,
    /// What the cache holds for them.
    found: Option<Found>,
}

impl KeyedSeries {
    /// Forgets the previous request.
    pub fn clear(&mut self) {
        self.hits.clear();
        self.misses.clear();
        self.refs.clear();
        self.runs.clear();
    }

    /// Heap bytes held, for callers that drop the lists after an unusually large request.
    pub fn retained_bytes(&self) -> usize {
        self.hits.capacity() * std::mem::size_of::<(u32, (u32, u32))>()
            + self.misses.capacity() * std::mem::size_of::<(u32, u128)>()
            + self.runs.capacity() * std::mem::size_of::<Option<LabelRun>>()
            + self.refs.retained_bytes()
    }

    /// The label-run range of hit series `index` (hits are in batch order).
    pub fn run_of(&self, index: u32) -> Option<(u32, u32)> {
        self.hits
            .binary_search_by_key(&index, |h| h.0)
            .ok()
            .map(|k| self.hits[k].1)
    }
}

/// [`decode_write_request`] that skips the labels of series whose label bytes are in `known`
/// (hashes of label runs, see [`super::SeriesKeyCache`]): such a series goes
/// into the batch with its key and samples only, and is listed in `seen.hits`. Series
/// decoded by the fast path with their labels are listed in `seen.misses`. `seen` is cleared
/// first.
pub fn decode_write_request_keyed<'a>(
    body: &'a [u8],
    batch: &mut WriteBatch<'a>,
    meta: &mut Vec<MetricMetadata<'a>>,
    known: &RunKeyMap,
    seen: &mut KeyedSeries,
) -> Result<DecodeStats> {
    seen.clear();
    if u32::try_from(body.len()).is_err() {
        // Hits record their label runs as u32 offsets into the body.
        return decode_write_request(body, batch, meta);
    }
    let start = Mark::of(batch);
    let meta_len = meta.len();
    let mut stats = DecodeStats::default();
    seen.refs.start(known);
    look_up_label_runs(Reader::new(body), known, &mut seen.runs);
    let mut path = Path::Keyed(seen);
    let res = walk_request(Reader::new(body), batch, meta, &mut stats, &mut path);
    if let Err(e) = res {
        start.rollback(batch);
        meta.truncate(meta_len);
        seen.clear();
        return Err(e);
    }
    Ok(stats)
}

/// Hashes the label run of every `TimeSeries` in the request and looks the hashes up, all
/// before decoding: the lookups miss the CPU caches when many series are live, and done in
/// one tight loop their misses overlap instead of each stalling a series' decode (perf: the
/// lookups inside the decode loop were a quarter of the server's cycles at 87 k series).
/// Stops at damaged wire data; the decode that follows reports it.
fn look_up_label_runs(mut r: Reader<'_>, known: &RunKeyMap, runs: &mut Vec<Option<LabelRun>>) {
    while let Ok(Some(f)) = r.field() {
        if f.num == 1 && f.wire == WIRE_LEN {
            let Ok(series) = r.sub() else {
                break;
            };
            let s = series.remaining();
            runs.push(label_run_len(s).map(|len| LabelRun {
                len,
                hash: label_run_hash(&s[..len]),
                found: None,
            }));
        } else if r.skip(f).is_err() {
            break;
        }
    }
    // Fetch a few lookups ahead, so that several misses are in flight at a time.
    const AHEAD: usize = 8;
    for run in runs.iter().take(AHEAD).flatten() {
        known.prefetch(run.hash);
    }
    for i in 0..runs.len() {
        if let Some(Some(ahead)) = runs.get(i + AHEAD) {
            known.prefetch(ahead.hash);
        }
        if let Some(run) = &mut runs[i] {
            run.found = known.find(&run.hash);
        }
    }
}

/// Adds the labels of a label run that [`decode_write_request_keyed`] listed as a hit to the
/// current series of `batch`. False (nothing added) if `run` is not such a run of `body`.
pub fn push_run_labels<'a>(body: &'a [u8], run: (u32, u32), batch: &mut WriteBatch<'a>) -> bool {
    let (start, end) = (run.0 as usize, run.1 as usize);
    match body.get(start..end) {
        Some(bytes) => push_common_labels(bytes, batch),
        None => false,
    }
}

/// Decodes a `prometheus.WriteRequest` (already decompressed), appending its series to `batch`
/// with label strings borrowed from `body`, and its metadata to `meta`.
///
/// Malformed wire data fails the whole request with the byte offset, and `batch` and `meta` are
/// then restored to what they held before the call. A series with invalid labels (bad UTF-8,
/// empty or duplicate names, no `__name__`) is left out and described in the stats; the rest
/// of the request is still decoded. Native histograms and exemplars are counted and skipped; a
/// series left with no float sample is not appended.
pub fn decode_write_request<'a>(
    body: &'a [u8],
    batch: &mut WriteBatch<'a>,
    meta: &mut Vec<MetricMetadata<'a>>,
) -> Result<DecodeStats> {
    let start = Mark::of(batch);
    let meta_len = meta.len();
    let mut stats = DecodeStats::default();
    let res = walk_request(
        Reader::new(body),
        batch,
        meta,
        &mut stats,
        &mut Path::Common,
    );
    if let Err(e) = res {
        start.rollback(batch);
        meta.truncate(meta_len);
        return Err(e);
    }
    Ok(stats)
}

fn walk_request<'a>(
    mut r: Reader<'a>,
    batch: &mut WriteBatch<'a>,
    meta: &mut Vec<MetricMetadata<'a>>,
    stats: &mut DecodeStats,
    path: &mut Path<'_>,
) -> Result<()> {
    let mut index = 0usize;
    while let Some(f) = r.field()? {
        match f.num {
            1 => {
                Reader::expect(f, WIRE_LEN)?;
                let series = r.sub()?;
                decode_series(series, index, batch, stats, path)?;
                index += 1;
            }
            3 => {
                Reader::expect(f, WIRE_LEN)?;
                meta.push(decode_metadata(r.sub()?)?);
            }
            _ => r.skip(f)?,
        }
    }
    Ok(())
}

/// Decodes one `TimeSeries` and appends it, or rolls it back if its labels are invalid.
fn decode_series<'a>(
    mut r: Reader<'a>,
    index: usize,
    batch: &mut WriteBatch<'a>,
    stats: &mut DecodeStats,
    path: &mut Path<'_>,
) -> Result<()> {
    let fast = match path {
        #[cfg(test)]
        Path::General => false,
        Path::Common => decode_common_series(r.remaining(), batch, stats),
        Path::Keyed(seen) => {
            decode_keyed_series(r.remaining(), r.position(), index, batch, stats, seen)
        }
    };
    if fast {
        return Ok(());
    }
    let mark = Mark::of(batch);
    batch.start_series();
    let mut problem: Option<Problem> = None;
    let mut nlabels = 0usize;
    let run = label_run(r);
    while let Some(f) = r.field()? {
        match f.num {
            1 => {
                Reader::expect(f, WIRE_LEN)?;
                match decode_label(r.sub()?, run)? {
                    Ok((n, v)) => batch.push_label(Cow::Borrowed(n), Cow::Borrowed(v)),
                    Err(in_name) => {
                        problem.get_or_insert(Problem::Utf8 {
                            label: nlabels,
                            in_name,
                        });
                    }
                }
                nlabels += 1;
            }
            2 => {
                Reader::expect(f, WIRE_LEN)?;
                let (ts, v) = decode_sample(r.sub()?)?;
                batch.push_sample(ts, v);
            }
            3 => {
                Reader::expect(f, WIRE_LEN)?;
                r.sub()?;
                stats.exemplars += 1;
            }
            4 => {
                Reader::expect(f, WIRE_LEN)?;
                r.sub()?;
                stats.histograms += 1;
            }
            _ => r.skip(f)?,
        }
    }
    let labels = &batch.labels[mark.labels..];
    if problem.is_none() {
        problem = check_labels(labels);
    }
    if let Some(p) = problem {
        stats.invalid_series += 1;
        if stats.invalid.len() < MAX_INVALID_MESSAGES {
            stats.invalid.push(describe(index, labels, p));
        }
        mark.rollback(batch);
        return Ok(());
    }
    let samples = batch.timestamps.len() - mark.samples;
    if samples == 0 {
        // Only histograms (or nothing): nothing storable.
        mark.rollback(batch);
        return Ok(());
    }
    stats.series += 1;
    stats.samples += samples;
    Ok(())
}

/// The fast path for a valid series in the layout every remote_write sender produces: labels
/// first, each `0x0a len (0x0a len name 0x12 len value)` with lengths under 128, then samples
/// `0x12 len (0x09 value8 0x10 ts)`, nothing else. It reads the bytes directly instead of
/// walking fields (the general walk cost ~3,400 instructions per Flink series, most of the
/// decoder). Returns false, with `batch` untouched, for anything else (other layouts, unknown
/// fields, exemplars, histograms, invalid labels, no samples): [`decode_series`] then decodes
/// the series the general way and reports any problem.
fn decode_common_series<'a>(
    s: &'a [u8],
    batch: &mut WriteBatch<'a>,
    stats: &mut DecodeStats,
) -> bool {
    label_run_len(s).is_some_and(|run| decode_common_series_after(s, run, batch, stats))
}

/// [`decode_common_series`] for a series whose label run (`s[..run]`) is already measured.
fn decode_common_series_after<'a>(
    s: &'a [u8],
    run: usize,
    batch: &mut WriteBatch<'a>,
    stats: &mut DecodeStats,
) -> bool {
    let mark = Mark::of(batch);
    batch.start_series();
    if !push_common_labels(&s[..run], batch)
        || check_labels(&batch.labels[mark.labels..]).is_some()
        || !push_common_samples(&s[run..], batch, mark, stats)
    {
        mark.rollback(batch);
        return false;
    }
    true
}

/// [`decode_common_series`] for a series whose label run may be known: then only its samples
/// are decoded, into a keyed series without labels. `at` is the series' offset in the body,
/// `series` its number in the request.
fn decode_keyed_series<'a>(
    s: &'a [u8],
    at: usize,
    series: usize,
    batch: &mut WriteBatch<'a>,
    stats: &mut DecodeStats,
    seen: &mut KeyedSeries,
) -> bool {
    let Some(&Some(run)) = seen.runs.get(series) else {
        return false;
    };
    let index = batch.series.len() as u32;
    if let Some(found) = run.found {
        // The same bytes passed every check when the entry was made.
        let mark = Mark::of(batch);
        batch.start_keyed_series_at(found.key, found.series_ref);
        if !push_common_samples(&s[run.len..], batch, mark, stats) {
            mark.rollback(batch);
            return false;
        }
        seen.hits.push((index, (at as u32, (at + run.len) as u32)));
        seen.refs.push(index, &found);
        return true;
    }
    if !decode_common_series_after(s, run.len, batch, stats) {
        return false;
    }
    seen.misses.push((index, run.hash));
    true
}

/// The length of the leading run of label fields in the common layout (tag `0x0a`, one-byte
/// length), or `None` if a label field there is longer or runs past the end.
#[inline]
fn label_run_len(s: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while let Some(&[0x0a, len]) = s.get(pos..pos + 2) {
        if len >= 0x80 {
            return None;
        }
        pos += 2 + usize::from(len);
    }
    (pos <= s.len()).then_some(pos)
}

/// Adds the labels of a run of common-layout label fields to the current series. False
/// (with some labels possibly added; the caller rolls back) for any other layout or invalid
/// UTF-8.
fn push_common_labels<'a>(run: &'a [u8], batch: &mut WriteBatch<'a>) -> bool {
    // Tag and length bytes are ASCII in this layout, so the run is valid UTF-8 exactly when
    // its strings are, and every string boundary is a char boundary.
    let Ok(text) = std::str::from_utf8(run) else {
        return false;
    };
    let mut at = 0;
    while at < run.len() {
        let Some(&[0x0a, len]) = run.get(at..at + 2) else {
            return false;
        };
        let len = usize::from(len);
        let Some(((n, nl), (v, vl))) = run
            .get(at + 2..at + 2 + len)
            .and_then(|label| short_label(label, at + 2))
        else {
            return false;
        };
        let (Some(name), Some(value)) = (text.get(n..n + nl), text.get(v..v + vl)) else {
            return false;
        };
        batch.push_label(Cow::Borrowed(name), Cow::Borrowed(value));
        at += 2 + len;
    }
    true
}

/// Adds the samples that follow a series' labels, all in the common layout, to the current
/// series and counts the series. False for any other layout or no samples.
fn push_common_samples(
    s: &[u8],
    batch: &mut WriteBatch<'_>,
    mark: Mark,
    stats: &mut DecodeStats,
) -> bool {
    let mut pos = 0;
    while pos < s.len() {
        let Some((ts, v, used)) = common_sample(&s[pos..]) else {
            return false;
        };
        batch.push_sample(ts, v);
        pos += used;
    }
    let samples = batch.timestamps.len() - mark.samples;
    if samples == 0 {
        return false;
    }
    stats.series += 1;
    stats.samples += samples;
    true
}

/// A `Sample` field in the common layout (`0x12 len 0x09 value8 0x10 ts-varint`): the
/// timestamp, the value and the bytes used, or `None` for any other layout.
#[inline]
fn common_sample(b: &[u8]) -> Option<(i64, f64, usize)> {
    let (&[0x12, len, 0x09], rest) = b.split_first_chunk::<3>()? else {
        return None;
    };
    let len = usize::from(len);
    if !(11..0x80).contains(&len) {
        return None;
    }
    let body = rest.get(..len - 1)?;
    let (value, ts) = body.split_first_chunk::<8>()?;
    let [0x10, varint @ ..] = ts else {
        return None;
    };
    // int64 is the two's-complement varint (not zigzag); at most 10 bytes, all used.
    if varint.len() > 10 {
        return None;
    }
    let mut t = 0u64;
    for (i, &byte) in varint.iter().enumerate() {
        let last = i + 1 == varint.len();
        if (byte < 0x80) != last || (i == 9 && byte > 1) {
            return None;
        }
        t |= u64::from(byte & 0x7f) << (7 * i);
    }
    Some((
        t as i64,
        f64::from_bits(u64::from_le_bytes(*value)),
        2 + len,
    ))
}

/// The leading run of `labels` fields of a `TimeSeries` (where encoders put them), as one
/// string validated by a single UTF-8 check, with its absolute start. With short strings the
/// tag and length bytes in it are ASCII, so the run is valid exactly when its strings are.
/// `None` if the run is not valid UTF-8; labels are then checked one by one.
fn label_run<'a>(mut r: Reader<'a>) -> Option<(&'a str, usize)> {
    let start = r.position();
    let mut end = start;
    while let Ok(Some(f)) = r.field() {
        if f.num != 1 || f.wire != WIRE_LEN || r.sub().is_err() {
            break;
        }
        end = r.position();
    }
    std::str::from_utf8(r.slice(start, end))
        .ok()
        .map(|s| (s, start))
}

/// Decodes a `Label` into borrowed strings; the inner `Err` says whether the name (`true`) or
/// the value is not valid UTF-8. `run` is the series' pre-validated label run, if any.
fn decode_label<'a>(
    mut r: Reader<'a>,
    run: Option<(&'a str, usize)>,
) -> Result<std::result::Result<(&'a str, &'a str), bool>> {
    // Absolute (start, len) of name and value.
    let (mut name, mut value) = ((r.position(), 0), (r.position(), 0));
    if let Some((n, v)) = short_label(r.remaining(), r.position()) {
        (name, value) = (n, v);
    } else {
        while let Some(f) = r.field()? {
            match f.num {
                1 | 2 => {
                    Reader::expect(f, WIRE_LEN)?;
                    let b = r.bytes()?;
                    let at = (r.position() - b.len(), b.len());
                    if f.num == 1 {
                        name = at;
                    } else {
                        value = at;
                    }
                }
                _ => r.skip(f)?,
            }
        }
    }
    if let Some((s, base)) = run {
        // `get` also checks char boundaries, so a hit is always a valid &str.
        let slice = |(a, n): (usize, usize)| a.checked_sub(base).and_then(|a| s.get(a..a + n));
        if let (Some(n), Some(v)) = (slice(name), slice(value)) {
            return Ok(Ok((n, v)));
        }
    }
    let n = std::str::from_utf8(r.slice(name.0, name.0 + name.1)).map_err(|_| true);
    let v = std::str::from_utf8(r.slice(value.0, value.0 + value.1)).map_err(|_| false);
    Ok(n.and_then(|n| v.map(|v| (n, v))))
}

/// The layout every encoder gives a label with strings under 128 bytes: `0x0a len name 0x12
/// len value`, nothing else. Returns the absolute (start, len) of name and value, or `None`
/// for any other layout (the general field walk then decodes it).
#[inline]
fn short_label(b: &[u8], base: usize) -> Option<((usize, usize), (usize, usize))> {
    let (&[0x0a, name_len], rest) = b.split_first_chunk::<2>()? else {
        return None;
    };
    let name_len = usize::from(name_len);
    let (&[0x12, value_len], value) = rest.get(name_len..)?.split_first_chunk::<2>()? else {
        return None;
    };
    let value_len = usize::from(value_len);
    if name_len >= 0x80 || value_len >= 0x80 || value.len() != value_len {
        return None;
    }
    Some(((base + 2, name_len), (base + 4 + name_len, value_len)))
}

fn decode_sample(mut r: Reader<'_>) -> Result<(i64, f64)> {
    let (mut ts, mut v) = (0i64, 0f64);
    while let Some(f) = r.field()? {
        match f.num {
            1 => {
                Reader::expect(f, WIRE_FIXED64)?;
                v = f64::from_bits(r.fixed64()?);
            }
            2 => {
                Reader::expect(f, WIRE_VARINT)?;
                // int64 is the two's-complement varint (not zigzag).
                ts = r.varint()? as i64;
            }
            _ => r.skip(f)?,
        }
    }
    Ok((ts, v))
}

fn decode_metadata<'a>(mut r: Reader<'a>) -> Result<MetricMetadata<'a>> {
    let mut m = MetricMetadata::default();
    while let Some(f) = r.field()? {
        match f.num {
            1 => {
                Reader::expect(f, WIRE_VARINT)?;
                m.metric_type = MetricType::from_proto(r.varint()?);
            }
            2 | 4 | 5 => {
                Reader::expect(f, WIRE_LEN)?;
                // Metadata is advisory: keep it readable rather than fail the request.
                let s = String::from_utf8_lossy(r.bytes()?);
                match f.num {
                    2 => m.family = s,
                    4 => m.help = s,
                    _ => m.unit = s,
                }
            }
            _ => r.skip(f)?,
        }
    }
    Ok(m)
}

/// Checks names: non-empty, unique, and a non-empty `__name__` present.
fn check_labels(labels: &[(Cow<'_, str>, Cow<'_, str>)]) -> Option<Problem> {
    let mut has_name = false;
    for (i, (n, v)) in labels.iter().enumerate() {
        if n.is_empty() {
            return Some(Problem::EmptyName { label: i });
        }
        if n == METRIC_NAME && !v.is_empty() {
            has_name = true;
        }
    }
    if let Some(label) = find_duplicate(labels) {
        return Some(Problem::Duplicate { label });
    }
    if !has_name {
        return Some(Problem::NoMetricName);
    }
    None
}

/// Index of a label whose name already appeared earlier in the series.
fn find_duplicate(labels: &[(Cow<'_, str>, Cow<'_, str>)]) -> Option<usize> {
    if labels.len() <= QUADRATIC_DUP_CHECK_MAX {
        // A 64-bit filter on (length, last byte) skips the string compares for names that
        // cannot be equal to any earlier one, which is nearly all of them.
        let mut seen = 0u64;
        for (i, (n, _)) in labels.iter().enumerate() {
            let key =
                n.len().wrapping_mul(31) ^ usize::from(n.as_bytes().last().copied().unwrap_or(0));
            let bit = 1u64 << (key % 64);
            if seen & bit != 0 && labels[..i].iter().any(|l| l.0 == *n) {
                return Some(i);
            }
            seen |= bit;
        }
        return None;
    }
    // Large series are rare: an allocation here is per series, not per sample.
    let mut idx: Vec<usize> = (0..labels.len()).collect();
    idx.sort_by(|&a, &b| labels[a].0.cmp(&labels[b].0).then(a.cmp(&b)));
    idx.windows(2)
        .find(|w| labels[w[0]].0 == labels[w[1]].0)
        .map(|w| w[1])
}

/// Formats a problem as `series 3 {__name__="x", job="y"}: duplicate label name "job"`.
fn describe(index: usize, labels: &[(Cow<'_, str>, Cow<'_, str>)], p: Problem) -> String {
    const MAX_SHOWN: usize = 200;
    let mut s = format!("series {index} {{");
    for (i, (n, v)) in labels.iter().enumerate() {
        if s.len() > MAX_SHOWN {
            s.push_str(", …");
            break;
        }
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(s, "{sep}{n}={v:?}");
    }
    s.push_str("}: ");
    let _ = match p {
        Problem::Utf8 {
            label,
            in_name: true,
        } => write!(s, "label {label} has a name that is not valid UTF-8"),
        Problem::Utf8 {
            label,
            in_name: false,
        } => write!(s, "label {label} has a value that is not valid UTF-8"),
        Problem::EmptyName { label } => write!(s, "label {label} has an empty name"),
        Problem::Duplicate { label } => write!(s, "duplicate label name {:?}", labels[label].0),
        Problem::NoMetricName => write!(s, "missing metric name (label {METRIC_NAME:?})"),
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::encode_write_request;
    use eddy_storage::SeriesKey;
    use proptest::prelude::*;

    /// A decoded request as comparable data: labels, samples (value bits), and the series
    /// ranges with the stats.
    type Decoded = (Vec<String>, Vec<(i64, u64)>, String);
    /// Series as `encode_write_request` takes them.
    type EncodeInput<'s> = Vec<(Vec<(&'s str, &'s str)>, Vec<(i64, f64)>)>;

    /// Decodes with or without the common-layout fast path; the outcome as comparable data.
    fn decode_with(body: &[u8], common_layout: bool) -> Option<Decoded> {
        let (mut batch, mut meta, mut stats) =
            (WriteBatch::new(), Vec::new(), DecodeStats::default());
        let mut path = if common_layout {
            Path::Common
        } else {
            Path::General
        };
        walk_request(
            Reader::new(body),
            &mut batch,
            &mut meta,
            &mut stats,
            &mut path,
        )
        .ok()?;
        Some(comparable(&batch, &stats))
    }

    fn comparable(batch: &WriteBatch<'_>, stats: &DecodeStats) -> Decoded {
        let labels = batch
            .labels
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        let samples = batch
            .timestamps
            .iter()
            .zip(&batch.values)
            .map(|(&t, v)| (t, v.to_bits()))
            .collect();
        let series: Vec<_> = batch.series.iter().map(|s| (s.labels, s.samples)).collect();
        (
            labels,
            samples,
            format!(
                "{series:?} {:?} {} {} {} {}",
                stats.invalid, stats.series, stats.samples, stats.exemplars, stats.histograms
            ),
        )
    }

    /// Decodes with the keyed path against `known`, then gives every hit its labels back
    /// from its run (as the server does for a series the head no longer holds).
    fn decode_keyed_and_restore(body: &[u8], known: &RunKeyMap) -> Option<(Decoded, KeyedSeries)> {
        let (mut batch, mut meta, mut seen) =
            (WriteBatch::new(), Vec::new(), KeyedSeries::default());
        let stats =
            decode_write_request_keyed(body, &mut batch, &mut meta, known, &mut seen).ok()?;
        // Rebuild the batch with labels for the hits, in batch order.
        let mut full = WriteBatch::new();
        for i in 0..batch.series.len() {
            full.start_series();
            match seen.run_of(i as u32) {
                Some(run) => {
                    assert!(batch.series_labels(i).is_empty());
                    assert!(batch.series[i].key.is_some());
                    assert!(push_run_labels(body, run, &mut full));
                }
                None => {
                    for (n, v) in batch.series_labels(i) {
                        full.push_label(n.clone(), v.clone());
                    }
                }
            }
            let (ts, vs) = batch.series_samples(i);
            for (&t, &v) in ts.iter().zip(vs) {
                full.push_sample(t, v);
            }
        }
        Some((comparable(&full, &stats), seen))
    }

    /// Mostly valid label sets (a metric name and distinct names, some strings long enough
    /// for 2-byte lengths), sometimes with an empty name, a duplicate or no metric name.
    fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
        let value = prop_oneof![
            4 => "[a-z0-9]{1,12}",
            1 => Just(String::new()),
            1 => "\\PC{0,4}",
            1 => "[a-z]{126,130}",
        ];
        let names = prop_oneof![4 => "[a-z_]{1,6}", 1 => "[a-z]{120,140}"];
        (
            "[a-z_]{1,20}",
            prop::collection::btree_map(names, value, 0..6),
            0..8u8,
        )
            .prop_map(|(metric, rest, damage)| {
                let mut v = vec![("__name__".to_string(), metric)];
                v.extend(rest);
                match damage {
                    0 => v.push((String::new(), "x".into())),
                    1 => v.push(("__name__".into(), "again".into())),
                    2 => v[0].1.clear(),
                    _ => {}
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// The fast path and the general walk agree on every request, valid or damaged.
        #[test]
        fn common_layout_path_matches_the_general_walk(
            series in prop::collection::vec(
                (labels(),
                 prop::collection::vec((any::<i64>(), any::<u64>()), 0..3)),
                0..5),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let owned: EncodeInput<'_> = series
                .iter()
                .map(|(l, s)| {
                    (l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
                     s.iter().map(|&(t, v)| (t, f64::from_bits(v))).collect())
                })
                .collect();
            let mut body = Vec::new();
            encode_write_request(&owned, &mut body);
            prop_assert_eq!(decode_with(&body, true), decode_with(&body, false));
            // Keyed: nothing known, then every fast-path series known; both give back the
            // same batch once the hits' labels are restored from their runs.
            let plain = decode_with(&body, true);
            let mut known = RunKeyMap::default();
            let first = decode_keyed_and_restore(&body, &known);
            prop_assert_eq!(first.as_ref().map(|f| &f.0), plain.as_ref());
            if let Some((_, seen)) = &first {
                prop_assert!(seen.hits.is_empty());
                let mut scratch = eddy_storage::KeyScratch::default();
                let (mut batch, mut meta) = (WriteBatch::new(), Vec::new());
                decode_write_request(&body, &mut batch, &mut meta).unwrap();
                for &(i, hash) in &seen.misses {
                    let key = SeriesKey::of(batch.series_labels(i as usize), &mut scratch).unwrap();
                    known.insert(hash, key);
                }
                let second = decode_keyed_and_restore(&body, &known);
                prop_assert_eq!(second.as_ref().map(|f| &f.0), plain.as_ref());
                let hits = second.map(|s| s.1.hits.len());
                prop_assert_eq!(hits, Some(seen.misses.len()));
            }
            for (at, byte) in flips {
                if !body.is_empty() {
                    let i = at.index(body.len());
                    body[i] = byte;
                }
            }
            prop_assert_eq!(decode_with(&body, true), decode_with(&body, false));
            // A damaged request against runs known from the intact one.
            let keyed = decode_keyed_and_restore(&body, &known).map(|k| k.0);
            prop_assert_eq!(keyed, decode_with(&body, true));
        }
    }
}
