//! Ferrokeeper: a ZooKeeper-compatible coordination server.
//!
//! Stock ZooKeeper clients (Java, Curator, Kazoo, the C client, Kafka) talk
//! to it unchanged. The modules follow the path of a request:
//!
//! ```text
//! client bytes ─► net::codec ─► jute records ─► session::connection ─► pipeline::prep
//!                                                                        │ read     │ write
//!                                                         pipeline::commit   pipeline::propose
//!                                                          (session order)    standalone: txnlog, group commit
//!                                                                │            ensemble: quorum (Raft: batch to
//!                                                                │              the leader, majority fsync)
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
//! - [`quorum`]: replication on Raft (openraft): the propose stage of an
//!   ensemble, its log storage, state machine, peer transport and roles.
//! - [`txnlog`]: the fsync'd, CRC-checked, segmented transaction log.
//! - [`snapshot`]: snapshots, start-up recovery, and Apache ZooKeeper's
//!   on-disk formats (import and export).
//!
//! Standalone and quorum servers differ only behind the
//! [`pipeline::propose::Propose`] seam: a standalone server's proposals go
//! to its own log, an ensemble member's to the Raft leader; both come back
//! to the same core as committed entries in zxid order.

pub mod admin;
pub mod config;
pub mod net;
pub mod pipeline;
pub mod quorum;
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
    /// An ensemble member's Raft node (stopped after the core), and the
    /// flag that tells its role watcher the stop is wanted.
    raft: Option<(quorum::Raft, Arc<std::sync::atomic::AtomicBool>)>,
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
        let done = tokio::time::timeout(limit, rx).await.is_ok();
        if let Some((raft, stopping)) = self.raft {
            stopping.store(true, std::sync::atomic::Ordering::Release);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), raft.shutdown()).await;
        }
        done
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind the client port {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Recovery(#[from] snapshot::recovery::RecoveryError),
    #[error(transparent)]
    Log(#[from] txnlog::LogError),
    #[error("cannot bind the quorum port {addr}: {source}")]
    BindQuorum { addr: String, source: std::io::Error },
    #[error("{0}")]
    Quorum(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Recovers the state from dataDir/dataLogDir, binds the client port and
/// starts the core, the log thread and the accept loop (and, for an
/// ensemble member, the Raft node and its peer port).
pub async fn start(cfg: ServerConfig) -> Result<Server, StartError> {
    if cfg.is_distributed() {
        return start_quorum(cfg).await;
    }
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
    Ok(Server { local_addr, task, core: core_tx, admin, raft: None })
}

/// Starts an ensemble member over TCP: the client port, the AdminServer,
/// the member itself ([`quorum::node`]) and the peer port.
async fn start_quorum(cfg: ServerConfig) -> Result<Server, StartError> {
    use quorum::{log_store::LogBackend, network, node};
    let cfg = Arc::new(cfg);
    let ensemble = quorum::Ensemble::from_config(&cfg);
    let addr = SocketAddr::new(cfg.client_port_address, cfg.client_port);
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
    let local_addr = listener.local_addr()?;
    let quorum_addr = ensemble
        .quorum_addr
        .get(&ensemble.my_id)
        .cloned()
        .ok_or_else(|| StartError::Quorum(format!("no server.{} line for this server", ensemble.my_id)))?;
    let peer_listener = TcpListener::bind(&quorum_addr)
        .await
        .map_err(|source| StartError::BindQuorum { addr: quorum_addr.clone(), source })?;
    let admin = admin::start(&cfg).await?;
    let io = node::NodeIo {
        log: LogBackend::Disk {
            log_dir: cfg.data_log_dir.join("raft"),
            meta_dir: cfg.data_dir.join("raft"),
            prealloc_bytes: cfg.prealloc_bytes,
        },
        connector: Arc::new(network::TcpConnector),
        inline_io: false,
    };
    let n = node::start(cfg.clone(), io).await?;
    admin.recovered(n.recovery, 0);
    admin.attach(n.core.clone());
    tokio::spawn(network::serve_peers(peer_listener, n.service.clone()));
    let shared = Arc::new(Shared {
        cfg,
        core: n.core.clone(),
        conn_counts: net::ConnectionCounts::default(),
        next_conn_id: AtomicU64::new(1),
    });
    let task = tokio::spawn(net::accept_loop(listener, shared));
    Ok(Server { local_addr, task, core: n.core, admin, raft: Some((n.raft, n.stopping)) })
}
