//! Runs Prometheus's own promqltest files (`../shared/promqltest/*.test`, top level) against
//! eddy's engine over the in-memory store, plus eddy's Flink cases in `testdata/promqltest/`.
//! Prints failures and the summary; fails on a panic or when the pass count drops below the
//! floor measured when this test was written.

use std::path::{Path, PathBuf};

use eddy_query::promqltest::mem::MemStorage;
use eddy_query::promqltest::{run_paths, Summary};

/// Passes measured on the shared files; raise it when the engine improves.
const SHARED_PASS_FLOOR: usize = 1046;

/// Passes measured on the Prometheus 3.5 LTS copies (`v3.5.0/`, older syntax).
const V35_PASS_FLOOR: usize = 850;

fn shared_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        root.join("../shared/promqltest"),
        PathBuf::from("/work/shared/promqltest"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

fn run(paths: &[PathBuf]) -> (Summary, String) {
    let mut storage = MemStorage::new();
    let mut out = Vec::new();
    let summary = run_paths(paths, &mut storage, &mut out).expect("read test files");
    (summary, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn shared_prometheus_test_files() {
    let Some(dir) = shared_dir() else {
        eprintln!("shared promqltest files not found; skipping");
        return;
    };
    let (summary, out) = run(&[dir]);
    println!("{out}");
    assert_eq!(summary.panicked, 0, "evaluation panicked");
    assert!(
        summary.passed >= SHARED_PASS_FLOOR,
        "pass count {} fell below the floor {SHARED_PASS_FLOOR}",
        summary.passed
    );
}

#[test]
fn prometheus_v3_5_test_files() {
    let Some(dir) = shared_dir() else { return };
    let (summary, out) = run(&[dir.join("v3.5.0")]);
    println!("{out}");
    assert_eq!(summary.panicked, 0, "evaluation panicked");
    assert!(
        summary.passed >= V35_PASS_FLOOR,
        "pass count {} fell below {V35_PASS_FLOOR}",
        summary.passed
    );
}

#[test]
fn flink_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/promqltest");
    let (summary, out) = run(&[dir]);
    println!("{out}");
    assert_eq!(summary.panicked, 0);
    assert_eq!(summary.failed, 0, "flink cases failed:\n{out}");
    assert!(summary.passed >= 10, "{summary:?}");
}

/// Ad-hoc runs: `EDDY_PROMQLTEST_FILES=a.test:b.test cargo test -p eddy-query --test
/// promqltest_shared adhoc -- --nocapture`.
#[test]
fn adhoc_files() {
    let Some(files) = std::env::var_os("EDDY_PROMQLTEST_FILES") else {
        return;
    };
    let paths: Vec<PathBuf> = std::env::split_paths(&files).collect();
    let (_, out) = run(&paths);
    println!("{out}");
}
