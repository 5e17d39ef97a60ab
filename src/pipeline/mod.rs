//! The request pipeline: prep → propose → commit → finalize, run by one core
//! task that owns the tree, the sessions and the watches.
//!
//! ```text
//!  connection tasks ──CoreMsg──► core loop ──Proposal──► Propose (local / Raft)
//!   (prep runs there)              │  ▲                        │
//!                                  │  └──────Committed─────────┘ (zxid order)
//!                                  ▼
//!            commit::SessionGate (per-session order) ─► finalize (apply, reads)
//!                                  │
//!                 replies + watch events ─► each connection's ordered queue
//! ```
//!
//! - Inputs: [`CoreMsg`] from connections (handshakes, prepped requests,
//!   disconnects, four-letter words), committed proposals, and two timers
//!   (session expiry every tick, container/TTL reaping).
//! - Outputs: encoded frames on each connection's bounded outbound queue.
//! - Invariants:
//!   - one task applies every write, in zxid order, and runs every read, so a
//!     watch set by a read cannot miss a later write, and a watch event is
//!     queued before the reply of the write that caused it;
//!   - per-session FIFO ([`commit`]);
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
use commit::SessionGate;
use jute::data::Id;
use jute::proto::ConnectRequest;
use prep::Read;
use propose::{Committed, LocalPropose, Proposal, Propose};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
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
    Request { conn_id: ConnId, xid: i32, opcode: i32, permit: Option<OwnedSemaphorePermit>, received: Instant },
    Connect { conn_id: ConnId, timeout_ms: i32, read_only_byte: bool, done: oneshot::Sender<ConnectOutcome> },
}

#[derive(Debug)]
pub struct SessionInfo {
    pub timeout_ms: i32,
    pub conn: Option<ConnId>,
    /// Close or expiry proposed: new requests get SESSIONEXPIRED.
    pub closing: bool,
}

#[derive(Debug)]
pub struct ConnState {
    pub handle: ConnHandle,
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
    pub fn in_memory(cfg: Arc<ServerConfig>) -> (Self, mpsc::Receiver<Committed>) {
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
            table.insert(id, SessionInfo { timeout_ms, conn: None, closing: false });
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
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs the core until every sender of `inbox` is gone.
    pub async fn run(mut self, mut inbox: mpsc::Receiver<CoreMsg>, mut committed: mpsc::Receiver<Committed>) {
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
                    self.on_committed(c);
                    // Drain what is already committed before taking new work:
                    // replies leave in bursts, reads wait less.
                    while let Ok(c) = committed.try_recv() {
                        self.on_committed(c);
                    }
                }
                msg = inbox.recv() => match msg {
                    Some(m) => self.on_message(m),
                    None => break,
                },
                _ = expiry.tick(), if self.shutdown.is_none() => self.expire_sessions(),
                _ = reaper.tick(), if self.shutdown.is_none() => self.reap_containers(),
            }
            if self.shutdown.is_some() && self.propose.next_zxid() == self.tree.last_zxid() + 1 {
                if let Some(done) = self.shutdown.take() {
                    let _ = done.send(());
                }
                return;
            }
        }
    }

    fn on_message(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Connect { conn, request, read_only_byte, done } => {
                self.on_connect(conn, request, read_only_byte, done)
            }
            CoreMsg::Request(r) => self.on_request(r),
            CoreMsg::Disconnected { conn_id } => self.on_disconnect(conn_id),
            CoreMsg::Inspect(Inspector(f)) => f(self),
            CoreMsg::Shutdown(done) => self.shutdown = Some(done),
            CoreMsg::FourLetter { cmd, reply } => {
                let text = crate::admin::four_letter(self, &cmd);
                let _ = reply.send(text);
            }
        }
    }

    fn alloc_ref(&mut self) -> u64 {
        let r = self.next_ref;
        self.next_ref += 1;
        r
    }

    fn submit(
        &mut self,
        session_id: i64,
        cxid: i32,
        time_ms: i64,
        auth: Arc<Vec<Id>>,
        op: WriteOp,
        waiter: Option<Waiter>,
    ) {
        let local_ref = if waiter.is_some() { self.alloc_ref() } else { 0 };
        let p = Proposal { session_id, cxid, time_ms, auth, op, rules: self.rules, local_ref };
        match self.propose.propose(p) {
            Ok(()) => {
                if let Some(w) = waiter {
                    self.waiters.insert(local_ref, w);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "proposal refused");
                if let Some(Waiter::Request { conn_id, xid, .. }) = waiter {
                    let frame = finalize::reply_frame(xid, self.tree.last_zxid(), jute::proto::err::SYSTEM_ERROR);
                    self.send(conn_id, frame);
                }
            }
        }
    }

    fn on_connect(
        &mut self,
        conn: ConnHandle,
        req: ConnectRequest,
        read_only_byte: bool,
        done: oneshot::Sender<ConnectOutcome>,
    ) {
        let conn_id = conn.id;
        let last_zxid = self.tree.last_zxid();
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
            let waiter = Waiter::Connect { conn_id, timeout_ms, read_only_byte, done };
            self.submit(
                session_id,
                0,
                wall_clock_ms(),
                Arc::new(vec![]),
                WriteOp::CreateSession { timeout_ms },
                Some(waiter),
            );
            return;
        }
        let sid = req.session_id;
        let valid = self.sessions.get(&sid).is_some_and(|s| !s.closing)
            && req.passwd == crate::session::tracker::session_password(sid);
        if !valid {
            tracing::info!(session = format_args!("0x{sid:x}"), "invalid session or password; refusing reconnect");
            self.send(conn_id, finalize::connect_response_frame(0, 0, &[0u8; 16], read_only_byte));
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
        let frame = finalize::connect_response_frame(
            timeout_ms,
            sid,
            &crate::session::tracker::session_password(sid),
            read_only_byte,
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
        }
        match r.prepped {
            prep::Prepped::Write(op) => {
                if matches!(op, WriteOp::CloseSession) {
                    if let Some(s) = self.sessions.get_mut(&r.session_id) {
                        s.closing = true;
                    }
                    self.tracker.remove(r.session_id);
                }
                self.gate.write(r.session_id);
                let waiter = Waiter::Request {
                    conn_id: r.conn_id,
                    xid: r.xid,
                    opcode: r.opcode,
                    permit: r.permit,
                    received: r.received,
                };
                self.submit(r.session_id, r.xid, r.time_ms, r.auth, op, Some(waiter));
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

    fn on_disconnect(&mut self, conn_id: ConnId) {
        self.watches.remove_connection(conn_id);
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
        let now = self.now_ms();
        for sid in self.tracker.expired(now) {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if s.closing {
                continue;
            }
            s.closing = true;
            let timeout = s.timeout_ms;
            tracing::debug!(session = format_args!("0x{sid:x}"), timeout_ms = timeout, "session expired");
            self.gate.write(sid);
            self.submit(sid, 0, wall_clock_ms(), Arc::new(vec![]), WriteOp::CloseSession, None);
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
        let mut sessions: Vec<(i64, i32)> = self.sessions.iter().map(|(id, i)| (*id, i.timeout_ms)).collect();
        sessions.sort_unstable();
        let src =
            crate::snapshot::SnapshotSource { zxid: self.tree.last_zxid(), sessions, nodes: self.tree.share_nodes() };
        let purger = s.purger.clone();
        crate::snapshot::write_in_background(s.dir.clone(), s.retain, src, s.in_progress.clone(), move |oldest| {
            purger.purge_before(oldest)
        });
    }

    fn reap_containers(&mut self) {
        let per_interval =
            (self.cfg.container_max_per_minute as u64 * self.cfg.container_check_interval_ms / 60_000).max(1);
        let now = wall_clock_ms();
        for path in self.tree.reap_candidates(now, per_interval as usize) {
            tracing::debug!(%path, "reaping container or expired TTL node");
            self.submit(0, 0, now, Arc::new(vec![]), WriteOp::DeleteContainer { path }, None);
        }
    }
}
