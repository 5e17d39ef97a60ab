//! The payload of one log record: a committed [`Proposal`] with its zxid.
//!
//! Records are declared with Jute (`jute_records!`), so encoder and decoder
//! come from one field list. A log entry holds the request as proposed (what
//! `apply` needs to reproduce the result), not ZooKeeper's result txn: apply
//! is deterministic, so replaying the requests rebuilds the same tree.

use crate::pipeline::propose::Proposal;
use crate::tree::{CreateOp, MultiOp, TreeConfig, WriteOp};
use jute::data::{Acl, Id};
use jute::{jute_records, DecodeError, Jute, Reader};
use std::sync::Arc;

jute_records! {
    EntryHeader { zxid: i64, session_id: i64, cxid: i32, time_ms: i64, tag: i32, auth: Vec<Id>, rules: i32 }
    CreateBody { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl: i64, opcode: i32 }
    SessionBody { timeout_ms: i32 }
    PathVersionBody { path: String, version: i32 }
    SetDataBody { path: String, data: Option<Vec<u8>>, version: i32 }
    SetAclBody { path: String, acl: Vec<Acl>, version: i32 }
    PathBody { path: String }
    CodeBody { code: i32 }
}

mod tag {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

fn write_create(c: &CreateOp, out: &mut Vec<u8>) {
    CreateBody {
        path: c.path.clone(),
        data: c.data.clone(),
        acl: c.acl.clone(),
        flags: c.flags,
        ttl: c.ttl,
        opcode: c.opcode,
    }
    .write_to(out)
}

fn read_create(r: &mut Reader<'_>) -> Result<CreateOp, DecodeError> {
    let c = CreateBody::read_from(r)?;
    Ok(CreateOp { path: c.path, data: c.data, acl: c.acl, flags: c.flags, ttl: c.ttl, opcode: c.opcode })
}

fn write_multi_op(o: &MultiOp, out: &mut Vec<u8>) {
    match o {
        MultiOp::Create(c) => {
            tag::CREATE.write_to(out);
            write_create(c, out);
        }
        MultiOp::Delete { path, version } => {
            tag::DELETE.write_to(out);
            PathVersionBody { path: path.clone(), version: *version }.write_to(out);
        }
        MultiOp::SetData { path, data, version } => {
            tag::SET_DATA.write_to(out);
            SetDataBody { path: path.clone(), data: data.clone(), version: *version }.write_to(out);
        }
        MultiOp::Check { path, version } => {
            tag::CHECK.write_to(out);
            PathVersionBody { path: path.clone(), version: *version }.write_to(out);
        }
    }
}

fn read_multi_op(r: &mut Reader<'_>) -> Result<MultiOp, DecodeError> {
    let t = r.read_i32()?;
    Ok(match t {
        tag::CREATE => MultiOp::Create(read_create(r)?),
        tag::DELETE => {
            let b = PathVersionBody::read_from(r)?;
            MultiOp::Delete { path: b.path, version: b.version }
        }
        tag::SET_DATA => {
            let b = SetDataBody::read_from(r)?;
            MultiOp::SetData { path: b.path, data: b.data, version: b.version }
        }
        tag::CHECK => {
            let b = PathVersionBody::read_from(r)?;
            MultiOp::Check { path: b.path, version: b.version }
        }
        _ => return Err(DecodeError::Invalid { offset: r.position(), what: "multi entry tag" }),
    })
}

/// The apply-time settings, as logged with every entry: a restart with a
/// changed configuration must not change what committed writes did.
fn rules_to_bits(r: TreeConfig) -> i32 {
    (r.extended_types as i32) | (r.skip_acl as i32) << 1 | (r.enforce_quota as i32) << 2
}

fn rules_from_bits(b: i32) -> TreeConfig {
    TreeConfig { extended_types: b & 1 != 0, skip_acl: b & 2 != 0, enforce_quota: b & 4 != 0 }
}

/// Encodes a committed proposal.
pub fn encode(zxid: i64, p: &Proposal) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let tag = match &p.op {
        WriteOp::CreateSession { .. } => tag::CREATE_SESSION,
        WriteOp::CloseSession => tag::CLOSE_SESSION,
        WriteOp::Create(_) => tag::CREATE,
        WriteOp::Delete { .. } => tag::DELETE,
        WriteOp::SetData { .. } => tag::SET_DATA,
        WriteOp::SetAcl { .. } => tag::SET_ACL,
        WriteOp::Multi(_) => tag::MULTI,
        WriteOp::Check { .. } => tag::CHECK,
        WriteOp::DeleteContainer { .. } => tag::DELETE_CONTAINER,
        WriteOp::Error { .. } => tag::ERROR,
    };
    EntryHeader {
        zxid,
        session_id: p.session_id,
        cxid: p.cxid,
        time_ms: p.time_ms,
        tag,
        auth: p.auth.as_ref().clone(),
        rules: rules_to_bits(p.rules),
    }
    .write_to(&mut out);
    match &p.op {
        WriteOp::CreateSession { timeout_ms } => SessionBody { timeout_ms: *timeout_ms }.write_to(&mut out),
        WriteOp::CloseSession => {}
        WriteOp::Create(c) => write_create(c, &mut out),
        WriteOp::Delete { path, version } | WriteOp::Check { path, version } => {
            PathVersionBody { path: path.clone(), version: *version }.write_to(&mut out)
        }
        WriteOp::SetData { path, data, version } => {
            SetDataBody { path: path.clone(), data: data.clone(), version: *version }.write_to(&mut out)
        }
        WriteOp::SetAcl { path, acl, version } => {
            SetAclBody { path: path.clone(), acl: acl.clone(), version: *version }.write_to(&mut out)
        }
        WriteOp::Multi(ops) => {
            (ops.len() as i32).write_to(&mut out);
            for o in ops {
                write_multi_op(o, &mut out);
            }
        }
        WriteOp::DeleteContainer { path } => PathBody { path: path.clone() }.write_to(&mut out),
        WriteOp::Error { code } => CodeBody { code: *code }.write_to(&mut out),
    }
    out
}

/// The zxid of an encoded entry, without decoding the rest.
pub fn peek_zxid(payload: &[u8]) -> Option<i64> {
    Reader::new(payload).read_i64().ok()
}

/// Decodes an entry: its zxid and the proposal (with no local waiter).
pub fn decode(payload: &[u8]) -> Result<(i64, Proposal), DecodeError> {
    let r = &mut Reader::new(payload);
    let h = EntryHeader::read_from(r)?;
    let op = match h.tag {
        tag::CREATE_SESSION => WriteOp::CreateSession { timeout_ms: SessionBody::read_from(r)?.timeout_ms },
        tag::CLOSE_SESSION => WriteOp::CloseSession,
        tag::CREATE => WriteOp::Create(read_create(r)?),
        tag::DELETE => {
            let b = PathVersionBody::read_from(r)?;
            WriteOp::Delete { path: b.path, version: b.version }
        }
        tag::CHECK => {
            let b = PathVersionBody::read_from(r)?;
            WriteOp::Check { path: b.path, version: b.version }
        }
        tag::SET_DATA => {
            let b = SetDataBody::read_from(r)?;
            WriteOp::SetData { path: b.path, data: b.data, version: b.version }
        }
        tag::SET_ACL => {
            let b = SetAclBody::read_from(r)?;
            WriteOp::SetAcl { path: b.path, acl: b.acl, version: b.version }
        }
        tag::MULTI => {
            let n = r.read_count()?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(read_multi_op(r)?);
            }
            WriteOp::Multi(ops)
        }
        tag::DELETE_CONTAINER => WriteOp::DeleteContainer { path: PathBody::read_from(r)?.path },
        tag::ERROR => WriteOp::Error { code: CodeBody::read_from(r)?.code },
        _ => return Err(DecodeError::Invalid { offset: 0, what: "log entry tag" }),
    };
    let p = Proposal {
        session_id: h.session_id,
        cxid: h.cxid,
        time_ms: h.time_ms,
        auth: Arc::new(h.auth),
        op,
        rules: rules_from_bits(h.rules),
        local_ref: 0,
        conn_id: 0,
    };
    Ok((h.zxid, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(op: WriteOp) -> Proposal {
        Proposal {
            session_id: 0x1234,
            cxid: 7,
            time_ms: 99,
            auth: Arc::new(vec![Id::new("digest", "u:abc")]),
            op,
            rules: TreeConfig { extended_types: true, skip_acl: false, enforce_quota: true },
            local_ref: 0,
            conn_id: 0,
        }
    }

    #[test]
    fn every_op_round_trips() {
        let create = CreateOp {
            path: "/a".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 3,
            ttl: -1,
            opcode: jute::proto::op::CREATE2,
        };
        let ops = vec![
            WriteOp::CreateSession { timeout_ms: 4000 },
            WriteOp::CloseSession,
            WriteOp::Create(create.clone()),
            WriteOp::Delete { path: "/a".into(), version: 3 },
            WriteOp::SetData { path: "/a".into(), data: Some(vec![1, 2]), version: -1 },
            WriteOp::SetAcl { path: "/a".into(), acl: Acl::open_unsafe(), version: 0 },
            WriteOp::Multi(vec![
                MultiOp::Create(create),
                MultiOp::Check { path: "/b".into(), version: 1 },
                MultiOp::SetData { path: "/c".into(), data: Some(vec![]), version: 2 },
                MultiOp::Delete { path: "/d".into(), version: -1 },
            ]),
            WriteOp::Check { path: "/x".into(), version: 4 },
            WriteOp::DeleteContainer { path: "/c".into() },
            WriteOp::Error { code: -5 },
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let p = proposal(op.clone());
            let bytes = encode(100 + i as i64, &p);
            assert_eq!(peek_zxid(&bytes), Some(100 + i as i64));
            let (zxid, back) = decode(&bytes).unwrap();
            assert_eq!(zxid, 100 + i as i64);
            assert_eq!(back.op, op);
            assert_eq!((back.session_id, back.cxid, back.time_ms), (0x1234, 7, 99));
            assert_eq!(back.auth, p.auth);
            assert_eq!(back.rules, p.rules);
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err());
            }
        }
    }
}
