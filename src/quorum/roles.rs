//! This server's role, from openraft's metrics, for the core and the
//! four-letter words; and the leader's duty to add the configured
//! observers as non-voting learners.
//!
//! - Inputs: openraft's metrics (published on every turn of its core loop,
//!   so time-based facts such as "a majority answered recently" stay fresh).
//! - Outputs: `CoreMsg::Role` whenever the derived [`RoleInfo`] changes.
//! - Also: [`LeaderLoss`], which makes a follower stand for election soon
//!   after its leader's connection closes (the peer transport reports the
//!   appends and the connection's end).
//! - Invariants: `serving` is true only for a leader that heard from a
//!   majority within the leader lease (an election timeout: past it, the
//!   others may have elected someone else), or a follower/observer that
//!   knows a leader. A server that is not serving holds no clients.

use super::{Ensemble, PeerNode, Raft, Timing};
use crate::pipeline::{CoreMsg, Role, RoleInfo};
use openraft::{RaftMetrics, ServerState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A follower counts as synced when its log is within this many entries of
/// the leader's (`zk_synced_followers`).
const SYNCED_LAG: u64 = 1000;

pub fn derive(m: &RaftMetrics<u64, PeerNode>, my_id: u64, lease: Duration) -> RoleInfo {
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let learners: Vec<u64> = membership.learner_ids().collect();
    let none = RoleInfo {
        role: Role::Looking,
        leader: None,
        serving: false,
        read_only: false,
        followers: 0,
        synced_followers: 0,
        observers: 0,
    };
    match m.state {
        ServerState::Leader => {
            let serving = m.millis_since_quorum_ack.is_some_and(|ms| ms <= lease.as_millis() as u64);
            let last = m.last_log_index.unwrap_or(0);
            let synced = m
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .filter(|(id, matched)| {
                            **id != my_id
                                && voters.contains(id)
                                && matched.is_some_and(|l| l.index + SYNCED_LAG >= last)
                        })
                        .count()
                })
                .unwrap_or(0);
            RoleInfo {
                role: Role::Leader,
                leader: Some(my_id),
                serving,
                read_only: false,
                followers: voters.len().saturating_sub(1),
                synced_followers: synced,
                observers: learners.len(),
            }
        }
        ServerState::Follower => {
            RoleInfo { role: Role::Follower, leader: m.current_leader, serving: m.current_leader.is_some(), ..none }
        }
        ServerState::Learner if learners.contains(&my_id) => {
            RoleInfo { role: Role::Observer, leader: m.current_leader, serving: m.current_leader.is_some(), ..none }
        }
        _ => none,
    }
}

/// Follows openraft's metrics and tells the core when the role changes.
/// With `read_only_after`, a server that has not been serving for that long
/// turns read-only (ZooKeeper waits `max(2000, tickTime)` ms before it
/// starts its read-only server).
pub async fn watch(
    raft: Raft,
    ensemble: Ensemble,
    timing: Timing,
    read_only_after: Option<Duration>,
    removed_at: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
    core: mpsc::Sender<CoreMsg>,
) {
    let mut rx = raft.metrics();
    let mut last: Option<RoleInfo> = None;
    let mut not_serving_since: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
    let mut quiet = false;
    // Re-derived at least every heartbeat, as the lease runs out with time.
    let mut tick = tokio::time::interval(Duration::from_millis(timing.heartbeat_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Err(e) = &rx.borrow().running_state {
            if core.is_closed() || stopping.load(Ordering::Acquire) {
                return; // the server is stopping
            }
            fatal(e);
        }
        let mut info = derive(&rx.borrow_and_update(), ensemble.my_id, timing.leader_lease());
        let removed = removed_at.load(Ordering::Acquire);
        let config_zxid = rx.borrow().membership_config.log_id().map_or(0, |l| super::zxid_of(l.index, 0)) as u64;
        if removed > 0 && config_zxid < removed {
            // Removed by a reconfiguration we never received: not a member.
            info = RoleInfo { role: Role::Looking, leader: None, serving: false, ..info };
        }
        if info.serving {
            not_serving_since = None;
        } else {
            let since = *not_serving_since.get_or_insert_with(tokio::time::Instant::now);
            info.read_only = read_only_after.is_some_and(|grace| since.elapsed() >= grace);
        }
        // A leader that lost its majority goes quiet (openraft's would lead
        // on until it hears of a higher term, and it cannot step down by
        // itself): without its heartbeats its followers stop following and
        // stop serving too, instead of forwarding writes that cannot commit
        // and serving an ever staler state, as ZooKeeper's followers do when
        // their leader gives up. Whoever wins the next election leads.
        let quiet_wanted = info.role == Role::Leader && !info.serving;
        if quiet_wanted != quiet {
            if quiet_wanted {
                tracing::warn!("no majority has answered within the leader lease: stopping heartbeats");
            }
            raft.runtime_config().heartbeat(!quiet_wanted);
            quiet = quiet_wanted;
        }
        if last.as_ref() != Some(&info) {
            if info.role == Role::Leader && last.as_ref().is_none_or(|l| l.role != Role::Leader) {
                tokio::spawn(add_observers(raft.clone(), ensemble.clone()));
            }
            if core.send(CoreMsg::Role(info.clone())).await.is_err() {
                return;
            }
            last = Some(info);
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() {
                if core.is_closed() || stopping.load(Ordering::Acquire) {
                    return; // the server is stopping
                }
                fatal(&"the Raft core stopped");
            },
            _ = tick.tick() => {}
        }
    }
}

/// The Raft node died (a storage failure, or a bug): this server can no
/// longer take part, and must not go on answering as if it did. It stops,
/// as on a log failure; a restart recovers from its disk.
fn fatal(e: &dyn std::fmt::Display) -> ! {
    tracing::error!(error = %e, "the Raft node failed; stopping the server");
    std::process::exit(2);
}

/// On a new leader: every observer of the configuration that the
/// membership lacks joins as a learner (it replicates and serves, and does
/// not vote), as ZooKeeper's `:observer` servers. Retried while this server
/// leads: just after an election the previous membership change may not be
/// committed yet.
async fn add_observers(raft: Raft, ensemble: Ensemble) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let m = raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            return;
        }
        let missing: Vec<(u64, PeerNode)> = ensemble
            .observers
            .iter()
            .filter(|(id, _)| m.membership_config.membership().get_node(id).is_none())
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        let Some((id, node)) = missing.into_iter().next() else { return };
        match raft.add_learner(id, node, false).await {
            Ok(_) => tracing::info!(observer = id, "observer added as a learner"),
            Err(e) => {
                tracing::debug!(observer = id, error = %e, "could not add an observer yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Standing for election as soon as a dead leader's lease runs out, rather
/// than a whole election timeout later.
///
/// openraft's follower stands for election `leader lease + election
/// timeout` after the leader's last heartbeat (about 0.8 s at tickTime
/// 2000), because silence is all it knows. A leader that died (or was
/// killed) says more: the kernel closes its connections, and the follower
/// sees its connection from the leader end, as a ZooKeeper follower sees
/// its leader's socket close and starts looking at once. Then the voters
/// stand one after another, the first as soon as the others' leases (the
/// time they refuse votes after a heartbeat) have run out, the next a
/// little later in case the first cannot win (a shorter log).
///
/// Invariants: this only starts an election that openraft's own timer
/// would start later anyway, under the same conditions (this server is a
/// voter, follows that leader still and has heard nothing from it since);
/// a connection that ended long after the leader's last append (a peer
/// that stopped answering: a paused server, a redialled link) starts
/// nothing; safety is openraft's.
pub struct LeaderLoss {
    /// The last AppendEntries each peer sent us, on any connection.
    last_append: Mutex<HashMap<u64, Instant>>,
    /// Followers' leader lease (openraft's `election_timeout_max`).
    lease: Duration,
}

/// The first voter stands this long after the leases ran out; each next
/// voter (by id) [`EARLY_ELECTION_STEP`] later.
const EARLY_ELECTION_MARGIN: Duration = Duration::from_millis(25);
const EARLY_ELECTION_STEP: Duration = Duration::from_millis(120);

impl LeaderLoss {
    pub fn new(lease: Duration) -> Arc<Self> {
        Arc::new(LeaderLoss { last_append: Mutex::new(HashMap::new()), lease })
    }

    pub(super) fn appended(&self, from: u64) {
        self.last_append.lock().unwrap_or_else(|e| e.into_inner()).insert(from, Instant::now());
    }

    fn last(&self, from: u64) -> Option<Instant> {
        self.last_append.lock().unwrap_or_else(|e| e.into_inner()).get(&from).copied()
    }

    /// The connection from `from` ended: if it was our leader and it was
    /// alive until then, stand for election when the leases run out.
    pub(super) fn connection_ended(self: &Arc<Self>, raft: &Raft, from: u64) {
        let Some(last) = self.last(from) else { return };
        if last.elapsed() > self.lease {
            return;
        }
        let m = raft.metrics().borrow().clone();
        let follows = move |m: &RaftMetrics<u64, PeerNode>, vote| {
            m.current_leader == Some(from) && m.vote == vote && m.state == ServerState::Follower
        };
        if !follows(&m, m.vote) {
            return;
        }
        let mut others: Vec<u64> = m.membership_config.membership().voter_ids().filter(|v| *v != from).collect();
        others.sort_unstable();
        let Some(rank) = others.iter().position(|v| *v == m.id) else { return };
        let at = last + self.lease + EARLY_ELECTION_MARGIN + EARLY_ELECTION_STEP * rank as u32;
        let (raft, vote, check) = (raft.clone(), m.vote, self.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            if check.last(from).is_some_and(|t| t > last) || !follows(&raft.metrics().borrow(), vote) {
                return;
            }
            tracing::info!(
                leader = from,
                "the leader's connection closed and its lease ran out: standing for election"
            );
            let _ = raft.trigger().elect().await;
        });
    }
}
