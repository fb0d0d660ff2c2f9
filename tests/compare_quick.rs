//! CI smoke test of the side-by-side benchmark: `benches/compare.sh --quick` on the debug
//! binaries, against real VictoriaMetrics and Prometheus on free loopback ports. It checks that
//! the suite works end to end (every server takes every sample, every query answers, eddy's
//! results equal Prometheus's), not how fast anything is.
//!
//! Needs Debian's `victoria-metrics` and `prometheus` (`.ci/run` installs them), plus `gen`,
//! `send` and `queries` built beside the `eddy` binary, which `cargo test --workspace` does.
//! When the installed Prometheus is older than 2.52 (bookworm's 2.42), `compare.sh` unpacks
//! Debian trixie's 2.53 into `~/.cache/eddy-bench` and takes its results as the reference.
//! Fails, never skips, when any of them is missing.
#![allow(clippy::unwrap_used)] // Tests fail loudly on any unexpected error.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

fn require_on_path(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is required by this test; install it with `apt-get install -y {package}`"
    );
}

fn bench_bin_dir() -> PathBuf {
    let eddy = PathBuf::from(env!("CARGO_BIN_EXE_eddy"));
    let dir = eddy.parent().unwrap().to_path_buf();
    for tool in ["gen", "send", "queries"] {
        assert!(
            dir.join(tool).is_file(),
            "{} is missing: build the benchmark tools with `cargo test --workspace` \
             (or `cargo build -p eddy-benches --bins`)",
            dir.join(tool).display()
        );
    }
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `results.tsv`: system → key → value.
fn read_results(work: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(work.join("results.tsv")).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.splitn(3, '\t');
        let (sys, key, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or(""));
        out.entry(sys.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
    }
    out
}

/// `queries-<system>.tsv`: query name → (series, result hash, error).
fn read_queries(work: &Path, system: &str) -> BTreeMap<String, (u64, String, String)> {
    let text = std::fs::read_to_string(work.join(format!("queries-{system}.tsv"))).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert!(f.len() >= 5, "short line in queries-{system}.tsv: {line:?}");
            (
                f[0].to_string(),
                (
                    f[2].parse().unwrap(),
                    f[4].to_string(),
                    f.get(5).unwrap_or(&"").to_string(),
                ),
            )
        })
        .collect()
}

fn dashboard_queries(root: &Path) -> usize {
    let listed = std::fs::read_to_string(root.join("benches/flink-dashboard.queries"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert!(listed >= 10, "{listed} dashboard queries");
    listed
}

/// Runs `compare.sh --quick <args>` on free ports; returns its work dir and stdout.
fn run_compare_quick(args: &[&str]) -> (tempfile::TempDir, String) {
    require_on_path("victoria-metrics", "victoria-metrics");
    require_on_path("prometheus", "prometheus");
    let bins = bench_bin_dir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(root.join("benches/compare.sh"))
        .arg("--quick")
        .args(args)
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--work")
        .arg(work.path())
        .env("EDDY_PORT", free_port().to_string())
        .env("VM_PORT", free_port().to_string())
        .env("PROM_PORT", free_port().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "compare.sh failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (work, stdout)
}

#[test]
fn compare_quick_runs_all_three_servers_and_eddy_matches_prometheus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (work, stdout) = run_compare_quick(&[]);
    assert!(stdout.contains("| metric | eddy | vm | prom |"), "{stdout}");

    let results = read_results(work.path());
    let meta = std::fs::read_to_string(work.path().join("requests.bin.meta")).unwrap();
    let samples: u64 = meta
        .lines()
        .find_map(|l| l.strip_prefix("samples="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(samples > 400_000, "quick workload has {samples} samples");
    for sys in ["eddy", "vm", "prom"] {
        let r = &results[sys];
        assert_eq!(r["rejected"], "0", "{sys} rejected samples: {r:?}");
        let rate: f64 = r["ingest_rate"].parse().unwrap();
        let cpu: f64 = r["cpu_s_per_m"].parse().unwrap();
        let disk: u64 = r["disk_bytes"].parse().unwrap();
        assert!(
            rate > 0.0 && cpu > 0.0 && disk > 0,
            "{sys}: no ingest or nothing on disk: {r:?}"
        );
        let part = |k: &str| r[k].parse::<f64>().unwrap();
        let whole = part("b_per_sample");
        let (samples_part, index_part) = (part("samples_b_per_sample"), part("index_b_per_sample"));
        assert!(
            samples_part > 0.0
                && index_part > 0.0
                && (samples_part + index_part - whole).abs() < 0.01,
            "{sys}: samples and index do not add up to the bytes per sample: {r:?}"
        );
    }

    let prom = read_queries(work.path(), "prom");
    let eddy = read_queries(work.path(), "eddy");
    let vm = read_queries(work.path(), "vm");
    let listed = dashboard_queries(root);
    assert_eq!(prom.len(), listed, "dashboard queries run: {prom:?}");
    for (name, (series, hash, error)) in &prom {
        assert!(
            error.is_empty() && hash != "-" && *series > 0,
            "Prometheus answered {name} with {series} series, error {error:?}"
        );
        let (e_series, e_hash, e_error) = &eddy[name];
        assert_eq!(
            (e_hash, e_error.as_str()),
            (hash, ""),
            "{name}: eddy's result ({e_series} series) differs from Prometheus's ({series})"
        );
        let (_, vm_hash, vm_error) = &vm[name];
        assert!(
            vm_error.is_empty() && vm_hash != "-",
            "VictoriaMetrics failed {name}: {vm_error}"
        );
    }
}

/// The mechanisms `--full` uses, at the quick size: requests streamed from `gen` through a
/// FIFO, and the reference results from Prometheus reading eddy through `remote_read`.
#[test]
fn compare_quick_streamed_with_prometheus_reading_eddy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (work, stdout) =
        run_compare_quick(&["--stream", "--systems", "eddy", "--prom-ref", "remote_read"]);
    assert!(stdout.contains("| metric | eddy |"), "{stdout}");
    assert!(stdout.contains("through remote_read"), "{stdout}");
    let results = read_results(work.path());
    let eddy_results = &results["eddy"];
    assert_eq!(eddy_results["rejected"], "0", "{eddy_results:?}");
    let gen_busy: f64 = eddy_results["gen_busy"].parse().unwrap();
    assert!(gen_busy > 0.0, "{eddy_results:?}");

    let reference = read_queries(work.path(), "prom");
    let eddy = read_queries(work.path(), "eddy");
    assert_eq!(reference.len(), dashboard_queries(root), "{reference:?}");
    for (name, (series, hash, error)) in &reference {
        assert!(
            error.is_empty() && hash != "-" && *series > 0,
            "Prometheus over remote_read answered {name} with {series} series, error {error:?}"
        );
        assert_eq!(
            &eddy[name].1, hash,
            "{name}: eddy differs from the reference"
        );
    }
}
