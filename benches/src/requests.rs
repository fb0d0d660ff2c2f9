//! The pre-encoded request file: remote_write requests (snappy-compressed protobuf) or
//! InfluxDB line protocol bodies, written by `gen` and replayed by `send`, so that sending
//! costs almost nothing but I/O.
//!
//! Layout: the magic `EDDYRW1\n`, then records `lane u32 LE | samples u32 LE | len u32 LE |
//! body (len bytes)`. A record's lane is `tm % lanes` of every scrape in it; the sender gives
//! each lane to one connection, so every series' samples arrive in time order even with
//! several connections. A `<file>.meta` text file beside it holds `key=value` lines
//! (start_ms, end_ms, active_series, samples, requests…).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::flink::Scrape;

/// File magic.
pub const MAGIC: &[u8; 8] = b"EDDYRW1\n";

/// Largest record body accepted when reading (guards against a corrupt length).
const MAX_BODY: usize = 256 << 20;

/// What a request body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// Snappy-compressed `prometheus.WriteRequest` (`POST /api/v1/write`).
    RemoteWrite,
    /// Plain InfluxDB line protocol, ns timestamps (`POST /write`).
    Influx,
}

impl BodyFormat {
    /// From `remote_write` or `influx`.
    pub fn parse(s: &str) -> anyhow::Result<BodyFormat> {
        match s {
            "remote_write" => Ok(BodyFormat::RemoteWrite),
            "influx" => Ok(BodyFormat::Influx),
            other => bail!("unknown request format {other:?} (remote_write or influx)"),
        }
    }

    /// The name [`BodyFormat::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            BodyFormat::RemoteWrite => "remote_write",
            BodyFormat::Influx => "influx",
        }
    }

    /// The HTTP headers a body of this format is sent with.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            BodyFormat::RemoteWrite => &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
                ("User-Agent", "eddy-bench-send/0.1"),
            ],
            BodyFormat::Influx => &[
                ("Content-Type", "text/plain; charset=utf-8"),
                ("User-Agent", "eddy-bench-send/0.1"),
            ],
        }
    }
}

/// Writes scrapes as requests, batching per lane to at least `batch_samples` samples.
#[derive(Debug)]
pub struct RequestWriter<W: Write> {
    w: W,
    format: BodyFormat,
    batch_samples: usize,
    lanes: Vec<(Vec<u8>, u32)>,
    compressed: Vec<u8>,
    /// Requests written.
    pub requests: u64,
    /// Samples written.
    pub samples: u64,
    /// Compressed body bytes written.
    pub bytes: u64,
}

impl<W: Write> RequestWriter<W> {
    /// Starts a file on `w` with `lanes` lanes; a request closes once it holds
    /// `batch_samples` samples (0 or 1: one request per scrape).
    pub fn new(mut w: W, lanes: usize, batch_samples: usize) -> io::Result<Self> {
        w.write_all(MAGIC)?;
        Ok(RequestWriter {
            w,
            format: BodyFormat::RemoteWrite,
            batch_samples,
            lanes: vec![(Vec::new(), 0); lanes.max(1)],
            compressed: Vec::new(),
            requests: 0,
            samples: 0,
            bytes: 0,
        })
    }

    /// Writes bodies in `format` from now on (remote_write by default).
    pub fn with_format(mut self, format: BodyFormat) -> Self {
        self.format = format;
        self
    }

    /// Adds one scrape.
    pub fn add(&mut self, scrape: &Scrape) -> anyhow::Result<()> {
        let lane = scrape.tm % self.lanes.len();
        let (buf, n) = &mut self.lanes[lane];
        match self.format {
            BodyFormat::RemoteWrite => scrape.encode_remote_write(buf),
            BodyFormat::Influx => scrape.encode_influx(buf),
        }
        *n += scrape.len() as u32;
        if *n as usize >= self.batch_samples {
            self.flush_lane(lane)?;
        }
        Ok(())
    }

    fn flush_lane(&mut self, lane: usize) -> anyhow::Result<()> {
        let (buf, n) = &mut self.lanes[lane];
        if *n == 0 {
            return Ok(());
        }
        let body = match self.format {
            BodyFormat::RemoteWrite => {
                self.compressed.clear();
                eddy_ingest::remote_write::compress_snappy(buf, &mut self.compressed)
                    .context("snappy-compress a request")?;
                &self.compressed
            }
            BodyFormat::Influx => &*buf,
        };
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&(lane as u32).to_le_bytes());
        head[4..8].copy_from_slice(&n.to_le_bytes());
        head[8..].copy_from_slice(&(body.len() as u32).to_le_bytes());
        self.w.write_all(&head)?;
        self.w.write_all(body)?;
        self.requests += 1;
        self.samples += u64::from(*n);
        self.bytes += body.len() as u64;
        buf.clear();
        *n = 0;
        Ok(())
    }

    /// Writes every pending request and flushes the writer.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        for lane in 0..self.lanes.len() {
            self.flush_lane(lane)?;
        }
        self.w.flush()?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> anyhow::Result<W> {
        self.flush()?;
        Ok(self.w)
    }
}

/// One request read back.
#[derive(Debug, Default, Clone)]
pub struct Record {
    /// Lane (`tm % lanes`).
    pub lane: u32,
    /// Samples in the request.
    pub samples: u32,
    /// The request body ([`BodyFormat`] says which; the `.meta` file's `format`).
    pub body: Vec<u8>,
}

/// Checks the file magic.
pub fn read_magic(r: &mut impl Read) -> anyhow::Result<()> {
    let mut m = [0u8; 8];
    r.read_exact(&mut m).context("read request file magic")?;
    if &m != MAGIC {
        bail!("not a request file (magic {m:?})");
    }
    Ok(())
}

/// Reads the next record into `rec`; false at a clean end of file.
pub fn read_record(r: &mut impl Read, rec: &mut Record) -> anyhow::Result<bool> {
    let mut head = [0u8; 12];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut head[1..])
        .context("read a record header")?;
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    rec.lane = word(0);
    rec.samples = word(4);
    let len = word(8) as usize;
    if len > MAX_BODY {
        bail!("record body of {len} bytes exceeds {MAX_BODY}");
    }
    rec.body.resize(len, 0);
    r.read_exact(&mut rec.body).context("read a record body")?;
    Ok(true)
}

/// `<file>.meta`.
pub fn meta_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".meta");
    PathBuf::from(s)
}

/// Writes `key=value` lines.
pub fn write_meta(file: &Path, kv: &[(&str, String)]) -> anyhow::Result<()> {
    let text: String = kv.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let p = meta_path(file);
    std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))
}

/// Reads `key=value` lines.
pub fn read_meta(file: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let p = meta_path(file);
    let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flink::{Config, Workload};

    #[test]
    fn write_then_read_back() {
        let cfg = Config {
            tms: 3,
            hours: 0.02,
            slots: 1,
            ..Config::default()
        };
        let mut w = Workload::new(cfg.clone());
        let mut s = Scrape::default();
        let mut out = RequestWriter::new(Vec::new(), 2, 1000).unwrap();
        let mut scrapes = 0;
        while w.next_scrape(&mut s) {
            out.add(&s).unwrap();
            scrapes += 1;
        }
        out.flush().unwrap();
        let (requests, samples) = (out.requests, out.samples);
        let bytes = out.finish().unwrap();
        assert_eq!(samples, cfg.total_samples());
        assert_eq!(scrapes, cfg.tms as u64 * cfg.rounds());
        let mut r = bytes.as_slice();
        read_magic(&mut r).unwrap();
        let (mut rec, mut n, mut got) = (Record::default(), 0, 0u64);
        while read_record(&mut r, &mut rec).unwrap() {
            assert!(rec.lane < 2);
            let raw = snap::raw::Decoder::new().decompress_vec(&rec.body).unwrap();
            let mut batch = eddy_storage::WriteBatch::new();
            let st =
                eddy_ingest::remote_write::decode_write_request(&raw, &mut batch, &mut Vec::new())
                    .unwrap();
            assert_eq!(st.samples, rec.samples as usize);
            // Every series of a lane belongs to a TM of that lane.
            for i in 0..batch.series.len() {
                let host = batch
                    .series_labels(i)
                    .iter()
                    .find(|l| l.0 == "host")
                    .unwrap()
                    .1
                    .clone();
                let tm: usize = host.rsplit('.').next().unwrap().parse().unwrap();
                assert_eq!(tm % 2, rec.lane as usize);
            }
            got += u64::from(rec.samples);
            n += 1;
        }
        assert_eq!((n, got), (requests, samples));
        let mut bad = b"NOTMAGIC".as_slice();
        assert!(read_magic(&mut bad).is_err());
    }

    #[test]
    fn influx_files_hold_plain_line_protocol() {
        let cfg = Config {
            tms: 2,
            hours: 0.01,
            slots: 1,
            ..Config::default()
        };
        let mut w = Workload::new(cfg.clone());
        let mut s = Scrape::default();
        let mut out = RequestWriter::new(Vec::new(), 2, 0)
            .unwrap()
            .with_format(BodyFormat::Influx);
        while w.next_scrape(&mut s) {
            out.add(&s).unwrap();
        }
        let samples = out.samples;
        let bytes = out.finish().unwrap();
        assert_eq!(samples, cfg.total_samples());
        let mut r = bytes.as_slice();
        read_magic(&mut r).unwrap();
        let (mut rec, mut lines) = (Record::default(), 0u64);
        while read_record(&mut r, &mut rec).unwrap() {
            let text = std::str::from_utf8(&rec.body).unwrap();
            assert!(text.ends_with('\n'));
            assert_eq!(text.lines().count(), rec.samples as usize);
            lines += rec.samples as u64;
        }
        assert_eq!(lines, samples);
        for f in [BodyFormat::RemoteWrite, BodyFormat::Influx] {
            assert_eq!(BodyFormat::parse(f.name()).unwrap(), f);
        }
        assert!(BodyFormat::parse("csv").is_err());
    }
}
