//! The per-request string arena of the decoders whose labels are not all slices of the body
//! (InfluxDB line protocol, OTLP): derived metric names, unescaped or sanitized label strings
//! and formatted numbers are written once into one buffer, and the batch borrows them from it.
//!
//! A [`WriteBatch`] borrows for one lifetime `'a`, but the buffer still grows while the request
//! decodes, so a derived label is first pushed as a placeholder plus a fixup (which label, which
//! side, which range of the buffer); [`Arena::resolve`] swaps in the real slices once decoding
//! is done and the buffer is frozen. Equal strings are interned, so Flink's repeated metric
//! names (the same few hundred per TaskManager) take one copy each, and the buffer stays small.
//! Reused across requests, the arena allocates nothing once it has grown to the request size.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use eddy_storage::WriteBatch;

/// A range of the arena's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

/// A label string during decoding: a slice that lives for `'a` (the body, the options, a
/// static) or a range of the arena that becomes one at [`Arena::resolve`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Str<'a> {
    Borrowed(&'a str),
    Derived(Span),
}

/// Which label of the batch to patch, and which side of it.
#[derive(Debug, Clone, Copy)]
struct Fixup {
    label: u32,
    value: bool,
    span: Span,
}

/// The buffer got bigger than the batch's `u32` offsets can address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArenaFull;

/// Hashes are already well mixed; the map needs no second hash of them.
#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Derived strings of one request and the batch labels that point at them.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    buf: String,
    interned: HashMap<u64, Span, BuildHasherDefault<IdentityHasher>>,
    fixups: Vec<Fixup>,
    /// Scratch for [`Arena::derive`].
    tmp: String,
    full: bool,
}

impl Arena {
    /// Forgets the previous request's strings, keeping capacity.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.interned.clear();
        self.fixups.clear();
        self.tmp.clear();
        self.full = false;
    }

    /// Bytes held between requests (for callers that cap what a reused scratch keeps).
    pub(crate) fn retained_bytes(&self) -> usize {
        self.buf.capacity()
            + self.tmp.capacity()
            + self.fixups.capacity() * std::mem::size_of::<Fixup>()
            + self.interned.capacity() * 16
    }

    /// The text of `s`.
    #[inline]
    pub(crate) fn get<'s>(&'s self, s: Str<'s>) -> &'s str {
        match s {
            Str::Borrowed(b) => b,
            Str::Derived(span) => &self.buf[span.start as usize..span.end as usize],
        }
    }

    /// Interns `s`: the range of an equal string already in the buffer, or of a new copy.
    pub(crate) fn intern(&mut self, s: &str) -> Span {
        let h = hash(s.as_bytes());
        if let Some(&span) = self.interned.get(&h) {
            if &self.buf[span.start as usize..span.end as usize] == s {
                return span;
            }
            // A hash collision: keep the new string uninterned rather than evict the old one.
            return self.push(s);
        }
        let span = self.push(s);
        self.interned.insert(h, span);
        span
    }

    /// Builds a string with `f` (which may read the arena, e.g. an unescaped measurement) into a
    /// reused scratch string, and interns it.
    pub(crate) fn derive(&mut self, f: impl FnOnce(&Self, &mut String)) -> Span {
        let mut tmp = std::mem::take(&mut self.tmp);
        tmp.clear();
        f(self, &mut tmp);
        let span = self.intern(&tmp);
        self.tmp = tmp;
        span
    }

    /// Appends `s` without interning.
    fn push(&mut self, s: &str) -> Span {
        let start = self.buf.len();
        let end = start + s.len();
        if end > u32::MAX as usize {
            // Keep going with an empty string; the caller reports the request as too large.
            self.full = true;
            return Span { start: 0, end: 0 };
        }
        self.buf.push_str(s);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// Adds label `(name, value)` to the current series of `batch`; derived sides become
    /// placeholders that [`Arena::resolve`] fills in.
    #[inline]
    pub(crate) fn push_label<'a>(
        &mut self,
        batch: &mut WriteBatch<'a>,
        name: Str<'a>,
        value: Str<'a>,
    ) {
        let label = batch.labels.len() as u32;
        let mut side = |s: Str<'a>, value: bool| match s {
            Str::Borrowed(b) => Cow::Borrowed(b),
            Str::Derived(span) => {
                self.fixups.push(Fixup { label, value, span });
                Cow::Borrowed("")
            }
        };
        let (n, v) = (side(name, false), side(value, true));
        batch.push_label(n, v);
    }

    /// Points every placeholder label of `batch` at its string; the arena is frozen from here
    /// on, for as long as the batch borrows it. Fails if the buffer outgrew `u32` offsets.
    pub(crate) fn resolve<'a>(&'a self, batch: &mut WriteBatch<'a>) -> Result<(), ArenaFull> {
        if self.full {
            return Err(ArenaFull);
        }
        for f in &self.fixups {
            let s = Cow::Borrowed(&self.buf[f.span.start as usize..f.span.end as usize]);
            if let Some(label) = batch.labels.get_mut(f.label as usize) {
                if f.value {
                    label.1 = s;
                } else {
                    label.0 = s;
                }
            }
        }
        Ok(())
    }
}

/// FxHash-style multiply-rotate over 8-byte words: fast on the short names interned here,
/// and good enough since a collision only costs a duplicate copy.
fn hash(b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // Final avalanche so that the map's low bits depend on every input byte.
    h ^= h >> 32;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_resolves() {
        let mut arena = Arena::default();
        let a = arena.intern("flink_taskmanager_job_task_operator_numRecordsIn");
        let b = arena.intern("x");
        let c = arena.intern("flink_taskmanager_job_task_operator_numRecordsIn");
        assert_eq!(a, c);
        assert_ne!(a, b);
        // A derived string may be built from arena strings; equal text interns to one copy.
        assert_eq!(
            arena.derive(|a, dst| dst.push_str(a.get(Str::Derived(b)))),
            b
        );
        let xx = arena.derive(|a, dst| {
            dst.push_str(a.get(Str::Derived(b)));
            dst.push('x');
        });
        assert_eq!(arena.get(Str::Derived(xx)), "xx");
        assert_eq!(arena.get(Str::Derived(b)), "x");

        let body = String::from("v1");
        let mut batch = WriteBatch::new();
        batch.start_series();
        arena.push_label(&mut batch, Str::Derived(a), Str::Borrowed(&body));
        arena.push_label(&mut batch, Str::Borrowed("k"), Str::Derived(b));
        arena.resolve(&mut batch).unwrap();
        let labels: Vec<(&str, &str)> = batch
            .series_labels(0)
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        assert_eq!(
            labels,
            [
                ("flink_taskmanager_job_task_operator_numRecordsIn", "v1"),
                ("k", "x")
            ]
        );
    }

    #[test]
    fn clear_keeps_capacity() {
        let mut arena = Arena::default();
        for i in 0..100 {
            arena.intern(&format!("name_{i}"));
        }
        let cap = arena.retained_bytes();
        arena.clear();
        assert_eq!(arena.retained_bytes(), cap);
        assert_eq!(arena.intern("a"), Span { start: 0, end: 1 });
    }

    #[test]
    fn hash_depends_on_every_byte() {
        assert_ne!(hash(b"abcdefgh1"), hash(b"abcdefgh2"));
        assert_ne!(hash(b"a"), hash(b"a\0"));
        assert_ne!(hash(b""), hash(b"\0"));
    }
}
