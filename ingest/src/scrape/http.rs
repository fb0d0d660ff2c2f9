//! The scraper's HTTP/1.1 client: one kept-alive connection per target, a GET with
//! Prometheus's scrape headers, the body read into a reused buffer under a size limit.
//!
//! hyper's low-level `client::conn::http1` is used instead of a pooled client: a target is one
//! host:port scraped by one task, so the task owns its connection and reconnects when the
//! server closed it. The caller enforces the scrape timeout around [`HttpTarget::fetch`].

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::ScrapeError;

/// Preference order of Prometheus: text 0.0.4 first (what Flink serves), OpenMetrics next.
const ACCEPT_VALUE: &str = "text/plain;version=0.0.4;q=1,\
     application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1";
const USER_AGENT: &str = concat!("eddy/", env!("CARGO_PKG_VERSION"));

/// A scraped response: the raw (possibly gzip) body is in the caller's buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    /// The response's `Content-Type`, if any.
    pub content_type: Option<String>,
}

/// HTTP state of one target.
#[derive(Debug)]
pub(crate) struct HttpTarget {
    /// `host:port`.
    address: String,
    /// Path and query, e.g. `/metrics?name[]=x`.
    path_and_query: String,
    timeout_header: HeaderValue,
    conn: Option<SendRequest<Empty<Bytes>>>,
}

impl HttpTarget {
    pub(crate) fn new(address: String, path_and_query: String, timeout_secs: f64) -> Self {
        let timeout_header = HeaderValue::from_str(&format!("{timeout_secs}"))
            .unwrap_or(HeaderValue::from_static("10"));
        HttpTarget {
            address,
            path_and_query,
            timeout_header,
            conn: None,
        }
    }

    /// Drops the connection (after a timeout or error, its state is unknown).
    pub(crate) fn reset(&mut self) {
        self.conn = None;
    }

    /// GETs the target into `raw` (cleared first), refusing bodies over `limit` bytes.
    pub(crate) async fn fetch(
        &mut self,
        raw: &mut Vec<u8>,
        limit: u64,
    ) -> Result<Fetched, ScrapeError> {
        raw.clear();
        let res = self.fetch_inner(raw, limit).await;
        if res.is_err() {
            self.conn = None;
        }
        res
    }

    async fn fetch_inner(&mut self, raw: &mut Vec<u8>, limit: u64) -> Result<Fetched, ScrapeError> {
        let req = Request::get(self.path_and_query.as_str())
            .header(HOST, self.address.as_str())
            .header(ACCEPT, ACCEPT_VALUE)
            .header(ACCEPT_ENCODING, "gzip")
            .header(hyper::header::USER_AGENT, USER_AGENT)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                self.timeout_header.clone(),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| ScrapeError::Request(e.to_string()))?;
        let sender = self.connection().await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ScrapeError::Http(e.to_string()))?;
        let (parts, mut body) = resp.into_parts();
        if parts.status != StatusCode::OK {
            return Err(ScrapeError::Status(parts.status.to_string()));
        }
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let gzip = header(CONTENT_ENCODING).is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        let content_type = header(CONTENT_TYPE).map(str::to_string);
        if let Some(len) = header(hyper::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit {
                return Err(ScrapeError::BodyTooLarge { limit });
            }
            raw.reserve(len as usize);
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ScrapeError::Http(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                if (raw.len() + data.len()) as u64 > limit {
                    return Err(ScrapeError::BodyTooLarge { limit });
                }
                raw.extend_from_slice(data);
            }
        }
        Ok(Fetched { gzip, content_type })
    }

    /// The kept-alive connection, or a new one if there is none or the server closed it.
    async fn connection(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, ScrapeError> {
        if let Some(c) = &mut self.conn {
            if c.ready().await.is_err() {
                self.conn = None;
            }
        }
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.address.as_str())
                .await
                .map_err(|e| ScrapeError::Connect(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| ScrapeError::Http(e.to_string()))?;
            // The connection task ends when the server closes or `sender` is dropped.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender
                .ready()
                .await
                .map_err(|e| ScrapeError::Http(e.to_string()))?;
            self.conn = Some(sender);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| ScrapeError::Connect("no connection".into()))
    }
}

/// Decompresses a gzip body into `dst` (cleared first), refusing more than `limit` bytes.
pub(crate) fn gunzip(src: &[u8], dst: &mut Vec<u8>, limit: u64) -> Result<(), ScrapeError> {
    use std::io::Read;
    dst.clear();
    let mut dec = flate2::read::MultiGzDecoder::new(src).take(limit.saturating_add(1));
    dec.read_to_end(dst)
        .map_err(|e| ScrapeError::Decompress(e.to_string()))?;
    if dst.len() as u64 > limit {
        return Err(ScrapeError::BodyTooLarge { limit });
    }
    Ok(())
}
