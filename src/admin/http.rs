//! A small HTTP/1.1 server on tokio for the AdminServer and the metrics
//! endpoint: one request per connection (`Connection: close`), GET and HEAD.
//!
//! - Inputs: connections on the admin or metrics port.
//! - Outputs: one response each, then the connection is closed.
//! - Invariants: a request is bounded (head at most [`MAX_HEAD`] bytes, a
//!   body at most [`MAX_BODY`], read within the idle timeout); at most
//!   [`MAX_CONNECTIONS`] are served at once per listener, others are closed
//!   at once; each connection is its own task, so an error or a panic in one
//!   request touches nothing else.

use super::commands;
use super::scrape;
use super::state::AdminState;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_CONNECTIONS: usize = 64;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const LINGER: Duration = Duration::from_secs(1);
const MAX_LINGER_BYTES: usize = 1 << 20;

/// What a listener serves.
#[derive(Clone)]
pub enum Site {
    /// ZooKeeper's AdminServer: the command list at `url` and each command
    /// at `url/<name>`.
    Admin { url: String },
    /// Prometheus' `/metrics`.
    Metrics,
}

#[derive(Debug, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_length: usize,
}

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Response { status, content_type: "text/plain;charset=utf-8", body: body.as_bytes().to_vec() }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Accepts until the server stops ([`AdminState::stop`]).
///
/// Holds the state weakly: when the server is dropped (or its start failed
/// after the listeners were bound), the listeners close.
pub async fn accept_loop(listener: TcpListener, st: Weak<AdminState>, site: Site, idle: Duration) {
    let Some(stopped) = st.upgrade().map(|s| s.stopped.clone()) else { return };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.cancelled() => return,
        };
        let (sock, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "admin/metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many admin/metrics connections; closing");
            continue;
        };
        let Some(st) = st.upgrade() else { return };
        let site = site.clone();
        tokio::spawn(async move {
            serve_one(sock, peer, &st, &site, idle).await;
            drop(permit);
        });
    }
}

async fn serve_one(mut sock: TcpStream, peer: SocketAddr, st: &Arc<AdminState>, site: &Site, idle: Duration) {
    let head_only;
    let resp = match tokio::time::timeout(idle, read_request(&mut sock)).await {
        Err(_) => {
            head_only = false;
            Response::text(408, "request timeout\n")
        }
        Ok(Err(status)) => {
            head_only = false;
            Response::text(status, &format!("{}\n", reason(status)))
        }
        Ok(Ok(req)) => {
            head_only = req.method == "HEAD";
            tracing::debug!(%peer, method = %req.method, path = %req.path, "admin request");
            route(st, site, req).await
        }
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nServer: ferrokeeper\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        sock.write_all(&out).await?;
        sock.shutdown().await
    })
    .await;
    // Lingering close: read what the client still sends (an oversized or
    // refused request), briefly and bounded, so that closing with unread
    // input does not reset the connection before it reads the answer.
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        let mut left = MAX_LINGER_BYTES;
        while left > 0 {
            match sock.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Reads the head (and any body, discarded); the error is an HTTP status.
async fn read_request(sock: &mut TcpStream) -> Result<Request, u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = find_head_end(&buf) {
            break i;
        }
        if buf.len() >= MAX_HEAD {
            return Err(431);
        }
        let n = sock.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if end > MAX_HEAD {
        return Err(431);
    }
    let req = parse_head(&buf[..end])?;
    if req.content_length > MAX_BODY {
        return Err(413);
    }
    let mut have = buf.len() - end;
    while have < req.content_length {
        let n = sock.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        have += n;
    }
    Ok(req)
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses `METHOD target HTTP/1.x` and the headers we care about.
pub fn parse_head(head: &[u8]) -> Result<Request, u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n");
    let line = lines.next().ok_or(400u16)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(400);
    }
    let mut content_length = 0usize;
    for h in lines {
        if h.is_empty() {
            continue;
        }
        let (name, value) = h.split_once(':').ok_or(400u16)?;
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.trim().parse().map_err(|_| 400u16)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(501);
        }
    }
    // Absolute form: http://host:port/path
    let target = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => target,
    };
    if !target.starts_with('/') {
        return Err(400);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(path, false).ok_or(400u16)?;
    let mut q = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).ok_or(400u16)?;
        let v = percent_decode(v, true).ok_or(400u16)?;
        // The first value of a parameter wins, as ZooKeeper's servlet.
        q.entry(k).or_insert(v);
    }
    Ok(Request { method: method.to_owned(), path, query: q, content_length })
}

fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

async fn route(st: &Arc<AdminState>, site: &Site, req: Request) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "method not allowed\n");
    }
    match site {
        Site::Metrics => {
            if req.path != "/metrics" {
                return Response::text(404, "not found\n");
            }
            st.metrics_scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body = scrape::render(st).await;
            Response { status: 200, content_type: "text/plain; version=0.0.4; charset=utf-8", body: body.into_bytes() }
        }
        Site::Admin { url } => {
            st.count_admin_request();
            let rest = req.path.strip_prefix(url.as_str());
            match rest {
                Some("") | Some("/") => {
                    // ZooKeeper's command list: one link and a <br/> per line.
                    let mut body = String::new();
                    for name in commands::primary_names() {
                        body.push_str(&format!("<a href=\"{url}/{name}\">{name}</a>\n<br/>\n"));
                    }
                    Response { status: 200, content_type: "text/html;charset=utf-8", body: body.into_bytes() }
                }
                Some(r) if r.starts_with('/') => {
                    let out = commands::run(st, &r[1..], &req.query).await;
                    Response {
                        status: out.status,
                        content_type: "application/json",
                        body: out.body.pretty().into_bytes(),
                    }
                }
                _ => Response::text(404, "not found\n"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let r =
            parse_head(b"GET /commands/set_trace_mask?traceMask=5&x=a%20b+c&traceMask=6 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/commands/set_trace_mask");
        assert_eq!(r.query.get("traceMask").map(String::as_str), Some("5"));
        assert_eq!(r.query.get("x").map(String::as_str), Some("a b c"));
        let r = parse_head(b"GET http://h:1/metrics HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(r.path, "/metrics");
        assert_eq!(parse_head(b"GET /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n").unwrap().content_length, 10);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET /%zz HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBroken\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), Err(501));
    }
}
