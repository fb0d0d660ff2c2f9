//! `eddy promqltest` on Prometheus's own test files (from `../shared/promqltest`) and ours
//! (`testdata/promqltest`), through the real storage engine. The pass count may only go up.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

/// Evals of `../shared/promqltest/*.test` that passed when this floor was last raised.
const SHARED_PASS_FLOOR: usize = 1046;

fn run(path: &str) -> (usize, usize, usize, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["promqltest", path])
        .output()
        .expect("run eddy promqltest");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let nums: Vec<usize> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 3, "summary line missing: {last:?}\n{stdout}");
    (nums[0], nums[1], nums[2], stdout)
}

#[test]
fn prometheus_test_files_pass_at_least_the_floor() {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/promqltest");
    assert!(
        std::path::Path::new(shared).is_dir(),
        "../shared/promqltest is missing beside the checkout"
    );
    let (passed, failed, skipped, out) = run(shared);
    println!("{out}");
    assert!(
        passed >= SHARED_PASS_FLOOR,
        "{passed} passed, {failed} failed, {skipped} skipped; floor {SHARED_PASS_FLOOR}"
    );
}

#[test]
fn our_flink_test_files_all_pass() {
    let ours = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/promqltest");
    let (passed, failed, _, out) = run(ours);
    assert!(passed > 0 && failed == 0, "{out}");
}
