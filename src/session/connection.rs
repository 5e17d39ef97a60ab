//! One client connection: the handshake, the read loop (which runs prep),
//! and the writer that drains the connection's ordered outbound queue.
//!
//! - Inputs: frames from the socket ([`crate::net::codec`]).
//! - Outputs: [`CoreMsg`]s to the core; bytes to the socket.
//! - Invariants:
//!   - the first four bytes decide: a four-letter word is answered and the
//!     connection closed; anything else is a length-prefixed ConnectRequest;
//!   - the connection stamps each request with the caller's identities and
//!     the wall-clock time (prep); auth packets change those identities
//!     before the next request is read, as in ZooKeeper;
//!   - at most `max_outstanding_per_connection` requests are in the pipeline
//!     per connection: past that, we stop reading from the socket;
//!   - any error (bad frame, oversized frame, socket error) closes this
//!     connection and nothing else.

use crate::net::codec::{FrameCodec, FrameError};
use crate::pipeline::prep::{self, PrepConfig, Prepped, Read};
use crate::pipeline::{wall_clock_ms, ClientRequest, ConnHandle, ConnectOutcome, CoreMsg, Outbound};
use crate::tree::acl::generate_digest;
use crate::tree::watches::ConnId;
use crate::Shared;
use futures_util::StreamExt;
use jute::data::Id;
use jute::proto::{op, AuthPacket, ConnectRequest, RequestHeader};
use jute::{Jute, Reader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// How long a new connection may take to send its first frame.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve(stream: TcpStream, addr: SocketAddr, conn_id: ConnId, shared: Arc<Shared>) {
    if let Err(e) = serve_inner(stream, addr, conn_id, &shared).await {
        tracing::debug!(client = %addr, error = %e, "connection closed");
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("malformed connect request")]
    BadConnect,
    #[error("malformed request header")]
    BadHeader,
    #[error("server is shutting down")]
    CoreGone,
}

async fn serve_inner(
    stream: TcpStream,
    addr: SocketAddr,
    conn_id: ConnId,
    shared: &Arc<Shared>,
) -> Result<(), ConnError> {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let mut first = [0u8; 4];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, rd.read_exact(&mut first))
        .await
        .map_err(|_| ConnError::HandshakeTimeout(HANDSHAKE_TIMEOUT))??;
    if let Some(cmd) = crate::admin::as_four_letter_word(&first) {
        if cmd == "stmk" && shared.cfg.four_letter_whitelist.allows(cmd) {
            // stmk carries the new trace mask as 8 more bytes.
            let mut mask = [0u8; 8];
            if let Ok(Ok(_)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, rd.read_exact(&mut mask)).await {
                crate::admin::state::set_trace_mask(i64::from_be_bytes(mask));
            }
        }
        return answer_four_letter(cmd, wr, shared).await;
    }

    // Check the first length now: FramedRead would wait for more bytes
    // before looking at what we already read. ZooKeeper closes a connection
    // whose first packet is empty, negative or over jute.maxbuffer.
    let first_len = i32::from_be_bytes(first);
    if first_len <= 0 || first_len as usize > shared.cfg.jute_max_buffer {
        return Err(FrameError::Length { len: first_len as i64, max: shared.cfg.jute_max_buffer }.into());
    }
    let mut frames = FramedRead::new(rd, FrameCodec::new(shared.cfg.jute_max_buffer));
    frames.read_buffer_mut().extend_from_slice(&first);
    let frame = tokio::time::timeout(HANDSHAKE_TIMEOUT, frames.next())
        .await
        .map_err(|_| ConnError::HandshakeTimeout(HANDSHAKE_TIMEOUT))?;
    let frame = match frame {
        Some(f) => f?,
        None => return Ok(()),
    };
    let mut r = Reader::new(&frame);
    let request = ConnectRequest::read_from(&mut r).map_err(|_| ConnError::BadConnect)?;
    // Clients since 3.3 send a readOnly byte; answer in the shape we got.
    let read_only_byte = r.remaining() >= 1;
    let read_only_allowed = read_only_byte && bool::read_from(&mut r).unwrap_or(false);

    let (out_tx, out_rx) = mpsc::channel(shared.cfg.max_queued_per_connection);
    let kill = CancellationToken::new();
    let writer = tokio::spawn(write_loop(wr, out_rx, kill.clone()));
    let handle = ConnHandle { id: conn_id, addr, out: out_tx, kill: kill.clone() };
    let (done_tx, done_rx) = oneshot::channel();
    let core = &shared.core;
    core.send(CoreMsg::Connect { conn: handle, request, read_only_byte, read_only_allowed, done: done_tx })
        .await
        .map_err(|_| ConnError::CoreGone)?;
    let session_id = match done_rx.await {
        Ok(ConnectOutcome::Accepted { session_id }) => session_id,
        _ => {
            let _ = writer.await;
            let _ = core.send(CoreMsg::Disconnected { conn_id }).await;
            return Ok(());
        }
    };

    let result = read_loop(&mut frames, conn_id, session_id, addr, shared, &kill).await;
    kill.cancel();
    let _ = core.send(CoreMsg::Disconnected { conn_id }).await;
    let _ = writer.await;
    result
}

async fn read_loop(
    frames: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>,
    conn_id: ConnId,
    session_id: i64,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    kill: &CancellationToken,
) -> Result<(), ConnError> {
    let outstanding = Arc::new(Semaphore::new(shared.cfg.max_outstanding_per_connection));
    let mut auth: Arc<Vec<Id>> = Arc::new(vec![Id::new("ip", &addr.ip().to_string())]);
    let prep_cfg =
        PrepConfig { reconfig_enabled: shared.cfg.reconfig_enabled, replicated: shared.cfg.is_distributed() };
    loop {
        let frame = tokio::select! {
            f = frames.next() => f,
            _ = kill.cancelled() => return Ok(()),
        };
        let frame = match frame {
            Some(f) => f?,
            None => return Ok(()),
        };
        let received = Instant::now();
        let mut r = Reader::new(&frame);
        let header = RequestHeader::read_from(&mut r).map_err(|_| ConnError::BadHeader)?;
        let body = r.rest();
        let mut stop_after = false;
        let prepped = if header.op == op::AUTH {
            let ok = match AuthPacket::from_bytes(body) {
                Ok(p) => authenticate(&p, &addr, shared.cfg.super_digest.as_deref()),
                Err(_) => None,
            };
            match ok {
                Some(ids) => {
                    let mut next = (*auth).clone();
                    for id in ids {
                        if !next.contains(&id) {
                            next.push(id);
                        }
                    }
                    auth = Arc::new(next);
                    Prepped::Read(Read::AuthResult { ok: true })
                }
                None => {
                    stop_after = true;
                    Prepped::Read(Read::AuthResult { ok: false })
                }
            }
        } else {
            prep::prep(header.op, body, prep_cfg)
        };
        let permit = tokio::select! {
            p = outstanding.clone().acquire_owned() => p.ok(),
            _ = kill.cancelled() => return Ok(()),
        };
        let request = ClientRequest {
            conn_id,
            session_id,
            xid: header.xid,
            opcode: header.op,
            time_ms: wall_clock_ms(),
            auth: auth.clone(),
            prepped,
            permit,
            received,
        };
        shared.core.send(CoreMsg::Request(request)).await.map_err(|_| ConnError::CoreGone)?;
        if stop_after || header.op == op::CLOSE_SESSION {
            // The core replies and then closes; read nothing more.
            kill.cancelled().await;
            return Ok(());
        }
    }
}

/// Runs an auth packet's provider: the identities to add, or `None` for
/// AUTHFAILED (unknown scheme), as ZooKeeper's `ProviderRegistry`.
fn authenticate(p: &AuthPacket, addr: &SocketAddr, super_digest: Option<&str>) -> Option<Vec<Id>> {
    match p.scheme.as_str() {
        "digest" => {
            let given = String::from_utf8_lossy(&p.auth);
            let digest = generate_digest(&given);
            let mut ids = Vec::new();
            if super_digest == Some(digest.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", &digest));
            Some(ids)
        }
        "ip" => Some(vec![Id::new("ip", &addr.ip().to_string())]),
        _ => None,
    }
}

async fn answer_four_letter(cmd: &'static str, mut wr: OwnedWriteHalf, shared: &Arc<Shared>) -> Result<(), ConnError> {
    // With read-only mode on, ZooKeeper always allows isro (clients probe it).
    let allowed = shared.cfg.four_letter_whitelist.allows(cmd) || (cmd == "isro" && shared.cfg.read_only_mode);
    let text = if allowed {
        let (tx, rx) = oneshot::channel();
        shared
            .core
            .send(CoreMsg::FourLetter { cmd: cmd.to_owned(), reply: tx })
            .await
            .map_err(|_| ConnError::CoreGone)?;
        rx.await.map_err(|_| ConnError::CoreGone)?
    } else {
        format!("{cmd} is not executed because it is not in the whitelist.\n")
    };
    wr.write_all(text.as_bytes()).await?;
    wr.shutdown().await?;
    Ok(())
}

/// Drains the outbound queue into the socket, batching what is ready into
/// one write.
async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Outbound>, kill: CancellationToken) {
    const BATCH_BYTES: usize = 256 * 1024;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut closing = false;
    'outer: loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = kill.cancelled() => None,
        };
        match first {
            None => break,
            Some(Outbound::Close) => closing = true,
            Some(Outbound::Frame(f)) => buf.extend_from_slice(&f),
        }
        while !closing && buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(Outbound::Frame(f)) => buf.extend_from_slice(&f),
                Ok(Outbound::Close) => closing = true,
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            let res = tokio::select! {
                r = wr.write_all(&buf) => r,
                _ = kill.cancelled() => break 'outer,
            };
            if res.is_err() {
                break;
            }
            buf.clear();
        }
        if closing {
            break;
        }
    }
    let _ = wr.shutdown().await;
    kill.cancel();
}
