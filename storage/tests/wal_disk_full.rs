//! WAL behaviour when the disk is full: a failed write returns a clear error, leaves no half
//! record behind, and appends succeed again once space returns.
//!
//! "Full" is a real kernel failure without root: the process lowers its own soft
//! `RLIMIT_FSIZE` and ignores `SIGXFSZ`, so a write past the limit is cut short and the next one
//! fails with `EFBIG` — the same short-write-then-error pattern as `ENOSPC`. Raising the soft
//! limit back to the hard limit is "space returns". The limit applies to the whole process, so
//! this file holds exactly one `#[test]` (each integration test file is its own process).

#![allow(clippy::unwrap_used)] // Test helpers outside #[test] fns may unwrap too.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use eddy_storage::wal::{self, SyncPolicy, Wal, WalOptions};
use eddy_storage::Error;

/// Sets the soft file-size limit to `bytes`, or back to the hard limit with `None`.
fn limit_file_size(bytes: Option<u64>) {
    // SAFETY: plain libc calls on a local struct; SIG_IGN for SIGXFSZ makes an over-limit
    // write return EFBIG instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.map_or(lim.rlim_max, |b| b as libc::rlim_t);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

fn record(tag: &str, len: usize) -> Vec<u8> {
    let mut r = tag.as_bytes().to_vec();
    r.resize(len, b'.');
    r
}

#[track_caller]
fn assert_full(res: eddy_storage::Result<impl std::fmt::Debug>, op: &str) {
    match res {
        Err(Error::Io {
            op: got, source, ..
        }) => {
            assert_eq!(got, op);
            assert_eq!(source.kind(), io::ErrorKind::FileTooLarge, "{source}");
        }
        other => panic!("want a disk-full error from {op:?}, got {other:?}"),
    }
}

fn replay_all(dir: &Path) -> (Vec<Vec<u8>>, wal::ReplayReport) {
    let mut out = Vec::new();
    let report = wal::replay(dir, &mut |r| {
        out.push(r.to_vec());
        Ok(())
    })
    .unwrap();
    (out, report)
}

#[test]
fn disk_full_is_an_error_and_the_log_recovers() {
    for sync in [
        SyncPolicy::Always,
        SyncPolicy::Interval(Duration::from_millis(5)),
        SyncPolicy::Never,
    ] {
        check_policy(sync);
    }
}

fn check_policy(sync: SyncPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let seg0 = dir.path().join("00000000");
    let w = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 1 << 20,
            sync,
        },
    )
    .unwrap();
    let mut acked = Vec::new();
    for i in 0..10 {
        let r = record(&format!("before-{i}"), 100);
        w.append(&r).unwrap();
        acked.push(r);
    }
    // 8-byte file header + 10 frames of 8 + 100 bytes.
    assert_eq!(fs::metadata(&seg0).unwrap().len(), 1088);

    // Room for one more 108-byte frame and 42 bytes of the next.
    limit_file_size(Some(1088 + 150));
    let r = record("fits", 100);
    w.append(&r).unwrap();
    acked.push(r);
    assert_full(w.append(&record("too-big", 100)), "write WAL segment");
    // The 42 bytes that did get written were cut off again.
    assert_eq!(fs::metadata(&seg0).unwrap().len(), 1196);
    assert_full(w.append(&record("still-too-big", 100)), "write WAL segment");
    assert_eq!(fs::metadata(&seg0).unwrap().len(), 1196);
    // The log is consistent while full: no torn tail to repair.
    let (got, report) = replay_all(dir.path());
    assert_eq!((got, report.truncated), (acked.clone(), None));
    // A record that fits in the space left still goes in, after the last good one.
    let small = record("small", 20);
    w.append(&small).unwrap();
    acked.push(small);

    // No room for even a segment header: rotation and checkpoints fail cleanly too.
    limit_file_size(Some(4));
    assert_full(w.cut_segment(), "create WAL segment");
    assert_full(w.append(b"no segment"), "create WAL segment");
    assert_full(
        w.checkpoint(0, &mut vec![record("ckpt", 100)].into_iter()),
        "write WAL checkpoint",
    );
    let files: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files,
        vec![std::ffi::OsString::from("00000000")],
        "no partial files left behind"
    );

    // Space returns: everything works again and nothing acknowledged was lost.
    limit_file_size(None);
    let after = record("after", 100);
    w.append(&after).unwrap();
    acked.push(after);
    assert_eq!(w.current_segment(), 1);
    let stats = w.stats();
    assert_eq!(stats.failed_batches, 3, "{stats:?}");
    w.close().unwrap();
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, acked);
    assert_eq!((report.segments, report.truncated), (2, None));
}
