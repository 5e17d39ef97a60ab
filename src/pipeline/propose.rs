//! Stage 2, propose: make a write durable and ordered, and give it its zxid.
//!
//! - Inputs: [`Proposal`]s from prep (through the core loop).
//! - Outputs: [`Committed`] proposals on the commit channel (as
//!   [`CommitMsg::Txn`]), in zxid order.
//! - Contract of [`Propose`] (every implementation):
//!   - one proposal gets exactly one zxid, failed operations included (as in
//!     ZooKeeper, where a failed write becomes an error txn);
//!   - a proposal is released to the commit channel only once it is durable
//!     (standalone: on the local log; quorum: on a majority);
//!   - proposals are released in zxid order, with no gaps;
//!   - `propose` does not block the caller: back-pressure is the bounded
//!     channels around it;
//!   - a proposal that cannot be committed after all (a quorum lost its
//!     leader) is reported to the core as `CoreMsg::ProposalFailed` with its
//!     `local_ref`; it may still commit later (its outcome is unknown, as a
//!     ZooKeeper client's ConnectionLoss), and then it has no waiter.
//!
//! Implementations: [`DurablePropose`] (standalone: the fsync'd [`TxnLog`],
//! group commit on a dedicated thread), [`LocalPropose`] (in memory, for
//! tests) and `quorum::proposer::QuorumPropose` (Raft).

use super::commit::CommitMsg;
use crate::tree::WriteOp;
use crate::txnlog::{entry, TxnLog};
use jute::data::Id;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A write, stamped at prep. Everything `apply` needs travels here.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub session_id: i64,
    pub cxid: i32,
    pub time_ms: i64,
    pub auth: Arc<Vec<Id>>,
    pub op: WriteOp,
    /// The apply-time settings in force at proposal (see `TxnContext::rules`).
    pub rules: crate::tree::TreeConfig,
    /// Local bookkeeping only (never replicated): which waiting request this
    /// proposal answers on this server.
    pub local_ref: u64,
    /// Local bookkeeping only: the connection that sent it (0: none). A
    /// quorum proposer refuses a connection's later proposals once one of
    /// its earlier ones failed, so that no later write overtakes a lost one.
    pub conn_id: u64,
}

#[derive(Debug)]
pub struct Committed {
    pub zxid: i64,
    pub proposal: Proposal,
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("the commit channel is closed")]
    Closed,
    #[error("too many proposals in flight")]
    Full,
}

/// How a `sync` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStart {
    /// Everything committed before it is applied here already (standalone:
    /// this server's log order is the only order).
    Ready,
    /// Answered later by `CoreMsg::SyncReady` (or `ProposalFailed`).
    Pending,
}

pub trait Propose: Send {
    fn propose(&mut self, proposal: Proposal) -> Result<(), ProposeError>;
    /// Starts a `sync` for `local_ref`: done once this server has applied
    /// every write the ensemble committed before it.
    fn sync(&mut self, local_ref: u64) -> Result<SyncStart, ProposeError>;
    /// True when nothing proposed is still waiting to be committed, given
    /// the zxid the core applied last (graceful shutdown waits for it).
    fn idle(&self, last_applied_zxid: i64) -> bool;
    /// Sessions with activity on this server since the last call (every half
    /// tick): a quorum follower reports them to the leader, which alone
    /// expires sessions. Standalone: nothing to do.
    fn sessions_active(&mut self, _sessions: Vec<(i64, i32)>) {}
    /// A connection is gone: the proposer may forget what it kept about it.
    fn connection_closed(&mut self, _conn_id: u64) {}
    /// Starts a reconfiguration for `local_ref`, answered later by
    /// `CoreMsg::SyncReady` (the zxid of the new configuration) or
    /// `CoreMsg::BarrierFailed` (a ZooKeeper error code). Only an ensemble
    /// can; prep refuses it elsewhere.
    fn reconfig(&mut self, _local_ref: u64, _spec: crate::quorum::reconfig::ReconfigSpec) -> Result<(), ProposeError> {
        Err(ProposeError::Closed)
    }
}

/// Standalone, in memory: zxids count up from the last applied one, and a
/// proposal is committed as soon as it is ordered.
pub struct LocalPropose {
    next_zxid: i64,
    committed: mpsc::Sender<CommitMsg>,
}

impl LocalPropose {
    pub fn new(last_zxid: i64, committed: mpsc::Sender<CommitMsg>) -> Self {
        LocalPropose { next_zxid: last_zxid + 1, committed }
    }
}

impl Propose for LocalPropose {
    fn propose(&mut self, proposal: Proposal) -> Result<(), ProposeError> {
        let zxid = self.next_zxid;
        self.committed.try_send(CommitMsg::Txn(Committed { zxid, proposal })).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ProposeError::Full,
            mpsc::error::TrySendError::Closed(_) => ProposeError::Closed,
        })?;
        self.next_zxid += 1;
        Ok(())
    }

    fn sync(&mut self, _local_ref: u64) -> Result<SyncStart, ProposeError> {
        Ok(SyncStart::Ready)
    }

    fn idle(&self, last_applied_zxid: i64) -> bool {
        self.next_zxid == last_applied_zxid + 1
    }
}

/// What the log thread is asked to do, in order.
enum LogMsg {
    Append(i64, Proposal),
    /// Drop log segments wholly before this zxid (a snapshot covers them).
    PurgeBefore(i64),
}

/// Standalone and durable: proposals are appended to the transaction log by
/// one thread that batches whatever is waiting into one write and one
/// `fdatasync` (group commit), and only then releases them as committed.
pub struct DurablePropose {
    next_zxid: i64,
    tx: std::sync::mpsc::SyncSender<LogMsg>,
}

/// Proposals in one group commit, at most.
const MAX_BATCH: usize = 4096;

impl DurablePropose {
    /// Starts the log thread. `fsync_warn` is ZooKeeper's
    /// `fsync.warningthresholdms`.
    pub fn start(
        log: TxnLog,
        committed: mpsc::Sender<CommitMsg>,
        capacity: usize,
        fsync_warn: Duration,
    ) -> std::io::Result<Self> {
        let next_zxid = log.last_zxid() + 1;
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        std::thread::Builder::new().name("txnlog".into()).spawn(move || log_thread(log, rx, committed, fsync_warn))?;
        Ok(DurablePropose { next_zxid, tx })
    }

    /// A handle the snapshotter uses to ask for log purges.
    pub fn purger(&self) -> LogPurger {
        LogPurger(self.tx.clone())
    }
}

/// Asks the log thread to remove segments a snapshot made unnecessary.
#[derive(Clone)]
pub struct LogPurger(std::sync::mpsc::SyncSender<LogMsg>);

impl LogPurger {
    pub fn purge_before(&self, zxid: i64) {
        let _ = self.0.try_send(LogMsg::PurgeBefore(zxid));
    }
}

impl Propose for DurablePropose {
    fn propose(&mut self, proposal: Proposal) -> Result<(), ProposeError> {
        let zxid = self.next_zxid;
        self.tx.try_send(LogMsg::Append(zxid, proposal)).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(_) => ProposeError::Full,
            std::sync::mpsc::TrySendError::Disconnected(_) => ProposeError::Closed,
        })?;
        self.next_zxid += 1;
        Ok(())
    }

    fn sync(&mut self, _local_ref: u64) -> Result<SyncStart, ProposeError> {
        Ok(SyncStart::Ready)
    }

    fn idle(&self, last_applied_zxid: i64) -> bool {
        self.next_zxid == last_applied_zxid + 1
    }
}

fn log_thread(
    mut log: TxnLog,
    rx: std::sync::mpsc::Receiver<LogMsg>,
    committed: mpsc::Sender<CommitMsg>,
    fsync_warn: Duration,
) {
    let mut batch: Vec<(i64, Proposal)> = Vec::with_capacity(MAX_BATCH);
    let mut purge: Option<i64> = None;
    loop {
        let first = match rx.recv() {
            Ok(m) => m,
            Err(_) => return,
        };
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                LogMsg::Append(z, p) => batch.push((z, p)),
                LogMsg::PurgeBefore(z) => purge = Some(purge.map_or(z, |p: i64| p.max(z))),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let result = (|| {
            for (z, p) in &batch {
                log.append(*z, &entry::encode(*z, p))?;
            }
            let started = Instant::now();
            log.sync()?;
            let took = started.elapsed();
            crate::admin::metrics::record_fsync(took.as_millis() as u64, took > fsync_warn);
            if took > fsync_warn {
                tracing::warn!(
                    "fsync-ing the write ahead log took {}ms which will adversely effect operation latency",
                    took.as_millis()
                );
            }
            if let Some(z) = purge.take() {
                log.roll_at_next_append();
                let removed = log.purge_before(z)?;
                if removed > 0 {
                    tracing::info!(removed, before_zxid = format_args!("0x{z:x}"), "purged old log segments");
                }
            }
            Ok::<(), crate::txnlog::LogError>(())
        })();
        if let Err(e) = result {
            // Nothing more can be acknowledged: stop rather than serve
            // writes that are not durable.
            tracing::error!(error = %e, "transaction log failure; stopping the server");
            std::process::exit(2);
        }
        for (zxid, proposal) in batch.drain(..) {
            if committed.blocking_send(CommitMsg::Txn(Committed { zxid, proposal })).is_err() {
                return;
            }
        }
    }
}
