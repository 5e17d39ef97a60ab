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
//!   (MARSHALLINGERROR), unknown opcodes and top-level `check`
//!   (UNIMPLEMENTED), and `reconfig` on a server that does not allow it.

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
    Sync {
        path: String,
    },
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiReadOp {
    GetData { path: String, watch: bool },
    GetChildren { path: String, watch: bool },
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
}

pub fn prep(opcode: i32, body: &[u8], cfg: PrepConfig) -> Prepped {
    match decode(opcode, body, cfg) {
        Ok(p) => p,
        Err(_) => Prepped::Read(Read::Error(err::MARSHALLING_ERROR)),
    }
}

fn create_op(opcode: i32, r: &mut Reader<'_>) -> Result<CreateOp, DecodeError> {
    if opcode == op::CREATE_TTL {
        let c = CreateTtlRequest::read_from(r)?;
        Ok(CreateOp {
            path: c.path,
            data: c.data,
            acl: c.acl,
            flags: c.flags,
            ttl: c.ttl,
            opcode,
        })
    } else {
        let c = CreateRequest::read_from(r)?;
        Ok(CreateOp {
            path: c.path,
            data: c.data,
            acl: c.acl,
            flags: c.flags,
            ttl: -1,
            opcode,
        })
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
            Ok(Prepped::Write(WriteOp::Delete {
                path: d.path,
                version: d.version,
            }))
        }
        op::SET_DATA => {
            let s = SetDataRequest::read_from(r)?;
            Ok(Prepped::Write(WriteOp::SetData {
                path: s.path,
                data: s.data,
                version: s.version,
            }))
        }
        op::SET_ACL => {
            let s = SetAclRequest::read_from(r)?;
            Ok(Prepped::Write(WriteOp::SetAcl {
                path: s.path,
                acl: s.acl,
                version: s.version,
            }))
        }
        op::CLOSE_SESSION => Ok(Prepped::Write(WriteOp::CloseSession)),
        op::MULTI => decode_multi(r),
        op::EXISTS => {
            let q = ExistsRequest::read_from(r)?;
            read(Read::Exists {
                path: q.path,
                watch: q.watch,
            })
        }
        op::GET_DATA => {
            let q = GetDataRequest::read_from(r)?;
            read(Read::GetData {
                path: q.path,
                watch: q.watch,
            })
        }
        op::GET_ACL => read(Read::GetAcl {
            path: GetAclRequest::read_from(r)?.path,
        }),
        op::GET_CHILDREN => {
            let q = GetChildrenRequest::read_from(r)?;
            read(Read::GetChildren {
                path: q.path,
                watch: q.watch,
                with_stat: false,
            })
        }
        op::GET_CHILDREN2 => {
            let q = GetChildren2Request::read_from(r)?;
            read(Read::GetChildren {
                path: q.path,
                watch: q.watch,
                with_stat: true,
            })
        }
        op::GET_ALL_CHILDREN_NUMBER => read(Read::GetAllChildrenNumber {
            path: GetAllChildrenNumberRequest::read_from(r)?.path,
        }),
        op::GET_EPHEMERALS => read(Read::GetEphemerals {
            prefix: GetEphemeralsRequest::read_from(r)?.prefix_path,
        }),
        op::SYNC => read(Read::Sync {
            path: SyncRequest::read_from(r)?.path,
        }),
        op::PING => read(Read::Ping),
        op::SET_WATCHES => {
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
        op::SET_WATCHES2 => read(Read::SetWatches(SetWatches2::read_from(r)?)),
        op::ADD_WATCH => {
            let a = AddWatchRequest::read_from(r)?;
            read(Read::AddWatch {
                path: a.path,
                mode: a.mode,
            })
        }
        op::CHECK_WATCHES => {
            let c = CheckWatchesRequest::read_from(r)?;
            read(Read::CheckWatches {
                path: c.path,
                watcher_type: c.watcher_type,
            })
        }
        op::REMOVE_WATCHES => {
            let c = RemoveWatchesRequest::read_from(r)?;
            read(Read::RemoveWatches {
                path: c.path,
                watcher_type: c.watcher_type,
            })
        }
        op::WHO_AM_I => read(Read::WhoAmI),
        op::MULTI_READ => decode_multi_read(r),
        op::RECONFIG => {
            ReconfigRequest::read_from(r)?;
            // A standalone ZooKeeper answers RECONFIGDISABLED unless
            // reconfigEnabled, and cannot reconfigure a single server.
            let code = if cfg.reconfig_enabled {
                err::UNIMPLEMENTED
            } else {
                err::RECONFIG_DISABLED
            };
            read(Read::Error(code))
        }
        // check is only meaningful inside a multi; SASL is not configured.
        _ => read(Read::Error(err::UNIMPLEMENTED)),
    }
}

fn decode_multi(r: &mut Reader<'_>) -> Result<Prepped, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read_from(r)?;
        if h.done {
            break;
        }
        let o = match h.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                MultiOp::Create(create_op(h.op, r)?)
            }
            op::DELETE => {
                let d = DeleteRequest::read_from(r)?;
                MultiOp::Delete {
                    path: d.path,
                    version: d.version,
                }
            }
            op::SET_DATA => {
                let s = SetDataRequest::read_from(r)?;
                MultiOp::SetData {
                    path: s.path,
                    data: s.data,
                    version: s.version,
                }
            }
            op::CHECK => {
                let c = CheckVersionRequest::read_from(r)?;
                MultiOp::Check {
                    path: c.path,
                    version: c.version,
                }
            }
            _ => {
                return Err(DecodeError::Invalid {
                    offset: r.position(),
                    what: "multi operation type",
                })
            }
        };
        ops.push(o);
    }
    Ok(Prepped::Write(WriteOp::Multi(ops)))
}

fn decode_multi_read(r: &mut Reader<'_>) -> Result<Prepped, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read_from(r)?;
        if h.done {
            break;
        }
        let o = match h.op {
            op::GET_DATA => {
                let q = GetDataRequest::read_from(r)?;
                MultiReadOp::GetData {
                    path: q.path,
                    watch: q.watch,
                }
            }
            op::GET_CHILDREN => {
                let q = GetChildrenRequest::read_from(r)?;
                MultiReadOp::GetChildren {
                    path: q.path,
                    watch: q.watch,
                }
            }
            _ => {
                return Err(DecodeError::Invalid {
                    offset: r.position(),
                    what: "multiRead operation type",
                })
            }
        };
        ops.push(o);
    }
    Ok(Prepped::Read(Read::MultiRead(ops)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: PrepConfig = PrepConfig {
        reconfig_enabled: false,
    };

    #[test]
    fn unknown_and_top_level_check_are_unimplemented() {
        assert_eq!(
            prep(999, &[], CFG),
            Prepped::Read(Read::Error(err::UNIMPLEMENTED))
        );
        let body = CheckVersionRequest {
            path: "/a".into(),
            version: 1,
        }
        .to_bytes();
        assert_eq!(
            prep(op::CHECK, &body, CFG),
            Prepped::Read(Read::Error(err::UNIMPLEMENTED))
        );
    }

    #[test]
    fn garbage_is_marshalling_error() {
        assert_eq!(
            prep(op::CREATE, &[0, 0, 0, 9], CFG),
            Prepped::Read(Read::Error(err::MARSHALLING_ERROR))
        );
    }

    #[test]
    fn multi_framing() {
        let mut body = Vec::new();
        MultiHeader {
            op: op::CHECK,
            done: false,
            err: -1,
        }
        .write_to(&mut body);
        CheckVersionRequest {
            path: "/a".into(),
            version: 3,
        }
        .write_to(&mut body);
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write_to(&mut body);
        assert_eq!(
            prep(op::MULTI, &body, CFG),
            Prepped::Write(WriteOp::Multi(vec![MultiOp::Check {
                path: "/a".into(),
                version: 3
            }]))
        );
    }
}
