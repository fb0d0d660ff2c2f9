//! Line protocol's side of the label-run memory ([`crate::key_cache`]): Flink's
//! InfluxdbReporter sends every point's measurement and tags again in every report, byte for
//! byte, so a hash of them (with the point's field keys and the request's naming options)
//! stands for the labels of each series the point makes.
//!
//! A line's key covers everything its labels are a function of: the measurement and tag bytes
//! as written (only lines without backslashes there are keyed, so the bytes up to the first
//! space are exactly the series part), every field key (the Flink naming of one field depends
//! on its siblings), and the options that change names or labels (extra labels, Flink naming,
//! sanitizing). The `n`-th series of the line is entry `n` of that key. Only a line that once
//! decoded without error gets entries, so a hit is always a line that decodes the same way.

use eddy_storage::{SeriesKey, WriteBatch};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64_with_seed};

use super::scan::FieldValue;
use super::{FlinkNames, InfluxOptions};
use crate::arena::{Arena, Str};

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
    /// The bytes a line key hashes.
    key_bytes: Vec<u8>,
    /// Keys and values of the line being looked up, until all of its series are found.
    found: Vec<(SeriesKey, f64)>,
}

impl KeyedLines {
    /// Forgets the previous request.
    pub fn clear(&mut self) {
        self.hits.clear();
        self.misses.clear();
        self.found.clear();
    }

    /// Heap bytes held, for callers that drop the state after an unusually large request.
    pub fn retained_bytes(&self) -> usize {
        self.hits.capacity() * std::mem::size_of::<(u32, u32, u32)>()
            + self.misses.capacity() * std::mem::size_of::<(u32, u128)>()
            + self.key_bytes.capacity()
            + self.found.capacity() * std::mem::size_of::<(SeriesKey, f64)>()
    }

    /// Where keyed series `index` came from: its line's offset and its place in the line.
    pub(crate) fn line_of(&self, index: u32) -> Option<(u32, u32)> {
        let at = self.hits.binary_search_by_key(&index, |h| h.0).ok()?;
        let (_, line, nth) = self.hits[at];
        Some((line, nth))
    }

    /// The key of a line whose measurement and tags are `series` (as written) and whose field
    /// keys are those of `fields`.
    pub(crate) fn line_key(
        &mut self,
        seed: u64,
        series: &str,
        fields: &[(Str<'_>, FieldValue<'_>)],
        arena: &Arena,
    ) -> u128 {
        let buf = &mut self.key_bytes;
        buf.clear();
        // The seed goes in as bytes: xxh3's seeded form derives a new secret on every call
        // for inputs over 240 bytes, which Flink's operator lines are.
        buf.extend_from_slice(&seed.to_le_bytes());
        buf.extend_from_slice(series.as_bytes());
        for &(key, _) in fields {
            // 0xff is never part of UTF-8 text, so keys cannot run into each other.
            buf.push(0xff);
            buf.extend_from_slice(arena.get(key).as_bytes());
        }
        xxh3_128(buf)
    }

    /// Keys (from `known`) and values of every series of a line, in `found`; `false` if one
    /// of them is not known or the line makes no series at all.
    pub(crate) fn find_all(
        &mut self,
        line_key: u128,
        fields: &[(Str<'_>, FieldValue<'_>)],
        flink: bool,
        known: &crate::key_cache::RunKeyMap,
    ) -> bool {
        self.found.clear();
        let mut n = 0u32;
        for &(_, value) in fields {
            if let Some(v) = super::field_number(value, flink) {
                match known.get(&entry_key(line_key, n)) {
                    Some(&key) => self.found.push((key, v)),
                    None => return false,
                }
                n += 1;
            }
        }
        n > 0
    }

    /// What [`KeyedLines::find_all`] found.
    pub(crate) fn found(&self) -> &[(SeriesKey, f64)] {
        &self.found
    }

    /// Adds what [`KeyedLines::find_all`] found to `batch` as keyed series with one sample at
    /// `ts`, from the line at `line_start`; returns how many.
    pub(crate) fn push_found(
        &mut self,
        batch: &mut WriteBatch<'_>,
        ts: i64,
        line_start: usize,
    ) -> usize {
        for (nth, &(key, value)) in self.found.iter().enumerate() {
            let index = batch.series.len() as u32;
            batch.start_keyed_series(key);
            batch.push_sample(ts, value);
            self.hits.push((index, line_start as u32, nth as u32));
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
