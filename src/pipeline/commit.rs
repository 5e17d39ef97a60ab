//! Stage 3, commit: per-session ordering of committed writes and waiting
//! reads (ZooKeeper's CommitProcessor rules), and the messages by which
//! committed entries reach the core.
//!
//! - Inputs: for each session, the sequence of its requests as they arrive
//!   (a write, or a `sync`, is in flight from proposal to commit), and commit
//!   events; [`CommitMsg`]s from the propose stage (standalone log or Raft).
//! - Outputs: reads released to run, at the moment they may run.
//! - Invariants:
//!   1. each session's requests complete in the order sent: a read that
//!      arrives after a write of the same session waits for that write's
//!      commit, and runs before any later write's reply;
//!   2. writes are applied in zxid order (the propose contract), so a read
//!      released here sees every earlier write of its session;
//!   3. a session's queue is bounded by the connection's outstanding limit;
//!   4. slots are keyed by the proposal's local reference, not by position:
//!      in a quorum a proposal can fail (leader lost) or commit after its
//!      connection gave up on it, and neither may release another request's
//!      reads.
//!
//! Pure: no I/O, no clock. The core loop calls it.

use std::collections::{HashMap, VecDeque};

enum Slot<R> {
    /// A write (or sync) in flight, by its local reference.
    Write(u64),
    Read(R),
}

/// What the propose stage hands to the core, in commit order.
pub enum CommitMsg {
    /// A committed write, with its zxid.
    Txn(super::propose::Committed),
    /// A committed entry that is not a client write (a new Raft leader's
    /// blank entry, a membership change): it only advances the zxid, and
    /// for a membership change sets `/zookeeper/config`.
    Noop { zxid: i64, config: Option<Vec<u8>> },
    /// Replace the whole state with a snapshot received from the leader.
    Install(Box<InstalledState>),
    /// Hand a copy-on-write view of the current state to a snapshot writer.
    Snapshot(tokio::sync::oneshot::Sender<crate::snapshot::SnapshotSource>),
}

/// A state received whole (Raft snapshot installation).
pub struct InstalledState {
    pub tree: crate::tree::DataTree,
    pub sessions: Vec<(i64, i32)>,
}

pub struct SessionGate<R> {
    queues: HashMap<i64, VecDeque<Slot<R>>>,
}

impl<R> Default for SessionGate<R> {
    fn default() -> Self {
        SessionGate { queues: HashMap::new() }
    }
}

impl<R> SessionGate<R> {
    /// A read arrives: returned at once if the session has no write in
    /// flight, otherwise queued behind it.
    pub fn read(&mut self, session_id: i64, read: R) -> Option<R> {
        match self.queues.get_mut(&session_id) {
            Some(q) if !q.is_empty() => {
                q.push_back(Slot::Read(read));
                None
            }
            _ => Some(read),
        }
    }

    /// A write (or sync) of the session was proposed, as `local_ref`.
    pub fn write(&mut self, session_id: i64, local_ref: u64) {
        self.queues.entry(session_id).or_default().push_back(Slot::Write(local_ref));
    }

    /// The session's write `local_ref` committed (or failed): returns the
    /// reads that may now run, those before the next write still in flight.
    /// An unknown reference changes nothing.
    pub fn committed(&mut self, session_id: i64, local_ref: u64) -> Vec<R> {
        let mut ready = Vec::new();
        let Some(q) = self.queues.get_mut(&session_id) else {
            return ready;
        };
        let Some(pos) = q.iter().position(|s| matches!(s, Slot::Write(r) if *r == local_ref)) else {
            return ready;
        };
        q.remove(pos);
        while let Some(Slot::Read(_)) = q.front() {
            if let Some(Slot::Read(r)) = q.pop_front() {
                ready.push(r);
            }
        }
        if q.is_empty() {
            self.queues.remove(&session_id);
        }
        ready
    }

    /// Whether the session has writes in flight or reads waiting.
    pub fn busy(&self, session_id: i64) -> bool {
        self.queues.contains_key(&session_id)
    }

    /// Forgets a closed session; returns its waiting reads.
    pub fn drop_session(&mut self, session_id: i64) -> Vec<R> {
        self.queues
            .remove(&session_id)
            .map(|q| q.into_iter().filter_map(|s| if let Slot::Read(r) = s { Some(r) } else { None }).collect())
            .unwrap_or_default()
    }

    pub fn queued(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_for_earlier_writes_of_their_session() {
        let mut g = SessionGate::default();
        assert_eq!(g.read(1, "r0"), Some("r0"));
        g.write(1, 10);
        assert_eq!(g.read(1, "r1"), None);
        assert_eq!(g.read(2, "other"), Some("other"), "other sessions are not held");
        g.write(1, 11);
        assert_eq!(g.read(1, "r2"), None);
        assert_eq!(g.committed(1, 10), vec!["r1"]);
        assert_eq!(g.committed(1, 11), vec!["r2"]);
        assert!(!g.busy(1));
    }

    #[test]
    fn a_late_or_unknown_commit_releases_nothing_it_does_not_own() {
        let mut g = SessionGate::default();
        g.write(1, 10);
        assert_eq!(g.read(1, "r1"), None);
        g.write(1, 11);
        assert_eq!(g.read(1, "r2"), None);
        // A proposal abandoned earlier commits late: not in the queue.
        assert!(g.committed(1, 7).is_empty());
        // The second write fails first (a quorum leader change): its slot
        // goes, but r1 still waits for write 10, and r2 for r1's turn.
        assert!(g.committed(1, 11).is_empty());
        assert_eq!(g.committed(1, 10), vec!["r1", "r2"]);
        assert!(!g.busy(1));
    }
}
