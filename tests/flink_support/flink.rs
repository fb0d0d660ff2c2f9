//! A real Apache Flink 2.3 for tests: checks the tools it needs (java, javac, python3 + pip,
//! unzip), runs `run-flink.sh` (beside this file) to download and start a one-JVM MiniCluster
//! with the probe job, and stops it when dropped — also when the test panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The script that downloads, starts and stops Flink.
pub(crate) fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flink_support/run-flink.sh")
}

/// Where Flink is unpacked (≈ 700 MB, kept between runs): `$FLINK_WORK`, else
/// `target/flink-work`.
pub(crate) fn work_dir() -> PathBuf {
    match std::env::var_os("FLINK_WORK") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/flink-work"),
    }
}

/// Fails the test (never skips it) when a tool is missing, then runs `run-flink.sh setup`, which
/// downloads Flink from PyPI the first time.
pub(crate) fn preflight() {
    let tools: [(&str, &[&str], &str); 5] = [
        ("java", &["-version"], "a Java 17+ runtime"),
        (
            "javac",
            &["-version"],
            "a JDK 17+ (javac compiles the probe job)",
        ),
        ("jar", &["--version"], "a JDK 17+ (jar packs the probe job)"),
        (
            "python3",
            &["-m", "pip", "--version"],
            "python3 with pip (downloads Flink from PyPI)",
        ),
        ("unzip", &["-v"], "unzip (unpacks the Flink wheels)"),
    ];
    for (tool, args, what) in tools {
        let ok = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map(|o| o.status.success());
        match ok {
            Ok(true) => {}
            Ok(false) => panic!(
                "real-Flink test: `{tool} {}` failed; it needs {what}",
                args.join(" ")
            ),
            Err(e) => panic!("real-Flink test: cannot run `{tool}` ({e}); it needs {what}"),
        }
    }
    let work = work_dir();
    let t = Instant::now();
    let out = Command::new("bash")
        .arg(script())
        .arg("setup")
        .env("FLINK_WORK", &work)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("real-Flink test: cannot run run-flink.sh setup: {e}"));
    assert!(
        out.status.success(),
        "real-Flink test: `run-flink.sh setup` failed (downloading apache-flink==2.3.0 and \
         apache-flink-libraries==2.3.0 from PyPI into {}, then compiling the probe job): \
         {}\n{}",
        work.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "flink setup ready in {:.1?} ({})",
        t.elapsed(),
        work.display()
    );
}

/// A running MiniCluster; stopped on drop.
#[derive(Debug)]
pub(crate) struct Flink {
    work: PathBuf,
    /// When `start` returned.
    pub(crate) started: Instant,
}

impl Flink {
    /// Starts Flink with `reporters` (comma list for run-flink.sh) and extra environment.
    pub(crate) fn start(reporters: &str, env: &[(&str, String)]) -> Flink {
        let work = work_dir();
        // A previous run that was killed may have left its JVM behind.
        run(&work, &["stop"], &[]);
        let mut args = vec!["start", reporters];
        args.retain(|a| !a.is_empty());
        let out = run(&work, &args, env);
        assert!(
            out.0,
            "real-Flink test: `run-flink.sh start {reporters}` failed: {}",
            out.1
        );
        Flink {
            work,
            started: Instant::now(),
        }
    }

    /// Flink's console log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.work.join("flink.log")).unwrap_or_default()
    }

    /// The last `n` lines of the log, for failure messages.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The port Flink's Prometheus reporter picked from 9249-9260 (read from its log line
    /// "Started PrometheusReporter HTTP server on port N."), waiting up to `wait`.
    pub(crate) fn prometheus_port(&self, wait: Duration) -> Option<u16> {
        let deadline = Instant::now() + wait;
        loop {
            let log = self.log();
            let port = log.lines().find_map(|l| {
                let rest = l
                    .split("Started PrometheusReporter HTTP server on port ")
                    .nth(1)?;
                rest.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            });
            if port.is_some() || Instant::now() > deadline {
                return port;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Flink {
    fn drop(&mut self) {
        run(&self.work, &["stop"], &[]);
    }
}

fn run(work: &Path, args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .args(args)
        .env("FLINK_WORK", work)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    match cmd.output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}
