//! Block write → open → read round trips on Flink-shaped series, and writer input checks.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::collections::BTreeSet;

use croaring::Bitmap;
use eddy_storage::block::{
    Block, BlockId, BlockWriter, ChunkMeta, CHUNKS_FILE, INDEX_FILE, META_FILE,
};
use eddy_storage::labels::matches_all;
use eddy_storage::{Error, Labels, MatchOp, Matcher};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Start of the test block: real Unix-ms timestamps, so varint sizes are realistic.
const T0: i64 = 1_700_000_000_000;

type Series = (Labels, Vec<(ChunkMeta, Vec<u8>)>);

/// Series shaped like Flink task metrics: a few metric names × hosts × task managers × subtasks.
fn flink_series(rng: &mut SmallRng, n: usize) -> Vec<Series> {
    let metrics = [
        "flink_taskmanager_job_task_numRecordsIn",
        "flink_taskmanager_job_task_numRecordsOut",
        "flink_taskmanager_job_task_busyTimeMsPerSecond",
        "flink_taskmanager_Status_JVM_CPU_Load",
    ];
    let mut out: Vec<Series> = (0..n)
        .map(|i| {
            let labels = Labels::from_pairs([
                ("__name__", metrics[i % metrics.len()].to_string()),
                ("job", "flink".to_string()),
                ("host", format!("host-{:03}", (i / 40) % 50)),
                ("tm_id", format!("container_e01_{:06}", i / 40)),
                ("task_name", format!("Source__Kafka_{}", (i / 4) % 10)),
                ("subtask_index", ((i / 4) % 10).to_string()),
                (
                    "task_attempt_id",
                    format!("{:032x}", (i / 40) as u128 * 7919),
                ),
            ]);
            let mut chunks = Vec::new();
            let mut t = T0 + rng.gen_range(0..15_000i64);
            for _ in 0..rng.gen_range(0..4) {
                let count = rng.gen_range(1..240u32);
                let max_t = t + i64::from(count - 1) * 15_000;
                let bytes: Vec<u8> = (0..rng.gen_range(1..300)).map(|_| rng.gen()).collect();
                chunks.push((
                    ChunkMeta {
                        min_t: t,
                        max_t,
                        count,
                    },
                    bytes,
                ));
                t = max_t + 15_000;
            }
            (labels, chunks)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn write_block(dir: &std::path::Path, min_t: i64, series: &[Series]) -> std::path::PathBuf {
    let mut w = BlockWriter::new(
        dir,
        BlockId::new(1_700_000_000_000, 5),
        min_t,
        i64::MAX / 2,
        1,
        vec![],
    )
    .unwrap();
    for (l, chunks) in series {
        let refs: Vec<(ChunkMeta, &[u8])> =
            chunks.iter().map(|(m, b)| (*m, b.as_slice())).collect();
        w.add_series(l, &refs).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn round_trip_thousands_of_series() {
    let mut rng = SmallRng::seed_from_u64(1);
    let series = flink_series(&mut rng, 5000);
    let dir = tempfile::tempdir().unwrap();
    let path = write_block(dir.path(), T0, &series);
    assert_eq!(path, dir.path().join("01HF7YAT000000000000000005"));
    assert!(!dir.path().join("01HF7YAT000000000000000005.tmp").exists());
    let b = Block::open(&path).unwrap();

    let meta = b.meta();
    assert_eq!(meta.stats.num_series, series.len() as u64);
    assert_eq!(
        meta.stats.num_chunks,
        series.iter().map(|s| s.1.len() as u64).sum::<u64>()
    );
    assert_eq!(
        meta.stats.num_samples,
        series
            .iter()
            .flat_map(|s| &s.1)
            .map(|c| u64::from(c.0.count))
            .sum::<u64>()
    );
    assert_eq!(meta.compaction.level, 1);
    // Borrowed label strings: appended after what the buffer holds, equal to the label set.
    let mut strs = vec![("keep", "me")];
    for (ord, (labels, _)) in series.iter().enumerate() {
        strs.truncate(1);
        b.index().series_label_strs(ord as u32, &mut strs).unwrap();
        let want: Vec<(&str, &str)> = labels.pairs().collect();
        assert_eq!(strs[0], ("keep", "me"));
        assert_eq!(&strs[1..], &want[..], "label strings of series {ord}");
    }
    assert!(b
        .index()
        .series_label_strs(series.len() as u32, &mut strs)
        .is_err());
    assert_eq!(strs.len(), 1 + series[series.len() - 1].0.len());
    for (ord, (labels, chunks)) in series.iter().enumerate() {
        assert_eq!(&b.series_labels(ord as u32).unwrap(), labels);
        let got: Vec<(ChunkMeta, Vec<u8>)> = b
            .series_chunks(ord as u32)
            .unwrap()
            .map(|(m, c)| (m, c.stored_bytes().to_vec()))
            .collect();
        assert_eq!(&got, chunks, "chunks of series {ord}");
    }
    assert!(b.series_labels(series.len() as u32).is_err());

    let cases = [
        vec![Matcher::equal("host", "host-007")],
        vec![
            Matcher::equal("__name__", "flink_taskmanager_job_task_numRecordsIn"),
            Matcher::equal("subtask_index", "3"),
        ],
        vec![Matcher::new(MatchOp::RegexMatch, "task_name", "Source__Kafka_(1|2)").unwrap()],
        vec![
            Matcher::new(MatchOp::RegexMatch, "host", "host-00.*").unwrap(),
            Matcher::new(MatchOp::NotEqual, "subtask_index", "0").unwrap(),
        ],
        vec![Matcher::new(MatchOp::RegexNoMatch, "__name__", ".*Records.*").unwrap()],
        vec![Matcher::new(MatchOp::RegexMatch, "tm_id", ".*7").unwrap()],
    ];
    for ms in &cases {
        let want: Vec<u32> = (0..series.len() as u32)
            .filter(|&i| matches_all(&series[i as usize].0, ms))
            .collect();
        assert!(!want.is_empty(), "case {ms:?} selects nothing");
        assert_eq!(b.select(ms).unwrap().to_vec(), want, "matchers {ms:?}");
    }

    let hosts: BTreeSet<String> = series
        .iter()
        .map(|s| s.0.get("host").unwrap().to_string())
        .collect();
    assert_eq!(
        b.label_values("host", None).unwrap(),
        hosts.into_iter().collect::<Vec<_>>()
    );
    let sel = b.select(&[Matcher::equal("host", "host-001")]).unwrap();
    let want: BTreeSet<String> = sel
        .iter()
        .map(|o| series[o as usize].0.get("tm_id").unwrap().to_string())
        .collect();
    assert_eq!(
        b.label_values("tm_id", Some(&sel)).unwrap(),
        want.into_iter().collect::<Vec<_>>()
    );
    assert_eq!(
        b.label_names(None).unwrap(),
        [
            "__name__",
            "host",
            "job",
            "subtask_index",
            "task_attempt_id",
            "task_name",
            "tm_id"
        ]
        .map(String::from)
        .to_vec()
    );

    let index_bytes = std::fs::metadata(path.join(INDEX_FILE)).unwrap().len();
    let chunks_bytes = std::fs::metadata(path.join(CHUNKS_FILE)).unwrap().len();
    eprintln!(
        "block of {} series: index {index_bytes} B ({:.1} B/series), chunks {chunks_bytes} B, meta {} B",
        series.len(),
        index_bytes as f64 / series.len() as f64,
        std::fs::metadata(path.join(META_FILE)).unwrap().len()
    );
    for (name, bytes) in b.index().section_sizes() {
        eprintln!(
            "  {name}: {bytes} B ({:.1} B/series)",
            bytes as f64 / series.len() as f64
        );
    }
    assert!(
        index_bytes < 80 * series.len() as u64,
        "index too big: {index_bytes} bytes"
    );
}

#[test]
fn empty_block_and_series_without_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Block::open(&write_block(dir.path(), 0, &[])).unwrap();
    assert_eq!(empty.meta().stats.num_series, 0);
    assert!(empty.select(&[]).unwrap().is_empty());
    assert_eq!(empty.label_names(None).unwrap(), Vec::<String>::new());

    let dir = tempfile::tempdir().unwrap();
    let series: Vec<Series> = vec![
        (Labels::from_pairs([("a", "1")]), vec![]),
        (
            Labels::from_pairs([("a", "2")]),
            vec![(
                ChunkMeta {
                    min_t: -5,
                    max_t: 5,
                    count: 3,
                },
                b"abc".to_vec(),
            )],
        ),
        (Labels::from_pairs([("a", "3")]), vec![]),
    ];
    let b = Block::open(&write_block(dir.path(), -1000, &series)).unwrap();
    assert_eq!(b.series_chunks(0).unwrap().count(), 0);
    assert_eq!(
        b.series_chunks(1)
            .unwrap()
            .map(|(m, c)| (m, c.stored_bytes()))
            .collect::<Vec<_>>(),
        vec![(series[1].1[0].0, &b"abc"[..])]
    );
    // Only series 1 has data, in [-5, 5].
    assert_eq!(b.select_in_range(&[], -100, 100).unwrap(), Bitmap::of(&[1]));
    assert_eq!(b.select_in_range(&[], 5, 5).unwrap(), Bitmap::of(&[1]));
    assert_eq!(b.select_in_range(&[], -5, -5).unwrap(), Bitmap::of(&[1]));
    assert!(b.select_in_range(&[], 6, 100).unwrap().is_empty());
    assert!(b.select_in_range(&[], -100, -6).unwrap().is_empty());
    assert!(b.select_in_range(&[], 5, -5).unwrap().is_empty());
    assert_eq!(
        b.select(&[Matcher::new(MatchOp::NotEqual, "a", "2").unwrap()])
            .unwrap(),
        Bitmap::of(&[0, 2])
    );
}

#[test]
fn writer_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(dir.path(), BlockId::new(9, 9), 0, 100, 1, vec![]).unwrap();
    let c = |min_t, max_t| {
        (
            ChunkMeta {
                min_t,
                max_t,
                count: 1,
            },
            &b"x"[..],
        )
    };
    w.add_series(&Labels::from_pairs([("a", "2")]), &[c(0, 10), c(10, 20)])
        .unwrap();
    let invalid = |e: Error| matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidInput);
    // Not after the previous series, or equal to it.
    assert!(invalid(
        w.add_series(&Labels::from_pairs([("a", "1")]), &[])
            .unwrap_err()
    ));
    assert!(invalid(
        w.add_series(&Labels::from_pairs([("a", "2")]), &[])
            .unwrap_err()
    ));
    // Chunks out of time order or outside the block range.
    assert!(invalid(
        w.add_series(&Labels::from_pairs([("a", "3")]), &[c(20, 30), c(0, 10)])
            .unwrap_err()
    ));
    assert!(invalid(
        w.add_series(&Labels::from_pairs([("a", "4")]), &[c(50, 101)])
            .unwrap_err()
    ));
    assert!(invalid(
        w.add_series(&Labels::from_pairs([("a", "5")]), &[c(9, 8)])
            .unwrap_err()
    ));
    // The rejected series left no trace: the block still opens with one series.
    w.add_series(&Labels::from_pairs([("a", "6")]), &[c(0, 0)])
        .unwrap();
    let b = Block::open(&w.finish().unwrap()).unwrap();
    assert_eq!(b.meta().stats.num_series, 2);
    assert_eq!(
        b.label_values("a", None).unwrap(),
        vec!["2".to_string(), "6".to_string()]
    );
}

#[test]
fn finish_refuses_to_overwrite_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let w = BlockWriter::new(dir.path(), BlockId::new(9, 9), 0, 100, 1, vec![]).unwrap();
    w.finish().unwrap();
    let w = BlockWriter::new(dir.path(), BlockId::new(9, 9), 0, 100, 1, vec![]).unwrap();
    assert!(
        matches!(w.finish(), Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists)
    );
}

#[test]
fn concurrent_readers_share_one_block() {
    let mut rng = SmallRng::seed_from_u64(2);
    let series = flink_series(&mut rng, 2000);
    let dir = tempfile::tempdir().unwrap();
    let block = std::sync::Arc::new(Block::open(&write_block(dir.path(), T0, &series)).unwrap());
    let want = block
        .select(&[Matcher::equal("subtask_index", "3")])
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = std::sync::Arc::clone(&block);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let sel = b.select(&[Matcher::equal("subtask_index", "3")]).unwrap();
                    let bytes: usize = sel
                        .iter()
                        .flat_map(|o| b.series_chunks(o).unwrap())
                        .map(|c| c.1.stored_bytes().len())
                        .sum();
                    assert!(bytes > 0);
                }
                b.select(&[Matcher::equal("subtask_index", "3")]).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), want);
    }
}
