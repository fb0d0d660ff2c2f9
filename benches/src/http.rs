//! A minimal HTTP/1.1 client over `std::net::TcpStream` with keep-alive: enough for the
//! sender and the query runner, so they cost the measured servers as little CPU as possible
//! and the benches crate needs no HTTP stack.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port`.
    pub addr: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http://host:port[/path]`.
    pub fn parse(s: &str) -> anyhow::Result<Url> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("url {s:?} must start with http://"))?;
        let (addr, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if addr.is_empty() {
            anyhow::bail!("url {s:?} has no host");
        }
        Ok(Url {
            addr: addr.to_string(),
            path: path.to_string(),
        })
    }
}

/// One keep-alive connection; reconnects once when the server closed it.
#[derive(Debug)]
pub struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
    head: Vec<u8>,
}

impl Conn {
    /// A connection to `addr` (`host:port`), opened on first use.
    pub fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            stream: None,
            head: Vec::new(),
        }
    }

    /// Sends a request and reads the whole response: (status, body).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        let fresh = self.stream.is_none();
        match self.try_request(method, path, headers, body) {
            Ok(r) => Ok(r),
            Err(_) if !fresh => {
                // The server may have closed an idle keep-alive connection: retry once.
                self.stream = None;
                self.try_request(method, path, headers, body)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::with_capacity(64 << 10, s));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::other("no connection"));
        };
        self.head.clear();
        write!(
            self.head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        )?;
        for (n, v) in headers {
            write!(self.head, "{n}: {v}\r\n")?;
        }
        self.head.extend_from_slice(b"\r\n");
        let s = stream.get_mut();
        s.write_all(&self.head)?;
        s.write_all(body)?;
        let res = read_response(stream);
        if let Ok((_, _, close)) = &res {
            if *close {
                self.stream = None;
            }
        }
        res.map(|(status, body, _)| (status, body))
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one response: (status, body, server wants the connection closed).
fn read_response(r: &mut BufReader<TcpStream>) -> io::Result<(u16, Vec<u8>, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let (mut len, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof in headers",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            let (n, v) = (n.trim().to_ascii_lowercase(), v.trim());
            match n.as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if status != 204 && status != 304 {
        r.read_to_end(&mut body)?;
        close = true;
    }
    Ok((status, body, close))
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:9201/api/v1/write").unwrap();
        assert_eq!(u.addr, "127.0.0.1:9201");
        assert_eq!(u.path, "/api/v1/write");
        assert_eq!(Url::parse("http://127.0.0.1:1").unwrap().path, "/");
        assert!(Url::parse("https://x/").is_err());
        assert_eq!(urlencode("a b{c=\"d\"}"), "a%20b%7Bc%3D%22d%22%7D");
    }

    #[test]
    fn keep_alive_content_length_and_chunked() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            for reply in [
                "HTTP/1.1 204 No Content\r\n\r\n".to_string(),
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_string(),
                "HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                    .to_string(),
            ] {
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        let mut c = Conn::new(&addr);
        assert_eq!(c.request("POST", "/w", &[], b"xyz").unwrap(), (204, vec![]));
        assert_eq!(
            c.request("GET", "/q", &[], b"").unwrap(),
            (200, b"hello".to_vec())
        );
        assert_eq!(
            c.request("GET", "/q", &[], b"").unwrap(),
            (400, b"abcde".to_vec())
        );
        server.join().unwrap();
    }
}
