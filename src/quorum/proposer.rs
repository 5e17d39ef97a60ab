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
//! Batching: openraft 0.9 appends and fsyncs each client write on its own,
//! inside its core loop, so one write per Raft entry would cap an ensemble
//! at one fsync per write. Proposals bound for the same leader are therefore
//! gathered into one entry (a [`Batch`], at most [`MAX_BATCH`] transactions
//! or about [`BATCH_BYTES`]), with at most [`WINDOW`] batches in flight per
//! leader: while the window is full, proposals wait and the next batch grows
//! (group commit, as ZooKeeper's leader does). A batch commits or fails as a
//! whole, in order, so the per-connection rules below hold for batches.
//!
//! Committed proposals reach the core through the state machine, not from
//! here: the answers collected here only tell success from failure.

use super::network::{Link, PeerReq, PeerResp, Peers};
use super::{Batch, Raft, Txn, BATCH_BYTES, MAX_BATCH};
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
#[cfg_attr(feature = "deliberately-stale-follower", allow(dead_code))]
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

/// Batches in flight per leader, at most.
pub const WINDOW: usize = 2;

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

/// Proposals gathered for one leader, not sent yet.
#[derive(Default)]
struct Gathering {
    /// (connection, local reference) of each transaction, in order.
    items: Vec<(u64, u64)>,
    txns: Vec<Txn>,
    bytes: usize,
}

enum Done {
    Batch {
        leader: u64,
        items: Vec<(u64, u64)>,
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
    gathering: HashMap<u64, Gathering>,
    batches_in_flight: HashMap<u64, usize>,
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
        gathering: HashMap::new(),
        batches_in_flight: HashMap::new(),
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
                    Some(m) => {
                        self.on_msg(m).await;
                        // Whatever else is queued joins the same batches.
                        while let Ok(m) = rx.try_recv() {
                            self.on_msg(m).await;
                        }
                    }
                    None => return,
                },
                Some(done) = self.pending.next(), if !self.pending.is_empty() => self.on_done(done).await,
            }
            self.flush().await;
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

    /// Fails proposals at once (they were never sent anywhere).
    async fn fail(&mut self, items: Vec<(u64, u64)>) {
        self.finish(items, false).await;
    }

    /// Admits a proposal into the batch for the current leader, unless the
    /// connection's rules refuse it.
    async fn propose(&mut self, p: Proposal) {
        let (conn_id, local_ref) = (p.conn_id, p.local_ref);
        if conn_id != 0 && self.failed_conns.contains(&conn_id) {
            return self.fail(vec![(conn_id, local_ref)]).await;
        }
        let Some(leader) = self.leader() else {
            return self.fail(vec![(conn_id, local_ref)]).await;
        };
        let earlier = self.tracks.get(&conn_id).filter(|t| t.in_flight > 0).map(|t| t.route);
        if earlier.is_some_and(|r| r.leader != leader) {
            // The leader changed under in-flight writes of this connection.
            return self.fail(vec![(conn_id, local_ref)]).await;
        }
        let entry = entry::encode(0, &p);
        let g = self.gathering.entry(leader).or_default();
        g.bytes += entry.len();
        g.items.push((conn_id, local_ref));
        g.txns.push(Txn { local_ref, entry });
        if g.items.len() >= MAX_BATCH || g.bytes >= BATCH_BYTES {
            self.send_batch(leader).await;
        }
    }

    /// Sends what was gathered, for every leader whose window has room.
    async fn flush(&mut self) {
        let ready: Vec<u64> = self
            .gathering
            .iter()
            .filter(|(l, g)| !g.items.is_empty() && self.batches_in_flight.get(l).copied().unwrap_or(0) < WINDOW)
            .map(|(l, _)| *l)
            .collect();
        for leader in ready {
            self.send_batch(leader).await;
        }
    }

    async fn send_batch(&mut self, leader: u64) {
        let Some(g) = self.gathering.remove(&leader) else { return };
        if g.items.is_empty() {
            return;
        }
        if self.leader() != Some(leader) {
            // Gathered for a leader that is gone: nothing was sent.
            return self.fail(g.items).await;
        }
        let Gathering { mut items, mut txns, .. } = g;
        let (route, fut): (Route, Pending) = if leader == self.my_id {
            let batch = Batch { origin: self.my_id, boot: self.boot, txns };
            match self.raft.client_write_ff(batch).await {
                Ok(rx) => {
                    let done_items = items.clone();
                    (
                        Route { leader, epoch: 0 },
                        Box::pin(async move {
                            let ok = matches!(rx.await, Ok(Ok(_)));
                            Done::Batch { leader, items: done_items, ok }
                        }),
                    )
                }
                Err(_) => return self.fail(items).await,
            }
        } else {
            let link: Arc<Link> = self.peers.link(leader);
            // Every connection with writes in flight must go on in their
            // epoch; those whose epoch is gone fail (an earlier write of
            // theirs was lost).
            let epoch = link.epoch();
            let mut refused = Vec::new();
            let mut keep = Vec::new();
            for (item, txn) in items.drain(..).zip(txns.drain(..)) {
                let stale = self
                    .tracks
                    .get(&item.0)
                    .filter(|t| t.in_flight > 0)
                    .is_some_and(|t| t.route != Route { leader, epoch });
                if stale {
                    refused.push(item);
                } else {
                    keep.push((item, txn));
                }
            }
            if !refused.is_empty() {
                self.fail(refused).await;
            }
            if keep.is_empty() {
                return;
            }
            let (items, txns): (Vec<_>, Vec<_>) = keep.into_iter().unzip();
            let batch = Batch { origin: self.my_id, boot: self.boot, txns };
            match link.send(PeerReq::Forward(batch), Some(epoch)) {
                Ok(sent) => {
                    let done_items = items.clone();
                    let fut: Pending = Box::pin(async move {
                        let ok = matches!(sent.reply.await, Ok(PeerResp::Forward(Ok(()))));
                        Done::Batch { leader, items: done_items, ok }
                    });
                    self.track(&items, Route { leader, epoch });
                    *self.batches_in_flight.entry(leader).or_default() += 1;
                    self.pending.push(fut);
                    return;
                }
                Err(_) => return self.fail(items).await,
            }
        };
        self.track(&items, route);
        *self.batches_in_flight.entry(leader).or_default() += 1;
        self.pending.push(fut);
    }

    fn track(&mut self, items: &[(u64, u64)], route: Route) {
        for (conn_id, _) in items {
            if *conn_id != 0 {
                let t = self.tracks.entry(*conn_id).or_insert(Track { route, in_flight: 0 });
                t.route = route;
                t.in_flight += 1;
            }
        }
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
            #[cfg(feature = "deliberately-stale-follower")]
            Some(_) => Box::pin(async move { Done::Sync { local_ref, index: Some(0) } }),
            #[cfg(not(feature = "deliberately-stale-follower"))]
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

    /// The outcome of proposals: a failure closes their connections' way
    /// forward (see the module docs) and tells the core.
    async fn finish(&mut self, items: Vec<(u64, u64)>, ok: bool) {
        for (conn_id, local_ref) in items {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            if ok {
                continue;
            }
            if conn_id != 0 {
                self.failed_conns.insert(conn_id);
            }
            if local_ref != 0 {
                let _ = self.core.send(CoreMsg::ProposalFailed { local_ref }).await;
            }
        }
    }

    async fn on_done(&mut self, done: Done) {
        let msg = match done {
            Done::Batch { leader, items, ok } => {
                if let Some(n) = self.batches_in_flight.get_mut(&leader) {
                    *n = n.saturating_sub(1);
                }
                for (conn_id, _) in &items {
                    if let Some(t) = self.tracks.get_mut(conn_id) {
                        t.in_flight = t.in_flight.saturating_sub(1);
                        if t.in_flight == 0 {
                            self.tracks.remove(conn_id);
                        }
                    }
                }
                return self.finish(items, ok).await;
            }
            Done::Sync { local_ref, index: Some(index) } => CoreMsg::SyncReady { local_ref, index },
            Done::Sync { local_ref, index: None } => CoreMsg::ProposalFailed { local_ref },
            Done::Reconfig { local_ref, result: Some(Ok(zxid)) } => {
                CoreMsg::SyncReady { local_ref, index: super::index_of(zxid) }
            }
            Done::Reconfig { local_ref, result: Some(Err(code)) } => CoreMsg::BarrierFailed { local_ref, code },
            Done::Reconfig { local_ref, result: None } => CoreMsg::ProposalFailed { local_ref },
        };
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        let _ = self.core.send(msg).await;
    }
}
