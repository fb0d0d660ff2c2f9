//! `storage_bench`: the in-process storage benchmark (see `eddy_benches::storage_bench`).
//!
//! ```text
//! storage_bench [--quick | --full] [--tms N] [--hours H] [--interval 15s] [--restart-every 2h]
//!               [--seed S] [--threads T] [--dir DIR] [--keep] [--keyed]
//! ```
//! `--quick`: 8 TMs × 20 min (~17 k series, seconds). `--full`: 460 TMs × 6.25 h (~1.0 M active
//! series, 1.51 G samples; 6.25 h so that one whole 6 h compaction window is closed).
//! The default is `--quick`.

use std::path::PathBuf;

use anyhow::Context;
use eddy_benches::args::{self, Args};
use eddy_benches::storage_bench::{run, Options};

fn main() -> anyhow::Result<()> {
    eddy::allocator::configure_malloc();
    let a = Args::from_env()?;
    let (tms, hours) = if a.flag("full") {
        (460, 6.25)
    } else {
        (8, 1.0 / 3.0)
    };
    let mut cfg = args::workload(&a, tms, hours)?;
    if a.get("end").is_none() {
        // Fixed end so runs are comparable; only the remote_write tools need "now".
        cfg.end_ms = eddy_benches::flink::Config::default().end_ms;
    }
    let threads = a.num(
        "threads",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    )?;
    let (dir, _tmp) = match a.get("dir") {
        Some(d) => (PathBuf::from(d), None),
        None => {
            let t = tempfile_dir()?;
            (t.clone(), Some(RemoveOnDrop(t, !a.flag("keep"))))
        }
    };
    eprintln!(
        "storage_bench: {} TMs x {} h at {} ms = {} active series, {} samples, {threads} threads, dir {}",
        cfg.tms,
        cfg.hours,
        cfg.interval_ms,
        cfg.active_series(),
        cfg.total_samples(),
        dir.display()
    );
    let mut opts = Options::new(cfg, threads, dir);
    opts.keyed = a.flag("keyed");
    let rep = run(&opts)?;
    println!("{rep}");
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir().join(format!("eddy-storage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    Ok(base)
}

struct RemoveOnDrop(PathBuf, bool);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
