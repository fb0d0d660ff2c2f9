//! Damaged blocks: every flipped bit in `meta.json`, `index` or `chunks` makes `Block::open`
//! fail with `Error::Corruption` naming the file and an offset; `open_blocks` quarantines
//! corrupt or incomplete blocks, removes unfinished writes and still returns the good blocks.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::fs;
use std::path::{Path, PathBuf};

use eddy_storage::block::{
    open_blocks, Block, BlockId, BlockMeta, BlockWriter, ChunkMeta, CHUNKS_FILE, INDEX_FILE,
    META_FILE,
};
use eddy_storage::{Error, Labels, Matcher};

/// A small block with a few series and chunks, so that every byte can be flipped in turn.
fn small_block(parent: &Path, id: BlockId) -> PathBuf {
    let mut w = BlockWriter::new(
        parent,
        id,
        0,
        10_000,
        2,
        vec![BlockId::new(1, 2), BlockId::new(1, 3)],
    )
    .unwrap();
    let mut series: Vec<(Labels, Vec<Vec<u8>>)> = (0..12u32)
        .map(|i| {
            let labels = Labels::from_pairs([
                ("__name__".to_string(), format!("metric_{}", i % 3)),
                ("host".to_string(), format!("h{}", i / 3)),
                ("i".to_string(), i.to_string()),
            ]);
            (
                labels,
                (0..i % 3)
                    .map(|c| vec![i as u8 ^ 0x5a; 5 + c as usize])
                    .collect(),
            )
        })
        .collect();
    series.push((Labels::from_pairs([("~last", "x")]), vec![b"zz".to_vec()]));
    series.sort();
    for (labels, data) in &series {
        let chunks: Vec<(ChunkMeta, &[u8])> = data
            .iter()
            .enumerate()
            .map(|(c, d)| {
                (
                    ChunkMeta {
                        min_t: c as i64 * 100,
                        max_t: c as i64 * 100 + 50,
                        count: 4,
                    },
                    d.as_slice(),
                )
            })
            .collect();
        w.add_series(labels, &chunks).unwrap();
    }
    w.finish().unwrap()
}

/// Flips bit `bit` of byte `pos` of `file`, runs `f`, and restores the byte.
fn with_flipped<T>(file: &Path, pos: usize, bit: u8, f: impl FnOnce() -> T) -> T {
    let orig = fs::read(file).unwrap();
    let mut bad = orig.clone();
    bad[pos] ^= 1 << bit;
    fs::write(file, &bad).unwrap();
    let out = f();
    fs::write(file, &orig).unwrap();
    out
}

/// Reads the index's table of contents as documented in `docs/format/index.md`:
/// `(offset, len)` of the five sections.
fn index_sections(index: &[u8]) -> Vec<(usize, usize)> {
    let toc = index.len() - 104;
    (0..5)
        .map(|i| {
            let at = toc + i * 20;
            let off = u64::from_le_bytes(index[at..at + 8].try_into().unwrap()) as usize;
            let len = u64::from_le_bytes(index[at + 8..at + 16].try_into().unwrap()) as usize;
            (off, len)
        })
        .collect()
}

#[track_caller]
fn expect_corruption(dir: &Path, file: &str, pos: usize, check_offset: bool) {
    let path = dir.join(file);
    let len = fs::metadata(&path).unwrap().len();
    match Block::open(dir) {
        Err(Error::Corruption {
            path: p,
            offset,
            reason,
        }) => {
            assert_eq!(p, path, "flip at {file}:{pos} blamed {p:?} ({reason})");
            assert!(
                offset <= len,
                "flip at {file}:{pos}: offset {offset} past end"
            );
            if check_offset {
                assert!(
                    offset <= pos as u64,
                    "flip at {file}:{pos}: reported offset {offset} ({reason})"
                );
                // Every byte is under a fine-grained check; the whole-file CRC is only a backstop.
                assert!(
                    !reason.contains("whole-file"),
                    "flip at {file}:{pos} only caught by whole-file CRC"
                );
            }
        }
        Err(e) => panic!("flip at {file}:{pos}: want corruption, got {e}"),
        Ok(_) => panic!("flip at {file}:{pos}: block opened"),
    }
}

#[test]
fn every_flipped_bit_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_block(tmp.path(), BlockId::new(5, 5));
    Block::open(&dir).unwrap();
    for (file, check_offset) in [(META_FILE, false), (INDEX_FILE, true), (CHUNKS_FILE, true)] {
        let path = dir.join(file);
        let n = fs::metadata(&path).unwrap().len() as usize;
        assert!(n > 8);
        for pos in 0..n {
            with_flipped(&path, pos, (pos % 8) as u8, || {
                expect_corruption(&dir, file, pos, check_offset)
            });
        }
    }
    // The untouched block still opens.
    let b = Block::open(&dir).unwrap();
    assert_eq!(
        b.select(&[Matcher::equal("host", "h1")])
            .unwrap()
            .cardinality(),
        3
    );
}

#[test]
fn each_index_section_reports_its_own_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_block(tmp.path(), BlockId::new(5, 6));
    let path = dir.join(INDEX_FILE);
    let index = fs::read(&path).unwrap();
    let sections = index_sections(&index);
    assert_eq!(sections[0].0, 20);
    let names = [
        "symbols",
        "series",
        "series offsets",
        "label index",
        "postings",
    ];
    for (i, &(off, len)) in sections.iter().enumerate() {
        assert!(len > 0, "section {i} is empty");
        let err = with_flipped(&path, off + len / 2, 3, || Block::open(&dir).unwrap_err());
        match err {
            Error::Corruption {
                path: p,
                offset,
                reason,
            } => {
                assert_eq!(p, path);
                assert_eq!(offset, off as u64, "section {}", names[i]);
                assert_eq!(reason, format!("{} section checksum mismatch", names[i]));
            }
            e => panic!("want corruption, got {e}"),
        }
    }
}

#[test]
fn chunk_corruption_names_the_series_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_block(tmp.path(), BlockId::new(5, 7));
    let path = dir.join(CHUNKS_FILE);
    let n = fs::metadata(&path).unwrap().len() as usize;
    // The last series' two bytes and CRC are the file's last 6 bytes.
    let err = with_flipped(&path, n - 6, 0, || Block::open(&dir).unwrap_err());
    match err {
        Error::Corruption {
            path: p,
            offset,
            reason,
        } => {
            assert_eq!(p, path);
            assert_eq!(offset, (n - 6) as u64);
            assert_eq!(reason, "chunks of series 12 checksum mismatch");
        }
        e => panic!("want corruption, got {e}"),
    }
}

#[test]
fn truncated_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_block(tmp.path(), BlockId::new(5, 8));
    for file in [INDEX_FILE, CHUNKS_FILE, META_FILE] {
        let path = dir.join(file);
        let orig = fs::read(&path).unwrap();
        fs::write(&path, &orig[..orig.len() - 1]).unwrap();
        assert!(
            matches!(Block::open(&dir), Err(Error::Corruption { path: p, .. }) if p == path),
            "truncated {file}"
        );
        fs::remove_file(&path).unwrap();
        assert!(
            matches!(Block::open(&dir), Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound),
            "missing {file}"
        );
        fs::write(&path, &orig).unwrap();
    }
    Block::open(&dir).unwrap();
}

#[test]
fn open_blocks_quarantines_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let good_late = small_block(root, BlockId::new(300, 1));
    let good_early = small_block(root, BlockId::new(100, 1));
    let corrupt = small_block(root, BlockId::new(200, 1));
    let missing = small_block(root, BlockId::new(250, 1));
    let chunks = corrupt.join(CHUNKS_FILE);
    let mut bytes = fs::read(&chunks).unwrap();
    bytes[20] ^= 0x10;
    fs::write(&chunks, bytes).unwrap();
    fs::remove_file(missing.join(INDEX_FILE)).unwrap();
    // An unfinished write, and directories that are not blocks.
    let unfinished = root.join(format!("{}.tmp", BlockId::new(400, 1)));
    fs::create_dir(&unfinished).unwrap();
    fs::write(unfinished.join(CHUNKS_FILE), b"partial").unwrap();
    fs::create_dir(root.join("wal")).unwrap();
    fs::create_dir(root.join("notes.tmp")).unwrap();
    fs::write(root.join("lock"), b"").unwrap();

    let (blocks, quarantined) = open_blocks(root).unwrap();
    let ids: Vec<BlockId> = blocks.iter().map(|b| b.meta().id).collect();
    assert_eq!(ids, vec![BlockId::new(100, 1), BlockId::new(300, 1)]);
    assert_eq!(blocks[0].dir(), good_early);
    assert_eq!(blocks[1].dir(), good_late);

    let mut q: Vec<(String, bool)> = quarantined
        .iter()
        .map(|q| (q.name.clone(), matches!(q.error, Error::Corruption { .. })))
        .collect();
    q.sort();
    assert_eq!(
        q,
        vec![
            (BlockId::new(200, 1).to_string(), true),
            (BlockId::new(250, 1).to_string(), false)
        ]
    );
    for qb in &quarantined {
        assert_eq!(qb.path, root.join("quarantine").join(&qb.name));
        assert!(qb.path.join(META_FILE).exists());
    }
    assert!(!corrupt.exists() && !missing.exists());
    assert!(!unfinished.exists());
    assert!(
        root.join("wal").exists() && root.join("notes.tmp").exists() && root.join("lock").exists()
    );

    // A second scan finds the same good blocks and nothing new to quarantine.
    let (blocks, quarantined) = open_blocks(root).unwrap();
    assert_eq!(blocks.len(), 2);
    assert!(quarantined.is_empty());
    // A missing directory is simply empty.
    let (blocks, quarantined) = open_blocks(&root.join("absent")).unwrap();
    assert!(blocks.is_empty() && quarantined.is_empty());
}

/// Rewrites every checksum that covers the index so a damaged postings list passes them all.
fn forge_checksums(dir: &Path, index: &mut [u8]) {
    let toc = index.len() - 104;
    for (i, (off, len)) in index_sections(index).into_iter().enumerate() {
        let crc = crc32c::crc32c(&index[off..off + len]);
        index[toc + i * 20 + 16..toc + i * 20 + 20].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c::crc32c(&index[toc..toc + 100]);
    index[toc + 100..].copy_from_slice(&crc.to_le_bytes());
    fs::write(dir.join(INDEX_FILE), &*index).unwrap();
    let mut meta: BlockMeta =
        serde_json::from_slice(&fs::read(dir.join(META_FILE)).unwrap()).unwrap();
    meta.files
        .iter_mut()
        .find(|f| f.name == INDEX_FILE)
        .unwrap()
        .crc32c = crc32c::crc32c(index);
    meta.checksum = 0;
    let json = |m: &BlockMeta| {
        let mut v = serde_json::to_vec_pretty(m).unwrap();
        v.push(b'\n');
        v
    };
    meta.checksum = crc32c::crc32c(&json(&meta));
    fs::write(dir.join(META_FILE), json(&meta)).unwrap();
}

#[test]
fn invalid_postings_with_matching_checksums_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_block(tmp.path(), BlockId::new(5, 9));
    let orig = fs::read(dir.join(INDEX_FILE)).unwrap();
    let (post_off, _) = index_sections(&orig)[4];
    // Byte 0 of a portable bitmap is its cookie; byte 4 starts the container count/keys.
    for (delta, reason) in [
        (0, "postings section: invalid bitmap"),
        (4, "postings section: invalid bitmap"),
    ] {
        let mut index = orig.clone();
        index[post_off + delta] ^= 0x01;
        forge_checksums(&dir, &mut index);
        match Block::open(&dir) {
            Err(Error::Corruption {
                path,
                offset,
                reason: r,
            }) => {
                assert_eq!(path, dir.join(INDEX_FILE));
                assert_eq!(offset, post_off as u64);
                assert_eq!(r, reason);
            }
            other => panic!("byte {delta}: want corruption, got {other:?}"),
        }
    }
    // With the original bytes and honest checksums the block opens again.
    let mut index = orig.clone();
    forge_checksums(&dir, &mut index);
    Block::open(&dir).unwrap();
}

/// Random damage inside the index sections, with every checksum forged to match, must give an
/// error or a block whose every read works: never a panic (overflow, out-of-bounds slice).
#[test]
fn damaged_index_with_forged_checksums_never_panics() {
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_block(tmp.path(), BlockId::new(5, 10));
    let orig = fs::read(dir.join(INDEX_FILE)).unwrap();
    let sections = index_sections(&orig);
    let (start, end) = (sections[0].0, sections[4].0 + sections[4].1);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(99);
    let mut opened = 0;
    for _ in 0..1000 {
        let mut index = orig.clone();
        for _ in 0..rng.gen_range(1..4) {
            let pos = rng.gen_range(start..end);
            index[pos] = if rng.gen_bool(0.5) {
                rng.gen()
            } else {
                index[pos] ^ (1 << rng.gen_range(0..8))
            };
        }
        forge_checksums(&dir, &mut index);
        let Ok(b) = Block::open(&dir) else { continue };
        opened += 1;
        for ord in 0..b.num_series() {
            let _ = b.series_labels(ord);
            let _ = b.series_chunks(ord).map(|it| it.count());
        }
        for name in b.label_names(None).unwrap_or_default() {
            let _ = b.label_values(&name, None);
            let _ = b.select(&[Matcher::equal(name.as_str(), "h1")]);
            let _ = b.select(&[Matcher::new(
                eddy_storage::MatchOp::RegexMatch,
                name.as_str(),
                "h.*|x",
            )
            .unwrap()]);
        }
    }
    forge_checksums(&dir, &mut orig.clone());
    Block::open(&dir).unwrap();
    eprintln!("{opened} of 1000 damaged indexes still opened");
}
