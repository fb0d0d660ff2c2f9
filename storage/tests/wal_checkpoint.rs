//! WAL trimming: cut a segment, checkpoint what the head still needs, delete older segments.

#![allow(clippy::unwrap_used)] // Test helpers outside #[test] fns may unwrap too.

use std::fs;
use std::path::Path;

use eddy_storage::wal::{self, SyncPolicy, Wal, WalOptions};

fn opts() -> WalOptions {
    WalOptions {
        segment_size: 64,
        sync: SyncPolicy::Always,
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
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

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn checkpoint_replaces_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), opts()).unwrap();
    for i in 0..10 {
        w.append(format!("old-{i:02}-padding-padding-padding").as_bytes())
            .unwrap();
    }
    let cut = w.cut_segment().unwrap();
    assert_eq!(w.current_segment(), cut);
    assert!(
        cut >= 5,
        "each old record should have filled a segment, cut at {cut}"
    );
    let mut later = Vec::new();
    for i in 0..5 {
        let r = format!("new-{i}").into_bytes();
        w.append(&r).unwrap();
        later.push(r);
    }
    let kept = vec![
        bytes("series 1"),
        Vec::new(),
        bytes("samples not yet in a block"),
    ];
    w.checkpoint(cut, &mut kept.clone().into_iter()).unwrap();

    let files = names(dir.path());
    assert!(files.contains(&format!("checkpoint.{cut:08}")), "{files:?}");
    for f in &files {
        if let Ok(n) = f.parse::<u64>() {
            assert!(n >= cut, "segment {f} should be deleted: {files:?}");
        }
    }
    // Appends continue after a checkpoint.
    w.append(b"after checkpoint").unwrap();
    later.push(bytes("after checkpoint"));
    w.close().unwrap();

    let (got, report) = replay_all(dir.path());
    assert_eq!(got, [kept.clone(), later.clone()].concat());
    assert_eq!(report.checkpoint, Some(cut));
    assert_eq!(report.checkpoint_records, 3);
    assert_eq!(report.records, 3 + later.len() as u64);
    assert_eq!(report.truncated, None);

    // A second checkpoint replaces the first; the log reopened after it starts at the right number.
    let w = Wal::open(dir.path(), opts()).unwrap();
    let cut2 = w.cut_segment().unwrap();
    w.append(b"tail").unwrap();
    w.checkpoint(cut2, &mut vec![bytes("everything so far")].into_iter())
        .unwrap();
    w.close().unwrap();
    let files = names(dir.path());
    assert_eq!(
        files
            .iter()
            .filter(|f| f.starts_with("checkpoint."))
            .count(),
        1,
        "{files:?}"
    );
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, vec![bytes("everything so far"), bytes("tail")]);
    assert_eq!(report.checkpoint, Some(cut2));
}

#[test]
fn checkpoint_arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), opts()).unwrap();
    w.append(b"a").unwrap();
    let cur = w.current_segment();
    let err = w.checkpoint(cur + 1, &mut std::iter::empty()).unwrap_err();
    assert!(
        err.to_string().contains("would cover the open segment"),
        "{err}"
    );
    let cut = w.cut_segment().unwrap();
    w.checkpoint(cut, &mut std::iter::empty()).unwrap();
    let err = w.checkpoint(cut - 1, &mut std::iter::empty()).unwrap_err();
    assert!(
        err.to_string().contains("is older than checkpoint"),
        "{err}"
    );
    // The same number again overwrites atomically.
    w.checkpoint(cut, &mut vec![bytes("again")].into_iter())
        .unwrap();
    let too_big = vec![0u8; wal::MAX_RECORD_LEN + 1];
    let err = w
        .checkpoint(cut, &mut vec![too_big].into_iter())
        .unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    w.close().unwrap();
    // The failed checkpoint left no temp file and did not replace the good one.
    assert!(names(dir.path()).iter().all(|f| !f.ends_with(".tmp")));
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, vec![bytes("again")]);
    assert_eq!(report.checkpoint, Some(cut));
}

#[test]
fn crash_leftovers_are_ignored_then_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), opts()).unwrap();
    w.append(b"one").unwrap();
    let cut = w.cut_segment().unwrap();
    w.append(b"two").unwrap();
    // A crash while writing a checkpoint leaves a temp file...
    fs::write(
        dir.path().join(format!("checkpoint.{cut:08}.tmp")),
        b"half a checkpoint",
    )
    .unwrap();
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, vec![bytes("one"), bytes("two")]);
    assert_eq!(report.checkpoint, None);
    // ...and a crash after the rename, before deletion, leaves old segments that replay skips.
    w.checkpoint(cut, &mut vec![bytes("ckpt")].into_iter())
        .unwrap();
    assert!(names(dir.path()).iter().all(|f| !f.ends_with(".tmp")));
    fs::write(
        dir.path().join("00000000"),
        b"garbage that must not be read",
    )
    .unwrap();
    let (got, _) = replay_all(dir.path());
    assert_eq!(got, vec![bytes("ckpt"), bytes("two")]);
    // A damaged checkpoint is corruption, not a tail to truncate.
    let ckpt = dir.path().join(format!("checkpoint.{cut:08}"));
    let mut b = fs::read(&ckpt).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    fs::write(&ckpt, &b).unwrap();
    let err = wal::replay(dir.path(), &mut |_| Ok(())).unwrap_err();
    assert!(
        matches!(&err, eddy_storage::Error::Corruption { path, offset: 8, .. } if path == &ckpt),
        "{err:?}"
    );
    w.close().unwrap();
}
