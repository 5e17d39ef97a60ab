//! Four-letter words: the plain-text probes operators and clients send as
//! the first four bytes of a connection (`ruok`, `srvr`, `mntr`, ...).
//!
//! - Inputs: the command, and a read-only view of the core's state.
//! - Outputs: ZooKeeper's exact text for that command.
//! - Invariants: the text layout (line order, key names, separators) is
//!   ZooKeeper's, so probes and dashboards parse it unchanged; only values
//!   differ. Whitelisting happens in the connection task
//!   (`4lw.commands.whitelist`, default `srvr` only, `*` for all).

use crate::pipeline::Core;
use std::fmt::Write;

/// The version we report: the ZooKeeper release whose protocol we speak,
/// then our own version, so `zookeeper.version=3.9.x` parsers work.
pub const VERSION: &str = concat!("3.9.3-ferrokeeper-", env!("CARGO_PKG_VERSION"), ", built on 2026-11-22 00:00 UTC");

const WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat", "wchc", "wchp",
    "wchs", "mntr", "isro", "hash",
];

/// The command, when the first four bytes of a connection are one.
pub fn as_four_letter_word(first: &[u8; 4]) -> Option<&'static str> {
    WORDS.iter().copied().find(|w| w.as_bytes() == first)
}

/// Java's `Double.toString` for the latency average: always a fraction part.
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn avg_latency(core: &Core) -> f64 {
    let s = &core.stats;
    if s.latency_count == 0 {
        0.0
    } else {
        s.total_latency_ms as f64 / s.latency_count as f64
    }
}

fn server_summary(core: &Core, out: &mut String) {
    let s = &core.stats;
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        s.min_latency_ms,
        java_double(avg_latency(core)),
        s.max_latency_ms
    );
    let _ = writeln!(out, "Received: {}", s.packets_received);
    let _ = writeln!(out, "Sent: {}", s.packets_sent);
    let _ = writeln!(out, "Connections: {}", core.conns.len());
    let _ = writeln!(out, "Outstanding: {}", core.gate.queued());
    let _ = writeln!(out, "Zxid: 0x{:x}", core.tree.last_zxid());
    let _ = writeln!(out, "Mode: standalone");
    let _ = writeln!(out, "Node count: {}", core.tree.node_count_reported());
}

fn connections(core: &Core, out: &mut String) {
    let mut conns: Vec<_> = core.conns.values().collect();
    conns.sort_by_key(|c| c.handle.id);
    for c in conns {
        let _ = writeln!(out, " /{}[1](queued=0,recved={},sent={})", c.handle.addr, c.received, c.sent);
    }
}

fn env_lines(core: &Core, out: &mut String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let home = std::env::var("HOME").unwrap_or_default();
    let _ = writeln!(out, "zookeeper.version={VERSION}");
    let _ = writeln!(out, "host.name={}", host.trim());
    let _ = writeln!(out, "java.version=none (ferrokeeper is not a JVM server)");
    let _ = writeln!(out, "java.vendor=none");
    let _ = writeln!(out, "java.home=none");
    let _ = writeln!(out, "java.class.path=none");
    let _ = writeln!(out, "java.library.path=none");
    let _ = writeln!(out, "java.io.tmpdir={}", std::env::temp_dir().display());
    let _ = writeln!(out, "java.compiler=<NA>");
    let _ = writeln!(out, "os.name=Linux");
    let _ = writeln!(out, "os.arch={}", if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH });
    let _ = writeln!(out, "os.version={}", os_version.trim());
    let _ = writeln!(out, "user.name={user}");
    let _ = writeln!(out, "user.home={home}");
    let _ = writeln!(out, "user.dir={cwd}");
    let rss_mb = resident_bytes() / (1024 * 1024);
    let _ = writeln!(out, "os.memory.free=0MB");
    let _ = writeln!(out, "os.memory.max={rss_mb}MB");
    let _ = writeln!(out, "os.memory.total={rss_mb}MB");
    let _ = core;
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn four_letter(core: &mut Core, cmd: &str) -> String {
    let mut out = String::new();
    match cmd {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
        "srvr" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            server_summary(core, &mut out);
        }
        "stat" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            out.push_str("Clients:\n");
            connections(core, &mut out);
            out.push('\n');
            server_summary(core, &mut out);
        }
        "cons" => {
            connections(core, &mut out);
            out.push('\n');
        }
        "envi" => {
            out.push_str("Environment:\n");
            env_lines(core, &mut out);
        }
        "conf" => {
            let c = &core.cfg;
            let _ = writeln!(out, "clientPort={}", c.client_port);
            let _ = writeln!(out, "secureClientPort=-1");
            let _ = writeln!(out, "dataDir={}", c.data_dir.display());
            let _ = writeln!(out, "dataDirSize=0");
            let _ = writeln!(out, "dataLogDir={}", c.data_log_dir.display());
            let _ = writeln!(out, "dataLogSize=0");
            let _ = writeln!(out, "tickTime={}", c.tick_time_ms);
            let _ = writeln!(out, "maxClientCnxns={}", c.max_client_cnxns);
            let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout_ms);
            let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout_ms);
            let _ = writeln!(out, "clientPortListenBacklog=-1");
            let _ = writeln!(out, "serverId={}", c.server_id);
        }
        "srst" => {
            core.stats.reset();
            out.push_str("Server stats reset.\n");
        }
        "crst" => {
            for c in core.conns.values_mut() {
                c.received = 0;
                c.sent = 0;
            }
            out.push_str("Connection stats reset.\n");
        }
        "dirs" => {
            out.push_str("datadir_size: 0\nlogdir_size: 0\n");
        }
        "wchs" => {
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                core.watches.connection_count(),
                core.watches.path_count(),
                core.watches.count()
            );
        }
        "mntr" => {
            let s = &core.stats;
            let kv = |out: &mut String, k: &str, v: String| {
                let _ = writeln!(out, "zk_{k}\t{v}");
            };
            kv(&mut out, "version", VERSION.to_string());
            kv(&mut out, "server_state", "standalone".into());
            kv(&mut out, "ephemerals_count", core.tree.ephemeral_count().to_string());
            kv(&mut out, "num_alive_connections", core.conns.len().to_string());
            kv(&mut out, "avg_latency", java_double(avg_latency(core)));
            kv(&mut out, "outstanding_requests", core.gate.queued().to_string());
            kv(&mut out, "znode_count", core.tree.node_count_reported().to_string());
            kv(&mut out, "global_sessions", core.sessions.len().to_string());
            kv(&mut out, "packets_sent", s.packets_sent.to_string());
            kv(&mut out, "packets_received", s.packets_received.to_string());
            kv(&mut out, "watch_count", core.watches.count().to_string());
            kv(&mut out, "auth_failed_count", s.auth_failed.to_string());
            kv(&mut out, "min_latency", s.min_latency_ms.to_string());
            kv(&mut out, "max_latency", s.max_latency_ms.to_string());
            kv(&mut out, "max_file_descriptor_count", max_fds().to_string());
            kv(&mut out, "open_file_descriptor_count", open_fds().to_string());
            kv(&mut out, "approximate_data_size", core.tree.approximate_data_size().to_string());
            kv(&mut out, "local_sessions", "0".into());
            kv(&mut out, "uptime", core.started.elapsed().as_millis().to_string());
        }
        // Reported but not yet implemented words answer like a server with
        // nothing to report; the full set is tracked in the operations issue.
        "dump" => {
            out.push_str("SessionTracker dump:\n");
            let _ = writeln!(out, "Global Sessions({}):", core.sessions.len());
            let mut ids: Vec<_> = core.sessions.iter().collect();
            ids.sort_by_key(|(id, _)| **id);
            for (id, s) in ids {
                let _ = writeln!(out, "0x{:x}\t{}ms", id, s.timeout_ms);
            }
            out.push_str("ephemeral nodes dump:\n");
            let mut eph: Vec<_> = core.tree.sessions_with_ephemerals().collect();
            eph.sort_by_key(|(id, _)| **id);
            let _ = writeln!(out, "Sessions with Ephemerals ({}):", eph.len());
            for (id, paths) in eph {
                let _ = writeln!(out, "0x{id:x}:");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{cmd} is not supported by this server yet.");
        }
    }
    out
}
