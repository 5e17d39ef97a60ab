//! Ferrokeeper: a ZooKeeper-compatible coordination server.
//!
//! Stock ZooKeeper clients (Java, Curator, Kazoo, the C client, Kafka) talk
//! to it unchanged. The modules follow the path of a request:
//!
//! ```text
//! client bytes ─► net::codec ─► jute records ─► session::connection ─► pipeline::prep
//!                                                                        │ read     │ write
//!                                                         pipeline::commit   pipeline::propose
//!                                                          (session order)    (standalone: in memory;
//!                                                                │             later txnlog / Raft)
//!                                                                │                   │ committed, zxid order
//!                              pipeline::finalize ◄── tree (reads) ◄──── tree::apply ─► result + triggers
//! client bytes ◄─ net::codec ◄─ replies + watch events (one ordered queue per connection)
//! ```
//!
//! - [`config`]: zoo.cfg, myid and `-D` properties → [`config::ServerConfig`].
//! - [`net`]: listener and framing (`jute.maxbuffer`).
//! - [`session`]: per-connection task (handshake, auth, prep) and the pure
//!   session tracker.
//! - [`pipeline`]: the core task: prep → propose → commit → finalize.
//! - [`tree`]: the data tree, its deterministic `apply`, ACLs and watches.
//! - [`admin`]: four-letter words.
//!
//! Durability (txnlog, snapshots) and replication (quorum) plug in behind
//! the [`pipeline::propose::Propose`] seam; they are not part of this release.

pub mod admin;
pub mod config;
pub mod net;
pub mod pipeline;
pub mod session;
pub mod snapshot;
pub mod tree;

use config::ServerConfig;
use pipeline::{Core, CoreMsg};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What every connection task shares.
pub struct Shared {
    pub cfg: Arc<ServerConfig>,
    pub core: mpsc::Sender<CoreMsg>,
    pub conn_counts: net::ConnectionCounts,
    pub next_conn_id: AtomicU64,
}

/// A running server: its address, and the task that serves it.
pub struct Server {
    pub local_addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds the client port and starts the core and the accept loop.
pub async fn start(cfg: ServerConfig) -> std::io::Result<Server> {
    let cfg = Arc::new(cfg);
    let addr = SocketAddr::new(cfg.client_port_address, cfg.client_port);
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (core_tx, core_rx) = mpsc::channel(cfg.global_outstanding_limit);
    let (core, committed) = Core::new(cfg.clone());
    tokio::spawn(core.run(core_rx, committed));
    let shared = Arc::new(Shared {
        cfg,
        core: core_tx,
        conn_counts: net::ConnectionCounts::default(),
        next_conn_id: AtomicU64::new(1),
    });
    let task = tokio::spawn(net::accept_loop(listener, shared));
    Ok(Server { local_addr, task })
}
