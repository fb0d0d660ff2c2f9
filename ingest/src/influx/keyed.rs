//! Line protocol's side of the label-run memory ([`crate::key_cache`]): Flink's
//! InfluxdbReporter sends every point's measurement and tags again in every report, byte for
//! byte, so a hash of them (with the point's field keys and the request's naming options)
//! stands for the labels of each series the point makes.
//!
//! A line's key covers everything its labels are a function of: the measurement and tag bytes
//! as written (up to the first unescaped space, which is where the full scan ends them too;
//! unescaping is a function of those bytes), every field key (the Flink naming of one field
//! depends on its siblings), and the options that change names or labels (extra labels, Flink
//! naming, sanitizing). The `n`-th series of the line is entry `n` of that key. Only a line that once
//! decoded without error gets entries, so a hit is always a line that decodes the same way.

use eddy_storage::WriteBatch;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64_with_seed};

use super::scan::{FieldValue, Scanner};
use super::{FlinkNames, InfluxOptions};
use crate::arena::{Arena, Str};
use crate::key_cache::{Found, HitRefs, RunKeyMap};

/// Spreads the entries of one line over the map: entry `n` is the line key plus `n` times
/// this odd constant, so the entries differ in their high half too (the map buckets by it).
const ENTRY_STRIDE: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;

/// Per-thread state of keyed line protocol decoding, reused across requests.
#[derive(Debug, Default)]
pub struct KeyedLines {
    /// Series that went into the batch keyed and without labels: batch index, the offset of
    /// their line in the body, and which series of the line they are (see
    /// [`super::parse_series_again`]).
    pub hits: Vec<(u32, u32, u32)>,
    /// Series decoded with labels from a line that could be keyed but was not known: batch
    /// index and the entry to remember once the series is keyed.
    pub misses: Vec<(u32, u128)>,
    /// The hits' map slots and series references, for
    /// [`crate::key_cache::SeriesKeyCache::remember_refs`].
    pub refs: HitRefs,
    /// The points of the request, in body order, as the first pass scanned them.
    pending: Vec<Pending>,
    /// The field values of the pending points: `None` for a string field that is not stored.
    numbers: Vec<Option<f64>>,
    /// The bytes a line key hashes.
    key_bytes: Vec<u8>,
    /// What the map holds for each series of the line being looked up, and its value, until
    /// all of its series are found.
    found: Vec<(Found, f64)>,
}

/// One point of a request after the first pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// Offset of its first byte.
    pub start: usize,
    /// Its first line's number.
    pub line_no: u32,
    /// Its line key, if the fast scan read it (else it is decoded in full).
    pub key: Option<u128>,
    /// Its raw timestamp, if it has one (read only with a line key).
    pub timestamp: Option<i64>,
    /// Its values in `numbers`.
    numbers: (u32, u32),
}

impl KeyedLines {
    /// Forgets the previous request.
    pub fn clear(&mut self) {
        self.hits.clear();
        self.misses.clear();
        self.refs.clear();
        self.pending.clear();
        self.numbers.clear();
        self.found.clear();
    }

    /// Heap bytes held, for callers that drop the state after an unusually large request.
    pub fn retained_bytes(&self) -> usize {
        self.hits.capacity() * std::mem::size_of::<(u32, u32, u32)>()
            + self.misses.capacity() * std::mem::size_of::<(u32, u128)>()
            + self.pending.capacity() * std::mem::size_of::<Pending>()
            + self.numbers.capacity() * std::mem::size_of::<Option<f64>>()
            + self.key_bytes.capacity()
            + self.found.capacity() * std::mem::size_of::<(Found, f64)>()
            + self.refs.retained_bytes()
    }

    /// Where keyed series `index` came from: its line's offset and its place in the line.
    pub(crate) fn line_of(&self, index: u32) -> Option<(u32, u32)> {
        let at = self.hits.binary_search_by_key(&index, |h| h.0).ok()?;
        let (_, line, nth) = self.hits[at];
        Some((line, nth))
    }

    /// The first pass: every point of the body, with the fields and timestamp of those the
    /// fast scan reads and their line keys. Other points (escapes that end a line early, bad
    /// lines) are skipped with a full scan, and decoded again in the second pass.
    pub(crate) fn scan_all<'a>(
        &mut self,
        scanner: &mut Scanner<'a>,
        arena: &mut Arena,
        seed: u64,
        is_flink: impl Fn(&str) -> bool,
    ) {
        self.pending.clear();
        self.numbers.clear();
        while let Some(start) = scanner.begin_point() {
            let line_no = scanner.line_no();
            let Some(fast) = scanner.scan_fast(start, arena) else {
                let _ = scanner.scan_full(start, arena);
                self.pending.push(Pending {
                    start,
                    line_no,
                    key: None,
                    timestamp: None,
                    numbers: (0, 0),
                });
                continue;
            };
            let key = self.line_key(seed, fast.series, &scanner.fields, arena);
            let flink = is_flink(fast.series);
            let first = self.numbers.len() as u32;
            self.numbers.extend(
                scanner
                    .fields
                    .iter()
                    .map(|&(_, value)| super::field_number(value, flink)),
            );
            self.pending.push(Pending {
                start,
                line_no,
                key: Some(key),
                timestamp: fast.timestamp,
                numbers: (first, self.numbers.len() as u32),
            });
            scanner.commit(fast.end);
        }
    }

    /// Points of the first pass.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Point `k` of the first pass.
    pub(crate) fn pending(&self, k: usize) -> Pending {
        self.pending[k]
    }

    /// Starts loading the map's slot of point `k`'s first series, if there is such a point.
    pub(crate) fn prefetch(&self, known: &RunKeyMap, k: usize) {
        if let Some(key) = self.pending.get(k).and_then(|p| p.key) {
            known.prefetch(entry_key(key, 0));
        }
    }

    /// String fields of point `k`, which are not stored.
    pub(crate) fn strings_of(&self, k: usize) -> usize {
        let (a, b) = self.pending[k].numbers;
        self.numbers[a as usize..b as usize]
            .iter()
            .filter(|v| v.is_none())
            .count()
    }

    /// The key of a line whose measurement and tags are `series` (as written) and whose field
    /// keys are those of `fields`.
    fn line_key(
        &mut self,
        seed: u64,
        series: &str,
        fields: &[(Str<'_>, FieldValue<'_>)],
        arena: &Arena,
    ) -> u128 {
        // The measurement and tags are hashed where they lie in the body, and only that hash
        // goes into the short buffer with the seed and the field keys: copying Flink's ~300
        // bytes of tags per line into the buffer first took 3 % of line protocol ingest
        // (perf). Their unseeded hash is as strong as remote_write's label-run key.
        let series_hash = xxh3_128(series.as_bytes());
        let buf = &mut self.key_bytes;
        buf.clear();
        // The seed goes in as bytes: xxh3's seeded form derives a new secret on every call
        // for inputs over 240 bytes, which a line with many fields reaches.
        buf.extend_from_slice(&seed.to_le_bytes());
        buf.extend_from_slice(&series_hash.to_le_bytes());
        for &(key, _) in fields {
            // 0xff is never part of UTF-8 text, so keys cannot run into each other.
            buf.push(0xff);
            buf.extend_from_slice(arena.get(key).as_bytes());
        }
        xxh3_128(buf)
    }

    /// Keys (from `known`) and values of every series of point `k`, in `found`; `false` if
    /// the point was not keyed, one of its series is not known, or it makes no series at all.
    pub(crate) fn find_all(&mut self, k: usize, known: &RunKeyMap) -> bool {
        self.found.clear();
        let Pending {
            key: Some(line_key),
            numbers: (a, b),
            ..
        } = self.pending[k]
        else {
            return false;
        };
        let mut n = 0u32;
        for v in self.numbers[a as usize..b as usize].iter().flatten() {
            match known.find(&entry_key(line_key, n)) {
                Some(found) => self.found.push((found, *v)),
                None => return false,
            }
            n += 1;
        }
        n > 0
    }

    /// Adds what [`KeyedLines::find_all`] found to `batch` as keyed series with one sample at
    /// `ts`, from the line at `line_start`; returns how many.
    pub(crate) fn push_found(
        &mut self,
        batch: &mut WriteBatch<'_>,
        ts: i64,
        line_start: usize,
    ) -> usize {
        for (nth, &(found, value)) in self.found.iter().enumerate() {
            let index = batch.series.len() as u32;
            batch.start_keyed_series_at(found.key, found.series_ref);
            batch.push_sample(ts, value);
            self.hits.push((index, line_start as u32, nth as u32));
            self.refs.push(index, &found);
        }
        self.found.len()
    }
}

/// The cache entry of series `n` of a line.
#[inline]
pub(crate) fn entry_key(line_key: u128, n: u32) -> u128 {
    line_key.wrapping_add(u128::from(n).wrapping_mul(ENTRY_STRIDE))
}

/// The seed of one request's line keys: the cache's secret mixed with every option that
/// changes the labels of a line, so that the same line under other options is another key.
pub(crate) fn line_seed(opts: &InfluxOptions, secret: u64) -> u64 {
    let mut bytes = Vec::with_capacity(64);
    for (k, v) in &opts.extra_labels {
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0xfe);
    }
    let naming = match opts.flink_names {
        FlinkNames::Off => 0,
        FlinkNames::Auto => 1,
        FlinkNames::On => 2,
    };
    bytes.extend_from_slice(&[
        naming,
        u8::from(opts.flink_sanitize_tag_values),
        u8::from(opts.prom_names),
    ]);
    xxh3_64_with_seed(&bytes, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_a_line_differ_in_both_halves() {
        let line = 0x0123_4567_89ab_cdef_0011_2233_4455_6677u128;
        let a = entry_key(line, 0);
        let b = entry_key(line, 1);
        assert_eq!(a, line);
        assert_ne!(a >> 64, b >> 64);
        assert_ne!(a as u64, b as u64);
    }

    #[test]
    fn every_label_option_changes_the_seed() {
        let base = InfluxOptions::default();
        let seed = line_seed(&base, 7);
        assert_ne!(seed, line_seed(&base, 8), "the secret");
        let variants = [
            InfluxOptions {
                extra_labels: vec![("db".into(), "flink".into())],
                ..Default::default()
            },
            InfluxOptions {
                extra_labels: vec![("db".into(), "flin".into())],
                ..Default::default()
            },
            InfluxOptions {
                flink_names: FlinkNames::Off,
                ..Default::default()
            },
            InfluxOptions {
                flink_sanitize_tag_values: true,
                ..Default::default()
            },
            InfluxOptions {
                prom_names: true,
                ..Default::default()
            },
        ];
        let mut seen = std::collections::HashSet::from([seed]);
        for v in &variants {
            assert!(seen.insert(line_seed(v, 7)), "{v:?}");
        }
        // The timestamp options do not change labels, so they keep the seed.
        let later = InfluxOptions {
            precision: super::super::Precision::S,
            now_ms: 5,
            ..Default::default()
        };
        assert_eq!(line_seed(&later, 7), seed);
    }
}
