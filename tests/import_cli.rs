//! `eddy import` backfills a data directory from each supported format.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::process::Command;

use eddy_storage::{Db, DbOptions, Matcher, Querier};

fn import(dir: &std::path::Path, format: &str, files: &[&std::path::Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["import", "--format", format, "--data-dir"])
        .arg(dir)
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn imports_text_influx_and_remote_write_into_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let prom = tmp.path().join("a.prom");
    std::fs::write(
        &prom,
        "# TYPE m gauge\nm{a=\"1\"} 1 1700000000000\nm{a=\"1\"} 2 1700000015000\n",
    )
    .unwrap();
    let lp = tmp.path().join("b.lp");
    std::fs::write(
        &lp,
        "cpu,host=h usage=0.5 1700000000000000000\ncpu,host=h usage=0.75 1700000015000000000\n",
    )
    .unwrap();
    let rw = tmp.path().join("c.bin");
    std::fs::write(
        &rw,
        support::remote_write_body(&[(vec![("__name__", "r")], vec![(1_700_000_000_000, 7.0)])]),
    )
    .unwrap();
    for (fmt, f) in [("prom", &prom), ("influx", &lp), ("remote-write", &rw)] {
        let out = import(&data, fmt, &[f]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{fmt}: {err}");
        assert!(
            err.contains("imported") && err.contains("blocks written"),
            "{err}"
        );
    }
    let db = Db::open(&data, DbOptions::default()).unwrap();
    assert!(!db.blocks().is_empty());
    let m = db
        .select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)
        .unwrap();
    assert_eq!(m[0].values, vec![1.0, 2.0]);
    let cpu = db
        .select(&[Matcher::equal("__name__", "cpu_usage")], 0, i64::MAX)
        .unwrap();
    assert_eq!(cpu[0].values, vec![0.5, 0.75]);
    let r = db
        .select(&[Matcher::equal("__name__", "r")], 0, i64::MAX)
        .unwrap();
    assert_eq!(r[0].values, vec![7.0]);
    // A malformed file fails with a message naming it.
    let bad = tmp.path().join("bad.prom");
    std::fs::write(&bad, "m{a=1} x\n").unwrap();
    drop(db);
    let out = import(&data, "prom", &[&bad]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.prom"));
}
