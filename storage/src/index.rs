//! Series index: interned symbols, roaring postings per label pair, matcher evaluation, and the
//! on-disk index format.
//!
//! - [`Symbols`] interns label strings for the head.
//! - [`MemPostings`] maps `name → value → series ids` in memory (the head's index).
//! - [`IndexBuilder`] encodes a block's `index` file; [`IndexReader`] reads one from an mmap
//!   (layout in `docs/format/index.md`).
//! - [`select`], [`label_names`] and [`label_values`] evaluate Prometheus matchers once, for
//!   both: they are generic over [`PostingsSource`], which `MemPostings` and `IndexReader`
//!   implement.
//!
//! ```
//! use eddy_storage::index::{self, MemPostings};
//! use eddy_storage::{Labels, MatchOp, Matcher};
//!
//! let mut p = MemPostings::new();
//! p.add(0, &Labels::from_pairs([("__name__", "up"), ("job", "a")]));
//! p.add(1, &Labels::from_pairs([("__name__", "up")]));
//! // `job=~"a|"` accepts the empty value, so it also selects series without `job`.
//! let m = Matcher::new(MatchOp::RegexMatch, "job", "a|").unwrap();
//! assert_eq!(index::select(&p, &[m]).unwrap().to_vec(), vec![0, 1]);
//! let m = Matcher::new(MatchOp::NotEqual, "job", "").unwrap();
//! assert_eq!(index::select(&p, &[m]).unwrap().to_vec(), vec![0]);
//! assert_eq!(index::label_values(&p, "job", None).unwrap(), ["a"]);
//! ```

use std::ops::ControlFlow;

use croaring::Bitmap;

use crate::error::Result;

mod format;
mod matcher;
mod postings;
mod reader;
mod symbols;
mod writer;

pub use matcher::{analyze_regex, label_names, label_values, select, ValuePlan};
pub use postings::MemPostings;
pub(crate) use reader::ChunkMetas;
pub use reader::IndexReader;
pub use symbols::Symbols;
pub use writer::{IndexBuilder, IndexChunk, IndexStats};

/// A store of postings lists that matchers can be evaluated against.
///
/// Series ids are `u32`: dense ids in the head, ordinals in a block. Values of one label name
/// are visited in ascending byte order. Errors come only from on-disk sources (corrupt data);
/// the in-memory source never fails.
pub trait PostingsSource {
    /// Every series id in the source.
    fn all(&self) -> Result<Bitmap>;

    /// Every label name that at least one series has, sorted.
    fn names(&self) -> Result<Vec<String>>;

    /// The series that have `name="value"`, or `None` when no series has that pair.
    fn postings(&self, name: &str, value: &str) -> Result<Option<Bitmap>>;

    /// Visits the values of `name` that start with `prefix`, in ascending order. For each value,
    /// `want(value)` decides whether `visit(value, postings)` is called; `want` exists so a
    /// source can skip reading postings of values that are filtered out. Stops early when
    /// `visit` returns `Break`.
    fn for_each_value(
        &self,
        name: &str,
        prefix: &str,
        want: &mut dyn FnMut(&str) -> bool,
        visit: &mut dyn FnMut(&str, &Bitmap) -> ControlFlow<()>,
    ) -> Result<()>;
}
