//! The `/metrics` page: ZooKeeper's metric names (as its
//! `PrometheusMetricsProvider` exports them, help text = name) where
//! ZooKeeper has one, the standard `process_*` metrics, and Ferrokeeper's own
//! under `ferrokeeper_`.

use super::metrics::{self, PromText, Summary, ADVANCED, BASIC};
use super::state::AdminState;
use super::{sys, view, VERSION};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What the page needs from the core, copied on the core's task.
struct CoreValues {
    avg_latency: f64,
    min_latency: u64,
    max_latency: u64,
    packets_received: u64,
    packets_sent: u64,
    connections: usize,
    outstanding: u64,
    uptime_ms: u64,
    znodes: usize,
    watches: view::WatchView,
    ephemerals: usize,
    data_size: u64,
    sessions: usize,
    auth_failed: u64,
    last_zxid: i64,
    queued_reads: usize,
    pending_writes: usize,
    containers: usize,
    ttl_nodes: usize,
    request_latency: Summary,
    read_latency: Summary,
    update_latency: Summary,
}

pub async fn render(st: &Arc<AdminState>) -> String {
    let core = st
        .inspect(|core| {
            let s = &core.stats;
            CoreValues {
                avg_latency: s.avg_latency_ms(),
                min_latency: s.min_latency(),
                max_latency: s.max_latency_ms,
                packets_received: s.packets_received,
                packets_sent: s.packets_sent,
                connections: core.conns.len(),
                outstanding: view::outstanding(core),
                uptime_ms: core.started.elapsed().as_millis() as u64,
                znodes: core.tree.node_count_reported(),
                watches: view::watches(core),
                ephemerals: core.tree.ephemeral_count(),
                data_size: core.tree.approximate_data_size(),
                sessions: core.sessions.len(),
                auth_failed: s.auth_failed,
                last_zxid: core.tree.last_zxid(),
                queued_reads: core.gate.queued(),
                pending_writes: core.waiters.len(),
                containers: core.tree.containers().len(),
                ttl_nodes: core.tree.ttls().len(),
                request_latency: s.request_latency.clone(),
                read_latency: s.read_latency.clone(),
                update_latency: s.update_latency.clone(),
            }
        })
        .await;
    let ready = match &core {
        Some(_) => super::commands::readiness(st).await.ready,
        None => false,
    };
    let mut p = PromText::default();
    if let Some(c) = &core {
        // ZooKeeper's gauges (ZooKeeperServer.registerMetrics).
        let zk = |p: &mut PromText, name: &str, v: f64| p.gauge(name, name, v);
        zk(&mut p, "avg_latency", c.avg_latency);
        zk(&mut p, "max_latency", c.max_latency as f64);
        zk(&mut p, "min_latency", c.min_latency as f64);
        zk(&mut p, "packets_received", c.packets_received as f64);
        zk(&mut p, "packets_sent", c.packets_sent as f64);
        zk(&mut p, "num_alive_connections", c.connections as f64);
        zk(&mut p, "outstanding_requests", c.outstanding as f64);
        zk(&mut p, "uptime", c.uptime_ms as f64);
        zk(&mut p, "znode_count", c.znodes as f64);
        zk(&mut p, "watch_count", c.watches.watch_count() as f64);
        zk(&mut p, "ephemerals_count", c.ephemerals as f64);
        zk(&mut p, "approximate_data_size", c.data_size as f64);
        zk(&mut p, "global_sessions", c.sessions as f64);
        zk(&mut p, "local_sessions", 0.0);
        zk(&mut p, "open_file_descriptor_count", sys::open_fds() as f64);
        zk(&mut p, "max_file_descriptor_count", sys::max_fds() as f64);
        zk(&mut p, "connection_drop_probability", 0.0);
        zk(&mut p, "outstanding_tls_handshake", 0.0);
        zk(&mut p, "auth_failed_count", c.auth_failed as f64);
        zk(&mut p, "non_mtls_remote_conn_count", 0.0);
        zk(&mut p, "non_mtls_local_conn_count", 0.0);
        // ZooKeeper's summaries (ServerMetrics), in milliseconds.
        p.summary("readlatency", "readlatency", &c.read_latency, ADVANCED);
        p.summary("updatelatency", "updatelatency", &c.update_latency, ADVANCED);
    }
    let g = metrics::global();
    p.summary("fsynctime", "fsynctime", &metrics::snapshot_of(&g.fsync_ms), BASIC);
    p.summary("snapshottime", "snapshottime", &metrics::snapshot_of(&g.snapshot_ms), BASIC);
    p.summary("dbinittime", "dbinittime", &metrics::snapshot_of(&st.db_init_ms), BASIC);
    p.summary("startup_txns_loaded", "startup_txns_loaded", &metrics::snapshot_of(&st.txns_loaded), BASIC);

    // The standard process metrics (what ZooKeeper's JVM exports too).
    let (virt, rss) = sys::memory();
    p.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", sys::cpu_seconds());
    p.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        sys::process_start_seconds(),
    );
    p.gauge("process_open_fds", "Number of open file descriptors.", sys::open_fds() as f64);
    p.gauge("process_max_fds", "Maximum number of open file descriptors.", sys::max_fds() as f64);
    p.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", virt as f64);
    p.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss as f64);

    // Ours.
    p.labelled_gauge(
        "ferrokeeper_build_info",
        "Ferrokeeper build: the version string reported as zookeeper.version.",
        &[(vec![("version", VERSION)], 1.0)],
    );
    p.gauge(
        "ferrokeeper_ready",
        "1 when the server can serve writes (see /commands/ready).",
        if ready { 1.0 } else { 0.0 },
    );
    p.counter(
        "ferrokeeper_fsync_threshold_exceeded_total",
        "Transaction log fsyncs slower than fsync.warningthresholdms.",
        g.fsync_threshold_exceeded.load(Ordering::Relaxed) as f64,
    );
    p.counter(
        "ferrokeeper_admin_requests_total",
        "HTTP requests served by the AdminServer.",
        st.admin_requests.load(Ordering::Relaxed) as f64,
    );
    p.counter(
        "ferrokeeper_metrics_scrapes_total",
        "Scrapes of this endpoint.",
        st.metrics_scrapes.load(Ordering::Relaxed) as f64,
    );
    if let Some(c) = &core {
        p.summary(
            "ferrokeeper_request_latency_ms",
            "Latency of every client request (reads and writes), from receipt to reply, in ms.",
            &c.request_latency,
            ADVANCED,
        );
        p.gauge("ferrokeeper_last_zxid", "The zxid of the last applied transaction.", c.last_zxid as f64);
        p.gauge("ferrokeeper_queued_reads", "Reads waiting behind a write of their session.", c.queued_reads as f64);
        p.gauge(
            "ferrokeeper_pending_proposals",
            "Proposals (writes, session creations) waiting for their commit.",
            c.pending_writes as f64,
        );
        p.gauge(
            "ferrokeeper_watched_paths",
            "Paths with a data or exist watch (wchs).",
            c.watches.data_by_path.len() as f64,
        );
        p.gauge(
            "ferrokeeper_watching_connections",
            "Connections with a data or exist watch (wchs).",
            c.watches.data_connections as f64,
        );
        p.gauge("ferrokeeper_container_nodes", "Container znodes.", c.containers as f64);
        p.gauge("ferrokeeper_ttl_nodes", "TTL znodes.", c.ttl_nodes as f64);
    }
    p.out
}
