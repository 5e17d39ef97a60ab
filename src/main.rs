//! The `ferrokeeper` command: start a server from a zoo.cfg.

use anyhow::Context;
use clap::Parser;
use ferrokeeper::config::ServerConfig;
use std::path::PathBuf;

/// A ZooKeeper-compatible coordination server.
///
/// ZooKeeper system properties are accepted as `-Dkey=value` anywhere on the
/// command line (e.g. `-Djute.maxbuffer=4194304`).
#[derive(Parser, Debug)]
#[command(name = "ferrokeeper", version, about)]
struct Cli {
    /// Path of a ZooKeeper zoo.cfg. Without one, a standalone server listens
    /// on 127.0.0.1:2181.
    #[arg(long = "config", short = 'c', value_name = "ZOO_CFG")]
    config: Option<PathBuf>,
    /// The zoo.cfg path, as ZooKeeper's own launchers pass it.
    #[arg(value_name = "ZOO_CFG", conflicts_with = "config")]
    config_positional: Option<PathBuf>,
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
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config_path = cli.config.or(cli.config_positional);
    let cfg = ServerConfig::load(config_path.as_deref(), &defines).context("invalid configuration")?;
    tracing::info!(
        client_port = cfg.client_port,
        address = %cfg.client_port_address,
        tick_time_ms = cfg.tick_time_ms,
        data_dir = %cfg.data_dir.display(),
        min_session_timeout_ms = cfg.min_session_timeout_ms,
        max_session_timeout_ms = cfg.max_session_timeout_ms,
        "starting ferrokeeper (standalone, state in memory)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = ferrokeeper::start(cfg).await.context("cannot bind the client port")?;
        tracing::info!(addr = %server.local_addr, "serving clients");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            r = server.task => { r.context("accept loop failed")?; }
        }
        tracing::info!("shutting down");
        anyhow::Ok(())
    })?;
    Ok(())
}
