//! The `ferrokeeper` command: serve (default), import/export Apache
//! ZooKeeper data, and dump logs and snapshots.
//!
//! Operators drive it as they drive ZooKeeper (see `scripts/zkServer.sh`):
//!
//! - configuration: `--config F`, a positional `F`, else `$ZOOCFGDIR/$ZOOCFG`
//!   (`ZOOCFG` defaults to `zoo.cfg`; an absolute `ZOOCFG` is used as is);
//! - system properties: `-Dkey=value` on the command line, and the `-D` words
//!   of `SERVER_JVMFLAGS` then `JVMFLAGS` (the command line wins; other JVM
//!   options there are ignored with a notice);
//! - logging: `RUST_LOG` when set (tracing's env filter); otherwise the level
//!   is the first word of `-Dzookeeper.root.logger` or `ZOO_LOG4J_PROP`
//!   (log4j levels: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF; default
//!   INFO), and the words after it choose the destinations: `CONSOLE` is
//!   stderr, any `...FILE` appender (ROLLINGFILE, TRACEFILE) is the log file.
//!   Without appender words, a log directory (`-Dzookeeper.log.dir` or
//!   `ZOO_LOG_DIR`) means the log file, else stderr. The log file is
//!   `<dir>/<name>`, the name from `-Dzookeeper.log.file`, `ZOO_LOG_FILE`, or
//!   ZooKeeper's `zookeeper-<user>-server-<host>.log`; it is appended to and
//!   never rotated (use logrotate's copytruncate).
//!   `-Dzookeeper.console.threshold` and `-Dzookeeper.log.threshold` raise the
//!   level of one destination;
//! - exit status: 0 after a clean stop (SIGTERM or SIGINT), 2 for an invalid
//!   configuration (as ZooKeeper), 1 for any other failure.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ferrokeeper::config::{NoticeLevel, ServerConfig};
use ferrokeeper::snapshot::{self, recovery, zkformat};
use ferrokeeper::txnlog;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// A ZooKeeper-compatible coordination server.
///
/// ZooKeeper system properties are accepted as `-Dkey=value` anywhere on the
/// command line (e.g. `-Djute.maxbuffer=4194304`), and from SERVER_JVMFLAGS
/// and JVMFLAGS. Without a zoo.cfg argument, $ZOOCFGDIR/$ZOOCFG is read when
/// either variable is set.
#[derive(Parser, Debug)]
#[command(name = "ferrokeeper", version, about)]
struct Cli {
    /// Path of a ZooKeeper zoo.cfg. Without one (and without ZOOCFGDIR or
    /// ZOOCFG), a standalone server listens on 127.0.0.1:2181.
    #[arg(long = "config", short = 'c', value_name = "ZOO_CFG", global = true)]
    config: Option<PathBuf>,
    /// The zoo.cfg path, as ZooKeeper's own launchers pass it.
    #[arg(value_name = "ZOO_CFG")]
    config_positional: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the version, as ZooKeeper's `zkServer.sh version` does.
    Version,
    /// Import an Apache ZooKeeper data directory (version-2/ snapshots and
    /// logs) into the configured dataDir. ZooKeeper's files are only read.
    Import {
        /// ZooKeeper's dataDir (the directory holding version-2/).
        #[arg(long)]
        zk_data_dir: PathBuf,
        /// ZooKeeper's dataLogDir, when it differs from its dataDir.
        #[arg(long)]
        zk_data_log_dir: Option<PathBuf>,
        /// Replace Ferrokeeper state already in dataDir.
        #[arg(long)]
        force: bool,
    },
    /// Write the configured server's state as an Apache ZooKeeper snapshot
    /// (OUT/version-2/snapshot.<zxid>) that ZooKeeper 3.8 boots from.
    Export {
        /// Directory to become ZooKeeper's dataDir.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print transaction log segments (ours, or ZooKeeper's log.N files).
    Log {
        #[command(subcommand)]
        what: DumpCommand,
    },
    /// Print a snapshot (ours, or ZooKeeper's snapshot.N files).
    Snapshot {
        #[command(subcommand)]
        what: DumpCommand,
    },
}

#[derive(Subcommand, Debug)]
enum DumpCommand {
    /// Human-readable listing.
    Dump {
        file: PathBuf,
        /// Also print znode data (snapshots).
        #[arg(long)]
        data: bool,
    },
}

/// `-Dkey=value` (or `-Dkey`, an empty value, as Java reads it).
fn as_define(word: &str) -> Option<(String, String)> {
    let kv = word.strip_prefix("-D").filter(|kv| !kv.is_empty())?;
    Some(match kv.split_once('=') {
        Some((k, v)) => (k.to_owned(), v.to_owned()),
        None => (kv.to_owned(), String::new()),
    })
}

/// Splits `-D` properties out of the command line.
fn split_defines(argv: impl Iterator<Item = String>) -> (Vec<String>, Vec<(String, String)>) {
    let mut args = Vec::new();
    let mut defines = Vec::new();
    for a in argv {
        match as_define(&a) {
            Some(d) => defines.push(d),
            None => args.push(a),
        }
    }
    (args, defines)
}

/// The `-D` words of SERVER_JVMFLAGS then JVMFLAGS (ZooKeeper's scripts put
/// them in that order, so JVMFLAGS wins), and the other JVM options there.
fn defines_from_env() -> (Vec<(String, String)>, Vec<String>) {
    let mut defines = Vec::new();
    let mut others = Vec::new();
    for var in ["SERVER_JVMFLAGS", "JVMFLAGS"] {
        if let Ok(flags) = std::env::var(var) {
            for f in flags.split_whitespace() {
                match as_define(f) {
                    Some(d) => defines.push(d),
                    None => others.push(f.to_owned()),
                }
            }
        }
    }
    (defines, others)
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// The zoo.cfg ZooKeeper's scripts would use: `$ZOOCFGDIR/$ZOOCFG`.
fn config_from_env() -> Option<(PathBuf, &'static str)> {
    config_location(env_nonempty("ZOOCFGDIR").map(PathBuf::from), env_nonempty("ZOOCFG").map(PathBuf::from))
}

/// `ZOOCFG` is a file name in `ZOOCFGDIR` (default `zoo.cfg`), or a path of
/// its own when absolute (or when `ZOOCFGDIR` is not set).
fn config_location(dir: Option<PathBuf>, name: Option<PathBuf>) -> Option<(PathBuf, &'static str)> {
    match (dir, name) {
        (_, Some(n)) if n.is_absolute() => Some((n, "ZOOCFG")),
        (Some(d), Some(n)) => Some((d.join(n), "ZOOCFGDIR/ZOOCFG")),
        (None, Some(n)) => Some((n, "ZOOCFG")),
        (Some(d), None) => Some((d.join("zoo.cfg"), "ZOOCFGDIR")),
        (None, None) => None,
    }
}

// ---------------------------------------------------------------------------
// Logging

/// A log4j level name as a tracing level.
fn log4j_level(name: &str) -> Option<LevelFilter> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "ALL" | "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARN" | "WARNING" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        "OFF" => LevelFilter::OFF,
        _ => return None,
    })
}

/// The user name, as ZooKeeper's script takes it from $USER.
fn user_name() -> String {
    if let Some(u) = env_nonempty("USER").or_else(|| env_nonempty("LOGNAME")) {
        return u;
    }
    // SAFETY: getpwuid is called before any other thread exists; the name is
    // copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
        }
    }
    "unknown".into()
}

fn host_name() -> String {
    env_nonempty("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Where log lines go, for messages that must reach the operator.
struct Logging {
    console: bool,
    file: Option<PathBuf>,
}

/// Sets up tracing from RUST_LOG, ZooKeeper's logging properties and
/// environment (see the module docs). Returns where lines go; problems with
/// the logging settings are logged once it is set up.
fn init_logging(defines: &[(String, String)]) -> Logging {
    let define = |k: &str| defines.iter().rev().find(|(dk, _)| dk == k).map(|(_, v)| v.clone());
    let mut notes: Vec<String> = Vec::new();
    let root = define("zookeeper.root.logger").or_else(|| env_nonempty("ZOO_LOG4J_PROP"));
    let mut level = LevelFilter::INFO;
    let (mut console, mut file_wanted, mut appenders_given) = (false, false, false);
    if let Some(spec) = &root {
        let mut words = spec.split(',').map(str::trim);
        if let Some(w) = words.next().filter(|w| !w.is_empty()) {
            match log4j_level(w) {
                Some(l) => level = l,
                None => notes.push(format!("unknown log level {w:?} in {spec:?}: using INFO")),
            }
        }
        for a in words.filter(|w| !w.is_empty()) {
            appenders_given = true;
            let upper = a.to_ascii_uppercase();
            if upper == "CONSOLE" || upper == "STDOUT" || upper == "STDERR" {
                console = true;
            } else if upper.contains("FILE") {
                file_wanted = true;
            } else {
                notes.push(format!("unknown log appender {a:?} in {spec:?}: use CONSOLE or ROLLINGFILE"));
            }
        }
    }
    let dir = define("zookeeper.log.dir").or_else(|| env_nonempty("ZOO_LOG_DIR"));
    if !appenders_given {
        file_wanted = dir.is_some();
        console = !file_wanted;
    }
    let threshold = |k: &str, notes: &mut Vec<String>| match define(k) {
        None => LevelFilter::TRACE,
        Some(v) => log4j_level(&v).unwrap_or_else(|| {
            notes.push(format!("unknown log level {v:?} for {k}: ignored"));
            LevelFilter::TRACE
        }),
    };
    let console_threshold = threshold("zookeeper.console.threshold", &mut notes);
    let file_threshold = threshold("zookeeper.log.threshold", &mut notes);

    let mut file = None;
    if file_wanted {
        let dir = PathBuf::from(dir.unwrap_or_else(|| ".".into()));
        let name = define("zookeeper.log.file")
            .or_else(|| env_nonempty("ZOO_LOG_FILE"))
            .unwrap_or_else(|| format!("zookeeper-{}-server-{}.log", user_name(), host_name()));
        let path = dir.join(name);
        let opened = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&path));
        match opened {
            Ok(f) => file = Some((path, f)),
            Err(e) => {
                notes.push(format!("cannot open the log file {}: {e}; logging to stderr", path.display()));
                console = true;
            }
        }
    }

    let filter = match env_nonempty("RUST_LOG") {
        Some(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            notes.push(format!("RUST_LOG={spec:?} is not a valid filter ({e}): using {level}"));
            EnvFilter::default().add_directive(level.into())
        }),
        // openraft narrates every vote at info, and reports every failed RPC
        // to an unreachable peer (twice a second while a server is down);
        // the peer links and the core log the state changes once instead.
        None => ["openraft=error", "openraft::replication=off"]
            .iter()
            .filter_map(|d| d.parse().ok())
            .fold(EnvFilter::default().add_directive(level.into()), |f, d| f.add_directive(d)),
    };
    let console_layer = console.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(console_threshold)
    });
    let file_path = file.as_ref().map(|(p, _)| p.clone());
    let file_layer = file.map(|(_, f)| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_filter(file_threshold)
    });
    tracing_subscriber::registry().with(filter).with(console_layer).with(file_layer).init();
    for n in notes {
        tracing::warn!("{n}");
    }
    Logging { console, file: file_path }
}

// ---------------------------------------------------------------------------

/// Why the command failed; decides the exit status.
enum Failure {
    /// The configuration is invalid (exit 2, as ZooKeeper's
    /// INVALID_INVOCATION).
    Config(anyhow::Error),
    /// Anything else (exit 1).
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.into())
    }
}

fn main() -> ExitCode {
    let (args, cli_defines) = split_defines(std::env::args());
    let (mut defines, jvm_options) = defines_from_env();
    defines.extend(cli_defines);
    let cli = Cli::parse_from(args);
    let logging = init_logging(&defines);
    match run(cli, &defines, &jvm_options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let (code, e) = match failure {
                Failure::Config(e) => (2, e),
                Failure::Other(e) => (1, e),
            };
            let text = describe(&e);
            if !logging.console {
                // The log file has it; stderr (zkServer.sh's .out file, or
                // the terminal) must have it too.
                eprintln!("ferrokeeper: {text}");
            }
            if logging.console || logging.file.is_some() {
                tracing::error!("{text}");
            }
            ExitCode::from(code)
        }
    }
}

/// An error and its causes on one line, without repeating a cause that the
/// message before it already quotes.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !text.contains(&c) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&c);
        }
    }
    text
}

fn run(cli: Cli, defines: &[(String, String)], jvm_options: &[String]) -> Result<(), Failure> {
    let command = cli.command.unwrap_or(Command::Serve);
    let explicit = cli.config.or(cli.config_positional);
    let load = |serving: bool| -> Result<ServerConfig, Failure> {
        let config_path = explicit.clone().or_else(|| config_from_env().map(|(p, _)| p));
        if serving {
            tracing::info!(
                version = ferrokeeper::admin::VERSION,
                pid = std::process::id(),
                config = %config_path.as_deref().map_or("(none: defaults)".into(), |p| p.display().to_string()),
                "starting Ferrokeeper"
            );
        }
        if explicit.is_none() {
            if let Some((p, from)) = config_from_env() {
                tracing::info!(config = %p.display(), "configuration file from {from}");
            }
        }
        let cfg = ServerConfig::load(config_path.as_deref(), defines).map_err(|e| {
            let place = config_path.as_deref().map(|p| format!(" ({})", p.display())).unwrap_or_default();
            Failure::Config(anyhow::Error::new(e).context(format!("invalid configuration{place}")))
        })?;
        if !jvm_options.is_empty() {
            tracing::info!(
                "ignoring JVM options from SERVER_JVMFLAGS/JVMFLAGS: {} (there is no JVM)",
                jvm_options.join(" ")
            );
        }
        for n in &cfg.notices {
            match n.level {
                NoticeLevel::Info => tracing::info!("{}", n.message),
                NoticeLevel::Warn => tracing::warn!("{}", n.message),
            }
        }
        Ok(cfg)
    };
    match command {
        Command::Serve => serve(load(true)?),
        Command::Version => {
            println!("Ferrokeeper, version {}", ferrokeeper::admin::VERSION);
            Ok(())
        }
        Command::Import { zk_data_dir, zk_data_log_dir, force } => {
            let cfg = load(false)?;
            Ok(import(&cfg, &zk_data_dir, zk_data_log_dir.as_deref().unwrap_or(&zk_data_dir), force)?)
        }
        Command::Export { out } => Ok(export(&load(false)?, &out)?),
        Command::Log { what: DumpCommand::Dump { file, .. } } => {
            default_sigpipe();
            Ok(dump_log(&file)?)
        }
        Command::Snapshot { what: DumpCommand::Dump { file, data } } => {
            default_sigpipe();
            Ok(dump_snapshot(&file, data)?)
        }
    }
}

fn serve(cfg: ServerConfig) -> Result<(), Failure> {
    if cfg.is_distributed() {
        let ids: Vec<String> = cfg.servers.iter().map(|s| s.id.to_string()).collect();
        tracing::info!(servers = %ids.join(","), myid = cfg.server_id, "replicated mode: joining an ensemble");
    }
    tracing::info!(
        client = %std::net::SocketAddr::new(cfg.client_port_address, cfg.client_port),
        data_dir = %cfg.data_dir.display(),
        data_log_dir = %cfg.data_log_dir.display(),
        tick_time_ms = cfg.tick_time_ms,
        session_timeout_ms = format_args!("{}..{}", cfg.min_session_timeout_ms, cfg.max_session_timeout_ms),
        max_client_cnxns = cfg.max_client_cnxns,
        snap_count = cfg.snap_count,
        snap_retain_count = cfg.snap_retain_count,
        prealloc_kib = cfg.prealloc_bytes / 1024,
        jute_max_buffer = cfg.jute_max_buffer,
        four_letter_words = %match &cfg.four_letter_whitelist {
            ferrokeeper::config::FourLetterWhitelist::All => "*".to_owned(),
            ferrokeeper::config::FourLetterWhitelist::Only(w) => w.iter().cloned().collect::<Vec<_>>().join(","),
        },
        extended_types = cfg.extended_types_enabled,
        skip_acl = cfg.skip_acl,
        enforce_quota = cfg.enforce_quota,
        super_digest = cfg.super_digest.is_some(),
        reconfig_enabled = cfg.reconfig_enabled,
        server_id = cfg.server_id,
        "configuration"
    );
    let drain_limit = Duration::from_millis(cfg.shutdown_timeout_ms);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut server = ferrokeeper::start(cfg).await.context("cannot start")?;
        tracing::info!(addr = %server.local_addr, "serving clients");
        let why = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            r = &mut server.task => {
                r.context("the accept loop failed")?;
                return Err(Failure::Other(anyhow::anyhow!("the accept loop stopped")));
            }
        };
        tracing::info!(
            signal = why,
            limit_ms = drain_limit.as_millis() as u64,
            "shutting down: no new connections or requests; in-flight writes are finishing"
        );
        let started = Instant::now();
        let drained = tokio::select! {
            ok = server.shutdown(drain_limit) => ok,
            _ = term.recv() => { tracing::warn!("second signal: stopping without waiting"); false }
            _ = int.recv() => { tracing::warn!("second signal: stopping without waiting"); false }
        };
        // Let connection writers put the last replies on the wire.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if drained {
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "shutdown complete: every acknowledged write is on disk"
            );
        } else {
            tracing::warn!(
                ms = started.elapsed().as_millis() as u64,
                "shutdown did not drain in time: writes still in flight were not acknowledged (every acknowledged \
                 write is on disk)"
            );
        }
        Ok::<(), Failure>(())
    })?;
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}

fn import(cfg: &ServerConfig, zk_data_dir: &Path, zk_log_dir: &Path, force: bool) -> anyhow::Result<()> {
    let ours = recovery::has_own_files(cfg);
    if ours && !force {
        bail!(
            "{} already holds Ferrokeeper state; use --force to replace it (its snapshots and logs are moved to \
             a backup directory)",
            cfg.data_dir.display()
        );
    }
    if ours {
        let backup = cfg.data_dir.join(format!("ferrokeeper-backup-{}", std::process::id()));
        std::fs::create_dir_all(&backup)?;
        for dir in [&cfg.data_dir, &cfg.data_log_dir] {
            for e in std::fs::read_dir(dir)?.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if (name.starts_with("snapshot.") || name.starts_with("log.")) && name.len() > 16 {
                    std::fs::rename(e.path(), backup.join(&name))?;
                }
            }
        }
        eprintln!("moved existing Ferrokeeper files to {}", backup.display());
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let zxid = recovery::import_zookeeper(cfg, zk_data_dir, zk_log_dir)?;
    println!("imported {} into {} at zxid 0x{zxid:x}", zk_data_dir.display(), cfg.data_dir.display());
    Ok(())
}

fn export(cfg: &ServerConfig, out: &Path) -> anyhow::Result<()> {
    let rec = recovery::recover(cfg)?;
    let state = recovery::to_zookeeper(&rec.tree, &rec.sessions);
    let dir = out.join("version-2");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(zkformat::snapshot_file_name(state.last_zxid));
    std::fs::write(&path, zkformat::write_snapshot(&state))?;
    std::fs::File::open(&path)?.sync_all()?;
    println!(
        "wrote {} ({} znodes, {} sessions, zxid 0x{:x})",
        path.display(),
        state.nodes.len(),
        state.sessions.len(),
        state.last_zxid
    );
    Ok(())
}

fn show_bytes(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
            _ => format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        },
    }
}

fn dump_log(file: &Path) -> anyhow::Result<()> {
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
    if bytes.starts_with(b"FKLG") {
        let txnlog::SegmentDump { first_zxid: first, records, bad } = txnlog::read_segment(file)?;
        println!("Ferrokeeper log segment {name}: first zxid 0x{first:x}, {} entries", records.len());
        for r in &records {
            match txnlog::entry::decode(&r.payload) {
                Ok((zxid, p)) => println!(
                    "0x{zxid:x} session:0x{:x} cxid:0x{:x} time:{} {:?}",
                    p.session_id, p.cxid, p.time_ms, p.op
                ),
                Err(e) => println!("0x{:x} undecodable: {e}", r.zxid),
            }
        }
        if let Some((off, reason)) = bad {
            println!("END: bad record at offset {off}: {reason}");
        }
        return Ok(());
    }
    let log =
        zkformat::read_log_full(&bytes).with_context(|| format!("{} is not a log we can read", file.display()))?;
    println!("ZooKeeper transaction log {name}: {} txns", log.txns.len());
    for t in &log.txns {
        let h = &t.header;
        println!(
            "0x{:x} session:0x{:x} cxid:0x{:x} time:{} type:{} {:?}",
            h.zxid, h.client_id, h.cxid, h.time, h.txn_type, t.body
        );
    }
    println!("END: {:?}", log.end);
    Ok(())
}

fn dump_snapshot(file: &Path, data: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
    // ZooKeeper snapshots: nodes whose ACL id the ACL table lacks (fuzzy).
    let mut unknown_acls = std::collections::HashMap::new();
    let (zxid, sessions, nodes) = if bytes.starts_with(b"FKSN") {
        let s = snapshot::read(file)?;
        println!("Ferrokeeper snapshot {}", file.display());
        (s.zxid, s.sessions, s.nodes.into_iter().map(|n| (n.path, n.data, n.acl.to_vec(), n.stat)).collect::<Vec<_>>())
    } else {
        let s = zkformat::read_snapshot_full(&bytes)
            .with_context(|| format!("{} is not a snapshot we can read", file.display()))?;
        println!("ZooKeeper snapshot {}", file.display());
        unknown_acls.extend(s.unknown_acls);
        let s = s.state;
        (s.last_zxid, s.sessions, s.nodes.into_iter().map(|n| (n.path, n.data, n.acl, n.stat)).collect())
    };
    println!("zxid 0x{zxid:x}, {} znodes, {} sessions", nodes.len(), sessions.len());
    for (path, d, acl, st) in &nodes {
        println!("{path}");
        println!(
            "  cZxid = 0x{:x}\n  ctime = {}\n  mZxid = 0x{:x}\n  mtime = {}\n  pZxid = 0x{:x}\n  cversion = {}\n  dataVersion = {}\n  aclVersion = {}\n  ephemeralOwner = 0x{:x}\n  dataLength = {}",
            st.czxid, st.ctime, st.mzxid, st.mtime, st.pzxid, st.cversion, st.version, st.aversion,
            st.ephemeral_owner, d.as_ref().map_or(0, |b| b.len())
        );
        if let Some(id) = unknown_acls.get(path) {
            println!("  acl = <ACL id {id}, not in the ACL table: a fuzzy snapshot; the txn log after it has the ACL>");
        } else {
            let acls: Vec<String> = acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms)).collect();
            println!("  acl = [{}]", acls.join(", "));
        }
        if data {
            println!("  data = {}", show_bytes(d));
        }
    }
    println!("Session Details (sid, timeout, ephemeralCount):");
    for (id, t) in &sessions {
        let count = nodes.iter().filter(|n| n.3.ephemeral_owner == *id).count();
        println!("0x{id:x}, {t}, {count}");
    }
    Ok(())
}

/// Dumps are often piped into `head`: let a closed pipe end the process
/// quietly, as for any Unix filter, instead of a write error.
fn default_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // that writes to stdout exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defines_are_split_out_of_the_command_line() {
        let (args, defines) =
            split_defines(strings(&["ferrokeeper", "-Da=1", "zoo.cfg", "-Db", "-Dc=x=y", "-D", "serve"]).into_iter());
        assert_eq!(args, strings(&["ferrokeeper", "zoo.cfg", "-D", "serve"]));
        let pairs: Vec<(&str, &str)> = defines.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, vec![("a", "1"), ("b", ""), ("c", "x=y")]);
    }

    #[test]
    fn config_location_follows_zookeepers_scripts() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(config_location(p("/etc/zk"), None).unwrap().0, PathBuf::from("/etc/zk/zoo.cfg"));
        assert_eq!(config_location(p("/etc/zk"), p("other.cfg")).unwrap().0, PathBuf::from("/etc/zk/other.cfg"));
        assert_eq!(config_location(p("/etc/zk"), p("/srv/zoo.cfg")).unwrap().0, PathBuf::from("/srv/zoo.cfg"));
        assert_eq!(config_location(None, p("rel.cfg")).unwrap().0, PathBuf::from("rel.cfg"));
        assert!(config_location(None, None).is_none());
    }

    #[test]
    fn log4j_levels() {
        assert_eq!(log4j_level("info"), Some(LevelFilter::INFO));
        assert_eq!(log4j_level(" FATAL "), Some(LevelFilter::ERROR));
        assert_eq!(log4j_level("ALL"), Some(LevelFilter::TRACE));
        assert_eq!(log4j_level("OFF"), Some(LevelFilter::OFF));
        assert_eq!(log4j_level("verbose"), None);
    }

    #[test]
    fn errors_read_as_one_line_without_repeats() {
        let io = std::io::Error::other("Address already in use");
        let e = anyhow::Error::new(io).context("cannot bind 1.2.3.4:5: Address already in use").context("cannot start");
        assert_eq!(describe(&e), "cannot start: cannot bind 1.2.3.4:5: Address already in use");
    }
}
