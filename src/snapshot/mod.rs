//! Snapshots of the data tree and the session table, and Apache ZooKeeper's
//! on-disk formats ([`zkformat`], for migration from and rollback to
//! ZooKeeper).
//!
//! - Inputs: the tree's nodes, shared (`Arc`) at one zxid, and the session
//!   table at that zxid.
//! - Outputs: `snapshot.<zxid, 16 hex>` files in dataDir; on start, the
//!   newest valid one.
//! - Invariants:
//!   - a snapshot is exactly the state at its zxid: the core hands over the
//!     nodes as shared pointers between two applies, and a later write copies
//!     a node before changing it (copy-on-write per node), so writing the file
//!     never stops the pipeline and never sees a half-applied transaction.
//!     (Not fuzzy, so replay after it needs no idempotence.)
//!   - a file is written under a temporary name, fsynced, renamed and the
//!     directory fsynced: a crash leaves either the old set or the new file;
//!   - a CRC32C over the whole content guards it; a damaged snapshot is
//!     skipped (with a warning) in favour of an older one plus more log.
//!
//! Format: `FKSN`, version (u32), zxid (i64), session count (i32), then
//! `(session id i64, timeout i32)` pairs, node count (i64), then for each
//! node its path (ustring), data (buffer, -1 = null), ACL (vector) and
//! persisted stat, all in Jute encoding; last the CRC32C (u32) of everything
//! before it.

pub mod recovery;
pub mod zkformat;

use crate::tree::{Node, PersistedNode};
use crate::txnlog::sync_dir;
use jute::data::{Acl, StatPersisted};
use jute::{Jute, Reader};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

const MAGIC: &[u8; 4] = b"FKSN";
const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum SnapError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid snapshot: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Dir(#[from] crate::txnlog::LogError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SnapError + '_ {
    move |source| SnapError::Io { path: path.to_path_buf(), source }
}

pub fn snapshot_name(zxid: i64) -> String {
    format!("snapshot.{:016x}", zxid as u64)
}

fn parse_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix("snapshot.")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok().map(|v| v as i64))?
}

/// The state to write: taken in the core between two applies.
pub struct SnapshotSource {
    pub zxid: i64,
    pub sessions: Vec<(i64, i32)>,
    pub nodes: Vec<(Arc<str>, Arc<Node>)>,
}

/// A snapshot read back.
#[derive(Debug)]
pub struct LoadedSnapshot {
    pub zxid: i64,
    pub path: PathBuf,
    pub sessions: Vec<(i64, i32)>,
    pub nodes: Vec<PersistedNode>,
}

/// CRC32C over everything written through it.
struct CrcWriter<W: Write> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `snapshot.<zxid>` into `dir` durably; returns its path.
pub fn write(dir: &Path, src: &SnapshotSource) -> Result<PathBuf, SnapError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(snapshot_name(src.zxid));
    let tmp = dir.join(format!(".{}.tmp", snapshot_name(src.zxid)));
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = CrcWriter { inner: BufWriter::with_capacity(1 << 20, file), crc: 0 };
    let mut buf = Vec::with_capacity(4096);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&VERSION.to_be_bytes());
    src.zxid.write_to(&mut buf);
    (src.sessions.len() as i32).write_to(&mut buf);
    for (id, timeout) in &src.sessions {
        id.write_to(&mut buf);
        timeout.write_to(&mut buf);
    }
    (src.nodes.len() as i64).write_to(&mut buf);
    w.write_all(&buf).map_err(io_err(&tmp))?;
    for (path, node) in &src.nodes {
        buf.clear();
        path.to_string().write_to(&mut buf);
        node.data.write_to(&mut buf);
        node.acl.as_ref().write_to(&mut buf);
        node.stat.write_to(&mut buf);
        w.write_all(&buf).map_err(io_err(&tmp))?;
    }
    let crc = w.crc;
    w.inner.write_all(&crc.to_be_bytes()).map_err(io_err(&tmp))?;
    let file = w.inner.into_inner().map_err(|e| SnapError::Io { path: tmp.clone(), source: e.into_error() })?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Writes a snapshot on its own thread, then applies retention; `purge_log`
/// gets the zxid of the oldest snapshot kept (log segments before it can go).
/// `in_progress` is cleared when done, whatever the outcome.
pub fn write_in_background(
    dir: PathBuf,
    retain: usize,
    src: SnapshotSource,
    in_progress: Arc<std::sync::atomic::AtomicBool>,
    purge_log: impl FnOnce(i64) + Send + 'static,
) {
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        match write(&dir, &src) {
            Ok(path) => {
                let ms = started.elapsed().as_millis() as u64;
                crate::admin::metrics::record_snapshot(ms);
                tracing::info!(snapshot = %path.display(), nodes = src.nodes.len(), ms, "snapshot taken");
                drop(src);
                match purge(&dir, retain) {
                    Ok(Some(oldest)) => purge_log(oldest),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "snapshot retention failed"),
                }
            }
            Err(e) => tracing::error!(error = %e, "snapshot failed; the log still holds every transaction"),
        }
        in_progress.store(false, std::sync::atomic::Ordering::Release);
    });
}

/// Reads and verifies one snapshot file.
pub fn read(path: &Path) -> Result<LoadedSnapshot, SnapError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let invalid = |reason: String| SnapError::Invalid { path: path.to_path_buf(), reason };
    if bytes.len() < 4 + 4 + 8 + 4 + 8 + 4 || &bytes[..4] != MAGIC {
        return Err(invalid("not a Ferrokeeper snapshot".into()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().unwrap()) {
        return Err(invalid("checksum mismatch".into()));
    }
    let version = u32::from_be_bytes(body[4..8].try_into().unwrap());
    if version != VERSION {
        return Err(invalid(format!("unknown version {version}")));
    }
    let r = &mut Reader::new(&body[8..]);
    let dec = |e: jute::DecodeError| invalid(e.to_string());
    let zxid = r.read_i64().map_err(dec)?;
    let n_sessions = r.read_count().map_err(dec)?;
    let mut sessions = Vec::with_capacity(n_sessions);
    for _ in 0..n_sessions {
        sessions.push((r.read_i64().map_err(dec)?, r.read_i32().map_err(dec)?));
    }
    let n_nodes = r.read_i64().map_err(dec)?;
    if n_nodes < 0 || n_nodes as usize > r.remaining() {
        return Err(invalid(format!("bad node count {n_nodes}")));
    }
    let mut nodes = Vec::with_capacity(n_nodes as usize);
    for _ in 0..n_nodes {
        let path = String::read_from(r).map_err(dec)?;
        let data = Option::<Vec<u8>>::read_from(r).map_err(dec)?;
        let acl = Vec::<Acl>::read_from(r).map_err(dec)?;
        let stat = StatPersisted::read_from(r).map_err(dec)?;
        nodes.push(PersistedNode { path, data, acl, stat });
    }
    if r.remaining() != 0 {
        return Err(invalid(format!("{} bytes after the last node", r.remaining())));
    }
    Ok(LoadedSnapshot { zxid, path: path.to_path_buf(), sessions, nodes })
}

/// Snapshot files in `dir`, newest first.
pub fn list(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(parse_name).map(|z| (z, e.path())))
        .collect();
    out.sort_by_key(|(z, _)| std::cmp::Reverse(*z));
    out
}

/// The newest snapshot that reads back intact; damaged ones are skipped
/// with a warning (the log covers what they held, or recovery stops there).
pub fn load_newest(dir: &Path) -> Option<LoadedSnapshot> {
    for (_, path) in list(dir) {
        match read(&path) {
            Ok(s) => return Some(s),
            Err(e) => tracing::warn!(error = %e, "skipping a damaged snapshot"),
        }
    }
    None
}

/// Keeps the newest `retain` snapshots (at least 1); returns the zxid of
/// the oldest one kept, below which log segments are no longer needed.
pub fn purge(dir: &Path, retain: usize) -> Result<Option<i64>, SnapError> {
    let all = list(dir);
    let retain = retain.max(1);
    let mut removed = false;
    for (_, path) in all.iter().skip(retain) {
        fs::remove_file(path).map_err(io_err(path))?;
        removed = true;
    }
    // Temporary files of snapshots that a crash interrupted.
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".snapshot.") && name.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(all.iter().take(retain).next_back().map(|(z, _)| *z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{CreateOp, DataTree, TreeConfig, TxnContext, WriteOp};

    fn tree_with_nodes() -> DataTree {
        let mut t = DataTree::new(TreeConfig::default());
        for (i, p) in ["/a", "/a/b", "/c"].iter().enumerate() {
            let ctx =
                TxnContext { session_id: 5, zxid: i as i64 + 1, time_ms: 10, auth: &[], rules: TreeConfig::default() };
            let op = WriteOp::Create(CreateOp {
                path: p.to_string(),
                data: if i == 1 { None } else { Some(vec![i as u8; 3]) },
                acl: Acl::open_unsafe(),
                flags: if i == 2 { 1 } else { 0 },
                ttl: -1,
                opcode: jute::proto::op::CREATE,
            });
            t.apply(&ctx, &op);
        }
        t
    }

    #[test]
    fn write_read_restore() {
        let d = tempfile::tempdir().unwrap();
        let t = tree_with_nodes();
        let src = SnapshotSource { zxid: t.last_zxid(), sessions: vec![(5, 4000)], nodes: t.share_nodes() };
        let path = write(d.path(), &src).unwrap();
        assert!(path.ends_with(snapshot_name(3)));
        let back = read(&path).unwrap();
        assert_eq!((back.zxid, back.sessions.clone()), (3, vec![(5, 4000)]));
        let restored = DataTree::restore(TreeConfig::default(), back.zxid, back.nodes).unwrap();
        assert_eq!(restored.digest(), t.digest());
        assert_eq!(restored.ephemerals_of(5), vec!["/c".to_string()]);
        assert_eq!(restored.get("/a").unwrap().children.len(), 1);
    }

    #[test]
    fn damaged_snapshots_are_skipped_and_purged_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        let t = tree_with_nodes();
        for z in [10, 20, 30] {
            write(d.path(), &SnapshotSource { zxid: z, sessions: vec![], nodes: t.share_nodes() }).unwrap();
        }
        let newest = d.path().join(snapshot_name(30));
        let mut bytes = fs::read(&newest).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(&newest, bytes).unwrap();
        assert!(read(&newest).is_err());
        assert_eq!(load_newest(d.path()).unwrap().zxid, 20);
        assert_eq!(purge(d.path(), 2).unwrap(), Some(20));
        assert_eq!(list(d.path()).iter().map(|(z, _)| *z).collect::<Vec<_>>(), vec![30, 20]);
    }
}
