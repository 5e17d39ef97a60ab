//! Read-only views of the core's state, shaped as ZooKeeper reports them;
//! the four-letter words (text) and the AdminServer (JSON) print the same
//! views. Every function here runs on the core's task.

use super::metrics::{self, Summary};
use super::state::AdminState;
use super::sys;
use crate::pipeline::{Core, Waiter};
use jute::proto::watcher_type;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

/// One client connection (`cons`, `stat`, `/commands/connections`).
#[derive(Debug, Clone)]
pub struct ConnView {
    pub addr: SocketAddr,
    pub session_id: i64,
    pub received: u64,
    pub sent: u64,
    /// Milliseconds since the epoch.
    pub established_ms: i64,
    pub timeout_ms: i32,
}

pub fn connections(core: &Core) -> Vec<ConnView> {
    let mut ids: Vec<_> = core.conns.keys().copied().collect();
    ids.sort_unstable();
    ids.iter()
        .filter_map(|id| core.conns.get(id))
        .map(|c| ConnView {
            addr: c.handle.addr,
            session_id: c.session_id,
            received: c.received,
            sent: c.sent,
            established_ms: c.established.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
            timeout_ms: core.sessions.get(&c.session_id).map_or(0, |s| s.timeout_ms),
        })
        .collect()
}

/// The watches as ZooKeeper's two watch tables see them: a one-shot data or
/// exist watch is in the data table, a child watch in the child table, and
/// a persistent (recursive) watch in both. `wchc`, `wchp` and `wchs` report
/// the data table only; `watch_count` counts both.
#[derive(Debug, Default, Clone)]
pub struct WatchView {
    pub data_by_path: BTreeMap<String, BTreeSet<i64>>,
    pub data_by_session: BTreeMap<i64, BTreeSet<String>>,
    /// Connections with a watch in the data table.
    pub data_connections: usize,
    /// (path, connection) pairs in the data table.
    pub data_total: usize,
    /// (path, connection) pairs in the child table.
    pub child_total: usize,
}

impl WatchView {
    /// ZooKeeper's `zk_watch_count`.
    pub fn watch_count(&self) -> usize {
        self.data_total + self.child_total
    }
}

pub fn watches(core: &Core) -> WatchView {
    let w = &core.watches;
    let mut v = WatchView::default();
    let mut data_conns = BTreeSet::new();
    for (path, conns) in w.iter_paths() {
        for &conn in conns {
            let has = |t: i32| w.contains(conn, path, t);
            let both = has(watcher_type::PERSISTENT) || has(watcher_type::PERSISTENT_RECURSIVE);
            let sid = core.conns.get(&conn).map_or(0, |c| c.session_id);
            if both || has(watcher_type::DATA) {
                v.data_total += 1;
                data_conns.insert(conn);
                v.data_by_path.entry(path.clone()).or_default().insert(sid);
                v.data_by_session.entry(sid).or_default().insert(path.clone());
            }
            if both || has(watcher_type::CHILDREN) {
                v.child_total += 1;
            }
        }
    }
    v.data_connections = data_conns.len();
    v
}

/// Requests in the pipeline without a reply yet: reads waiting behind a
/// write of their session, and writes waiting for their commit.
pub fn outstanding(core: &Core) -> u64 {
    let writes = core.waiters.values().filter(|w| matches!(w, Waiter::Request { .. })).count();
    (core.gate.queued() + writes) as u64
}

/// Session expiry buckets (ZooKeeper's `ExpiryQueue`): (expiry time in ms of
/// the core's clock, sessions), soonest first.
///
/// The tracker only says which sessions are due at a given time, so it is
/// drained one tick at a time and rebuilt with the same buckets; this runs
/// on the core's task, so nothing sees it half-drained.
pub fn expiry_buckets(core: &Core) -> Vec<(u64, Vec<i64>)> {
    let tick = core.cfg.tick_time_ms.max(1);
    let now = core.started.elapsed().as_millis() as u64;
    let due = now / tick * tick;
    let mut out: Vec<(u64, Vec<i64>)> = Vec::new();
    // Buckets already due (the next expiry check takes them) are shown
    // together, at the current tick.
    let mut overdue: Vec<i64> = Vec::new();
    for (at, ids) in core.tracker.buckets() {
        if at <= due {
            overdue.extend(ids.iter().copied());
        } else {
            let mut ids: Vec<i64> = ids.iter().copied().collect();
            ids.sort_unstable();
            out.push((at, ids));
        }
    }
    if !overdue.is_empty() {
        overdue.sort_unstable();
        out.insert(0, (due, overdue));
    }
    out
}

/// Sessions with ephemeral nodes, by session id, paths sorted.
pub fn ephemerals(core: &Core) -> Vec<(i64, Vec<String>)> {
    let mut v: Vec<(i64, Vec<String>)> =
        core.tree.sessions_with_ephemerals().map(|(id, paths)| (*id, paths.iter().cloned().collect())).collect();
    v.sort_by_key(|(id, _)| *id);
    v
}

/// A value of `mntr`: printed as an integer, a Java double, or text.
#[derive(Debug, Clone, PartialEq)]
pub enum MonVal {
    Long(i64),
    Double(f64),
    Str(String),
}

/// What `mntr` and `/commands/monitor` report, keyed and ordered as
/// ZooKeeper 3.8's default metrics provider prints them. ZooKeeper's keys
/// are kept where they mean something here: measured values, and zeros for
/// what a standalone server without a quorum, TLS, Netty or a JVM never
/// does (as ZooKeeper reports them standalone). Keys of ZooKeeper's internal
/// processor queues, and values not measured here, are left out.
pub fn monitor(core: &Core, admin: Option<&AdminState>, watches: &WatchView) -> Vec<(String, MonVal)> {
    use MonVal::*;
    let s = &core.stats;
    let mut m: Vec<(String, MonVal)> = Vec::with_capacity(160);
    let avg = s.avg_latency_ms();
    let n = |v: u64| Long(v.min(i64::MAX as u64) as i64);
    m.push(("version".into(), Str(super::VERSION.into())));
    m.push(("server_state".into(), Str(core.role.mode().into())));
    if core.role.role != crate::pipeline::Role::Standalone {
        // QuorumZooKeeperServer's detailed peer state.
        let peer_state = match core.role.role {
            crate::pipeline::Role::Leader => "leading - broadcast",
            crate::pipeline::Role::Follower => "following - broadcast",
            crate::pipeline::Role::Observer => "observing - broadcast",
            _ => "looking",
        };
        m.push(("peer_state".into(), Str(peer_state.into())));
    }
    if core.role.role == crate::pipeline::Role::Leader {
        // LeaderZooKeeperServer's gauges, and 3.4's zk_followers, which
        // monitoring scripts still read.
        let r = &core.role;
        m.push(("learners".into(), n((r.followers + r.observers) as u64)));
        m.push(("followers".into(), n(r.followers as u64)));
        m.push(("synced_followers".into(), n(r.synced_followers as u64)));
        m.push(("synced_non_voting_followers".into(), Long(0)));
        m.push(("synced_observers".into(), n(r.observers as u64)));
        m.push(("pending_syncs".into(), n(core.pending_syncs.values().map(|v| v.len() as u64).sum())));
    }
    m.push(("ephemerals_count".into(), n(core.tree.ephemeral_count() as u64)));
    m.push(("num_alive_connections".into(), n(core.conns.len() as u64)));
    m.push(("avg_latency".into(), Double(avg)));
    m.push(("outstanding_requests".into(), n(outstanding(core))));
    m.push(("znode_count".into(), n(core.tree.node_count_reported() as u64)));
    m.push(("global_sessions".into(), n(core.sessions.len() as u64)));
    m.push(("non_mtls_remote_conn_count".into(), Long(0)));
    m.push(("packets_sent".into(), n(s.packets_sent)));
    m.push(("packets_received".into(), n(s.packets_received)));
    m.push(("connection_drop_probability".into(), Double(0.0)));
    m.push(("watch_count".into(), n(watches.watch_count() as u64)));
    m.push(("auth_failed_count".into(), n(s.auth_failed)));
    m.push(("min_latency".into(), n(s.min_latency())));
    m.push(("max_file_descriptor_count".into(), n(sys::max_fds())));
    m.push(("approximate_data_size".into(), n(core.tree.approximate_data_size())));
    m.push(("open_file_descriptor_count".into(), n(sys::open_fds())));
    m.push(("local_sessions".into(), Long(0)));
    m.push(("uptime".into(), n(core.started.elapsed().as_millis() as u64)));
    m.push(("max_latency".into(), n(s.max_latency_ms)));
    m.push(("outstanding_tls_handshake".into(), Long(0)));
    m.push(("non_mtls_local_conn_count".into(), Long(0)));
    // Counters: quorum, TLS and ensemble-auth events never happen here.
    for k in [
        "proposal_count",
        "cnxn_closed_without_zk_server_running",
        "looking_count",
        "connection_drop_count",
        "learner_proposal_received_count",
        "digest_mismatches_count",
        "ensemble_auth_success",
        "learner_commit_received_count",
        "ensemble_auth_fail",
        "diff_count",
        "quit_leading_due_to_disloyal_voter",
        "snap_count",
        "unsuccessful_handshake",
        "commit_count",
        "ensemble_auth_skip",
        "skip_learner_request_to_next_processor_count",
        "tls_handshake_exceeded",
    ] {
        m.push((k.into(), Long(0)));
    }
    let zero = Summary::default();
    let g = metrics::global();
    let fsync = metrics::snapshot_of(&g.fsync_ms);
    let snap = metrics::snapshot_of(&g.snapshot_ms);
    let (db_init, txns) = match admin {
        Some(a) => (metrics::snapshot_of(&a.db_init_ms), metrics::snapshot_of(&a.txns_loaded)),
        None => (Summary::default(), Summary::default()),
    };
    // Summaries, in ZooKeeper's order: basic ones (avg/min/max/cnt/sum),
    // then those with percentiles.
    for (name, sm) in [
        ("leader_unavailable_time", &zero),
        ("follower_sync_time", &zero),
        ("fsynctime", &fsync),
        ("inflight_snap_count", &zero),
        ("learner_request_processor_queue_size", &zero),
        ("snapshottime", &snap),
        ("unavailable_time", &zero),
        ("startup_txns_loaded", &txns),
        ("dbinittime", &db_init),
        ("inflight_diff_count", &zero),
        ("netty_queued_buffer_capacity", &zero),
        ("election_time", &zero),
        ("observer_sync_time", &zero),
    ] {
        push_summary(&mut m, name, sm, false);
    }
    for (name, sm) in [
        ("jvm_pause_time_ms", &zero),
        ("updatelatency", &s.update_latency),
        ("readlatency", &s.read_latency),
        ("quorum_ack_latency", &zero),
        ("om_commit_process_time_ms", &zero),
        ("commit_propagation_latency", &zero),
        ("proposal_ack_creation_latency", &zero),
        ("proposal_latency", &zero),
        ("om_proposal_process_time_ms", &zero),
        ("propagation_latency", &zero),
        ("server_write_committed_time_ms", &zero),
    ] {
        push_summary(&mut m, name, sm, true);
    }
    m
}

fn push_summary(m: &mut Vec<(String, MonVal)>, name: &str, s: &Summary, percentiles: bool) {
    m.push((format!("avg_{name}"), MonVal::Double(s.avg())));
    m.push((format!("min_{name}"), MonVal::Long(s.min() as i64)));
    m.push((format!("max_{name}"), MonVal::Long(s.max() as i64)));
    m.push((format!("cnt_{name}"), MonVal::Long(s.count() as i64)));
    m.push((format!("sum_{name}"), MonVal::Long(s.sum() as i64)));
    if percentiles {
        let q = s.quantiles(&[0.5, 0.95, 0.99, 0.999]);
        for (p, v) in ["p50", "p95", "p99", "p999"].iter().zip(q) {
            m.push((format!("{p}_{name}"), MonVal::Long(v.unwrap_or(0) as i64)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::pipeline::{ConnHandle, ConnState};
    use crate::session::tracker::SessionTracker;
    use crate::tree::watches::WatchKind;
    use std::sync::Arc;

    fn core() -> Core {
        Core::in_memory(Arc::new(ServerConfig::default())).0
    }

    #[test]
    fn expiry_buckets_leave_the_tracker_as_it_was() {
        let mut c = core();
        let tick = c.cfg.tick_time_ms;
        let mut reference = SessionTracker::new(tick);
        for (sid, timeout, now) in [(1, 4000, 0), (2, 4000, 10), (3, 9000, 2500), (4, 40_000, 7000), (5, 6000, 6999)] {
            c.tracker.touch(sid, timeout, now);
            reference.touch(sid, timeout, now);
        }
        let buckets = expiry_buckets(&c);
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(buckets.iter().all(|(at, _)| at % tick == 0));
        let all: BTreeSet<i64> = buckets.iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
        assert_eq!(all, (1..=5).collect());
        let mut t = 0;
        while !reference.is_empty() {
            t += tick / 3;
            assert_eq!(c.tracker.expired(t), reference.expired(t), "at {t}");
        }
        assert!(c.tracker.is_empty());
    }

    #[test]
    fn watch_tables_as_zookeeper_counts_them() {
        let mut c = core();
        for (conn, sid) in [(1u64, 0x10i64), (2, 0x20)] {
            let (tx, _rx) = tokio::sync::mpsc::channel(1);
            let handle = ConnHandle {
                id: conn,
                addr: "127.0.0.1:1".parse().unwrap(),
                out: tx,
                kill: tokio_util::sync::CancellationToken::new(),
            };
            c.conns.insert(
                conn,
                ConnState {
                    handle,
                    read_only: false,
                    session_id: sid,
                    auth: Arc::new(vec![]),
                    received: 0,
                    sent: 0,
                    established: std::time::SystemTime::now(),
                },
            );
        }
        c.watches.add(1, "/a", WatchKind::Data);
        c.watches.add(1, "/a", WatchKind::Child);
        c.watches.add(2, "/a", WatchKind::Data);
        c.watches.add(2, "/nope", WatchKind::Data);
        c.watches.add(2, "/p", WatchKind::Persistent);
        c.watches.add(1, "/c", WatchKind::Child);
        let w = watches(&c);
        // data table: /a {1,2}, /nope {2}, /p {2}; child table: /a {1}, /p {2}, /c {1}
        assert_eq!(w.data_total, 4);
        assert_eq!(w.child_total, 3);
        assert_eq!(w.watch_count(), 7);
        assert_eq!(w.data_connections, 2);
        assert_eq!(w.data_by_path.len(), 3);
        assert_eq!(w.data_by_session[&0x20].iter().cloned().collect::<Vec<_>>(), vec!["/a", "/nope", "/p"]);
        assert_eq!(w.data_by_path["/a"].iter().copied().collect::<Vec<_>>(), vec![0x10, 0x20]);
    }
}
