//! The lazy merged selection behind `Db::select_lazy`: label sets and, per series, where its
//! samples live (block ordinals, a range of the head's columns). Samples are decoded only when
//! a series is read, straight into the reader's buffers, so a query decodes each chunk once and
//! can spread series over threads. A block's shared timestamp columns are decoded once per
//! selection ([`super::shared_ts`]), not once per series.
//!
//! The head's samples are copied out when the selection is made (flat columns, no allocation
//! per series; large selections by several threads): a head cut may truncate the head at any moment after that, and the
//! block it writes is not in this selection's block list, so reading the head later could
//! lose samples. Blocks are immutable and shared (`Arc`), so they are read when asked.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use crate::api::SeriesSet;
use crate::block::Block;
use crate::chunk::decode_split_values_from;
use crate::error::Result;
use crate::head::{Head, HeadColumns, SeriesVisitor};
use crate::labels::{Label, Labels, Matcher, Projection};

use super::shared_ts::{SharedColumns, SharedColumnsBuilder};

/// Where some of a series' samples are.
#[derive(Debug, Clone)]
enum Source {
    /// Series `ord` of `blocks[block]`.
    Block { block: usize, ord: u32 },
    /// A range of the columns of head part `part`.
    Head { part: usize, range: Range<usize> },
}

/// One input's series in label order: where each one's samples are, with an upper bound of
/// their count, and its labels.
struct Input<'a> {
    series: Vec<(Source, usize)>,
    keys: Keys<'a>,
}

/// An input's label sets. A block's stay strings borrowed from its index until the merge keeps
/// the series: a series found in several blocks (every series a query spans blocks for) is
/// then built once, not once per block. A [`Labels`] costs two allocations per label, and
/// building them was about a third of a small dashboard query.
enum Keys<'a> {
    /// Series `i`'s labels are `pairs[spans[i]]`.
    Block {
        pairs: Vec<(&'a str, &'a str)>,
        spans: Vec<Range<usize>>,
    },
    /// The head's label sets, owned already (moved, not rebuilt).
    Head(Vec<Labels>),
}

impl Keys<'_> {
    fn len(&self) -> usize {
        match self {
            Keys::Block { spans, .. } => spans.len(),
            Keys::Head(v) => v.len(),
        }
    }

    /// Series `i`'s `(name, value)` pairs in order.
    fn pairs(&self, i: usize) -> KeyIter<'_> {
        match self {
            Keys::Block { pairs, spans } => KeyIter::Strs(pairs[spans[i].clone()].iter()),
            Keys::Head(v) => KeyIter::Labels(v[i].iter()),
        }
    }

    /// Orders series `i` here against series `j` of `other` as [`Labels`]' `Ord` would.
    fn cmp(&self, i: usize, other: &Keys<'_>, j: usize) -> Ordering {
        match (self, other) {
            // Two blocks (the common case): plain slices, no per-label dispatch.
            (
                Keys::Block { pairs, spans },
                Keys::Block {
                    pairs: o,
                    spans: os,
                },
            ) => cmp_pairs(&pairs[spans[i].clone()], &o[os[j].clone()]),
            _ => self.pairs(i).cmp(other.pairs(j)),
        }
    }

    /// Series `i`'s label set, only the names `keep` lists if given; each series is taken
    /// at most once. Comparing ([`cmp`](Self::cmp)) always uses every label, so a projection
    /// changes which labels are built, never which series are one.
    fn take(&mut self, i: usize, keep: Option<&Projection>) -> Labels {
        match (self, keep) {
            (Keys::Block { pairs, spans }, None) => {
                Labels::from_sorted_pairs_unchecked(pairs[spans[i].clone()].iter().copied())
            }
            (Keys::Block { pairs, spans }, Some(p)) => {
                p.build(pairs[spans[i].clone()].iter().copied())
            }
            // The head built the whole set already (it needs every label to merge with the
            // blocks); the labels not kept are dropped here.
            (Keys::Head(v), None) => std::mem::take(&mut v[i]),
            (Keys::Head(v), Some(p)) => p.apply(std::mem::take(&mut v[i])),
        }
    }
}

/// Orders two label sets given as `(name, value)` pairs, as [`Labels`]' `Ord` would. The
/// merge compares each series of one block with the same series of the next, so most calls
/// find every string equal: an equal length and equal bytes settle a string without the
/// three-way comparison.
fn cmp_pairs(a: &[(&str, &str)], b: &[(&str, &str)]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        for (s, t) in [(x.0, y.0), (x.1, y.1)] {
            if s.len() != t.len() || s.as_bytes() != t.as_bytes() {
                return s.cmp(t);
            }
        }
    }
    a.len().cmp(&b.len())
}

/// The `(name, value)` pairs of one label set, from either kind of [`Keys`].
enum KeyIter<'k> {
    Strs(std::slice::Iter<'k, (&'k str, &'k str)>),
    Labels(std::slice::Iter<'k, Label>),
}

impl<'k> Iterator for KeyIter<'k> {
    type Item = (&'k str, &'k str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            KeyIter::Strs(it) => it.next().copied(),
            KeyIter::Labels(it) => it.next().map(|l| (l.name.as_str(), l.value.as_str())),
        }
    }
}

/// The merged series: labels, each one's span of `sources`, and the sample bound.
#[derive(Default)]
struct Merged {
    labels: Vec<Labels>,
    spans: Vec<Range<usize>>,
    sources: Vec<Source>,
    hint: usize,
}

impl Merged {
    fn push(&mut self, labels: Labels, srcs: impl IntoIterator<Item = (Source, usize)>) {
        let start = self.sources.len();
        for (src, n) in srcs {
            self.sources.push(src);
            self.hint += n;
        }
        self.labels.push(labels);
        self.spans.push(start..self.sources.len());
    }
}

/// A merged, lazily decoded selection over blocks and the head.
#[derive(Debug)]
pub(crate) struct LazySelection {
    mint: i64,
    maxt: i64,
    labels: Vec<Labels>,
    /// Series `i`'s sources are `sources[spans[i].clone()]`, oldest input first.
    spans: Vec<Range<usize>>,
    sources: Vec<Source>,
    blocks: Vec<Arc<Block>>,
    /// The shared timestamp columns of the selected block chunks, decoded once each.
    shared: SharedColumns,
    head: Vec<HeadColumns>,
    hint: usize,
}

impl LazySelection {
    /// Selects from the head and from the blocks of `block_list` that overlap the range;
    /// on equal timestamps the head wins over blocks and a later block over an earlier one
    /// (see [`merge_runs`]). The list is taken after the
    /// head is read: a head cut adds its block to the list before it truncates the head, so
    /// samples a cut removes from the head are always found in the list. With `keep`, the
    /// series' label sets hold only the names it lists (see
    /// [`Querier::select_lazy_projected`](crate::api::Querier::select_lazy_projected)).
    pub(crate) fn new(
        head: &Head,
        block_list: impl FnOnce() -> Arc<Vec<Arc<Block>>>,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        keep: Option<&Projection>,
    ) -> Result<LazySelection> {
        let (head, head_series) = head.select_columns(matchers, mint, maxt)?;
        let blocks: Vec<Arc<Block>> = block_list()
            .iter()
            .filter(|b| b.meta().max_t >= mint && b.meta().min_t <= maxt)
            .cloned()
            .collect();
        let mut inputs: Vec<Input<'_>> = Vec::with_capacity(blocks.len() + 1);
        let mut shared = SharedColumnsBuilder::default();
        for (bi, b) in blocks.iter().enumerate() {
            let input = block_sources(b, bi, matchers, mint, maxt, &mut shared)?;
            if input.keys.len() > 0 {
                inputs.push(input);
            }
        }
        if !head_series.is_empty() {
            let mut series = Vec::with_capacity(head_series.len());
            let mut labels = Vec::with_capacity(head_series.len());
            for (l, part, range) in head_series {
                let n = range.len();
                series.push((Source::Head { part, range }, n));
                labels.push(l);
            }
            inputs.push(Input {
                series,
                keys: Keys::Head(labels),
            });
        }
        let m = merge(inputs, keep);
        let shared = shared.build();
        Ok(LazySelection {
            mint,
            maxt,
            labels: m.labels,
            spans: m.spans,
            sources: m.sources,
            blocks,
            shared,
            head,
            hint: m.hint,
        })
    }
}

/// One block's position in [`for_each_series_of_blocks`]: its next series and that series'
/// label pairs (borrowed from the block's index).
struct BlockCursor<'b> {
    block: &'b Block,
    ord: u32,
    pairs: Vec<(&'b str, &'b str)>,
    /// The previous series' pairs, to check that ordinals follow label order.
    spare: Vec<(&'b str, &'b str)>,
}

impl<'b> BlockCursor<'b> {
    fn new(block: &'b Block) -> Result<Self> {
        let mut c = BlockCursor {
            block,
            ord: 0,
            pairs: Vec::new(),
            spare: Vec::new(),
        };
        if block.num_series() > 0 {
            block.index().series_label_strs(0, &mut c.pairs)?;
        }
        Ok(c)
    }

    fn done(&self) -> bool {
        self.ord >= self.block.num_series()
    }

    /// Moves to the next series; an error if it does not sort after the current one.
    fn advance(&mut self) -> Result<()> {
        self.ord += 1;
        if self.done() {
            return Ok(());
        }
        self.spare.clear();
        self.block
            .index()
            .series_label_strs(self.ord, &mut self.spare)?;
        if self.spare <= self.pairs {
            return Err(crate::error::Error::Corruption {
                path: self.block.dir().join(crate::block::INDEX_FILE),
                offset: 0,
                reason: format!(
                    "series {} does not sort after the series before it",
                    self.ord
                ),
            });
        }
        std::mem::swap(&mut self.pairs, &mut self.spare);
        Ok(())
    }
}

/// How many series [`for_each_series_of_blocks`] reads between releases of its source blocks'
/// mapped pages: a merge reads each source once, front to back, so what it has read is not
/// needed again, and at a million series the sources are gigabytes.
const RELEASE_SOURCE_PAGES_EVERY: usize = 4096;

/// Calls `f` with every series of `blocks` in label order, one at a time, its samples merged
/// across the blocks (a later block wins on equal timestamps). Compaction writes through
/// this: it holds one series and one label set per block, where building the merged list of
/// every series' labels first (as compaction did through the lazy selection) cost ~700 bytes
/// per series (measured with `storage_bench`, 181 k series; by that rate ~1.4 GB for the 2 M
/// series a million active ones leave behind over a day of job restarts).
pub(crate) fn for_each_series_of_blocks(
    blocks: &[Arc<Block>],
    f: &mut SeriesVisitor<'_>,
) -> Result<()> {
    let mut cursors = blocks
        .iter()
        .map(|b| BlockCursor::new(b))
        .collect::<Result<Vec<_>>>()?;
    let mut ties: Vec<usize> = Vec::with_capacity(cursors.len());
    let (mut ts, mut vals) = (Vec::new(), Vec::new());
    let mut visited = 0usize;
    loop {
        visited += 1;
        if visited.is_multiple_of(RELEASE_SOURCE_PAGES_EVERY) {
            for c in &cursors {
                c.block.release_pages();
            }
        }
        smallest(
            &mut ties,
            cursors.len(),
            |k| cursors[k].done(),
            |a, b| cursors[a].pairs.cmp(&cursors[b].pairs),
        );
        let Some(&first) = ties.first() else {
            return Ok(());
        };
        ts.clear();
        vals.clear();
        for &k in &ties {
            let from = ts.len();
            let c = &cursors[k];
            read_block_series(c.block, c.ord, i64::MIN, i64::MAX, None, &mut ts, &mut vals)?;
            if from > 0 && ts.len() > from && ts[from] <= ts[from - 1] {
                merge_runs(&mut ts, &mut vals, from);
            }
        }
        if !ts.is_empty() {
            let labels = Labels::from_sorted_pairs_unchecked(cursors[first].pairs.iter().copied());
            f(&labels, &ts, &vals)?;
        }
        for &k in &ties {
            cursors[k].advance()?;
        }
    }
}

/// Sets `ties` to the inputs `0..n` (those not `done`) whose next label set is the smallest,
/// in input order, by `cmp(a, b)` of two inputs' next label sets: one comparison per input
/// and series (most series are in every input, and comparing equal label sets walks all
/// their labels).
fn smallest(
    ties: &mut Vec<usize>,
    n: usize,
    done: impl Fn(usize) -> bool,
    cmp: impl Fn(usize, usize) -> Ordering,
) {
    ties.clear();
    for i in (0..n).filter(|&i| !done(i)) {
        let Some(&m) = ties.first() else {
            ties.push(i);
            continue;
        };
        match cmp(i, m) {
            Ordering::Less => {
                ties.clear();
                ties.push(i);
            }
            Ordering::Equal => ties.push(i),
            Ordering::Greater => {}
        }
    }
}

/// Merges the inputs' sorted series by labels; equal label sets become one series with the
/// sources in input order. Series are compared by all their labels; with `keep`, only the
/// kept ones are built.
fn merge(mut inputs: Vec<Input<'_>>, keep: Option<&Projection>) -> Merged {
    let total: usize = inputs.iter().map(|i| i.series.len()).sum();
    let mut out = Merged {
        labels: Vec::with_capacity(total),
        spans: Vec::with_capacity(total),
        sources: Vec::with_capacity(total),
        hint: 0,
    };
    if inputs.len() == 1 {
        if let Some(mut input) = inputs.pop() {
            for (i, src) in input.series.into_iter().enumerate() {
                out.push(input.keys.take(i, keep), [src]);
            }
        }
        return out;
    }
    let mut pos = vec![0usize; inputs.len()];
    let mut ties: Vec<usize> = Vec::with_capacity(inputs.len());
    loop {
        smallest(
            &mut ties,
            inputs.len(),
            |i| pos[i] >= inputs[i].series.len(),
            |a, b| inputs[a].keys.cmp(pos[a], &inputs[b].keys, pos[b]),
        );
        let Some(&m) = ties.first() else { break };
        let start = out.sources.len();
        let pm = pos[m];
        for &i in &ties {
            let (src, n) = inputs[i].series[pos[i]].clone();
            out.sources.push(src);
            out.hint += n;
            pos[i] += 1;
        }
        out.labels.push(inputs[m].keys.take(pm, keep));
        out.spans.push(start..out.sources.len());
    }
    out
}

/// The series of block `b` that match and have a chunk overlapping `[mint, maxt]`, in label
/// order, with the sample count of those chunks. The shared timestamp columns of those chunks
/// go to `shared`.
fn block_sources<'b>(
    b: &'b Block,
    block: usize,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
    shared: &mut SharedColumnsBuilder,
) -> Result<Input<'b>> {
    let ords = if matchers.is_empty() {
        crate::index::PostingsSource::all(b.index())?
    } else {
        b.select(matchers)?
    };
    let cap = ords.cardinality() as usize;
    let mut series = Vec::with_capacity(cap);
    let mut spans = Vec::with_capacity(cap);
    let mut pairs = Vec::new();
    for ord in ords.iter() {
        let mut n = 0usize;
        for (meta, chunk) in b.series_chunks(ord)? {
            if meta.max_t >= mint && meta.min_t <= maxt {
                n += meta.count as usize;
                if let Some(col) = chunk.shared_timestamps() {
                    shared.add(col, meta.count as usize);
                }
            }
        }
        if n > 0 {
            let from = pairs.len();
            b.index().series_label_strs(ord, &mut pairs)?;
            if from == 0 {
                // Series of one selection mostly have as many labels as the first one: room
                // for all at once spares the copies of growing by doubling.
                pairs.reserve(pairs.len() * cap);
            }
            spans.push(from..pairs.len());
            series.push((Source::Block { block, ord }, n));
        }
    }
    let mut input = Input {
        series,
        keys: Keys::Block { pairs, spans },
    };
    // Ordinals follow label order; should a block ever disagree, the merge must not.
    let keys = &input.keys;
    if !(1..keys.len()).all(|i| keys.cmp(i - 1, keys, i) != Ordering::Greater) {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&x, &y| keys.cmp(x, keys, y));
        input.series = order.iter().map(|&i| input.series[i].clone()).collect();
        if let Keys::Block { spans, .. } = &mut input.keys {
            *spans = order.iter().map(|&i| spans[i].clone()).collect();
        }
    }
    Ok(input)
}

/// Appends the samples of block series `ord` in `[mint, maxt]` to the columns, decoding each
/// chunk in place and cutting the parts of edge chunks outside the range. Shared timestamp
/// columns found in `shared` are copied from there instead of decoded again.
fn read_block_series(
    b: &Block,
    ord: u32,
    mint: i64,
    maxt: i64,
    shared: Option<&SharedColumns>,
    ts: &mut Vec<i64>,
    vals: &mut Vec<f64>,
) -> Result<()> {
    for (meta, data) in b.series_chunks(ord)? {
        if meta.max_t < mint || meta.min_t > maxt {
            continue;
        }
        let cached = data
            .shared_timestamps()
            .and_then(|col| shared.and_then(|s| s.get(col)));
        if let Some(col_ts) = cached {
            append_with_shared_times(col_ts, data.stored_bytes(), mint, maxt, ts, vals)?;
            continue;
        }
        let from = ts.len();
        data.decode(ts, vals)?;
        if meta.min_t < mint || meta.max_t > maxt {
            let a = from + ts[from..].partition_point(|&t| t < mint);
            let z = from + ts[from..].partition_point(|&t| t <= maxt);
            ts.truncate(z);
            vals.truncate(z);
            ts.drain(from..a);
            vals.drain(from..a);
        }
    }
    Ok(())
}

/// Appends the samples in `[mint, maxt]` of a chunk whose timestamp column is already decoded
/// (`col_ts`); `rest` is the chunk's stored bytes (version byte and value column). Only the
/// values are decoded; only the timestamps inside the range are copied.
fn append_with_shared_times(
    col_ts: &[i64],
    rest: &[u8],
    mint: i64,
    maxt: i64,
    ts: &mut Vec<i64>,
    vals: &mut Vec<f64>,
) -> Result<()> {
    let a = col_ts.partition_point(|&t| t < mint);
    let z = col_ts.partition_point(|&t| t <= maxt);
    let from = vals.len();
    decode_split_values_from(rest, col_ts.len(), a, vals)?;
    vals.truncate(from + (z - a));
    ts.extend_from_slice(&col_ts[a..z]);
    Ok(())
}

/// Merges the time-sorted runs `[..mid]` and `[mid..]` of the columns; on equal timestamps
/// the second run's sample wins. Only overlapping inputs get here (rare), so it may allocate.
fn merge_runs(ts: &mut Vec<i64>, vals: &mut Vec<f64>, mid: usize) {
    let (bt, bv) = (ts.split_off(mid), vals.split_off(mid));
    let (at, av) = (std::mem::take(ts), std::mem::take(vals));
    ts.reserve(at.len() + bt.len());
    vals.reserve(at.len() + bt.len());
    let (mut i, mut j) = (0, 0);
    while i < at.len() || j < bt.len() {
        if j < bt.len() && (i >= at.len() || bt[j] <= at[i]) {
            if i < at.len() && at[i] == bt[j] {
                i += 1;
            }
            ts.push(bt[j]);
            vals.push(bv[j]);
            j += 1;
        } else {
            ts.push(at[i]);
            vals.push(av[i]);
            i += 1;
        }
    }
}

impl SeriesSet for LazySelection {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn labels(&self, i: usize) -> &Labels {
        &self.labels[i]
    }

    fn sample_hint(&self) -> usize {
        self.hint
    }

    fn read(&self, i: usize, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<()> {
        ts.clear();
        vals.clear();
        for src in &self.sources[self.spans[i].clone()] {
            let from = ts.len();
            match src {
                Source::Block { block, ord } => read_block_series(
                    &self.blocks[*block],
                    *ord,
                    self.mint,
                    self.maxt,
                    Some(&self.shared),
                    ts,
                    vals,
                )?,
                Source::Head { part, range } => {
                    let part = &self.head[*part];
                    ts.extend_from_slice(&part.ts[range.clone()]);
                    vals.extend_from_slice(&part.vals[range.clone()]);
                }
            }
            if from > 0 && ts.len() > from && ts[from] <= ts[from - 1] {
                merge_runs(ts, vals, from);
            }
        }
        Ok(())
    }

    fn into_labels(self: Box<Self>) -> Vec<Labels> {
        self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{stale_nan, Series, WriteBatch};
    use crate::block::{BlockId, BlockWriter, ChunkMeta};
    use crate::chunk::encode_chunk;
    use crate::head::{AppendLog, HeadOptions};

    fn labels(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("job", "j")])
    }

    /// Writes a block over `[min_t, max_t]` whose series hold the given samples, each series
    /// cut into chunks of `per_chunk` samples.
    fn block(
        dir: &std::path::Path,
        range: (i64, i64),
        per_chunk: usize,
        series: &[(&str, Vec<(i64, f64)>)],
    ) -> Arc<Block> {
        let labelled: Vec<(Labels, Vec<(i64, f64)>)> =
            series.iter().map(|(n, p)| (labels(n), p.clone())).collect();
        block_of(dir, range, per_chunk, &labelled)
    }

    /// [`block`] with whole label sets.
    fn block_of(
        dir: &std::path::Path,
        range: (i64, i64),
        per_chunk: usize,
        series: &[(Labels, Vec<(i64, f64)>)],
    ) -> Arc<Block> {
        let mut w =
            BlockWriter::new(dir, BlockId::generate(), range.0, range.1, 1, Vec::new()).unwrap();
        let mut sorted: Vec<(&Labels, &Vec<(i64, f64)>)> =
            series.iter().map(|(l, p)| (l, p)).collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (l, pts) in sorted {
            let mut bytes = Vec::new();
            let mut metas = Vec::new();
            for c in pts.chunks(per_chunk) {
                let from = bytes.len();
                let ts: Vec<i64> = c.iter().map(|p| p.0).collect();
                let vs: Vec<f64> = c.iter().map(|p| p.1).collect();
                encode_chunk(&mut bytes, &ts, &vs);
                let meta = ChunkMeta {
                    min_t: ts[0],
                    max_t: ts[ts.len() - 1],
                    count: ts.len() as u32,
                };
                metas.push((meta, from..bytes.len()));
            }
            let chunks: Vec<(ChunkMeta, &[u8])> =
                metas.into_iter().map(|(m, r)| (m, &bytes[r])).collect();
            w.add_series(l, &chunks).unwrap();
        }
        Arc::new(Block::open(&w.finish().unwrap()).unwrap())
    }

    fn head_with(series: &[(&str, Vec<(i64, f64)>)]) -> Head {
        let h = Head::new(HeadOptions {
            shards: 4,
            ..Default::default()
        });
        let mut b = WriteBatch::new();
        for (n, pts) in series {
            b.add_series([("__name__", *n), ("job", "j")], pts);
        }
        h.append(&mut b, &mut AppendLog::default()).unwrap();
        h
    }

    fn head_of(series: &[(Labels, Vec<(i64, f64)>)]) -> Head {
        let h = Head::new(HeadOptions {
            shards: 4,
            ..Default::default()
        });
        let mut b = WriteBatch::new();
        for (l, pts) in series {
            b.add_series(l.pairs(), pts);
        }
        h.append(&mut b, &mut AppendLog::default()).unwrap();
        h
    }

    fn read_all(sel: &LazySelection) -> Vec<Series> {
        (0..sel.len())
            .map(|i| {
                let mut s = Series {
                    labels: sel.labels(i).clone(),
                    ..Default::default()
                };
                sel.read(i, &mut s.timestamps, &mut s.values).unwrap();
                s
            })
            .collect()
    }

    fn pts(ts: impl IntoIterator<Item = i64>, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        ts.into_iter().map(|t| (t, f(t))).collect()
    }

    /// A block over `[0, 99]`: "a" every 10 ms with value t, "b" at 5 and 15 with 7.0, and
    /// `extra`.
    fn first_block(dir: &std::path::Path, extra: Option<(&str, Vec<(i64, f64)>)>) -> Arc<Block> {
        let mut series = vec![
            ("a", pts((0..100).step_by(10), |t| t as f64)),
            ("b", pts([5, 15], |_| 7.0)),
        ];
        series.extend(extra);
        block(dir, (0, 99), 4, &series)
    }

    #[test]
    fn merges_blocks_and_head_by_labels_and_time() {
        let dir = tempfile::tempdir().unwrap();
        // Two blocks back to back and a head overlapping the second one; "b" only in the
        // first block, "c" only in the head.
        let b1 = first_block(dir.path(), None);
        let b2 = block(
            dir.path(),
            (100, 199),
            3,
            &[("a", pts((100..200).step_by(10), |t| t as f64))],
        );
        let head = head_with(&[
            ("a", pts((180..230).step_by(10), |t| -(t as f64))),
            ("c", pts([150], |_| 1.5)),
        ]);
        let list = Arc::new(vec![b1, b2]);
        let sel = LazySelection::new(&head, || list.clone(), &[], 0, 1000, None).unwrap();
        let got = read_all(&sel);
        let names: Vec<_> = got
            .iter()
            .map(|s| s.labels.metric_name().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let a = &got[0];
        assert_eq!(a.timestamps, (0..230).step_by(10).collect::<Vec<i64>>());
        // The head wins where it overlaps the block (180, 190).
        let want: Vec<f64> = (0..230)
            .step_by(10)
            .map(|t| if t >= 180 { -(t as f64) } else { t as f64 })
            .collect();
        assert_eq!(a.values, want);
        assert_eq!(
            (got[1].timestamps.clone(), got[1].values.clone()),
            (vec![5, 15], vec![7.0, 7.0])
        );
        assert_eq!(
            (got[2].timestamps.clone(), got[2].values.clone()),
            (vec![150], vec![1.5])
        );
        // Hint: every overlapping chunk's samples plus the head's.
        assert_eq!(sel.sample_hint(), 10 + 2 + 10 + 5 + 1);
        // Reading again into used buffers gives the same answer.
        let (mut ts, mut vs) = (vec![42], vec![4.2]);
        sel.read(0, &mut ts, &mut vs).unwrap();
        assert_eq!((ts, vs), (a.timestamps.clone(), a.values.clone()));
    }

    /// The streaming merge compaction uses gives what the lazy selection over the same blocks
    /// gives: every series once, in label order, samples merged, a later block winning ties.
    #[test]
    fn streaming_block_merge_matches_the_lazy_selection() {
        let dir = tempfile::tempdir().unwrap();
        let b1 = first_block(dir.path(), Some(("d", pts([1], |_| 1.0))));
        // Overlaps b1 in time for "a" (the later block wins at 50..90) and adds "c".
        let b2 = block(
            dir.path(),
            (50, 199),
            3,
            &[
                ("a", pts((50..200).step_by(10), |t| -(t as f64))),
                ("c", pts([150, 160], |_| 2.5)),
            ],
        );
        let b3 = block(dir.path(), (200, 299), 5, &[("d", pts([250], |_| 4.0))]);
        let blocks = vec![b1, b2, b3];
        let list = Arc::new(blocks.clone());
        let empty = head_with(&[]);
        let want = read_all(
            &LazySelection::new(&empty, || list.clone(), &[], i64::MIN, i64::MAX, None).unwrap(),
        );
        let mut got = Vec::new();
        for_each_series_of_blocks(&blocks, &mut |l, ts, vs| {
            got.push(Series {
                labels: l.clone(),
                timestamps: ts.to_vec(),
                values: vs.to_vec(),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(got, want);
        let names: Vec<_> = got
            .iter()
            .map(|s| s.labels.metric_name().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(got[0].values[5], -50.0);
        assert_eq!(got[3].timestamps, [1, 250]);
        // No blocks, no calls.
        for_each_series_of_blocks(&[], &mut |_, _, _| panic!("called")).unwrap();
    }

    #[test]
    fn cuts_edge_chunks_to_the_range_and_keeps_straddling_series_empty() {
        let dir = tempfile::tempdir().unwrap();
        let b = block(
            dir.path(),
            (0, 999),
            4,
            &[
                ("a", pts((0..100).step_by(10), |t| t as f64 / 10.0)),
                // One chunk [0, 900] with nothing inside [25, 64].
                ("z", pts([0, 900], |_| 1.0)),
            ],
        );
        let head = head_with(&[]);
        let list = Arc::new(vec![b]);
        let m = [Matcher::equal("job", "j")];
        let sel = LazySelection::new(&head, || list.clone(), &m, 25, 64, None).unwrap();
        let got = read_all(&sel);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].timestamps, vec![30, 40, 50, 60]);
        assert_eq!(got[0].values, vec![3.0, 4.0, 5.0, 6.0]);
        // Listed (its chunk overlaps) but without samples: `Db::select` drops it.
        assert!(got[1].timestamps.is_empty());
        // Outside every block and the head: nothing.
        let none = LazySelection::new(&head, || list.clone(), &m, 5000, 6000, None).unwrap();
        assert_eq!(none.len(), 0);
    }

    /// Series of one scrape share a timestamp column in the block; reading them through the
    /// selection's decoded copy of that column gives each its own values, cut to the range
    /// at both ends, as decoding every chunk whole does.
    #[test]
    fn shared_timestamp_columns_are_decoded_once_and_cut_to_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let times: Vec<i64> = (0..40).map(|i| i * 10 + i % 3).collect();
        let series: Vec<(&str, Vec<(i64, f64)>)> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(k, n)| {
                (
                    *n,
                    pts(times.iter().copied(), |t| (t * (k as i64 + 1)) as f64),
                )
            })
            .collect();
        let b = block(dir.path(), (0, 999), 25, &series);
        let head = head_with(&[]);
        let list = Arc::new(vec![b]);
        // Two chunks per series (25 + 15 samples), each column stored once: the ranges reach
        // both columns, both, the first only, the second only.
        let ranges = [(i64::MIN, i64::MAX), (55, 301), (0, 0), (300, 5000)];
        for ((mint, maxt), columns) in ranges.into_iter().zip([2, 2, 1, 1]) {
            let sel = LazySelection::new(&head, || list.clone(), &[], mint, maxt, None).unwrap();
            assert_eq!(sel.shared.len(), columns, "[{mint}, {maxt}]");
            let got = read_all(&sel);
            for (k, s) in got.iter().enumerate() {
                let want: Vec<i64> = times
                    .iter()
                    .copied()
                    .filter(|t| (mint..=maxt).contains(t))
                    .collect();
                assert_eq!(s.timestamps, want, "series {k} in [{mint}, {maxt}]");
                let want_vals: Vec<f64> =
                    want.iter().map(|t| (t * (k as i64 + 1)) as f64).collect();
                assert_eq!(s.values, want_vals);
            }
        }
    }

    #[test]
    fn large_head_selections_read_in_parallel_match_select() {
        // Above PARALLEL_READ_SERIES, so the head is read by several threads when the
        // machine has several cores; the answer must equal the one-by-one `select`.
        let names: Vec<String> = (0..5000).map(|i| format!("s{i:05}")).collect();
        let series: Vec<(&str, Vec<(i64, f64)>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.as_str(),
                    pts((0..(i as i64 % 7 + 1)).map(|k| k * 10), |t| {
                        t as f64 + i as f64
                    }),
                )
            })
            .collect();
        let head = head_with(&series);
        let want = head.select(&[], 10, 40).unwrap();
        let sel = LazySelection::new(&head, || Arc::new(Vec::new()), &[], 10, 40, None).unwrap();
        assert_eq!(read_all(&sel), want);
        assert!(want.len() > 4000);
        assert_eq!(
            sel.sample_hint(),
            want.iter().map(|s| s.timestamps.len()).sum::<usize>()
        );
    }

    /// Borrowed label strings order and compare exactly as `Labels` do, against each other
    /// and against owned head label sets (prefixes, names before values).
    #[test]
    fn label_keys_order_like_labels() {
        let sets = [
            Labels::from_pairs([("a", "1")]),
            Labels::from_pairs([("a", "1"), ("b", "2")]),
            Labels::from_pairs([("a", "1"), ("c", "0")]),
            Labels::from_pairs([("a", "2")]),
            Labels::from_pairs([("aa", "0")]),
            Labels::from_pairs([("b", "0")]),
            Labels::default(),
        ];
        let mut pairs = Vec::new();
        let mut spans = Vec::new();
        for l in &sets {
            let from = pairs.len();
            pairs.extend(l.pairs());
            spans.push(from..pairs.len());
        }
        let mut block = Keys::Block { pairs, spans };
        let head = Keys::Head(sets.to_vec());
        for (i, a) in sets.iter().enumerate() {
            for (j, b) in sets.iter().enumerate() {
                assert_eq!(block.cmp(i, &block, j), a.cmp(b), "{a} vs {b}");
                assert_eq!(block.cmp(i, &head, j), a.cmp(b), "{a} vs head {b}");
                assert_eq!(head.cmp(i, &block, j), a.cmp(b), "head {a} vs {b}");
            }
        }
        assert_eq!(block.take(1, None), sets[1]);
    }

    /// Three inputs, series in some, all or one of them: one merged series per label set in
    /// label order, its sources in input order.
    #[test]
    fn merge_joins_equal_label_sets_across_inputs() {
        let l = |v: &str| Labels::from_pairs([("a", v)]);
        // Input k's series j reads head part k, rows j..j+1, so sources name their origin.
        fn input(k: usize, sets: &[&'static str], as_block: bool) -> Input<'static> {
            let l = |v: &str| Labels::from_pairs([("a", v)]);
            let series = (0..sets.len())
                .map(|j| {
                    (
                        Source::Head {
                            part: k,
                            range: j..j + 1,
                        },
                        1,
                    )
                })
                .collect();
            let keys = if as_block {
                let pairs: Vec<(&str, &str)> = sets.iter().map(|v| ("a", *v)).collect();
                let spans = (0..sets.len()).map(|j| j..j + 1).collect();
                Keys::Block { pairs, spans }
            } else {
                Keys::Head(sets.iter().map(|v| l(v)).collect())
            };
            Input { series, keys }
        }
        let m = merge(
            vec![
                input(0, &["b", "d"], true),
                input(1, &["a", "b", "c"], true),
                input(2, &["b", "c", "e"], false),
            ],
            None,
        );
        assert_eq!(m.labels, ["a", "b", "c", "d", "e"].map(l));
        let origin: Vec<Vec<(usize, usize)>> = m
            .spans
            .iter()
            .map(|s| {
                m.sources[s.clone()]
                    .iter()
                    .map(|src| match src {
                        Source::Head { part, range } => (*part, range.start),
                        Source::Block { .. } => unreachable!(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            origin,
            [
                vec![(1, 0)],
                vec![(0, 0), (1, 1), (2, 0)],
                vec![(1, 2), (2, 1)],
                vec![(0, 1)],
                vec![(2, 2)],
            ]
        );
        assert_eq!(m.hint, 8);
    }

    /// A projected selection lists the same series in the same order as the full one, merged
    /// across two blocks and the head by their full labels, with the same samples (stale
    /// markers included, compared by bits), and only the kept labels: series that differ only
    /// in dropped labels stay apart with equal projected labels.
    #[test]
    fn projected_selection_merges_by_full_labels_and_builds_kept_ones() {
        let dir = tempfile::tempdir().unwrap();
        let l = |name: &str, job: &str, task: &str| {
            Labels::from_pairs([("__name__", name), ("job", job), ("task", task), ("x", "y")])
        };
        let (a, b, c, d) = (
            l("m", "a", "1"),
            l("m", "a", "2"),
            l("n", "b", "1"),
            l("m", "a", "3"),
        );
        let b1 = block_of(
            dir.path(),
            (0, 99),
            4,
            &[
                (a.clone(), pts((0..100).step_by(10), |t| t as f64)),
                (b.clone(), pts([5, 15], |_| 7.0)),
            ],
        );
        let b2 = block_of(
            dir.path(),
            (100, 199),
            3,
            &[
                (a.clone(), pts((100..200).step_by(10), |t| t as f64)),
                (c.clone(), pts([150], |_| stale_nan())),
            ],
        );
        let mut a_head = pts((180..230).step_by(10), |t| -(t as f64));
        a_head[3].1 = stale_nan();
        let head = head_of(&[
            (a.clone(), a_head),
            (b.clone(), pts([300], |_| 3.0)),
            (d.clone(), pts([5], |_| stale_nan())),
        ]);
        let list = Arc::new(vec![b1, b2]);
        let full =
            read_all(&LazySelection::new(&head, || list.clone(), &[], 0, 1000, None).unwrap());
        assert_eq!(
            full.iter().map(|s| &s.labels).collect::<Vec<_>>(),
            [&a, &b, &d, &c]
        );
        // "a" from both blocks and the head, the head winning 180 and 190.
        assert_eq!(full[0].timestamps.len(), 23);
        assert!(crate::api::is_stale_nan(full[0].values[21]));
        let names: [&[&str]; 5] = [
            &["job"],
            &[],
            &["__name__", "job"],
            &["task", "zzz"],
            &["__name__", "job", "task", "x"],
        ];
        for kept in names {
            let p = Projection::new(kept.iter().copied());
            let sel = LazySelection::new(&head, || list.clone(), &[], 0, 1000, Some(&p)).unwrap();
            let got = read_all(&sel);
            assert_eq!(got.len(), full.len(), "{kept:?}");
            assert_eq!(sel.sample_hint(), {
                let s = LazySelection::new(&head, || list.clone(), &[], 0, 1000, None).unwrap();
                s.sample_hint()
            });
            for (g, f) in got.iter().zip(&full) {
                assert_eq!(g.labels, p.apply(f.labels.clone()), "{kept:?}");
                assert_eq!(g.timestamps, f.timestamps);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&g.values), bits(&f.values));
            }
        }
        // Projected to `job`, a, b and d collide (three series, one label set).
        let p = Projection::new(["job"]);
        let sel = LazySelection::new(&head, || list.clone(), &[], 0, 1000, Some(&p)).unwrap();
        let kept: Vec<Labels> = Box::new(sel).into_labels();
        assert_eq!(kept[0], kept[1]);
        assert_eq!(kept[1], kept[2]);
        assert_eq!(kept[3], Labels::from_pairs([("job", "b")]));
    }

    #[test]
    fn merge_runs_interleaves_and_second_run_wins_ties() {
        let mut ts = vec![1, 3, 5, 2, 3, 6];
        let mut vals = vec![1.0, 3.0, 5.0, 2.0, 30.0, 6.0];
        merge_runs(&mut ts, &mut vals, 3);
        assert_eq!(ts, vec![1, 2, 3, 5, 6]);
        assert_eq!(vals, vec![1.0, 2.0, 30.0, 5.0, 6.0]);
    }
}
