//! The data tree as openraft's state machine, and its snapshots.
//!
//! - Inputs: committed entries, in log order (from openraft); snapshots
//!   built here or received from the leader.
//! - Outputs: [`CommitMsg`]s to the core, which owns the tree and applies
//!   them (`tree::apply` is deterministic, so every replica computes the
//!   same tree); snapshot files.
//! - Files in `dataDir/raft/`: `snapshot.<zxid, 16 hex>` in the standalone
//!   snapshot format (the zxid of the last transaction in it; its Raft
//!   index is `quorum::index_of(zxid)`), and next to each
//!   `snapshot.<zxid>.meta`: postcard(openraft's `SnapshotMeta`: last log
//!   id, membership) + CRC32C. A snapshot counts only with a valid meta
//!   file; the meta is written after the snapshot, each atomically.
//! - Invariants:
//!   - entries reach the core in log order, through the one bounded commit
//!     channel; a snapshot request travels the same channel, so the state
//!     the core hands over is exactly the state after `last_applied`;
//!   - `apply` returns once the core has the entries queued, not applied:
//!     nothing reads the state through openraft, and every reader (client
//!     reads, syncs, snapshots) is ordered behind them on the core;
//!   - an entry proposed by this process carries its local waiter's
//!     reference; entries from other servers, or from an earlier run of this
//!     one, carry none (`boot` tells runs apart).

use super::{config_text, index_of, log_store::storage_err, zxid_of, LogId, PeerNode, StorageError, TypeConfig};
use crate::pipeline::commit::{CommitMsg, InstalledState};
use crate::pipeline::propose::Committed;
use crate::snapshot::{self, LoadedSnapshot, SnapshotSource};
use crate::tree::{DataTree, TreeConfig};
use crate::txnlog::{entry, sync_dir};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, SnapshotMeta, StoredMembership};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, oneshot};

pub type Meta = SnapshotMeta<u64, PeerNode>;

const META_MAGIC: &[u8; 4] = b"FKSM";

/// The snapshot files of a quorum member.
pub struct SnapshotStore {
    dir: PathBuf,
    retain: usize,
    tree_config: TreeConfig,
    /// Do file work on the calling task instead of tokio's blocking pool
    /// (the simulation, whose clock must not run while a thread works).
    inline_io: bool,
    /// The newest complete snapshot, and its zxid.
    current: Mutex<Option<(Meta, i64)>>,
}

fn meta_name(zxid: i64) -> String {
    format!("{}.meta", snapshot::snapshot_name(zxid))
}

fn snap_io(e: impl std::fmt::Display) -> StorageError {
    storage_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e)
}

impl SnapshotStore {
    pub fn new(dir: PathBuf, retain: usize, tree_config: TreeConfig, inline_io: bool) -> Self {
        SnapshotStore { dir, retain, tree_config, inline_io, current: Mutex::new(None) }
    }

    /// Runs blocking file work (see `inline_io`).
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, StorageError> {
        if self.inline_io {
            Ok(f())
        } else {
            tokio::task::spawn_blocking(f).await.map_err(snap_io)
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read_meta(&self, zxid: i64) -> Result<Meta, String> {
        let bytes = std::fs::read(self.dir.join(meta_name(zxid))).map_err(|e| e.to_string())?;
        if bytes.len() < 8 || &bytes[..4] != META_MAGIC {
            return Err("not a snapshot meta file".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().expect("4 bytes")) {
            return Err("checksum mismatch".into());
        }
        let meta: Meta = postcard::from_bytes(&body[4..]).map_err(|e| e.to_string())?;
        if meta.last_log_id.map(|l| l.index) != Some(index_of(zxid)) {
            return Err("meta file does not match its snapshot".into());
        }
        Ok(meta)
    }

    fn write_meta(&self, meta: &Meta, zxid: i64) -> std::io::Result<()> {
        let path = self.dir.join(meta_name(zxid));
        let tmp = self.dir.join(format!(".{}.tmp", meta_name(zxid)));
        let mut body = META_MAGIC.to_vec();
        body.extend_from_slice(&postcard::to_stdvec(meta).map_err(std::io::Error::other)?);
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        sync_dir(&self.dir).map_err(std::io::Error::other)
    }

    /// The newest snapshot with a valid meta file, loaded. Damaged or
    /// incomplete ones are skipped with a warning.
    pub fn load_newest(&self) -> Option<(Meta, LoadedSnapshot)> {
        for (zxid, path) in snapshot::list(&self.dir) {
            let meta = match self.read_meta(zxid) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(snapshot = %path.display(), error = %e, "skipping a snapshot without a valid meta file");
                    continue;
                }
            };
            match snapshot::read(&path) {
                Ok(s) if s.zxid == zxid => {
                    *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((meta.clone(), zxid));
                    return Some((meta, s));
                }
                Ok(_) => {
                    tracing::warn!(snapshot = %path.display(), "skipping a snapshot whose zxid differs from its name")
                }
                Err(e) => tracing::warn!(error = %e, "skipping a damaged snapshot"),
            }
        }
        None
    }

    /// Keeps the newest `retain` snapshots and their meta files.
    fn retention(&self) {
        if let Err(e) = snapshot::purge(&self.dir, self.retain) {
            tracing::warn!(error = %e, "snapshot retention failed");
        }
        let kept: std::collections::HashSet<String> =
            snapshot::list(&self.dir).into_iter().map(|(z, _)| meta_name(z)).collect();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("snapshot.") && name.ends_with(".meta") && !kept.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Writes a snapshot of `src` with `meta` (blocking).
    fn write(&self, meta: &Meta, src: &SnapshotSource) -> std::io::Result<PathBuf> {
        let path = snapshot::write(&self.dir, src).map_err(std::io::Error::other)?;
        self.write_meta(meta, src.zxid)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((meta.clone(), src.zxid));
        self.retention();
        Ok(path)
    }

    /// Stores a snapshot received whole from the leader and loads it
    /// (blocking).
    fn install(&self, meta: &Meta, bytes: &[u8]) -> std::io::Result<LoadedSnapshot> {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        let tmp = self.dir.join(".incoming.snapshot.verified.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        let loaded = snapshot::read(&tmp).map_err(std::io::Error::other)?;
        if index_of(loaded.zxid) != index {
            return Err(std::io::Error::other(format!(
                "received snapshot holds zxid 0x{:x}, its meta says log index {index}",
                loaded.zxid
            )));
        }
        let path = self.dir.join(snapshot::snapshot_name(loaded.zxid));
        std::fs::rename(&tmp, &path)?;
        sync_dir(&self.dir).map_err(std::io::Error::other)?;
        self.write_meta(meta, loaded.zxid)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((meta.clone(), loaded.zxid));
        self.retention();
        Ok(loaded)
    }

    fn current(&self) -> Option<(Meta, i64)> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// openraft's state machine: a relay to the core.
pub struct StateMachine {
    my_id: u64,
    boot: u64,
    commits: mpsc::Sender<CommitMsg>,
    last_applied: Option<LogId>,
    membership: StoredMembership<u64, PeerNode>,
    store: Arc<SnapshotStore>,
    incoming: PathBuf,
    /// Whether the entries being applied come from another leader (see
    /// [`stale_line`]).
    #[cfg(feature = "deliberately-stale-follower")]
    following: Arc<std::sync::atomic::AtomicBool>,
}

/// The deliberately broken build's bug (feature
/// `deliberately-stale-follower`, test-only): while a server applies
/// another leader's entries, everything it hands the core arrives 100 ms
/// late, in order. With `sync` answered at once on followers, reads there
/// see a state up to 100 ms old although the write was acknowledged.
#[cfg(feature = "deliberately-stale-follower")]
fn stale_line(out: mpsc::Sender<CommitMsg>, following: Arc<std::sync::atomic::AtomicBool>) -> mpsc::Sender<CommitMsg> {
    let (tx, mut rx) = mpsc::channel::<CommitMsg>(1024);
    tokio::spawn(async move {
        let (tx_timed, mut rx_timed) = mpsc::unbounded_channel::<(tokio::time::Instant, CommitMsg)>();
        tokio::spawn(async move {
            while let Some((at, m)) = rx_timed.recv().await {
                tokio::time::sleep_until(at).await;
                if out.send(m).await.is_err() {
                    return;
                }
            }
        });
        let mut last = tokio::time::Instant::now();
        while let Some(m) = rx.recv().await {
            let lag = if following.load(std::sync::atomic::Ordering::Acquire) { 100 } else { 0 };
            last = last.max(tokio::time::Instant::now() + std::time::Duration::from_millis(lag));
            if tx_timed.send((last, m)).is_err() {
                return;
            }
        }
    });
    tx
}

impl StateMachine {
    /// A state machine whose core holds the state of `meta` (the snapshot
    /// recovery loaded, or nothing).
    pub fn new(
        my_id: u64,
        boot: u64,
        commits: mpsc::Sender<CommitMsg>,
        store: Arc<SnapshotStore>,
        meta: Option<&Meta>,
    ) -> Self {
        let incoming = store.dir().join(".incoming.snapshot.tmp");
        #[cfg(feature = "deliberately-stale-follower")]
        let following = Arc::new(std::sync::atomic::AtomicBool::new(false));
        #[cfg(feature = "deliberately-stale-follower")]
        let commits = stale_line(commits, following.clone());
        StateMachine {
            #[cfg(feature = "deliberately-stale-follower")]
            following,
            my_id,
            boot,
            commits,
            last_applied: meta.and_then(|m| m.last_log_id),
            membership: meta.map(|m| m.last_membership.clone()).unwrap_or_default(),
            store,
            incoming,
        }
    }

    async fn to_core(&self, msg: CommitMsg) -> Result<(), StorageError> {
        self.commits
            .send(msg)
            .await
            .map_err(|_| storage_err(ErrorSubject::StateMachine, ErrorVerb::Write, "the core has stopped"))
    }
}

/// Builds a snapshot from the state the core handed over.
pub struct SnapshotBuilder {
    source: Option<oneshot::Receiver<SnapshotSource>>,
    meta: Meta,
    store: Arc<SnapshotStore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let rx = self.source.take().ok_or_else(|| snap_io("snapshot builder used twice"))?;
        let src = rx.await.map_err(|_| snap_io("the core has stopped"))?;
        let want = self.meta.last_log_id.map_or(0, |l| l.index);
        if index_of(src.zxid) != want {
            return Err(snap_io(format!("core state at zxid 0x{:x}, expected log index {want}", src.zxid)));
        }
        let (store, meta) = (self.store.clone(), self.meta.clone());
        let started = std::time::Instant::now();
        let path = self.store.blocking(move || store.write(&meta, &src)).await?.map_err(snap_io)?;
        let ms = started.elapsed().as_millis() as u64;
        crate::admin::metrics::record_snapshot(ms);
        tracing::info!(snapshot = %path.display(), ms, "snapshot taken");
        let file = tokio::fs::File::open(&path).await.map_err(snap_io)?;
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(file) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<u64, PeerNode>), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = super::Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for e in entries {
            #[cfg(feature = "deliberately-stale-follower")]
            self.following.store(e.log_id.leader_id.node_id != self.my_id, std::sync::atomic::Ordering::Release);
            let zxid = zxid_of(e.log_id.index, 0);
            let msg = match e.payload {
                EntryPayload::Blank => CommitMsg::Noop { zxid, config: None },
                EntryPayload::Normal(batch) => {
                    let mine = batch.origin == self.my_id && batch.boot == self.boot;
                    if batch.txns.is_empty() {
                        self.to_core(CommitMsg::Noop { zxid, config: None }).await?;
                    }
                    for (i, txn) in batch.txns.into_iter().enumerate() {
                        let (_, mut proposal) = entry::decode(&txn.entry).map_err(|err| {
                            storage_err(ErrorSubject::Apply(e.log_id), ErrorVerb::Read, format!("undecodable: {err}"))
                        })?;
                        proposal.local_ref = if mine { txn.local_ref } else { 0 };
                        self.to_core(CommitMsg::Txn(Committed { zxid: zxid_of(e.log_id.index, i), proposal })).await?;
                    }
                    self.to_core(CommitMsg::EntryApplied { index: e.log_id.index }).await?;
                    self.last_applied = Some(e.log_id);
                    out.push(());
                    continue;
                }
                EntryPayload::Membership(m) => {
                    // ZooKeeper has no joint configurations: the config node
                    // shows the uniform ones only.
                    let config = (m.get_joint_config().len() <= 1).then(|| config_text(&m, zxid));
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    CommitMsg::Noop { zxid, config }
                }
            };
            self.last_applied = Some(e.log_id);
            self.to_core(msg).await?;
            out.push(());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let (tx, rx) = oneshot::channel();
        // Ordered behind every entry sent so far: the core answers with the
        // state after `last_applied`.
        let source = match self.commits.send(CommitMsg::Snapshot(tx)).await {
            Ok(()) => Some(rx),
            Err(_) => None,
        };
        let last = self.last_applied;
        let snapshot_id = format!(
            "{}-{}-{}",
            last.map_or(0, |l| l.leader_id.term),
            last.map_or(0, |l| l.index),
            crate::pipeline::wall_clock_ms()
        );
        let meta = Meta { last_log_id: last, last_membership: self.membership.clone(), snapshot_id };
        SnapshotBuilder { source, meta, store: self.store.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.incoming)
            .await
            .map_err(snap_io)?;
        Ok(Box::new(f))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<tokio::fs::File>) -> Result<(), StorageError> {
        let mut f = *snapshot;
        f.seek(std::io::SeekFrom::Start(0)).await.map_err(snap_io)?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).await.map_err(snap_io)?;
        drop(f);
        let (store, m) = (self.store.clone(), meta.clone());
        let tree_config = self.store.tree_config;
        let state = self
            .store
            .blocking(move || -> std::io::Result<InstalledState> {
                let loaded = store.install(&m, &bytes)?;
                let tree = DataTree::restore(tree_config, loaded.zxid, loaded.nodes).map_err(std::io::Error::other)?;
                Ok(InstalledState { tree, sessions: loaded.sessions, index: index_of(loaded.zxid) })
            })
            .await?
            .map_err(snap_io)?;
        let _ = tokio::fs::remove_file(&self.incoming).await;
        self.to_core(CommitMsg::Install(Box::new(state))).await?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some((meta, zxid)) = self.store.current() else {
            return Ok(None);
        };
        let path = self.store.dir().join(snapshot::snapshot_name(zxid));
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(Snapshot { meta, snapshot: Box::new(file) })),
            Err(e) => Err(storage_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e)),
        }
    }
}
