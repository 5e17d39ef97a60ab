//! Golden frames: real traffic between real ZooKeeper 3.8 clients and a real
//! ZooKeeper 3.8 server, captured by `scripts/capture-golden` into
//! `tests/golden/*.frames` (one frame a line: direction, label, hex body).
//!
//! Every frame is decoded with this crate's records, following the frame's
//! kind: the connect handshake (with its optional trailing readOnly byte), a
//! request (header, then the body its opcode calls for), a reply (header,
//! then, when `err` is 0, the body of the request it answers), a watch
//! notification, or a multi (a run of `MultiHeader` + operation until the
//! `done` header). Each frame must be consumed exactly, and the decoded
//! records must re-encode to the captured bytes. Decoded values are also
//! checked for sense (stat zxids below the reply's zxid, data length equal to
//! the data, reply paths extending request paths, ...), so a layout that
//! round-trips but reads the wrong fields, e.g. two swapped `int`s, fails too.
//!
//! Finally, every opcode and feature of a minimum set must have been seen, so
//! a re-capture cannot silently lose coverage.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use jute::data::{Acl, Stat};
use jute::proto::*;
use jute::{Jute, Reader};

/// Labels used in the frame files: `ZooDefs.OpCode` names.
const OPS: &[(&str, i32)] = &[
    ("notification", op::NOTIFICATION),
    ("create", op::CREATE),
    ("delete", op::DELETE),
    ("exists", op::EXISTS),
    ("getData", op::GET_DATA),
    ("setData", op::SET_DATA),
    ("getACL", op::GET_ACL),
    ("setACL", op::SET_ACL),
    ("getChildren", op::GET_CHILDREN),
    ("sync", op::SYNC),
    ("ping", op::PING),
    ("getChildren2", op::GET_CHILDREN2),
    ("check", op::CHECK),
    ("multi", op::MULTI),
    ("create2", op::CREATE2),
    ("reconfig", op::RECONFIG),
    ("checkWatches", op::CHECK_WATCHES),
    ("removeWatches", op::REMOVE_WATCHES),
    ("createContainer", op::CREATE_CONTAINER),
    ("deleteContainer", op::DELETE_CONTAINER),
    ("createTTL", op::CREATE_TTL),
    ("multiRead", op::MULTI_READ),
    ("auth", op::AUTH),
    ("setWatches", op::SET_WATCHES),
    ("sasl", op::SASL),
    ("getEphemerals", op::GET_EPHEMERALS),
    ("getAllChildrenNumber", op::GET_ALL_CHILDREN_NUMBER),
    ("setWatches2", op::SET_WATCHES2),
    ("addWatch", op::ADD_WATCH),
    ("whoAmI", op::WHO_AM_I),
    ("createSession", op::CREATE_SESSION),
    ("closeSession", op::CLOSE_SESSION),
    ("error", op::ERROR),
];

/// The minimum the captures must contain: every opcode that kazoo and zkCli
/// emit, each seen as a request and as a reply.
const EXPECTED_OPS: &[&str] = &[
    "create",
    "create2",
    "createContainer",
    "createTTL",
    "delete",
    "exists",
    "getData",
    "setData",
    "getACL",
    "setACL",
    "getChildren",
    "getChildren2",
    "sync",
    "ping",
    "multi",
    "reconfig",
    "removeWatches",
    "auth",
    "setWatches",
    "setWatches2",
    "getEphemerals",
    "getAllChildrenNumber",
    "addWatch",
    "whoAmI",
    "closeSession",
    "checkWatches",
    "multiRead",
];

/// Every client's capture must be there.
const EXPECTED_FILES: &[&str] = &["cclient.frames", "java.frames", "kazoo.frames", "zkcli.frames"];

/// Operations that must appear inside captured multi requests and replies.
const EXPECTED_MULTI_OPS: &[i32] = &[
    op::CREATE,
    op::CREATE_CONTAINER,
    op::CREATE_TTL,
    op::DELETE,
    op::SET_DATA,
    op::CHECK,
    op::GET_DATA,
    op::GET_CHILDREN,
];

/// Result codes a reply may carry (`KeeperException.Code`).
const ERR_CODES: &[i32] = &[
    err::OK,
    err::SYSTEM_ERROR,
    err::RUNTIME_INCONSISTENCY,
    err::DATA_INCONSISTENCY,
    err::CONNECTION_LOSS,
    err::MARSHALLING_ERROR,
    err::UNIMPLEMENTED,
    err::OPERATION_TIMEOUT,
    err::BAD_ARGUMENTS,
    err::UNKNOWN_SESSION,
    err::NEW_CONFIG_NO_QUORUM,
    err::RECONFIG_IN_PROGRESS,
    err::API_ERROR,
    err::NO_NODE,
    err::NO_AUTH,
    err::BAD_VERSION,
    err::NO_CHILDREN_FOR_EPHEMERALS,
    err::NODE_EXISTS,
    err::NOT_EMPTY,
    err::SESSION_EXPIRED,
    err::INVALID_CALLBACK,
    err::INVALID_ACL,
    err::AUTH_FAILED,
    err::SESSION_MOVED,
    err::NOT_READ_ONLY,
    err::EPHEMERAL_ON_LOCAL_SESSION,
    err::NO_WATCHER,
    err::REQUEST_TIMEOUT,
    err::RECONFIG_DISABLED,
    err::SESSION_CLOSED_REQUIRE_SASL_AUTH,
    err::QUOTA_EXCEEDED,
    err::THROTTLED_OP,
];

/// Authentication schemes ZooKeeper knows.
const KNOWN_SCHEMES: &[&str] = &["world", "digest", "ip", "auth", "super", "sasl", "x509"];

/// Milliseconds since the epoch: 2001-09-09 and 2100-01-01. A znode time
/// outside is a misread field (the roots' times are 0).
const TIME_MIN: i64 = 1_000_000_000_000;
const TIME_MAX: i64 = 4_102_444_800_000;

fn op_of(label: &str) -> Option<i32> {
    OPS.iter().find(|(n, _)| *n == label).map(|(_, o)| *o)
}

fn name_of(o: i32) -> String {
    OPS.iter().find(|(_, x)| *x == o).map(|(n, _)| n.to_string()).unwrap_or_else(|| format!("op{o}"))
}

type R<T> = Result<T, String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dir {
    C2s,
    S2c,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
}

struct Frame {
    file: String,
    line: usize,
    dir: Dir,
    label: String,
    bytes: Vec<u8>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

fn unhex(s: &str) -> R<Vec<u8>> {
    ensure!(s.len() & 1 == 0, "odd number of hex digits");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex at {i}: {e}")))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every frame of one file, in capture order.
fn load_file(path: &Path) -> Vec<Frame> {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut frames = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (d, label, body) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(d), Some(l), Some(h), None) => (d, l, h),
            _ => panic!("{file}:{}: expected `<dir> <label> <hex>`: {line}", i + 1),
        };
        let dir = match d {
            "c2s" => Dir::C2s,
            "s2c" => Dir::S2c,
            _ => panic!("{file}:{}: bad direction {d}", i + 1),
        };
        let bytes = unhex(body).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
        frames.push(Frame { file: file.clone(), line: i + 1, dir, label: label.to_string(), bytes });
    }
    frames
}

fn frame_files() -> Vec<PathBuf> {
    let dir = golden_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/capture-golden)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "frames"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.frames in {} (run scripts/capture-golden)", dir.display());
    files
}

/// Decodes records from one frame and re-encodes each as it goes.
struct Dec<'a> {
    bytes: &'a [u8],
    r: Reader<'a>,
    out: Vec<u8>,
}

impl<'a> Dec<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Dec { bytes, r: Reader::new(bytes), out: Vec::new() }
    }

    fn rec<T: Jute + Debug>(&mut self, what: &str) -> R<T> {
        let at = self.r.position();
        let v = T::read_from(&mut self.r).map_err(|e| format!("{what} at offset {at}: {e}"))?;
        v.write_to(&mut self.out);
        Ok(v)
    }

    /// The readOnly byte that may end a connect request or response.
    fn trailing_read_only(&mut self) -> R<Option<bool>> {
        if self.r.remaining() != 1 {
            return Ok(None);
        }
        let raw = self.r.rest()[0];
        ensure!(raw <= 1, "readOnly byte is {raw}, not a boolean");
        let b = self.r.read_bool().map_err(|e| e.to_string())?;
        self.out.push(b as u8);
        Ok(Some(b))
    }

    /// All bytes consumed, and the re-encoding equals the capture.
    fn finish(self) -> R<()> {
        ensure!(
            self.r.remaining() == 0,
            "{} bytes left undecoded at offset {}: {}",
            self.r.remaining(),
            self.r.position(),
            hex(self.r.rest())
        );
        if self.out != self.bytes {
            let at = self
                .out
                .iter()
                .zip(self.bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(self.out.len().min(self.bytes.len()));
            return Err(format!(
                "re-encoding differs at offset {at} (lengths {} vs {}): re-encoded {}",
                self.out.len(),
                self.bytes.len(),
                hex(&self.out)
            ));
        }
        Ok(())
    }
}

fn check_path(p: &str, what: &str) -> R<()> {
    ensure!(p.starts_with('/') && !p.contains('\0'), "{what}: not a znode path: {p:?}");
    Ok(())
}

fn check_paths(ps: &[String], what: &str) -> R<()> {
    ps.iter().try_for_each(|p| check_path(p, what))
}

fn check_version(v: i32, what: &str) -> R<()> {
    ensure!(v >= -1, "{what}: version {v}");
    Ok(())
}

/// A stat read from a reply whose header said `zxid`.
fn check_stat(s: &Stat, zxid: i64) -> R<()> {
    let root = s.czxid == 0;
    ensure!(s.czxid >= 0 && s.czxid <= s.mzxid && s.czxid <= s.pzxid, "stat zxids out of order: {s:?}");
    ensure!(s.mzxid <= zxid && s.pzxid <= zxid, "stat zxid beyond the reply's zxid {zxid}: {s:?}");
    if root {
        ensure!(s.ctime == 0 || (TIME_MIN..TIME_MAX).contains(&s.ctime), "stat ctime: {s:?}");
    } else {
        ensure!((TIME_MIN..TIME_MAX).contains(&s.ctime), "stat ctime: {s:?}");
    }
    ensure!(s.mtime >= s.ctime && s.mtime < TIME_MAX, "stat mtime: {s:?}");
    // System nodes (czxid 0) may carry -1 versions: /zookeeper/config does.
    let least = if root { -1 } else { 0 };
    ensure!(s.version >= least && s.cversion >= least && s.aversion >= least, "stat versions: {s:?}");
    ensure!(s.ephemeral_owner >= 0, "stat ephemeralOwner: {s:?}");
    ensure!(s.data_length >= 0 && s.num_children >= 0, "stat lengths: {s:?}");
    Ok(())
}

fn check_acls(acls: &[Acl], what: &str) -> R<()> {
    ensure!(!acls.is_empty(), "{what}: empty ACL");
    for a in acls {
        ensure!((1..=31).contains(&a.perms), "{what}: perms {} in {a:?}", a.perms);
        ensure!(KNOWN_SCHEMES.contains(&a.id.scheme.as_str()), "{what}: scheme in {a:?}");
        ensure!(!a.id.id.is_empty() || a.id.scheme == "auth", "{what}: empty id in {a:?}");
    }
    Ok(())
}

fn check_create_flags(label_op: i32, flags: i32) -> R<()> {
    let ok = match label_op {
        op::CREATE_CONTAINER => flags == create_mode::CONTAINER,
        op::CREATE_TTL => {
            flags == create_mode::PERSISTENT_WITH_TTL || flags == create_mode::PERSISTENT_SEQUENTIAL_WITH_TTL
        }
        _ => (0..=3).contains(&flags),
    };
    ensure!(ok, "{}: create flags {flags}", name_of(label_op));
    Ok(())
}

/// What a reply must be matched with: the request's opcode and details.
#[derive(Debug, Clone, Default)]
struct Pending {
    op: i32,
    path: Option<String>,
    multi_ops: Vec<i32>,
}

/// What the captures contained, for the coverage assertions and the summary.
#[derive(Default)]
struct Tally {
    frames: BTreeMap<(String, Dir), usize>,
    errors: BTreeMap<String, BTreeSet<i32>>,
    connect_read_only: BTreeSet<(Dir, bool)>,
    connect_without_read_only: usize,
    events: BTreeSet<i32>,
    multi_req_ops: BTreeSet<i32>,
    multi_resp_ops: BTreeSet<i32>,
    multi_error_results: usize,
    null_data_creates: usize,
    reconnects: usize,
    /// Every setWatches (as a SetWatches2 with no persistent lists, flag
    /// false) and setWatches2 (flag true), with the file it came from.
    set_watches: Vec<(String, bool, SetWatches2)>,
    /// Every reconfig request, with the file it came from.
    reconfigs: Vec<(String, ReconfigRequest)>,
    /// The file being decoded, and every file that had frames.
    file: String,
    frames_by_file: BTreeSet<String>,
}

/// Per-file decoding state: connections in one file are sequential, so the
/// outstanding requests are keyed by xid alone.
#[derive(Default)]
struct Session {
    pending: HashMap<i32, Pending>,
    request_had_read_only: Option<bool>,
    request_session: i64,
}

fn decode_request(d: &mut Dec, label_op: i32, t: &mut Tally) -> R<Pending> {
    let h: RequestHeader = d.rec("RequestHeader")?;
    ensure!(h.op == label_op, "header op {} but labelled {}", h.op, name_of(label_op));
    match h.op {
        op::PING => ensure!(h.xid == xid::PING, "ping xid {}", h.xid),
        op::AUTH => ensure!(h.xid == xid::AUTH, "auth xid {}", h.xid),
        op::SET_WATCHES | op::SET_WATCHES2 => {
            ensure!(h.xid == xid::SET_WATCHES || h.xid > 0, "setWatches xid {}", h.xid)
        }
        _ => ensure!(h.xid > 0, "request xid {}", h.xid),
    }
    let mut p = Pending { op: h.op, ..Default::default() };
    match h.op {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
            let b: CreateRequest = d.rec("CreateRequest")?;
            check_path(&b.path, "create")?;
            check_acls(&b.acl, "create")?;
            check_create_flags(h.op, b.flags)?;
            if b.data.is_none() {
                t.null_data_creates += 1;
            }
            p.path = Some(b.path);
        }
        op::CREATE_TTL => {
            let b: CreateTtlRequest = d.rec("CreateTtlRequest")?;
            check_path(&b.path, "createTTL")?;
            check_acls(&b.acl, "createTTL")?;
            check_create_flags(h.op, b.flags)?;
            ensure!(b.ttl > 0, "createTTL ttl {}", b.ttl);
            p.path = Some(b.path);
        }
        op::DELETE => {
            let b: DeleteRequest = d.rec("DeleteRequest")?;
            check_path(&b.path, "delete")?;
            check_version(b.version, "delete")?;
        }
        op::EXISTS => check_path(&d.rec::<ExistsRequest>("ExistsRequest")?.path, "exists")?,
        op::GET_DATA => check_path(&d.rec::<GetDataRequest>("GetDataRequest")?.path, "getData")?,
        op::SET_DATA => {
            let b: SetDataRequest = d.rec("SetDataRequest")?;
            check_path(&b.path, "setData")?;
            check_version(b.version, "setData")?;
        }
        op::GET_ACL => check_path(&d.rec::<GetAclRequest>("GetAclRequest")?.path, "getACL")?,
        op::SET_ACL => {
            let b: SetAclRequest = d.rec("SetAclRequest")?;
            check_path(&b.path, "setACL")?;
            check_acls(&b.acl, "setACL")?;
            check_version(b.version, "setACL")?;
        }
        op::GET_CHILDREN => check_path(&d.rec::<GetChildrenRequest>("GetChildrenRequest")?.path, "getChildren")?,
        op::GET_CHILDREN2 => check_path(&d.rec::<GetChildren2Request>("GetChildren2Request")?.path, "getChildren2")?,
        op::SYNC => {
            let b: SyncRequest = d.rec("SyncRequest")?;
            check_path(&b.path, "sync")?;
            p.path = Some(b.path);
        }
        op::CHECK => {
            let b: CheckVersionRequest = d.rec("CheckVersionRequest")?;
            check_path(&b.path, "check")?;
            check_version(b.version, "check")?;
        }
        op::MULTI | op::MULTI_READ => p.multi_ops = decode_multi_request(d, h.op, t)?,
        op::RECONFIG => {
            let b: ReconfigRequest = d.rec("ReconfigRequest")?;
            ensure!(b.cur_config_id >= -1, "reconfig curConfigId {}", b.cur_config_id);
            // Joining and new members are `id=host:ports` specs; leaving are ids.
            for s in [&b.joining_servers, &b.new_members].into_iter().flatten() {
                ensure!(s.split(',').all(|x| x.contains('=')), "reconfig server specs {s:?}");
            }
            if let Some(s) = &b.leaving_servers {
                ensure!(s.split(',').all(|x| x.parse::<u64>().is_ok()), "reconfig leaving ids {s:?}");
            }
            ensure!(
                b.joining_servers.is_some() || b.leaving_servers.is_some() || b.new_members.is_some(),
                "reconfig with no change: {b:?}"
            );
            t.reconfigs.push((t.file.clone(), b));
        }
        op::CHECK_WATCHES | op::REMOVE_WATCHES => {
            // Both are the same record shape; decode with the matching one.
            let (path, wt) = if h.op == op::CHECK_WATCHES {
                let b: CheckWatchesRequest = d.rec("CheckWatchesRequest")?;
                (b.path, b.watcher_type)
            } else {
                let b: RemoveWatchesRequest = d.rec("RemoveWatchesRequest")?;
                (b.path, b.watcher_type)
            };
            check_path(&path, "removeWatches")?;
            ensure!((1..=5).contains(&wt), "watcher type {wt}");
        }
        op::AUTH => {
            let b: AuthPacket = d.rec("AuthPacket")?;
            ensure!(b.auth_type == 0, "auth packet type {b:?}");
            ensure!(
                !b.scheme.is_empty() && b.scheme.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "auth scheme {b:?}"
            );
            ensure!(b.scheme != "digest" || b.auth.contains(&b':'), "digest auth without user:password {b:?}");
        }
        op::SET_WATCHES => {
            let b: SetWatches = d.rec("SetWatches")?;
            let as2 = SetWatches2 {
                relative_zxid: b.relative_zxid,
                data_watches: b.data_watches.clone(),
                exist_watches: b.exist_watches.clone(),
                child_watches: b.child_watches.clone(),
                ..Default::default()
            };
            t.set_watches.push((t.file.clone(), false, as2));
            ensure!(b.relative_zxid >= 0, "setWatches zxid {}", b.relative_zxid);
            for l in [&b.data_watches, &b.exist_watches, &b.child_watches] {
                check_paths(l, "setWatches")?;
            }
        }
        op::SET_WATCHES2 => {
            let b: SetWatches2 = d.rec("SetWatches2")?;
            t.set_watches.push((t.file.clone(), true, b.clone()));
            ensure!(b.relative_zxid >= 0, "setWatches2 zxid {}", b.relative_zxid);
            for l in [
                &b.data_watches,
                &b.exist_watches,
                &b.child_watches,
                &b.persistent_watches,
                &b.persistent_recursive_watches,
            ] {
                check_paths(l, "setWatches2")?;
            }
        }
        op::SASL => {
            d.rec::<SetSaslRequest>("SetSaslRequest")?;
        }
        op::GET_EPHEMERALS => {
            check_path(&d.rec::<GetEphemeralsRequest>("GetEphemeralsRequest")?.prefix_path, "getEphemerals")?
        }
        op::GET_ALL_CHILDREN_NUMBER => check_path(
            &d.rec::<GetAllChildrenNumberRequest>("GetAllChildrenNumberRequest")?.path,
            "getAllChildrenNumber",
        )?,
        op::ADD_WATCH => {
            let b: AddWatchRequest = d.rec("AddWatchRequest")?;
            check_path(&b.path, "addWatch")?;
            ensure!((0..=1).contains(&b.mode), "addWatch mode {}", b.mode);
        }
        op::PING | op::WHO_AM_I | op::CLOSE_SESSION => {}
        other => return Err(format!("no request decoding for opcode {other}")),
    }
    Ok(p)
}

/// `MultiHeader` + operation, until the `done` header. Returns the ops.
fn decode_multi_request(d: &mut Dec, multi_op: i32, t: &mut Tally) -> R<Vec<i32>> {
    let mut ops = Vec::new();
    loop {
        let h: MultiHeader = d.rec("MultiHeader")?;
        if h.done {
            ensure!(h.op == -1 && h.err == -1, "multi end header {h:?}");
            return Ok(ops);
        }
        ensure!(h.err == -1, "multi request header err {}: {h:?}", h.err);
        let read_op = matches!(h.op, op::GET_CHILDREN | op::GET_DATA);
        ensure!(read_op == (multi_op == op::MULTI_READ), "{} inside {}", name_of(h.op), name_of(multi_op));
        match h.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                let b: CreateRequest = d.rec("multi CreateRequest")?;
                check_path(&b.path, "multi create")?;
                check_acls(&b.acl, "multi create")?;
                check_create_flags(h.op, b.flags)?;
            }
            op::CREATE_TTL => {
                let b: CreateTtlRequest = d.rec("multi CreateTtlRequest")?;
                check_path(&b.path, "multi createTTL")?;
                check_create_flags(h.op, b.flags)?;
            }
            op::DELETE => {
                let b: DeleteRequest = d.rec("multi DeleteRequest")?;
                check_path(&b.path, "multi delete")?;
                check_version(b.version, "multi delete")?;
            }
            op::SET_DATA => {
                let b: SetDataRequest = d.rec("multi SetDataRequest")?;
                check_path(&b.path, "multi setData")?;
                check_version(b.version, "multi setData")?;
            }
            op::CHECK => {
                let b: CheckVersionRequest = d.rec("multi CheckVersionRequest")?;
                check_path(&b.path, "multi check")?;
                check_version(b.version, "multi check")?;
            }
            op::GET_CHILDREN => {
                check_path(&d.rec::<GetChildrenRequest>("multi GetChildrenRequest")?.path, "multi getChildren")?
            }
            op::GET_DATA => check_path(&d.rec::<GetDataRequest>("multi GetDataRequest")?.path, "multi getData")?,
            other => return Err(format!("opcode {other} inside a multi request")),
        }
        t.multi_req_ops.insert(h.op);
        ops.push(h.op);
    }
}

/// `MultiHeader` + result, until the `done` header; one result per request op.
fn decode_multi_reply(d: &mut Dec, req_ops: &[i32], zxid: i64, t: &mut Tally) -> R<()> {
    let mut i = 0;
    loop {
        let h: MultiHeader = d.rec("MultiHeader")?;
        if h.done {
            ensure!(h.op == -1 && h.err == -1, "multi end header {h:?}");
            ensure!(i == req_ops.len(), "{i} results for {} operations", req_ops.len());
            return Ok(());
        }
        ensure!(i < req_ops.len(), "more results than the {} operations", req_ops.len());
        // The server answers container and TTL creates with a create2 result.
        let create2_like = matches!(req_ops[i], op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL);
        ensure!(
            h.op == req_ops[i] || h.op == op::ERROR || (create2_like && h.op == op::CREATE2),
            "result {i} is {} for a {}",
            name_of(h.op),
            name_of(req_ops[i])
        );
        match h.op {
            op::ERROR => {
                let e: ErrorResponse = d.rec("multi ErrorResponse")?;
                ensure!(e.err == h.err && ERR_CODES.contains(&e.err), "multi error result {h:?} {e:?}");
                t.multi_error_results += 1;
            }
            _ => ensure!(h.err == 0, "multi result header err {}", h.err),
        }
        match h.op {
            op::ERROR | op::DELETE | op::CHECK => {}
            op::CREATE => check_path(&d.rec::<CreateResponse>("multi CreateResponse")?.path, "multi create")?,
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                let b: Create2Response = d.rec("multi Create2Response")?;
                check_path(&b.path, "multi create2")?;
                check_stat(&b.stat, zxid)?;
            }
            op::SET_DATA => check_stat(&d.rec::<SetDataResponse>("multi SetDataResponse")?.stat, zxid)?,
            op::GET_CHILDREN => {
                d.rec::<GetChildrenResponse>("multi GetChildrenResponse")?;
            }
            op::GET_DATA => {
                let b: GetDataResponse = d.rec("multi GetDataResponse")?;
                check_stat(&b.stat, zxid)?;
                ensure!(b.stat.data_length as usize == b.data.as_ref().map_or(0, |x| x.len()), "data length");
            }
            other => return Err(format!("opcode {other} inside a multi reply")),
        }
        t.multi_resp_ops.insert(h.op);
        i += 1;
    }
}

fn decode_reply(d: &mut Dec, label: &str, s: &mut Session, t: &mut Tally) -> R<()> {
    let h: ReplyHeader = d.rec("ReplyHeader")?;
    ensure!(ERR_CODES.contains(&h.err), "unknown err {}", h.err);
    ensure!(h.zxid >= -1, "reply zxid {}", h.zxid);
    if label == "notification" {
        ensure!(h.xid == xid::NOTIFICATION && h.err == 0, "notification header {h:?}");
        let e: WatcherEvent = d.rec("WatcherEvent")?;
        ensure!((1..=7).contains(&e.event_type), "event type {}", e.event_type);
        ensure!(e.state == keeper_state::SYNC_CONNECTED, "event state {}", e.state);
        check_path(&e.path, "notification")?;
        t.events.insert(e.event_type);
        return Ok(());
    }
    let label_op = op_of(label).ok_or_else(|| format!("unknown label {label}"))?;
    let p = s.pending.remove(&h.xid).ok_or_else(|| format!("reply xid {} answers no request", h.xid))?;
    ensure!(p.op == label_op, "reply labelled {label} answers a {} request", name_of(p.op));
    if h.err != 0 {
        t.errors.entry(label.to_string()).or_default().insert(h.err);
        return Ok(());
    }
    let z = h.zxid;
    match p.op {
        op::CREATE => {
            let b: CreateResponse = d.rec("CreateResponse")?;
            ensure!(b.path.starts_with(p.path.as_deref().unwrap_or("/")), "created {} for {:?}", b.path, p.path);
        }
        op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
            let b: Create2Response = d.rec("Create2Response")?;
            ensure!(b.path.starts_with(p.path.as_deref().unwrap_or("/")), "created {} for {:?}", b.path, p.path);
            check_stat(&b.stat, z)?;
            ensure!(b.stat.czxid == b.stat.mzxid && b.stat.version == 0, "fresh node stat {:?}", b.stat);
        }
        op::EXISTS => check_stat(&d.rec::<ExistsResponse>("ExistsResponse")?.stat, z)?,
        op::GET_DATA | op::RECONFIG => {
            let b: GetDataResponse = d.rec("GetDataResponse")?;
            check_stat(&b.stat, z)?;
            let n = b.data.as_ref().map_or(0, |x| x.len());
            ensure!(b.stat.data_length as usize == n, "dataLength {} for {n} bytes", b.stat.data_length);
        }
        op::SET_DATA => {
            let b: SetDataResponse = d.rec("SetDataResponse")?;
            check_stat(&b.stat, z)?;
            ensure!(b.stat.version > 0 && b.stat.mzxid == z, "stat after setData: {:?}", b.stat);
        }
        op::GET_ACL => {
            let b: GetAclResponse = d.rec("GetAclResponse")?;
            check_acls(&b.acl, "getACL reply")?;
            check_stat(&b.stat, z)?;
        }
        op::SET_ACL => {
            let b: SetAclResponse = d.rec("SetAclResponse")?;
            check_stat(&b.stat, z)?;
            ensure!(b.stat.aversion > 0, "setACL reply aversion {}", b.stat.aversion);
        }
        op::GET_CHILDREN => {
            let b: GetChildrenResponse = d.rec("GetChildrenResponse")?;
            ensure!(b.children.iter().all(|c| !c.is_empty() && !c.contains('/')), "children {:?}", b.children);
        }
        op::GET_CHILDREN2 => {
            let b: GetChildren2Response = d.rec("GetChildren2Response")?;
            ensure!(b.children.iter().all(|c| !c.is_empty() && !c.contains('/')), "children {:?}", b.children);
            check_stat(&b.stat, z)?;
            ensure!(b.stat.num_children as usize == b.children.len(), "numChildren {:?}", b.stat);
        }
        op::SYNC => {
            let b: SyncResponse = d.rec("SyncResponse")?;
            ensure!(Some(&b.path) == p.path.as_ref(), "synced {} for {:?}", b.path, p.path);
        }
        op::MULTI | op::MULTI_READ => decode_multi_reply(d, &p.multi_ops, z, t)?,
        op::SASL => {
            d.rec::<SetSaslResponse>("SetSaslResponse")?;
        }
        op::GET_EPHEMERALS => {
            check_paths(&d.rec::<GetEphemeralsResponse>("GetEphemeralsResponse")?.ephemerals, "ephemerals")?
        }
        op::GET_ALL_CHILDREN_NUMBER => {
            let b: GetAllChildrenNumberResponse = d.rec("GetAllChildrenNumberResponse")?;
            ensure!(b.total_number >= 0, "children number {}", b.total_number);
        }
        op::ADD_WATCH => {
            let b: ErrorResponse = d.rec("addWatch ErrorResponse")?;
            ensure!(b.err == 0, "addWatch reply body {b:?}");
        }
        op::WHO_AM_I => {
            let b: WhoAmIResponse = d.rec("WhoAmIResponse")?;
            ensure!(!b.client_info.is_empty(), "whoAmI with no identity");
            for c in &b.client_info {
                ensure!(KNOWN_SCHEMES.contains(&c.auth_scheme.as_str()), "whoAmI scheme {c:?}");
                ensure!(c.user.as_deref().is_some_and(|u| !u.is_empty()), "whoAmI {c:?}");
            }
        }
        op::DELETE
        | op::PING
        | op::CHECK_WATCHES
        | op::REMOVE_WATCHES
        | op::AUTH
        | op::SET_WATCHES
        | op::SET_WATCHES2
        | op::CLOSE_SESSION => {}
        other => return Err(format!("no reply decoding for opcode {other}")),
    }
    Ok(())
}

fn decode_frame(f: &Frame, s: &mut Session, t: &mut Tally) -> R<()> {
    let mut d = Dec::new(&f.bytes);
    match (f.dir, f.label.as_str()) {
        (Dir::C2s, "connect") => {
            let c: ConnectRequest = d.rec("ConnectRequest")?;
            ensure!(c.protocol_version == 0, "protocol version {}", c.protocol_version);
            ensure!(c.last_zxid_seen >= 0, "lastZxidSeen {}", c.last_zxid_seen);
            ensure!((1..=600_000).contains(&c.time_out), "timeout {}", c.time_out);
            ensure!(c.session_id >= 0 && c.passwd.len() == 16, "session {:x} passwd {:?}", c.session_id, c.passwd);
            ensure!(c.session_id != 0 || c.passwd.iter().all(|&b| b == 0), "new session with a password");
            // Session ids carry the time in their upper bits; the zxids of a
            // fresh test server are small: a swap of the two shows.
            ensure!(c.last_zxid_seen < 1 << 32, "lastZxidSeen {:#x}", c.last_zxid_seen);
            if c.session_id != 0 {
                ensure!(c.session_id >= 1 << 32, "session id {:#x}", c.session_id);
                t.reconnects += 1;
            }
            s.request_session = c.session_id;
            let ro = d.trailing_read_only()?;
            match ro {
                Some(b) => t.connect_read_only.insert((Dir::C2s, b)),
                None => {
                    t.connect_without_read_only += 1;
                    false
                }
            };
            s.pending.clear();
            s.request_had_read_only = Some(ro.is_some());
        }
        (Dir::S2c, "connect") => {
            let c: ConnectResponse = d.rec("ConnectResponse")?;
            ensure!(c.protocol_version == 0, "protocol version {}", c.protocol_version);
            if c.session_id == 0 {
                ensure!(c.time_out == 0, "rejected session with timeout {}", c.time_out);
            } else {
                ensure!(c.session_id > 0 && (1..=600_000).contains(&c.time_out), "session {c:?}");
                ensure!(c.passwd.len() == 16 && c.passwd.iter().any(|&b| b != 0), "session password {:?}", c.passwd);
                ensure!(c.session_id >= 1 << 32, "session id {:#x}", c.session_id);
                ensure!(
                    s.request_session == 0 || s.request_session == c.session_id,
                    "reconnect to {:#x} answered with {:#x}",
                    s.request_session,
                    c.session_id
                );
            }
            let ro = d.trailing_read_only()?;
            ensure!(
                s.request_had_read_only == Some(ro.is_some()),
                "response readOnly byte present: {}, in the request: {:?}",
                ro.is_some(),
                s.request_had_read_only
            );
            if let Some(b) = ro {
                t.connect_read_only.insert((Dir::S2c, b));
            }
        }
        (Dir::C2s, label) => {
            let o = op_of(label).ok_or_else(|| format!("unknown label {label}"))?;
            let xid = i32::from_be_bytes(f.bytes.get(..4).ok_or("short frame")?.try_into().unwrap());
            let p = decode_request(&mut d, o, t)?;
            s.pending.insert(xid, p);
        }
        (Dir::S2c, label) => decode_reply(&mut d, label, s, t)?,
    }
    d.finish()
}

#[test]
fn golden_frames_decode_and_reencode_exactly() {
    let mut t = Tally::default();
    let mut failures = Vec::new();
    let mut total = 0;
    for path in frame_files() {
        let mut s = Session::default();
        t.file = path.file_name().unwrap().to_string_lossy().into_owned();
        for f in load_file(&path) {
            total += 1;
            t.frames_by_file.insert(f.file.clone());
            *t.frames.entry((f.label.clone(), f.dir)).or_default() += 1;
            if let Err(e) = decode_frame(&f, &mut s, &mut t) {
                failures.push(format!(
                    "{}:{} {} {}: {e}\n    frame {}",
                    f.file,
                    f.line,
                    f.dir.name(),
                    f.label,
                    hex(&f.bytes)
                ));
            }
        }
    }

    eprintln!("golden frames: {total} decoded and re-encoded");
    let labels: BTreeSet<&String> = t.frames.keys().map(|(l, _)| l).collect();
    for l in labels {
        let c = t.frames.get(&(l.clone(), Dir::C2s)).copied().unwrap_or(0);
        let r = t.frames.get(&(l.clone(), Dir::S2c)).copied().unwrap_or(0);
        let errs = t.errors.get(l).map(|e| format!("  error replies {e:?}")).unwrap_or_default();
        eprintln!("  {l:22} c2s {c:4}  s2c {r:4}{errs}");
    }
    eprintln!(
        "  multi ops: requests {:?}, replies {:?}, error results {}; events {:?}; reconnects {}",
        t.multi_req_ops, t.multi_resp_ops, t.multi_error_results, t.events, t.reconnects
    );

    assert!(failures.is_empty(), "{} of {total} frames failed:\n{}", failures.len(), failures.join("\n"));

    // Coverage: the capture must not silently shrink.
    let mut missing = Vec::new();
    for name in EXPECTED_OPS.iter().chain(["connect"].iter()) {
        for dir in [Dir::C2s, Dir::S2c] {
            if !t.frames.contains_key(&(name.to_string(), dir)) {
                missing.push(format!("{} {name}", dir.name()));
            }
        }
    }
    if !t.frames.contains_key(&("notification".to_string(), Dir::S2c)) {
        missing.push("s2c notification".into());
    }
    for o in EXPECTED_MULTI_OPS {
        if !t.multi_req_ops.contains(o) {
            missing.push(format!("{} inside a multi request", name_of(*o)));
        }
    }
    for o in [op::CREATE, op::CREATE2, op::SET_DATA, op::DELETE, op::CHECK, op::GET_DATA, op::GET_CHILDREN, op::ERROR] {
        if !t.multi_resp_ops.contains(&o) {
            missing.push(format!("{} result inside a multi reply", name_of(o)));
        }
    }
    for e in [
        event_type::NODE_CREATED,
        event_type::NODE_DELETED,
        event_type::NODE_DATA_CHANGED,
        event_type::NODE_CHILDREN_CHANGED,
    ] {
        if !t.events.contains(&e) {
            missing.push(format!("notification of event type {e}"));
        }
    }
    for (dir, b) in [(Dir::C2s, false), (Dir::C2s, true), (Dir::S2c, false)] {
        if !t.connect_read_only.contains(&(dir, b)) {
            missing.push(format!("{} connect with readOnly={b}", dir.name()));
        }
    }
    let all_errors: BTreeSet<i32> = t.errors.values().flatten().copied().collect();
    for e in [
        err::NO_NODE,
        err::NODE_EXISTS,
        err::BAD_VERSION,
        err::NOT_EMPTY,
        err::NO_AUTH,
        err::AUTH_FAILED,
        err::NO_WATCHER,
        err::RECONFIG_DISABLED,
    ] {
        if !all_errors.contains(&e) {
            missing.push(format!("an error reply with err {e}"));
        }
    }
    if t.null_data_creates == 0 {
        missing.push("a create with null data".into());
    }
    if t.reconnects == 0 {
        missing.push("a reconnect to an existing session".into());
    }
    for file in EXPECTED_FILES {
        if !t.frames_by_file.contains(*file) {
            missing.push(format!("frames from {file}"));
        }
    }
    assert!(missing.is_empty(), "the golden captures lack: {}", missing.join(", "));

    // The watches that scripts/capture-golden leaves set when it drops the
    // connection, each in its own list: a setWatches record whose lists were
    // out of order would put them elsewhere.
    fn data(w: &SetWatches2) -> &Vec<String> {
        &w.data_watches
    }
    fn exist(w: &SetWatches2) -> &Vec<String> {
        &w.exist_watches
    }
    fn child(w: &SetWatches2) -> &Vec<String> {
        &w.child_watches
    }
    fn persistent(w: &SetWatches2) -> &Vec<String> {
        &w.persistent_watches
    }
    fn recursive(w: &SetWatches2) -> &Vec<String> {
        &w.persistent_recursive_watches
    }
    type Pick = fn(&SetWatches2) -> &Vec<String>;
    let has = |file: &str, v2: bool, pick: Pick, path: &str| {
        t.set_watches.iter().any(|(f, is2, w)| f == file && *is2 == v2 && pick(w).iter().any(|p| p == path))
    };
    let expected: &[(&str, bool, Pick, &str, &str)] = &[
        ("zkcli.frames", false, data, "data", "/zc/a"),
        ("zkcli.frames", false, exist, "exist", "/zc/future"),
        ("zkcli.frames", false, child, "child", "/zc/cont"),
        ("zkcli.frames", true, data, "data", "/zc/eph"),
        ("zkcli.frames", true, exist, "exist", "/zc/future2"),
        ("zkcli.frames", true, persistent, "persistent", "/zc/cont"),
        // zkCli's addWatch defaults to PERSISTENT_RECURSIVE.
        ("zkcli.frames", true, recursive, "persistent recursive", "/zc/a"),
        ("zkcli.frames", true, recursive, "persistent recursive", "/zc"),
        ("cclient.frames", false, exist, "exist", "/cc/later"),
    ];
    // The reconfig requests that scripts/capture-golden sends, field by field.
    let rc = |file: &str, j: Option<&str>, l: Option<&str>, n: Option<&str>, v: i64| {
        t.reconfigs.iter().any(|(f, r)| {
            f == file
                && r.joining_servers.as_deref().map(|x| x.split('=').next().unwrap()) == j
                && r.leaving_servers.as_deref() == l
                && r.new_members.as_deref().map(|x| x.split('=').next().unwrap()) == n
                && r.cur_config_id == v
        })
    };
    for (file, j, l, n, v) in [
        ("zkcli.frames", Some("server.5"), None, None, -1),
        ("zkcli.frames", None, Some("5"), None, -1),
        ("zkcli.frames", None, None, Some("server.1"), -1),
        ("kazoo.frames", Some("server.7"), None, None, -1),
        ("kazoo.frames", None, Some("7"), None, 5),
        ("cclient.frames", Some("6"), None, None, -1),
    ] {
        assert!(
            rc(file, j, l, n, v),
            "{file}: no reconfig joining {j:?} leaving {l:?} members {n:?} from config {v}: {:?}",
            t.reconfigs
        );
    }

    for (file, v2, pick, list, path) in expected {
        assert!(
            has(file, *v2, *pick, path),
            "{file}: no setWatches{} with {path} among its {list} watches: {:?}",
            if *v2 { "2" } else { "" },
            t.set_watches
        );
    }
}

/// The checks above must be able to fail: a real frame with one field
/// changed, with a byte too many, or under the wrong label is refused.
#[test]
fn golden_checks_catch_corruption() {
    let frames: Vec<Frame> = frame_files().iter().flat_map(|p| load_file(p)).collect();
    let xid_of = |b: &[u8]| i32::from_be_bytes(b[..4].try_into().unwrap());
    let run = |f: &Frame, bytes: Vec<u8>, label: &str, pending_op: Option<i32>| {
        let mut s = Session::default();
        if let Some(o) = pending_op {
            s.pending.insert(xid_of(&bytes), Pending { op: o, ..Default::default() });
        }
        let g = Frame { file: f.file.clone(), line: f.line, dir: f.dir, label: label.to_string(), bytes };
        decode_frame(&g, &mut s, &mut Tally::default())
    };

    // A successful getData reply with data: as captured it passes.
    let f = frames
        .iter()
        .find(|f| {
            f.dir == Dir::S2c
                && f.label == "getData"
                && ReplyHeader::from_bytes(&f.bytes).unwrap().err == 0
                && GetDataResponse::from_bytes(&f.bytes[16..]).unwrap().data.is_some_and(|d| !d.is_empty())
        })
        .expect("a successful getData reply with data");
    assert_eq!(run(f, f.bytes.clone(), "getData", Some(op::GET_DATA)), Ok(()));

    // Its stat's dataLength off by one: same length, same layout, wrong value.
    let mut body = GetDataResponse::from_bytes(&f.bytes[16..]).unwrap();
    body.stat.data_length += 1;
    let mut bad = f.bytes[..16].to_vec();
    body.write_to(&mut bad);
    assert_eq!(bad.len(), f.bytes.len());
    assert!(run(f, bad, "getData", Some(op::GET_DATA)).is_err(), "a wrong dataLength went unnoticed");

    // Its stat's mzxid beyond the zxid of the reply header.
    let mut body = GetDataResponse::from_bytes(&f.bytes[16..]).unwrap();
    body.stat.mzxid = i64::MAX / 2;
    let mut bad = f.bytes[..16].to_vec();
    body.write_to(&mut bad);
    assert!(run(f, bad, "getData", Some(op::GET_DATA)).is_err(), "a wrong mzxid went unnoticed");

    // One byte too many.
    let mut longer = f.bytes.clone();
    longer.push(0);
    assert!(run(f, longer, "getData", Some(op::GET_DATA)).is_err(), "a trailing byte went unnoticed");

    // Decoded as the answer to another request.
    assert!(run(f, f.bytes.clone(), "exists", Some(op::EXISTS)).is_err(), "a getData reply passed as exists");

    // A request labelled with another opcode.
    let f = frames.iter().find(|f| f.dir == Dir::C2s && f.label == "getData").unwrap();
    assert!(run(f, f.bytes.clone(), "exists", None).is_err(), "a getData request passed as exists");
}
