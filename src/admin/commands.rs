//! The AdminServer's commands (`/commands/<name>`): ZooKeeper 3.8/3.9's
//! names, aliases and JSON keys (`org.apache.zookeeper.server.admin.Commands`),
//! plus `ready`, ours.
//!
//! Every response is a JSON object ending with `"command"` (the primary
//! name) and `"error"` (null, or why the command failed), as ZooKeeper's
//! `CommandResponse.toMap`; an unknown name answers with the name as given
//! and `Unknown command: <name>`, still HTTP 200, as ZooKeeper.

use super::json::{Json, ObjectBuilder};
use super::state::{self, AdminState};
use super::view::{self, MonVal};
use super::{digest, metrics, sys, words, VERSION};
use crate::pipeline::Core;
use std::collections::BTreeMap;
use std::sync::Arc;

/// ZooKeeper's answer when the server is not running (yet).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

pub struct Spec {
    /// The primary name first, then the aliases.
    pub names: &'static [&'static str],
    /// Whether the command needs a running core (ZooKeeper's `serverRequired`).
    pub server_required: bool,
}

pub const COMMANDS: &[Spec] = &[
    Spec { names: &["connection_stat_reset", "crst"], server_required: true },
    Spec { names: &["configuration", "conf", "config"], server_required: true },
    Spec { names: &["connections", "cons"], server_required: true },
    Spec { names: &["hash"], server_required: true },
    Spec { names: &["dirs"], server_required: true },
    Spec { names: &["dump"], server_required: true },
    Spec { names: &["environment", "env", "envi"], server_required: false },
    Spec { names: &["get_trace_mask", "gtmk"], server_required: false },
    Spec { names: &["initial_configuration", "icfg"], server_required: true },
    Spec { names: &["is_read_only", "isro"], server_required: true },
    Spec { names: &["last_snapshot", "lsnp"], server_required: true },
    Spec { names: &["leader", "lead"], server_required: true },
    Spec { names: &["monitor", "mntr"], server_required: false },
    Spec { names: &["observer_connection_stat_reset", "orst"], server_required: true },
    Spec { names: &["ruok"], server_required: true },
    Spec { names: &["set_trace_mask", "stmk"], server_required: false },
    Spec { names: &["server_stats", "srvr"], server_required: true },
    Spec { names: &["stats", "stat"], server_required: true },
    Spec { names: &["stat_reset", "srst"], server_required: true },
    Spec { names: &["observers", "obsr"], server_required: true },
    Spec { names: &["system_properties", "sysp"], server_required: false },
    Spec { names: &["voting_view"], server_required: true },
    Spec { names: &["watches", "wchc"], server_required: true },
    Spec { names: &["watches_by_path", "wchp"], server_required: true },
    Spec { names: &["watch_summary", "wchs"], server_required: true },
    Spec { names: &["zabstate"], server_required: false },
    Spec { names: &["ready"], server_required: false },
];

pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.names.contains(&name))
}

/// Primary names, sorted (the `/commands` page).
pub fn primary_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COMMANDS.iter().map(|s| s.names[0]).collect();
    v.sort_unstable();
    v
}

/// A command's outcome: HTTP status and the JSON body.
pub struct Outcome {
    pub status: u16,
    pub body: Json,
}

fn finish(command: &str, mut data: ObjectBuilder, error: Option<String>) -> Json {
    // CommandResponse.toMap: data, then command and error, then data again
    // (an "error" the command put stays where it was).
    if !data.contains("command") {
        data.put("command", command);
    }
    if !data.contains("error") {
        data.put("error", error.map_or(Json::Null, Json::Str));
    }
    data.build()
}

fn failed(command: &str, error: &str) -> Outcome {
    Outcome { status: 200, body: finish(command, ObjectBuilder::new(), Some(error.to_owned())) }
}

/// Runs a command by any of its names.
pub async fn run(st: &Arc<AdminState>, name: &str, kwargs: &BTreeMap<String, String>) -> Outcome {
    let Some(spec) = find(name) else {
        return failed(name, &format!("Unknown command: {name}"));
    };
    if spec.server_required && !st.is_attached() {
        return failed(name, NOT_SERVING);
    }
    let primary = spec.names[0];
    let mut d = ObjectBuilder::new();
    let mut status = 200;
    let ok = match primary {
        "ruok" | "observer_connection_stat_reset" => true,
        "connection_stat_reset" => st
            .inspect(|core| {
                for c in core.conns.values_mut() {
                    c.received = 0;
                    c.sent = 0;
                }
            })
            .await
            .is_some(),
        "stat_reset" => {
            let done = st.inspect(|core| core.stats.reset()).await.is_some();
            if done {
                st.reset_metrics();
            }
            done
        }
        "configuration" => {
            let c = &st.cfg;
            d.put("client_port", c.client_port as i64)
                .put("data_dir", c.data_dir.display().to_string())
                .put("data_log_dir", c.data_log_dir.display().to_string())
                .put("tick_time", c.tick_time_ms as i64)
                .put("max_client_cnxns", c.max_client_cnxns as i64)
                .put("min_session_timeout", c.min_session_timeout_ms)
                .put("max_session_timeout", c.max_session_timeout_ms)
                .put("server_id", c.server_id)
                .put("client_port_listen_backlog", -1i64);
            true
        }
        "connections" => match st.inspect(|core| view::connections(core)).await {
            Some(conns) => {
                d.put("connections", Json::Array(conns.iter().map(|c| connection_json(c, false)).collect()))
                    .put("secure_connections", Json::Array(vec![]));
                true
            }
            None => false,
        },
        "server_stats" | "stats" => {
            let brief = primary == "stats";
            match st.inspect(move |core| (server_stats(core), brief.then(|| view::connections(core)))).await {
                Some((stats, conns)) => {
                    let (data_size, log_size) = dir_sizes(st).await;
                    server_stats_json(&mut d, stats, data_size, log_size);
                    if let Some(conns) = conns {
                        d.put("connections", Json::Array(conns.iter().map(|c| connection_json(c, true)).collect()))
                            .put("secure_connections", Json::Array(vec![]));
                    }
                    true
                }
                None => false,
            }
        }
        "dirs" => {
            let (data_size, log_size) = dir_sizes(st).await;
            d.put("datadir_size", data_size).put("logdir_size", log_size);
            true
        }
        "dump" => match st.inspect(|core| (view::expiry_buckets(core), view::ephemerals(core))).await {
            Some((buckets, eph)) => {
                let expiry = buckets
                    .into_iter()
                    .map(|(at, ids)| (at.to_string(), Json::Array(ids.into_iter().map(Json::from).collect())))
                    .collect();
                let eph = eph
                    .into_iter()
                    .map(|(id, paths)| (id.to_string(), Json::Array(paths.into_iter().map(Json::from).collect())))
                    .collect();
                d.put("expiry_time_to_session_ids", Json::Object(expiry))
                    .put("session_id_to_ephemeral_paths", Json::Object(eph));
                true
            }
            None => false,
        },
        "environment" => {
            for (k, v) in words::environment() {
                d.put(k, v);
            }
            true
        }
        "hash" => match st.inspect(|core| (core.tree.last_zxid(), core.tree.share_nodes())).await {
            Some((zxid, nodes)) => {
                let digest = tokio::task::spawn_blocking(move || digest::tree_digest(&nodes)).await.ok();
                match digest {
                    Some(digest) => {
                        let mut e = ObjectBuilder::new();
                        e.put("zxid", zxid).put("digest", digest).put("digest_version", digest::DIGEST_VERSION);
                        d.put("digests", Json::Array(vec![e.build()]));
                        true
                    }
                    None => false,
                }
            }
            None => false,
        },
        "get_trace_mask" => {
            d.put("tracemask", state::trace_mask());
            true
        }
        "set_trace_mask" => {
            match kwargs.get("traceMask") {
                None => {
                    d.put("error", "setTraceMask requires long traceMask argument");
                }
                Some(v) => match v.parse::<i64>() {
                    Ok(mask) => {
                        state::set_trace_mask(mask);
                        d.put("tracemask", mask);
                    }
                    Err(_) => {
                        d.put("error", format!("setTraceMask requires long traceMask argument, got {v}"));
                    }
                },
            }
            true
        }
        "initial_configuration" => {
            d.put("initial_configuration", st.initial_config.clone().map_or(Json::Null, Json::Str));
            true
        }
        "is_read_only" => {
            d.put("read_only", false);
            true
        }
        "last_snapshot" => {
            let dir = st.cfg.data_dir.clone();
            let snap = tokio::task::spawn_blocking(move || sys::last_snapshot(&dir)).await.ok().flatten();
            let (zxid, ts) = snap.unwrap_or((-1, -1));
            d.put("zxid", format!("{zxid:x}")).put("timestamp", ts);
            true
        }
        "leader" => {
            d.put("error", "server is not initialized");
            true
        }
        "monitor" => {
            if !st.is_attached() {
                return failed(primary, NOT_SERVING);
            }
            let admin = st.clone();
            match st
                .inspect(move |core| {
                    let w = view::watches(core);
                    view::monitor(core, Some(&admin), &w)
                })
                .await
            {
                Some(values) => {
                    for (k, v) in values {
                        d.put(&k, mon_json(v));
                    }
                    true
                }
                None => false,
            }
        }
        "observers" => {
            d.put("synced_observers", 0i64).put("observers", Json::Array(vec![]));
            true
        }
        "system_properties" => {
            for (k, v) in system_properties(&st.cfg.properties) {
                d.put(&k, v);
            }
            true
        }
        "voting_view" => {
            d.put("current_config", Json::Object(vec![]));
            true
        }
        "watches" | "watches_by_path" | "watch_summary" => match st.inspect(|core| view::watches(core)).await {
            Some(w) => {
                match primary {
                    "watches" => {
                        let m = w
                            .data_by_session
                            .into_iter()
                            .map(|(sid, paths)| {
                                (sid.to_string(), Json::Array(paths.into_iter().map(Json::from).collect()))
                            })
                            .collect();
                        d.put("session_id_to_watched_paths", Json::Object(m));
                    }
                    "watches_by_path" => {
                        let m = w
                            .data_by_path
                            .into_iter()
                            .map(|(p, sids)| (p, Json::Array(sids.into_iter().map(Json::from).collect())))
                            .collect();
                        d.put("path_to_session_ids", Json::Object(m));
                    }
                    _ => {
                        d.put("num_connections", w.data_connections)
                            .put("num_paths", w.data_by_path.len())
                            .put("num_total_watches", w.data_total);
                    }
                }
                true
            }
            None => false,
        },
        "zabstate" => {
            d.put("voting", false).put("zabstate", "");
            true
        }
        "ready" => {
            let r = readiness(st).await;
            status = if r.ready { 200 } else { 503 };
            d.put("ready", r.ready)
                .put("recovered", r.recovered)
                .put("core_responsive", r.core_responsive)
                .put("txnlog_thread_alive", r.log_thread.map_or(Json::Null, Json::Bool));
            if let Some(why) = r.why {
                d.put("error", why);
            }
            true
        }
        _ => false,
    };
    if !ok {
        return failed(primary, NOT_SERVING);
    }
    Outcome { status, body: finish(primary, d, None) }
}

fn mon_json(v: MonVal) -> Json {
    match v {
        MonVal::Long(n) => Json::Long(n),
        MonVal::Double(d) => Json::Double(d),
        MonVal::Str(s) => Json::Str(s),
    }
}

fn connection_json(c: &view::ConnView, brief: bool) -> Json {
    let mut o = ObjectBuilder::new();
    o.put("remote_socket_address", c.addr.to_string())
        .put("interest_ops", 1i64)
        .put("outstanding_requests", 0i64)
        .put("packets_received", c.received)
        .put("packets_sent", c.sent);
    if !brief {
        // What we do not keep per connection reads as ZooKeeper's after crst.
        o.put("session_id", c.session_id)
            .put("last_operation", "NA")
            .put("established", c.established_ms)
            .put("session_timeout", c.timeout_ms)
            .put("last_cxid", -1i64)
            .put("last_zxid", -1i64)
            .put("last_response_time", 0i64)
            .put("last_latency", 0i64)
            .put("min_latency", 0i64)
            .put("avg_latency", 0i64)
            .put("max_latency", 0i64);
    }
    o.build()
}

/// What `srvr` reports, read on the core.
pub struct ServerStatsView {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub last_zxid: i64,
    pub outstanding: u64,
    pub avg_latency: f64,
    pub min_latency: u64,
    pub max_latency: u64,
    pub connections: usize,
    pub uptime_ms: u64,
    pub auth_failed: u64,
    pub node_count: usize,
    pub server_state: &'static str,
}

fn server_stats(core: &Core) -> ServerStatsView {
    let s = &core.stats;
    ServerStatsView {
        packets_sent: s.packets_sent,
        packets_received: s.packets_received,
        last_zxid: core.tree.last_zxid(),
        outstanding: view::outstanding(core),
        avg_latency: s.avg_latency_ms(),
        min_latency: s.min_latency(),
        max_latency: s.max_latency_ms,
        connections: core.conns.len(),
        uptime_ms: core.started.elapsed().as_millis() as u64,
        auth_failed: s.auth_failed,
        node_count: core.tree.node_count_reported(),
        server_state: core.role.mode(),
    }
}

fn buffer_stats() -> Json {
    // Response sizes are not measured: ZooKeeper's values before any response.
    let mut b = ObjectBuilder::new();
    b.put("last_buffer_size", -1i64).put("min_buffer_size", -1i64).put("max_buffer_size", -1i64);
    b.build()
}

fn server_stats_json(d: &mut ObjectBuilder, s: ServerStatsView, data_size: u64, log_size: u64) {
    let fsync_over = metrics::global().fsync_threshold_exceeded.load(std::sync::atomic::Ordering::Relaxed);
    let mut o = ObjectBuilder::new();
    o.put("packets_sent", s.packets_sent)
        .put("packets_received", s.packets_received)
        .put("fsync_threshold_exceed_count", fsync_over)
        .put("client_response_stats", buffer_stats())
        .put("data_dir_size", data_size)
        .put("log_dir_size", log_size)
        .put("provider_null", false)
        .put("server_state", s.server_state)
        .put("last_processed_zxid", s.last_zxid)
        .put("outstanding_requests", s.outstanding)
        .put("avg_latency", s.avg_latency)
        .put("max_latency", s.max_latency)
        .put("min_latency", s.min_latency)
        .put("num_alive_client_connections", s.connections)
        .put("uptime", s.uptime_ms)
        .put("auth_failed_count", s.auth_failed)
        .put("non_mtlsremote_conn_count", 0i64)
        .put("non_mtlslocal_conn_count", 0i64);
    d.put("version", VERSION)
        .put("read_only", false)
        .put("server_stats", o.build())
        .put("client_response", buffer_stats())
        .put("node_count", s.node_count);
}

async fn dir_sizes(st: &AdminState) -> (u64, u64) {
    let (a, b) = (st.cfg.data_dir.clone(), st.cfg.data_log_dir.clone());
    tokio::task::spawn_blocking(move || (sys::dir_size(&a), sys::dir_size(&b))).await.unwrap_or((0, 0))
}

/// Our "system properties": every ZooKeeper property in effect (zoo.cfg
/// keys turned into `zookeeper.*`, and `-D` ones) and the OS facts a JVM
/// would report, sorted by key.
pub fn system_properties(props: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut m = props.clone();
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    for (k, v) in [
        ("file.separator", "/".to_owned()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("line.separator", "\n".to_owned()),
        ("os.arch", sys::os_arch().to_owned()),
        ("os.name", "Linux".to_owned()),
        ("os.version", sys::os_version()),
        ("path.separator", ":".to_owned()),
        ("user.dir", cwd),
        ("user.home", env("HOME")),
        ("user.name", env("USER")),
    ] {
        m.entry(k.to_owned()).or_insert(v);
    }
    m
}

/// `/commands/ready`: whether this server can serve writes now.
pub struct Readiness {
    pub ready: bool,
    /// Start-up recovery (snapshot + log replay) is done and the core runs.
    pub recovered: bool,
    /// The core task answered within the admin timeout.
    pub core_responsive: bool,
    /// The transaction log thread (`txnlog`) is alive; `None` when the OS
    /// does not say.
    pub log_thread: Option<bool>,
    pub why: Option<String>,
}

pub async fn readiness(st: &AdminState) -> Readiness {
    let recovered = st.is_attached();
    let core_responsive = recovered && st.inspect(|_| ()).await.is_some();
    let log_thread = sys::thread_alive("txnlog");
    let why = if !recovered {
        Some("recovering: the snapshot and the transaction log are still being loaded".to_owned())
    } else if !core_responsive {
        Some("the core task did not answer".to_owned())
    } else if log_thread == Some(false) {
        Some("the transaction log thread is not running".to_owned())
    } else {
        None
    };
    Readiness { ready: why.is_none(), recovered, core_responsive, log_thread, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::pipeline::Core;

    fn state() -> Arc<AdminState> {
        AdminState::new(Arc::new(ServerConfig::default()))
    }

    fn field<'a>(j: &'a Json, key: &str) -> Option<&'a Json> {
        match j {
            Json::Object(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    #[tokio::test]
    async fn before_recovery() {
        let st = state();
        let none = BTreeMap::new();
        let r = run(&st, "ready", &none).await;
        assert_eq!(r.status, 503);
        assert_eq!(field(&r.body, "ready"), Some(&Json::Bool(false)));
        assert!(matches!(field(&r.body, "error"), Some(Json::Str(_))));
        let r = run(&st, "srvr", &none).await;
        assert_eq!(r.status, 200);
        assert_eq!(field(&r.body, "command"), Some(&Json::from("srvr")));
        assert_eq!(field(&r.body, "error"), Some(&Json::from(NOT_SERVING)));
        // commands that do not need the server still answer
        let r = run(&st, "envi", &none).await;
        assert_eq!(field(&r.body, "command"), Some(&Json::from("environment")));
        assert_eq!(field(&r.body, "error"), Some(&Json::Null));
        let r = run(&st, "nosuch", &none).await;
        assert_eq!(field(&r.body, "error"), Some(&Json::from("Unknown command: nosuch")));
    }

    #[tokio::test]
    async fn with_a_running_core() {
        let st = state();
        let (core, committed) = Core::in_memory(st.cfg.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(core.run(rx, committed));
        st.attach(tx);
        let none = BTreeMap::new();
        let r = run(&st, "ready", &none).await;
        assert_eq!(field(&r.body, "recovered"), Some(&Json::Bool(true)));
        assert_eq!(field(&r.body, "core_responsive"), Some(&Json::Bool(true)));
        let r = run(&st, "mntr", &none).await;
        assert_eq!(field(&r.body, "znode_count"), Some(&Json::Long(5)));
        assert_eq!(field(&r.body, "server_state"), Some(&Json::from("standalone")));
        let r = run(&st, "wchs", &none).await;
        assert_eq!(
            r.body.pretty(),
            "{\n  \"num_connections\" : 0,\n  \"num_paths\" : 0,\n  \"num_total_watches\" : 0,\n  \
             \"command\" : \"watch_summary\",\n  \"error\" : null\n}"
        );
        let r = run(&st, "dump", &none).await;
        assert_eq!(field(&r.body, "expiry_time_to_session_ids"), Some(&Json::Object(vec![])));
        let r = run(&st, "hash", &none).await;
        match field(&r.body, "digests") {
            Some(Json::Array(d)) => assert_eq!(d.len(), 1),
            other => panic!("{other:?}"),
        }
        let mut kw = BTreeMap::new();
        kw.insert("traceMask".to_owned(), "x".to_owned());
        let r = run(&st, "stmk", &kw).await;
        assert_eq!(field(&r.body, "error"), Some(&Json::from("setTraceMask requires long traceMask argument, got x")));
    }
}
