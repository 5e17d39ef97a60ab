//! Stage 2 in a quorum: the Raft implementation of the `Propose` seam.
//!
//! - Inputs: proposals, syncs, session activity and connection closes from
//!   the core ([`QuorumPropose`], non-blocking).
//! - Outputs: client writes to openraft (on the leader) or forwarded to the
//!   leader over its peer link (elsewhere); `CoreMsg::ProposalFailed` for a
//!   proposal that will not commit through us, `CoreMsg::SyncReady` with the
//!   leader's commit point for a sync; activity reports to the leader.
//! - Invariants (per client connection, the unit of ZooKeeper's FIFO order):
//!   - its proposals go to the leader in the order the core sent them;
//!   - while any of them is in flight, the next goes to the same leader over
//!     the same link connection (epoch), or fails;
//!   - once one fails, every later one from that connection fails too,
//!     until the core reports the connection closed: a write never commits
//!     after an earlier write of its connection was lost.
//!
//! Committed proposals reach the core through the state machine, not from
//! here: the answers collected here only tell success from failure.

use super::network::{Link, PeerReq, PeerResp, Peers};
use super::{Raft, Request};
use crate::pipeline::propose::{Proposal, Propose, ProposeError, SyncStart};
use crate::pipeline::CoreMsg;
use crate::txnlog::entry;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a follower waits for the leader's read index for a sync.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a follower waits for the leader to run a reconfiguration.
const RECONFIG_TIMEOUT: Duration = Duration::from_secs(60);

enum Msg {
    Propose(Proposal),
    Sync(u64),
    Reconfig(u64, super::reconfig::ReconfigSpec),
    Active(Vec<(i64, i32)>),
    ConnClosed(u64),
}

/// The core's handle (the `Propose` implementation of a quorum member).
pub struct QuorumPropose {
    tx: mpsc::Sender<Msg>,
    in_flight: Arc<AtomicUsize>,
}

impl QuorumPropose {
    fn queue(&self, m: Msg) -> Result<(), ProposeError> {
        self.tx.try_send(m).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ProposeError::Full,
            mpsc::error::TrySendError::Closed(_) => ProposeError::Closed,
        })
    }
}

impl Propose for QuorumPropose {
    fn propose(&mut self, proposal: Proposal) -> Result<(), ProposeError> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.queue(Msg::Propose(proposal)).inspect_err(|_| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        })
    }

    fn sync(&mut self, local_ref: u64) -> Result<SyncStart, ProposeError> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.queue(Msg::Sync(local_ref)).inspect_err(|_| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        })?;
        Ok(SyncStart::Pending)
    }

    fn idle(&self, _last_applied_zxid: i64) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn sessions_active(&mut self, sessions: Vec<(i64, i32)>) {
        let _ = self.queue(Msg::Active(sessions));
    }

    fn connection_closed(&mut self, conn_id: u64) {
        let _ = self.queue(Msg::ConnClosed(conn_id));
    }

    fn reconfig(&mut self, local_ref: u64, spec: super::reconfig::ReconfigSpec) -> Result<(), ProposeError> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.queue(Msg::Reconfig(local_ref, spec)).inspect_err(|_| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        })
    }
}

/// Where a connection's in-flight proposals went: (leader, link epoch).
/// The leader itself is epoch 0 of its own id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Route {
    leader: u64,
    epoch: u64,
}

struct Track {
    route: Route,
    in_flight: usize,
}

enum Done {
    Write {
        conn_id: u64,
        local_ref: u64,
        ok: bool,
    },
    Sync {
        local_ref: u64,
        index: Option<u64>,
    },
    /// None: the request was lost; Some(Err): refused with that code.
    Reconfig {
        local_ref: u64,
        result: Option<Result<i64, i32>>,
    },
}

type Pending = Pin<Box<dyn Future<Output = Done> + Send>>;

/// The proposer task's state.
struct Proposer {
    raft: Raft,
    metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, super::PeerNode>>,
    peers: Arc<Peers>,
    my_id: u64,
    boot: u64,
    core: mpsc::Sender<CoreMsg>,
    in_flight: Arc<AtomicUsize>,
    tracks: HashMap<u64, Track>,
    failed_conns: HashSet<u64>,
    pending: FuturesUnordered<Pending>,
}

/// Starts the proposer task; returns the core's handle.
pub fn start(raft: Raft, peers: Arc<Peers>, boot: u64, core: mpsc::Sender<CoreMsg>, capacity: usize) -> QuorumPropose {
    let (tx, rx) = mpsc::channel(capacity);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let p = Proposer {
        metrics: raft.metrics(),
        raft,
        my_id: peers.my_id(),
        peers,
        boot,
        core,
        in_flight: in_flight.clone(),
        tracks: HashMap::new(),
        failed_conns: HashSet::new(),
        pending: FuturesUnordered::new(),
    };
    tokio::spawn(p.run(rx));
    QuorumPropose { tx, in_flight }
}

impl Proposer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.on_msg(m).await,
                    None => return,
                },
                Some(done) = self.pending.next(), if !self.pending.is_empty() => self.on_done(done).await,
            }
        }
    }

    fn leader(&self) -> Option<u64> {
        self.metrics.borrow().current_leader
    }

    async fn on_msg(&mut self, m: Msg) {
        match m {
            Msg::Propose(p) => self.propose(p).await,
            Msg::Sync(local_ref) => self.sync(local_ref),
            Msg::Reconfig(local_ref, spec) => self.reconfig(local_ref, spec),
            Msg::Active(list) => match self.leader() {
                Some(l) if l != self.my_id => self.peers.link(l).notify(PeerReq::Touch(list)),
                Some(_) => {
                    let _ = self.core.try_send(CoreMsg::SessionsTouched(list));
                }
                None => {}
            },
            Msg::ConnClosed(c) => {
                self.failed_conns.remove(&c);
                self.tracks.remove(&c);
            }
        }
    }

    /// Fails a proposal at once (it was never sent anywhere).
    async fn fail_now(&mut self, conn_id: u64, local_ref: u64) {
        self.on_done(Done::Write { conn_id, local_ref, ok: false }).await;
    }

    async fn propose(&mut self, p: Proposal) {
        let (conn_id, local_ref) = (p.conn_id, p.local_ref);
        if conn_id != 0 && self.failed_conns.contains(&conn_id) {
            return self.fail_now(conn_id, local_ref).await;
        }
        let Some(leader) = self.leader() else {
            return self.fail_now(conn_id, local_ref).await;
        };
        let earlier = self.tracks.get(&conn_id).filter(|t| t.in_flight > 0).map(|t| t.route);
        if earlier.is_some_and(|r| r.leader != leader) {
            // The leader changed under in-flight writes of this connection.
            return self.fail_now(conn_id, local_ref).await;
        }
        let req = Request { origin: self.my_id, boot: self.boot, local_ref, entry: entry::encode(0, &p) };
        let (route, fut): (Route, Pending) = if leader == self.my_id {
            match self.raft.client_write_ff(req).await {
                Ok(rx) => (
                    Route { leader, epoch: 0 },
                    Box::pin(async move { Done::Write { conn_id, local_ref, ok: matches!(rx.await, Ok(Ok(_))) } }),
                ),
                Err(_) => return self.fail_now(conn_id, local_ref).await,
            }
        } else {
            let link: Arc<Link> = self.peers.link(leader);
            match link.send(PeerReq::Forward(req), earlier.map(|r| r.epoch)) {
                Ok(sent) => (
                    Route { leader, epoch: sent.epoch },
                    Box::pin(async move {
                        let ok = matches!(sent.reply.await, Ok(PeerResp::Forward(Ok(()))));
                        Done::Write { conn_id, local_ref, ok }
                    }),
                ),
                Err(_) => return self.fail_now(conn_id, local_ref).await,
            }
        };
        if conn_id != 0 {
            let t = self.tracks.entry(conn_id).or_insert(Track { route, in_flight: 0 });
            t.route = route;
            t.in_flight += 1;
        }
        self.pending.push(fut);
    }

    fn sync(&mut self, local_ref: u64) {
        let fut: Pending = match self.leader() {
            None => Box::pin(async move { Done::Sync { local_ref, index: None } }),
            Some(l) if l == self.my_id => {
                let raft = self.raft.clone();
                Box::pin(async move {
                    let index = raft.get_read_log_id().await.ok().map(|(read, _)| read.map_or(0, |l| l.index));
                    Done::Sync { local_ref, index }
                })
            }
            Some(l) => {
                let link = self.peers.link(l);
                Box::pin(async move {
                    let index = match link.call(PeerReq::ReadIndex, SYNC_TIMEOUT).await {
                        Ok(PeerResp::ReadIndex(Ok(i))) => Some(i),
                        _ => None,
                    };
                    Done::Sync { local_ref, index }
                })
            }
        };
        self.pending.push(fut);
    }

    fn reconfig(&mut self, local_ref: u64, spec: super::reconfig::ReconfigSpec) {
        let fut: Pending = match self.leader() {
            None => Box::pin(async move { Done::Reconfig { local_ref, result: None } }),
            Some(l) if l == self.my_id => {
                let (raft, core, peers) = (self.raft.clone(), self.core.clone(), self.peers.clone());
                Box::pin(async move {
                    let result = Some(super::reconfig::run(&raft, &core, &peers, spec).await);
                    Done::Reconfig { local_ref, result }
                })
            }
            Some(l) => {
                let link = self.peers.link(l);
                Box::pin(async move {
                    let result = match link.call(PeerReq::Reconfig(spec), RECONFIG_TIMEOUT).await {
                        Ok(PeerResp::Reconfig(r)) => Some(r),
                        _ => None,
                    };
                    Done::Reconfig { local_ref, result }
                })
            }
        };
        self.pending.push(fut);
    }

    async fn on_done(&mut self, done: Done) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        let msg = match done {
            Done::Write { conn_id, local_ref, ok } => {
                if let Some(t) = self.tracks.get_mut(&conn_id) {
                    t.in_flight = t.in_flight.saturating_sub(1);
                    if t.in_flight == 0 {
                        self.tracks.remove(&conn_id);
                    }
                }
                if ok {
                    return;
                }
                if conn_id != 0 {
                    self.failed_conns.insert(conn_id);
                }
                if local_ref == 0 {
                    return;
                }
                CoreMsg::ProposalFailed { local_ref }
            }
            Done::Sync { local_ref, index: Some(i) } => CoreMsg::SyncReady { local_ref, zxid: i as i64 },
            Done::Sync { local_ref, index: None } => CoreMsg::ProposalFailed { local_ref },
            Done::Reconfig { local_ref, result: Some(Ok(zxid)) } => CoreMsg::SyncReady { local_ref, zxid },
            Done::Reconfig { local_ref, result: Some(Err(code)) } => CoreMsg::BarrierFailed { local_ref, code },
            Done::Reconfig { local_ref, result: None } => CoreMsg::ProposalFailed { local_ref },
        };
        let _ = self.core.send(msg).await;
    }
}
