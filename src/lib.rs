//! Ferrokeeper: a ZooKeeper-compatible coordination server.
//!
//! Stock ZooKeeper clients (Java, Curator, Kazoo, the C client, Kafka) talk
//! to it unchanged. The modules follow the path of a request:
//!
//! ```text
//! client bytes ─► net::codec ─► jute records ─► session::connection ─► pipeline::prep
//!                                                                        │ read     │ write
//!                                                         pipeline::commit   pipeline::propose
//!                                                          (session order)    (standalone: txnlog,
//!                                                                │             group commit; later Raft)
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
//! - [`admin`]: four-letter words, the AdminServer (HTTP JSON) and `/metrics`.
//!
//! - [`txnlog`]: the fsync'd, CRC-checked, segmented transaction log.
//! - [`snapshot`]: snapshots, start-up recovery, and Apache ZooKeeper's
//!   on-disk formats (import and export).
//!
//! Replication (quorum) will plug in behind the same
//! [`pipeline::propose::Propose`] seam as the durable log.

pub mod admin;
pub mod config;
pub mod net;
pub mod pipeline;
pub mod session;
pub mod snapshot;
pub mod tree;
pub mod txnlog;

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
    core: mpsc::Sender<CoreMsg>,
    admin: Arc<admin::AdminState>,
}

impl Server {
    /// Graceful stop: no new connections or requests, every write already
    /// proposed is committed (fsynced) and answered, then the core stops.
    /// Returns false when that took longer than `limit`.
    pub async fn shutdown(self, limit: std::time::Duration) -> bool {
        self.task.abort();
        self.admin.stop();
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.core.send(CoreMsg::Shutdown(tx)).await.is_err() {
            return true;
        }
        tokio::time::timeout(limit, rx).await.is_ok()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind the client port {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Recovery(#[from] snapshot::recovery::RecoveryError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Recovers the state from dataDir/dataLogDir, binds the client port and
/// starts the core, the log thread and the accept loop.
pub async fn start(cfg: ServerConfig) -> Result<Server, StartError> {
    let cfg = Arc::new(cfg);
    let addr = SocketAddr::new(cfg.client_port_address, cfg.client_port);
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
    let local_addr = listener.local_addr()?;
    // AdminServer and /metrics first: /commands/ready answers during recovery.
    let admin = admin::start(&cfg).await?;
    let recovery_started = std::time::Instant::now();
    let rcfg = cfg.clone();
    let rec = tokio::task::spawn_blocking(move || snapshot::recovery::recover(&rcfg))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    admin.recovered(recovery_started.elapsed(), rec.replayed as u64);
    tracing::info!(
        zxid = format_args!("0x{:x}", rec.tree.last_zxid()),
        snapshot_zxid = format_args!("0x{:x}", rec.snapshot_zxid),
        replayed = rec.replayed,
        sessions = rec.sessions.len(),
        znodes = rec.tree.node_count(),
        "recovered"
    );
    let (commit_tx, commit_rx) = mpsc::channel(pipeline::COMMIT_CHANNEL);
    let mut log = rec.log;
    log.set_prealloc_bytes(cfg.prealloc_bytes);
    let propose = pipeline::propose::DurablePropose::start(
        log,
        commit_tx,
        pipeline::COMMIT_CHANNEL,
        std::time::Duration::from_millis(cfg.fsync_warning_ms),
    )?;
    let snapshotter = pipeline::Snapshotter::new(&cfg, propose.purger());
    let core = Core::new(cfg.clone(), rec.tree, rec.sessions, Box::new(propose), Some(snapshotter));
    let (core_tx, core_rx) = mpsc::channel(cfg.global_outstanding_limit);
    tokio::spawn(core.run(core_rx, commit_rx));
    admin.attach(core_tx.clone());
    let shared = Arc::new(Shared {
        cfg,
        core: core_tx.clone(),
        conn_counts: net::ConnectionCounts::default(),
        next_conn_id: AtomicU64::new(1),
    });
    let task = tokio::spawn(net::accept_loop(listener, shared));
    Ok(Server { local_addr, task, core: core_tx, admin })
}
