//! The `ferrokeeper` command: serve (default), import/export Apache
//! ZooKeeper data, and dump logs and snapshots.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ferrokeeper::config::ServerConfig;
use ferrokeeper::snapshot::{self, recovery, zkformat};
use ferrokeeper::txnlog;
use std::path::{Path, PathBuf};

/// A ZooKeeper-compatible coordination server.
///
/// ZooKeeper system properties are accepted as `-Dkey=value` anywhere on the
/// command line (e.g. `-Djute.maxbuffer=4194304`).
#[derive(Parser, Debug)]
#[command(name = "ferrokeeper", version, about)]
struct Cli {
    /// Path of a ZooKeeper zoo.cfg. Without one, a standalone server listens
    /// on 127.0.0.1:2181.
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

fn split_defines() -> (Vec<String>, Vec<(String, String)>) {
    let mut args = Vec::new();
    let mut defines = Vec::new();
    for a in std::env::args() {
        match a.strip_prefix("-D").and_then(|kv| kv.split_once('=')) {
            Some((k, v)) => defines.push((k.to_owned(), v.to_owned())),
            None => args.push(a),
        }
    }
    (args, defines)
}

fn main() -> anyhow::Result<()> {
    let (args, mut defines) = split_defines();
    // ZooKeeper's scripts pass properties through these variables.
    for var in ["SERVER_JVMFLAGS", "JVMFLAGS"] {
        if let Ok(flags) = std::env::var(var) {
            for f in flags.split_whitespace() {
                if let Some((k, v)) = f.strip_prefix("-D").and_then(|kv| kv.split_once('=')) {
                    defines.insert(0, (k.to_owned(), v.to_owned()));
                }
            }
        }
    }
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config_path = cli.config.or(cli.config_positional);
    let load = || ServerConfig::load(config_path.as_deref(), &defines).context("invalid configuration");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(load()?),
        Command::Import { zk_data_dir, zk_data_log_dir, force } => {
            let cfg = load()?;
            import(&cfg, &zk_data_dir, zk_data_log_dir.as_deref().unwrap_or(&zk_data_dir), force)
        }
        Command::Export { out } => export(&load()?, &out),
        Command::Log { what: DumpCommand::Dump { file, .. } } => dump_log(&file),
        Command::Snapshot { what: DumpCommand::Dump { file, data } } => dump_snapshot(&file, data),
    }
}

fn serve(cfg: ServerConfig) -> anyhow::Result<()> {
    tracing::info!(
        client_port = cfg.client_port,
        address = %cfg.client_port_address,
        tick_time_ms = cfg.tick_time_ms,
        data_dir = %cfg.data_dir.display(),
        data_log_dir = %cfg.data_log_dir.display(),
        min_session_timeout_ms = cfg.min_session_timeout_ms,
        max_session_timeout_ms = cfg.max_session_timeout_ms,
        snap_count = cfg.snap_count,
        "starting ferrokeeper (standalone)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = ferrokeeper::start(cfg).await.context("cannot start")?;
        tracing::info!(addr = %server.local_addr, "serving clients");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            r = server.task => { r.context("accept loop failed")?; }
        }
        // Every acknowledged write is already on disk (the log syncs before
        // a reply leaves), so stopping needs no flush of its own.
        tracing::info!("shutting down");
        anyhow::Ok(())
    })?;
    Ok(())
}

fn import(cfg: &ServerConfig, zk_data_dir: &Path, zk_log_dir: &Path, force: bool) -> anyhow::Result<()> {
    let ours = !snapshot::list(&cfg.data_dir).is_empty()
        || std::fs::read_dir(&cfg.data_log_dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("log."));
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
    let (zxid, sessions, nodes) = if bytes.starts_with(b"FKSN") {
        let s = snapshot::read(file)?;
        println!("Ferrokeeper snapshot {}", file.display());
        (s.zxid, s.sessions, s.nodes.into_iter().map(|n| (n.path, n.data, n.acl, n.stat)).collect::<Vec<_>>())
    } else {
        let s = zkformat::read_snapshot(&bytes)
            .with_context(|| format!("{} is not a snapshot we can read", file.display()))?;
        println!("ZooKeeper snapshot {}", file.display());
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
        let acls: Vec<String> = acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms)).collect();
        println!("  acl = [{}]", acls.join(", "));
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
