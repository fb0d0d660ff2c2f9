//! Smoke test of the benchmark suite: the generator plus `storage_bench` at a tiny size, with
//! every figure checked against what the workload must produce.

use eddy_benches::flink::Config;
use eddy_benches::storage_bench::{run, Options};

fn tiny(hours: f64, interval_ms: i64, restart_every_ms: i64) -> Config {
    Config {
        tms: 3,
        tms_per_job: 2,
        slots: 1,
        hours,
        interval_ms,
        jitter_ms: 8,
        restart_every_ms,
        seed: 11,
        ..Config::default()
    }
}

#[test]
fn storage_bench_counts_add_up() {
    let dir = tempfile::tempdir().unwrap();
    // 30 min with a restart every 10 min: series churn and counter resets.
    let cfg = tiny(0.5, 15_000, 600_000);
    let mut opts = Options::new(cfg.clone(), 2, dir.path().to_path_buf());
    opts.segment_rounds = 40;
    let rep = run(&opts).unwrap();
    assert_eq!(cfg.series_per_tm(), 40 + 537);
    assert_eq!(rep.active_series, 3 * 577);
    assert_eq!(rep.samples, 3 * 577 * 120);
    assert_eq!(rep.rejected, 0);
    let appended = rep.first_round.samples + rep.single.samples + rep.multi.samples;
    assert_eq!(appended, rep.samples);
    assert_eq!(rep.first_round.samples, rep.active_series);
    assert!(rep.multi.samples > 0 && rep.multi.threads == 2);
    // Every restart of the two jobs replaced their 537-series subtask sets.
    assert!(
        rep.series_created >= rep.active_series + 2 * 537,
        "{}",
        rep.series_created
    );
    assert_eq!(rep.block_samples, rep.samples);
    assert!(rep.chunks_bytes > 0 && rep.index_bytes > 0);
    // 23:45–00:15 crosses a 2 h boundary: two blocks, the larger one decoded.
    assert_eq!(rep.blocks, 2);
    assert!(rep.decode_samples * 2 >= rep.samples && rep.decode_samples < rep.samples);
    assert!(rep.rss_first_round >= rep.rss_start);
    let text = rep.to_string();
    assert!(
        text.contains("B/sample") && text.contains("M samples/s"),
        "{text}"
    );
}

#[test]
fn storage_bench_cuts_and_compacts_long_workloads() {
    let dir = tempfile::tempdir().unwrap();
    // 7 h at 120 s: the head is cut into 2 h blocks while appending, then 2 h → 6 h compaction.
    let cfg = Config {
        tms: 2,
        ..tiny(7.0, 120_000, 0)
    };
    let rep = run(&Options::new(cfg.clone(), 2, dir.path().to_path_buf())).unwrap();
    assert_eq!(rep.rejected, 0);
    assert_eq!(rep.block_samples, cfg.total_samples());
    assert_eq!(rep.series_created, rep.active_series);
    assert!(rep.blocks >= 2, "blocks {}", rep.blocks);
    assert!(
        rep.decode_block_hours > 5.0,
        "largest block spans {} h\n{rep}",
        rep.decode_block_hours
    );
    assert!(rep.decode_samples < rep.block_samples);
}
