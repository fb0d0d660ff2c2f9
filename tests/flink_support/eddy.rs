//! An eddy server on a free loopback port for a real Flink to send to, plus typed answers from
//! its query API (`/api/v1/query`), which the tests read the way a user would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use eddy::http::SharedState;
use tokio::task::JoinHandle;

use crate::support;

/// One eddy: state on a temp data dir, served on `addr` by `axum::serve`.
#[derive(Debug)]
pub(crate) struct Eddy {
    pub(crate) st: SharedState,
    pub(crate) addr: SocketAddr,
    server: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Eddy {
    pub(crate) async fn start() -> Eddy {
        let (st, dir) = support::state(&[]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = eddy::http::app(st.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Eddy {
            st,
            addr,
            server,
            _dir: dir,
        }
    }

    /// `GET /api/v1/query?query=q`: the instant vector (or an error naming the query).
    pub(crate) async fn instant(&self, q: &str) -> Result<Vec<Sample>, String> {
        let data = self.query(q).await?;
        let rows = data["result"].as_array().ok_or("no result array")?;
        rows.iter()
            .map(|r| {
                Ok(Sample {
                    labels: labels(&r["metric"]),
                    value: number(&r["value"][1])?,
                })
            })
            .collect()
    }

    /// The samples of a range selector (`q` ends in `[…]`), per series.
    pub(crate) async fn range(&self, q: &str) -> Result<Vec<Range>, String> {
        let data = self.query(q).await?;
        let rows = data["result"].as_array().ok_or("no result array")?;
        rows.iter()
            .map(|r| {
                let points = r["values"]
                    .as_array()
                    .ok_or("no values")?
                    .iter()
                    .map(|p| Ok((p[0].as_f64().ok_or("no timestamp")?, number(&p[1])?)))
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(Range {
                    labels: labels(&r["metric"]),
                    points,
                })
            })
            .collect()
    }

    /// The single value of a query that yields one sample, e.g. `sum(…)`.
    pub(crate) async fn scalar(&self, q: &str) -> Result<f64, String> {
        let v = self.instant(q).await?;
        match v.as_slice() {
            [one] => Ok(one.value),
            _ => Err(format!("{q}: expected one sample, got {}", v.len())),
        }
    }

    /// eddy's own `/metrics`, as `name{labels}` → value.
    pub(crate) async fn own_metrics(&self) -> BTreeMap<String, f64> {
        let (_, body) = support::get(&self.st, "/metrics").await;
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    async fn query(&self, q: &str) -> Result<serde_json::Value, String> {
        let enc = serde_urlencoded::to_string([("query", q)]).map_err(|e| e.to_string())?;
        let (status, body) = support::get(&self.st, &format!("/api/v1/query?{enc}")).await;
        if !status.is_success() {
            return Err(format!("{q}: HTTP {status}: {body}"));
        }
        let mut v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{q}: bad JSON {e}: {body}"))?;
        Ok(v["data"].take())
    }
}

impl Drop for Eddy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One sample of an instant vector.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// One series of a range selector.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    pub(crate) labels: BTreeMap<String, String>,
    /// (seconds since the epoch, value), oldest first.
    pub(crate) points: Vec<(f64, f64)>,
}

impl Range {
    pub(crate) fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
    pub(crate) fn first(&self) -> (f64, f64) {
        self.points.first().copied().unwrap_or((f64::NAN, f64::NAN))
    }
    pub(crate) fn last(&self) -> (f64, f64) {
        self.points.last().copied().unwrap_or((f64::NAN, f64::NAN))
    }
}

fn labels(m: &serde_json::Value) -> BTreeMap<String, String> {
    m.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn number(v: &serde_json::Value) -> Result<f64, String> {
    let s = v.as_str().ok_or("value is not a string")?;
    s.parse().map_err(|e| format!("value {s:?}: {e}"))
}

/// Retries `f` every 500 ms until it returns `Ok` or `deadline` passes; then the last error.
pub(crate) async fn wait_until<T, F, Fut>(
    what: &str,
    deadline: Instant,
    mut f: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("timed out waiting for {what}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
