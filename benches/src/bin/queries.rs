//! `queries`: runs a file of PromQL range queries against a Prometheus-API server and prints,
//! per query, the median latency and a fingerprint of the normalised result.
//!
//! ```text
//! queries --url http://127.0.0.1:9090 --file benches/flink-dashboard.queries
//!         --end MS [--range 1h] [--step 60s] [--repeat 5] [--dump DIR]
//! ```
//! Start and end are aligned to the step so every server evaluates the same timestamps.
//! `nocache=1` is sent (VictoriaMetrics would otherwise answer repeats from its cache;
//! others ignore it). Output: TSV `name  median_ms  series  points  hash  error`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context};
use eddy_benches::args::Args;
use eddy_benches::http::{urlencode, Conn, Url};
use eddy_benches::queries::{fingerprint, parse_queries};

fn main() -> anyhow::Result<()> {
    let a = Args::from_env()?;
    let url = Url::parse(a.get("url").ok_or_else(|| anyhow!("--url is required"))?)?;
    let file = PathBuf::from(a.get("file").ok_or_else(|| anyhow!("--file is required"))?);
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    let qs = parse_queries(&text)?;
    let step = a.duration_ms("step", 60_000)?.max(1000) / 1000;
    let range = a.duration_ms("range", 3_600_000)? / 1000;
    let end_ms: i64 = a.num("end", eddy_benches::args::now_ms())?;
    let end = (end_ms / 1000).div_euclid(step) * step;
    let start = (end - range).div_euclid(step) * step;
    let repeat: usize = a.num::<usize>("repeat", 5)?.max(1);
    let dump = a.get("dump").map(PathBuf::from);
    if let Some(d) = &dump {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let base = url.path.trim_end_matches('/').to_string();
    let mut c = Conn::new(&url.addr);
    println!("name\tmedian_ms\tseries\tpoints\thash\terror");
    for q in &qs {
        let path = format!(
            "{base}/api/v1/query_range?query={}&start={start}&end={end}&step={step}&nocache=1",
            urlencode(&q.expr)
        );
        let mut times = Vec::with_capacity(repeat);
        let mut result = None;
        for _ in 0..repeat {
            let t = Instant::now();
            let r = c.request("GET", &path, &[], b"");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            match r {
                Ok((200, body)) => {
                    if result.is_none() {
                        result = Some(fingerprint(&body).map_err(|e| e.to_string()));
                    }
                }
                Ok((s, body)) => {
                    let msg = String::from_utf8_lossy(&body[..body.len().min(200)])
                        .replace(['\t', '\n'], " ");
                    result = Some(Err(format!("HTTP {s}: {msg}")));
                    break;
                }
                Err(e) => {
                    result = Some(Err(format!("transport: {e}")));
                    break;
                }
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        match result {
            Some(Ok(f)) => {
                if let Some(d) = &dump {
                    let p = d.join(format!("{}.txt", q.name));
                    std::fs::write(&p, &f.text)
                        .with_context(|| format!("write {}", p.display()))?;
                }
                println!(
                    "{}\t{median:.2}\t{}\t{}\t{:016x}\t",
                    q.name, f.series, f.points, f.hash
                );
            }
            Some(Err(e)) => println!("{}\t{median:.2}\t0\t0\t-\t{e}", q.name),
            None => println!("{}\t{median:.2}\t0\t0\t-\tno response", q.name),
        }
    }
    Ok(())
}
