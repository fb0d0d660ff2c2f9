//! Test support for the scraper: a scripted HTTP/1.1 server on 127.0.0.1 and a sink that
//! keeps every batch as owned rows.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_ingest::scrape::ScrapeSink;
use eddy_storage::{is_stale_nan, AppendOutcome, WriteBatch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body; gzip-compressed on the wire when `gzip`.
    Body { body: String, gzip: bool },
    /// This status with an empty body.
    Status(u16),
    /// Wait, then answer with the inner reply.
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn text(body: &str) -> Reply {
        Reply::Body {
            body: body.to_string(),
            gzip: false,
        }
    }
}

/// A server that answers requests with a script of replies; the last one repeats.
#[derive(Debug, Clone)]
pub struct Server {
    pub addr: String,
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// Request heads received, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let s = Server {
            addr,
            script: Arc::new(Mutex::new(script.into())),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        let srv = s.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let srv = srv.clone();
                tokio::spawn(async move { srv.serve(conn).await });
            }
        });
        s
    }

    /// Replaces the script.
    pub fn set_script(&self, script: Vec<Reply>) {
        *self.script.lock().expect("lock") = script.into();
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    fn next_reply(&self) -> Reply {
        let mut s = self.script.lock().expect("lock");
        if s.len() > 1 {
            s.pop_front().expect("non-empty")
        } else {
            s.front().cloned().unwrap_or(Reply::Status(404))
        }
    }

    async fn serve(&self, mut conn: TcpStream) {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
                let mut chunk = [0u8; 4096];
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            buf.drain(..head_end);
            self.requests.lock().expect("lock").push(head);
            let mut reply = self.next_reply();
            while let Reply::Delay(d, inner) = reply {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            let (status, body, gzip) = match reply {
                Reply::Body { body, gzip } => (200, body.into_bytes(), gzip),
                Reply::Status(s) => (s, Vec::new(), false),
                Reply::Delay(..) => unreachable!(),
            };
            let body = if gzip { gzip_bytes(&body) } else { body };
            let mut resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n",
                body.len()
            );
            if gzip {
                resp.push_str("Content-Encoding: gzip\r\n");
            }
            resp.push_str("\r\n");
            let mut out = resp.into_bytes();
            out.extend_from_slice(&body);
            if conn.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// One stored sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub labels: BTreeMap<String, String>,
    pub ts: i64,
    pub value: f64,
}

impl Row {
    pub fn name(&self) -> &str {
        self.labels.get("__name__").map_or("", |s| s.as_str())
    }
    pub fn stale(&self) -> bool {
        is_stale_nan(self.value)
    }
    pub fn get(&self, l: &str) -> Option<&str> {
        self.labels.get(l).map(|s| s.as_str())
    }
}

/// Keeps every batch the scraper writes.
#[derive(Debug, Default)]
pub struct Collect {
    pub batches: Mutex<Vec<Vec<Row>>>,
}

impl ScrapeSink for Collect {
    fn append(&self, batch: &mut WriteBatch<'_>) -> Result<AppendOutcome, String> {
        let mut rows = Vec::new();
        for i in 0..batch.series.len() {
            let labels: BTreeMap<String, String> = batch
                .series_labels(i)
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let (ts, vs) = batch.series_samples(i);
            for (t, v) in ts.iter().zip(vs) {
                rows.push(Row {
                    labels: labels.clone(),
                    ts: *t,
                    value: *v,
                });
            }
        }
        let n = rows.len() as u64;
        self.batches.lock().expect("lock").push(rows);
        Ok(AppendOutcome {
            accepted: n,
            ..Default::default()
        })
    }
}

impl Collect {
    pub fn batches(&self) -> Vec<Vec<Row>> {
        self.batches.lock().expect("lock").clone()
    }

    /// Batches from the target with this instance label (by its `up` row).
    pub fn batches_of(&self, instance: &str) -> Vec<Vec<Row>> {
        self.batches()
            .into_iter()
            .filter(|b| {
                b.iter()
                    .any(|r| r.name() == "up" && r.get("instance") == Some(instance))
            })
            .collect()
    }

    /// Waits until `f` holds for the collected batches, at most 10 s.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&[Vec<Row>]) -> bool) {
        for _ in 0..1000 {
            if f(&self.batches.lock().expect("lock")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}; batches: {:#?}", self.batches().len());
    }
}

/// The `up` value of a batch.
pub fn up(batch: &[Row]) -> Option<f64> {
    batch.iter().find(|r| r.name() == "up").map(|r| r.value)
}

/// The value of a report series in a batch.
pub fn report(batch: &[Row], name: &str) -> Option<f64> {
    batch.iter().find(|r| r.name() == name).map(|r| r.value)
}

pub const REPORT: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Scraped (non-report) rows of a batch.
pub fn scraped(batch: &[Row]) -> Vec<&Row> {
    batch.iter().filter(|r| !REPORT.contains(&r.name())).collect()
}
