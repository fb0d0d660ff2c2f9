//! `send`: replays a request file written by `gen` over several keep-alive connections and
//! reports acknowledged samples per second. The headers follow the file's format (its
//! `.meta`): remote_write to e.g. `/api/v1/write`, line protocol to e.g. `/write`.
//!
//! ```text
//! send --url http://127.0.0.1:9201/api/v1/write --file FILE [--connections C]
//! ```
//! One reader thread streams the file; record lane `l` goes to connection `l % C`, so each
//! series' samples arrive in order. Prints a human line and a `RESULT key=value…` line.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{anyhow, Context};
use eddy_benches::args::Args;
use eddy_benches::http::{Conn, Url};
use eddy_benches::requests::{read_magic, read_meta, read_record, BodyFormat, Record};

#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    acked: u64,
    errors: u64,
    failed_samples: u64,
    first_error: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::from_env()?;
    let url = Url::parse(a.get("url").ok_or_else(|| anyhow!("--url is required"))?)?;
    let file = PathBuf::from(a.get("file").ok_or_else(|| anyhow!("--file is required"))?);
    let conns: usize = a.num::<usize>("connections", 4)?.max(1);
    let mut r = BufReader::with_capacity(
        4 << 20,
        File::open(&file).with_context(|| format!("open {}", file.display()))?,
    );
    read_magic(&mut r)?;
    // Files from before the format key are remote_write.
    let format = match read_meta(&file) {
        Ok(meta) => BodyFormat::parse(meta.get("format").map_or("remote_write", String::as_str))?,
        Err(_) => BodyFormat::RemoteWrite,
    };
    let began = Instant::now();
    let mut txs = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (tx, rx) = sync_channel::<Record>(16);
        txs.push(tx);
        let url = url.clone();
        workers.push(std::thread::spawn(move || {
            let mut c = Conn::new(&url.addr);
            let mut t = Tally::default();
            let headers = format.headers();
            for rec in rx {
                t.requests += 1;
                match c.request("POST", &url.path, headers, &rec.body) {
                    Ok((s, _)) if (200..300).contains(&s) => t.acked += u64::from(rec.samples),
                    Ok((s, body)) => {
                        t.errors += 1;
                        t.failed_samples += u64::from(rec.samples);
                        t.first_error.get_or_insert_with(|| {
                            format!(
                                "HTTP {s}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            )
                        });
                    }
                    Err(e) => {
                        t.errors += 1;
                        t.failed_samples += u64::from(rec.samples);
                        t.first_error
                            .get_or_insert_with(|| format!("transport: {e}"));
                    }
                }
            }
            t
        }));
    }
    let mut rec = Record::default();
    while read_record(&mut r, &mut rec)? {
        let lane = rec.lane as usize % conns;
        if txs[lane].send(std::mem::take(&mut rec)).is_err() {
            break;
        }
    }
    drop(txs);
    let mut all = Tally::default();
    for w in workers {
        let t = w.join().map_err(|_| anyhow!("sender thread panicked"))?;
        all.requests += t.requests;
        all.acked += t.acked;
        all.errors += t.errors;
        all.failed_samples += t.failed_samples;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    eprintln!(
        "send: {} requests, {} samples acknowledged in {secs:.2} s = {:.0} samples/s; {} failed requests ({} samples){}",
        all.requests,
        all.acked,
        all.acked as f64 / secs,
        all.errors,
        all.failed_samples,
        all.first_error.as_deref().map(|e| format!("; first error: {e}")).unwrap_or_default()
    );
    println!(
        "RESULT requests={} acked={} errors={} failed_samples={} secs={secs:.3} rate={:.0}",
        all.requests,
        all.acked,
        all.errors,
        all.failed_samples,
        all.acked as f64 / secs
    );
    Ok(())
}
