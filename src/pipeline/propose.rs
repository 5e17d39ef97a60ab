//! Stage 2, propose: make a write durable and ordered, and give it its zxid.
//!
//! - Inputs: [`Proposal`]s from prep (through the core loop).
//! - Outputs: [`Committed`] proposals on the commit channel, in zxid order.
//! - Contract of [`Propose`] (every implementation):
//!   - one proposal gets exactly one zxid, failed operations included (as in
//!     ZooKeeper, where a failed write becomes an error txn);
//!   - a proposal is released to the commit channel only once it is durable
//!     (standalone: on the local log; quorum: on a majority);
//!   - proposals are released in zxid order, with no gaps;
//!   - `propose` does not block the caller: back-pressure is the bounded
//!     channels around it.
//!
//! [`LocalPropose`] is the standalone implementation. State is kept in
//! memory in this release: the fsync'd transaction log (txnlog) and the Raft
//! implementation (quorum) plug in behind this same trait.

use crate::tree::WriteOp;
use jute::data::Id;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A write, stamped at prep. Everything `apply` needs travels here.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub session_id: i64,
    pub cxid: i32,
    pub time_ms: i64,
    pub auth: Arc<Vec<Id>>,
    pub op: WriteOp,
    /// Local bookkeeping only (never replicated): which waiting request this
    /// proposal answers on this server.
    pub local_ref: u64,
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

pub trait Propose: Send {
    fn propose(&mut self, proposal: Proposal) -> Result<(), ProposeError>;
    /// The zxid the next proposal will get.
    fn next_zxid(&self) -> i64;
}

/// Standalone, in memory: zxids count up from the last applied one, and a
/// proposal is committed as soon as it is ordered.
pub struct LocalPropose {
    next_zxid: i64,
    committed: mpsc::Sender<Committed>,
}

impl LocalPropose {
    pub fn new(last_zxid: i64, committed: mpsc::Sender<Committed>) -> Self {
        LocalPropose { next_zxid: last_zxid + 1, committed }
    }
}

impl Propose for LocalPropose {
    fn propose(&mut self, proposal: Proposal) -> Result<(), ProposeError> {
        let zxid = self.next_zxid;
        self.committed.try_send(Committed { zxid, proposal }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ProposeError::Full,
            mpsc::error::TrySendError::Closed(_) => ProposeError::Closed,
        })?;
        self.next_zxid += 1;
        Ok(())
    }

    fn next_zxid(&self) -> i64 {
        self.next_zxid
    }
}
