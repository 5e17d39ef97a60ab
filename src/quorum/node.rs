//! One ensemble member, assembled: recovery of its Raft state, the core,
//! the Raft node, the proposer, the role watcher and, for a new ensemble,
//! the founding. The caller owns the sockets: it feeds peer connections to
//! [`network::serve_peer`] (through [`Node::service`]) and clients to the
//! core ([`Node::core`]); `crate::start` does it over TCP, the quorum
//! simulation over simulated streams.
//!
//! - Inputs: the configuration, where the log lives ([`LogBackend`]), how
//!   to dial peers ([`network::Connector`]).
//! - Outputs: a running [`Node`].
//! - Invariants: the core starts from the newest complete snapshot (the
//!   state after its last log id), and openraft replays the committed
//!   entries after it; nothing is served before a leader is known.

use super::log_store::{LogBackend, LogStore};
use super::{network, proposer, roles, state_machine, Ensemble, Raft, Timing};
use crate::config::ServerConfig;
use crate::pipeline::{self, Core, CoreMsg, Role, RoleInfo};
use crate::StartError;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How a node does its I/O.
pub struct NodeIo {
    pub log: LogBackend,
    pub connector: Arc<dyn network::Connector>,
    /// File work on the calling task rather than tokio's blocking pool.
    pub inline_io: bool,
}

/// A running ensemble member.
pub struct Node {
    pub raft: Raft,
    pub core: mpsc::Sender<CoreMsg>,
    pub service: Arc<network::PeerService>,
    pub ensemble: Ensemble,
    /// Time spent recovering, and whether nothing was there to recover.
    pub recovery: std::time::Duration,
    pub pristine: bool,
    /// Set before a graceful stop shuts Raft down (not a failure then).
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

async fn blocking<T: Send + 'static>(inline: bool, f: impl FnOnce() -> T + Send + 'static) -> Result<T, StartError> {
    if inline {
        Ok(f())
    } else {
        tokio::task::spawn_blocking(f).await.map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))
    }
}

/// Starts an ensemble member.
pub async fn start(cfg: Arc<ServerConfig>, io: NodeIo) -> Result<Node, StartError> {
    let ensemble = Ensemble::from_config(&cfg);
    let timing = Timing::from_config(&cfg);
    let raft_config = super::raft_config(&cfg, timing).map_err(StartError::Quorum)?;
    let recovery_started = std::time::Instant::now();
    let raft_dir = cfg.data_dir.join("raft");
    std::fs::create_dir_all(&raft_dir)?;
    if crate::snapshot::recovery::has_own_files(&cfg) || crate::snapshot::recovery::has_zookeeper_files(&cfg.data_dir) {
        tracing::warn!(
            data_dir = %cfg.data_dir.display(),
            "dataDir holds standalone or Apache ZooKeeper data; an ensemble member keeps its own state under raft/ \
             and does not use it (seeding an ensemble from existing data is not supported yet)"
        );
    }
    let tcfg = crate::snapshot::recovery::tree_config(&cfg);
    let store =
        Arc::new(state_machine::SnapshotStore::new(raft_dir.clone(), cfg.snap_retain_count, tcfg, io.inline_io));
    let s2 = store.clone();
    let loaded = blocking(io.inline_io, move || s2.load_newest()).await?;
    let (tree, sessions, meta) = match loaded {
        Some((meta, s)) => {
            let tree = crate::tree::DataTree::restore(tcfg, s.zxid, s.nodes)
                .map_err(|e| StartError::Quorum(format!("{}: {e}", s.path.display())))?;
            (tree, s.sessions, Some(meta))
        }
        None => (crate::tree::DataTree::new(tcfg), Vec::new(), None),
    };
    let log_store = blocking(io.inline_io, move || LogStore::open(io.log)).await??;
    let pristine = log_store.is_pristine() && meta.is_none();
    tracing::info!(
        myid = ensemble.my_id,
        zxid = format_args!("0x{:x}", tree.last_zxid()),
        sessions = sessions.len(),
        znodes = tree.node_count(),
        pristine,
        voters = ?ensemble.voter_ids(),
        observers = ?ensemble.observers.keys().collect::<Vec<_>>(),
        "recovered; joining the ensemble"
    );

    // Which run of this server proposed an entry: a replayed entry of an
    // earlier run must not answer a waiter of this one.
    let boot = ((pipeline::wall_clock_ms() as u64) << 16) ^ u64::from(std::process::id()) ^ rand_bits();
    let (commit_tx, commit_rx) = mpsc::channel(pipeline::COMMIT_CHANNEL);
    let (core_tx, core_rx) = mpsc::channel(cfg.global_outstanding_limit);
    let sm = state_machine::StateMachine::new(ensemble.my_id, boot, commit_tx, store, meta.as_ref());
    let max_frame = network::max_frame(cfg.jute_max_buffer);
    let peers = network::Peers::new(ensemble.my_id, ensemble.quorum_addr.clone(), max_frame, io.connector);
    let net = network::NetworkFactory { peers: peers.clone() };
    let raft = Raft::new(ensemble.my_id, raft_config, net, log_store, sm)
        .await
        .map_err(|e| StartError::Quorum(format!("cannot start Raft: {e}")))?;
    let propose = proposer::start(raft.clone(), peers.clone(), boot, core_tx.clone(), cfg.global_outstanding_limit * 2);
    let mut core = Core::new(cfg.clone(), tree, sessions, Box::new(propose), None);
    core.role = RoleInfo { role: Role::Looking, serving: false, ..RoleInfo::standalone() };
    core.applied_index = super::index_of(core.tree.last_zxid());
    tokio::spawn(core.run(core_rx, commit_rx));
    let removed_at = Arc::new(AtomicU64::new(0));
    let service = Arc::new(network::PeerService {
        raft: raft.clone(),
        core: core_tx.clone(),
        peers: peers.clone(),
        removed_at: removed_at.clone(),
        max_frame,
        leader_loss: super::roles::LeaderLoss::new(std::time::Duration::from_millis(timing.election_max_ms)),
    });
    if pristine && ensemble.voters.contains_key(&ensemble.my_id) {
        tokio::spawn(super::bootstrap(raft.clone(), peers, ensemble.clone()));
    }
    let read_only_after = cfg.read_only_mode.then(|| std::time::Duration::from_millis(cfg.tick_time_ms.max(2000)));
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(roles::watch(
        raft.clone(),
        ensemble.clone(),
        timing,
        read_only_after,
        removed_at,
        stopping.clone(),
        core_tx.clone(),
    ));
    Ok(Node { raft, core: core_tx, service, ensemble, recovery: recovery_started.elapsed(), pristine, stopping })
}

/// A few bits that differ between two starts in the same millisecond.
fn rand_bits() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish() & 0xffff
}
