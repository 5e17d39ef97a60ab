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
    /// A write (or sync) by its local reference; once `done`, its reply
    /// (None: nobody is answered) waits for the slots before it.
    Write {
        local_ref: u64,
        done: bool,
        reply: Option<(u64, Vec<u8>)>,
    },
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
    /// Every transaction of the Raft entry at this log index is applied (a
    /// `sync` that waits for the leader's commit point waits for this).
    EntryApplied { index: u64 },
    /// Replace the whole state with a snapshot received from the leader.
    Install(Box<InstalledState>),
    /// Hand a copy-on-write view of the current state to a snapshot writer.
    Snapshot(tokio::sync::oneshot::Sender<crate::snapshot::SnapshotSource>),
}

/// A state received whole (Raft snapshot installation).
pub struct InstalledState {
    pub tree: crate::tree::DataTree,
    pub sessions: Vec<(i64, i32)>,
    /// The log index the snapshot ends at.
    pub index: u64,
}

/// The per-session order of requests: writes (and syncs, reconfigs) in
/// flight, each holding its reply once it completed, and the reads queued
/// behind them.
pub struct SessionGate<R> {
    queues: HashMap<i64, VecDeque<Slot<R>>>,
}

/// What may go out now, in the session's order.
#[derive(Debug, PartialEq, Eq)]
pub enum Ready<R> {
    /// A completed write's reply, for this connection.
    Reply(u64, Vec<u8>),
    /// A read to run now.
    Read(R),
}

impl<R> Default for SessionGate<R> {
    fn default() -> Self {
        SessionGate { queues: HashMap::new() }
    }
}

impl<R> SessionGate<R> {
    /// A read arrives: returned at once if the session has nothing in
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
        self.queues.entry(session_id).or_default().push_back(Slot::Write { local_ref, done: false, reply: None });
    }

    /// The session's write `local_ref` completed, with its reply (None: it
    /// failed and nobody is answered). Returns what may go out now: the
    /// replies and reads before the first request still in flight, in order.
    /// A write that completes behind one still in flight (a sync that waits
    /// for the leader, a write that overtook it) keeps its reply until then.
    /// An unknown reference changes nothing.
    pub fn complete(&mut self, session_id: i64, local_ref: u64, reply: Option<(u64, Vec<u8>)>) -> Vec<Ready<R>> {
        let mut ready = Vec::new();
        let Some(q) = self.queues.get_mut(&session_id) else {
            return ready;
        };
        let Some(slot) = q.iter_mut().find(|s| matches!(s, Slot::Write { local_ref: r, .. } if *r == local_ref)) else {
            return ready;
        };
        if let Slot::Write { done, reply: held, .. } = slot {
            *done = true;
            *held = reply;
        }
        while let Some(front) = q.front() {
            match front {
                Slot::Write { done: false, .. } => break,
                _ => match q.pop_front() {
                    Some(Slot::Write { reply: Some((conn, frame)), .. }) => ready.push(Ready::Reply(conn, frame)),
                    Some(Slot::Read(r)) => ready.push(Ready::Read(r)),
                    _ => {}
                },
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

    /// Forgets a closed session; returns the replies of its completed
    /// writes still held, in order (its waiting reads are dropped: the
    /// session is gone).
    pub fn drop_session(&mut self, session_id: i64) -> Vec<(u64, Vec<u8>)> {
        self.queues
            .remove(&session_id)
            .map(|q| {
                q.into_iter()
                    .filter_map(|s| match s {
                        Slot::Write { reply: Some(r), .. } => Some(r),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn queued(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(v: Vec<Ready<&'static str>>) -> Vec<String> {
        v.into_iter()
            .map(|r| match r {
                Ready::Reply(c, f) => format!("reply{c}:{}", String::from_utf8(f).unwrap()),
                Ready::Read(r) => r.to_string(),
            })
            .collect()
    }

    #[test]
    fn reads_wait_for_earlier_writes_of_their_session() {
        let mut g = SessionGate::default();
        assert_eq!(g.read(1, "r0"), Some("r0"));
        g.write(1, 10);
        assert_eq!(g.read(1, "r1"), None);
        assert_eq!(g.read(2, "other"), Some("other"), "other sessions are not held");
        g.write(1, 11);
        assert_eq!(g.read(1, "r2"), None);
        assert_eq!(reads(g.complete(1, 10, Some((7, b"w10".to_vec())))), vec!["reply7:w10", "r1"]);
        assert_eq!(reads(g.complete(1, 11, Some((7, b"w11".to_vec())))), vec!["reply7:w11", "r2"]);
        assert!(!g.busy(1));
    }

    #[test]
    fn a_reply_that_completes_early_waits_for_the_requests_before_it() {
        let mut g = SessionGate::default();
        g.write(1, 10); // a sync waiting for the leader
        g.write(1, 11); // a write that commits first
        assert_eq!(g.read(1, "r"), None);
        assert!(g.complete(1, 11, Some((7, b"w11".to_vec()))).is_empty(), "held behind the sync");
        assert_eq!(reads(g.complete(1, 10, Some((7, b"s10".to_vec())))), vec!["reply7:s10", "reply7:w11", "r"]);
    }

    #[test]
    fn a_failed_or_unknown_completion_releases_only_what_it_holds_back() {
        let mut g = SessionGate::default();
        g.write(1, 10);
        assert_eq!(g.read(1, "r1"), None);
        g.write(1, 11);
        assert_eq!(g.read(1, "r2"), None);
        // A proposal abandoned earlier commits late: not in the queue.
        assert!(g.complete(1, 7, None).is_empty());
        // The second write fails first: nobody is answered for it, and r1
        // still waits for write 10.
        assert!(g.complete(1, 11, None).is_empty());
        assert_eq!(reads(g.complete(1, 10, Some((7, b"w10".to_vec())))), vec!["reply7:w10", "r1", "r2"]);
        assert!(!g.busy(1));
    }
}
