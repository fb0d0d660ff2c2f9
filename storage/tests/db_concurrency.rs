//! Many writers, readers and maintenance at once: every accepted sample is stored exactly once,
//! readers always see a growing view, and a writer that falls behind a head cut is told so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use eddy_storage::{Db, DbOptions, Matcher, Querier, WriteBatch};

const WRITERS: usize = 4;
const SERIES_PER_WRITER: usize = 50;
const ROUNDS: i64 = 400;
const STEP: i64 = 60_000; // 1 min: 400 rounds span 6.7 h, so head cuts and compaction happen

#[test]
fn writers_readers_and_maintenance_run_together() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut accepted = 0u64;
                for r in 0..ROUNDS {
                    let mut b = WriteBatch::new();
                    let names: Vec<String> =
                        (0..SERIES_PER_WRITER).map(|s| format!("{w}-{s}")).collect();
                    let writer = w.to_string();
                    for n in &names {
                        b.add_series(
                            [
                                ("__name__", "load"),
                                ("writer", writer.as_str()),
                                ("series", n.as_str()),
                            ],
                            &[(r * STEP, r as f64)],
                        );
                    }
                    let o = db.append(&mut b).unwrap();
                    // A writer lagging behind a head cut gets "too old", never a silent loss.
                    let too_old = o
                        .rejected
                        .iter()
                        .filter(|r| r.0 == eddy_storage::RejectReason::TooOld)
                        .map(|r| r.1)
                        .sum::<u64>();
                    assert_eq!(
                        o.accepted + too_old,
                        SERIES_PER_WRITER as u64,
                        "{:?}",
                        o.messages
                    );
                    accepted += o.accepted;
                }
                accepted
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, done) = (db.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last_total = 0usize;
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let got = db
                        .select(&[Matcher::equal("__name__", "load")], i64::MIN, i64::MAX)
                        .unwrap();
                    let total: usize = got.iter().map(|s| s.timestamps.len()).sum();
                    assert!(
                        total >= last_total,
                        "a reader saw data disappear: {total} < {last_total}"
                    );
                    for s in &got {
                        assert!(s.timestamps.windows(2).all(|w| w[0] < w[1]), "{}", s.labels);
                    }
                    last_total = total;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let maint = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                db.maintain().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let accepted: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    maint.join().unwrap();
    db.maintain().unwrap();
    assert!(
        !db.blocks().is_empty(),
        "maintenance cut blocks while writers ran"
    );
    let got = db
        .select(&[Matcher::equal("__name__", "load")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(got.len(), WRITERS * SERIES_PER_WRITER);
    let stored: usize = got.iter().map(|s| s.timestamps.len()).sum();
    assert_eq!(
        stored as u64, accepted,
        "every accepted sample is stored, exactly once"
    );
}
