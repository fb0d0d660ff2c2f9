//! `eddy query`: runs PromQL against a running server's HTTP API and prints a table or JSON.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};

/// Flags of `eddy query`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// The PromQL expression.
    pub query: String,
    /// Server to ask (http://host:port).
    #[arg(long, default_value = "http://127.0.0.1:9201")]
    pub url: String,
    /// Evaluation time of an instant query (RFC 3339 or unix seconds; default: now).
    #[arg(long)]
    pub time: Option<String>,
    /// Start of a range query (makes the query a range query, with --end and --step).
    #[arg(long, requires_all = ["end", "step"])]
    pub start: Option<String>,
    /// End of a range query.
    #[arg(long)]
    pub end: Option<String>,
    /// Step of a range query (e.g. 15s).
    #[arg(long)]
    pub step: Option<String>,
    /// Print the raw JSON response instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the query and prints the answer.
pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let mut form: Vec<(&str, &str)> = vec![("query", &args.query)];
    let path = if let Some(start) = &args.start {
        form.push(("start", start));
        form.push(("end", args.end.as_deref().unwrap_or_default()));
        form.push(("step", args.step.as_deref().unwrap_or_default()));
        "/api/v1/query_range"
    } else {
        if let Some(t) = &args.time {
            form.push(("time", t));
        }
        "/api/v1/query"
    };
    let body = serde_urlencoded::to_string(&form).context("encode form")?;
    let (status, text) = post(&args.url, path, &body)?;
    if args.json {
        println!("{text}");
        return if status == 200 {
            Ok(())
        } else {
            bail!("server answered {status}")
        };
    }
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("server answered {status} with non-JSON: {text}"))?;
    if v["status"] != "success" {
        bail!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or(&text)
        );
    }
    print!("{}", render_table(&v["data"]));
    for w in v["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
    Ok(())
}

fn labels_text(metric: &serde_json::Value) -> String {
    let Some(m) = metric.as_object() else {
        return "{}".into();
    };
    let name = m.get("__name__").and_then(|v| v.as_str()).unwrap_or("");
    let rest: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", v))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

/// A plain-text table of a query's `data`.
pub fn render_table(data: &serde_json::Value) -> String {
    let mut out = String::new();
    match data["resultType"].as_str() {
        Some("vector") => {
            for s in data["result"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{}  {}\n",
                    labels_text(&s["metric"]),
                    s["value"][1].as_str().unwrap_or("")
                ));
            }
        }
        Some("matrix") => {
            for s in data["result"].as_array().into_iter().flatten() {
                out.push_str(&format!("{}\n", labels_text(&s["metric"])));
                for p in s["values"].as_array().into_iter().flatten() {
                    out.push_str(&format!("  {}  {}\n", p[0], p[1].as_str().unwrap_or("")));
                }
            }
        }
        Some(_) => out.push_str(&format!("{}\n", data["result"][1])),
        None => {}
    }
    out
}

/// Minimal HTTP/1.1 POST of a form over plain TCP (the server is on a trusted network).
fn post(url: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let Some(hostport) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are supported, got {url:?}");
    };
    let hostport = hostport.trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).with_context(|| format!("connect to {hostport}"))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
