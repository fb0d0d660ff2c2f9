//! Group commit under concurrent appenders: every acknowledged record is replayed exactly once,
//! each thread's records in the order it appended them, under every sync policy.

#![allow(clippy::unwrap_used)] // Test helpers outside #[test] fns may unwrap too.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use eddy_storage::wal::{self, SyncPolicy, Wal, WalOptions};

const THREADS: u32 = 8;
const PER_THREAD: u32 = 400;

fn run(sync: SyncPolicy) {
    let dir = tempfile::tempdir().unwrap();
    // Small segments so rotation races with appends too.
    let w = Arc::new(
        Wal::open(
            dir.path(),
            WalOptions {
                segment_size: 16 << 10,
                sync,
            },
        )
        .unwrap(),
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let w = Arc::clone(&w);
            thread::spawn(move || {
                let mut rec = Vec::new();
                for i in 0..PER_THREAD {
                    rec.clear();
                    rec.extend_from_slice(&t.to_le_bytes());
                    rec.extend_from_slice(&i.to_le_bytes());
                    // Variable length payload, checked on replay.
                    rec.resize(8 + (i as usize * 7 + t as usize) % 300, t as u8);
                    w.append(&rec).unwrap();
                    if i == PER_THREAD / 2 && t == 0 {
                        w.cut_segment().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = w.stats();
    w.close().unwrap();
    assert_eq!(stats.records, u64::from(THREADS * PER_THREAD));
    assert!(
        stats.batches >= 1 && stats.batches <= stats.records,
        "{stats:?}"
    );
    assert_eq!(stats.failed_batches, 0);
    if sync == SyncPolicy::Always {
        assert!(
            stats.fsyncs >= stats.batches,
            "every batch is fsynced: {stats:?}"
        );
    }

    let mut next: HashMap<u32, u32> = HashMap::new();
    let report = wal::replay(dir.path(), &mut |r| {
        let t = u32::from_le_bytes(r[..4].try_into().unwrap());
        let i = u32::from_le_bytes(r[4..8].try_into().unwrap());
        let want = next.entry(t).or_default();
        assert_eq!(i, *want, "thread {t} records out of order");
        *want += 1;
        assert_eq!(r.len(), 8 + (i as usize * 7 + t as usize) % 300);
        assert!(r[8..].iter().all(|&b| b == t as u8));
        Ok(())
    })
    .unwrap();
    assert_eq!(report.records, u64::from(THREADS * PER_THREAD));
    assert!(report.segments > 2, "{report:?}");
    assert_eq!(next.len(), THREADS as usize);
    assert!(next.values().all(|&n| n == PER_THREAD));
}

#[test]
fn wal_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Wal>();
}

#[test]
fn concurrent_appends_always() {
    run(SyncPolicy::Always);
}

#[test]
fn concurrent_appends_interval() {
    run(SyncPolicy::Interval(Duration::from_millis(2)));
}

#[test]
fn concurrent_appends_never() {
    run(SyncPolicy::Never);
}

#[test]
fn interval_policy_fsyncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 1 << 20,
            sync: SyncPolicy::Interval(Duration::from_millis(10)),
        },
    )
    .unwrap();
    w.append(b"x").unwrap();
    let before = w.stats().fsyncs;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while w.stats().fsyncs == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no background fsync within 5 s"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // Nothing new written: the background thread has nothing to sync.
    let settled = w.stats().fsyncs;
    thread::sleep(Duration::from_millis(50));
    assert_eq!(w.stats().fsyncs, settled);
    w.close().unwrap();
}
