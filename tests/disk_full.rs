//! A full disk under the real server: runs the `eddy` binary with a small file-size limit
//! (`RLIMIT_FSIZE`, so the WAL's writes fail with `EFBIG` as they would with `ENOSPC`), writes
//! until a request is refused, and checks that the refusal is a 503 naming the problem, that the
//! server stays up, that the refused request succeeds once space returns (the limit is raised
//! from outside with `prlimit`), and that after a `kill -9` every acknowledged sample replays —
//! including those of the retried request and of the series it created while the disk was full.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eddy_storage::{Db, DbOptions, Matcher, Querier};

/// The WAL segment may grow to this size; the first write past it fails.
const FILE_LIMIT: u64 = 48 * 1024;
const SERIES: usize = 20;
const BASE_MS: i64 = 1_700_000_000_000;

fn set_file_limit(pid: libc::pid_t, bytes: Option<u64>) {
    // SAFETY: prlimit on a child of this process with a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(
            libc::prlimit(pid, libc::RLIMIT_FSIZE, std::ptr::null(), &mut lim),
            0
        );
        lim.rlim_cur = bytes.map_or(lim.rlim_max, |b| b as libc::rlim_t);
        assert_eq!(
            libc::prlimit(pid, libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()),
            0
        );
    }
}

fn start_limited(dir: &Path, port: u16) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eddy"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .args(["--storage.wal.sync", "always"])
        .env("EDDY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Only the soft limit moves; the hard limit stays (raising it needs privileges).
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = (FILE_LIMIT as libc::rlim_t).min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("start eddy")
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/-/ready", b"").0 == 200
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("eddy exited during start-up: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("eddy did not become ready within 60 s");
}

/// Request `n`: the `SERIES` steady series plus one series seen for the first time, all at
/// one timestamp. Returns the body and its samples keyed by (series label, timestamp).
fn request(n: i64) -> (Vec<u8>, BTreeMap<(String, i64), f64>) {
    let ts = BASE_MS + n * 1000;
    let mut names: Vec<String> = (0..SERIES).map(|i| format!("steady-{i}")).collect();
    names.push(format!("new-{n}"));
    let mut samples = BTreeMap::new();
    let specs: Vec<support::SeriesSpec<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let v = (n * 7 + i as i64) as f64 + 0.5;
            samples.insert((name.clone(), ts), v);
            (
                vec![("__name__", "disk_probe"), ("series", name.as_str())],
                vec![(ts, v)],
            )
        })
        .collect();
    (support::remote_write_body(&specs), samples)
}

#[test]
fn a_full_disk_refuses_writes_with_503_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut child = start_limited(dir.path(), port);
    wait_ready(port, &mut child);
    let mut acked: BTreeMap<(String, i64), f64> = BTreeMap::new();

    // Write until the WAL cannot grow.
    let mut n = 0;
    let (refused_body, refused_samples, status, message) = loop {
        assert!(n < 10_000, "the WAL never hit the {FILE_LIMIT}-byte limit");
        let (body, samples) = request(n);
        let (status, message) = http(port, "POST", "/api/v1/write", &body);
        n += 1;
        if status == 204 {
            acked.extend(samples);
        } else {
            break (body, samples, status, message);
        }
    };
    assert!(
        acked.len() > 10 * SERIES,
        "only {} samples acknowledged",
        acked.len()
    );
    assert_eq!(status, 503, "{message}");
    assert!(
        message.contains("storage unavailable") && message.contains("WAL"),
        "the refusal should name the failed WAL write: {message}"
    );
    // Still full: the retry is refused the same way, and the server keeps serving.
    assert_eq!(http(port, "POST", "/api/v1/write", &refused_body).0, 503);
    assert_eq!(http(port, "GET", "/-/healthy", b"").0, 200);

    // Space returns: the retry is accepted, and so are later samples of the series that the
    // refused request created.
    set_file_limit(child.id() as libc::pid_t, None);
    let (status, message) = http(port, "POST", "/api/v1/write", &refused_body);
    assert_eq!(status, 204, "{message}");
    acked.extend(refused_samples);
    for _ in 0..3 {
        let (body, samples) = request(n);
        assert_eq!(http(port, "POST", "/api/v1/write", &body).0, 204);
        acked.extend(samples);
        n += 1;
    }

    child.kill().expect("kill -9");
    child.wait().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    let got = db
        .select(
            &[Matcher::equal("__name__", "disk_probe")],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    let mut stored: BTreeMap<(String, i64), f64> = BTreeMap::new();
    for s in &got {
        let name = s.labels.get("series").unwrap().to_string();
        for (t, v) in s.timestamps.iter().zip(&s.values) {
            stored.insert((name.clone(), *t), *v);
        }
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|(k, v)| stored.get(*k) != Some(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged samples missing after replay, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}
