//! Start-up recovery: the newest valid snapshot, then every logged
//! transaction after it, applied with the same deterministic `apply` that
//! served them. When dataDir holds only Apache ZooKeeper's files, they are
//! imported first (and a Ferrokeeper snapshot of the result is written, so
//! the import happens once).
//!
//! - Inputs: dataDir (snapshots, ZooKeeper's `version-2/`), dataLogDir (log).
//! - Outputs: the tree, the session table and the open [`TxnLog`].
//! - Invariants: recovery never drops a committed transaction silently: a
//!   torn log tail is truncated (it was never acknowledged), any other damage
//!   stops the start with the file and offset named (see [`crate::txnlog`]).

use super::{zkformat, LoadedSnapshot, SnapError, SnapshotSource};
use crate::config::ServerConfig;
use crate::pipeline::propose::Proposal;
use crate::tree::{DataTree, PersistedNode, TreeConfig, TxnContext, WriteOp};
use crate::txnlog::{entry, LogConfig, LogError, TxnLog};
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Snapshot(#[from] SnapError),
    #[error("cannot import the ZooKeeper data directory: {0}")]
    Import(#[from] zkformat::ZkFormatError),
    #[error("{0}")]
    Invalid(String),
    #[error("undecodable log entry at zxid 0x{zxid:x}: {reason}")]
    Entry { zxid: i64, reason: String },
}

pub struct Recovered {
    pub tree: DataTree,
    /// Live sessions and their timeouts.
    pub sessions: Vec<(i64, i32)>,
    pub log: TxnLog,
    /// The zxid of the snapshot recovery started from (0 for none).
    pub snapshot_zxid: i64,
    pub replayed: usize,
    /// Whether this start imported an Apache ZooKeeper data directory.
    pub imported: bool,
}

pub fn tree_config(cfg: &ServerConfig) -> TreeConfig {
    TreeConfig { extended_types: cfg.extended_types_enabled, skip_acl: cfg.skip_acl, enforce_quota: cfg.enforce_quota }
}

/// Applies one replayed proposal and keeps the session table in step.
pub fn apply_replayed(tree: &mut DataTree, sessions: &mut BTreeMap<i64, i32>, zxid: i64, p: &Proposal) {
    let ctx = TxnContext { session_id: p.session_id, zxid, time_ms: p.time_ms, auth: &p.auth, rules: p.rules };
    tree.apply(&ctx, &p.op);
    match p.op {
        WriteOp::CreateSession { timeout_ms } => {
            sessions.insert(p.session_id, timeout_ms);
        }
        WriteOp::CloseSession => {
            sessions.remove(&p.session_id);
        }
        _ => {}
    }
}

/// Whether `dir` holds an Apache ZooKeeper data directory (`version-2/`
/// with snapshots or logs).
pub fn has_zookeeper_files(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("version-2"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("snapshot.") || n.starts_with("log.")))
}

/// Whether dataDir/dataLogDir already hold Ferrokeeper snapshots or logs.
pub fn has_own_files(cfg: &ServerConfig) -> bool {
    let any = |dir: &Path, prefix: &str| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(prefix) && n.len() == prefix.len() + 16))
    };
    any(&cfg.data_dir, "snapshot.") || any(&cfg.data_log_dir, "log.")
}

/// Reads an Apache ZooKeeper data directory and writes it as a Ferrokeeper
/// snapshot in `cfg.data_dir`. Returns the imported zxid. Nodes whose ACL
/// neither the snapshot nor the logs give are imported with
/// [`zkformat::unknown_acl`] (only a super user may use them) and logged.
pub fn import_zookeeper(cfg: &ServerConfig, zk_data_dir: &Path, zk_log_dir: &Path) -> Result<i64, RecoveryError> {
    let report = zkformat::load_data_dir_report(zk_data_dir, zk_log_dir)?;
    for (path, id) in &report.unresolved_acls {
        tracing::warn!(
            path = %path,
            acl_id = id,
            "the ZooKeeper snapshot refers to an ACL id that is neither in its ACL table nor set by the txn logs \
             after it (ZooKeeper could not resolve it either): imported with no permission for anyone; a super \
             user can set the node's ACL"
        );
    }
    let state = report.state;
    let nodes: Vec<PersistedNode> = state
        .nodes
        .into_iter()
        .map(|n| PersistedNode { path: n.path, data: n.data, acl: std::sync::Arc::new(n.acl), stat: n.stat })
        .collect();
    let tree = DataTree::restore(tree_config(cfg), state.last_zxid, nodes).map_err(RecoveryError::Invalid)?;
    let src = SnapshotSource { zxid: state.last_zxid, sessions: state.sessions, nodes: tree.share_nodes() };
    super::write(&cfg.data_dir, &src)?;
    Ok(state.last_zxid)
}

pub fn recover(cfg: &ServerConfig) -> Result<Recovered, RecoveryError> {
    let mut imported = false;
    if !has_own_files(cfg) && has_zookeeper_files(&cfg.data_dir) {
        tracing::info!(
            data_dir = %cfg.data_dir.display(),
            "dataDir holds an Apache ZooKeeper data directory and no Ferrokeeper state: importing it \
             (ZooKeeper's files are left untouched)"
        );
        let zxid = import_zookeeper(cfg, &cfg.data_dir, &cfg.data_log_dir)?;
        tracing::info!(zxid = format_args!("0x{zxid:x}"), "imported ZooKeeper data; zxids continue from here");
        imported = true;
    }
    let tcfg = tree_config(cfg);
    let (mut tree, mut sessions, snapshot_zxid) = match super::load_newest(&cfg.data_dir) {
        Some(LoadedSnapshot { zxid, sessions, nodes, path }) => {
            tracing::info!(snapshot = %path.display(), nodes = nodes.len(), "loading snapshot");
            let tree = DataTree::restore(tcfg, zxid, nodes)
                .map_err(|e| RecoveryError::Invalid(format!("{}: {e}", path.display())))?;
            (tree, sessions.into_iter().collect::<BTreeMap<_, _>>(), zxid)
        }
        None => (DataTree::new(tcfg), BTreeMap::new(), 0),
    };
    let (log, entries) = TxnLog::open(LogConfig::new(cfg.data_log_dir.clone()), snapshot_zxid)?;
    let replayed = entries.len();
    for e in entries {
        let (zxid, p) =
            entry::decode(&e.payload).map_err(|err| RecoveryError::Entry { zxid: e.zxid, reason: err.to_string() })?;
        apply_replayed(&mut tree, &mut sessions, zxid, &p);
    }
    Ok(Recovered { tree, sessions: sessions.into_iter().collect(), log, snapshot_zxid, replayed, imported })
}

/// The state as Apache ZooKeeper's snapshot structure, for export.
pub fn to_zookeeper(tree: &DataTree, sessions: &[(i64, i32)]) -> zkformat::ZkState {
    zkformat::ZkState {
        last_zxid: tree.last_zxid(),
        nodes: tree
            .persisted_nodes()
            .into_iter()
            .map(|n| zkformat::ZkNode { path: n.path, data: n.data, acl: n.acl.to_vec(), stat: n.stat })
            .collect(),
        sessions: sessions.to_vec(),
        dbid: -1,
    }
}
