//! `query_profile`: runs dashboard range queries in process, against a copy of a server's data
//! directory, so a profiler sees only the query (no HTTP, no server). For instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='eddy_query::engine::Engine::range*' \
//!   target/release/query_profile --data /tmp/wtq-data --file benches/flink-dashboard.queries \
//!   --name one_job_subtasks --end 1795640204809 --range 1h --step 60s --repeat 1
//! ```
//! `--name` picks one query of the file (default: all); start and end are aligned to the step
//! as `queries` does. Prints TSV `name  median_ms  series  points  hash` (the hash covers
//! labels, timestamps and value bits, to check that a change leaves answers alone).

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{anyhow, Context};
use eddy_benches::args::Args;
use eddy_benches::queries::parse_queries;
use eddy_query::engine::{Engine, EngineOptions};
use eddy_query::parser::parse;
use eddy_query::value::Value;
use eddy_storage::{Db, DbOptions};

fn main() -> anyhow::Result<()> {
    let a = Args::from_env()?;
    let data = PathBuf::from(a.get("data").ok_or_else(|| anyhow!("--data is required"))?);
    let file = PathBuf::from(a.get("file").ok_or_else(|| anyhow!("--file is required"))?);
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    let mut qs = parse_queries(&text)?;
    if let Some(n) = a.get("name") {
        qs.retain(|q| q.name == n);
        if qs.is_empty() {
            anyhow::bail!("no query named {n:?} in {}", file.display());
        }
    }
    let step = a.duration_ms("step", 60_000)?.max(1000);
    let range = a.duration_ms("range", 3_600_000)?;
    let end_ms: i64 = a.num("end", eddy_benches::args::now_ms())?;
    let end = end_ms.div_euclid(step) * step;
    let start = (end - range).div_euclid(step) * step;
    let repeat: usize = a.num::<usize>("repeat", 5)?.max(1);
    let threads: usize = a.num("threads", 0)?;

    let db = Db::open(&data, DbOptions::default())
        .with_context(|| format!("open {}", data.display()))?;
    let engine = Engine::new(EngineOptions {
        threads,
        ..Default::default()
    });
    let cancel = AtomicBool::new(false);
    println!("name\tmedian_ms\tseries\tpoints\thash");
    for q in &qs {
        let expr = parse(&q.expr).with_context(|| format!("parse {}", q.name))?;
        let mut times = Vec::with_capacity(repeat);
        let mut summary = (0, 0, 0u64);
        for _ in 0..repeat {
            let t = Instant::now();
            let r = engine
                .range(&db, &expr, start, end, step, &cancel)
                .with_context(|| format!("run {}", q.name))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            summary = fingerprint(&r.value);
        }
        times.sort_by(f64::total_cmp);
        let (series, points, hash) = summary;
        println!(
            "{}\t{:.3}\t{series}\t{points}\t{hash:016x}",
            q.name,
            times[times.len() / 2]
        );
    }
    Ok(())
}

/// Series count, point count and a hash of a range result.
fn fingerprint(v: &Value) -> (usize, usize, u64) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let Value::Matrix(m) = v else {
        return (0, 0, 0);
    };
    let mut points = 0;
    for s in m {
        s.labels.hash(&mut h);
        for &(t, v) in &s.points {
            t.hash(&mut h);
            v.to_bits().hash(&mut h);
        }
        points += s.points.len();
    }
    (m.len(), points, h.finish())
}
