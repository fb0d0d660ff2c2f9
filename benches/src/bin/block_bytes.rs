//! Where a data directory's block bytes go: value-column bytes per sample by metric name and
//! by value layout, and the index's share. Answers "which series cost the bytes" before a
//! codec change, on a real data dir (for example `compare.sh`'s `data-eddy`).
//!
//! Run with: cargo run --release -p eddy-benches --bin block_bytes -- DATA_DIR [TOP] [--reencode]
//!
//! `--reencode` decodes every chunk and encodes its values again with this build's codecs,
//! and prints what each metric's values would cost now beside what they cost as stored: a
//! codec change measured on a real block without replaying its ingest.
//!
//! `--rewrite OUT_DATA_DIR` writes every block again with this build's block writer (and,
//! with `--reencode`, the re-encoded chunks) under `OUT_DATA_DIR/blocks`; run the tool on
//! that directory to see a format change's whole effect.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use eddy_storage::block::{Block, BlockId, BlockWriter, ChunkMeta};
use eddy_storage::chunk::{split_chunk, ChunkEncoder};

#[derive(Default, Clone, Copy)]
struct Tally {
    series: u64,
    chunks: u64,
    samples: u64,
    value_bytes: u64,
    /// Value bytes after encoding again (`--reencode`).
    reencoded_bytes: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.series += other.series;
        self.chunks += other.chunks;
        self.samples += other.samples;
        self.value_bytes += other.value_bytes;
        self.reencoded_bytes += other.reencoded_bytes;
    }
}

/// The value layout named by a value column's mode byte (`storage/src/chunk/values.rs`).
fn layout_name(mode: u8) -> &'static str {
    match mode & 0xf0 {
        0x00 => "const",
        0x10 => "decimal",
        0x20 => "xor",
        0x30 => "raw",
        _ => "unknown",
    }
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let reencode = args.iter().any(|a| a == "--reencode");
    args.retain(|a| a != "--reencode");
    let rewrite = match args.iter().position(|a| a == "--rewrite") {
        Some(i) if i + 1 < args.len() => {
            let out = PathBuf::from(args.remove(i + 1));
            args.remove(i);
            let blocks = out.join("blocks");
            std::fs::create_dir_all(&blocks)
                .with_context(|| format!("creating {}", blocks.display()))?;
            Some(blocks)
        }
        Some(_) => bail!("--rewrite needs an output data directory"),
        None => None,
    };
    let mut args = args.into_iter();
    let Some(dir) = args.next() else {
        bail!("usage: block_bytes DATA_DIR [TOP] [--reencode]");
    };
    let (mut enc, mut ts, mut vals, mut out) =
        (ChunkEncoder::new(), Vec::new(), Vec::new(), Vec::new());
    let top: usize = match args.next() {
        Some(s) => s.parse().context("TOP must be a number")?,
        None => 25,
    };
    let blocks_dir = PathBuf::from(&dir).join("blocks");
    let mut by_metric: HashMap<String, Tally> = HashMap::new();
    let mut by_layout: HashMap<&'static str, Tally> = HashMap::new();
    let mut total = Tally::default();
    let (mut index_bytes, mut chunk_file_bytes, mut ts_bytes) = (0u64, 0u64, 0u64);
    let mut sections: Vec<(&'static str, u64)> = Vec::new();
    let mut ts_seen = std::collections::HashSet::new();
    let mut entries: Vec<_> = std::fs::read_dir(&blocks_dir)
        .with_context(|| format!("reading {}", blocks_dir.display()))?
        .collect::<std::result::Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let block = Block::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut writer = match &rewrite {
            Some(out) => Some(BlockWriter::new(
                out,
                BlockId::generate(),
                block.meta().min_t,
                block.meta().max_t,
                1,
                vec![],
            )?),
            None => None,
        };
        let mut series_chunks: Vec<(ChunkMeta, Vec<u8>)> = Vec::new();
        for f in &block.meta().files {
            if f.name.starts_with("index") {
                index_bytes += f.size;
            } else {
                chunk_file_bytes += f.size;
            }
        }
        for (i, (name, size)) in block.index().section_sizes().into_iter().enumerate() {
            match sections.get_mut(i) {
                Some(s) => s.1 += size,
                None => sections.push((name, size)),
            }
        }
        for ord in 0..block.num_series() {
            let labels = block.series_labels(ord)?;
            let metric = labels.metric_name().unwrap_or("").to_string();
            let mut t = Tally {
                series: 1,
                ..Tally::default()
            };
            series_chunks.clear();
            for (meta, chunk) in block.series_chunks(ord)? {
                let values = match chunk.shared_timestamps() {
                    Some(col) => {
                        if ts_seen.insert(col.as_ptr() as usize) {
                            ts_bytes += col.len() as u64;
                        }
                        &chunk.stored_bytes()[1..]
                    }
                    None => {
                        let cols = split_chunk(chunk.stored_bytes())?;
                        ts_bytes += cols.timestamps.len() as u64;
                        cols.values
                    }
                };
                let mut reencoded_bytes = 0;
                if reencode {
                    ts.clear();
                    vals.clear();
                    chunk.decode(&mut ts, &mut vals)?;
                    out.clear();
                    enc.encode_values(&mut out, &vals);
                    reencoded_bytes = out.len() as u64;
                }
                if writer.is_some() {
                    let mut whole = Vec::new();
                    if reencode {
                        enc.encode_chunk(&mut whole, &ts, &vals);
                    } else {
                        chunk.write_chunk(&mut whole);
                    }
                    series_chunks.push((meta, whole));
                }
                let c = Tally {
                    series: 0,
                    chunks: 1,
                    samples: u64::from(meta.count),
                    value_bytes: values.len() as u64,
                    reencoded_bytes,
                };
                t.add(c);
                let layout = layout_name(values.first().copied().unwrap_or(0xff));
                by_layout.entry(layout).or_default().add(c);
            }
            if let Some(w) = writer.as_mut() {
                let chunks: Vec<(ChunkMeta, &[u8])> = series_chunks
                    .iter()
                    .map(|(m, b)| (*m, b.as_slice()))
                    .collect();
                w.add_series(&labels, &chunks)?;
            }
            by_metric.entry(metric).or_default().add(t);
            total.add(t);
        }
        if let Some(w) = writer {
            w.finish()?;
        }
    }
    let per = |b: u64| b as f64 / total.samples.max(1) as f64;
    println!(
        "{} series, {} chunks, {} samples; files: index {:.3} B/sample, chunks {:.3} B/sample (timestamp columns {:.3}, value columns {:.3})",
        total.series,
        total.chunks,
        total.samples,
        per(index_bytes),
        per(chunk_file_bytes),
        per(ts_bytes),
        per(total.value_bytes)
    );
    let per_series = |b: u64| b as f64 / total.series.max(1) as f64;
    println!("\nindex sections: B/sample, B per series per block");
    for (name, size) in &sections {
        println!(
            "{:>16} {:>7.3} {:>7.1}",
            name,
            per(*size),
            per_series(*size)
        );
    }
    println!(
        "\nby value layout:\n{:>10} {:>10} {:>12} {:>9} {:>8}",
        "layout", "chunks", "samples", "B/sample", "share"
    );
    let mut layouts: Vec<_> = by_layout.into_iter().collect();
    layouts.sort_by_key(|(_, t)| std::cmp::Reverse(t.value_bytes));
    for (name, t) in layouts {
        println!(
            "{:>10} {:>10} {:>12} {:>9.3} {:>7.1}%",
            name,
            t.chunks,
            t.samples,
            t.value_bytes as f64 / t.samples.max(1) as f64,
            100.0 * t.value_bytes as f64 / total.value_bytes.max(1) as f64
        );
    }
    if reencode {
        println!(
            "re-encoded value columns: {:.3} B/sample (stored {:.3})",
            per(total.reencoded_bytes),
            per(total.value_bytes)
        );
    }
    println!(
        "\nby metric (top {top} by value bytes):\n{:>9} {:>9} {:>8} {:>7}  metric",
        "B/sample", "re-enc", "share", "series"
    );
    let mut metrics: Vec<_> = by_metric.into_iter().collect();
    metrics.sort_by_key(|(_, t)| std::cmp::Reverse(t.value_bytes));
    for (name, t) in metrics.iter().take(top) {
        println!(
            "{:>9.3} {:>9.3} {:>7.1}% {:>7}  {}",
            t.value_bytes as f64 / t.samples.max(1) as f64,
            t.reencoded_bytes as f64 / t.samples.max(1) as f64,
            100.0 * t.value_bytes as f64 / total.value_bytes.max(1) as f64,
            t.series,
            name
        );
    }
    Ok(())
}
