//! Stage 3, commit: per-session ordering of committed writes and waiting
//! reads (ZooKeeper's CommitProcessor rules).
//!
//! - Inputs: for each session, the sequence of its requests as they arrive
//!   (a write is in flight from proposal to commit), and commit events.
//! - Outputs: reads released to run, at the moment they may run.
//! - Invariants:
//!   1. each session's requests complete in the order sent: a read that
//!      arrives after a write of the same session waits for that write's
//!      commit, and runs before any later write's reply;
//!   2. writes are applied in zxid order (the propose contract), so a read
//!      released here sees every earlier write of its session;
//!   3. a session's queue is bounded by the connection's outstanding limit.
//!
//! Pure: no I/O, no clock. The core loop calls it.

use std::collections::{HashMap, VecDeque};

enum Slot<R> {
    Write,
    Read(R),
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

    /// A write of the session was proposed.
    pub fn write(&mut self, session_id: i64) {
        self.queues.entry(session_id).or_default().push_back(Slot::Write);
    }

    /// The session's oldest in-flight write committed: returns the reads
    /// that were waiting for it, up to the next write in flight.
    pub fn committed(&mut self, session_id: i64) -> Vec<R> {
        let mut ready = Vec::new();
        let Some(q) = self.queues.get_mut(&session_id) else {
            return ready;
        };
        if matches!(q.front(), Some(Slot::Write)) {
            q.pop_front();
        }
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
        g.write(1);
        assert_eq!(g.read(1, "r1"), None);
        assert_eq!(g.read(2, "other"), Some("other"), "other sessions are not held");
        g.write(1);
        assert_eq!(g.read(1, "r2"), None);
        assert_eq!(g.committed(1), vec!["r1"]);
        assert_eq!(g.committed(1), vec!["r2"]);
        assert!(!g.busy(1));
    }
}
