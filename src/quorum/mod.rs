//! Replication: an ensemble of servers (3, 5, ...) agreeing on one order of
//! writes through Raft ([openraft], pinned exactly; it is used nowhere else
//! in the crate).
//!
//! ```text
//!  core ──Proposal──► proposer ──(leader) client_write──► openraft ──► log_store (txnlog, fsync)
//!    ▲                   │ (follower) Forward ──► peer link ──► leader's network handler ──┘
//!    │                   └──── sync: ReadIndex at the leader, then wait for the local apply
//!    │                                                      │ committed, in log order
//!    └───────────── CommitMsg (Txn | Noop | Install | Snapshot) ◄── state_machine
//!  roles: openraft metrics ──► CoreMsg::Role (leader / follower / observer / looking, serving)
//! ```
//!
//! - Inputs: the configuration's `server.N` lines and `myid`; proposals
//!   and syncs from the core ([`proposer::QuorumPropose`]); peers' RPCs.
//! - Outputs: committed entries to the core, in log order, as
//!   [`crate::pipeline::commit::CommitMsg`]; role changes and failed
//!   proposals as [`crate::pipeline::CoreMsg`].
//! - Invariants:
//!   - a Raft entry carries a batch of transactions; the i-th transaction of
//!     the entry at index n has zxid `n << 12 | i` ([`zxid_of`]); an entry
//!     without client writes (a new leader's blank entry, a membership
//!     change) advances the zxid to `n << 12`. zxids increase with the log,
//!     have gaps (as ZooKeeper's do at each new epoch), and equal zxids mean
//!     equal state on every replica;
//!   - an entry is acknowledged to the leader only once it is fsynced in
//!     this server's log ([`log_store`]); a client hears of a write only
//!     after a majority has it and this server applied it;
//!   - only the leader expires sessions and reaps containers, from its own
//!     clients' activity and the activity followers report every half tick;
//!     a new leader gives every session a full timeout;
//!   - a connection's writes reach the leader in the order sent; once one
//!     of them fails (leader lost), its later ones fail too and the client's
//!     connection is closed ([`proposer`]);
//!   - a server without a leader, or a leader that has not heard from a
//!     majority within an election timeout, serves no client ([`roles`]).
//!
//! Peers dial each other at the quorum port that **their own** zoo.cfg gives
//! for a server id (addresses may differ per host); the election port of a
//! `server.N` line is not used (Raft elects over the same link).

// openraft's trait signatures fix its (large) error types.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod node;
pub mod proposer;
pub mod reconfig;
pub mod roles;
pub mod state_machine;

use crate::config::{PeerRole, ServerConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Transactions in one Raft entry, at most.
pub const MAX_BATCH: usize = 1 << ZXID_SHIFT;
/// A batch is sent once it holds about this many bytes.
pub const BATCH_BYTES: usize = 512 << 10;
const ZXID_SHIFT: u32 = 12;

/// The zxid of the `i`-th transaction of the entry at log `index`.
pub fn zxid_of(index: u64, i: usize) -> i64 {
    ((index as i64) << ZXID_SHIFT) | i as i64
}

/// The log index of the entry that holds the transaction `zxid`.
pub fn index_of(zxid: i64) -> u64 {
    (zxid >> ZXID_SHIFT).max(0) as u64
}

/// One replicated client write: the proposal as the txnlog encodes it
/// (zxid field 0: the entry's index and its place give the zxid).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// The proposing server's waiter for it (meaningless elsewhere).
    pub local_ref: u64,
    /// `txnlog::entry::encode(0, proposal)`; serialized as one byte string
    /// (serde's default is a sequence of single bytes, slow for large data).
    #[serde(with = "serde_bytes")]
    pub entry: Vec<u8>,
}

/// A Raft entry's client writes, in order, all from one server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The server whose clients (or session tracker) proposed them.
    pub origin: u64,
    /// Which run of that server process (a restart starts a new one), so a
    /// replayed entry never answers a waiter of a later run.
    pub boot: u64,
    pub txns: Vec<Txn>,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch(origin {}, {} transactions)", self.origin, self.txns.len())
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What the membership records of a server: its addresses as the server
/// that added it knew them. A server dials a peer at the address its own
/// configuration gives and uses these only for servers it does not list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// `host:quorumPort:electionPort`.
    pub addr: String,
    /// `clientHost:clientPort`, when known.
    pub client: String,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}", self.addr, self.client)
    }
}

openraft::declare_raft_types!(
    /// The Raft types of a Ferrokeeper ensemble.
    pub TypeConfig:
        D = Batch,
        R = (),
        NodeId = u64,
        Node = PeerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<u64>;

/// Timing of the Raft protocol, derived from `tickTime` (as ZooKeeper's
/// timeouts are), overridable with `ferrokeeper.heartbeatMs` and
/// `ferrokeeper.electionTimeoutMs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl Timing {
    pub fn from_config(cfg: &ServerConfig) -> Self {
        let prop = |k: &str| cfg.properties.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        // A sixth of a tick (333 ms at ZooKeeper's usual 2000), and a
        // narrow spread: a follower stands for election soon after the
        // other followers' leader lease (openraft's election_timeout_max)
        // runs out, so a dead leader is replaced in about twice that.
        let election_min_ms =
            prop("ferrokeeper.electionTimeoutMs").unwrap_or((cfg.tick_time_ms / 6).clamp(100, 5000)).max(60);
        let heartbeat_ms =
            prop("ferrokeeper.heartbeatMs").unwrap_or(election_min_ms / 5).clamp(10, election_min_ms / 3);
        Timing { heartbeat_ms, election_min_ms, election_max_ms: election_min_ms + election_min_ms / 4 }
    }

    /// How long a leader goes on serving without hearing from a majority
    /// (three election timeouts, at least a second: a leader under load
    /// must not drop its clients for one late acknowledgement; ZooKeeper's
    /// leader waits syncLimit ticks, 10 s by default).
    pub fn leader_lease(&self) -> Duration {
        Duration::from_millis((self.election_max_ms * 3).max(1000))
    }
}

/// The openraft configuration for this server.
pub fn raft_config(cfg: &ServerConfig, timing: Timing) -> Result<Arc<openraft::Config>, String> {
    let c = openraft::Config {
        cluster_name: "ferrokeeper".into(),
        heartbeat_interval: timing.heartbeat_ms,
        election_timeout_min: timing.election_min_ms,
        election_timeout_max: timing.election_max_ms,
        install_snapshot_timeout: 10_000,
        max_payload_entries: network::MAX_ENTRIES_PER_APPEND,
        replication_lag_threshold: 1000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.snap_count.max(1000)),
        snapshot_max_chunk_size: 4 << 20,
        max_in_snapshot_log_to_keep: 1000,
        purge_batch_size: 1,
        ..Default::default()
    };
    c.validate().map(Arc::new).map_err(|e| format!("invalid Raft timing ({timing:?}): {e}"))
}

/// The ensemble as this server's configuration describes it.
#[derive(Debug, Clone)]
pub struct Ensemble {
    pub my_id: u64,
    pub voters: BTreeMap<u64, PeerNode>,
    pub observers: BTreeMap<u64, PeerNode>,
    /// Where this server dials each peer (its own configuration's view).
    pub quorum_addr: BTreeMap<u64, String>,
}

impl Ensemble {
    pub fn from_config(cfg: &ServerConfig) -> Self {
        let mut voters = BTreeMap::new();
        let mut observers = BTreeMap::new();
        let mut quorum_addr = BTreeMap::new();
        for s in &cfg.servers {
            let Some((host, quorum, election)) = s.addresses.first() else { continue };
            let client = s.client.as_ref().map(|(h, p)| format!("{h}:{p}")).unwrap_or_default();
            let node = PeerNode { addr: format!("{host}:{quorum}:{election}"), client };
            quorum_addr.insert(s.id as u64, format!("{host}:{quorum}"));
            match s.role {
                PeerRole::Participant => voters.insert(s.id as u64, node),
                PeerRole::Observer => observers.insert(s.id as u64, node),
            };
        }
        Ensemble { my_id: cfg.server_id as u64, voters, observers, quorum_addr }
    }

    pub fn is_observer(&self) -> bool {
        self.observers.contains_key(&self.my_id)
    }

    pub fn voter_ids(&self) -> BTreeSet<u64> {
        self.voters.keys().copied().collect()
    }
}

/// How a pristine voter joins: it founds a new ensemble (proposing the
/// configured voters as the first membership, as every other pristine voter
/// does) only once a majority of the configured voters answer that they are
/// pristine too. If any peer already belongs to an ensemble, it waits to be
/// replicated to instead: a server whose disk was wiped, or one that is
/// being added, must not start a second ensemble beside the first.
pub async fn bootstrap(raft: Raft, peers: Arc<network::Peers>, ensemble: Ensemble) {
    let others: Vec<u64> = ensemble.voters.keys().copied().filter(|id| *id != ensemble.my_id).collect();
    let majority = ensemble.voters.len() / 2 + 1;
    let mut logged = false;
    loop {
        if raft.is_initialized().await.unwrap_or(true) {
            return;
        }
        let mut pristine = 1; // this server
        let mut formed = None;
        for id in &others {
            match peers.link(*id).call(network::PeerReq::Status, Duration::from_millis(500)).await {
                Ok(network::PeerResp::Status { initialized: false }) => pristine += 1,
                Ok(network::PeerResp::Status { initialized: true }) => formed = Some(*id),
                _ => {}
            }
        }
        if let Some(id) = formed {
            tracing::info!(peer = id, "the ensemble exists already: waiting for its leader to replicate to us");
            return;
        }
        if pristine >= majority {
            match raft.initialize(ensemble.voters.clone()).await {
                Ok(()) => tracing::info!(voters = ?ensemble.voter_ids(), "founded a new ensemble"),
                Err(e) => tracing::info!(error = %e, "not founding the ensemble (already formed)"),
            }
            return;
        }
        if !logged {
            tracing::info!(pristine, majority, "waiting for a majority of the configured voters to be reachable");
            logged = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/zookeeper/config` as ZooKeeper writes it: one `server.N=` line per
/// member (`host:quorumPort:electionPort:role;clientAddress`), then
/// `version=` with the zxid of the configuration in hex.
pub fn config_text(membership: &openraft::Membership<u64, PeerNode>, zxid: i64) -> Vec<u8> {
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let mut out = String::new();
    for (id, node) in membership.nodes() {
        let role = if voters.contains(id) { "participant" } else { "observer" };
        out.push_str(&format!("server.{id}={}:{role}", node.addr));
        if !node.client.is_empty() {
            out.push(';');
            out.push_str(&node.client);
        }
        out.push('\n');
    }
    out.push_str(&format!("version={zxid:x}"));
    out.into_bytes()
}
