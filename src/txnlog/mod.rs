//! The transaction log: our own segmented, CRC-checked, fsync'd append-only
//! log of committed proposals.
//!
//! - Inputs: encoded proposals ([`entry`]) with consecutive zxids.
//! - Outputs: on start, every entry after a given zxid (recovery); at run
//!   time, durability: [`TxnLog::sync`] returns once everything appended is
//!   on disk (`fdatasync`).
//! - Layout: files `log.<zxid of the first entry, 16 hex>` in dataLogDir.
//!   Each starts with a 16-byte header (`FKLG`, version 1, first zxid) and
//!   holds records `[len u32][crc32c u32][payload]`, big-endian. Segments are
//!   preallocated with zeros, so `len == 0` marks the end of written data and
//!   an fsync of a record does not also have to persist a new file size.
//!   When a segment is closed (the log rolls to a new one) its unused
//!   preallocated tail is cut off, so closed segments take only the space
//!   of their records; the end of the file marks the end of data just as a
//!   zero length does. (The cut is not fsynced: after a crash the zeros may
//!   still be there, which reads the same.)
//! - Invariants:
//!   - zxids are consecutive within and across segments;
//!   - a segment is complete and synced before the next one is created; the
//!     directory is fsynced when a segment is created or removed;
//!   - recovery truncates a torn tail (the first bad record of the last
//!     segment, when nothing valid follows it) and refuses to start, naming
//!     the file and offset, when a bad record is followed by valid ones or
//!     sits in an older segment: committed data is never silently dropped.

pub mod entry;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use thiserror::Error;

const MAGIC: &[u8; 4] = b"FKLG";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;
const RECORD_HEADER_LEN: usize = 8;
/// Largest record we accept on recovery: a proposal is bounded by
/// jute.maxbuffer plus stamps; anything larger is garbage.
pub const MAX_RECORD_LEN: usize = 64 << 20;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "corrupt transaction log {path} at offset {offset}: {reason}; valid entries follow, so this is not a torn \
         tail. Refusing to start: restore the file from a backup or move it away if you accept losing the \
         transactions from zxid 0x{after_zxid:x} on"
    )]
    Corrupt { path: PathBuf, offset: u64, reason: String, after_zxid: i64 },
    #[error("{path}: not a Ferrokeeper log segment ({reason})")]
    BadHeader { path: PathBuf, reason: String },
    #[error(
        "transaction log gap: {path} starts at zxid 0x{found:x}, expected 0x{expected:x} (is a snapshot or an \
         older log segment missing or damaged?); refusing to start without those transactions"
    )]
    Gap { path: PathBuf, expected: i64, found: i64 },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_path_buf(), source }
}

pub fn segment_name(first_zxid: i64) -> String {
    format!("log.{:016x}", first_zxid as u64)
}

fn parse_segment_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix("log.")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// Fsyncs a directory, so that file creations and removals in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub dir: PathBuf,
    /// Bytes preallocated per step (ZooKeeper's preAllocSize, default 64 MiB).
    pub prealloc_bytes: u64,
    /// A segment is closed once it grows past this.
    pub segment_bytes: u64,
}

impl LogConfig {
    pub fn new(dir: PathBuf) -> Self {
        LogConfig { dir, prealloc_bytes: 64 << 20, segment_bytes: 64 << 20 }
    }
}

/// One entry found on recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub zxid: i64,
    pub payload: Vec<u8>,
}

/// What scanning one segment found.
#[derive(Debug)]
struct Scan {
    records: Vec<(u64, Recovered)>,
    /// Offset just past the last valid record.
    end: u64,
    /// The first bad record, if the data did not end cleanly.
    bad: Option<(u64, String)>,
}

fn read_header(bytes: &[u8], path: &Path) -> Result<i64, LogError> {
    let bad = |reason: &str| LogError::BadHeader { path: path.to_path_buf(), reason: reason.into() };
    if bytes.len() < HEADER_LEN as usize {
        return Err(bad("shorter than its header"));
    }
    if &bytes[..4] != MAGIC {
        return Err(bad("wrong magic"));
    }
    let version = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
    if version != VERSION {
        return Err(bad(&format!("unknown version {version}")));
    }
    Ok(i64::from_be_bytes(bytes[8..16].try_into().unwrap()))
}

/// Checks one record at `off`: `Ok(Some((len, zxid)))` when valid,
/// `Ok(None)` at the zero end marker, `Err(reason)` when bad.
fn check_record(bytes: &[u8], off: usize) -> Result<Option<(usize, i64)>, String> {
    if off + RECORD_HEADER_LEN > bytes.len() {
        if bytes[off..].iter().all(|b| *b == 0) {
            return Ok(None);
        }
        return Err("truncated record header".into());
    }
    let len = u32::from_be_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
    let crc = u32::from_be_bytes(bytes[off + 4..off + 8].try_into().unwrap());
    if len == 0 && crc == 0 {
        return Ok(None);
    }
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(format!("bad record length {len}"));
    }
    let start = off + RECORD_HEADER_LEN;
    if start + len > bytes.len() {
        return Err(format!("record of {len} bytes runs past the end of the file"));
    }
    let payload = &bytes[start..start + len];
    if crc32c::crc32c(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let zxid = entry::peek_zxid(payload).ok_or_else(|| "record too short for a zxid".to_string())?;
    Ok(Some((len, zxid)))
}

fn scan(bytes: &[u8], first_zxid: i64, path: &Path) -> Result<Scan, LogError> {
    let mut off = HEADER_LEN as usize;
    let mut expected = first_zxid;
    let mut records = Vec::new();
    loop {
        match check_record(bytes, off) {
            Ok(None) => {
                // Zeros where a record should be: the end, unless valid
                // records follow (a zeroed record in the middle).
                let last = records.last().map_or(first_zxid - 1, |(_, r): &(u64, Recovered)| r.zxid);
                if valid_record_after(bytes, off, last) {
                    return Ok(Scan { records, end: off as u64, bad: Some((off as u64, "zeroed record".into())) });
                }
                return Ok(Scan { records, end: off as u64, bad: None });
            }
            Ok(Some((len, zxid))) => {
                if zxid != expected {
                    if records.is_empty() && zxid != first_zxid {
                        return Err(LogError::Gap { path: path.to_path_buf(), expected, found: zxid });
                    }
                    return Ok(Scan {
                        records,
                        end: off as u64,
                        bad: Some((off as u64, format!("zxid 0x{zxid:x} where 0x{expected:x} was expected"))),
                    });
                }
                let start = off + RECORD_HEADER_LEN;
                records.push((off as u64, Recovered { zxid, payload: bytes[start..start + len].to_vec() }));
                expected += 1;
                off = start + len;
            }
            Err(reason) => return Ok(Scan { records, end: off as u64, bad: Some((off as u64, reason)) }),
        }
    }
}

/// Whether any valid record with a zxid above `after` starts after `from`:
/// the difference between a torn tail and corruption in the middle.
fn valid_record_after(bytes: &[u8], from: usize, after: i64) -> bool {
    let mut off = from + 1;
    while off + RECORD_HEADER_LEN + 8 <= bytes.len() {
        // Runs of zeros (preallocated space) hold no record: skip them.
        if bytes[off..off + 4] == [0, 0, 0, 0] {
            match bytes[off..].iter().position(|b| *b != 0) {
                Some(p) => off = (off + p).saturating_sub(3).max(off + 1),
                None => return false,
            }
            continue;
        }
        let len = u32::from_be_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if (8..=MAX_RECORD_LEN).contains(&len) && off + RECORD_HEADER_LEN + len <= bytes.len() {
            let start = off + RECORD_HEADER_LEN;
            let zxid = i64::from_be_bytes(bytes[start..start + 8].try_into().unwrap());
            if zxid > after && zxid - after < 1 << 32 {
                let crc = u32::from_be_bytes(bytes[off + 4..off + 8].try_into().unwrap());
                if crc32c::crc32c(&bytes[start..start + len]) == crc {
                    return true;
                }
            }
        }
        off += 1;
    }
    false
}

#[derive(Debug, Clone)]
struct Segment {
    first_zxid: i64,
    path: PathBuf,
}

/// The open log: appends go to the last segment.
pub struct TxnLog {
    cfg: LogConfig,
    segments: Vec<Segment>,
    file: Option<File>,
    /// Where the next record goes in the current segment.
    write_pos: u64,
    /// How far the current segment is preallocated.
    alloc_end: u64,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    last_zxid: i64,
    force_roll: bool,
}

impl TxnLog {
    /// Opens the log in `cfg.dir`, recovering it, and returns every entry
    /// with a zxid above `after_zxid` (the snapshot's), in order.
    pub fn open(cfg: LogConfig, after_zxid: i64) -> Result<(TxnLog, Vec<Recovered>), LogError> {
        fs::create_dir_all(&cfg.dir).map_err(io_err(&cfg.dir))?;
        let mut segments = Vec::new();
        for e in fs::read_dir(&cfg.dir).map_err(io_err(&cfg.dir))? {
            let e = e.map_err(io_err(&cfg.dir))?;
            if let Some(first_zxid) = e.file_name().to_str().and_then(parse_segment_name) {
                segments.push(Segment { first_zxid, path: e.path() });
            }
        }
        segments.sort_by_key(|s| s.first_zxid);
        // A crash while a new segment was being created leaves it empty or
        // with a partial header: it never held an entry, so drop it.
        if let Some(last) = segments.last() {
            let bytes = fs::read(&last.path).map_err(io_err(&last.path))?;
            let header_ok = read_header(&bytes, &last.path).is_ok();
            let rest_zero = bytes.get(HEADER_LEN as usize..).is_none_or(|r| r.iter().all(|b| *b == 0));
            if !header_ok && rest_zero {
                tracing::warn!(file = %last.path.display(), "removing a log segment whose creation a crash interrupted");
                fs::remove_file(&last.path).map_err(io_err(&last.path))?;
                sync_dir(&cfg.dir)?;
                segments.pop();
            }
        }
        let mut out = Vec::new();
        let mut last_zxid = after_zxid;
        let mut expected: Option<i64> = None;
        let mut write_pos = HEADER_LEN;
        let n = segments.len();
        for (i, seg) in segments.iter().enumerate() {
            let is_last = i + 1 == n;
            // Segments wholly before the snapshot are not read, except to
            // check continuity from the first one we need.
            if !is_last && segments[i + 1].first_zxid <= after_zxid + 1 {
                continue;
            }
            let mut bytes = Vec::new();
            File::open(&seg.path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_err(&seg.path))?;
            let header_zxid = read_header(&bytes, &seg.path)?;
            if header_zxid != seg.first_zxid {
                return Err(LogError::BadHeader {
                    path: seg.path.clone(),
                    reason: format!("header says zxid 0x{header_zxid:x}, name says 0x{:x}", seg.first_zxid),
                });
            }
            match expected {
                Some(exp) if seg.first_zxid != exp => {
                    return Err(LogError::Gap { path: seg.path.clone(), expected: exp, found: seg.first_zxid });
                }
                // The first segment read must reach back to the snapshot:
                // otherwise the transactions in between are lost.
                None if seg.first_zxid > after_zxid + 1 => {
                    return Err(LogError::Gap {
                        path: seg.path.clone(),
                        expected: after_zxid + 1,
                        found: seg.first_zxid,
                    });
                }
                _ => {}
            }
            let s = scan(&bytes, seg.first_zxid, &seg.path)?;
            let seg_last = s.records.last().map(|(_, r)| r.zxid);
            if let Some((off, reason)) = &s.bad {
                let after = seg_last.unwrap_or(seg.first_zxid - 1);
                if !is_last || valid_record_after(&bytes, *off as usize, after) {
                    return Err(LogError::Corrupt {
                        path: seg.path.clone(),
                        offset: *off,
                        reason: reason.clone(),
                        after_zxid: after + 1,
                    });
                }
                tracing::warn!(
                    file = %seg.path.display(),
                    offset = off,
                    reason = %reason,
                    "truncating a torn record at the tail of the transaction log"
                );
                // Zero everything from the torn record to the last non-zero
                // byte, so later appends never sit before stale garbage.
                let last_nonzero = bytes.iter().rposition(|b| *b != 0).unwrap_or(0) as u64;
                if last_nonzero >= *off {
                    let f = OpenOptions::new().write(true).open(&seg.path).map_err(io_err(&seg.path))?;
                    let zeros = vec![0u8; (last_nonzero + 1 - off) as usize];
                    f.write_all_at(&zeros, *off).map_err(io_err(&seg.path))?;
                    f.sync_data().map_err(io_err(&seg.path))?;
                }
            }
            for (_, r) in s.records {
                if r.zxid > after_zxid {
                    last_zxid = r.zxid;
                    out.push(r);
                } else {
                    last_zxid = last_zxid.max(r.zxid);
                }
            }
            expected = Some(seg_last.map_or(seg.first_zxid, |z| z + 1));
            if is_last {
                write_pos = s.end;
            } else if s.bad.is_none() && s.end < bytes.len() as u64 {
                // A closed segment still preallocated (written by an older
                // version, or a crash before the cut reached the disk).
                trim_segment(&seg.path, s.end)?;
            }
        }
        let mut log = TxnLog {
            cfg,
            segments,
            file: None,
            write_pos,
            alloc_end: 0,
            pending: Vec::with_capacity(1 << 16),
            last_zxid,
            force_roll: false,
        };
        if let Some(last) = log.segments.last().cloned() {
            let f = OpenOptions::new().read(true).write(true).open(&last.path).map_err(io_err(&last.path))?;
            log.alloc_end = f.metadata().map_err(io_err(&last.path))?.len();
            log.file = Some(f);
            // A segment that ended before the snapshot cannot take the next
            // zxid in order; start a new one at the next append.
            if expected.is_some_and(|e| e != last_zxid + 1) {
                log.file = None;
            }
        }
        Ok((log, out))
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Sets the preallocation step for segments created from now on.
    pub fn set_prealloc_bytes(&mut self, bytes: u64) {
        self.cfg.prealloc_bytes = bytes.max(4096);
        self.cfg.segment_bytes = self.cfg.segment_bytes.max(self.cfg.prealloc_bytes);
    }

    /// Starts a new segment at the next append, as ZooKeeper does after
    /// each snapshot, so that older segments can be purged.
    pub fn roll_at_next_append(&mut self) {
        self.force_roll = true;
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    /// Buffers one entry; nothing is durable before [`TxnLog::sync`].
    pub fn append(&mut self, zxid: i64, payload: &[u8]) -> Result<(), LogError> {
        debug_assert!(zxid == self.last_zxid + 1 || self.file.is_none());
        if self.file.is_none() || self.force_roll || self.write_pos + self.pending.len() as u64 > self.cfg.segment_bytes
        {
            self.force_roll = false;
            self.roll(zxid)?;
        }
        self.pending.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.pending.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
        self.pending.extend_from_slice(payload);
        self.last_zxid = zxid;
        Ok(())
    }

    /// Writes what is buffered and makes it durable (one fdatasync).
    pub fn sync(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.segments.last().map(|s| s.path.clone()).unwrap_or_default();
        let file = self.file.as_ref().expect("a segment is open after append");
        let end = self.write_pos + self.pending.len() as u64;
        if end > self.alloc_end {
            let new_end = end.div_ceil(self.cfg.prealloc_bytes) * self.cfg.prealloc_bytes;
            preallocate(file, self.alloc_end, new_end - self.alloc_end).map_err(io_err(&path))?;
            self.alloc_end = new_end;
        }
        file.write_all_at(&self.pending, self.write_pos).map_err(io_err(&path))?;
        file.sync_data().map_err(io_err(&path))?;
        self.write_pos = end;
        self.pending.clear();
        Ok(())
    }

    /// Writes what the current segment still has buffered into it, then
    /// closes it and cuts off what it has preallocated beyond its records.
    fn close_current(&mut self) -> Result<(), LogError> {
        if self.file.is_none() {
            return Ok(());
        }
        self.sync()?;
        let old = self.file.take().expect("checked");
        if self.alloc_end > self.write_pos {
            let path = self.segments.last().map(|s| s.path.clone()).unwrap_or_default();
            old.set_len(self.write_pos).map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Closes the current segment (synced) and starts one at `first_zxid`.
    fn roll(&mut self, first_zxid: i64) -> Result<(), LogError> {
        self.close_current()?;
        let path = self.cfg.dir.join(segment_name(first_zxid));
        let mut f =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).map_err(io_err(&path))?;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_be_bytes());
        header.extend_from_slice(&first_zxid.to_be_bytes());
        f.write_all(&header).map_err(io_err(&path))?;
        preallocate(&f, HEADER_LEN, self.cfg.prealloc_bytes.saturating_sub(HEADER_LEN)).map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))?;
        f.seek(SeekFrom::Start(HEADER_LEN)).map_err(io_err(&path))?;
        sync_dir(&self.cfg.dir)?;
        self.alloc_end = self.cfg.prealloc_bytes.max(HEADER_LEN);
        self.write_pos = HEADER_LEN;
        self.file = Some(f);
        self.segments.push(Segment { first_zxid, path });
        Ok(())
    }

    /// Removes every entry keyed `from` or above, durably, before it
    /// returns: a Raft follower drops the conflicting tail a deposed leader
    /// left. Later appends continue at `from`.
    pub fn truncate_from(&mut self, from: i64) -> Result<(), LogError> {
        if from > self.last_zxid {
            return Ok(());
        }
        // What is buffered goes to its file first, so the files hold the cut.
        self.sync()?;
        let mut removed = false;
        while self.segments.last().is_some_and(|s| s.first_zxid >= from) {
            let seg = self.segments.pop().expect("checked");
            self.file = None;
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.cfg.dir)?;
        }
        self.last_zxid = from - 1;
        self.force_roll = false;
        let Some(last) = self.segments.last().cloned() else {
            self.write_pos = HEADER_LEN;
            return Ok(());
        };
        let bytes = fs::read(&last.path).map_err(io_err(&last.path))?;
        let scanned = scan(&bytes, last.first_zxid, &last.path)?;
        let cut = scanned.records.iter().find(|(_, r)| r.zxid >= from).map_or(scanned.end, |(off, _)| *off);
        let f = OpenOptions::new().read(true).write(true).open(&last.path).map_err(io_err(&last.path))?;
        let last_nonzero = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p as u64 + 1);
        if last_nonzero > cut {
            f.write_all_at(&vec![0u8; (last_nonzero - cut) as usize], cut).map_err(io_err(&last.path))?;
            f.sync_data().map_err(io_err(&last.path))?;
        }
        self.alloc_end = f.metadata().map_err(io_err(&last.path))?.len();
        self.write_pos = cut;
        self.file = Some(f);
        Ok(())
    }

    /// The next append will be keyed `next`, past a gap: a Raft follower
    /// that installed a snapshot newer than its whole log. The next append
    /// starts a new segment; recovery skips the older ones, which the
    /// snapshot covers (the caller records that before appending).
    pub fn skip_to(&mut self, next: i64) -> Result<(), LogError> {
        self.close_current()?;
        self.last_zxid = next - 1;
        Ok(())
    }

    /// Removes segments whose entries all precede `zxid` (they are covered
    /// by a snapshot at or after it). The current segment is kept.
    pub fn purge_before(&mut self, zxid: i64) -> Result<usize, LogError> {
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[1].first_zxid <= zxid {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.cfg.dir)?;
        }
        Ok(removed)
    }

    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }
}

/// Cuts a closed segment's unused preallocated tail off at `end` (just past
/// its last record).
fn trim_segment(path: &Path, end: u64) -> Result<(), LogError> {
    let f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
    f.set_len(end.max(HEADER_LEN)).map_err(io_err(path))
}

/// Reserves disk blocks so that later writes inside the range do not change
/// the file's size or allocation (a cheaper fdatasync).
fn preallocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: fallocate on a valid, open descriptor; no memory is shared.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset as libc::off_t, len as libc::off_t) };
    if rc == 0 {
        return Ok(());
    }
    // Filesystems without fallocate: extend the file instead.
    file.set_len(offset + len)
}

/// One segment file's content, for `ferrokeeper log dump`.
pub struct SegmentDump {
    pub first_zxid: i64,
    pub records: Vec<Recovered>,
    /// Where and why the valid data ended early, if it did.
    pub bad: Option<(u64, String)>,
}

/// Reads every entry of one segment file.
pub fn read_segment(path: &Path) -> Result<SegmentDump, LogError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let first_zxid = read_header(&bytes, path)?;
    let s = scan(&bytes, first_zxid, path)?;
    Ok(SegmentDump { first_zxid, records: s.records.into_iter().map(|(_, r)| r).collect(), bad: s.bad })
}

#[cfg(test)]
mod tests;
