//! Configuration: `zoo.cfg` (Java properties), `myid`, and ZooKeeper system
//! properties given as `-Dkey=value`, turned into a typed [`ServerConfig`].
//!
//! As in ZooKeeper, a zoo.cfg key that is not a configuration key becomes the
//! system property `zookeeper.<key>` (so `extendedTypesEnabled=true` and
//! `4lw.commands.whitelist=*` in zoo.cfg work), and a `-D` property wins over
//! the same property derived from zoo.cfg.
//!
//! Every key and property ZooKeeper 3.9 documents is known here (the
//! `CONFIG_KEYS` and `PROPERTIES` tables). Each is either used, or has no
//! meaning for Ferrokeeper and is accepted with a one-line [`Notice`] saying
//! why; an unknown key gets a warning (with a suggestion when it looks like a
//! misspelt known one). Values are checked even for keys that are ignored.
//! An invalid value is an error that names the key, the value and the reason:
//! numbers, ports, addresses, booleans where ZooKeeper parses them strictly
//! (configuration keys; properties read with Java's `Boolean.parseBoolean`
//! stay lenient, with a warning), `server.N` lines, `myid`, the data
//! directories ([`ServerConfig::load`] only).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid { key: String, value: String, reason: String },
    #[error("{path}:{line}: not a key=value line: {text:?}")]
    Syntax { path: PathBuf, line: usize, text: String },
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), value: value.into(), reason: reason.into() }
}

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_JUTE_MAXBUFFER: usize = 0xfffff;

/// The largest server id with TTL nodes enabled (ZooKeeper's limit: the id
/// shares the ephemeral owner field with the TTL).
const MAX_EXTENDED_SERVER_ID: i64 = 254;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub tick_time_ms: u64,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: u16,
    pub client_port_address: IpAddr,
    /// Connections per client IP; 0 means unlimited.
    pub max_client_cnxns: usize,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub server_id: i64,
    pub jute_max_buffer: usize,
    pub extended_types_enabled: bool,
    pub skip_acl: bool,
    /// `readonlymode.enabled` (a `-D` property, as in ZooKeeper): an
    /// ensemble member cut off from the quorum serves reads to clients that
    /// allow read-only servers.
    pub read_only_mode: bool,
    /// `zookeeper.enforceQuota`: hard quota limits refuse writes.
    pub enforce_quota: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `super:<digest>`.
    pub super_digest: Option<String>,
    pub four_letter_whitelist: FourLetterWhitelist,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: usize,
    pub reconfig_enabled: bool,
    /// Outstanding requests per connection before we stop reading from it.
    pub max_outstanding_per_connection: usize,
    /// `zookeeper.globalOutstandingLimit`: requests in the pipeline, all
    /// connections together.
    pub global_outstanding_limit: usize,
    /// Watch events and replies queued for one connection before it is
    /// considered stuck and closed.
    pub max_queued_per_connection: usize,
    /// `zookeeper.snapCount`: transactions between snapshots.
    pub snap_count: u64,
    /// `autopurge.snapRetainCount`: snapshots kept (at least 3).
    pub snap_retain_count: usize,
    /// `zookeeper.preAllocSize` in bytes: log preallocation step.
    pub prealloc_bytes: u64,
    /// `fsync.warningthresholdms`.
    pub fsync_warning_ms: u64,
    /// Every property in effect (from zoo.cfg and -D), for `envi`/`conf`.
    pub properties: BTreeMap<String, String>,
    /// The zoo.cfg keys as given, for `conf`.
    pub config_file: Option<PathBuf>,
    /// `server.N` lines (from zoo.cfg or `dynamicConfigFile`), by id.
    pub servers: Vec<QuorumServer>,
    /// `standaloneEnabled` (default true): with false, even one server line
    /// means replicated mode.
    pub standalone_enabled: bool,
    /// `initLimit`, `syncLimit` in ticks (0: not set). Replicated mode only.
    pub init_limit: u32,
    pub sync_limit: u32,
    /// `dynamicConfigFile`, when the server lines live there.
    pub dynamic_config_file: Option<PathBuf>,
    /// `zookeeper.datadir.autocreate` (default true): create missing data
    /// directories at start.
    pub datadir_autocreate: bool,
    /// `zookeeper.request_throttler.shutdownTimeout` (ms, default 10000): how
    /// long a graceful stop waits for in-flight writes.
    pub shutdown_timeout_ms: u64,
    /// `zookeeper.maxCnxns`: connections to the client port, all clients
    /// together (0: unlimited). Not enforced yet (see the notice).
    pub max_cnxns: usize,
    /// `clientPortListenBacklog` (None: the system default). Not applied yet.
    pub client_port_listen_backlog: Option<u32>,
    /// `zookeeper.clientTcpKeepAlive`. Not applied yet.
    pub client_tcp_keep_alive: bool,
    /// What start-up should log about this configuration: keys that are
    /// ignored (and why), unknown keys, values ZooKeeper would read loosely.
    pub notices: Vec<Notice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    All,
    Only(BTreeSet<String>),
}

impl FourLetterWhitelist {
    pub fn allows(&self, cmd: &str) -> bool {
        // ZooKeeper always allows srvr: zkServer.sh status and peers use it.
        if cmd == "srvr" {
            return true;
        }
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(set) => set.contains(cmd),
        }
    }
}

/// One `server.N` line: `host:quorumPort:electionPort[:role]` (several
/// addresses separated by `|`), then optionally `;[clientHost:]clientPort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    pub id: i64,
    /// (host, quorum port, election port), one per address.
    pub addresses: Vec<(String, u16, u16)>,
    pub role: PeerRole,
    /// The client address given after `;` (host `0.0.0.0` when only a port).
    pub client: Option<(String, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Participant,
    Observer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoticeLevel {
    Info,
    Warn,
}

/// A one-line message about the configuration, logged at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub level: NoticeLevel,
    pub message: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::from_sources(None, &[], &[]).expect("defaults are valid")
    }
}

// ---------------------------------------------------------------------------
// Java properties syntax

fn is_java_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Java's escapes: `\t \n \r \f`, `\uXXXX`, and `\c` for any other `c`.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("malformed \\uxxxx escape: \\u{hex}"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

/// Reads a Java properties file as `java.util.Properties.load` does: `#` and
/// `!` comments, `key=value`, `key: value` or `key value`, escapes, and a
/// backslash at the end of a line continuing it. Keys and values are trimmed
/// (ZooKeeper trims them). A key alone has the value "". Later duplicates
/// are kept in order; the last one wins when they are applied.
pub fn parse_properties(text: &str, path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let first = raw.trim_start_matches(is_java_blank);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes.
        let mut logical = first.to_owned();
        while logical.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1 {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches(is_java_blank)),
                None => break,
            }
        }
        // The key ends at the first unescaped '=', ':' or blank.
        let mut key_end = logical.len();
        let mut escaped = false;
        for (at, c) in logical.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '=' || c == ':' || is_java_blank(c) {
                key_end = at;
                break;
            }
        }
        let mut rest = logical[key_end..].trim_start_matches(is_java_blank);
        if let Some(r) = rest.strip_prefix(['=', ':']) {
            rest = r.trim_start_matches(is_java_blank);
        }
        let syntax = |_| ConfigError::Syntax { path: path.into(), line: i + 1, text: raw.into() };
        let key = unescape(&logical[..key_end]).map_err(syntax)?;
        let value = unescape(rest).map_err(syntax)?;
        out.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// What every key and property means to us

/// How a value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// Java `int`.
    Int,
    /// Java `long`.
    Long,
    /// 0..=65535.
    Port,
    /// `true` or `false` (any case), else an error: QuorumPeerConfig's
    /// strict parsing.
    Bool,
    /// Java's `Boolean.parseBoolean`: anything but `true` is false (warned).
    JavaBool,
    /// Compared with `yes`/`no` by ZooKeeper (warned otherwise).
    YesNo,
    Double,
    /// A hexadecimal number (`version`).
    Hex,
    /// A file or directory path (not empty).
    Path,
    Text,
}

/// What a key does in Ferrokeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Read into [`ServerConfig`] (or by the binary: logging, shutdown).
    Used,
    /// Read by the binary only as a `-D` property (logging is set up before
    /// zoo.cfg is read); from zoo.cfg it has no effect, with a notice.
    DefineOnly,
    /// No effect in Ferrokeeper; a notice says why.
    Ignored(&'static str),
    /// No effect, and none is needed while the value is this one (what
    /// Ferrokeeper always does); another value gets the notice.
    IgnoredUnless(&'static str, &'static str),
    /// A boolean Ferrokeeper cannot honour when true, and serving without it
    /// would be less safe than the operator expects: start-up stops.
    RefusedIfTrue(&'static str),
}

struct Known {
    name: &'static str,
    ty: Ty,
    effect: Effect,
}

const fn k(name: &'static str, ty: Ty, effect: Effect) -> Known {
    Known { name, ty, effect }
}

const QUORUM: &str = "ZooKeeper's Zab and election tuning has no meaning here: an ensemble runs Raft, with timeouts derived from tickTime (see ferrokeeper.heartbeatMs, ferrokeeper.electionTimeoutMs)";
const TLS: &str = "TLS is not supported yet";
const SASL: &str = "SASL/Kerberos authentication is not supported yet";
const JVM: &str = "there is no JVM";
const NETWORK: &str = "Ferrokeeper has its own network layer (no NIO/Netty factories or thread pools)";
const PIPELINE: &str = "Ferrokeeper's request pipeline has no worker pools to size";
const CACHE: &str = "there is no serialized-response cache to size";
const WATCH: &str = "Ferrokeeper has a single watch manager with nothing to tune";
const THROTTLE: &str =
    "connection and request throttling are not implemented (per-connection and global outstanding limits apply)";
const GROUP_COMMIT: &str = "the log thread fsyncs every batch that is ready at once (adaptive group commit)";
const ADMIN_TLS: &str = "the AdminServer speaks plain HTTP only (TLS is not supported yet)";
const METRICS: &str = "only the Prometheus endpoint's host and port can be configured";
const AUDIT: &str = "audit logging is not implemented";
const LOG_ROTATION: &str = "log files are not rotated by Ferrokeeper; use logrotate with copytruncate";

use Effect::{DefineOnly, Ignored, IgnoredUnless, RefusedIfTrue, Used};
use Ty::{Bool, Double, Hex, Int, JavaBool, Long, Port, Text, YesNo};

/// The keys ZooKeeper's QuorumPeerConfig reads itself from zoo.cfg (every
/// other key becomes the system property `zookeeper.<key>`).
const CONFIG_KEYS: &[Known] = &[
    k("dataDir", Ty::Path, Used),
    k("dataLogDir", Ty::Path, Used),
    k(
        "localSessionsEnabled",
        Bool,
        IgnoredUnless("false", "local sessions exist in replicated mode only; a standalone server's are all global"),
    ),
    k(
        "localSessionsUpgradingEnabled",
        Bool,
        IgnoredUnless("false", "local sessions exist in replicated mode only; a standalone server's are all global"),
    ),
    k("clientPort", Port, Used),
    k("clientPortAddress", Text, Used),
    k("secureClientPort", Port, Ignored(TLS)),
    k("secureClientPortAddress", Text, Ignored(TLS)),
    k("observerMasterPort", Port, Ignored(QUORUM)),
    k(
        "clientPortListenBacklog",
        Int,
        Ignored("the client port's listen backlog is fixed (1024) for now"),
    ),
    k("tickTime", Int, Used),
    k("maxClientCnxns", Int, Used),
    k("minSessionTimeout", Int, Used),
    k("maxSessionTimeout", Int, Used),
    k("initLimit", Int, Ignored(QUORUM)),
    k("syncLimit", Int, Ignored(QUORUM)),
    k("connectToLearnerMasterLimit", Int, Ignored(QUORUM)),
    k("electionAlg", Int, Ignored(QUORUM)),
    k("quorumListenOnAllIPs", Bool, IgnoredUnless("false", QUORUM)),
    k("peerType", Text, IgnoredUnless("participant", QUORUM)),
    k("syncEnabled", Bool, IgnoredUnless("true", QUORUM)),
    k("dynamicConfigFile", Ty::Path, Used),
    k("autopurge.snapRetainCount", Int, Used),
    k(
        "autopurge.purgeInterval",
        Int,
        Ignored(
            "Ferrokeeper purges after every snapshot, keeping autopurge.snapRetainCount snapshots and the logs they need",
        ),
    ),
    k("standaloneEnabled", Bool, Used),
    k("reconfigEnabled", Bool, Used),
    k("sslQuorum", Bool, IgnoredUnless("false", TLS)),
    k("portUnification", Bool, IgnoredUnless("false", TLS)),
    k("sslQuorumReloadCertFiles", Bool, IgnoredUnless("false", TLS)),
    k("quorum.auth.enableSasl", Bool, IgnoredUnless("false", SASL)),
    k("quorum.auth.serverRequireSasl", Bool, IgnoredUnless("false", SASL)),
    k("quorum.auth.learnerRequireSasl", Bool, IgnoredUnless("false", SASL)),
    k("quorum.auth.learner.saslLoginContext", Text, Ignored(SASL)),
    k("quorum.auth.server.saslLoginContext", Text, Ignored(SASL)),
    k("quorum.auth.kerberos.servicePrincipal", Text, Ignored(SASL)),
    k("quorum.cnxn.threads.size", Int, Ignored(QUORUM)),
    k("jvm.pause.info-threshold.ms", Long, Ignored(JVM)),
    k("jvm.pause.warn-threshold.ms", Long, Ignored(JVM)),
    k("jvm.pause.sleep.time.ms", Long, Ignored(JVM)),
    k("jvm.pause.monitor", Bool, IgnoredUnless("false", JVM)),
    // Read by the AdminServer / metrics endpoint (src/admin): the Prometheus
    // provider class turns on /metrics.
    k("metricsProvider.className", Text, Used),
    k("metricsProvider.httpHost", Text, Used),
    k("metricsProvider.httpPort", Port, Used),
    k("metricsProvider.exportJvmInfo", Bool, IgnoredUnless("false", JVM)),
    k("metricsProvider.numWorkerThreads", Int, Ignored(METRICS)),
    k("metricsProvider.maxQueueSize", Int, Ignored(METRICS)),
    k("metricsProvider.workerShutdownTimeoutMs", Long, Ignored(METRICS)),
    k("multiAddress.enabled", Bool, IgnoredUnless("false", QUORUM)),
    k("multiAddress.reachabilityCheckTimeoutMs", Int, Ignored(QUORUM)),
    k("multiAddress.reachabilityCheckEnabled", Bool, Ignored(QUORUM)),
    k("oraclePath", Ty::Path, Ignored(QUORUM)),
    // Read from the server list (dynamic configuration), not by parseProperties.
    k("version", Hex, Ignored(QUORUM)),
];

/// ZooKeeper system properties (full names: a zoo.cfg key `snapCount`
/// becomes `zookeeper.snapCount`). Where ZooKeeper documents a zoo.cfg name
/// that differs from the property it reads, both are listed.
const PROPERTIES: &[Known] = &[
    // Used.
    k("zookeeper.globalOutstandingLimit", Int, Used),
    k("zookeeper.preAllocSize", Long, Used),
    k("zookeeper.snapCount", Int, Used),
    k("zookeeper.fsync.warningthresholdms", Long, Used),
    k("fsync.warningthresholdms", Long, Used),
    k("zookeeper.extendedTypesEnabled", JavaBool, Used),
    k("zookeeper.enforceQuota", JavaBool, Used),
    k("zookeeper.skipACL", YesNo, Used),
    k("zookeeper.DigestAuthenticationProvider.superDigest", Text, Used),
    k("zookeeper.DigestAuthenticationProvider.digestAlg", Text, Used),
    k("zookeeper.4lw.commands.whitelist", Text, Used),
    k("jute.maxbuffer", Int, Used),
    k("znode.container.checkIntervalMs", Int, Used),
    k("znode.container.maxPerMinute", Int, Used),
    k("zookeeper.datadir.autocreate", JavaBool, Used),
    k("zookeeper.request_throttler.shutdownTimeout", Long, Used),
    // Logging (read by the binary before zoo.cfg).
    k("zookeeper.root.logger", Text, DefineOnly),
    k("zookeeper.log.dir", Text, DefineOnly),
    k("zookeeper.log.file", Text, DefineOnly),
    k("zookeeper.log.threshold", Text, DefineOnly),
    k("zookeeper.console.threshold", Text, DefineOnly),
    k("zookeeper.log.maxfilesize", Text, Ignored(LOG_ROTATION)),
    k("zookeeper.log.maxbackupindex", Int, Ignored(LOG_ROTATION)),
    k("zookeeper.tracelog.dir", Text, Ignored("there is no separate trace log; use zookeeper.root.logger=TRACE")),
    k("zookeeper.tracelog.file", Text, Ignored("there is no separate trace log; use zookeeper.root.logger=TRACE")),
    k("zookeeper.auditlog.file", Text, Ignored(AUDIT)),
    k("zookeeper.auditlog.threshold", Text, Ignored(AUDIT)),
    k("audit.logger", Text, Ignored(AUDIT)),
    // Connections.
    k(
        "zookeeper.maxCnxns",
        Int,
        IgnoredUnless("0", "there is no server-wide connection limit yet (maxClientCnxns, per client IP, applies)"),
    ),
    k("zookeeper.clientTcpKeepAlive", JavaBool, IgnoredUnless("false", "client sockets do not use TCP keepalive yet")),
    k("zookeeper.serverCnxnFactory", Text, Ignored(NETWORK)),
    k("zookeeper.nio.numSelectorThreads", Int, Ignored(NETWORK)),
    k("zookeeper.nio.numWorkerThreads", Int, Ignored(NETWORK)),
    k("zookeeper.nio.directBufferBytes", Int, Ignored(NETWORK)),
    k("zookeeper.nio.shutdownTimeout", Long, Ignored(NETWORK)),
    k("zookeeper.nio.sessionlessCnxnTimeout", Int, Ignored(NETWORK)),
    k("zookeeper.netty.advancedFlowControl.enabled", JavaBool, Ignored(NETWORK)),
    k("zookeeper.advancedFlowControlEnabled", JavaBool, Ignored(NETWORK)),
    k("zookeeper.netty.server.outstandingHandshake.limit", Int, Ignored(TLS)),
    k("zookeeper.outstandingHandshake.limit", Int, Ignored(TLS)),
    k("zookeeper.netty.server.earlyDropSecureConnectionHandshakes", JavaBool, Ignored(TLS)),
    k("zookeeper.client.portUnification", JavaBool, IgnoredUnless("false", TLS)),
    k("zookeeper.client.certReload", JavaBool, Ignored(TLS)),
    k("zookeeper.X509AuthenticationProvider.superUser", Text, Ignored(TLS)),
    k("zookeeper.ssl.authProvider", Text, Ignored(TLS)),
    k("zookeeper.sslQuorum", JavaBool, IgnoredUnless("false", TLS)),
    k(
        "zookeeper.fips-mode",
        JavaBool,
        Ignored("FIPS mode concerns Java's TLS and SASL, which Ferrokeeper does not use"),
    ),
    // Throttling.
    k("zookeeper.connection_throttle_tokens", Int, IgnoredUnless("0", THROTTLE)),
    k("zookeeper.connectionMaxTokens", Int, IgnoredUnless("0", THROTTLE)),
    k("zookeeper.connection_throttle_fill_time", Int, Ignored(THROTTLE)),
    k("zookeeper.connectionTokenFillTime", Int, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_fill_count", Int, Ignored(THROTTLE)),
    k("zookeeper.connectionTokenFillCount", Int, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_freeze_time", Int, Ignored(THROTTLE)),
    k("zookeeper.connectionFreezeTime", Int, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_drop_increase", Double, Ignored(THROTTLE)),
    k("zookeeper.connectionDropIncrease", Double, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_drop_decrease", Double, Ignored(THROTTLE)),
    k("zookeeper.connectionDropDecrease", Double, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_decrease_ratio", Double, Ignored(THROTTLE)),
    k("zookeeper.connectionDecreaseRatio", Double, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_weight_enabled", JavaBool, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_global_session_weight", Int, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_local_session_weight", Int, Ignored(THROTTLE)),
    k("zookeeper.connection_throttle_renew_session_weight", Int, Ignored(THROTTLE)),
    k("zookeeper.request_throttle_max_requests", Int, IgnoredUnless("0", THROTTLE)),
    k("zookeeper.requestThrottleLimit", Int, IgnoredUnless("0", THROTTLE)),
    k("zookeeper.request_throttle_stall_time", Int, Ignored(THROTTLE)),
    k("zookeeper.requestThrottleStallTime", Int, Ignored(THROTTLE)),
    k("zookeeper.request_throttle_drop_stale", JavaBool, Ignored(THROTTLE)),
    k("request_throttle_drop_stale", JavaBool, Ignored(THROTTLE)),
    k("zookeeper.requestThrottleDropStale", JavaBool, Ignored(THROTTLE)),
    k("zookeeper.request_stale_latency_check", JavaBool, Ignored(THROTTLE)),
    k("zookeeper.requestStaleLatencyCheck", JavaBool, Ignored(THROTTLE)),
    k("zookeeper.request_stale_connection_check", JavaBool, Ignored(THROTTLE)),
    k("zookeeper.requestStaleConnectionCheck", JavaBool, Ignored(THROTTLE)),
    k("zookeeper.throttled_op_wait_time", Int, IgnoredUnless("0", THROTTLE)),
    k("zookeeper.throttledOpWaitTime", Int, IgnoredUnless("0", THROTTLE)),
    k("zookeeper.largeRequestMaxBytes", Int, Ignored("requests are bounded by jute.maxbuffer only")),
    k("zookeeper.largeRequestThreshold", Int, IgnoredUnless("-1", "requests are bounded by jute.maxbuffer only")),
    // Pipeline, log and snapshots.
    k("zookeeper.commitProcessor.numWorkerThreads", Int, Ignored(PIPELINE)),
    k("zookeeper.commitProcessor.maxReadBatchSize", Int, Ignored(PIPELINE)),
    k("zookeeper.commitProcessor.maxCommitBatchSize", Int, Ignored(PIPELINE)),
    k("zookeeper.enableEagerACLCheck", JavaBool, Ignored("a standalone server checks ACLs before a write is logged")),
    k("zookeeper.flushDelay", Long, IgnoredUnless("0", GROUP_COMMIT)),
    k("zookeeper.maxWriteQueuePollTime", Long, Ignored(GROUP_COMMIT)),
    k("zookeeper.maxBatchSize", Int, Ignored(GROUP_COMMIT)),
    k(
        "zookeeper.forceSync",
        YesNo,
        IgnoredUnless("yes", "every acknowledged write is fsynced; this cannot be turned off"),
    ),
    k("zookeeper.snapSizeLimitInKb", Long, Ignored("snapshots are taken every zookeeper.snapCount transactions only")),
    k("zookeeper.txnLogSizeLimitInKb", Long, Ignored("log segments roll at 64 MiB")),
    k("zookeeper.snapshot.compression.method", Text, IgnoredUnless("", "snapshots are not compressed")),
    k(
        "zookeeper.snapshot.trust.empty",
        JavaBool,
        Ignored("without a snapshot, the log is replayed from an empty tree (as with true)"),
    ),
    k("zookeeper.serializeLastProcessedZxid.enabled", JavaBool, Ignored("snapshots always record their zxid")),
    k(
        "zookeeper.digest.enabled",
        JavaBool,
        Ignored("tree digests are not computed; logs and snapshots are CRC-checked"),
    ),
    k("zookeeper.maxResponseCacheSize", Int, Ignored(CACHE)),
    k("zookeeper.maxGetChildrenResponseCacheSize", Int, Ignored(CACHE)),
    k("zookeeper.jute.maxbuffer.extrasize", Int, Ignored("logged transactions are bounded by jute.maxbuffer only")),
    k("zookeeper.emulate353TTLNodes", JavaBool, IgnoredUnless("false", "TTL nodes use the 3.5.4+ encoding only")),
    k("zookeeper.watchManagerName", Text, Ignored(WATCH)),
    k("zookeeper.watcherCleanThreadsNum", Int, Ignored(WATCH)),
    k("zookeeper.watcherCleanThreshold", Int, Ignored(WATCH)),
    k("zookeeper.watcherCleanIntervalInSeconds", Int, Ignored(WATCH)),
    k("zookeeper.maxInProcessingDeadWatchers", Int, Ignored(WATCH)),
    k("zookeeper.bitHashCacheSize", Int, Ignored(WATCH)),
    k(
        "znode.container.maxNeverUsedIntervalMs",
        Long,
        IgnoredUnless("0", "containers that never had children are kept, as with 0"),
    ),
    k("readonlymode.enabled", JavaBool, Used),
    k("zookeeper.db.autocreate", JavaBool, Ignored(QUORUM)),
    // Authentication.
    k(
        "zookeeper.DigestAuthenticationProvider.enabled",
        JavaBool,
        IgnoredUnless("true", "the digest authentication scheme is always enabled"),
    ),
    k(
        "zookeeper.IPAuthenticationProvider.usexforwardedfor",
        JavaBool,
        Ignored("the AdminServer does not authenticate by IP address"),
    ),
    k("zookeeper.ensembleAuthName", Text, Ignored("the ensemble authentication scheme is not supported yet")),
    k(
        "zookeeper.sessionRequireClientSASLAuth",
        JavaBool,
        RefusedIfTrue("client authentication cannot be enforced yet (SASL is not supported)"),
    ),
    k("zookeeper.enforce.auth.enabled", JavaBool, RefusedIfTrue("client authentication cannot be enforced yet")),
    k("zookeeper.enforce.auth.schemes", Text, Ignored("client authentication cannot be enforced yet")),
    k("zookeeper.allowSaslFailedClients", JavaBool, Ignored(SASL)),
    k("zookeeper.superUser", Text, Ignored(SASL)),
    k("java.security.auth.login.config", Text, Ignored(SASL)),
    // Replication.
    k("zookeeper.commitLogCount", Int, Ignored(QUORUM)),
    k("zookeeper.observer.syncEnabled", JavaBool, Ignored(QUORUM)),
    k("zookeeper.fastleader.minNotificationInterval", Int, Ignored(QUORUM)),
    k("zookeeper.fastleader.maxNotificationInterval", Int, Ignored(QUORUM)),
    k("zookeeper.leader.maxConcurrentSnapSyncs", Int, Ignored(QUORUM)),
    k("zookeeper.maxConcurrentSnapSyncs", Int, Ignored(QUORUM)),
    k("zookeeper.leader.maxConcurrentDiffSyncs", Int, Ignored(QUORUM)),
    k("zookeeper.maxConcurrentDiffSyncs", Int, Ignored(QUORUM)),
    k("zookeeper.leader.maxTimeToWaitForEpoch", Int, Ignored(QUORUM)),
    k("zookeeper.maxTimeToWaitForEpoch", Int, Ignored(QUORUM)),
    k("zookeeper.connectToLearnerMasterLimit", Int, Ignored(QUORUM)),
    k("zookeeper.leaderServes", YesNo, Ignored(QUORUM)),
    k("zookeeper.cnxTimeout", Int, Ignored(QUORUM)),
    k("zookeeper.quorumCnxnTimeoutMs", Long, Ignored(QUORUM)),
    k("zookeeper.tcpKeepAlive", JavaBool, Ignored(QUORUM)),
    k("zookeeper.electionPortBindRetry", Int, Ignored(QUORUM)),
    k("zookeeper.observer.reconnectDelayMs", Long, Ignored(QUORUM)),
    k("zookeeper.observer.election.DelayMs", Long, Ignored(QUORUM)),
    k("zookeeper.learner.closeSocketAsync", JavaBool, Ignored(QUORUM)),
    k("learner.closeSocketAsync", JavaBool, Ignored(QUORUM)),
    k("zookeeper.leader.closeSocketAsync", JavaBool, Ignored(QUORUM)),
    k("leader.closeSocketAsync", JavaBool, Ignored(QUORUM)),
    k("zookeeper.learner.asyncSending", JavaBool, Ignored(QUORUM)),
    k("learner.asyncSending", JavaBool, Ignored(QUORUM)),
    k("zookeeper.forward_learner_requests_to_commit_processor_disabled", JavaBool, Ignored(QUORUM)),
    k("zookeeper.follower.skipLearnerRequestToNextProcessor", JavaBool, Ignored(QUORUM)),
    k("zookeeper.messageTracker.BufferSize", Int, Ignored(QUORUM)),
    k("zookeeper.messageTracker.Enabled", JavaBool, Ignored(QUORUM)),
    // AdminServer (src/admin), audit, JMX.
    k("zookeeper.admin.enableServer", JavaBool, Used),
    k("zookeeper.admin.serverAddress", Text, Used),
    k("zookeeper.admin.serverPort", Port, Used),
    k("zookeeper.admin.commandURL", Text, Used),
    k("zookeeper.admin.idleTimeout", Int, Used),
    k("zookeeper.admin.forceHttps", JavaBool, IgnoredUnless("false", ADMIN_TLS)),
    k("zookeeper.admin.portUnification", JavaBool, IgnoredUnless("false", ADMIN_TLS)),
    k("zookeeper.admin.needClientAuth", JavaBool, IgnoredUnless("false", ADMIN_TLS)),
    k(
        "zookeeper.admin.snapshot.enabled",
        JavaBool,
        IgnoredUnless("false", "the AdminServer has no snapshot command yet"),
    ),
    k(
        "zookeeper.admin.restore.enabled",
        JavaBool,
        IgnoredUnless("false", "the AdminServer has no restore command yet"),
    ),
    k("zookeeper.admin.rateLimiterIntervalInMS", Long, Ignored("AdminServer commands are not rate-limited")),
    k("zookeeper.audit.enable", JavaBool, IgnoredUnless("false", AUDIT)),
    k("zookeeper.audit.impl.class", Text, Ignored(AUDIT)),
    k("zookeeper.jmx.log4j.disable", JavaBool, Ignored(JVM)),
];

/// Families of properties, by prefix, that share one meaning.
const PROPERTY_PREFIXES: &[(&str, Effect)] = &[
    ("zookeeper.ssl.", Ignored(TLS)),
    ("zookeeper.authProvider", Ignored("authentication providers are Java classes and cannot be loaded")),
    ("zookeeper.superUser.", Ignored(SASL)),
    ("zookeeper.kerberos.", Ignored(SASL)),
    ("zookeeper.sasl.", Ignored(SASL)),
    ("zookeeper.multiAddress.", Ignored(QUORUM)),
    ("zookeeper.admin.", Ignored("not an AdminServer setting Ferrokeeper knows")),
    ("zookeeper.jmx.", Ignored(JVM)),
    ("java.", Ignored(JVM)),
    ("javax.", Ignored(JVM)),
    ("jdk.", Ignored(JVM)),
    ("sun.", Ignored(JVM)),
    ("com.sun.", Ignored(JVM)),
    ("networkaddress.", Ignored(JVM)),
    ("file.encoding", Ignored(JVM)),
    ("io.netty.", Ignored(NETWORK)),
    ("log4j", Ignored("logging is configured with zookeeper.root.logger, ZOO_LOG4J_PROP, ZOO_LOG_DIR or RUST_LOG")),
    ("logback.", Ignored("logging is configured with zookeeper.root.logger, ZOO_LOG4J_PROP, ZOO_LOG_DIR or RUST_LOG")),
];

/// The four-letter words ZooKeeper 3.9 knows (its whitelist ignores others).
const ZOOKEEPER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst", "srvr", "stat",
    "stmk", "wchc", "wchp", "wchs",
];

fn config_key(key: &str) -> Option<&'static Known> {
    CONFIG_KEYS.iter().find(|c| c.name == key)
}

/// Keys that QuorumPeerConfig reads as the server list (or rejects when a
/// dynamic configuration file holds it).
fn is_server_list_key(key: &str) -> bool {
    key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight")
}

fn is_config_key(key: &str) -> bool {
    config_key(key).is_some() || is_server_list_key(key) || key.starts_with("metricsProvider.")
}

fn property(name: &str) -> Option<(Ty, Effect)> {
    if let Some(p) = PROPERTIES.iter().find(|p| p.name == name) {
        return Some((p.ty, p.effect));
    }
    PROPERTY_PREFIXES.iter().find(|(prefix, _)| name.starts_with(prefix)).map(|(_, e)| (Text, *e))
}

/// Values not to print (passwords, the super digest).
fn shown(key: &str, value: &str) -> String {
    let lower = key.to_ascii_lowercase();
    if lower.contains("password") || lower.contains("superdigest") || lower.contains("secret") {
        "<hidden>".into()
    } else {
        value.to_owned()
    }
}

/// Levenshtein distance, case-insensitive, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known zoo.cfg key nearest to a misspelt one.
fn suggestion(key: &str) -> Option<String> {
    let candidates = CONFIG_KEYS
        .iter()
        .map(|c| c.name)
        .chain(PROPERTIES.iter().filter_map(|p| p.name.strip_prefix("zookeeper.")))
        .filter(|c| *c != key);
    let (best, d) = candidates.map(|c| (c, distance(c, key))).min_by_key(|(_, d)| *d)?;
    (d <= 2.max(key.len() / 6)).then(|| best.to_owned())
}

// ---------------------------------------------------------------------------
// Value checks

fn parse_int(key: &str, value: &str) -> Result<i32, ConfigError> {
    let v = value.trim();
    if v.parse::<i128>().is_ok() {
        return v.parse::<i32>().map_err(|_| invalid(key, value, "out of range for a 32-bit integer"));
    }
    Err(invalid(key, value, "not an integer"))
}

fn parse_long(key: &str, value: &str) -> Result<i64, ConfigError> {
    let v = value.trim();
    if v.parse::<i128>().is_ok() {
        return v.parse::<i64>().map_err(|_| invalid(key, value, "out of range for a 64-bit integer"));
    }
    Err(invalid(key, value, "not an integer"))
}

fn parse_port(key: &str, value: &str) -> Result<u16, ConfigError> {
    value.trim().parse::<u16>().map_err(|_| invalid(key, value, "not a port number (0-65535)"))
}

/// QuorumPeerConfig's strict boolean.
fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "must be true or false")),
    }
}

/// Java's `Boolean.parseBoolean`.
fn java_bool(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// Checks a value against its type. Returns a warning for values ZooKeeper
/// reads loosely.
fn check_type(key: &str, value: &str, ty: Ty) -> Result<Option<String>, ConfigError> {
    let v = value.trim();
    match ty {
        Int => parse_int(key, value).map(|_| None),
        Long => parse_long(key, value).map(|_| None),
        Port => parse_port(key, value).map(|_| None),
        Bool => parse_bool(key, value).map(|_| None),
        Double => v.parse::<f64>().map(|_| None).map_err(|_| invalid(key, value, "not a number")),
        Hex => i64::from_str_radix(v, 16).map(|_| None).map_err(|_| invalid(key, value, "not a hexadecimal number")),
        Ty::Path if v.is_empty() => Err(invalid(key, value, "empty path")),
        JavaBool if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => {
            Ok(Some(format!("{key}={v} is neither true nor false: it means false, as in ZooKeeper")))
        }
        YesNo if v != "yes" && v != "no" => Ok(Some(format!(
            "{key}={v} is neither yes nor no: ZooKeeper only tests for the exact word, so it is not \"yes\""
        ))),
        _ => Ok(None),
    }
}

/// Resolves a host name or address as Java's `InetAddress.getByName`.
fn resolve_host(key: &str, host: &str) -> Result<IpAddr, ConfigError> {
    let h = host.trim();
    let bare = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    if bare.is_empty() {
        return Err(invalid(key, host, "empty address"));
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    match (bare, 0u16).to_socket_addrs() {
        Ok(mut addrs) => {
            addrs.next().map(|a| a.ip()).ok_or_else(|| invalid(key, host, "the host name resolves to no address"))
        }
        Err(e) => Err(invalid(key, host, format!("not an IP address, and the host name does not resolve ({e})"))),
    }
}

/// `host:port:...` with `[v6]` hosts, as ZooKeeper's ConfigUtils splits it.
fn split_host_and_ports(s: &str) -> Result<Vec<String>, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| format!("{s} starts with '[' but has no ']'"))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let mut parts = vec![host.to_owned()];
        if !after.is_empty() {
            let ports = after.strip_prefix(':').ok_or_else(|| format!("expected ':' after ']' in {s}"))?;
            parts.extend(ports.split(':').map(str::to_owned));
        }
        return Ok(parts);
    }
    Ok(s.split(':').map(str::to_owned).collect())
}

const SERVER_FORMAT: &str = "expected host:quorumPort:electionPort[:participant|observer] (several joined by '|' \
                             with multiAddress.enabled), optionally followed by ;[clientHost:]clientPort";

fn parse_server_line(key: &str, value: &str, multi_address: bool) -> Result<QuorumServer, ConfigError> {
    let id_text = &key["server.".len()..];
    let id: i64 =
        id_text.parse().map_err(|_| invalid(key, value, format!("the server id {id_text:?} is not a number")))?;
    let bad = |reason: String| invalid(key, value, reason);
    let parts: Vec<&str> = value.split(';').collect();
    if parts.len() > 2 {
        return Err(bad(SERVER_FORMAT.into()));
    }
    let mut client = None;
    if let Some(c) = parts.get(1) {
        let cp = split_host_and_ports(c.trim()).map_err(bad)?;
        let (host, port) = match cp.as_slice() {
            [port] => ("0.0.0.0".to_owned(), port),
            [host, port] => (host.clone(), port),
            _ => return Err(bad(SERVER_FORMAT.into())),
        };
        let port = parse_port(key, port).map_err(|_| bad(format!("client port {port:?} is not a port number")))?;
        client = Some((host, port));
    }
    let addresses: Vec<&str> = parts[0].split('|').collect();
    if addresses.len() > 1 && !multi_address {
        return Err(bad(format!("multiple addresses are given for server {id} but multiAddress.enabled is not true")));
    }
    let mut out = Vec::new();
    let mut role: Option<PeerRole> = None;
    for a in addresses {
        let p = split_host_and_ports(a.trim()).map_err(bad)?;
        if !(3..=4).contains(&p.len()) || p[0].is_empty() {
            return Err(bad(SERVER_FORMAT.into()));
        }
        let port = |s: &str, what: &str| {
            parse_port(key, s).map_err(|_| bad(format!("{what} port {s:?} is not a port number")))
        };
        let quorum = port(&p[1], "quorum")?;
        let election = port(&p[2], "election")?;
        if quorum == election {
            return Err(bad(format!("the quorum and election ports of server {id} must differ")));
        }
        if let Some(r) = p.get(3) {
            let this = match r.trim().to_ascii_lowercase().as_str() {
                "participant" => PeerRole::Participant,
                "observer" => PeerRole::Observer,
                other => return Err(bad(format!("unrecognised peer type {other:?} (participant or observer)"))),
            };
            if role.is_some_and(|r| r != this) {
                return Err(bad("all addresses of one server must have the same role".into()));
            }
            role = Some(this);
        }
        out.push((p[0].clone(), quorum, election));
    }
    Ok(QuorumServer { id, addresses: out, role: role.unwrap_or(PeerRole::Participant), client })
}

/// Checks a directory the server must write: it exists and is a writable
/// directory, or it can be created (when `autocreate`).
fn check_dir(key: &str, dir: &Path, autocreate: bool) -> Result<(), ConfigError> {
    let shown = dir.display().to_string();
    if dir.exists() {
        if !dir.is_dir() {
            return Err(invalid(key, &shown, "exists and is not a directory"));
        }
        if !writable(dir) {
            return Err(invalid(key, &shown, "the directory is not writable by this user"));
        }
        return Ok(());
    }
    if !autocreate {
        return Err(invalid(key, &shown, "the directory does not exist and zookeeper.datadir.autocreate is false"));
    }
    let mut ancestor = dir.parent();
    while let Some(a) = ancestor {
        let a = if a.as_os_str().is_empty() { Path::new(".") } else { a };
        if a.exists() {
            if !a.is_dir() {
                return Err(invalid(key, &shown, format!("cannot be created: {} is not a directory", a.display())));
            }
            if !writable(a) {
                return Err(invalid(key, &shown, format!("cannot be created: {} is not writable", a.display())));
            }
            return Ok(());
        }
        ancestor = a.parent();
    }
    Err(invalid(key, &shown, "cannot be created"))
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// What `load` found in dataDir/myid.
#[derive(Debug, Clone, Copy)]
enum MyId {
    /// `from_sources`: the file system is not consulted.
    NotRead,
    Missing,
    Found(i64),
}

fn read_myid(data_dir: &Path) -> Result<MyId, ConfigError> {
    let p = data_dir.join("myid");
    if !p.is_file() {
        return Ok(MyId::Missing);
    }
    let text = std::fs::read_to_string(&p).map_err(|source| ConfigError::Read { path: p.clone(), source })?;
    let first = text.lines().next().unwrap_or("").trim();
    first
        .parse::<i64>()
        .map(MyId::Found)
        .map_err(|_| invalid("myid", first, format!("{} must hold the server id (a number)", p.display())))
}

/// Where each property came from, for notices.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    ZooCfg,
    Define,
}

impl ServerConfig {
    /// Loads `zoo.cfg` (if any) and applies `-D` properties, then reads
    /// `dataDir/myid` and checks the data directories.
    pub fn load(config_file: Option<&Path>, defines: &[(String, String)]) -> Result<Self, ConfigError> {
        let entries = match config_file {
            Some(p) => {
                let bytes = std::fs::read(p).map_err(|source| ConfigError::Read { path: p.into(), source })?;
                parse_properties(&String::from_utf8_lossy(&bytes), p)?
            }
            None => Vec::new(),
        };
        let (mut cfg, pending) = Self::build(config_file, &entries, defines)?;
        let myid = match config_file {
            Some(_) => read_myid(&cfg.data_dir)?,
            None => MyId::NotRead,
        };
        cfg.finish(pending, myid)?;
        if config_file.is_some() {
            check_dir("dataDir", &cfg.data_dir, cfg.datadir_autocreate)?;
            if cfg.data_log_dir != cfg.data_dir {
                check_dir("dataLogDir", &cfg.data_log_dir, cfg.datadir_autocreate)?;
            }
        }
        Ok(cfg)
    }

    /// Builds a configuration from zoo.cfg entries and `-D` properties
    /// without touching the file system (no `myid`, no directory checks).
    pub fn from_sources(
        config_file: Option<&Path>,
        entries: &[(String, String)],
        defines: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let (mut cfg, pending) = Self::build(config_file, entries, defines)?;
        cfg.finish(pending, MyId::NotRead)?;
        Ok(cfg)
    }

    /// True when the configuration asks for a replicated ensemble (several
    /// voting servers, or `standaloneEnabled=false`), as ZooKeeper decides.
    pub fn is_distributed(&self) -> bool {
        let voters = self.servers.iter().filter(|s| s.role == PeerRole::Participant).count();
        !self.servers.is_empty() && (!self.standalone_enabled || voters > 1)
    }

    fn build(
        config_file: Option<&Path>,
        entries: &[(String, String)],
        defines: &[(String, String)],
    ) -> Result<(Self, Pending), ConfigError> {
        let mut notices: Vec<Notice> = Vec::new();
        let mut note = |level: NoticeLevel, message: String| notices.push(Notice { level, message });

        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        let mut props: BTreeMap<String, (String, Source)> = BTreeMap::new();
        for (k, v) in entries {
            let previous = if is_config_key(k) {
                keys.insert(k.clone(), v.clone())
            } else {
                props.insert(format!("zookeeper.{k}"), (v.clone(), Source::ZooCfg)).map(|(v, _)| v)
            };
            if let Some(old) = previous {
                note(
                    NoticeLevel::Warn,
                    format!(
                        "zoo.cfg sets {k} more than once ({} then {}): the last one wins",
                        shown(k, &old),
                        shown(k, v)
                    ),
                );
            }
        }
        for (k, v) in defines {
            props.insert(k.clone(), (v.clone(), Source::Define));
        }

        // Every key and property: check its value, say what it does.
        for (k, v) in &keys {
            if let Some(known) = config_key(k) {
                if let Some(w) = check_type(k, v, known.ty)? {
                    note(NoticeLevel::Warn, w);
                }
                effect_notice(&mut note, &format!("zoo.cfg key {k}"), k, v, known.effect)?;
            } else if k.starts_with("metricsProvider.") {
                note(NoticeLevel::Info, format!("ignoring zoo.cfg key {k}={}: {METRICS}", shown(k, v)));
            }
        }
        for (name, (v, source)) in &props {
            let label = match source {
                Source::ZooCfg => format!("zoo.cfg key {}", &name["zookeeper.".len()..]),
                Source::Define => format!("property -D{name}"),
            };
            match property(name) {
                Some((ty, effect)) => {
                    if let Some(w) = check_type(name, v, ty)? {
                        note(NoticeLevel::Warn, w);
                    }
                    let effect = match (effect, source) {
                        (DefineOnly, Source::ZooCfg) => Ignored(
                            "logging is set up before zoo.cfg is read; pass it as -D or use ZOO_LOG_DIR/ZOO_LOG4J_PROP",
                        ),
                        (e, _) => e,
                    };
                    effect_notice(&mut note, &label, name, v, effect)?;
                }
                None if *source == Source::ZooCfg && property(&name["zookeeper.".len()..]).is_some() => {
                    let bare = &name["zookeeper.".len()..];
                    note(
                        NoticeLevel::Warn,
                        format!(
                            "zoo.cfg key {bare}={} has no effect: ZooKeeper reads it only as the system property \
                             -D{bare} (in zoo.cfg it becomes {name})",
                            shown(name, v)
                        ),
                    );
                }
                None => {
                    let hint = match source {
                        Source::ZooCfg => suggestion(&name["zookeeper.".len()..]),
                        Source::Define => name.strip_prefix("zookeeper.").and_then(suggestion).map(|s| {
                            if config_key(&s).is_some() {
                                s
                            } else {
                                format!("zookeeper.{s}")
                            }
                        }),
                    };
                    let hint = hint.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
                    note(NoticeLevel::Warn, format!("unknown {label}={} is ignored{hint}", shown(name, v)));
                }
            }
        }

        let key = |k: &str| keys.get(k).map(|s| s.as_str());
        let prop = |k: &str| props.get(k).map(|(s, _)| s.as_str());

        // Timing and sessions.
        let tick_time_ms: u64 = match key("tickTime") {
            Some(v) => match parse_int("tickTime", v)? {
                n if n > 0 => n as u64,
                _ => return Err(invalid("tickTime", v, "must be positive")),
            },
            None => 3000,
        };
        let tick = tick_time_ms as i64;
        let timeout = |k: &str, factor: i64| -> Result<i32, ConfigError> {
            match key(k) {
                None => Ok((tick * factor).min(i32::MAX as i64) as i32),
                Some(v) => match parse_int(k, v)? {
                    -1 => Ok((tick * factor).min(i32::MAX as i64) as i32),
                    n if n >= 0 => Ok(n),
                    _ => Err(invalid(k, v, "must be a number of milliseconds, or -1 for the default")),
                },
            }
        };
        let min_session_timeout_ms = timeout("minSessionTimeout", 2)?;
        let max_session_timeout_ms = timeout("maxSessionTimeout", 20)?;
        if min_session_timeout_ms > max_session_timeout_ms {
            return Err(invalid(
                "minSessionTimeout",
                &min_session_timeout_ms.to_string(),
                format!("minSessionTimeout must not be larger than maxSessionTimeout ({max_session_timeout_ms})"),
            ));
        }

        // Directories.
        let data_dir = match key("dataDir") {
            Some(v) => PathBuf::from(v),
            None if config_file.is_some() => {
                return Err(invalid("dataDir", "", "dataDir is not set"));
            }
            None => std::env::temp_dir().join("ferrokeeper"),
        };
        let data_log_dir = key("dataLogDir").map(PathBuf::from).unwrap_or_else(|| data_dir.clone());
        for (k, dir) in [("dataDir", &data_dir), ("dataLogDir", &data_log_dir)] {
            if key(k).is_some() && dir.is_relative() && !dir.starts_with(".") {
                note(
                    NoticeLevel::Warn,
                    format!("{k}={} is a relative path: it depends on the working directory", dir.display()),
                );
            }
        }

        // Client port.
        let client_port: Option<u16> = key("clientPort").map(|v| parse_port("clientPort", v)).transpose()?;
        let client_port_address: IpAddr = match key("clientPortAddress") {
            Some(v) => {
                if client_port.is_none() {
                    return Err(invalid("clientPortAddress", v, "clientPortAddress is set but clientPort is not set"));
                }
                resolve_host("clientPortAddress", v)?
            }
            None if config_file.is_some() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        if let (Some(v), None) = (key("secureClientPortAddress"), key("secureClientPort")) {
            return Err(invalid(
                "secureClientPortAddress",
                v,
                "secureClientPortAddress is set but secureClientPort is not set",
            ));
        }
        let max_client_cnxns: usize = match key("maxClientCnxns") {
            // ZooKeeper: 0 or less is unlimited.
            Some(v) => parse_int("maxClientCnxns", v)?.max(0) as usize,
            None => 60,
        };
        let client_port_listen_backlog = match key("clientPortListenBacklog") {
            Some(v) => match parse_int("clientPortListenBacklog", v)? {
                -1 => None,
                n if n > 0 => Some(n as u32),
                _ => return Err(invalid("clientPortListenBacklog", v, "must be positive (or -1 for the default)")),
            },
            None => None,
        };

        // Features.
        let reconfig_enabled =
            key("reconfigEnabled").map(|v| parse_bool("reconfigEnabled", v)).transpose()?.unwrap_or(false);
        let standalone_enabled =
            key("standaloneEnabled").map(|v| parse_bool("standaloneEnabled", v)).transpose()?.unwrap_or(true);
        let jute_max_buffer = match prop("jute.maxbuffer") {
            Some(v) => match parse_int("jute.maxbuffer", v)? {
                n if n > 0 => n as usize,
                _ => return Err(invalid("jute.maxbuffer", v, "must be positive")),
            },
            None => DEFAULT_JUTE_MAXBUFFER,
        };
        let bool_prop = |name: &str, default: bool| prop(name).map_or(default, java_bool);
        let extended_types_enabled = bool_prop("zookeeper.extendedTypesEnabled", false);
        let enforce_quota = bool_prop("zookeeper.enforceQuota", false);
        let datadir_autocreate = bool_prop("zookeeper.datadir.autocreate", true);
        let client_tcp_keep_alive = bool_prop("zookeeper.clientTcpKeepAlive", false);
        let skip_acl = prop("zookeeper.skipACL").is_some_and(|v| v.trim() == "yes");
        let read_only_mode = bool_prop("readonlymode.enabled", false);
        if skip_acl {
            note(NoticeLevel::Warn, "zookeeper.skipACL=yes: ACLs are not checked; every client can do anything".into());
        }
        let super_digest = prop("zookeeper.DigestAuthenticationProvider.superDigest").map(|s| s.trim().to_owned());
        if let Some(alg) = prop("zookeeper.DigestAuthenticationProvider.digestAlg") {
            let a = alg.trim().to_ascii_uppercase();
            if a != "SHA1" && a != "SHA-1" {
                return Err(invalid(
                    "zookeeper.DigestAuthenticationProvider.digestAlg",
                    alg,
                    "only SHA1 digests are supported",
                ));
            }
        }
        let four_letter_whitelist = match prop("zookeeper.4lw.commands.whitelist") {
            None => FourLetterWhitelist::Only(["srvr".to_owned()].into()),
            Some(v) => {
                let words: BTreeSet<String> =
                    v.split(',').map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect();
                if words.contains("*") {
                    FourLetterWhitelist::All
                } else {
                    for w in &words {
                        let ours = <&[u8; 4]>::try_from(w.as_bytes())
                            .ok()
                            .and_then(crate::admin::as_four_letter_word)
                            .is_some();
                        if !ZOOKEEPER_WORDS.contains(&w.as_str()) {
                            note(
                                NoticeLevel::Warn,
                                format!("4lw.commands.whitelist: {w:?} is not a four-letter word; it is ignored"),
                            );
                        } else if !ours {
                            note(
                                NoticeLevel::Info,
                                format!("4lw.commands.whitelist: {w} is not implemented by Ferrokeeper yet"),
                            );
                        }
                    }
                    FourLetterWhitelist::Only(words)
                }
            }
        };
        let int_prop = |name: &str, default: i64| -> Result<i64, ConfigError> {
            match prop(name) {
                Some(v) => parse_int(name, v).map(i64::from),
                None => Ok(default),
            }
        };
        let long_prop = |name: &str, default: i64| -> Result<i64, ConfigError> {
            match prop(name) {
                Some(v) => parse_long(name, v),
                None => Ok(default),
            }
        };
        let container_check_interval_ms = int_prop("znode.container.checkIntervalMs", 60_000)?;
        if container_check_interval_ms <= 0 {
            return Err(invalid(
                "znode.container.checkIntervalMs",
                &container_check_interval_ms.to_string(),
                "must be positive",
            ));
        }
        let container_max_per_minute = int_prop("znode.container.maxPerMinute", 10_000)?.max(0) as usize;
        let global_outstanding_limit = int_prop("zookeeper.globalOutstandingLimit", 1000)?.max(1) as usize;
        let snap_count = match int_prop("zookeeper.snapCount", 100_000)? {
            n if n < 2 => {
                note(NoticeLevel::Warn, format!("zookeeper.snapCount={n} is too small: using 2, as ZooKeeper does"));
                2
            }
            n => n as u64,
        };
        let snap_retain_count = match key("autopurge.snapRetainCount") {
            Some(v) => match parse_int("autopurge.snapRetainCount", v)? {
                n if n < 3 => {
                    note(
                        NoticeLevel::Warn,
                        format!("autopurge.snapRetainCount={n} is below the minimum: keeping 3 snapshots"),
                    );
                    3
                }
                n => n as usize,
            },
            None => 3,
        };
        let prealloc_kib = long_prop("zookeeper.preAllocSize", 65_536)?;
        if prealloc_kib <= 0 {
            return Err(invalid("zookeeper.preAllocSize", &prealloc_kib.to_string(), "must be a positive size in KiB"));
        }
        let prealloc_bytes = (prealloc_kib as u64).max(4).saturating_mul(1024);
        let fsync_warning_ms = match prop("zookeeper.fsync.warningthresholdms")
            .map(|v| ("zookeeper.fsync.warningthresholdms", v))
            .or(prop("fsync.warningthresholdms").map(|v| ("fsync.warningthresholdms", v)))
        {
            Some((name, v)) => parse_long(name, v)?.max(0) as u64,
            None => 1000,
        };
        let shutdown_timeout_ms = long_prop("zookeeper.request_throttler.shutdownTimeout", 10_000)?.max(0) as u64;
        let max_cnxns = int_prop("zookeeper.maxCnxns", 0)?.max(0) as usize;

        // Replication keys: checked as ZooKeeper checks them.
        let limit = |k: &str| -> Result<u32, ConfigError> {
            match key(k) {
                Some(v) => match parse_int(k, v)? {
                    n if n >= 0 => Ok(n as u32),
                    _ => Err(invalid(k, v, "must not be negative")),
                },
                None => Ok(0),
            }
        };
        let init_limit = limit("initLimit")?;
        let sync_limit = limit("syncLimit")?;
        if let Some(v) = key("electionAlg") {
            if parse_int("electionAlg", v)? != 3 {
                return Err(invalid("electionAlg", v, "only 3 (fast leader election) is supported"));
            }
        }
        if let Some(v) = key("peerType") {
            if !matches!(v.to_ascii_lowercase().as_str(), "observer" | "participant") {
                return Err(invalid("peerType", v, "must be participant or observer"));
            }
        }
        let sasl = |k: &str| key(k).map(|v| parse_bool(k, v)).transpose().map(|b| b.unwrap_or(false));
        let (enable_sasl, server_sasl, learner_sasl) = (
            sasl("quorum.auth.enableSasl")?,
            sasl("quorum.auth.serverRequireSasl")?,
            sasl("quorum.auth.learnerRequireSasl")?,
        );
        if !enable_sasl && (server_sasl || learner_sasl) {
            let k = if server_sasl { "quorum.auth.serverRequireSasl" } else { "quorum.auth.learnerRequireSasl" };
            return Err(invalid(k, "true", "quorum.auth.enableSasl is not true"));
        }
        if server_sasl && !learner_sasl {
            return Err(invalid("quorum.auth.serverRequireSasl", "true", "quorum.auth.learnerRequireSasl is not true"));
        }

        // The server list: zoo.cfg, or the dynamic configuration file.
        let multi_address = key("multiAddress.enabled").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let dynamic_config_file = key("dynamicConfigFile").map(PathBuf::from);
        let list_entries: Vec<(String, String)> = match &dynamic_config_file {
            None => keys.iter().filter(|(k, _)| is_server_list_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(dynamic) => {
                if let Some((k, v)) = keys.iter().find(|(k, _)| is_server_list_key(k)) {
                    return Err(invalid(k, v, "must be in the dynamic configuration file (dynamicConfigFile is set)"));
                }
                let text =
                    std::fs::read(dynamic).map_err(|source| ConfigError::Read { path: dynamic.clone(), source })?;
                let dyn_entries = parse_properties(&String::from_utf8_lossy(&text), dynamic)?;
                for (k, v) in &dyn_entries {
                    if k == "version" {
                        return Err(invalid(
                            "version",
                            v,
                            format!("{} must not hold a version (it comes from the file name)", dynamic.display()),
                        ));
                    }
                    if !is_server_list_key(k) {
                        return Err(invalid(
                            k,
                            v,
                            format!("not a server, group or weight line, in {}", dynamic.display()),
                        ));
                    }
                }
                dyn_entries
            }
        };
        let mut servers: BTreeMap<i64, QuorumServer> = BTreeMap::new();
        let mut hierarchical = false;
        for (k, v) in &list_entries {
            if k.starts_with("server.") {
                let s = parse_server_line(k, v, multi_address)?;
                servers.insert(s.id, s);
            } else if let Some(id) = k.strip_prefix("group.") {
                hierarchical = true;
                parse_long(k, id).map_err(|_| invalid(k, v, "the group id is not a number"))?;
                for sid in v.split(':') {
                    parse_long(k, sid).map_err(|_| invalid(k, v, format!("server id {sid:?} is not a number")))?;
                }
            } else if let Some(id) = k.strip_prefix("weight.") {
                hierarchical = true;
                parse_long(k, id).map_err(|_| invalid(k, v, "the server id is not a number"))?;
                parse_long(k, v)?;
            } else {
                return Err(invalid(k, v, "expected group.N or weight.N"));
            }
        }
        if hierarchical {
            note(NoticeLevel::Info, format!("ignoring group/weight lines (hierarchical quorums): {QUORUM}"));
        }
        let servers: Vec<QuorumServer> = servers.into_values().collect();
        let voters = servers.iter().filter(|s| s.role == PeerRole::Participant).count();
        let observers = servers.len() - voters;
        if voters == 0 {
            if !standalone_enabled {
                return Err(invalid(
                    "standaloneEnabled",
                    "false",
                    "with standaloneEnabled=false the server list needs at least one participant",
                ));
            }
            if observers > 0 {
                return Err(invalid("server.N", "observer", "observers without participants"));
            }
        } else if voters == 1 && standalone_enabled {
            note(NoticeLevel::Warn, "only one server is listed: it runs standalone, as in ZooKeeper".into());
            if observers > 0 {
                return Err(invalid("server.N", "observer", "observers without a quorum (only one participant)"));
            }
        } else if voters <= 2 {
            note(NoticeLevel::Warn, "no server failure will be tolerated: an ensemble needs at least 3 servers".into());
        } else if voters % 2 == 0 {
            note(NoticeLevel::Warn, "an even number of voting servers: consider an odd number".into());
        }

        let pending =
            Pending { client_port_given: client_port.is_some(), secure_client_port: key("secureClientPort").is_some() };
        let properties = props.into_iter().map(|(k, (v, _))| (k, v)).collect();
        let cfg = ServerConfig {
            tick_time_ms,
            data_dir,
            data_log_dir,
            client_port: client_port.unwrap_or(0),
            client_port_address,
            max_client_cnxns,
            min_session_timeout_ms,
            max_session_timeout_ms,
            server_id: 0,
            jute_max_buffer,
            extended_types_enabled,
            skip_acl,
            read_only_mode,
            enforce_quota,
            super_digest,
            four_letter_whitelist,
            container_check_interval_ms: container_check_interval_ms as u64,
            container_max_per_minute,
            reconfig_enabled,
            max_outstanding_per_connection: 1000,
            global_outstanding_limit: global_outstanding_limit.max(1000) * 10,
            max_queued_per_connection: 100_000,
            snap_count,
            snap_retain_count,
            prealloc_bytes,
            fsync_warning_ms,
            properties,
            config_file: config_file.map(Path::to_path_buf),
            servers,
            standalone_enabled,
            init_limit,
            sync_limit,
            dynamic_config_file,
            datadir_autocreate,
            shutdown_timeout_ms,
            max_cnxns,
            client_port_listen_backlog,
            client_tcp_keep_alive,
            notices,
        };
        Ok((cfg, pending))
    }

    /// The checks that need the server id: the client port from this server's
    /// line, `myid` for a replicated configuration.
    fn finish(&mut self, pending: Pending, myid: MyId) -> Result<(), ConfigError> {
        if let MyId::Found(id) = myid {
            self.server_id = id;
        }
        let mut port_set = pending.client_port_given;
        if let MyId::Found(id) = myid {
            if let Some((host, port)) = self.servers.iter().find(|s| s.id == id).and_then(|s| s.client.clone()) {
                let line_key = format!("server.{id}");
                let line_addr = resolve_host(&line_key, &host)?;
                if port_set
                    && (port != self.client_port
                        || (!self.client_port_address.is_unspecified() && self.client_port_address != line_addr))
                {
                    return Err(invalid(
                        "clientPort",
                        &format!("{}:{}", self.client_port_address, self.client_port),
                        format!(
                            "differs from the client address {host}:{port} of this server (myid {id}) in {line_key}"
                        ),
                    ));
                }
                self.client_port = port;
                self.client_port_address = line_addr;
                port_set = true;
            }
        }
        if !port_set {
            if self.config_file.is_none() {
                self.client_port = 2181;
            } else {
                let reason = match pending.secure_client_port {
                    true => "clientPort is not set, and secure (TLS) client connections are not supported yet",
                    false => "clientPort is not set (nor a client port on this server's server.N line)",
                };
                return Err(invalid("clientPort", "", reason));
            }
        }
        if self.is_distributed() {
            if self.init_limit == 0 {
                return Err(invalid("initLimit", "", "initLimit is not set (required with several servers)"));
            }
            if self.sync_limit == 0 {
                return Err(invalid("syncLimit", "", "syncLimit is not set (required with several servers)"));
            }
            match myid {
                MyId::NotRead => {}
                MyId::Missing => {
                    return Err(invalid(
                        "myid",
                        "",
                        format!(
                            "{} is missing: a replicated configuration needs this server's id there",
                            self.data_dir.join("myid").display()
                        ),
                    ))
                }
                MyId::Found(id) => {
                    if !self.servers.iter().any(|s| s.id == id) {
                        return Err(invalid("myid", &id.to_string(), "no server.N line has this id"));
                    }
                    if self.extended_types_enabled && id > MAX_EXTENDED_SERVER_ID {
                        return Err(invalid(
                            "myid",
                            &id.to_string(),
                            format!("must be at most {MAX_EXTENDED_SERVER_ID} when extendedTypesEnabled is true"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Clamps a client's requested session timeout (`ConnectRequest.timeOut`).
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        requested_ms.clamp(self.min_session_timeout_ms, self.max_session_timeout_ms)
    }
}

/// What `finish` needs from `build`.
struct Pending {
    client_port_given: bool,
    secure_client_port: bool,
}

/// Turns a key's effect into a notice (or, for a refused value, an error).
fn effect_notice(
    note: &mut impl FnMut(NoticeLevel, String),
    label: &str,
    name: &str,
    value: &str,
    effect: Effect,
) -> Result<(), ConfigError> {
    let v = value.trim();
    match effect {
        Used | DefineOnly => {}
        Ignored(why) => note(NoticeLevel::Info, format!("ignoring {label}={}: {why}", shown(name, v))),
        IgnoredUnless(ours, why) => {
            if !v.eq_ignore_ascii_case(ours) {
                note(NoticeLevel::Info, format!("ignoring {label}={}: {why}", shown(name, v)));
            }
        }
        RefusedIfTrue(why) => {
            if java_bool(v) {
                return Err(invalid(name, v, format!("{why}; refusing to start rather than serve without it")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(lines: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        cfg_with(lines, &[])
    }

    fn cfg_with(lines: &[(&str, &str)], defines: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let mut entries: Vec<(String, String)> = vec![("clientPort".into(), "2181".into())];
        entries.extend(lines.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let defines: Vec<(String, String)> = defines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ServerConfig::from_sources(Some(Path::new("zoo.cfg")), &entries, &defines)
    }

    fn err(lines: &[(&str, &str)]) -> String {
        cfg(lines).unwrap_err().to_string()
    }

    fn messages(c: &ServerConfig) -> Vec<String> {
        c.notices.iter().map(|n| n.message.clone()).collect()
    }

    #[test]
    fn defaults_follow_tick_time() {
        let c = cfg(&[("tickTime", "2000"), ("dataDir", "/tmp/x"), ("clientPort", "2181")]).unwrap();
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (4000, 40000));
        assert_eq!(c.negotiate_timeout(1), 4000);
        assert_eq!(c.negotiate_timeout(1_000_000), 40000);
        assert!(c.four_letter_whitelist.allows("srvr"));
        assert!(!c.four_letter_whitelist.allows("ruok"));
        assert!(!c.is_distributed());
        assert_eq!(c.shutdown_timeout_ms, 10_000);
        assert!(c.datadir_autocreate);
    }

    #[test]
    fn default_config_is_quiet() {
        let c = ServerConfig::default();
        assert_eq!(c.client_port, 2181);
        assert!(c.notices.is_empty(), "{:?}", c.notices);
        let c = cfg(&[("dataDir", "/tmp/x"), ("tickTime", "2000"), ("initLimit", "5"), ("syncLimit", "2")]).unwrap();
        assert!(c.notices.iter().all(|n| n.message.contains("initLimit") || n.message.contains("syncLimit")));
    }

    #[test]
    fn unknown_keys_become_zookeeper_properties() {
        let c =
            cfg(&[("dataDir", "/tmp/x"), ("extendedTypesEnabled", "true"), ("4lw.commands.whitelist", "*")]).unwrap();
        assert!(c.extended_types_enabled);
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::All);
        assert_eq!(c.properties.get("zookeeper.extendedTypesEnabled").map(String::as_str), Some("true"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = err(&[("dataDir", "/tmp/x"), ("tickTime", "fast")]);
        assert!(e.contains("tickTime") && e.contains("fast"), "{e}");
        let e = err(&[("dataDir", "/tmp/x"), ("minSessionTimeout", "9000"), ("maxSessionTimeout", "8000")]);
        assert!(e.contains("minSessionTimeout") && e.contains("9000"), "{e}");
        for (k, v, why) in [
            ("clientPort", "70000", "port"),
            ("clientPort", "-1", "port"),
            ("maxClientCnxns", "lots", "integer"),
            ("tickTime", "0", "positive"),
            ("tickTime", "99999999999", "range"),
            ("reconfigEnabled", "yes", "true or false"),
            ("standaloneEnabled", "maybe", "true or false"),
            ("electionAlg", "1", "only 3"),
            ("peerType", "leader", "participant or observer"),
            ("autopurge.snapRetainCount", "three", "integer"),
            ("initLimit", "ten", "integer"),
            ("clientPortAddress", "no.such.host.invalid", "resolve"),
            ("minSessionTimeout", "-5", "milliseconds"),
            ("dataLogDir", "", "empty"),
        ] {
            let e = err(&[("dataDir", "/tmp/x"), (k, v)]);
            assert!(e.contains(k) && e.contains(&format!("{v:?}")) && e.contains(why), "{k}={v}: {e}");
        }
    }

    #[test]
    fn bad_property_values_name_the_property() {
        for (k, v) in [
            ("zookeeper.snapCount", "many"),
            ("jute.maxbuffer", "-5"),
            ("zookeeper.preAllocSize", "big"),
            ("znode.container.checkIntervalMs", "0"),
            ("zookeeper.DigestAuthenticationProvider.digestAlg", "SHA3-256"),
            ("zookeeper.maxResponseCacheSize", "x"),
        ] {
            let e = cfg_with(&[("dataDir", "/tmp/x")], &[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains(v), "{k}={v}: {e}");
        }
        // The zoo.cfg spelling reaches the property too.
        let e = err(&[("dataDir", "/tmp/x"), ("snapCount", "x")]);
        assert!(e.contains("zookeeper.snapCount"), "{e}");
    }

    #[test]
    fn missing_data_dir_and_client_port() {
        let e = ServerConfig::from_sources(Some(Path::new("zoo.cfg")), &[("clientPort".into(), "1".into())], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("dataDir is not set"), "{e}");
        let e = ServerConfig::from_sources(Some(Path::new("zoo.cfg")), &[("dataDir".into(), "/tmp/x".into())], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("clientPort is not set"), "{e}");
        let e = ServerConfig::from_sources(
            Some(Path::new("zoo.cfg")),
            &[("dataDir".into(), "/tmp/x".into()), ("clientPortAddress".into(), "127.0.0.1".into())],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("clientPortAddress is set but clientPort is not set"), "{e}");
    }

    #[test]
    fn ignored_keys_get_one_notice_each() {
        let c = cfg(&[
            ("dataDir", "/tmp/x"),
            ("serverCnxnFactory", "org.apache.zookeeper.server.NettyServerCnxnFactory"),
            ("admin.enableServer", "false"),
            ("admin.serverPort", "8080"),
            ("admin.forceHttps", "true"),
            ("metricsProvider.className", "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"),
            ("metricsProvider.httpPort", "7000"),
            ("metricsProvider.numWorkerThreads", "2"),
            ("metricsProvider.someSetting", "x"),
            ("jvm.pause.monitor", "false"),
            ("ssl.keyStore.password", "hunter2"),
        ])
        .unwrap();
        let m = messages(&c);
        assert_eq!(m.iter().filter(|m| m.contains("serverCnxnFactory")).count(), 1, "{m:?}");
        for used in ["admin.serverPort", "admin.enableServer", "metricsProvider.className", "metricsProvider.httpPort"]
        {
            assert!(!m.iter().any(|m| m.contains(used)), "{used} is used: {m:?}");
        }
        assert!(!m.iter().any(|m| m.contains("jvm.pause.monitor")), "false is what we do: {m:?}");
        for ignored in ["admin.forceHttps", "metricsProvider.numWorkerThreads", "metricsProvider.someSetting"] {
            assert!(m.iter().any(|m| m.contains(ignored)), "{ignored}: {m:?}");
        }
        assert!(m.iter().any(|m| m.contains("ssl.keyStore.password") && !m.contains("hunter2")), "{m:?}");
        assert!(c.notices.iter().all(|n| n.level == NoticeLevel::Info && !n.message.contains('\n')));
        let e = err(&[("dataDir", "/tmp/x"), ("admin.serverPort", "http")]);
        assert!(e.contains("zookeeper.admin.serverPort") && e.contains("http"), "{e}");
    }

    #[test]
    fn unknown_keys_warn_with_a_suggestion() {
        let c = cfg(&[("dataDir", "/tmp/x"), ("tickTme", "2000"), ("frobnicate", "1")]).unwrap();
        let warn: Vec<&Notice> = c.notices.iter().filter(|n| n.level == NoticeLevel::Warn).collect();
        assert!(warn.iter().any(|n| n.message.contains("tickTme") && n.message.contains("did you mean tickTime")));
        assert!(warn.iter().any(|n| n.message.contains("frobnicate") && !n.message.contains("did you mean")));
        let c = cfg_with(&[("dataDir", "/tmp/x")], &[("zookeeper.snapcount", "5")]).unwrap();
        assert!(messages(&c).iter().any(|m| m.contains("did you mean zookeeper.snapCount")), "{:?}", c.notices);
    }

    #[test]
    fn system_property_only_names_in_zoo_cfg_are_flagged() {
        let c = cfg(&[("dataDir", "/tmp/x"), ("jute.maxbuffer", "4000000")]).unwrap();
        assert_eq!(c.jute_max_buffer, DEFAULT_JUTE_MAXBUFFER);
        assert!(messages(&c).iter().any(|m| m.contains("-Djute.maxbuffer")), "{:?}", c.notices);
    }

    #[test]
    fn lenient_booleans_warn() {
        let c = cfg(&[("dataDir", "/tmp/x"), ("extendedTypesEnabled", "yes")]).unwrap();
        assert!(!c.extended_types_enabled);
        assert!(messages(&c).iter().any(|m| m.contains("neither true nor false")));
    }

    #[test]
    fn refused_settings_stop_start() {
        let e =
            cfg_with(&[("dataDir", "/tmp/x")], &[("zookeeper.enforce.auth.enabled", "true")]).unwrap_err().to_string();
        assert!(e.contains("zookeeper.enforce.auth.enabled"), "{e}");
        assert!(cfg_with(&[("dataDir", "/tmp/x")], &[("zookeeper.enforce.auth.enabled", "false")]).is_ok());
        let e = err(&[("dataDir", "/tmp/x"), ("quorum.auth.serverRequireSasl", "true")]);
        assert!(e.contains("quorum.auth.enableSasl"), "{e}");
    }

    #[test]
    fn server_lines() {
        let three = [
            ("dataDir", "/tmp/x"),
            ("initLimit", "5"),
            ("syncLimit", "2"),
            ("server.1", "zoo1:2888:3888"),
            ("server.2", "zoo2:2888:3888;2182"),
            ("server.3", "[::1]:2888:3888:observer;127.0.0.1:2183"),
            ("server.4", "zoo4:2888:3888:participant"),
        ];
        let c = cfg(&three).unwrap();
        assert!(c.is_distributed());
        assert_eq!(c.servers.len(), 4);
        assert_eq!(c.servers[1].client, Some(("0.0.0.0".into(), 2182)));
        assert_eq!(c.servers[2].role, PeerRole::Observer);
        assert_eq!(c.servers[2].addresses, vec![("::1".to_owned(), 2888, 3888)]);
        for (k, v, why) in [
            ("server.x", "h:1:2", "server id"),
            ("server.1", "h:1", "host:quorumPort"),
            ("server.1", "h:1:1", "must differ"),
            ("server.1", "h:1:2:boss", "peer type"),
            ("server.1", "h:1:2;a:b:c", "host:quorumPort"),
            ("server.1", "h:1:2;port", "client port"),
            ("server.1", "h:1:99999", "election port"),
            ("server.1", "h:1:2|g:3:4", "multiAddress.enabled"),
        ] {
            let e = err(&[("dataDir", "/tmp/x"), (k, v)]);
            assert!(e.contains(k) && e.contains(why), "{k}={v}: {e}");
        }
        // A single server line is ignored, as in ZooKeeper.
        let c = cfg(&[("dataDir", "/tmp/x"), ("server.1", "h:1:2")]).unwrap();
        assert!(!c.is_distributed());
        let e = err(&[("dataDir", "/tmp/x"), ("server.1", "h:1:2"), ("server.2", "g:1:2")]);
        assert!(e.contains("initLimit"), "{e}");
        let e = err(&[("dataDir", "/tmp/x"), ("standaloneEnabled", "false")]);
        assert!(e.contains("standaloneEnabled"), "{e}");
    }

    #[test]
    fn myid_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cfg_path = dir.path().join("zoo.cfg");
        let write = |extra: &str| {
            std::fs::write(&cfg_path, format!("tickTime=2000\ndataDir={}\nclientPort=2181\n{extra}", data.display()))
                .unwrap()
        };
        write("");
        let c = ServerConfig::load(Some(&cfg_path), &[]).unwrap();
        assert_eq!(c.server_id, 0);
        let ensemble = "initLimit=5\nsyncLimit=2\nserver.1=a:1:2;2191\nserver.2=b:1:2\nserver.3=c:1:2\n";
        write(ensemble);
        let e = ServerConfig::load(Some(&cfg_path), &[]).unwrap_err().to_string();
        assert!(e.contains("myid") && e.contains("missing"), "{e}");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), "one\n").unwrap();
        let e = ServerConfig::load(Some(&cfg_path), &[]).unwrap_err().to_string();
        assert!(e.contains("myid") && e.contains("\"one\""), "{e}");
        std::fs::write(data.join("myid"), "7\n").unwrap();
        let e = ServerConfig::load(Some(&cfg_path), &[]).unwrap_err().to_string();
        assert!(e.contains("no server.N line"), "{e}");
        std::fs::write(data.join("myid"), "1\n").unwrap();
        let e = ServerConfig::load(Some(&cfg_path), &[]).unwrap_err().to_string();
        assert!(e.contains("differs from the client address"), "{e}");
        std::fs::write(&cfg_path, format!("tickTime=2000\ndataDir={}\n{ensemble}", data.display())).unwrap();
        let c = ServerConfig::load(Some(&cfg_path), &[]).unwrap();
        assert_eq!((c.server_id, c.client_port), (1, 2191));
        assert!(c.is_distributed());

        // dataDir a file; dataLogDir not creatable; autocreate off.
        std::fs::write(dir.path().join("file"), "").unwrap();
        std::fs::write(&cfg_path, format!("dataDir={}\nclientPort=1\n", dir.path().join("file").display())).unwrap();
        let e = ServerConfig::load(Some(&cfg_path), &[]).unwrap_err().to_string();
        assert!(e.contains("dataDir") && e.contains("not a directory"), "{e}");
        std::fs::write(
            &cfg_path,
            format!("dataDir={}\ndataLogDir={}/sub\nclientPort=1\n", data.display(), dir.path().join("file").display()),
        )
        .unwrap();
        let e = ServerConfig::load(Some(&cfg_path), &[]).unwrap_err().to_string();
        assert!(e.contains("dataLogDir") && e.contains("cannot be created"), "{e}");
        std::fs::write(&cfg_path, format!("dataDir={}/new\nclientPort=1\n", dir.path().display())).unwrap();
        assert!(ServerConfig::load(Some(&cfg_path), &[]).is_ok());
        let no = [("zookeeper.datadir.autocreate".to_owned(), "false".to_owned())];
        let e = ServerConfig::load(Some(&cfg_path), &no).unwrap_err().to_string();
        assert!(e.contains("autocreate"), "{e}");
    }

    #[test]
    fn dynamic_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("zoo.cfg.dynamic.100000000");
        std::fs::write(&dynamic, "server.1=a:1:2;2181\nserver.2=b:1:2;2181\nserver.3=c:1:2;2181\n").unwrap();
        let d = dynamic.display().to_string();
        let c =
            cfg(&[("dataDir", "/tmp/x"), ("dynamicConfigFile", &d), ("initLimit", "5"), ("syncLimit", "2")]).unwrap();
        assert_eq!(c.servers.len(), 3);
        let e = err(&[("dataDir", "/tmp/x"), ("dynamicConfigFile", &d), ("server.1", "a:1:2")]);
        assert!(e.contains("server.1") && e.contains("dynamic"), "{e}");
        std::fs::write(&dynamic, "server.1=a:1:2\ntickTime=5\n").unwrap();
        let e = err(&[("dataDir", "/tmp/x"), ("dynamicConfigFile", &d)]);
        assert!(e.contains("tickTime"), "{e}");
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties("# c\n a = b \nc:d\n!x\n", Path::new("f")).unwrap();
        assert_eq!(p, vec![("a".into(), "b".into()), ("c".into(), "d".into())]);
        let p =
            parse_properties("k v=w\nlong = one \\\n   two\nesc\\:aped=\\u0041\\tB\nalone\n", Path::new("f")).unwrap();
        assert_eq!(
            p,
            vec![
                ("k".into(), "v=w".into()),
                ("long".into(), "one two".into()),
                ("esc:aped".into(), "A\tB".into()),
                ("alone".into(), "".into()),
            ]
        );
        assert!(parse_properties("bad=\\u12\n", Path::new("f")).is_err());
    }

    #[test]
    fn duplicate_keys_warn_and_the_last_wins() {
        let c = cfg(&[("dataDir", "/tmp/x"), ("tickTime", "1000"), ("tickTime", "2000")]).unwrap();
        assert_eq!(c.tick_time_ms, 2000);
        assert!(messages(&c).iter().any(|m| m.contains("more than once")));
    }

    /// Every key of ZooKeeper 3.9's administrator's guide, as an operator
    /// writes it in zoo.cfg (the system-property-only ones as `-D`), is
    /// known: used silently, or ignored with a notice; never "unknown".
    #[test]
    fn every_documented_key_is_known() {
        const IN_ZOO_CFG: &[&str] = &[
            "clientPort",
            "secureClientPort",
            "observerMasterPort",
            "dataDir",
            "tickTime",
            "dataLogDir",
            "globalOutstandingLimit",
            "preAllocSize",
            "snapCount",
            "commitLogCount",
            "snapSizeLimitInKb",
            "txnLogSizeLimitInKb",
            "maxCnxns",
            "maxClientCnxns",
            "clientPortAddress",
            "minSessionTimeout",
            "maxSessionTimeout",
            "fsync.warningthresholdms",
            "maxResponseCacheSize",
            "maxGetChildrenResponseCacheSize",
            "autopurge.snapRetainCount",
            "autopurge.purgeInterval",
            "syncEnabled",
            "extendedTypesEnabled",
            "emulate353TTLNodes",
            "watchManagerName",
            "watcherCleanThreadsNum",
            "watcherCleanThreshold",
            "watcherCleanIntervalInSeconds",
            "maxInProcessingDeadWatchers",
            "bitHashCacheSize",
            "fastleader.minNotificationInterval",
            "fastleader.maxNotificationInterval",
            "connectionMaxTokens",
            "connectionTokenFillTime",
            "connectionTokenFillCount",
            "connectionFreezeTime",
            "connectionDropIncrease",
            "connectionDropDecrease",
            "connectionDecreaseRatio",
            "clientPortListenBacklog",
            "serverCnxnFactory",
            "flushDelay",
            "maxWriteQueuePollTime",
            "maxBatchSize",
            "enforceQuota",
            "requestThrottleLimit",
            "requestThrottleStallTime",
            "requestThrottleDropStale",
            "requestStaleLatencyCheck",
            "requestStaleConnectionCheck",
            "advancedFlowControlEnabled",
            "enableEagerACLCheck",
            "maxConcurrentSnapSyncs",
            "maxConcurrentDiffSyncs",
            "digest.enabled",
            "snapshot.compression.method",
            "snapshot.trust.empty",
            "audit.enable",
            "audit.impl.class",
            "largeRequestMaxBytes",
            "largeRequestThreshold",
            "outstandingHandshake.limit",
            "netty.server.earlyDropSecureConnectionHandshakes",
            "throttledOpWaitTime",
            "learner.closeSocketAsync",
            "leader.closeSocketAsync",
            "learner.asyncSending",
            "forward_learner_requests_to_commit_processor_disabled",
            "serializeLastProcessedZxid.enabled",
            "electionAlg",
            "maxTimeToWaitForEpoch",
            "initLimit",
            "connectToLearnerMasterLimit",
            "leaderServes",
            "syncLimit",
            "cnxTimeout",
            "quorumCnxnTimeoutMs",
            "standaloneEnabled",
            "reconfigEnabled",
            "4lw.commands.whitelist",
            "tcpKeepAlive",
            "clientTcpKeepAlive",
            "electionPortBindRetry",
            "observer.reconnectDelayMs",
            "observer.election.DelayMs",
            "localSessionsEnabled",
            "localSessionsUpgradingEnabled",
            "DigestAuthenticationProvider.enabled",
            "DigestAuthenticationProvider.superDigest",
            "DigestAuthenticationProvider.digestAlg",
            "IPAuthenticationProvider.usexforwardedfor",
            "X509AuthenticationProvider.superUser",
            "superUser",
            "ssl.authProvider",
            "ensembleAuthName",
            "sessionRequireClientSASLAuth",
            "enforce.auth.enabled",
            "enforce.auth.schemes",
            "sslQuorum",
            "ssl.keyStore.location",
            "ssl.keyStore.password",
            "ssl.quorum.keyStore.location",
            "ssl.quorum.keyStore.password",
            "ssl.keyStore.passwordPath",
            "ssl.keyStore.type",
            "ssl.trustStore.location",
            "ssl.trustStore.password",
            "ssl.trustStore.passwordPath",
            "ssl.trustStore.type",
            "ssl.protocol",
            "ssl.enabledProtocols",
            "ssl.ciphersuites",
            "ssl.context.supplier.class",
            "ssl.hostnameVerification",
            "ssl.clientHostnameVerification",
            "ssl.allowReverseDnsLookup",
            "ssl.crl",
            "ssl.ocsp",
            "ssl.clientAuth",
            "ssl.handshakeDetectionTimeoutMillis",
            "ssl.sslProvider",
            "sslQuorumReloadCertFiles",
            "client.certReload",
            "client.portUnification",
            "authProvider.1",
            "kerberos.removeHostFromPrincipal",
            "kerberos.removeRealmFromPrincipal",
            "kerberos.canonicalizeHostNames",
            "multiAddress.enabled",
            "multiAddress.reachabilityCheckTimeoutMs",
            "multiAddress.reachabilityCheckEnabled",
            "fips-mode",
            "follower.skipLearnerRequestToNextProcessor",
            "forceSync",
            "jute.maxbuffer.extrasize",
            "skipACL",
            "quorumListenOnAllIPs",
            "nio.numSelectorThreads",
            "nio.numWorkerThreads",
            "commitProcessor.numWorkerThreads",
            "commitProcessor.maxReadBatchSize",
            "commitProcessor.maxCommitBatchSize",
            "messageTracker.BufferSize",
            "messageTracker.Enabled",
            "admin.rateLimiterIntervalInMS",
            "admin.snapshot.enabled",
            "admin.restore.enabled",
            "admin.needClientAuth",
            "admin.forceHttps",
            "admin.portUnification",
            "admin.enableServer",
            "admin.serverAddress",
            "admin.serverPort",
            "admin.idleTimeout",
            "admin.commandURL",
            "metricsProvider.className",
            "metricsProvider.httpHost",
            "metricsProvider.httpPort",
            "metricsProvider.exportJvmInfo",
            "metricsProvider.numWorkerThreads",
            "metricsProvider.maxQueueSize",
            "metricsProvider.workerShutdownTimeoutMs",
            "peerType",
            "dynamicConfigFile",
            "oraclePath",
            "secureClientPortAddress",
            "quorum.auth.enableSasl",
            "quorum.cnxn.threads.size",
            "jvm.pause.monitor",
        ];
        const AS_PROPERTY: &[&str] = &[
            "zookeeper.connection_throttle_weight_enabled",
            "zookeeper.connection_throttle_global_session_weight",
            "zookeeper.connection_throttle_local_session_weight",
            "zookeeper.connection_throttle_renew_session_weight",
            "zookeeper.request_throttler.shutdownTimeout",
            "zookeeper.superUser",
            "zookeeper.ensembleAuthName",
            "zookeeper.follower.skipLearnerRequestToNextProcessor",
            "zookeeper.nio.numSelectorThreads",
            "zookeeper.commitProcessor.numWorkerThreads",
            "zookeeper.messageTracker.Enabled",
            "jute.maxbuffer",
            "readonlymode.enabled",
            "znode.container.checkIntervalMs",
            "znode.container.maxPerMinute",
            "znode.container.maxNeverUsedIntervalMs",
            "zookeeper.datadir.autocreate",
            "zookeeper.db.autocreate",
            "zookeeper.allowSaslFailedClients",
            "zookeeper.jmx.log4j.disable",
        ];
        let samples = ["1", "3", "100000", "true", "participant", "SHA1"];
        let check = |lines: &[(&str, &str)], defines: &[(&str, &str)], name: &str| {
            let found = samples.iter().find_map(|v| {
                let l: Vec<(&str, &str)> =
                    lines.iter().map(|(k, x)| (*k, if x.is_empty() { *v } else { *x })).collect();
                let d: Vec<(&str, &str)> =
                    defines.iter().map(|(k, x)| (*k, if x.is_empty() { *v } else { *x })).collect();
                cfg_with(&l, &d).ok()
            });
            let Some(c) = found else { panic!("{name}: no sample value is accepted") };
            for n in &c.notices {
                assert!(
                    !n.message.contains("unknown") && !n.message.contains("has no effect"),
                    "{name}: {}",
                    n.message
                );
            }
        };
        for key in IN_ZOO_CFG {
            if *key == "dynamicConfigFile" || *key == "standaloneEnabled" {
                continue; // need a file / change the mode: covered elsewhere
            }
            let mut lines = vec![("dataDir", "/tmp/x"), (key, "")];
            if *key == "secureClientPortAddress" {
                lines.push(("secureClientPort", "2281"));
            }
            check(&lines, &[], key);
        }
        for name in AS_PROPERTY {
            check(&[("dataDir", "/tmp/x")], &[(name, "")], name);
        }
    }

    #[test]
    fn whitelist_words_are_checked() {
        let c = cfg(&[("dataDir", "/tmp/x"), ("4lw.commands.whitelist", "ruok, stat,bogus")]).unwrap();
        assert!(c.four_letter_whitelist.allows("ruok") && c.four_letter_whitelist.allows("stat"));
        assert!(messages(&c).iter().any(|m| m.contains("bogus")));
    }
}
