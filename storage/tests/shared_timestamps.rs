//! Shared timestamp columns (block format version 2): chunks of series scraped together are
//! stored without their timestamp column and read back exactly; blocks without sharing stay
//! version 1; damage and forged references are caught on open; compaction keeps sharing.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::fs;
use std::path::{Path, PathBuf};

use eddy_storage::block::{
    Block, BlockId, BlockMeta, BlockWriter, ChunkDecoder, ChunkMeta, StoredChunk, CHUNKS_FILE,
    INDEX_FILE, META_FILE,
};
use eddy_storage::chunk::{decode_chunk, encode_chunk, split_chunk};
use eddy_storage::{Db, DbOptions, Error, Labels, Querier, WriteBatch};

const T0: i64 = 1_700_000_000_000;

/// Scrape times every 15 s with a per-scrape jitter of a few ms (the same for every series of
/// the scrape), starting at `from`.
fn scrape_times(from: i64, n: usize, seed: i64) -> Vec<i64> {
    (0..n as i64)
        .map(|i| from + i * 15_000 + (i * 7 + seed).rem_euclid(11) - 5)
        .collect()
}

fn chunk_of(ts: &[i64], vals: &[f64]) -> (ChunkMeta, Vec<u8>) {
    let mut b = Vec::new();
    encode_chunk(&mut b, ts, vals);
    let meta = ChunkMeta {
        min_t: ts[0],
        max_t: ts[ts.len() - 1],
        count: ts.len() as u32,
    };
    (meta, b)
}

type Series = (Labels, Vec<(ChunkMeta, Vec<u8>)>);

/// Two "TaskManagers" of `per_tm` series each; TM b starts later (a restart), so the two TMs
/// have different columns. Every series has two chunks.
fn two_tms(per_tm: usize) -> Vec<Series> {
    let mut out = Vec::new();
    for (tm, from, seed) in [("a", T0, 1), ("b", T0 + 600_000, 4)] {
        let ts = scrape_times(from, 200, seed);
        for k in 0..per_tm {
            let vals: Vec<f64> = (0..ts.len()).map(|i| (i * (k + 1)) as f64).collect();
            let labels = Labels::from_pairs([
                ("__name__".to_string(), format!("m{k:02}")),
                ("tm".to_string(), tm.to_string()),
            ]);
            let chunks = vec![
                chunk_of(&ts[..120], &vals[..120]),
                chunk_of(&ts[120..], &vals[120..]),
            ];
            out.push((labels, chunks));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write_block(dir: &Path, id: BlockId, series: &[Series]) -> PathBuf {
    let mut w = BlockWriter::new(dir, id, T0 - 1000, T0 + 7_200_000, 1, vec![]).unwrap();
    for (labels, chunks) in series {
        let refs: Vec<(ChunkMeta, &[u8])> = chunks.iter().map(|(m, b)| (*m, &b[..])).collect();
        w.add_series(labels, &refs).unwrap();
    }
    w.finish().unwrap()
}

fn stored(b: &Block, ord: u32) -> Vec<(ChunkMeta, StoredChunk<'_>)> {
    b.series_chunks(ord).unwrap().collect()
}

#[test]
fn series_of_one_scrape_store_one_column() {
    let series = two_tms(5);
    let tmp = tempfile::tempdir().unwrap();
    let path = write_block(tmp.path(), BlockId::new(1, 1), &series);
    let b = Block::open(&path).unwrap();
    assert_eq!(b.meta().version, 2);
    // Index version 3: the series of each TM also share their label tail (`tm`).
    assert_eq!(fs::read(path.join(INDEX_FILE)).unwrap()[4], 3);

    // Series are in label order m00{tm=a}, m00{tm=b}, m01{tm=a}…: the first series of each TM
    // stores its two columns, every later one refers to them.
    let (mut shared, mut ts_saved) = (0, 0);
    let mut dec = ChunkDecoder::new();
    for (ord, (labels, chunks)) in series.iter().enumerate() {
        let got = stored(&b, ord as u32);
        assert_eq!(got.len(), chunks.len());
        for ((meta, c), (want_meta, want)) in got.iter().zip(chunks) {
            assert_eq!(meta, want_meta);
            let cols = split_chunk(want).unwrap();
            let first_of_tm = ord < 2;
            assert_eq!(c.shared_timestamps().is_some(), !first_of_tm, "{labels}");
            if let Some(ts) = c.shared_timestamps() {
                assert_eq!(ts, cols.timestamps);
                let mut rest = cols.version.to_vec();
                rest.extend_from_slice(cols.values);
                assert_eq!(c.stored_bytes(), &rest[..]);
                shared += 1;
                ts_saved += ts.len();
            } else {
                assert_eq!(c.stored_bytes(), &want[..]);
            }
            let mut whole = Vec::new();
            c.write_chunk(&mut whole);
            assert_eq!(&whole, want);

            let (mut t1, mut v1, mut t2, mut v2, mut t3, mut v3) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            decode_chunk(want, &mut t1, &mut v1).unwrap();
            assert_eq!(c.decode(&mut t2, &mut v2).unwrap(), t1.len());
            assert_eq!(dec.decode(c, &mut t3, &mut v3).unwrap(), t1.len());
            assert_eq!((&t2, &v2), (&t1, &v1));
            assert_eq!((&t3, &v3), (&t1, &v1));
        }
    }
    assert_eq!(shared, 2 * (series.len() - 2));
    // The chunks file is the header, every chunk minus the shared columns, and one CRC per
    // series.
    let given: usize = series.iter().flat_map(|s| &s.1).map(|c| c.1.len()).sum();
    let size = fs::metadata(path.join(CHUNKS_FILE)).unwrap().len() as usize;
    assert_eq!(size, 8 + given - ts_saved + 4 * series.len());
    assert_eq!(b.meta().stats.num_chunks, 2 * series.len() as u64);
}

#[test]
fn a_block_without_shared_columns_stays_version_1() {
    let mut series = two_tms(1);
    // Different jitter per series: nothing to share.
    let ts = scrape_times(T0, 50, 9);
    let vals = vec![1.5; 50];
    series[1].1 = vec![chunk_of(&ts, &vals)];
    let tmp = tempfile::tempdir().unwrap();
    let b = Block::open(&write_block(tmp.path(), BlockId::new(1, 1), &series)).unwrap();
    assert_eq!(b.meta().version, 1);
    assert_eq!(fs::read(b.dir().join(INDEX_FILE)).unwrap()[4], 1);
    assert!((0..2).all(|o| stored(&b, o)
        .iter()
        .all(|c| c.1.shared_timestamps().is_none())));
}

#[test]
fn a_rejected_series_leaves_no_column_behind() {
    let series = two_tms(1);
    let tmp = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(
        tmp.path(),
        BlockId::new(1, 1),
        T0 - 1000,
        T0 + 7_200_000,
        1,
        vec![],
    )
    .unwrap();
    let add = |w: &mut BlockWriter, labels: &Labels, chunks: &[(ChunkMeta, Vec<u8>)]| {
        let r: Vec<(ChunkMeta, &[u8])> = chunks.iter().map(|(m, b)| (*m, &b[..])).collect();
        w.add_series(labels, &r)
    };
    add(&mut w, &series[0].0, &series[0].1).unwrap();
    // A series out of label order is rejected; it was the first to carry column `x`.
    let x = chunk_of(&scrape_times(T0 + 60_000, 90, 3), &[4.0; 90]);
    let early = Labels::from_pairs([("__name__", "a")]);
    assert!(add(&mut w, &early, std::slice::from_ref(&x)).is_err());
    // The next series with column `x` must store it: nothing holds it yet. Its second chunk
    // repeats the first series' column and refers to it.
    let labels = Labels::from_pairs([("__name__", "z")]);
    let late = vec![
        x,
        chunk_of(
            &scrape_times(T0, 200, 1)[120..],
            &(0..80).map(|i| i as f64 * 0.5).collect::<Vec<_>>(),
        ),
    ];
    add(&mut w, &labels, &late).unwrap();
    let b = Block::open(&w.finish().unwrap()).unwrap();
    assert_eq!(b.num_series(), 2);
    let got = stored(&b, 1);
    assert_eq!(
        got.iter()
            .map(|c| c.1.shared_timestamps().is_some())
            .collect::<Vec<_>>(),
        [false, true]
    );
    for ((_, c), (_, want)) in got.iter().zip(&late) {
        let mut whole = Vec::new();
        c.write_chunk(&mut whole);
        assert_eq!(&whole, want);
    }
}

/// Re-seals `meta.json` after `f` changed it (as a forger would).
fn rewrite_meta(dir: &Path, f: impl FnOnce(&mut BlockMeta)) {
    let mut meta: BlockMeta =
        serde_json::from_slice(&fs::read(dir.join(META_FILE)).unwrap()).unwrap();
    f(&mut meta);
    let json = |m: &BlockMeta| {
        let mut v = serde_json::to_vec_pretty(m).unwrap();
        v.push(b'\n');
        v
    };
    meta.checksum = 0;
    meta.checksum = crc32c::crc32c(&json(&meta));
    fs::write(dir.join(META_FILE), json(&meta)).unwrap();
}

fn corruption(dir: &Path) -> (PathBuf, u64, String) {
    match Block::open(dir) {
        Err(Error::Corruption {
            path,
            offset,
            reason,
        }) => (path, offset, reason),
        other => panic!("want corruption, got {other:?}"),
    }
}

#[test]
fn every_flipped_bit_of_a_sharing_block_is_detected() {
    let series = two_tms(2);
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), BlockId::new(1, 1), &series);
    for file in [CHUNKS_FILE, INDEX_FILE] {
        let path = dir.join(file);
        let orig = fs::read(&path).unwrap();
        for pos in 0..orig.len() {
            for bit in [0, 3, 7] {
                let mut bad = orig.clone();
                bad[pos] ^= 1 << bit;
                fs::write(&path, &bad).unwrap();
                let (p, _, _) = corruption(&dir);
                assert_eq!(p.file_name().unwrap(), file, "byte {pos} bit {bit}");
            }
        }
        fs::write(&path, &orig).unwrap();
    }
    Block::open(&dir).unwrap();
}

#[test]
fn a_forged_shared_column_is_rejected() {
    let series = two_tms(2);
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), BlockId::new(1, 1), &series);
    let path = dir.join(CHUNKS_FILE);
    let orig = fs::read(&path).unwrap();
    // Series 0's first chunk (at offset 8) holds the column that series 2's first chunk uses.
    // Damage the column and forge every checksum, as only a forger (or a writer bug) could.
    let len0: usize = series[0].1.iter().map(|c| c.1.len()).sum();
    let len1: usize = series[1].1.iter().map(|c| c.1.len()).sum();
    let forged = |pos: usize, xor: u8| {
        let mut chunks = orig.clone();
        chunks[pos] ^= xor;
        let crc = crc32c::crc32c(&chunks[8..8 + len0]);
        chunks[8 + len0..8 + len0 + 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &chunks).unwrap();
        rewrite_meta(&dir, |m| {
            m.files
                .iter_mut()
                .find(|f| f.name == CHUNKS_FILE)
                .unwrap()
                .crc32c = crc32c::crc32c(&chunks);
        });
        let (p, offset, reason) = corruption(&dir);
        assert_eq!(p, path);
        assert_eq!(offset, (8 + len0 + 4 + len1 + 4) as u64);
        reason
    };
    // Column: version 1 B │ count 1 B (120) │ first, 6 B varint │ span, 3 B varint │ mode.
    assert_eq!(
        forged(8 + 11, 0x0f),
        "chunk of series 2: shared timestamp column does not parse"
    );
    // The top byte of `first`: the column moves 2^34 ms away.
    assert_eq!(
        forged(8 + 7, 0x01),
        "chunk of series 2: shared timestamp column lies outside the block range"
    );
    assert_eq!(
        forged(8, 0x03),
        "chunk of series 2: shared timestamp reference does not point at a chunk"
    );
}

#[test]
fn unknown_block_versions_are_refused() {
    let series = two_tms(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), BlockId::new(1, 1), &series);
    rewrite_meta(&dir, |m| m.version = 3);
    let (p, offset, reason) = corruption(&dir);
    assert_eq!((p, offset), (dir.join(META_FILE), 0));
    assert_eq!(reason, "unsupported block version 3");
}

/// Through the database: the head cut and the 6 h compaction both share columns, for series
/// created at the start and for series created mid-window by a restart.
#[test]
fn compaction_keeps_columns_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), DbOptions::default()).unwrap();
    let h = 3_600_000;
    let start = 10 * 6 * h; // a 6 h window boundary
    let restart = start + h + 20_000;
    let mut i = 0i64;
    let mut t = start;
    while t < start + 6 * h + h / 2 {
        let jitter = (i * 5).rem_euclid(9) - 4;
        let mut batch = WriteBatch::new();
        for (k, name) in ["m0", "m1", "m2"].into_iter().enumerate() {
            batch.add_series([("__name__", name), ("tm", "a")], &[(t + jitter, k as f64)]);
            if t >= restart {
                batch.add_series(
                    [("__name__", name), ("tm", "b")],
                    &[(t + jitter + 1, i as f64)],
                );
            }
        }
        db.append(&mut batch).unwrap();
        if i % 240 == 0 {
            db.maintain().unwrap();
        }
        i += 1;
        t += 15_000;
    }
    db.flush().unwrap();
    let blocks = db.blocks();
    let merged = blocks
        .iter()
        .find(|b| b.meta().compaction.level > 1)
        .expect("a compacted 6 h block");
    assert_eq!(
        (merged.meta().min_t, merged.meta().max_t),
        (start, start + 6 * h - 1)
    );
    assert_eq!(merged.meta().version, 2);
    // Label order: m0{a}, m0{b}, m1{a}, m1{b}, m2{a}, m2{b}; the first two store columns.
    let shared: Vec<bool> = (0..merged.num_series())
        .map(|o| stored(merged, o)[0].1.shared_timestamps().is_some())
        .collect();
    assert_eq!(shared, [false, false, true, true, true, true]);
    // And reads return every sample.
    let all = db.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].timestamps.len() as i64, i);
}

/// Rewrites the index's section, TOC and whole-file checksums after damage, as a forger would
/// (layout in docs/format/index.md: five sections, a 104-byte TOC).
fn forge_index(dir: &Path, index: &mut [u8]) {
    let toc = index.len() - 104;
    for i in 0..5 {
        let at = toc + i * 20;
        let off = u64::from_le_bytes(index[at..at + 8].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(index[at + 8..at + 16].try_into().unwrap()) as usize;
        let crc = crc32c::crc32c(&index[off..off + len]);
        index[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c::crc32c(&index[toc..toc + 100]);
    index[toc + 100..].copy_from_slice(&crc.to_le_bytes());
    fs::write(dir.join(INDEX_FILE), &*index).unwrap();
    rewrite_meta(dir, |m| {
        m.files
            .iter_mut()
            .find(|f| f.name == INDEX_FILE)
            .unwrap()
            .crc32c = crc32c::crc32c(index);
    });
}

/// Random damage to the series section of a sharing block (chunk metas, flags, references),
/// with checksums forged: opening either fails or gives a block whose reads and decodes all
/// return (no panic, no out-of-bounds slice).
#[test]
fn damaged_references_with_forged_checksums_never_panic() {
    use rand::{Rng, SeedableRng};
    let series = two_tms(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), BlockId::new(1, 1), &series);
    let orig = fs::read(dir.join(INDEX_FILE)).unwrap();
    let toc = orig.len() - 104;
    let series_off = u64::from_le_bytes(orig[toc + 20..toc + 28].try_into().unwrap()) as usize;
    let series_len = u64::from_le_bytes(orig[toc + 28..toc + 36].try_into().unwrap()) as usize;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let (mut opened, mut rejected) = (0, 0);
    for _ in 0..600 {
        let mut index = orig.clone();
        for _ in 0..rng.gen_range(1..3) {
            let pos = rng.gen_range(series_off..series_off + series_len);
            index[pos] = if rng.gen_bool(0.5) {
                rng.gen()
            } else {
                index[pos] ^ (1 << rng.gen_range(0..8))
            };
        }
        forge_index(&dir, &mut index);
        let Ok(b) = Block::open(&dir) else {
            rejected += 1;
            continue;
        };
        opened += 1;
        let mut dec = ChunkDecoder::new();
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        for ord in 0..b.num_series() {
            for (_, c) in b.series_chunks(ord).into_iter().flatten() {
                let _ = c.decode(&mut ts, &mut vals);
                let _ = dec.decode(&c, &mut ts, &mut vals);
                c.write_chunk(&mut Vec::new());
            }
        }
    }
    forge_index(&dir, &mut orig.clone());
    Block::open(&dir).unwrap();
    assert!(rejected > 0, "{opened} opened, {rejected} rejected");
}

/// One decoder over two open blocks whose shared columns sit at the same offsets but hold
/// different timestamps: each chunk decodes to its own block's samples.
#[test]
fn one_decoder_serves_several_blocks() {
    let a = two_tms(2);
    let mut b = two_tms(2);
    // Same sizes, other timestamps: shift every series' chunks by 1 ms.
    for (_, chunks) in &mut b {
        for (meta, bytes) in chunks.iter_mut() {
            let (mut ts, mut vals) = (Vec::new(), Vec::new());
            decode_chunk(bytes, &mut ts, &mut vals).unwrap();
            ts.iter_mut().for_each(|t| *t += 1);
            (*meta, *bytes) = chunk_of(&ts, &vals);
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let ba = Block::open(&write_block(tmp.path(), BlockId::new(1, 1), &a)).unwrap();
    let bb = Block::open(&write_block(tmp.path(), BlockId::new(1, 2), &b)).unwrap();
    let mut dec = ChunkDecoder::new();
    for ord in 0..ba.num_series() {
        for blk in [&ba, &bb] {
            for (meta, c) in blk.series_chunks(ord).unwrap() {
                let (mut t1, mut v1, mut t2, mut v2) = (vec![], vec![], vec![], vec![]);
                dec.decode(&c, &mut t1, &mut v1).unwrap();
                c.decode(&mut t2, &mut v2).unwrap();
                assert_eq!((&t1, &v1), (&t2, &v2));
                assert_eq!((t1[0], t1[t1.len() - 1]), (meta.min_t, meta.max_t));
            }
        }
    }
    assert_ne!(
        stored(&ba, 2)[0].0.min_t,
        stored(&bb, 2)[0].0.min_t,
        "the blocks differ"
    );
}
