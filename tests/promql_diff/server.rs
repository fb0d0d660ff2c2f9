//! The two servers under comparison: a real Prometheus child process (killed on drop) and eddy
//! served in-process on a loopback port, plus the small blocking HTTP/1.1 client both are queried
//! with (one connection per request, so no keep-alive state can differ between them).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A response: status code and body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad(format!("response without header end ({} bytes)", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("chunk size line without end".into()))?;
        let size_txt = String::from_utf8_lossy(&rest[..eol]);
        let size_txt = size_txt.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_txt, 16)
            .map_err(|_| bad(format!("bad chunk size {size_txt:?}")))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err(bad("truncated chunk".into()));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Sends a snappy-compressed remote_write body; Ok on a 2xx answer.
pub(crate) fn remote_write(addr: SocketAddr, body: &[u8]) -> Result<(), String> {
    let r = request(
        addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        body,
    )
    .map_err(|e| format!("remote write to {addr}: {e}"))?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(format!(
            "remote write to {addr}: status {}: {}",
            r.status,
            r.text()
        ))
    }
}

/// POSTs a form to a query endpoint.
pub(crate) fn query(
    addr: SocketAddr,
    path: &str,
    form: &[(&str, String)],
) -> std::io::Result<Response> {
    let body = serde_urlencoded::to_string(form).map_err(|e| bad(e.to_string()))?;
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The Prometheus binary: `$PROMETHEUS_BIN`, else `prometheus` on `PATH`.
fn prometheus_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(format!(
            "PROMETHEUS_BIN={} is not a file; the differential test needs a real Prometheus: \
             `apt-get install prometheus`",
            p.display()
        ));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let cand = dir.join("prometheus");
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(
        "the differential test needs a real Prometheus: `apt-get install prometheus` \
         (or set PROMETHEUS_BIN to its path); no `prometheus` binary found on PATH"
            .into(),
    )
}

/// A Prometheus child process on a loopback port, killed (and its data removed) on drop.
pub(crate) struct Prometheus {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) version: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with the remote-write receiver and an empty scrape config, and waits
    /// until `/-/ready` answers.
    pub(crate) fn start() -> Result<Self, String> {
        let bin = prometheus_binary()?;
        let version = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|e| format!("run {} --version: {e}", bin.display()))?;
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&version.stderr).lines())
            .next()
            .unwrap_or_default()
            .to_string();
        let mut last_err = String::new();
        // A port picked free can be taken before Prometheus binds it: try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let cfg = dir.path().join("prometheus.yml");
            std::fs::write(
                &cfg,
                "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
            )
            .map_err(|e| format!("write {}: {e}", cfg.display()))?;
            let port = free_port().map_err(|e| format!("pick a free port: {e}"))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log_path = dir.path().join("prometheus.log");
            let log = std::fs::File::create(&log_path)
                .map_err(|e| format!("create {}: {e}", log_path.display()))?;
            let log2 = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
            let child = Command::new(&bin)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-remote-write-receiver")
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .map_err(|e| format!("start {}: {e}", bin.display()))?;
            let mut p = Prometheus {
                child,
                addr,
                version: version.clone(),
                dir,
            };
            match p.wait_ready(Duration::from_secs(60)) {
                Ok(()) => return Ok(p),
                Err(e) => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_err = format!("{e}; log:\n{log}");
                }
            }
        }
        Err(last_err)
    }

    /// The tail of the Prometheus log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log.get(start..).unwrap_or_default().to_string()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let began = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("prometheus exited early with {status}"));
            }
            if let Ok(r) = request(self.addr, "GET", "/-/ready", &[], b"") {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if began.elapsed() > timeout {
                return Err(format!(
                    "prometheus on {} not ready in {timeout:?}",
                    self.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// eddy served on a loopback port by a runtime that lives as long as this guard.
pub(crate) struct Eddy {
    pub(crate) addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Eddy {
    pub(crate) fn start(
        state: eddy::http::SharedState,
        dir: tempfile::TempDir,
    ) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("build runtime: {e}"))?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| format!("bind eddy listener: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("eddy listener address: {e}"))?;
        let app = eddy::http::app(Arc::clone(&state));
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Eddy {
            addr,
            _rt: rt,
            _dir: dir,
        })
    }
}
