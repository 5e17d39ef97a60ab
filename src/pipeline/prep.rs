//! Stage 1, prep: decode a request and stamp what is not deterministic.
//!
//! - Inputs: the opcode and body of one request frame, the caller's
//!   identities, and the wall-clock time, read here and nowhere later.
//! - Outputs: a [`Prepped`]: a [`Read`] served from the local tree, a
//!   [`WriteOp`] to propose, or an immediate error reply.
//! - Invariants: prep never looks at the tree. Checks that depend on state
//!   (NoNode, BadVersion, NoAuth, ...) belong to apply, which runs them in
//!   ZooKeeper's order identically on every replica. Prep only rejects what
//!   ZooKeeper rejects before touching state: undecodable bodies
//!   (MARSHALLINGERROR), unknown opcodes (UNIMPLEMENTED), and `reconfig`
//!   on a server that does not allow it.

use crate::tree::{CreateOp, MultiOp, WriteOp};
use jute::proto::*;
use jute::{DecodeError, Jute, Reader};

/// A read, or a request answered in the session's order without changing
/// the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    GetAcl {
        path: String,
    },
    GetChildren {
        path: String,
        watch: bool,
        with_stat: bool,
    },
    GetAllChildrenNumber {
        path: String,
    },
    GetEphemerals {
        prefix: String,
    },
    /// The path is echoed as sent, null included.
    Sync {
        path: Option<String>,
    },
    /// A reconfiguration of the ensemble (run by the leader).
    Reconfig(ReconfigRequest),
    Ping,
    SetWatches(SetWatches2),
    AddWatch {
        path: String,
        mode: i32,
    },
    CheckWatches {
        path: String,
        watcher_type: i32,
    },
    RemoveWatches {
        path: String,
        watcher_type: i32,
    },
    WhoAmI,
    MultiRead(Vec<MultiReadOp>),
    /// The answer to an auth packet, already decided by the connection.
    AuthResult {
        ok: bool,
    },
    /// Reply with this error code and no body.
    Error(i32),
    /// A multi or multiRead that decoded but cannot run (a null path, a
    /// write in a multiRead): ZooKeeper fails it before it becomes a
    /// transaction, and follows the error header with an empty result list.
    MultiError(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiReadOp {
    GetData { path: String },
    GetChildren { path: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepped {
    Read(Read),
    Write(WriteOp),
}

/// Settings prep needs.
#[derive(Debug, Clone, Copy)]
pub struct PrepConfig {
    pub reconfig_enabled: bool,
    /// An ensemble member (a standalone server cannot reconfigure).
    pub replicated: bool,
}

/// Opcodes ZooKeeper handles as writes: an undecodable one still becomes a
/// (failed) transaction and consumes a zxid.
fn is_write(opcode: i32) -> bool {
    matches!(
        opcode,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::SET_ACL
            | op::MULTI
            | op::RECONFIG
            | op::CHECK
            | op::CREATE_SESSION
    )
}

pub fn prep(opcode: i32, body: &[u8], cfg: PrepConfig) -> Prepped {
    // ZooKeeper decodes a null path as null and fails later, in different
    // ways: MARSHALLINGERROR for most requests, BADARGUMENTS (path
    // validation) for setData, setACL and check, and for a multi an error
    // reply followed by an empty result list (see `decode_multi_ops`). A
    // multi whose structure cannot be read fails without that list.
    const MULTI_HEADER_LEN: usize = 9;
    let marshalling = || {
        if is_write(opcode) {
            Prepped::Write(WriteOp::Error { code: err::MARSHALLING_ERROR })
        } else {
            Prepped::Read(Read::Error(err::MARSHALLING_ERROR))
        }
    };
    match opcode {
        op::MULTI | op::MULTI_READ if body.len() < MULTI_HEADER_LEN => {
            Prepped::Read(Read::Error(err::MARSHALLING_ERROR))
        }
        op::SET_DATA | op::SET_ACL | op::CHECK | op::SYNC => {
            decode(opcode, body, cfg).unwrap_or_else(|_| marshalling())
        }
        _ if starts_with_path(opcode) && starts_with_null_string(body) => marshalling(),
        _ => decode(opcode, body, cfg).unwrap_or_else(|_| marshalling()),
    }
}

/// Requests whose record starts with a path (setData, setACL, check and
/// sync are handled apart).
fn starts_with_path(opcode: i32) -> bool {
    matches!(
        opcode,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::EXISTS
            | op::GET_DATA
            | op::GET_ACL
            | op::GET_CHILDREN
            | op::GET_CHILDREN2
            | op::GET_ALL_CHILDREN_NUMBER
            | op::GET_EPHEMERALS
            | op::ADD_WATCH
            | op::CHECK_WATCHES
            | op::REMOVE_WATCHES
    )
}

/// Whether the next Jute string is null (length -1). Every request record
/// that carries a path starts with it.
fn starts_with_null_string(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4] == [0xff; 4]
}

fn invalid(r: &Reader<'_>, what: &'static str) -> DecodeError {
    DecodeError::Invalid { offset: r.position(), what }
}

/// setWatches with a null list fails in ZooKeeper (MARSHALLINGERROR); the
/// record decoder would read null as empty, so look first.
fn reject_null_lists(body: &[u8], lists: usize) -> Result<(), DecodeError> {
    let r = &mut Reader::new(body);
    r.read_i64()?;
    for _ in 0..lists {
        let n = r.read_i32()?;
        if n < 0 {
            return Err(invalid(r, "null watch list"));
        }
        for _ in 0..n {
            r.read_buffer()?;
        }
    }
    Ok(())
}

fn create_op(opcode: i32, r: &mut Reader<'_>) -> Result<CreateOp, DecodeError> {
    if opcode == op::CREATE_TTL {
        let c = CreateTtlRequest::read_from(r)?;
        Ok(CreateOp { path: c.path, data: c.data, acl: c.acl, flags: c.flags, ttl: c.ttl, opcode })
    } else {
        let c = CreateRequest::read_from(r)?;
        Ok(CreateOp { path: c.path, data: c.data, acl: c.acl, flags: c.flags, ttl: -1, opcode })
    }
}

fn decode(opcode: i32, body: &[u8], cfg: PrepConfig) -> Result<Prepped, DecodeError> {
    let r = &mut Reader::new(body);
    let read = |x: Read| Ok(Prepped::Read(x));
    match opcode {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
            Ok(Prepped::Write(WriteOp::Create(create_op(opcode, r)?)))
        }
        op::DELETE => {
            let d = DeleteRequest::read_from(r)?;
            Ok(Prepped::Write(WriteOp::Delete { path: d.path, version: d.version }))
        }
        op::SET_DATA => {
            let s = SetDataRequest::read_from(r)?;
            Ok(Prepped::Write(WriteOp::SetData { path: s.path, data: s.data, version: s.version }))
        }
        op::SET_ACL => {
            let s = SetAclRequest::read_from(r)?;
            Ok(Prepped::Write(WriteOp::SetAcl { path: s.path, acl: s.acl, version: s.version }))
        }
        op::CLOSE_SESSION => Ok(Prepped::Write(WriteOp::CloseSession)),
        op::MULTI => decode_multi(r),
        op::EXISTS => {
            let q = ExistsRequest::read_from(r)?;
            read(Read::Exists { path: q.path, watch: q.watch })
        }
        op::GET_DATA => {
            let q = GetDataRequest::read_from(r)?;
            read(Read::GetData { path: q.path, watch: q.watch })
        }
        op::GET_ACL => read(Read::GetAcl { path: GetAclRequest::read_from(r)?.path }),
        op::GET_CHILDREN => {
            let q = GetChildrenRequest::read_from(r)?;
            read(Read::GetChildren { path: q.path, watch: q.watch, with_stat: false })
        }
        op::GET_CHILDREN2 => {
            let q = GetChildren2Request::read_from(r)?;
            read(Read::GetChildren { path: q.path, watch: q.watch, with_stat: true })
        }
        op::GET_ALL_CHILDREN_NUMBER => {
            read(Read::GetAllChildrenNumber { path: GetAllChildrenNumberRequest::read_from(r)?.path })
        }
        op::GET_EPHEMERALS => read(Read::GetEphemerals { prefix: GetEphemeralsRequest::read_from(r)?.prefix_path }),
        op::SYNC => read(Read::Sync { path: r.read_ustring()? }),
        op::PING => read(Read::Ping),
        op::SET_WATCHES => {
            reject_null_lists(body, 3)?;
            let w = SetWatches::read_from(r)?;
            read(Read::SetWatches(SetWatches2 {
                relative_zxid: w.relative_zxid,
                data_watches: w.data_watches,
                exist_watches: w.exist_watches,
                child_watches: w.child_watches,
                persistent_watches: vec![],
                persistent_recursive_watches: vec![],
            }))
        }
        op::SET_WATCHES2 => {
            reject_null_lists(body, 5)?;
            read(Read::SetWatches(SetWatches2::read_from(r)?))
        }
        op::ADD_WATCH => {
            let a = AddWatchRequest::read_from(r)?;
            if !matches!(a.mode, add_watch_mode::PERSISTENT | add_watch_mode::PERSISTENT_RECURSIVE) {
                return Err(invalid(r, "addWatch mode"));
            }
            read(Read::AddWatch { path: a.path, mode: a.mode })
        }
        op::CHECK_WATCHES => {
            let c = CheckWatchesRequest::read_from(r)?;
            check_watcher_type(r, c.watcher_type)?;
            read(Read::CheckWatches { path: c.path, watcher_type: c.watcher_type })
        }
        op::REMOVE_WATCHES => {
            let c = RemoveWatchesRequest::read_from(r)?;
            check_watcher_type(r, c.watcher_type)?;
            read(Read::RemoveWatches { path: c.path, watcher_type: c.watcher_type })
        }
        op::WHO_AM_I => read(Read::WhoAmI),
        op::MULTI_READ => decode_multi_read(r),
        op::RECONFIG => {
            let req = ReconfigRequest::read_from(r)?;
            // ZooKeeper answers RECONFIGDISABLED unless reconfigEnabled, and
            // a standalone one cannot reconfigure a single server. Either
            // way the request went through as a failed transaction.
            match (cfg.reconfig_enabled, cfg.replicated) {
                (false, _) => Ok(Prepped::Write(WriteOp::Error { code: err::RECONFIG_DISABLED })),
                (true, false) => Ok(Prepped::Write(WriteOp::Error { code: err::UNIMPLEMENTED })),
                (true, true) => read(Read::Reconfig(req)),
            }
        }
        // A session is created by the handshake; a createSession on an open
        // session has no ConnectRequest body to read.
        op::CREATE_SESSION => Err(invalid(r, "createSession on an open session")),
        // A top-level check runs as a (write) transaction, as in ZooKeeper,
        // which reports its errors but never answers a success; we answer
        // the success too.
        op::CHECK => {
            let c = CheckVersionRequest::read_from(r)?;
            Ok(Prepped::Write(WriteOp::Check { path: c.path, version: c.version }))
        }
        _ => read(Read::Error(err::UNIMPLEMENTED)),
    }
}

fn check_watcher_type(r: &Reader<'_>, t: i32) -> Result<(), DecodeError> {
    if (watcher_type::CHILDREN..=watcher_type::PERSISTENT_RECURSIVE).contains(&t) {
        Ok(())
    } else {
        Err(invalid(r, "watcher type"))
    }
}

/// One operation of a multi or multiRead request. ZooKeeper's record
/// decoder accepts the same nine operation types in both; an unknown type
/// is a decoding failure, a read in a multi (or a write in a multiRead) a
/// failure of the request after decoding.
enum AnyMultiOp {
    Write(MultiOp),
    Read(MultiReadOp),
}

/// The operations, and whether any of them had a null path (which fails
/// the whole request after decoding).
fn decode_multi_ops(r: &mut Reader<'_>) -> Result<(Vec<AnyMultiOp>, bool), DecodeError> {
    let mut ops = Vec::new();
    let mut null_path = false;
    loop {
        let h = MultiHeader::read_from(r)?;
        if h.done {
            return Ok((ops, null_path));
        }
        null_path |= starts_with_null_string(r.rest());
        let o = match h.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                AnyMultiOp::Write(MultiOp::Create(create_op(h.op, r)?))
            }
            op::DELETE => {
                let d = DeleteRequest::read_from(r)?;
                AnyMultiOp::Write(MultiOp::Delete { path: d.path, version: d.version })
            }
            op::SET_DATA => {
                let s = SetDataRequest::read_from(r)?;
                AnyMultiOp::Write(MultiOp::SetData { path: s.path, data: s.data, version: s.version })
            }
            op::CHECK => {
                let c = CheckVersionRequest::read_from(r)?;
                AnyMultiOp::Write(MultiOp::Check { path: c.path, version: c.version })
            }
            // ZooKeeper ignores the watch flags inside a multiRead.
            op::GET_DATA => AnyMultiOp::Read(MultiReadOp::GetData { path: GetDataRequest::read_from(r)?.path }),
            op::GET_CHILDREN => {
                AnyMultiOp::Read(MultiReadOp::GetChildren { path: GetChildrenRequest::read_from(r)?.path })
            }
            _ => return Err(invalid(r, "multi operation type")),
        };
        ops.push(o);
    }
}

fn decode_multi(r: &mut Reader<'_>) -> Result<Prepped, DecodeError> {
    let mut writes = Vec::new();
    let (ops, null_path) = decode_multi_ops(r)?;
    if null_path {
        return Ok(Prepped::Read(Read::MultiError(err::MARSHALLING_ERROR)));
    }
    for o in ops {
        match o {
            AnyMultiOp::Write(w) => writes.push(w),
            // ZooKeeper answers a read inside a multi with a bare error.
            AnyMultiOp::Read(_) => return Ok(Prepped::Write(WriteOp::Error { code: err::MARSHALLING_ERROR })),
        }
    }
    Ok(Prepped::Write(WriteOp::Multi(writes)))
}

fn decode_multi_read(r: &mut Reader<'_>) -> Result<Prepped, DecodeError> {
    let mut reads = Vec::new();
    let (ops, null_path) = decode_multi_ops(r)?;
    if null_path {
        return Ok(Prepped::Read(Read::MultiError(err::MARSHALLING_ERROR)));
    }
    for o in ops {
        match o {
            AnyMultiOp::Read(q) => reads.push(q),
            AnyMultiOp::Write(_) => return Ok(Prepped::Read(Read::MultiError(err::MARSHALLING_ERROR))),
        }
    }
    Ok(Prepped::Read(Read::MultiRead(reads)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: PrepConfig = PrepConfig { reconfig_enabled: false, replicated: false };

    #[test]
    fn unknown_is_unimplemented_and_top_level_check_is_a_write() {
        assert_eq!(prep(999, &[], CFG), Prepped::Read(Read::Error(err::UNIMPLEMENTED)));
        let body = CheckVersionRequest { path: "/a".into(), version: 1 }.to_bytes();
        assert_eq!(prep(op::CHECK, &body, CFG), Prepped::Write(WriteOp::Check { path: "/a".into(), version: 1 }));
    }

    #[test]
    fn garbage_is_marshalling_error() {
        assert_eq!(
            prep(op::CREATE, &[0, 0, 0, 9], CFG),
            Prepped::Write(WriteOp::Error { code: err::MARSHALLING_ERROR })
        );
        assert_eq!(prep(op::GET_DATA, &[0, 0, 0, 9], CFG), Prepped::Read(Read::Error(err::MARSHALLING_ERROR)));
        // A null path is a marshalling error, not an empty path.
        let null_path = [0xff, 0xff, 0xff, 0xff, 0];
        assert_eq!(prep(op::EXISTS, &null_path, CFG), Prepped::Read(Read::Error(err::MARSHALLING_ERROR)));
        assert_eq!(prep(op::SYNC, &null_path[..4], CFG), Prepped::Read(Read::Sync { path: None }));
    }

    #[test]
    fn multi_framing() {
        let mut body = Vec::new();
        MultiHeader { op: op::CHECK, done: false, err: -1 }.write_to(&mut body);
        CheckVersionRequest { path: "/a".into(), version: 3 }.write_to(&mut body);
        MultiHeader { op: -1, done: true, err: -1 }.write_to(&mut body);
        assert_eq!(
            prep(op::MULTI, &body, CFG),
            Prepped::Write(WriteOp::Multi(vec![MultiOp::Check { path: "/a".into(), version: 3 }]))
        );
    }
}
