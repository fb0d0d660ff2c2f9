//! Pins the exact bytes of a tiny block's `index` and `meta.json`: the worked example of
//! `docs/format/index.md` and `docs/format/block.md`. A format change must update both.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use eddy_storage::block::{
    Block, BlockId, BlockWriter, ChunkMeta, CHUNKS_FILE, INDEX_FILE, META_FILE,
};
use eddy_storage::Labels;

const INDEX_HEX: &str = "\
45 44 49 58 01 00 00 00 00 68 e5 cf 8b 01 00 00 bb a9 b4 b9 \
04 08 5f 5f 6e 61 6d 65 5f 5f 05 66 6c 69 6e 6b 03 6a 6f 62 02 75 70 \
02 00 00 01 00 01 08 00 a8 f9 6c 78 0a \
00 00 00 00 \
02 00 01 03 12 02 01 01 12 \
3a 30 00 00 01 00 00 00 00 00 00 00 10 00 00 00 00 00 \
3a 30 00 00 01 00 00 00 00 00 00 00 10 00 00 00 00 00 \
14 00 00 00 00 00 00 00 17 00 00 00 00 00 00 00 d1 57 53 be \
2b 00 00 00 00 00 00 00 0d 00 00 00 00 00 00 00 40 61 92 84 \
38 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 c7 4b 67 48 \
3c 00 00 00 00 00 00 00 09 00 00 00 00 00 00 00 4b 75 2a 0d \
45 00 00 00 00 00 00 00 24 00 00 00 00 00 00 00 e1 71 f9 0f \
cf 23 18 e7";

#[test]
fn worked_example_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (min_t, max_t) = (1_700_000_000_000, 1_700_007_199_999);
    let mut w = BlockWriter::new(
        dir.path(),
        BlockId::new(1_700_007_300_000, 5),
        min_t,
        max_t,
        1,
        vec![],
    )
    .unwrap();
    let chunk = ChunkMeta {
        min_t,
        max_t: 1_700_001_785_000,
        count: 120,
    };
    w.add_series(
        &Labels::from_pairs([("__name__", "up"), ("job", "flink")]),
        &[(chunk, b"0123456789")],
    )
    .unwrap();
    let path = w.finish().unwrap();
    assert_eq!(path, dir.path().join("01HF859JX00000000000000005"));

    let index = std::fs::read(path.join(INDEX_FILE)).unwrap();
    let hex: Vec<String> = index.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex.join(" "), INDEX_HEX);

    let mut chunks = b"EDCH\x01\x00\x00\x000123456789".to_vec();
    chunks.extend_from_slice(&crc32c::crc32c(b"0123456789").to_le_bytes());
    assert_eq!(std::fs::read(path.join(CHUNKS_FILE)).unwrap(), chunks);

    let meta = std::fs::read_to_string(path.join(META_FILE)).unwrap();
    assert!(
        meta.starts_with("{\n  \"version\": 1,\n  \"id\": \"01HF859JX00000000000000005\",\n"),
        "{meta}"
    );
    assert!(meta.ends_with("  \"checksum\": 1378525122\n}\n"), "{meta}");

    let b = Block::open(&path).unwrap();
    assert_eq!(
        b.series_chunks(0)
            .unwrap()
            .map(|(m, c)| (m, c.stored_bytes()))
            .collect::<Vec<_>>(),
        vec![(chunk, &b"0123456789"[..])]
    );
}

/// Series that share every label after their first (one Flink task's metrics) store those
/// labels once, in the tails table of index version 3; every label set reads back exactly,
/// whether its tail is shared, its own, empty, or starts below `__name__`.
#[test]
fn shared_label_tails_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (min_t, max_t) = (1_700_000_000_000, 1_700_007_199_999);
    let mut series: Vec<Labels> = vec![
        Labels::from_pairs([("__name__", "a"), ("job", "x"), ("task", "t1")]),
        Labels::from_pairs([("__name__", "b"), ("job", "x"), ("task", "t1")]),
        Labels::from_pairs([("__name__", "b"), ("job", "y")]),
        Labels::from_pairs([("__name__", "c")]),
        Labels::from_pairs([("__name__", "c"), ("job", "x"), ("task", "t1")]),
        Labels::from_pairs([("job", "w"), ("zz", "1")]),
        Labels::from_pairs([("job", "z"), ("zz", "1")]),
        Labels::from_pairs([("A", "1"), ("__name__", "d"), ("x", "1")]),
    ];
    series.sort();
    let mut w = BlockWriter::new(dir.path(), BlockId::new(1, 1), min_t, max_t, 1, vec![]).unwrap();
    let chunk = ChunkMeta {
        min_t,
        max_t: min_t + 10_000,
        count: 2,
    };
    for (i, labels) in series.iter().enumerate() {
        let bytes = format!("chunk-{i}");
        w.add_series(labels, &[(chunk, bytes.as_bytes())]).unwrap();
    }
    let path = w.finish().unwrap();
    assert_eq!(std::fs::read(path.join(INDEX_FILE)).unwrap()[4], 3);
    let b = Block::open(&path).unwrap();
    assert_eq!(b.num_series() as usize, series.len());
    for (ord, labels) in series.iter().enumerate() {
        assert_eq!(&b.series_labels(ord as u32).unwrap(), labels);
        let got: Vec<_> = b
            .series_chunks(ord as u32)
            .unwrap()
            .map(|(m, c)| (m, c.stored_bytes().to_vec()))
            .collect();
        assert_eq!(got, vec![(chunk, format!("chunk-{ord}").into_bytes())]);
    }
    let task = eddy_storage::Matcher::new(eddy_storage::MatchOp::Equal, "task", "t1").unwrap();
    assert_eq!(b.select(&[task]).unwrap().cardinality(), 3);
}
