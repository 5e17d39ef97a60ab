//! The four-letter words' text, line for line as ZooKeeper 3.8/3.9 writes
//! them (`org.apache.zookeeper.server.command.*`). Runs on the core's task.

use super::state::{self, AdminState};
use super::view::{self, ConnView, MonVal};
use super::{digest, json, sys, VERSION};
use crate::pipeline::Core;
use std::fmt::Write;
use std::time::Duration;

/// ` /ip:port[1](queued=0,recved=N,sent=N` and, unless `brief`, the session
/// fields. Values we do not keep per connection (last operation, cxid, zxid,
/// response time, latencies) read as ZooKeeper's after `crst`.
fn connection_line(c: &ConnView, brief: bool, out: &mut String) {
    let _ = write!(out, " /{}[1](queued=0,recved={},sent={}", c.addr, c.received, c.sent);
    if !brief && c.session_id != 0 {
        let _ = write!(
            out,
            ",sid=0x{:x},lop=NA,est={},to={},lzxid=0x{:x},lresp=0,llat=0,minlat=0,avglat=0,maxlat=0",
            c.session_id, c.established_ms, c.timeout_ms, -1i64
        );
    }
    out.push(')');
}

/// `ServerStats.toString()` and the node count (`srvr`, `stat`).
fn server_summary(core: &Core, out: &mut String) {
    let s = &core.stats;
    let (avg, min) = (s.avg_latency_ms(), s.min_latency());
    let _ = writeln!(out, "Latency min/avg/max: {}/{}/{}", min, json::java_double(avg), s.max_latency_ms);
    let _ = writeln!(out, "Received: {}", s.packets_received);
    let _ = writeln!(out, "Sent: {}", s.packets_sent);
    let _ = writeln!(out, "Connections: {}", core.conns.len());
    let _ = writeln!(out, "Outstanding: {}", view::outstanding(core));
    let _ = writeln!(out, "Zxid: 0x{:x}", core.tree.last_zxid());
    let _ = writeln!(out, "Mode: {}", core.role.mode());
    let _ = writeln!(out, "Node count: {}", core.tree.node_count_reported());
}

/// `Environment.list()`: ZooKeeper's keys in its order; the JVM's are
/// reported as `none` (there is no JVM), the others as the OS says.
pub fn environment() -> Vec<(&'static str, String)> {
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let home = std::env::var("HOME").unwrap_or_default();
    let (_, rss) = sys::memory();
    let rss_mb = rss / (1024 * 1024);
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", sys::hostname()),
        ("java.version", "none (ferrokeeper is not a JVM server)".into()),
        ("java.vendor", "none".into()),
        ("java.home", "none".into()),
        ("java.class.path", "none".into()),
        ("java.library.path", "none".into()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".into()),
        ("os.name", "Linux".into()),
        ("os.arch", sys::os_arch().into()),
        ("os.version", sys::os_version()),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        ("os.memory.free", "0MB".into()),
        ("os.memory.max", format!("{rss_mb}MB")),
        ("os.memory.total", format!("{rss_mb}MB")),
    ]
}

/// `dump`: sessions by expiry bucket, then ephemerals, then connections.
fn dump(core: &mut Core, out: &mut String) {
    let buckets = view::expiry_buckets(core);
    let total: usize = buckets.iter().map(|(_, ids)| ids.len()).sum();
    out.push_str("SessionTracker dump:\n");
    let _ = writeln!(out, "Session Sets ({})/({}):", buckets.len(), total);
    for (at, ids) in &buckets {
        let when = core.started_wall + Duration::from_millis(*at);
        let _ = writeln!(out, "{} expire at {}:", ids.len(), sys::java_date(when));
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let eph = view::ephemerals(core);
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", eph.len());
    for (id, paths) in eph {
        let _ = writeln!(out, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    // ZooKeeper's NIO factory lists its connection expiry queue here; its
    // Netty factory, like us (no such queue), lists nothing.
    out.push_str("Connections dump:\n");
}

/// The text of a four-letter word (whitelisting is the caller's).
/// What ZooKeeper's words that need a running server say on one that is
/// not serving (a quorum member without a leader).
pub const ZK_NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

pub fn run(core: &mut Core, cmd: &str) -> String {
    let mut out = String::new();
    let needs_serving = matches!(
        cmd,
        "srvr"
            | "stat"
            | "cons"
            | "conf"
            | "crst"
            | "dump"
            | "dirs"
            | "mntr"
            | "srst"
            | "wchs"
            | "wchc"
            | "wchp"
            | "hash"
    );
    if needs_serving && !core.role.answering() {
        let _ = writeln!(out, "{ZK_NOT_SERVING}");
        return out;
    }
    match cmd {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str(match (core.role.serving, core.role.read_only) {
            (true, _) => "rw",
            (false, true) => "ro",
            (false, false) => "null",
        }),
        "gtmk" => {
            let _ = write!(out, "{}", state::trace_mask());
        }
        // ZooKeeper reads an 8-byte mask after "stmk", sets it and echoes
        // it; the connection task has already set it.
        "stmk" => {
            let _ = write!(out, "{}", state::trace_mask());
        }
        "srvr" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            if !core.role.serving {
                out.push_str("READ-ONLY mode; serving only read-only clients\n");
            }
            server_summary(core, &mut out);
        }
        "stat" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            if !core.role.serving {
                out.push_str("READ-ONLY mode; serving only read-only clients\n");
            }
            out.push_str("Clients:\n");
            for c in view::connections(core) {
                connection_line(&c, true, &mut out);
                out.push('\n');
            }
            out.push('\n');
            server_summary(core, &mut out);
        }
        "cons" => {
            for c in view::connections(core) {
                connection_line(&c, false, &mut out);
                out.push('\n');
            }
            out.push('\n');
        }
        "envi" => {
            out.push_str("Environment:\n");
            for (k, v) in environment() {
                let _ = writeln!(out, "{k}={v}");
            }
        }
        "conf" => {
            let c = &core.cfg;
            let _ = writeln!(out, "clientPort={}", c.client_port);
            let _ = writeln!(out, "secureClientPort=-1");
            let _ = writeln!(out, "dataDir={}", c.data_dir.display());
            let _ = writeln!(out, "dataDirSize={}", sys::dir_size(&c.data_dir));
            let _ = writeln!(out, "dataLogDir={}", c.data_log_dir.display());
            let _ = writeln!(out, "dataLogSize={}", sys::dir_size(&c.data_log_dir));
            let _ = writeln!(out, "tickTime={}", c.tick_time_ms);
            let _ = writeln!(out, "maxClientCnxns={}", c.max_client_cnxns);
            let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout_ms);
            let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout_ms);
            let _ = writeln!(out, "clientPortListenBacklog=-1");
            let _ = writeln!(out, "serverId={}", c.server_id);
            if c.is_distributed() {
                // QuorumZooKeeperServer.dumpConf.
                let me = c.servers.iter().find(|s| s.id == c.server_id);
                let ports = |pick: fn(&(String, u16, u16)) -> u16| {
                    me.map(|s| s.addresses.iter().map(|a| pick(a).to_string()).collect::<Vec<_>>().join("|"))
                        .unwrap_or_default()
                };
                let observer = me.is_some_and(|s| s.role == crate::config::PeerRole::Observer);
                let _ = writeln!(out, "initLimit={}", c.init_limit);
                let _ = writeln!(out, "syncLimit={}", c.sync_limit);
                let _ = writeln!(out, "electionAlg=3");
                let _ = writeln!(out, "electionPort={}", ports(|a| a.2));
                let _ = writeln!(out, "quorumPort={}", ports(|a| a.1));
                let _ = writeln!(out, "peerType={}", u8::from(observer));
                let _ = writeln!(out, "membership: ");
                if let Some(data) = core.tree.get(crate::tree::CONFIG_ZOOKEEPER).and_then(|n| n.data.as_ref()) {
                    out.push_str(&String::from_utf8_lossy(data));
                }
            }
        }
        "srst" => {
            core.stats.reset();
            if let Some(a) = state::state_for(&core.cfg) {
                a.reset_metrics();
            }
            out.push_str("Server stats reset.\n");
        }
        "crst" => {
            for c in core.conns.values_mut() {
                c.received = 0;
                c.sent = 0;
            }
            out.push_str("Connection stats reset.\n");
        }
        "dump" => dump(core, &mut out),
        "dirs" => {
            let _ = writeln!(out, "datadir_size: {}", sys::dir_size(&core.cfg.data_dir));
            let _ = writeln!(out, "logdir_size: {}", sys::dir_size(&core.cfg.data_log_dir));
        }
        "wchs" => {
            let w = view::watches(core);
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                w.data_connections,
                w.data_by_path.len(),
                w.data_total
            );
        }
        "wchc" => {
            for (sid, paths) in view::watches(core).data_by_session {
                let _ = writeln!(out, "0x{sid:x}");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            for (path, sids) in view::watches(core).data_by_path {
                let _ = writeln!(out, "{path}");
                for sid in sids {
                    let _ = writeln!(out, "\t0x{sid:x}");
                }
            }
            out.push('\n');
        }
        "hash" => {
            // ZooKeeper lists the digests it logged at every 128th zxid; we
            // compute the digest of the tree as it is now, at its last zxid.
            let digest = digest::tree_digest(&core.tree.share_nodes());
            let _ = writeln!(out, "{:x}: {}", core.tree.last_zxid(), digest);
        }
        "mntr" => {
            let admin: Option<std::sync::Arc<AdminState>> = state::state_for(&core.cfg);
            let w = view::watches(core);
            for (k, v) in view::monitor(core, admin.as_deref(), &w) {
                let v = match v {
                    MonVal::Long(n) => n.to_string(),
                    MonVal::Double(d) => json::java_double(d),
                    MonVal::Str(s) => s,
                };
                let _ = writeln!(out, "zk_{k}\t{v}");
            }
        }
        _ => {
            let _ = writeln!(out, "{cmd} is not supported by this server.");
        }
    }
    out
}
