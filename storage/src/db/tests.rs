use super::*;
use crate::api::stale_nan;

const H: i64 = 3600 * 1000;

fn opts() -> DbOptions {
    DbOptions {
        wal: WalOptions {
            sync: wal::SyncPolicy::Always,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn write(db: &Db, series: &[(&str, &str)], samples: &[(i64, f64)]) -> AppendOutcome {
    let mut b = WriteBatch::new();
    b.add_series(series.iter().copied(), samples);
    db.append(&mut b).unwrap()
}

fn all(db: &Db) -> Vec<Series> {
    db.select(&[], i64::MIN, i64::MAX).unwrap()
}

fn every_10s(from: i64, to: i64, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (from..to).step_by(10_000).map(|t| (t, f(t))).collect()
}

#[test]
fn wal_replay_restores_head_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let samples = every_10s(0, H, |t| (t / 1000) as f64);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for s in samples.chunks(50) {
            write(&db, &[("__name__", "up"), ("job", "a")], s);
        }
        write(
            &db,
            &[("__name__", "stale"), ("job", "a")],
            &[(5, stale_nan())],
        );
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.open_report().wal_samples, samples.len() as u64 + 1);
    let got = all(&db);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].timestamps.len(), samples.len());
    assert_eq!(got[1].values[17], 170.0);
    assert_eq!(got[0].values[0].to_bits(), stale_nan().to_bits());
    // Appending to a replayed series reuses it.
    assert_eq!(
        write(&db, &[("job", "a"), ("__name__", "up")], &[(H, 1.0)]).new_series,
        0
    );
}

#[test]
fn flush_moves_head_into_blocks_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let samples = every_10s(0, 5 * H, |t| (t / 10_000) as f64);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for s in samples.chunks(100) {
            write(&db, &[("__name__", "c"), ("pod", "p1")], s);
            write(&db, &[("__name__", "c"), ("pod", "p2")], s);
        }
        let ids = db.flush().unwrap();
        assert_eq!(ids.len(), 3, "5 h of data in 2 h partitions");
        assert_eq!(db.head_stats().series, 0);
        let got = all(&db);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].timestamps.len(), samples.len());
        // After a flush, newer data is still accepted.
        assert_eq!(
            write(&db, &[("__name__", "c"), ("pod", "p1")], &[(5 * H, 1.0)]).accepted,
            1
        );
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.blocks().len() >= 2);
    let got = db.select(&[Matcher::equal("pod", "p1")], 0, 5 * H).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamps.len(), samples.len() + 1);
    assert_eq!(got[0].values[samples.len()], 1.0);
    let part = db
        .select(
            &[Matcher::equal("pod", "p2")],
            2 * H - 10_000,
            2 * H + 10_000,
        )
        .unwrap();
    assert_eq!(
        part[0].timestamps,
        vec![2 * H - 10_000, 2 * H, 2 * H + 10_000]
    );
    assert_eq!(
        db.label_values("pod", &[], 0, 5 * H).unwrap(),
        vec!["p1", "p2"]
    );
    assert_eq!(
        db.label_names(&[], 0, 5 * H).unwrap(),
        vec!["__name__", "pod"]
    );
    assert_eq!(
        db.series(&[Matcher::equal("pod", "p2")], 0, H)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn compact_all_merges_unfinished_windows_and_later_data_merges_in() {
    let dir = tempfile::tempdir().unwrap();
    let samples = every_10s(0, 5 * H, |t| (t / 10_000 % 13) as f64);
    let later = every_10s(5 * H, 7 * H, |t| (t / 10_000 % 13) as f64);
    let series = |pod| [("__name__", "c"), ("pod", pod)];
    let db = Db::open(dir.path(), opts()).unwrap();
    for s in samples.chunks(100) {
        write(&db, &series("p1"), s);
        write(&db, &series("p2"), &s[..s.len() / 2]);
    }
    db.flush().unwrap();
    // Default retention (15 d): windows of 2, 6 and 18 h; none is finished yet.
    assert_eq!(db.blocks().len(), 3, "5 h of data in 2 h blocks");
    let before = all(&db);
    let samples_before: u64 = db.blocks().iter().map(|b| b.meta().stats.num_samples).sum();

    let ids = db.compact_all().unwrap();
    assert_eq!(ids.len(), 1);
    let blocks = db.blocks();
    assert_eq!(blocks.len(), 1);
    let m = blocks[0].meta();
    assert_eq!((m.min_t, m.id), (0, ids[0]));
    assert!(m.max_t >= 5 * H - 10_000 && m.max_t < 6 * H, "{}", m.max_t);
    assert_eq!(m.stats.num_samples, samples_before);
    assert_eq!(all(&db), before);
    assert_eq!(
        db.compact_all().unwrap(),
        Vec::new(),
        "nothing left to merge"
    );

    // Data arriving later for the merged window: the regular compaction merges it in once
    // the 6 h window is finished (and not the 18 h one, which is not).
    for s in later.chunks(100) {
        write(&db, &series("p1"), s);
    }
    db.flush().unwrap();
    let blocks = db.blocks();
    assert_eq!(blocks.len(), 2, "[0, 6 h) merged again, [6 h, 7 h] alone");
    assert_eq!(blocks[0].meta().compaction.level, 3);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = all(&db);
    let want: Vec<i64> = samples.iter().chain(&later).map(|s| s.0).collect();
    assert_eq!(got[0].timestamps, want);
    assert_eq!(got[1], before[1]);
}

#[test]
fn maintenance_cuts_compacts_and_applies_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.retention_ms = 60 * H; // compaction windows: 2 h and 6 h (a tenth of retention)
    let db = Db::open(dir.path(), o).unwrap();
    let samples = every_10s(0, 80 * H, |t| (t % 7) as f64);
    for s in samples.chunks(360) {
        write(&db, &[("__name__", "g")], s);
        db.maintain().unwrap();
    }
    let blocks = db.blocks();
    assert!(
        blocks.iter().any(|b| b.meta().compaction.level > 1),
        "compaction ran"
    );
    assert!(blocks
        .iter()
        .all(|b| b.meta().max_t - b.meta().min_t < 6 * H));
    // Retention: blocks ending before newest - 60 h are gone; the 6 h block [18 h, 24 h) stays.
    let got = all(&db);
    assert_eq!(got[0].timestamps[0], 18 * H);
    let expect: Vec<i64> = samples
        .iter()
        .map(|s| s.0)
        .filter(|&t| t >= 18 * H)
        .collect();
    assert_eq!(got[0].timestamps, expect);
    // The WAL was checkpointed: a reopen replays far fewer samples than were written.
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(
        db.open_report().wal_samples < 2 * 360 * 4,
        "replayed {}",
        db.open_report().wal_samples
    );
    assert_eq!(all(&db)[0].timestamps, expect);
}

#[test]
fn corrupt_block_is_quarantined_and_the_rest_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, &[("__name__", "a")], &every_10s(0, 3 * H, |_| 1.0));
        db.flush().unwrap();
        db.close().unwrap();
    }
    let blocks_dir = dir.path().join("blocks");
    let mut block_dirs: Vec<_> = fs::read_dir(&blocks_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("chunks").exists())
        .map(|e| e.path())
        .collect();
    block_dirs.sort();
    let victim = block_dirs[0].join("chunks");
    let mut bytes = fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(&victim, bytes).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(
        db.open_report().quarantined.len(),
        1,
        "{:?}",
        db.open_report()
    );
    assert_eq!(db.blocks().len(), block_dirs.len() - 1);
    assert!(!all(&db).is_empty());
}

#[test]
fn snapshot_holds_blocks_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, &[("__name__", "a")], &every_10s(0, 3 * H, |_| 1.0));
    db.flush().unwrap();
    write(&db, &[("__name__", "a")], &every_10s(3 * H, 4 * H, |_| 2.0));
    let snap = db.snapshot("s1", true).unwrap();
    let copy = Db::open(
        &snap
            .join("..")
            .join("..")
            .join("snapshots")
            .join("s1")
            .join("restore"),
        opts(),
    );
    assert!(copy.is_ok());
    // The snapshot directory is a valid blocks directory.
    let (blocks, bad) = block::open_blocks(&snap).unwrap();
    assert!(bad.is_empty());
    let samples: u64 = blocks.iter().map(|b| b.meta().stats.num_samples).sum();
    assert_eq!(samples, 4 * 360);
}

#[test]
fn a_data_directory_opens_once_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = Db::open(dir.path(), DbOptions::default()).unwrap();
    match Db::open(dir.path(), DbOptions::default()) {
        Err(e @ Error::DirInUse { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("in use by another eddy process"), "{msg}");
        }
        other => panic!("a second open must fail, got {other:?}"),
    }
    drop(first);
    Db::open(dir.path(), DbOptions::default()).unwrap();
}
