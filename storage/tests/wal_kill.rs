//! An acknowledged record survives `kill -9`: a child process appends and reports each
//! acknowledgement, the parent kills it mid-stream with SIGKILL, then replays.
//!
//! The child is this test binary run again with the ignored `child_appends_until_killed` test.

#![allow(clippy::unwrap_used)] // Test helpers outside #[test] fns may unwrap too.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use eddy_storage::wal::{self, SyncPolicy, Wal, WalOptions};

const DIR_VAR: &str = "EDDY_WAL_KILL_TEST_DIR";
const POLICY_VAR: &str = "EDDY_WAL_KILL_TEST_POLICY";

fn record(i: u64) -> Vec<u8> {
    let mut r = i.to_le_bytes().to_vec();
    r.resize(8 + (i % 500) as usize, (i % 251) as u8);
    r
}

/// Runs only as the child: appends until killed, printing `ACK i` after each append returns.
#[test]
#[ignore]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let sync = match std::env::var(POLICY_VAR).unwrap().as_str() {
        "never" => SyncPolicy::Never,
        _ => SyncPolicy::Interval(Duration::from_secs(1)),
    };
    let w = Wal::open(
        Path::new(&dir),
        WalOptions {
            segment_size: 64 << 10,
            sync,
        },
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        w.append(&record(i)).unwrap();
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

fn kill_child_and_replay(policy: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appends_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(DIR_VAR, dir.path())
        .env(POLICY_VAR, policy)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = None;
    for line in lines.by_ref() {
        if let Some(i) = line.unwrap().strip_prefix("ACK ") {
            acked = Some(i.parse::<u64>().unwrap());
            if acked >= Some(3000) {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no close, no fsync.
                           // Acknowledgements already in the pipe count too.
    for line in lines {
        if let Some(i) = line.unwrap().strip_prefix("ACK ") {
            acked = Some(i.parse().unwrap());
        }
    }
    child.wait().unwrap();
    let acked = acked.expect("the child acknowledged nothing");

    let mut next = 0u64;
    let report = wal::replay(dir.path(), &mut |r| {
        assert_eq!(r, record(next), "record {next}");
        next += 1;
        Ok(())
    })
    .unwrap();
    // Every acknowledged record, in order; at most one more that was written but not yet acked.
    assert!(
        next == acked + 1 || next == acked + 2,
        "acked 0..={acked}, replayed {next}: {report:?}"
    );
    assert!(report.segments > 1, "{report:?}");
}

#[test]
fn acknowledged_records_survive_kill_9_interval() {
    kill_child_and_replay("interval");
}

#[test]
fn acknowledged_records_survive_kill_9_never() {
    kill_child_and_replay("never");
}
