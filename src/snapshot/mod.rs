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
//! Format, version 2 (written): `FKSN`, version (u32), zxid (i64), session
//! count (i32), then `(session id i64, timeout i32)` pairs, all big-endian
//! as in Jute; then the ACL table: its length (varint) and each distinct ACL
//! list in Jute encoding; then the node count (i64) and the nodes in
//! depth-first order, children by name ([`crate::tree::dfs_cmp`]), so that
//! a node is stored by its name only and each node's parent is the nearest
//! earlier node one level up. Each node is: depth (varint; the root is 0
//! and comes first), name (varint length, bytes; empty for the root), ACL
//! (varint index into the table), data (varint: 0 = null, n + 1 = n bytes
//! follow), then the persisted stat as varints: czxid and ctime as the
//! zigzag difference from the previous node's, mzxid and pzxid as the
//! zigzag difference from czxid, mtime from ctime, then version, cversion,
//! aversion and ephemeralOwner zigzag. Last, the CRC32C (u32) of everything
//! before it. (Varints are LEB128: 7 bits a byte, low bits first.)
//!
//! Version 1 (still read): after the sessions, the node count (i64) and
//! for each node, in any order, its path (ustring), data (buffer, -1 =
//! null), ACL (vector) and persisted stat, in Jute encoding; then the CRC.

pub mod recovery;
pub mod zkformat;

use crate::tree::{dfs_cmp, Node, PersistedNode};
use crate::txnlog::sync_dir;
use jute::data::{Acl, StatPersisted};
use jute::{Jute, Reader};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

const MAGIC: &[u8; 4] = b"FKSN";
const VERSION: u32 = 2;
/// The previous format, still read.
const VERSION_1: u32 = 1;

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
    // The ACL table, in order of first use.
    let mut order: Vec<&(Arc<str>, Arc<Node>)> = src.nodes.iter().collect();
    order.sort_unstable_by(|a, b| dfs_cmp(&a.0, &b.0));
    let mut acl_index: HashMap<*const Vec<Acl>, u64> = HashMap::new();
    let mut acl_by_value: HashMap<&[Acl], u64> = HashMap::new();
    let mut table: Vec<&[Acl]> = Vec::new();
    let mut node_acl: Vec<u64> = Vec::with_capacity(order.len());
    let mut last: Option<(*const Vec<Acl>, u64)> = None;
    for (_, node) in &order {
        let ptr = Arc::as_ptr(&node.acl);
        let i = match last.filter(|(p, _)| *p == ptr).or_else(|| acl_index.get(&ptr).map(|i| (ptr, *i))) {
            Some((_, i)) => i,
            None => {
                let i = *acl_by_value.entry(node.acl.as_slice()).or_insert_with(|| {
                    table.push(node.acl.as_slice());
                    table.len() as u64 - 1
                });
                acl_index.insert(ptr, i);
                i
            }
        };
        last = Some((ptr, i));
        node_acl.push(i);
    }
    put_varint(&mut buf, table.len() as u64);
    for acl in &table {
        acl.to_vec().write_to(&mut buf);
    }
    (src.nodes.len() as i64).write_to(&mut buf);
    w.write_all(&buf).map_err(io_err(&tmp))?;
    buf.clear();
    let (mut prev_czxid, mut prev_ctime) = (0i64, 0i64);
    for ((path, node), acl) in order.iter().zip(node_acl) {
        let (depth, name) = if &**path == crate::tree::ROOT {
            (0, "")
        } else {
            let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
            (path.bytes().filter(|c| *c == b'/').count() as u64, name)
        };
        put_varint(&mut buf, depth);
        put_varint(&mut buf, name.len() as u64);
        buf.extend_from_slice(name.as_bytes());
        put_varint(&mut buf, acl);
        match &node.data {
            None => put_varint(&mut buf, 0),
            Some(d) => {
                put_varint(&mut buf, d.len() as u64 + 1);
                buf.extend_from_slice(d);
            }
        }
        let st = &node.stat;
        put_zigzag(&mut buf, st.czxid.wrapping_sub(prev_czxid));
        put_zigzag(&mut buf, st.ctime.wrapping_sub(prev_ctime));
        put_zigzag(&mut buf, st.mzxid.wrapping_sub(st.czxid));
        put_zigzag(&mut buf, st.pzxid.wrapping_sub(st.czxid));
        put_zigzag(&mut buf, st.mtime.wrapping_sub(st.ctime));
        put_zigzag(&mut buf, st.version as i64);
        put_zigzag(&mut buf, st.cversion as i64);
        put_zigzag(&mut buf, st.aversion as i64);
        put_zigzag(&mut buf, st.ephemeral_owner);
        (prev_czxid, prev_ctime) = (st.czxid, st.ctime);
        if buf.len() >= 1 << 16 {
            w.write_all(&buf).map_err(io_err(&tmp))?;
            buf.clear();
        }
    }
    w.write_all(&buf).map_err(io_err(&tmp))?;
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
    if version != VERSION && version != VERSION_1 {
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
    let nodes =
        if version == VERSION_1 { read_nodes_v1(r).map_err(invalid)? } else { read_nodes_v2(r).map_err(invalid)? };
    Ok(LoadedSnapshot { zxid, path: path.to_path_buf(), sessions, nodes })
}

fn read_nodes_v1(r: &mut Reader<'_>) -> Result<Vec<PersistedNode>, String> {
    let dec = |e: jute::DecodeError| e.to_string();
    let n_nodes = r.read_i64().map_err(dec)?;
    if n_nodes < 0 || n_nodes as usize > r.remaining() {
        return Err(format!("bad node count {n_nodes}"));
    }
    let mut nodes = Vec::with_capacity(n_nodes as usize);
    for _ in 0..n_nodes {
        let path = String::read_from(r).map_err(dec)?;
        let data = Option::<Vec<u8>>::read_from(r).map_err(dec)?;
        let acl = Arc::new(Vec::<Acl>::read_from(r).map_err(dec)?);
        let stat = StatPersisted::read_from(r).map_err(dec)?;
        nodes.push(PersistedNode { path, data, acl, stat });
    }
    if r.remaining() != 0 {
        return Err(format!("{} bytes after the last node", r.remaining()));
    }
    Ok(nodes)
}

fn read_nodes_v2(r: &mut Reader<'_>) -> Result<Vec<PersistedNode>, String> {
    let dec = |e: jute::DecodeError| e.to_string();
    let mut c = Cursor { buf: r.rest(), pos: 0 };
    let n_acls = c.varint()?;
    if n_acls > c.buf.len() as u64 {
        return Err(format!("bad ACL count {n_acls}"));
    }
    let mut acls = Vec::with_capacity(n_acls as usize);
    for _ in 0..n_acls {
        let mut ar = Reader::new(&c.buf[c.pos..]);
        acls.push(Arc::new(Vec::<Acl>::read_from(&mut ar).map_err(dec)?));
        c.pos += ar.position();
    }
    let n_nodes = i64::from_be_bytes(c.take(8)?.try_into().unwrap());
    if n_nodes < 0 || n_nodes as usize > c.buf.len() - c.pos {
        return Err(format!("bad node count {n_nodes}"));
    }
    let mut nodes: Vec<PersistedNode> = Vec::with_capacity(n_nodes as usize);
    // Indexes into `nodes` of the current node's ancestors, by depth.
    let mut open: Vec<usize> = Vec::with_capacity(64);
    let (mut prev_czxid, mut prev_ctime) = (0i64, 0i64);
    for i in 0..n_nodes as usize {
        let at = c.pos;
        let depth = c.varint()? as usize;
        let name_len = c.varint()? as usize;
        let name = std::str::from_utf8(c.take(name_len)?).map_err(|_| format!("node name at {at} is not UTF-8"))?;
        let path = match (i, depth) {
            (0, 0) if name.is_empty() => crate::tree::ROOT.to_owned(),
            (0, _) => return Err("the first node is not the root".into()),
            (_, 0) => return Err(format!("a second root at {at}")),
            _ if depth > open.len() || name.is_empty() || name.contains('/') => {
                return Err(format!("bad node at {at}: depth {depth}, name {name:?}"))
            }
            _ => {
                open.truncate(depth);
                let parent = &nodes[open[depth - 1]].path;
                let mut p = String::with_capacity(parent.len() + 1 + name.len());
                if depth > 1 {
                    p.push_str(parent);
                }
                p.push('/');
                p.push_str(name);
                p
            }
        };
        open.push(i);
        let acl = acls.get(c.varint()? as usize).ok_or_else(|| format!("bad ACL index at {at}"))?.clone();
        let data = match c.varint()? {
            0 => None,
            n => Some(c.take(n as usize - 1)?.to_vec()),
        };
        let czxid = prev_czxid.wrapping_add(c.zigzag()?);
        let ctime = prev_ctime.wrapping_add(c.zigzag()?);
        let stat = StatPersisted {
            czxid,
            ctime,
            mzxid: czxid.wrapping_add(c.zigzag()?),
            pzxid: czxid.wrapping_add(c.zigzag()?),
            mtime: ctime.wrapping_add(c.zigzag()?),
            version: c.zigzag()? as i32,
            cversion: c.zigzag()? as i32,
            aversion: c.zigzag()? as i32,
            ephemeral_owner: c.zigzag()?,
        };
        (prev_czxid, prev_ctime) = (czxid, ctime);
        nodes.push(PersistedNode { path, data, acl, stat });
    }
    if c.pos != c.buf.len() {
        return Err(format!("{} bytes after the last node", c.buf.len() - c.pos));
    }
    Ok(nodes)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() - self.pos {
            return Err(format!("truncated at {}", self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| format!("truncated at {}", self.pos))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint too long at {}", self.pos))
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }
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

    /// The version 1 layout, as the previous release wrote it.
    fn write_v1(path: &Path, zxid: i64, sessions: &[(i64, i32)], nodes: &[(Arc<str>, Arc<Node>)]) {
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION_1.to_be_bytes());
        zxid.write_to(&mut buf);
        (sessions.len() as i32).write_to(&mut buf);
        for (id, timeout) in sessions {
            id.write_to(&mut buf);
            timeout.write_to(&mut buf);
        }
        (nodes.len() as i64).write_to(&mut buf);
        for (path, node) in nodes {
            path.to_string().write_to(&mut buf);
            node.data.write_to(&mut buf);
            node.acl.as_ref().write_to(&mut buf);
            node.stat.write_to(&mut buf);
        }
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        fs::write(path, buf).unwrap();
    }

    /// A tree with several ACLs, null and empty data, ephemerals, deep and
    /// sibling paths that sort differently by bytes and depth-first.
    fn varied_tree() -> DataTree {
        let mut t = DataTree::new(TreeConfig::default());
        let read_only = vec![Acl { perms: jute::data::perms::READ, id: jute::data::Id::new("world", "anyone") }];
        let paths = ["/a", "/a-b", "/a/b", "/a/b/c", "/a.x", "/z", "/a/b-1", "/a/b/c/d", "/é"];
        for (i, p) in paths.iter().enumerate() {
            let ctx = TxnContext {
                session_id: 0x1234_5678_9abc,
                zxid: 1000 + i as i64 * 3,
                time_ms: 1_700_000_000_000 - i as i64 * 7,
                auth: &[],
                rules: TreeConfig::default(),
            };
            let op = WriteOp::Create(CreateOp {
                path: p.to_string(),
                data: match i % 3 {
                    0 => None,
                    1 => Some(vec![]),
                    _ => Some(vec![i as u8; 200 + i]),
                },
                acl: if i % 2 == 0 { Acl::open_unsafe() } else { read_only.clone() },
                flags: if *p == "/z" { 1 } else { 0 },
                ttl: -1,
                opcode: jute::proto::op::CREATE,
            });
            t.apply(&ctx, &op);
        }
        let ctx = TxnContext {
            session_id: 1,
            zxid: 5000,
            time_ms: 1_800_000_000_000,
            auth: &[],
            rules: TreeConfig::default(),
        };
        t.apply(&ctx, &WriteOp::SetData { path: "/a/b".into(), data: Some(b"x".to_vec()), version: -1 });
        let ctx = TxnContext { zxid: 5001, ..ctx };
        t.apply(&ctx, &WriteOp::Delete { path: "/a/b-1".into(), version: -1 });
        t
    }

    #[test]
    fn version_2_round_trips_every_field() {
        let d = tempfile::tempdir().unwrap();
        let t = varied_tree();
        let src = SnapshotSource { zxid: t.last_zxid(), sessions: vec![(1, 4000), (9, 6000)], nodes: t.share_nodes() };
        let path = write(d.path(), &src).unwrap();
        assert_eq!(u32::from_be_bytes(fs::read(&path).unwrap()[4..8].try_into().unwrap()), VERSION);
        let back = read(&path).unwrap();
        assert_eq!(back.sessions, vec![(1, 4000), (9, 6000)]);
        let mut got: Vec<_> =
            back.nodes.iter().map(|n| (n.path.clone(), n.data.clone(), n.acl.to_vec(), n.stat.clone())).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let want: Vec<_> = t.persisted_nodes().into_iter().map(|n| (n.path, n.data, n.acl.to_vec(), n.stat)).collect();
        assert_eq!(got, want);
        // Stored depth-first, so restoring needs no sort.
        assert!(back.nodes.windows(2).all(|w| dfs_cmp(&w[0].path, &w[1].path).is_lt()));
        let restored = DataTree::restore(TreeConfig::default(), back.zxid, back.nodes).unwrap();
        assert_eq!(restored.digest(), t.digest());
        assert_eq!(restored.ephemerals_of(0x1234_5678_9abc), vec!["/z".to_string()]);
        for p in ["/", "/a", "/a/b", "/zookeeper"] {
            assert_eq!(restored.get(p).unwrap().children, t.get(p).unwrap().children, "{p}");
        }
    }

    #[test]
    fn version_1_snapshots_still_read() {
        let d = tempfile::tempdir().unwrap();
        let t = varied_tree();
        let path = d.path().join(snapshot_name(t.last_zxid()));
        write_v1(&path, t.last_zxid(), &[(7, 5000)], &t.share_nodes());
        let back = load_newest(d.path()).unwrap();
        assert_eq!((back.zxid, back.sessions.clone()), (t.last_zxid(), vec![(7, 5000)]));
        let restored = DataTree::restore(TreeConfig::default(), back.zxid, back.nodes).unwrap();
        assert_eq!(restored.digest(), t.digest());
        assert_eq!(restored.get("/a").unwrap().children, t.get("/a").unwrap().children);
    }

    #[test]
    fn damaged_version_2_content_is_refused_not_misread() {
        let d = tempfile::tempdir().unwrap();
        let t = varied_tree();
        let path = write(d.path(), &SnapshotSource { zxid: 1, sessions: vec![], nodes: t.share_nodes() }).unwrap();
        let bytes = fs::read(&path).unwrap();
        // Every truncation (with a CRC that matches) is refused cleanly.
        for cut in 24..bytes.len() - 4 {
            let mut b = bytes[..cut].to_vec();
            let crc = crc32c::crc32c(&b);
            b.extend_from_slice(&crc.to_be_bytes());
            fs::write(&path, &b).unwrap();
            assert!(read(&path).is_err(), "cut at {cut}");
        }
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
