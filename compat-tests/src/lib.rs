//! Helpers for the Rust-side compatibility tests: an in-process Ferrokeeper
//! on a free loopback port, and a minimal raw-protocol client for the
//! bad-input tests. The Python suites (kazoo, the differential oracle
//! against Apache ZooKeeper) live in `compat-tests/python/`.

use anyhow::{bail, Context, Result};
use ferrokeeper::config::ServerConfig;
use jute::proto::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use jute::Jute;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A new, empty directory for one server's data.
pub fn fresh_data_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fk-compat-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a data directory");
    dir
}

/// Starts a server in this process on 127.0.0.1 with an OS-chosen port.
/// `entries` are zoo.cfg lines, `defines` `-D` properties.
pub async fn start_server(entries: &[(&str, &str)], defines: &[(&str, &str)]) -> Result<SocketAddr> {
    let mut lines: Vec<(String, String)> = vec![
        ("tickTime".into(), "200".into()),
        ("dataDir".into(), fresh_data_dir().display().to_string()),
        ("clientPort".into(), "0".into()),
        ("clientPortAddress".into(), "127.0.0.1".into()),
        ("maxClientCnxns".into(), "0".into()),
        ("4lw.commands.whitelist".into(), "*".into()),
    ];
    for (k, v) in entries {
        lines.retain(|(lk, _)| lk != k);
        lines.push((k.to_string(), v.to_string()));
    }
    let defines: Vec<(String, String)> = defines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let cfg = ServerConfig::from_sources(Some(std::path::Path::new("zoo.cfg")), &lines, &defines)?;
    let server = ferrokeeper::start(cfg).await?;
    Ok(server.local_addr)
}

/// A raw connection speaking the wire protocol, for tests that must send
/// what no well-behaved client sends.
pub struct RawClient {
    pub stream: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
}

pub async fn write_frame(stream: &mut TcpStream, body: &[u8]) -> Result<()> {
    let mut buf = (body.len() as i32).to_be_bytes().to_vec();
    buf.extend_from_slice(body);
    stream.write_all(&buf).await?;
    Ok(())
}

/// Reads one frame; `None` when the server closed the connection.
pub async fn read_frame(stream: &mut TcpStream) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut len)).await {
        Err(_) => bail!("timed out waiting for a frame"),
        Ok(Err(_)) => return Ok(None),
        Ok(Ok(_)) => {}
    }
    let len = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&len) {
        bail!("bad frame length {len}");
    }
    let mut body = vec![0u8; len as usize];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut body)).await.context("timed out")??;
    Ok(Some(body))
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Result<RawClient> {
        Self::connect_with(addr, ConnectRequest { time_out: 10_000, passwd: vec![0; 16], ..Default::default() }, true)
            .await
    }

    pub async fn connect_with(addr: SocketAddr, req: ConnectRequest, read_only_byte: bool) -> Result<RawClient> {
        let mut stream = TcpStream::connect(addr).await?;
        let mut body = req.to_bytes();
        if read_only_byte {
            false.write_to(&mut body);
        }
        write_frame(&mut stream, &body).await?;
        let frame = read_frame(&mut stream).await?.context("closed during handshake")?;
        let resp = ConnectResponse::from_bytes(&frame)?;
        Ok(RawClient { stream, session_id: resp.session_id, passwd: resp.passwd })
    }

    /// Sends a request and returns the first reply that is not a watch event.
    pub async fn call(&mut self, xid: i32, op: i32, body: &[u8]) -> Result<Option<(ReplyHeader, Vec<u8>)>> {
        let mut buf = RequestHeader { xid, op }.to_bytes();
        buf.extend_from_slice(body);
        write_frame(&mut self.stream, &buf).await?;
        loop {
            let Some(frame) = read_frame(&mut self.stream).await? else {
                return Ok(None);
            };
            let mut r = jute::Reader::new(&frame);
            let h = ReplyHeader::read_from(&mut r)?;
            if h.xid == -1 {
                continue;
            }
            return Ok(Some((h, r.rest().to_vec())));
        }
    }
}
