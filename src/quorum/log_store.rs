//! The Raft log and vote on disk: openraft's `RaftLogStorage` over our own
//! segmented, CRC-checked, fsync'd [`crate::txnlog`].
//!
//! - Inputs: openraft's appends, truncations, purges and votes.
//! - Outputs: entries read back (for replication, and on start); the flush
//!   callback of each append once it is on disk.
//! - Layout: `dataLogDir/raft/log.<first index, 16 hex>` segments whose
//!   records are `[index i64][postcard(Entry)]` (the txnlog keys records by
//!   their first 8 bytes); `dataDir/raft/state`: postcard(vote, purged log
//!   id) + CRC32C, replaced atomically (temp file, fsync, rename, directory
//!   fsync).
//! - Contract (openraft's, kept here):
//!   - entries are readable as soon as `append` returns; the callback runs
//!     only after one `fdatasync` covers them (group commit: one sync per
//!     batch of whatever is waiting);
//!   - all writes (appends, truncations, purges, votes) reach the disk in
//!     the order they were asked, through one I/O thread;
//!   - `save_vote` and `truncate` return only once durable; a purge records
//!     the purged log id before any file goes;
//!   - no hole: entries are consecutive from `purged + 1` to the last one.
//!
//! Every entry not yet purged is also kept in memory (openraft purges what a
//! snapshot covers, keeping `max_in_snapshot_log_to_keep`), so replication
//! reads never touch the disk.
//!
//! The quorum simulation runs the same store over [`MemDisk`] instead: memory
//! that outlives a simulated crash, where every write is durable at once.

use super::{Entry, LogId, StorageError, TypeConfig};
use crate::txnlog::{sync_dir, LogConfig, LogError, TxnLog};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, Vote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Appends, truncations and votes waiting for the I/O thread, at most.
const IO_QUEUE: usize = 4096;

/// What survives a restart besides the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftMeta {
    pub vote: Option<Vote<u64>>,
    pub purged: Option<LogId>,
}

const META_MAGIC: &[u8; 4] = b"FKRM";

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("state")
}

/// Reads `state`; a missing file is a pristine server. A damaged one stops
/// the start: forgetting a vote could elect two leaders in one term.
pub fn read_meta(dir: &Path) -> Result<RaftMeta, LogError> {
    let path = meta_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RaftMeta::default()),
        Err(source) => return Err(LogError::Io { path, source }),
    };
    let bad = |reason: &str| LogError::BadHeader { path: path.clone(), reason: reason.into() };
    if bytes.len() < 8 || &bytes[..4] != META_MAGIC {
        return Err(bad("not a Ferrokeeper Raft state file"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("checksum mismatch (the vote cannot be trusted; refusing to start)"));
    }
    postcard::from_bytes(&body[4..]).map_err(|e| bad(&format!("undecodable: {e}")))
}

/// Replaces `state` durably.
pub fn write_meta(dir: &Path, meta: &RaftMeta) -> Result<(), LogError> {
    let path = meta_path(dir);
    let tmp = dir.join(".state.tmp");
    let mut body = META_MAGIC.to_vec();
    body.extend_from_slice(&postcard::to_stdvec(meta).expect("serializable"));
    let crc = crc32c::crc32c(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LogError::Io { path, source }
    };
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&body).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)
}

fn encode_record(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&(e.log_id.index as i64).to_be_bytes());
    out.extend_from_slice(&postcard::to_stdvec(e).expect("entries serialize"));
    out
}

fn decode_record(key: i64, payload: &[u8]) -> Result<Entry, String> {
    let e: Entry = postcard::from_bytes(payload.get(8..).unwrap_or_default()).map_err(|e| e.to_string())?;
    if e.log_id.index as i64 != key {
        return Err(format!("record keyed {key} holds entry {}", e.log_id.index));
    }
    Ok(e)
}

/// The entries not yet purged, and the purge point: shared by the store
/// and its readers.
#[derive(Default)]
struct Cache {
    entries: BTreeMap<u64, Entry>,
    purged: Option<LogId>,
    vote: Option<Vote<u64>>,
}

/// Where the Raft log and the vote live.
pub enum LogBackend {
    /// The txnlog in `log_dir` and the state file in `meta_dir`, written by
    /// one I/O thread (group commit).
    Disk { log_dir: PathBuf, meta_dir: PathBuf, prealloc_bytes: u64 },
    /// The simulation's disk.
    Memory(Arc<Mutex<MemDisk>>),
}

/// A simulated disk: what a node has made durable.
#[derive(Default)]
pub struct MemDisk {
    pub entries: BTreeMap<u64, Entry>,
    pub meta: RaftMeta,
}

enum Io {
    Thread(std::sync::mpsc::SyncSender<IoMsg>),
    Memory(Arc<Mutex<MemDisk>>),
}

enum IoMsg {
    Append { records: Vec<(i64, Vec<u8>)>, done: LogFlushed<TypeConfig> },
    Truncate { from: u64, done: oneshot::Sender<Result<(), String>> },
    Purge { upto: LogId },
    Vote { vote: Vote<u64>, done: oneshot::Sender<Result<(), String>> },
}

/// openraft's log storage.
pub struct LogStore {
    cache: Arc<Mutex<Cache>>,
    io: Io,
}

/// A reader over the same entries (one per replication task).
#[derive(Clone)]
pub struct LogReader {
    cache: Arc<Mutex<Cache>>,
}

pub(super) fn storage_err(subject: ErrorSubject<u64>, verb: ErrorVerb, msg: impl ToString) -> StorageError {
    StorageError::from_io_error(subject, verb, std::io::Error::other(msg.to_string()))
}

impl LogStore {
    /// Opens (recovering) the log and the vote; on disk, starts the I/O thread.
    pub fn open(backend: LogBackend) -> Result<LogStore, LogError> {
        match backend {
            LogBackend::Disk { log_dir, meta_dir, prealloc_bytes } => {
                Self::open_disk(&log_dir, &meta_dir, prealloc_bytes)
            }
            LogBackend::Memory(disk) => {
                let cache = {
                    let d = disk.lock().unwrap_or_else(|e| e.into_inner());
                    let after = d.meta.purged.map_or(0, |p| p.index + 1);
                    let entries = d.entries.range(after..).map(|(k, e)| (*k, e.clone())).collect();
                    Cache { entries, purged: d.meta.purged, vote: d.meta.vote }
                };
                Ok(LogStore { cache: Arc::new(Mutex::new(cache)), io: Io::Memory(disk) })
            }
        }
    }

    fn open_disk(log_dir: &Path, meta_dir: &Path, prealloc_bytes: u64) -> Result<LogStore, LogError> {
        std::fs::create_dir_all(meta_dir).map_err(|source| LogError::Io { path: meta_dir.into(), source })?;
        let meta = read_meta(meta_dir)?;
        let after = meta.purged.map_or(-1, |p| p.index as i64);
        let (mut log, records) = TxnLog::open(LogConfig::new(log_dir.to_path_buf()), after)?;
        log.set_prealloc_bytes(prealloc_bytes);
        let mut entries = BTreeMap::new();
        for r in records {
            let e = decode_record(r.zxid, &r.payload).map_err(|reason| LogError::Corrupt {
                path: log_dir.to_path_buf(),
                offset: 0,
                reason: format!("undecodable Raft entry {}: {reason}", r.zxid),
                after_zxid: r.zxid,
            })?;
            entries.insert(e.log_id.index, e);
        }
        let cache = Arc::new(Mutex::new(Cache { entries, purged: meta.purged, vote: meta.vote }));
        let (tx, rx) = std::sync::mpsc::sync_channel(IO_QUEUE);
        let dir = meta_dir.to_path_buf();
        std::thread::Builder::new()
            .name("raft-log".into())
            .spawn(move || io_thread(log, meta, dir, rx))
            .map_err(|source| LogError::Io { path: log_dir.into(), source })?;
        Ok(LogStore { cache, io: Io::Thread(tx) })
    }

    /// Whether nothing was ever stored: no vote, no entry, nothing purged.
    pub fn is_pristine(&self) -> bool {
        let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.vote.is_none() && c.entries.is_empty() && c.purged.is_none()
    }

    /// Hands a write to the I/O thread, or (simulated disk) does it now.
    fn submit(&self, msg: IoMsg) -> Result<(), StorageError> {
        match &self.io {
            Io::Thread(tx) => tx
                .send(msg)
                .map_err(|_| storage_err(ErrorSubject::Logs, ErrorVerb::Write, "the Raft log thread has stopped")),
            Io::Memory(disk) => {
                let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
                match msg {
                    IoMsg::Append { records, done } => {
                        for (key, payload) in records {
                            let e = decode_record(key, &payload).map_err(|e| {
                                storage_err(ErrorSubject::Logs, ErrorVerb::Write, format!("entry {key}: {e}"))
                            })?;
                            d.entries.insert(key as u64, e);
                        }
                        drop(d);
                        done.log_io_completed(Ok(()));
                    }
                    IoMsg::Truncate { from, done } => {
                        d.entries.split_off(&from);
                        let _ = done.send(Ok(()));
                    }
                    IoMsg::Purge { upto } => {
                        d.meta.purged = Some(upto);
                        d.entries = d.entries.split_off(&(upto.index + 1));
                    }
                    IoMsg::Vote { vote, done } => {
                        d.meta.vote = Some(vote);
                        let _ = done.send(Ok(()));
                    }
                }
                Ok(())
            }
        }
    }
}

fn read_range<RB: RangeBounds<u64>>(cache: &Mutex<Cache>, range: RB) -> Vec<Entry> {
    let c = cache.lock().unwrap_or_else(|e| e.into_inner());
    c.entries.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.cache, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.cache, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let last = c.entries.values().next_back().map(|e| e.log_id).or(c.purged);
        Ok(LogState { last_purged_log_id: c.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader { cache: self.cache.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.submit(IoMsg::Vote { vote: *vote, done: tx })?;
        match rx.await {
            Ok(Ok(())) => {
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).vote = Some(*vote);
                Ok(())
            }
            Ok(Err(e)) => Err(storage_err(ErrorSubject::Vote, ErrorVerb::Write, e)),
            Err(_) => Err(storage_err(ErrorSubject::Vote, ErrorVerb::Write, "the Raft log thread has stopped")),
        }
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.cache.lock().unwrap_or_else(|e| e.into_inner()).vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut records = Vec::new();
        {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for e in entries {
                records.push((e.log_id.index as i64, encode_record(&e)));
                c.entries.insert(e.log_id.index, e);
            }
        }
        self.submit(IoMsg::Append { records, done: callback })
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            c.entries.split_off(&log_id.index);
        }
        let (tx, rx) = oneshot::channel();
        self.submit(IoMsg::Truncate { from: log_id.index, done: tx })?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(storage_err(ErrorSubject::Logs, ErrorVerb::Delete, e)),
            Err(_) => Err(storage_err(ErrorSubject::Logs, ErrorVerb::Delete, "the Raft log thread has stopped")),
        }
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let keep = c.entries.split_off(&(log_id.index + 1));
            c.entries = keep;
            c.purged = Some(log_id);
        }
        self.submit(IoMsg::Purge { upto: log_id })
    }
}

/// The one writer of the log and the state file. A failure to write is
/// fatal for the process, as in standalone mode: nothing more could be
/// acknowledged safely, and the other servers carry on without us.
fn io_thread(mut log: TxnLog, mut meta: RaftMeta, meta_dir: PathBuf, rx: std::sync::mpsc::Receiver<IoMsg>) {
    const MAX_BATCH: usize = 1024;
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        tracing::error!(error = %e, "Raft log failure ({what}); stopping the server");
        std::process::exit(2);
    };
    let mut flushed: Vec<LogFlushed<TypeConfig>> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(msg) = next.take() {
            n += 1;
            match msg {
                IoMsg::Append { records, done } => {
                    for (key, payload) in records {
                        if key != log.last_zxid() + 1 {
                            fail("append", &format!("entry {key} does not follow entry {}", log.last_zxid()));
                        }
                        if let Err(e) = log.append(key, &payload) {
                            fail("append", &e);
                        }
                    }
                    flushed.push(done);
                }
                IoMsg::Truncate { from, done } => {
                    // truncate_from writes what is buffered, then cuts, durably.
                    if let Err(e) = log.truncate_from(from as i64) {
                        fail("truncate", &e);
                    }
                    let _ = done.send(Ok(()));
                }
                IoMsg::Purge { upto } => {
                    if let Err(e) = log.sync() {
                        fail("sync", &e);
                    }
                    meta.purged = Some(upto);
                    if let Err(e) = write_meta(&meta_dir, &meta) {
                        fail("purge", &e);
                    }
                    let next_key = upto.index as i64 + 1;
                    if next_key > log.last_zxid() + 1 {
                        // A snapshot newer than the whole log was installed.
                        if let Err(e) = log.skip_to(next_key) {
                            fail("purge", &e);
                        }
                    }
                    if let Err(e) = log.purge_before(next_key) {
                        tracing::warn!(error = %e, "could not remove old Raft log segments");
                    }
                }
                IoMsg::Vote { vote, done } => {
                    if let Err(e) = log.sync() {
                        fail("sync", &e);
                    }
                    meta.vote = Some(vote);
                    if let Err(e) = write_meta(&meta_dir, &meta) {
                        fail("vote", &e);
                    }
                    let _ = done.send(Ok(()));
                }
            }
            if n < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !flushed.is_empty() {
            if let Err(e) = log.sync() {
                fail("sync", &e);
            }
            for done in flushed.drain(..) {
                done.log_io_completed(Ok(()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(term, 1), index), payload: EntryPayload::Blank }
    }

    #[test]
    fn records_round_trip_and_check_their_key() {
        let e = entry(3, 17);
        let rec = encode_record(&e);
        assert_eq!(crate::txnlog::entry::peek_zxid(&rec), Some(17));
        assert_eq!(decode_record(17, &rec).unwrap(), e);
        assert!(decode_record(18, &rec).is_err());
        for cut in 8..rec.len() {
            assert!(decode_record(17, &rec[..cut]).is_err());
        }
    }

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn disk(logs: &Path, meta: &Path) -> LogBackend {
        LogBackend::Disk { log_dir: logs.to_path_buf(), meta_dir: meta.to_path_buf(), prealloc_bytes: 1 << 20 }
    }

    async fn all(s: &mut LogStore) -> Vec<(u64, u64)> {
        let v = s.try_get_log_entries(..).await.unwrap();
        v.iter().map(|e| (e.log_id.leader_id.term, e.log_id.index)).collect()
    }

    #[tokio::test]
    async fn appends_truncations_purges_and_votes_survive_a_restart() {
        use openraft::storage::RaftLogStorageExt;
        let d = tempfile::tempdir().unwrap();
        let (logs, meta) = (d.path().join("log"), d.path().join("meta"));
        let mut s = LogStore::open(disk(&logs, &meta)).unwrap();
        assert!(s.is_pristine());
        s.save_vote(&Vote::new(1, 1)).await.unwrap();
        s.blocking_append((0..50).map(|i| entry(1, i))).await.unwrap();
        // A new leader's entries replace a conflicting tail.
        s.truncate(log_id(1, 40)).await.unwrap();
        s.blocking_append((40..60).map(|i| entry(2, i))).await.unwrap();
        s.purge(log_id(1, 9)).await.unwrap();
        // Durable and ordered after everything above.
        s.save_vote(&Vote::new(2, 2)).await.unwrap();
        let before = all(&mut s).await;
        drop(s);

        let mut s = LogStore::open(disk(&logs, &meta)).unwrap();
        assert!(!s.is_pristine());
        assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(2, 2)));
        let st = s.get_log_state().await.unwrap();
        assert_eq!((st.last_purged_log_id, st.last_log_id), (Some(log_id(1, 9)), Some(entry(2, 59).log_id)));
        let after = all(&mut s).await;
        assert_eq!(after, before);
        assert_eq!(after.first(), Some(&(1, 10)));
        assert!(after.iter().all(|(t, i)| (*t == 1) == (*i < 40)));
    }

    #[tokio::test]
    async fn a_snapshot_past_the_whole_log_leaves_no_gap_on_restart() {
        use openraft::storage::RaftLogStorageExt;
        let d = tempfile::tempdir().unwrap();
        let (logs, meta) = (d.path().join("log"), d.path().join("meta"));
        let mut s = LogStore::open(disk(&logs, &meta)).unwrap();
        s.blocking_append((0..10).map(|i| entry(1, i))).await.unwrap();
        // A follower installed the leader's snapshot at 100, then goes on.
        s.purge(log_id(3, 100)).await.unwrap();
        s.blocking_append((101..105).map(|i| entry(3, i))).await.unwrap();
        s.save_vote(&Vote::new(3, 2)).await.unwrap();
        drop(s);
        let mut s = LogStore::open(disk(&logs, &meta)).unwrap();
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id, Some(log_id(3, 100)));
        assert_eq!(all(&mut s).await, (101..105).map(|i| (3, i)).collect::<Vec<_>>());
    }

    #[test]
    fn state_file_round_trips_and_refuses_damage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_meta(d.path()).unwrap(), RaftMeta::default());
        let meta = RaftMeta { vote: Some(Vote::new(4, 2)), purged: Some(entry(2, 9).log_id) };
        write_meta(d.path(), &meta).unwrap();
        assert_eq!(read_meta(d.path()).unwrap(), meta);
        let p = meta_path(d.path());
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        std::fs::write(&p, b).unwrap();
        assert!(read_meta(d.path()).is_err());
    }
}
