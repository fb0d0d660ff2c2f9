//! Scale check (ignored by default): index size per series and the time of head postings
//! inserts, block write/open and matcher evaluation on 200k Flink-shaped series.
//! Run with: cargo test --release -p eddy-storage --test index_scale -- --ignored --nocapture

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::time::Instant;

use eddy_storage::block::{Block, BlockId, BlockWriter, ChunkMeta, INDEX_FILE};
use eddy_storage::index::{self, MemPostings};
use eddy_storage::{Labels, MatchOp, Matcher};

const T0: i64 = 1_700_000_000_000;

/// Task-level Flink series: 60 metrics per subtask, 10 subtasks per task manager.
fn flink(n: usize) -> Vec<Labels> {
    let mut v: Vec<Labels> = (0..n)
        .map(|i| {
            let subtask = i / 60;
            let tm = subtask / 10;
            Labels::from_pairs([
                (
                    "__name__",
                    format!("flink_taskmanager_job_task_operator_metric_{}", i % 60),
                ),
                ("job", "flink".to_string()),
                ("job_name", format!("etl-job-{}", tm % 40)),
                ("host", format!("10.0.{}.{}", tm / 250, tm % 250)),
                (
                    "tm_id",
                    format!("container_e08_1700000000000_0001_01_{tm:06}"),
                ),
                ("task_name", format!("Map_Filter_{}", subtask % 7)),
                ("operator_name", format!("Map_{}", subtask % 7)),
                ("subtask_index", (subtask % 10).to_string()),
                ("task_attempt_num", "0".to_string()),
                (
                    "task_attempt_id",
                    format!("{:032x}", subtask as u128 * 0x9e37_79b9_7f4a_7c15),
                ),
                ("tm_port", "6122".to_string()),
            ])
        })
        .collect();
    v.sort();
    v
}

fn time<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    eprintln!("{what}: {:.2?}", t.elapsed());
    out
}

#[test]
#[ignore]
fn index_scale() {
    let n = 200_000;
    let series = flink(n);
    let mut mem = MemPostings::new();
    time("head: add 200k series to MemPostings", || {
        for (i, l) in series.iter().enumerate() {
            mem.add(i as u32, l);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = time("block: write 200k series", || {
        let mut w = BlockWriter::new(
            dir.path(),
            BlockId::new(1, 1),
            T0,
            T0 + 7_200_000,
            1,
            vec![],
        )
        .unwrap();
        let chunk = [7u8; 100];
        for l in &series {
            let meta = ChunkMeta {
                min_t: T0 + 1234,
                max_t: T0 + 1234 + 119 * 15_000,
                count: 120,
            };
            w.add_series(l, &[(meta, &chunk[..])]).unwrap();
        }
        w.finish().unwrap()
    });
    let block = time("block: open (verify everything)", || {
        Block::open(&path).unwrap()
    });
    let bytes = std::fs::metadata(path.join(INDEX_FILE)).unwrap().len();
    eprintln!("index: {bytes} B, {:.1} B/series", bytes as f64 / n as f64);
    for (name, b) in block.index().section_sizes() {
        eprintln!("  {name}: {:.1} B/series", b as f64 / n as f64);
    }
    let re = |name: &str, v: &str| Matcher::new(MatchOp::RegexMatch, name, v).unwrap();
    let cases: Vec<(&str, Vec<Matcher>)> = vec![
        (
            "metric=",
            vec![Matcher::equal(
                "__name__",
                "flink_taskmanager_job_task_operator_metric_7",
            )],
        ),
        (
            "metric= job_name=",
            vec![
                Matcher::equal("__name__", "flink_taskmanager_job_task_operator_metric_7"),
                Matcher::equal("job_name", "etl-job-3"),
            ],
        ),
        (
            "metric=~alternation",
            vec![re(
                "__name__",
                "flink_taskmanager_job_task_operator_metric_(1|2|3)",
            )],
        ),
        (
            "tm_id=~prefix.*",
            vec![re("tm_id", "container_e08_1700000000000_0001_01_0001.*")],
        ),
        (
            "task_attempt_id=~.*ab.*",
            vec![re("task_attempt_id", ".*ab.*")],
        ),
        (
            "metric= subtask!=0",
            vec![
                Matcher::equal("__name__", "flink_taskmanager_job_task_operator_metric_7"),
                Matcher::new(MatchOp::NotEqual, "subtask_index", "0").unwrap(),
            ],
        ),
    ];
    for (name, ms) in &cases {
        let reps = 20;
        let t = Instant::now();
        let mut h = 0;
        for _ in 0..reps {
            h = index::select(&mem, ms).unwrap().cardinality();
        }
        let head = t.elapsed() / reps;
        let t = Instant::now();
        let mut b = 0;
        for _ in 0..reps {
            b = block.select(ms).unwrap().cardinality();
        }
        let blk = t.elapsed() / reps;
        assert_eq!(h, b, "{name}");
        eprintln!("select {name:<26} {h:>7} series: head {head:>10.2?}  block {blk:>10.2?}");
    }
    let t = Instant::now();
    let vals = block.label_values("tm_id", None).unwrap();
    eprintln!(
        "block label_values(tm_id): {} values in {:.2?}",
        vals.len(),
        t.elapsed()
    );
    let t = Instant::now();
    for ord in 0..block.num_series() {
        std::hint::black_box(block.series_labels(ord).unwrap());
    }
    eprintln!(
        "block series_labels: {:.0} ns/series",
        t.elapsed().as_nanos() as f64 / f64::from(block.num_series())
    );
}
