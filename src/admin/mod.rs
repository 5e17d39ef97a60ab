//! Operations: the four-letter words, ZooKeeper's AdminServer (HTTP JSON)
//! and the Prometheus `/metrics` endpoint.
//!
//! ```text
//! client port ─ "ruok"… ─► session::connection (whitelist) ─► CoreMsg::FourLetter ─► words (text)
//! admin.serverPort ─ GET /commands/<name> ─► http ─► commands ─┐
//! metricsProvider.httpPort ─ GET /metrics ─► http ─► scrape ───┴─► CoreMsg::Inspect ─► view (on the core)
//! ```
//!
//! - Inputs: a command and a read-only view of the core's state, taken on
//!   the core's task ([`view`]), so every answer is consistent.
//! - Outputs: ZooKeeper's exact text or JSON layout for that command (line
//!   order, key names, separators), so probes and dashboards parse it
//!   unchanged; only values differ. Metrics carry ZooKeeper's names where it
//!   has one, `process_*`, and `ferrokeeper_*` for ours.
//! - Invariants: nothing here writes to the tree; HTTP requests are bounded
//!   and isolated ([`http`]); four-letter whitelisting happens in the
//!   connection task (`4lw.commands.whitelist`, default `srvr` only, `*` for
//!   all).
//!
//! Configuration (zoo.cfg keys become `zookeeper.*` properties, or `-D`):
//! `admin.enableServer` (true), `admin.serverAddress` (0.0.0.0),
//! `admin.serverPort` (8080), `admin.commandURL` (/commands),
//! `admin.idleTimeout` (30000 ms); `metricsProvider.className` =
//! `org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider` turns
//! on `/metrics` at `metricsProvider.httpHost` (0.0.0.0) :
//! `metricsProvider.httpPort` (7000).

pub mod commands;
pub mod digest;
pub mod http;
pub mod json;
pub mod metrics;
pub mod scrape;
pub mod state;
pub mod sys;
pub mod view;
pub mod words;

use crate::config::ServerConfig;
use crate::pipeline::Core;
pub use state::AdminState;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

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

/// The text of a four-letter word; runs on the core's task.
pub fn four_letter(core: &mut Core, cmd: &str) -> String {
    words::run(core, cmd)
}

/// The Prometheus provider's class name in zoo.cfg.
pub const PROMETHEUS_PROVIDER: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

fn prop<'a>(cfg: &'a ServerConfig, key: &str) -> Option<&'a str> {
    cfg.properties.get(key).map(|s| s.trim())
}

/// `metricsProvider.*` keys: zoo.cfg configuration keys (not properties),
/// read from the file itself.
fn metrics_provider_config(cfg: &ServerConfig) -> std::collections::BTreeMap<String, String> {
    let Some(path) = &cfg.config_file else { return Default::default() };
    let Ok(text) = std::fs::read_to_string(path) else { return Default::default() };
    let Ok(entries) = crate::config::parse_properties(&text, path) else { return Default::default() };
    entries.into_iter().filter_map(|(k, v)| k.strip_prefix("metricsProvider.").map(|k| (k.to_owned(), v))).collect()
}

async fn bind(host: &str, port: u16, what: &str, required: bool) -> std::io::Result<Option<TcpListener>> {
    match TcpListener::bind((host, port)).await {
        Ok(l) => Ok(Some(l)),
        Err(e) if required => {
            Err(std::io::Error::new(e.kind(), format!("cannot bind the {what} on {host}:{port}: {e}")))
        }
        Err(e) => {
            tracing::error!("cannot bind the {what} on {host}:{port}: {e}; going on without it");
            Ok(None)
        }
    }
}

/// Starts the AdminServer and the metrics endpoint as configured; call it
/// before recovery (`/commands/ready` says false until [`AdminState::attach`]).
///
/// A port that cannot be bound stops the start when it was configured
/// explicitly (as ZooKeeper); the AdminServer's implicit default (8080 on
/// every address) is only logged, so that several servers can share a host.
pub async fn start(cfg: &Arc<ServerConfig>) -> std::io::Result<Arc<AdminState>> {
    let st = AdminState::new(cfg.clone());
    let enabled = prop(cfg, "zookeeper.admin.enableServer").is_none_or(|v| v.eq_ignore_ascii_case("true"));
    if enabled {
        let explicit = ["zookeeper.admin.serverPort", "zookeeper.admin.serverAddress", "zookeeper.admin.enableServer"]
            .iter()
            .any(|k| cfg.properties.contains_key(*k));
        let host = prop(cfg, "zookeeper.admin.serverAddress").unwrap_or("0.0.0.0").to_owned();
        let port = match prop(cfg, "zookeeper.admin.serverPort") {
            None => 8080,
            Some(v) => v.parse::<u16>().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("invalid value {v:?} for admin.serverPort: not a port number"),
                )
            })?,
        };
        let mut url = prop(cfg, "zookeeper.admin.commandURL").unwrap_or("/commands").to_owned();
        if !url.starts_with('/') {
            url.insert(0, '/');
        }
        while url.len() > 1 && url.ends_with('/') {
            url.pop();
        }
        let idle = prop(cfg, "zookeeper.admin.idleTimeout").and_then(|v| v.parse::<u64>().ok()).unwrap_or(30_000);
        let idle = Duration::from_millis(idle.clamp(100, 300_000));
        if let Some(l) = bind(&host, port, "AdminServer", explicit).await? {
            if let Ok(a) = l.local_addr() {
                let _ = st.admin_addr.set(a);
                tracing::info!(addr = %a, url = %url, "AdminServer started");
            }
            tokio::spawn(http::accept_loop(l, Arc::downgrade(&st), http::Site::Admin { url }, idle));
        }
    }
    let mp = metrics_provider_config(cfg);
    match mp.get("className").map(|s| s.as_str()) {
        Some(PROMETHEUS_PROVIDER) => {
            let host = mp.get("httpHost").map_or("0.0.0.0", |s| s.as_str()).to_owned();
            let port = match mp.get("httpPort") {
                None => 7000,
                Some(v) => v.parse::<u16>().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("invalid value {v:?} for metricsProvider.httpPort: not a port number"),
                    )
                })?,
            };
            if let Some(l) = bind(&host, port, "metrics endpoint", true).await? {
                if let Ok(a) = l.local_addr() {
                    let _ = st.metrics_addr.set(a);
                    tracing::info!(addr = %a, "Prometheus /metrics started");
                }
                tokio::spawn(http::accept_loop(l, Arc::downgrade(&st), http::Site::Metrics, Duration::from_secs(30)));
            }
        }
        Some(other) if !other.is_empty() && !other.ends_with("DefaultMetricsProvider") => {
            tracing::warn!(class = other, "unsupported metricsProvider.className; metrics are not exported");
        }
        _ => {}
    }
    Ok(st)
}
