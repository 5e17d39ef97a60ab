//! Configuration: `zoo.cfg` (Java properties), `myid`, and ZooKeeper system
//! properties given as `-Dkey=value`, turned into a typed [`ServerConfig`].
//!
//! As in ZooKeeper, a zoo.cfg key that is not a configuration key becomes the
//! system property `zookeeper.<key>` (so `extendedTypesEnabled=true` and
//! `4lw.commands.whitelist=*` in zoo.cfg work), and a `-D` property wins over
//! the same property derived from zoo.cfg. Invalid values are errors that name
//! the key, the value and the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
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

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::from_sources(None, &[], &[]).expect("defaults are valid")
    }
}

/// Reads a Java properties file: `key=value`, `key: value` or `key value`,
/// `#` and `!` comments, surrounding blanks trimmed.
pub fn parse_properties(text: &str, path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']).or_else(|| line.find(char::is_whitespace));
        let Some(at) = split else {
            return Err(ConfigError::Syntax { path: path.into(), line: i + 1, text: raw.into() });
        };
        let key = line[..at].trim().to_owned();
        let value = line[at + 1..].trim().to_owned();
        out.push((key, value));
    }
    Ok(out)
}

/// zoo.cfg keys that ZooKeeper's QuorumPeerConfig reads itself; every other
/// key becomes `zookeeper.<key>`.
const CONFIG_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "observerMasterPort",
    "clientPortListenBacklog",
    "tickTime",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "electionAlg",
    "quorumListenOnAllIPs",
    "peerType",
    "syncEnabled",
    "dynamicConfigFile",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "standaloneEnabled",
    "reconfigEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "client.portUnification",
    "metricsProvider.className",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "multiAddress.reachabilityCheckEnabled",
    "version",
];

fn is_config_key(key: &str) -> bool {
    CONFIG_KEYS.contains(&key)
        || key.starts_with("server.")
        || key.starts_with("group")
        || key.starts_with("weight")
        || key.starts_with("metricsProvider.")
        || key.starts_with("quorum.")
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse::<T>().map_err(|_| invalid(key, value, "not a number"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    // Java's Boolean.parseBoolean: "true" (any case) is true, anything else false.
    let _ = key;
    Ok(value.trim().eq_ignore_ascii_case("true"))
}

impl ServerConfig {
    /// Loads `zoo.cfg` (if any) and applies `-D` properties.
    pub fn load(config_file: Option<&Path>, defines: &[(String, String)]) -> Result<Self, ConfigError> {
        let entries = match config_file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.into(), source })?;
                parse_properties(&text, p)?
            }
            None => Vec::new(),
        };
        let mut cfg = Self::from_sources(config_file, &entries, defines)?;
        cfg.read_myid()?;
        Ok(cfg)
    }

    fn read_myid(&mut self) -> Result<(), ConfigError> {
        let p = self.data_dir.join("myid");
        match std::fs::read_to_string(&p) {
            Ok(text) => {
                let t = text.trim();
                self.server_id =
                    t.parse().map_err(|_| invalid("myid", t, format!("{} does not hold a number", p.display())))?;
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    pub fn from_sources(
        config_file: Option<&Path>,
        entries: &[(String, String)],
        defines: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        let mut properties: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in entries {
            if is_config_key(k) {
                keys.insert(k.clone(), v.clone());
            } else {
                properties.insert(format!("zookeeper.{k}"), v.clone());
            }
        }
        for (k, v) in defines {
            properties.insert(k.clone(), v.clone());
        }
        let key = |k: &str| keys.get(k).map(|s| s.as_str());
        let prop = |k: &str| properties.get(k).map(|s| s.as_str());

        let tick_time_ms: u64 = match key("tickTime") {
            Some(v) => parse_num("tickTime", v)?,
            None => 3000,
        };
        if tick_time_ms == 0 {
            return Err(invalid("tickTime", "0", "must be positive"));
        }
        let data_dir = match key("dataDir") {
            Some(v) => PathBuf::from(v),
            None if config_file.is_some() => {
                return Err(invalid("dataDir", "", "dataDir is not set"));
            }
            None => std::env::temp_dir().join("ferrokeeper"),
        };
        let data_log_dir = key("dataLogDir").map(PathBuf::from).unwrap_or_else(|| data_dir.clone());
        let client_port: u16 = match key("clientPort") {
            Some(v) => parse_num("clientPort", v)?,
            None => 2181,
        };
        let client_port_address: IpAddr = match key("clientPortAddress") {
            Some(v) => v.trim().parse().map_err(|_| invalid("clientPortAddress", v, "not an IP address"))?,
            None if config_file.is_some() => "0.0.0.0".parse().unwrap(),
            None => "127.0.0.1".parse().unwrap(),
        };
        let max_client_cnxns: usize = match key("maxClientCnxns") {
            Some(v) => parse_num("maxClientCnxns", v)?,
            None => 60,
        };
        let tick = tick_time_ms as i64;
        let min_session_timeout_ms = match key("minSessionTimeout") {
            Some(v) => parse_num::<i32>("minSessionTimeout", v)?,
            None => -1,
        };
        let min_session_timeout_ms =
            if min_session_timeout_ms == -1 { (tick * 2) as i32 } else { min_session_timeout_ms };
        let max_session_timeout_ms = match key("maxSessionTimeout") {
            Some(v) => parse_num::<i32>("maxSessionTimeout", v)?,
            None => -1,
        };
        let max_session_timeout_ms =
            if max_session_timeout_ms == -1 { (tick * 20) as i32 } else { max_session_timeout_ms };
        if min_session_timeout_ms > max_session_timeout_ms {
            return Err(invalid(
                "minSessionTimeout",
                &min_session_timeout_ms.to_string(),
                "minSessionTimeout must not be larger than maxSessionTimeout",
            ));
        }
        let reconfig_enabled = match key("reconfigEnabled") {
            Some(v) => parse_bool("reconfigEnabled", v)?,
            None => false,
        };
        let jute_max_buffer = match prop("jute.maxbuffer") {
            Some(v) => {
                let n: i64 = parse_num("jute.maxbuffer", v)?;
                if n <= 0 {
                    return Err(invalid("jute.maxbuffer", v, "must be positive"));
                }
                n as usize
            }
            None => DEFAULT_JUTE_MAXBUFFER,
        };
        let bool_prop = |name: &str| -> Result<bool, ConfigError> {
            match prop(name) {
                Some(v) => parse_bool(name, v),
                None => Ok(false),
            }
        };
        let extended_types_enabled = bool_prop("zookeeper.extendedTypesEnabled")?;
        let enforce_quota = bool_prop("zookeeper.enforceQuota")?;
        let skip_acl = prop("zookeeper.skipACL").is_some_and(|v| v.trim() == "yes");
        let super_digest = prop("zookeeper.DigestAuthenticationProvider.superDigest").map(|s| s.trim().to_owned());
        let four_letter_whitelist = match prop("zookeeper.4lw.commands.whitelist") {
            None => FourLetterWhitelist::Only(["srvr".to_owned()].into()),
            Some(v) => {
                let words: BTreeSet<String> =
                    v.split(',').map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect();
                if words.contains("*") {
                    FourLetterWhitelist::All
                } else {
                    FourLetterWhitelist::Only(words)
                }
            }
        };
        let u64_prop = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match prop(name) {
                Some(v) => parse_num(name, v),
                None => Ok(default),
            }
        };
        let container_check_interval_ms = u64_prop("znode.container.checkIntervalMs", 60_000)?;
        if container_check_interval_ms == 0 {
            return Err(invalid("znode.container.checkIntervalMs", "0", "must be positive"));
        }
        let container_max_per_minute = u64_prop("znode.container.maxPerMinute", 10_000)? as usize;
        let global_outstanding_limit = u64_prop("zookeeper.globalOutstandingLimit", 1000)?.max(1) as usize;
        let snap_count = u64_prop("zookeeper.snapCount", 100_000)?.max(2);
        let snap_retain_count = match key("autopurge.snapRetainCount") {
            // ZooKeeper raises values below 3 to 3.
            Some(v) => parse_num::<usize>("autopurge.snapRetainCount", v)?.max(3),
            None => 3,
        };
        let prealloc_bytes = u64_prop("zookeeper.preAllocSize", 65_536)?.max(4) * 1024;
        let fsync_warning_ms = match prop("zookeeper.fsync.warningthresholdms").or(prop("fsync.warningthresholdms")) {
            Some(v) => parse_num("fsync.warningthresholdms", v)?,
            None => 1000,
        };

        Ok(ServerConfig {
            tick_time_ms,
            data_dir,
            data_log_dir,
            client_port,
            client_port_address,
            max_client_cnxns,
            min_session_timeout_ms,
            max_session_timeout_ms,
            server_id: 0,
            jute_max_buffer,
            extended_types_enabled,
            skip_acl,
            enforce_quota,
            super_digest,
            four_letter_whitelist,
            container_check_interval_ms,
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
        })
    }

    /// Clamps a client's requested session timeout (`ConnectRequest.timeOut`).
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        requested_ms.clamp(self.min_session_timeout_ms, self.max_session_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(lines: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let entries: Vec<(String, String)> = lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ServerConfig::from_sources(Some(Path::new("zoo.cfg")), &entries, &[])
    }

    #[test]
    fn defaults_follow_tick_time() {
        let c = cfg(&[("tickTime", "2000"), ("dataDir", "/tmp/x"), ("clientPort", "2181")]).unwrap();
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (4000, 40000));
        assert_eq!(c.negotiate_timeout(1), 4000);
        assert_eq!(c.negotiate_timeout(1_000_000), 40000);
        assert!(c.four_letter_whitelist.allows("srvr"));
        assert!(!c.four_letter_whitelist.allows("ruok"));
    }

    #[test]
    fn unknown_keys_become_zookeeper_properties() {
        let c =
            cfg(&[("dataDir", "/tmp/x"), ("extendedTypesEnabled", "true"), ("4lw.commands.whitelist", "*")]).unwrap();
        assert!(c.extended_types_enabled);
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::All);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = cfg(&[("dataDir", "/tmp/x"), ("tickTime", "fast")]).unwrap_err().to_string();
        assert!(e.contains("tickTime") && e.contains("fast"), "{e}");
        let e = cfg(&[("dataDir", "/tmp/x"), ("minSessionTimeout", "9000"), ("maxSessionTimeout", "8000")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("minSessionTimeout"), "{e}");
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties("# c\n a = b \nc:d\n!x\n", Path::new("f")).unwrap();
        assert_eq!(p, vec![("a".into(), "b".into()), ("c".into(), "d".into())]);
    }
}
