//! The request pipeline: prep → propose → commit → finalize, run by one core
//! task that owns the tree, the sessions and the watches.
//!
//! ```text
//!  connection tasks ──CoreMsg──► core loop ──Proposal──► Propose (local / Raft)
//!   (prep runs there)              │  ▲                        │
//!                                  │  └──────CommitMsg─────────┘ (zxid order)
//!                                  ▼
//!            commit::SessionGate (per-session order) ─► finalize (apply, reads)
//!                                  │
//!                 replies + watch events ─► each connection's ordered queue
//! ```
//!
//! - Inputs: [`CoreMsg`] from connections (handshakes, prepped requests,
//!   disconnects, four-letter words) and from the quorum layer (role
//!   changes, failed proposals, sync points, followers' session activity),
//!   [`commit::CommitMsg`]s from the propose stage, and two timers (session
//!   expiry every half tick, container/TTL reaping).
//! - Outputs: encoded frames on each connection's bounded outbound queue.
//! - Invariants:
//!   - one task applies every write, in zxid order, and runs every read, so a
//!     watch set by a read cannot miss a later write, and a watch event is
//!     queued before the reply of the write that caused it;
//!   - per-session FIFO ([`commit`]);
//!   - only a standalone server or a quorum leader expires sessions and
//!     reaps containers; a follower reports its sessions' activity instead;
//!   - a server that is not serving (a quorum member without a leader, or a
//!     leader that lost its quorum) holds no client connections;
//!   - nothing here blocks on a connection: a connection whose queue is full
//!     is closed, the others go on.

pub mod commit;
pub mod finalize;
pub mod prep;
pub mod propose;

use crate::config::ServerConfig;
use crate::session::tracker::SessionTracker;
use crate::tree::watches::{ConnId, WatchManager};
use crate::tree::{DataTree, WriteOp};
use commit::{CommitMsg, InstalledState, SessionGate};
use jute::data::Id;
use jute::proto::ConnectRequest;
use prep::Read;
use propose::{LocalPropose, Proposal, Propose, SyncStart};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
// tokio's clock: the same as std's in a server, and virtual in the quorum simulation.
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a connection's writer task receives.
#[derive(Debug)]
pub enum Outbound {
    /// A complete frame, length prefix included.
    Frame(Vec<u8>),
    /// Flush what came before, then close the connection.
    Close,
}

/// The core's handle on one client connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: ConnId,
    pub addr: SocketAddr,
    pub out: mpsc::Sender<Outbound>,
    /// Cancelled to drop the connection at once (stuck client, shutdown).
    pub kill: CancellationToken,
}

/// One prepped request on its way to the core.
#[derive(Debug)]
pub struct ClientRequest {
    pub conn_id: ConnId,
    pub session_id: i64,
    pub xid: i32,
    pub opcode: i32,
    pub time_ms: i64,
    pub auth: Arc<Vec<Id>>,
    pub prepped: prep::Prepped,
    /// Released when the reply is queued: bounds outstanding requests.
    pub permit: Option<OwnedSemaphorePermit>,
    pub received: Instant,
}

/// The outcome of a handshake, for the connection task.
#[derive(Debug)]
pub enum ConnectOutcome {
    Accepted {
        session_id: i64,
    },
    /// The core queued the refusal (if any) and a close.
    Refused,
}

#[derive(Debug)]
pub enum CoreMsg {
    Connect {
        conn: ConnHandle,
        request: ConnectRequest,
        /// Whether the client sent the trailing readOnly byte (answer in kind).
        read_only_byte: bool,
        /// That byte: the client accepts a read-only server.
        read_only_allowed: bool,
        done: oneshot::Sender<ConnectOutcome>,
    },
    Request(ClientRequest),
    Disconnected {
        conn_id: ConnId,
    },
    FourLetter {
        cmd: String,
        reply: oneshot::Sender<String>,
    },
    /// Runs a read-only view function on the core's task, in order with
    /// everything else: how admin endpoints and metrics see consistent state.
    Inspect(Inspector),
    /// Stop proposing, let every proposed write commit (and reach its
    /// client), then answer and stop the core.
    Shutdown(oneshot::Sender<()>),
    /// From the quorum layer: the proposal or sync `local_ref` will not be
    /// committed through this server (leader lost, link broken). Its outcome
    /// is unknown to the client, which sees its connection close
    /// (ZooKeeper's ConnectionLoss) and retries.
    ProposalFailed {
        local_ref: u64,
    },
    /// From the quorum layer: the sync (or reconfig) `local_ref` completes
    /// once this server has applied the Raft entry at log `index` (the
    /// leader's commit point when the sync reached it; the new
    /// configuration's entry).
    SyncReady {
        local_ref: u64,
        index: u64,
    },
    /// From the quorum layer: the reconfig `local_ref` failed with this
    /// ZooKeeper error code (the connection stays).
    BarrierFailed {
        local_ref: u64,
        code: i32,
    },
    /// From the quorum layer: this server's role or serving state changed.
    Role(RoleInfo),
    /// On the leader: a follower's sessions had activity (id, timeout).
    SessionsTouched(Vec<(i64, i32)>),
}

/// This server's part in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standalone,
    Leader,
    Follower,
    Observer,
    /// A quorum member with no leader (an election is going on, or this
    /// server is cut off from the majority).
    Looking,
}

impl Role {
    /// ZooKeeper's `Mode:` word (`srvr`, `stat`) and `zk_server_state`.
    pub fn mode(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
            Role::Looking => "looking",
        }
    }
}

/// The role as the quorum layer sees it, with the leader-only counts the
/// four-letter words report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub role: Role,
    pub leader: Option<u64>,
    /// Whether this server takes client connections and requests.
    pub serving: bool,
    /// Not serving, but serving reads to read-only clients
    /// (`readonlymode.enabled`, once cut off for a grace period).
    pub read_only: bool,
    /// Leader only: voting followers, those among them whose log matches
    /// the leader's closely (`zk_synced_followers`), and observers.
    pub followers: usize,
    pub synced_followers: usize,
    pub observers: usize,
}

impl RoleInfo {
    pub fn standalone() -> Self {
        RoleInfo {
            role: Role::Standalone,
            leader: None,
            serving: true,
            read_only: false,
            followers: 0,
            synced_followers: 0,
            observers: 0,
        }
    }

    /// Whether client requests are answered at all (fully or read-only).
    pub fn answering(&self) -> bool {
        self.serving || self.read_only
    }

    /// ZooKeeper's server state word (`Mode:`, `zk_server_state`).
    pub fn mode(&self) -> &'static str {
        if !self.serving && self.read_only {
            "read-only"
        } else {
            self.role.mode()
        }
    }
}

/// A function run on the core's task (see [`CoreMsg::Inspect`]).
pub struct Inspector(pub Box<dyn FnOnce(&mut Core) + Send>);

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inspector")
    }
}

/// A read waiting for its turn (see [`commit`]).
#[derive(Debug)]
pub struct PendingRead {
    pub conn_id: ConnId,
    pub session_id: i64,
    pub xid: i32,
    pub opcode: i32,
    pub auth: Arc<Vec<Id>>,
    pub read: Read,
    pub permit: Option<OwnedSemaphorePermit>,
    pub received: Instant,
}

/// Who waits for a proposal's commit on this server.
#[derive(Debug)]
pub enum Waiter {
    Request {
        session_id: i64,
        conn_id: ConnId,
        xid: i32,
        opcode: i32,
        permit: Option<OwnedSemaphorePermit>,
        received: Instant,
    },
    Connect {
        conn_id: ConnId,
        timeout_ms: i32,
        read_only_byte: bool,
        done: oneshot::Sender<ConnectOutcome>,
    },
    /// A `sync` waiting for this server to reach the leader's commit point,
    /// or a `reconfig` for its new configuration (`path` None and
    /// `reconfig` true: answered with `/zookeeper/config`).
    Sync {
        session_id: i64,
        conn_id: ConnId,
        xid: i32,
        path: Option<String>,
        reconfig: bool,
        permit: Option<OwnedSemaphorePermit>,
        received: Instant,
    },
    /// An expiry (close) this server proposed.
    Expire {
        session_id: i64,
    },
}

#[derive(Debug)]
pub struct SessionInfo {
    /// Created by this server in read-only mode: known here only, never
    /// replicated, gone when the server rejoins the quorum.
    pub local: bool,
    pub timeout_ms: i32,
    pub conn: Option<ConnId>,
    /// Close or expiry proposed: new requests get SESSIONEXPIRED.
    pub closing: bool,
    /// The local reference of that close, so that a failed close (quorum
    /// leader lost) makes the session usable again.
    pub close_ref: u64,
}

#[derive(Debug)]
pub struct ConnState {
    pub handle: ConnHandle,
    /// Accepted while this server was read-only.
    pub read_only: bool,
    pub session_id: i64,
    /// The identities of the latest request: who watch events may reach.
    pub auth: Arc<Vec<Id>>,
    pub received: u64,
    pub sent: u64,
    pub established: SystemTime,
}

/// Counters for the four-letter words.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub min_latency_ms: u64,
    pub max_latency_ms: u64,
    pub total_latency_ms: u64,
    pub latency_count: u64,
    pub auth_failed: u64,
    /// Every request's latency in ms (`ferrokeeper_request_latency_ms`).
    pub request_latency: crate::admin::metrics::Summary,
    /// Reads only (ZooKeeper's `readlatency`), see [`Self::record_read_latency`].
    pub read_latency: crate::admin::metrics::Summary,
    /// Writes only (ZooKeeper's `updatelatency`), see [`Self::record_update_latency`].
    pub update_latency: crate::admin::metrics::Summary,
}

impl ServerStats {
    pub fn record_latency(&mut self, ms: u64) {
        if self.latency_count == 0 || ms < self.min_latency_ms {
            self.min_latency_ms = ms;
        }
        self.max_latency_ms = self.max_latency_ms.max(ms);
        self.total_latency_ms += ms;
        self.latency_count += 1;
        self.request_latency.record(ms);
    }
    /// A read's latency: [`Self::record_latency`] plus `readlatency`.
    pub fn record_read_latency(&mut self, ms: u64) {
        self.record_latency(ms);
        self.read_latency.record(ms);
    }
    /// A write's latency (reply after commit): [`Self::record_latency`] plus `updatelatency`.
    pub fn record_update_latency(&mut self, ms: u64) {
        self.record_latency(ms);
        self.update_latency.record(ms);
    }
    /// Mean latency in ms, rounded to 4 decimals as ZooKeeper reports it.
    pub fn avg_latency_ms(&self) -> f64 {
        if self.latency_count == 0 {
            return 0.0;
        }
        crate::admin::json::round4(self.total_latency_ms as f64 / self.latency_count as f64)
    }

    /// Minimum latency in ms; 0 before the first request.
    pub fn min_latency(&self) -> u64 {
        if self.latency_count == 0 {
            0
        } else {
            self.min_latency_ms
        }
    }

    pub fn reset(&mut self) {
        *self = ServerStats { auth_failed: self.auth_failed, ..Default::default() };
    }
}

pub fn wall_clock_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The core: owner of the tree, sessions, watches and the propose seam.
pub struct Core {
    pub cfg: Arc<ServerConfig>,
    pub tree: DataTree,
    pub watches: WatchManager,
    pub sessions: HashMap<i64, SessionInfo>,
    pub tracker: SessionTracker,
    pub conns: HashMap<ConnId, ConnState>,
    pub gate: SessionGate<PendingRead>,
    pub propose: Box<dyn Propose>,
    pub waiters: HashMap<u64, Waiter>,
    pub next_ref: u64,
    pub next_session_id: i64,
    pub stats: ServerStats,
    pub started: Instant,
    pub started_wall: SystemTime,
    pub snapshots: Option<Snapshotter>,
    /// Set once a shutdown is requested; answered when nothing is in flight.
    pub shutdown: Option<oneshot::Sender<()>>,
    /// The apply rules stamped on every proposal (from the configuration).
    pub rules: crate::tree::TreeConfig,
    /// This server's role (standalone, or as the quorum layer reports it).
    pub role: RoleInfo,
    /// Follower: sessions with activity here since the last report.
    pub touched: HashSet<i64>,
    /// Syncs waiting for this server to apply a Raft entry: index -> refs.
    pub pending_syncs: BTreeMap<u64, Vec<u64>>,
    /// In an ensemble: the last Raft entry applied in full.
    pub applied_index: u64,
}

/// Takes a snapshot every `snap_count` transactions, off the core's task,
/// then applies retention (snapshots, then log segments).
pub struct Snapshotter {
    pub dir: std::path::PathBuf,
    pub snap_count: u64,
    pub retain: usize,
    pub since_last: u64,
    pub in_progress: Arc<std::sync::atomic::AtomicBool>,
    pub purger: propose::LogPurger,
}

impl Snapshotter {
    pub fn new(cfg: &ServerConfig, purger: propose::LogPurger) -> Self {
        Snapshotter {
            dir: cfg.data_dir.clone(),
            snap_count: cfg.snap_count,
            retain: cfg.snap_retain_count,
            since_last: 0,
            in_progress: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            purger,
        }
    }
}

/// Capacity of the commit channel: proposals in flight.
pub const COMMIT_CHANNEL: usize = 65_536;

impl Core {
    /// An in-memory core (no log, no snapshots), for tests.
    pub fn in_memory(cfg: Arc<ServerConfig>) -> (Self, mpsc::Receiver<CommitMsg>) {
        let tree = DataTree::new(crate::snapshot::recovery::tree_config(&cfg));
        let (tx, rx) = mpsc::channel(COMMIT_CHANNEL);
        let propose = Box::new(LocalPropose::new(tree.last_zxid(), tx));
        (Core::new(cfg, tree, Vec::new(), propose, None), rx)
    }

    /// A core over recovered state. Recovered sessions get a full timeout
    /// from now before any of them can expire, as in ZooKeeper.
    pub fn new(
        cfg: Arc<ServerConfig>,
        tree: DataTree,
        sessions: Vec<(i64, i32)>,
        propose: Box<dyn Propose>,
        snapshots: Option<Snapshotter>,
    ) -> Self {
        // ZooKeeper's initializeNextSessionId: time in the low bytes, the
        // server id in the high byte; and never an id already in use.
        let time_based = ((((wall_clock_ms() as u64) << 24) >> 8) as i64) | (cfg.server_id << 56);
        let max_known = sessions.iter().map(|(id, _)| *id).filter(|id| id >> 56 == cfg.server_id).max();
        let next_session_id = max_known.map_or(time_based, |m| time_based.max(m + 1));
        let rules = crate::snapshot::recovery::tree_config(&cfg);
        let mut tracker = SessionTracker::new(cfg.tick_time_ms);
        let mut table = HashMap::new();
        for (id, timeout_ms) in sessions {
            tracker.touch(id, timeout_ms as u64, 0);
            table.insert(id, SessionInfo { local: false, timeout_ms, conn: None, closing: false, close_ref: 0 });
        }
        Core {
            tracker,
            cfg,
            tree,
            watches: WatchManager::default(),
            sessions: table,
            conns: HashMap::new(),
            gate: SessionGate::default(),
            propose,
            waiters: HashMap::new(),
            next_ref: 1,
            next_session_id,
            stats: ServerStats::default(),
            started: Instant::now(),
            started_wall: SystemTime::now(),
            snapshots,
            shutdown: None,
            rules,
            role: RoleInfo::standalone(),
            touched: HashSet::new(),
            pending_syncs: BTreeMap::new(),
            applied_index: 0,
        }
    }

    /// Whether this server decides session expiry and container reaping.
    fn decides_expiry(&self) -> bool {
        matches!(self.role.role, Role::Standalone | Role::Leader)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs the core until every sender of `inbox` is gone.
    pub async fn run(mut self, mut inbox: mpsc::Receiver<CoreMsg>, mut committed: mpsc::Receiver<CommitMsg>) {
        let tick = Duration::from_millis((self.cfg.tick_time_ms / 2).max(10));
        let mut expiry = tokio::time::interval(tick);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reaper = tokio::time::interval(Duration::from_millis(self.cfg.container_check_interval_ms));
        reaper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reaper.tick().await;
        loop {
            tokio::select! {
                biased;
                Some(c) = committed.recv() => {
                    self.on_commit_msg(c);
                    // Drain what is already committed before taking new work:
                    // replies leave in bursts, reads wait less.
                    while let Ok(c) = committed.try_recv() {
                        self.on_commit_msg(c);
                    }
                }
                msg = inbox.recv() => match msg {
                    Some(m) => self.on_message(m),
                    None => break,
                },
                _ = expiry.tick(), if self.shutdown.is_none() => self.expire_sessions(),
                _ = reaper.tick(), if self.shutdown.is_none() => self.reap_containers(),
            }
            if self.shutdown.is_some() && self.propose.idle(self.tree.last_zxid()) {
                if let Some(done) = self.shutdown.take() {
                    let _ = done.send(());
                }
                return;
            }
        }
    }

    fn on_message(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Connect { conn, request, read_only_byte, read_only_allowed, done } => {
                self.on_connect(conn, request, read_only_byte, read_only_allowed, done)
            }
            CoreMsg::Request(r) => self.on_request(r),
            CoreMsg::Disconnected { conn_id } => self.on_disconnect(conn_id),
            CoreMsg::Inspect(Inspector(f)) => f(self),
            CoreMsg::Shutdown(done) => self.shutdown = Some(done),
            CoreMsg::FourLetter { cmd, reply } => {
                let text = crate::admin::four_letter(self, &cmd);
                let _ = reply.send(text);
            }
            CoreMsg::ProposalFailed { local_ref } => self.on_proposal_failed(local_ref),
            CoreMsg::SyncReady { local_ref, index } => {
                if self.applied_index >= index {
                    self.complete_sync(local_ref);
                } else {
                    self.pending_syncs.entry(index).or_default().push(local_ref);
                }
            }
            CoreMsg::BarrierFailed { local_ref, code } => {
                if let Some(Waiter::Sync { session_id, conn_id, xid, permit, .. }) = self.waiters.remove(&local_ref) {
                    let frame = finalize::reply_frame(xid, self.tree.last_zxid(), code);
                    drop(permit);
                    self.release(session_id, local_ref, Some((conn_id, frame)));
                }
            }
            CoreMsg::Role(info) => self.on_role(info),
            CoreMsg::SessionsTouched(list) => {
                if self.role.role == Role::Leader {
                    let now = self.now_ms();
                    for (sid, timeout_ms) in list {
                        if self.sessions.get(&sid).is_some_and(|s| !s.closing) {
                            self.tracker.touch(sid, timeout_ms.max(0) as u64, now);
                        }
                    }
                }
            }
        }
    }

    fn on_commit_msg(&mut self, m: CommitMsg) {
        match m {
            CommitMsg::Txn(c) => self.on_committed(c),
            CommitMsg::Noop { zxid, config } => {
                let triggers = self.tree.advance(zxid, config);
                self.notify(&triggers, zxid);
                self.applied_index = crate::quorum::index_of(zxid);
                self.release_syncs();
            }
            CommitMsg::EntryApplied { index } => {
                self.applied_index = index;
                self.release_syncs();
            }
            CommitMsg::Install(state) => self.install(*state),
            CommitMsg::Snapshot(reply) => {
                let _ = reply.send(self.snapshot_source());
            }
        }
    }

    /// The state at the last applied zxid, shared copy-on-write.
    pub fn snapshot_source(&self) -> crate::snapshot::SnapshotSource {
        let mut sessions: Vec<(i64, i32)> =
            self.sessions.iter().filter(|(_, i)| !i.local).map(|(id, i)| (*id, i.timeout_ms)).collect();
        sessions.sort_unstable();
        crate::snapshot::SnapshotSource { zxid: self.tree.last_zxid(), sessions, nodes: self.tree.share_nodes() }
    }

    /// Answers the syncs whose entry this server has now applied.
    pub(super) fn release_syncs(&mut self) {
        let applied = self.applied_index;
        while let Some(entry) = self.pending_syncs.first_entry() {
            if *entry.key() > applied {
                break;
            }
            for r in entry.remove() {
                self.complete_sync(r);
            }
        }
    }

    fn complete_sync(&mut self, local_ref: u64) {
        let Some(Waiter::Sync { session_id, conn_id, xid, path, reconfig, permit, received }) =
            self.waiters.remove(&local_ref)
        else {
            return;
        };
        self.stats.record_read_latency(received.elapsed().as_millis() as u64);
        let zxid = self.tree.last_zxid();
        let frame = if reconfig {
            finalize::config_reply_frame(xid, zxid, &self.tree)
        } else {
            finalize::sync_reply_frame(xid, zxid, &path)
        };
        drop(permit);
        self.release(session_id, local_ref, Some((conn_id, frame)));
    }

    /// The session's request `local_ref` completed (with the reply to send,
    /// or None when nobody is answered): sends what the session's order now
    /// lets go out and runs the reads that waited for it.
    pub(super) fn release(&mut self, session_id: i64, local_ref: u64, reply: Option<(ConnId, Vec<u8>)>) {
        for item in self.gate.complete(session_id, local_ref, reply) {
            match item {
                commit::Ready::Reply(conn, frame) => self.send(conn, frame),
                commit::Ready::Read(r) => self.run_read(r),
            }
        }
    }

    /// A proposal or sync will not be committed through this server: the
    /// client's connection is closed (its outcome is unknown to it, as with
    /// ZooKeeper's ConnectionLoss), an expiry is undone.
    fn on_proposal_failed(&mut self, local_ref: u64) {
        let Some(w) = self.waiters.remove(&local_ref) else {
            return;
        };
        match w {
            Waiter::Request { session_id, conn_id, .. } | Waiter::Sync { session_id, conn_id, .. } => {
                // The connection goes first: nothing queued behind the
                // failed request may be answered on it as if it had not.
                self.drop_connection(conn_id);
                self.undo_close(session_id, local_ref);
                self.release(session_id, local_ref, None);
            }
            Waiter::Connect { conn_id, done, .. } => {
                self.drop_connection(conn_id);
                let _ = done.send(ConnectOutcome::Refused);
            }
            Waiter::Expire { session_id } => {
                self.undo_close(session_id, local_ref);
                self.release(session_id, local_ref, None);
            }
        }
    }

    /// A close of `session_id` proposed as `local_ref` failed: the session
    /// lives on (unless another close is under way) and is tracked again.
    fn undo_close(&mut self, session_id: i64, local_ref: u64) {
        let now = self.now_ms();
        if let Some(s) = self.sessions.get_mut(&session_id) {
            if s.closing && s.close_ref == local_ref {
                s.closing = false;
                s.close_ref = 0;
                self.tracker.touch(session_id, s.timeout_ms as u64, now);
            }
        }
    }

    fn on_role(&mut self, info: RoleInfo) {
        let was_leader = self.role.role == Role::Leader;
        let was_serving = self.role.serving;
        let was_read_only = self.role.read_only && !was_serving;
        if info.role != self.role.role || info.serving != was_serving || info.leader != self.role.leader {
            tracing::info!(
                mode = info.role.mode(),
                leader = ?info.leader,
                serving = info.serving,
                "quorum role changed"
            );
        }
        self.role = info;
        if self.role.role == Role::Leader && !was_leader {
            // A new leader gives every session a full timeout before it
            // expires any: followers' reports to the old leader are lost.
            let now = self.now_ms();
            for (sid, s) in &self.sessions {
                if !s.closing {
                    self.tracker.touch(*sid, s.timeout_ms as u64, now);
                }
            }
        }
        if was_serving && !self.role.serving {
            // As a ZooKeeper server that leaves the quorum: every client is
            // disconnected and reconnects to a server that can serve it.
            let conns: Vec<ConnId> = self.conns.keys().copied().collect();
            for c in conns {
                self.drop_connection(c);
            }
        }
        if was_read_only && (self.role.serving || !self.role.read_only) {
            // Leaving read-only mode (ZooKeeper stops its read-only server):
            // read-only clients reconnect, and look for a read-write server;
            // the sessions created here meanwhile end.
            let conns: Vec<ConnId> = self.conns.iter().filter(|(_, c)| c.read_only).map(|(id, _)| *id).collect();
            for c in conns {
                self.drop_connection(c);
            }
            let local: Vec<i64> = self.sessions.iter().filter(|(_, s)| s.local).map(|(id, _)| *id).collect();
            for sid in local {
                self.sessions.remove(&sid);
                self.tracker.remove(sid);
            }
        }
    }

    /// Replaces the whole state with one received from the leader. Every
    /// waiting request fails and every client reconnects (its watches are
    /// re-armed by setWatches against the new state), as when a ZooKeeper
    /// follower resynchronises with a snapshot.
    fn install(&mut self, st: InstalledState) {
        let refs: Vec<u64> = self.waiters.keys().copied().collect();
        for r in refs {
            self.on_proposal_failed(r);
        }
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            self.drop_connection(c);
        }
        self.pending_syncs.clear();
        self.gate = SessionGate::default();
        self.tree = st.tree;
        self.applied_index = st.index;
        self.sessions.clear();
        self.tracker = SessionTracker::new(self.cfg.tick_time_ms);
        let now = self.now_ms();
        for (id, timeout_ms) in st.sessions {
            self.tracker.touch(id, timeout_ms as u64, now);
            self.sessions
                .insert(id, SessionInfo { local: false, timeout_ms, conn: None, closing: false, close_ref: 0 });
        }
        tracing::info!(zxid = format_args!("0x{:x}", self.tree.last_zxid()), "installed a snapshot from the leader");
    }

    fn alloc_ref(&mut self) -> u64 {
        let r = self.next_ref;
        self.next_ref += 1;
        r
    }

    /// Proposes a write; `local_ref` (from [`Self::alloc_ref`], or 0 for a
    /// write nobody here waits for) names its waiter and gate slot, which
    /// the caller registered before.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        local_ref: u64,
        session_id: i64,
        cxid: i32,
        time_ms: i64,
        auth: Arc<Vec<Id>>,
        op: WriteOp,
        conn_id: ConnId,
    ) {
        let p = Proposal { session_id, cxid, time_ms, auth, op, rules: self.rules, local_ref, conn_id };
        if let Err(e) = self.propose.propose(p) {
            // Answering this write now (an error) could overtake the replies
            // of the session's earlier writes still in flight: the client's
            // connection is closed instead (ConnectionLoss), as for any
            // proposal that cannot be committed.
            tracing::warn!(error = %e, "proposal refused; closing the client's connection");
            self.on_proposal_failed(local_ref);
        }
    }

    fn on_connect(
        &mut self,
        conn: ConnHandle,
        req: ConnectRequest,
        read_only_byte: bool,
        read_only_allowed: bool,
        done: oneshot::Sender<ConnectOutcome>,
    ) {
        let conn_id = conn.id;
        let last_zxid = self.tree.last_zxid();
        let read_only = !self.role.serving;
        if read_only && !(self.role.read_only && read_only_allowed) {
            // Like a ZooKeeper server that is not running (no quorum), or a
            // read-only one and a client that wants to write: the client is
            // disconnected and tries another server.
            tracing::debug!(client = %conn.addr, "not serving (no quorum): refusing the session request");
            let _ = conn.out.try_send(Outbound::Close);
            let _ = done.send(ConnectOutcome::Refused);
            return;
        }
        if req.last_zxid_seen > last_zxid {
            tracing::info!(
                client = %conn.addr,
                "refusing session request: client has seen zxid 0x{:x}, our last zxid is 0x{:x}; client must try another server",
                req.last_zxid_seen, last_zxid
            );
            let _ = conn.out.try_send(Outbound::Close);
            let _ = done.send(ConnectOutcome::Refused);
            return;
        }
        let timeout_ms = self.cfg.negotiate_timeout(req.time_out);
        self.conns.insert(
            conn_id,
            ConnState {
                auth: Arc::new(vec![Id::new("ip", &conn.addr.ip().to_string())]),
                handle: conn,
                read_only,
                session_id: 0,
                received: 1,
                sent: 0,
                established: SystemTime::now(),
            },
        );
        if req.session_id == 0 {
            let session_id = self.next_session_id;
            self.next_session_id += 1;
            if let Some(c) = self.conns.get_mut(&conn_id) {
                c.session_id = session_id;
            }
            if read_only {
                // A read-only server's sessions are its own (ZooKeeper's
                // local sessions): nothing is proposed.
                let info = SessionInfo { local: true, timeout_ms, conn: Some(conn_id), closing: false, close_ref: 0 };
                self.sessions.insert(session_id, info);
                let now = self.now_ms();
                self.tracker.touch(session_id, timeout_ms as u64, now);
                let pw = crate::session::tracker::session_password(session_id);
                self.send(conn_id, finalize::connect_response_frame(timeout_ms, session_id, &pw, read_only_byte, true));
                let _ = done.send(ConnectOutcome::Accepted { session_id });
                return;
            }
            let local_ref = self.alloc_ref();
            self.waiters.insert(local_ref, Waiter::Connect { conn_id, timeout_ms, read_only_byte, done });
            self.submit(
                local_ref,
                session_id,
                0,
                wall_clock_ms(),
                Arc::new(vec![]),
                WriteOp::CreateSession { timeout_ms },
                conn_id,
            );
            return;
        }
        let sid = req.session_id;
        let valid = self.sessions.get(&sid).is_some_and(|s| !s.closing)
            && req.passwd == crate::session::tracker::session_password(sid);
        if !valid {
            tracing::info!(session = format_args!("0x{sid:x}"), "invalid session or password; refusing reconnect");
            self.send(conn_id, finalize::connect_response_frame(0, 0, &[0u8; 16], read_only_byte, read_only));
            self.close_after_flush(conn_id);
            let _ = done.send(ConnectOutcome::Refused);
            return;
        }
        // The session moves to this connection; the old one (if any) is closed.
        let old = self.sessions.get_mut(&sid).and_then(|s| {
            s.timeout_ms = timeout_ms;
            s.conn.replace(conn_id)
        });
        if let Some(old) = old.filter(|o| *o != conn_id) {
            self.drop_connection(old);
        }
        if let Some(c) = self.conns.get_mut(&conn_id) {
            c.session_id = sid;
        }
        let now = self.now_ms();
        self.tracker.touch(sid, timeout_ms as u64, now);
        self.touched.insert(sid);
        let frame = finalize::connect_response_frame(
            timeout_ms,
            sid,
            &crate::session::tracker::session_password(sid),
            read_only_byte,
            read_only,
        );
        self.send(conn_id, frame);
        let _ = done.send(ConnectOutcome::Accepted { session_id: sid });
    }

    fn on_request(&mut self, r: ClientRequest) {
        if self.shutdown.is_some() {
            // Stopping: take nothing new, but keep the connection so that the
            // replies of its writes already in flight still reach it. The
            // client sees the close when the process exits, and retries.
            return;
        }
        if !self.role.serving {
            let read_only_client = self.conns.get(&r.conn_id).is_some_and(|c| c.read_only);
            if !(self.role.read_only && read_only_client) {
                self.drop_connection(r.conn_id);
                return;
            }
            self.on_read_only_request(r);
            return;
        }
        self.stats.packets_received += 1;
        if let Some(c) = self.conns.get_mut(&r.conn_id) {
            c.received += 1;
            if !Arc::ptr_eq(&c.auth, &r.auth) {
                c.auth = r.auth.clone();
            }
        }
        let session_ok = self.sessions.get(&r.session_id).is_some_and(|s| !s.closing && s.conn == Some(r.conn_id));
        if !session_ok {
            let frame = finalize::reply_frame(r.xid, self.tree.last_zxid(), jute::proto::err::SESSION_EXPIRED);
            self.send(r.conn_id, frame);
            return;
        }
        if let Some(s) = self.sessions.get(&r.session_id) {
            let timeout = s.timeout_ms as u64;
            let now = self.now_ms();
            self.tracker.touch(r.session_id, timeout, now);
            self.touched.insert(r.session_id);
        }
        match r.prepped {
            prep::Prepped::Write(op) => {
                let local_ref = self.alloc_ref();
                if matches!(op, WriteOp::CloseSession) {
                    if let Some(s) = self.sessions.get_mut(&r.session_id) {
                        s.closing = true;
                        s.close_ref = local_ref;
                    }
                    self.tracker.remove(r.session_id);
                }
                self.gate.write(r.session_id, local_ref);
                let waiter = Waiter::Request {
                    session_id: r.session_id,
                    conn_id: r.conn_id,
                    xid: r.xid,
                    opcode: r.opcode,
                    permit: r.permit,
                    received: r.received,
                };
                self.waiters.insert(local_ref, waiter);
                self.submit(local_ref, r.session_id, r.xid, r.time_ms, r.auth, op, r.conn_id);
            }
            prep::Prepped::Read(Read::Sync { path }) if self.role.role != Role::Standalone => {
                // In a quorum, a sync waits until this server has applied
                // what the leader had committed when the sync reached it.
                let local_ref = self.alloc_ref();
                self.gate.write(r.session_id, local_ref);
                let waiter = Waiter::Sync {
                    session_id: r.session_id,
                    conn_id: r.conn_id,
                    xid: r.xid,
                    path,
                    reconfig: false,
                    permit: r.permit,
                    received: r.received,
                };
                self.waiters.insert(local_ref, waiter);
                match self.propose.sync(local_ref) {
                    Ok(SyncStart::Ready) => self.complete_sync(local_ref),
                    Ok(SyncStart::Pending) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "sync refused");
                        self.on_proposal_failed(local_ref);
                    }
                }
            }
            prep::Prepped::Read(Read::Reconfig(req)) => {
                let local_ref = self.alloc_ref();
                self.gate.write(r.session_id, local_ref);
                let waiter = Waiter::Sync {
                    session_id: r.session_id,
                    conn_id: r.conn_id,
                    xid: r.xid,
                    path: None,
                    reconfig: true,
                    permit: r.permit,
                    received: r.received,
                };
                self.waiters.insert(local_ref, waiter);
                let spec = crate::quorum::reconfig::ReconfigSpec {
                    joining: req.joining_servers,
                    leaving: req.leaving_servers,
                    new_members: req.new_members,
                    cur_config_id: req.cur_config_id,
                    auth: r.auth.iter().map(|id| (id.scheme.clone(), id.id.clone())).collect(),
                    standalone_enabled: self.cfg.standalone_enabled,
                };
                if let Err(e) = self.propose.reconfig(local_ref, spec) {
                    tracing::warn!(error = %e, "reconfig refused");
                    self.on_proposal_failed(local_ref);
                }
            }
            prep::Prepped::Read(read) => {
                let pending = PendingRead {
                    conn_id: r.conn_id,
                    session_id: r.session_id,
                    xid: r.xid,
                    opcode: r.opcode,
                    auth: r.auth,
                    read,
                    permit: r.permit,
                    received: r.received,
                };
                if let Some(p) = self.gate.read(r.session_id, pending) {
                    self.run_read(p);
                }
            }
        }
    }

    /// A request from a read-only client while this server is read-only
    /// (ZooKeeper's ReadOnlyRequestProcessor): reads are served from this
    /// server's state, writes and syncs are refused with NOTREADONLY, a close
    /// ends the session here (a replicated session is left to the leader).
    fn on_read_only_request(&mut self, r: ClientRequest) {
        self.stats.packets_received += 1;
        if let Some(c) = self.conns.get_mut(&r.conn_id) {
            c.received += 1;
            if !Arc::ptr_eq(&c.auth, &r.auth) {
                c.auth = r.auth.clone();
            }
        }
        let zxid = self.tree.last_zxid();
        let Some(s) = self.sessions.get(&r.session_id).filter(|s| s.conn == Some(r.conn_id)) else {
            self.send(r.conn_id, finalize::reply_frame(r.xid, zxid, jute::proto::err::SESSION_EXPIRED));
            return;
        };
        let (timeout, local) = (s.timeout_ms as u64, s.local);
        let now = self.now_ms();
        self.tracker.touch(r.session_id, timeout, now);
        match r.prepped {
            prep::Prepped::Write(WriteOp::CloseSession) => {
                if local {
                    self.sessions.remove(&r.session_id);
                    self.tracker.remove(r.session_id);
                }
                self.send(r.conn_id, finalize::reply_frame(r.xid, zxid, 0));
                self.close_after_flush(r.conn_id);
            }
            prep::Prepped::Write(_) | prep::Prepped::Read(Read::Sync { .. } | Read::Reconfig(_)) => {
                self.send(r.conn_id, finalize::reply_frame(r.xid, zxid, jute::proto::err::NOT_READ_ONLY));
            }
            prep::Prepped::Read(read) => self.run_read(PendingRead {
                conn_id: r.conn_id,
                session_id: r.session_id,
                xid: r.xid,
                opcode: r.opcode,
                auth: r.auth,
                read,
                permit: r.permit,
                received: r.received,
            }),
        }
    }

    fn on_disconnect(&mut self, conn_id: ConnId) {
        self.watches.remove_connection(conn_id);
        self.propose.connection_closed(conn_id);
        if let Some(c) = self.conns.remove(&conn_id) {
            if let Some(s) = self.sessions.get_mut(&c.session_id) {
                if s.conn == Some(conn_id) {
                    s.conn = None;
                }
            }
        }
    }

    /// Closes a connection at once (its queued frames may be lost).
    fn drop_connection(&mut self, conn_id: ConnId) {
        if let Some(c) = self.conns.get(&conn_id) {
            c.handle.kill.cancel();
        }
        self.on_disconnect(conn_id);
    }

    /// Closes a connection once its queued frames are written.
    pub fn close_after_flush(&mut self, conn_id: ConnId) {
        if let Some(c) = self.conns.get(&conn_id) {
            if c.handle.out.try_send(Outbound::Close).is_err() {
                c.handle.kill.cancel();
            }
        }
    }

    /// Queues a frame; a connection that cannot take it is closed.
    pub fn send(&mut self, conn_id: ConnId, frame: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn_id) else {
            return;
        };
        match c.handle.out.try_send(Outbound::Frame(frame)) {
            Ok(()) => {
                c.sent += 1;
                self.stats.packets_sent += 1;
            }
            Err(_) => {
                tracing::warn!(client = %c.handle.addr, "outbound queue full or closed; closing the connection");
                self.drop_connection(conn_id);
            }
        }
    }

    fn expire_sessions(&mut self) {
        if !self.role.serving && self.role.read_only {
            // Read-only: this server's own sessions expire here.
            let now = self.now_ms();
            for sid in self.tracker.expired(now) {
                if let Some(conn) = self.sessions.get(&sid).filter(|s| s.local).map(|s| s.conn) {
                    self.sessions.remove(&sid);
                    if let Some(c) = conn {
                        self.close_after_flush(c);
                    }
                }
            }
            return;
        }
        if !self.decides_expiry() {
            // A follower: the leader decides, from what we report.
            let touched: Vec<(i64, i32)> =
                self.touched.drain().filter_map(|sid| self.sessions.get(&sid).map(|s| (sid, s.timeout_ms))).collect();
            if !touched.is_empty() {
                self.propose.sessions_active(touched);
            }
            return;
        }
        self.touched.clear();
        let now = self.now_ms();
        for sid in self.tracker.expired(now) {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if s.closing {
                continue;
            }
            let local_ref = self.next_ref;
            self.next_ref += 1;
            s.closing = true;
            s.close_ref = local_ref;
            let timeout = s.timeout_ms;
            tracing::debug!(session = format_args!("0x{sid:x}"), timeout_ms = timeout, "session expired");
            self.gate.write(sid, local_ref);
            self.waiters.insert(local_ref, Waiter::Expire { session_id: sid });
            self.submit(local_ref, sid, 0, wall_clock_ms(), Arc::new(vec![]), WriteOp::CloseSession, 0);
        }
    }

    /// Counts a committed transaction; every `snap_count` of them, hands
    /// the tree (shared, copy-on-write) to a thread that writes a snapshot.
    fn maybe_snapshot(&mut self) {
        let Some(s) = self.snapshots.as_mut() else { return };
        s.since_last += 1;
        if s.since_last < s.snap_count || s.in_progress.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        s.since_last = 0;
        s.in_progress.store(true, std::sync::atomic::Ordering::Release);
        let (dir, retain, in_progress, purger) = (s.dir.clone(), s.retain, s.in_progress.clone(), s.purger.clone());
        let src = self.snapshot_source();
        crate::snapshot::write_in_background(dir, retain, src, in_progress, move |oldest| purger.purge_before(oldest));
    }

    fn reap_containers(&mut self) {
        if !self.decides_expiry() {
            return;
        }
        let per_interval =
            (self.cfg.container_max_per_minute as u64 * self.cfg.container_check_interval_ms / 60_000).max(1);
        let now = wall_clock_ms();
        for path in self.tree.reap_candidates(now, per_interval as usize) {
            tracing::debug!(%path, "reaping container or expired TTL node");
            self.submit(0, 0, 0, now, Arc::new(vec![]), WriteOp::DeleteContainer { path }, 0);
        }
    }
}
