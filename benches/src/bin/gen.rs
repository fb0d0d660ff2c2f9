//! `gen`: writes a Flink workload as pre-encoded requests to a file, plus `<file>.meta`, for
//! `send` to replay: remote_write (snappy protobuf, the default) or, with `--format influx`,
//! InfluxDB line protocol as Flink's InfluxdbReporter writes it.
//!
//! ```text
//! gen --out FILE [--tms N] [--hours H] [--interval 15s] [--restart-every 2h] [--seed S]
//!     [--end now|MS] [--batch-samples N] [--lanes L] [--format remote_write|influx]
//! ```
//! The data ends at `--end` (default: now), because remote_write receivers reject samples far
//! behind their head. `--batch-samples 0` (default) writes one request per TaskManager scrape
//! (~2,200 samples); larger values pack several scrapes of one lane into one request.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context};
use eddy_benches::args::{self, Args};
use eddy_benches::flink::{Scrape, Workload};
use eddy_benches::requests::{write_meta, BodyFormat, RequestWriter};

fn main() -> anyhow::Result<()> {
    let a = Args::from_env()?;
    let cfg = args::workload(&a, 8, 1.0)?;
    let out = PathBuf::from(
        a.get("out")
            .ok_or_else(|| anyhow!("--out FILE is required"))?,
    );
    let lanes: usize = a.num("lanes", 4)?;
    let batch: usize = a.num("batch-samples", 0)?;
    let f = File::create(&out).with_context(|| format!("create {}", out.display()))?;
    let format = BodyFormat::parse(a.get("format").unwrap_or("remote_write"))?;
    let mut w =
        RequestWriter::new(BufWriter::with_capacity(1 << 20, f), lanes, batch)?.with_format(format);
    let began = Instant::now();
    let mut wl = Workload::new(cfg.clone());
    let mut s = Scrape::default();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    while wl.next_scrape(&mut s) {
        first = first.min(s.ts);
        last = last.max(s.ts);
        w.add(&s)?;
    }
    w.flush()?;
    let (requests, samples, bytes) = (w.requests, w.samples, w.bytes);
    w.finish()?;
    write_meta(
        &out,
        &[
            ("tms", cfg.tms.to_string()),
            ("hours", cfg.hours.to_string()),
            ("interval_ms", cfg.interval_ms.to_string()),
            ("restart_every_ms", cfg.restart_every_ms.to_string()),
            ("seed", cfg.seed.to_string()),
            ("start_ms", first.to_string()),
            ("end_ms", last.to_string()),
            ("active_series", cfg.active_series().to_string()),
            ("samples", samples.to_string()),
            ("requests", requests.to_string()),
            ("lanes", lanes.to_string()),
            ("bytes", bytes.to_string()),
            ("format", format.name().to_string()),
        ],
    )?;
    eprintln!(
        "gen: {requests} requests, {samples} samples, {} active series, {:.1} MiB ({:.1} B/sample) in {:.1} s -> {}",
        cfg.active_series(),
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / samples.max(1) as f64,
        began.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
