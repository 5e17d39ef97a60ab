//! Stage 4, finalize: apply committed writes to the tree, serve reads, and
//! turn results into reply frames and watch notifications.
//!
//! - Inputs: [`Committed`] proposals (zxid order) and released reads.
//! - Outputs: frames on the connections' queues: for a write, first the
//!   watch events it triggered (to every watcher, the writer included), then
//!   the writer's reply; for a read, the reply (and, for setWatches, the
//!   events it generates, before the reply).
//! - Invariants: `DataTree::apply` decides every result; this stage only
//!   encodes. Every reply header carries the zxid of the last applied write
//!   (a write's own zxid for its reply), except auth (0), as ZooKeeper.

use super::prep::{MultiReadOp, Read};
use super::propose::Committed;
use super::{ConnectOutcome, Core, PendingRead, Waiter};
use crate::tree::acl;
use crate::tree::watches::{ConnId, WatchKind};
use crate::tree::{MultiResult, Trigger, TxnContext, WriteOp, WriteResult};
use jute::data::{perms, ClientInfo};
use jute::proto::*;
use jute::Jute;

/// A frame: 4-byte length, then the header and body.
pub fn frame_with(build: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut buf = vec![0u8; 4];
    build(&mut buf);
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}

/// A reply without a body: an error (a reply with `err != 0` never has
/// one), or an operation whose success carries none.
pub fn reply_frame(xid: i32, zxid: i64, err: i32) -> Vec<u8> {
    frame_with(|b| ReplyHeader { xid, zxid, err }.write_to(b))
}

fn reply<T: Jute>(xid: i32, zxid: i64, body: &T) -> Vec<u8> {
    frame_with(|b| {
        ReplyHeader { xid, zxid, err: 0 }.write_to(b);
        body.write_to(b);
    })
}

pub fn notification_frame(event_type: i32, path: &str, zxid: i64) -> Vec<u8> {
    frame_with(|b| {
        ReplyHeader { xid: xid::NOTIFICATION, zxid, err: 0 }.write_to(b);
        WatcherEvent { event_type, state: keeper_state::SYNC_CONNECTED, path: path.to_owned() }.write_to(b);
    })
}

/// The reply to a `reconfig`: `/zookeeper/config` as it is now.
pub fn config_reply_frame(xid: i32, zxid: i64, tree: &crate::tree::DataTree) -> Vec<u8> {
    match tree.get(crate::tree::CONFIG_ZOOKEEPER) {
        Some(n) => reply(xid, zxid, &GetDataResponse { data: n.data.clone(), stat: tree.stat_of(n) }),
        None => reply_frame(xid, zxid, err::NO_NODE),
    }
}

/// The reply to a `sync`: the header and the path it named.
pub fn sync_reply_frame(xid: i32, zxid: i64, path: &Option<String>) -> Vec<u8> {
    frame_with(|b| {
        ReplyHeader { xid, zxid, err: 0 }.write_to(b);
        path.write_to(b);
    })
}

/// The handshake's answer; the trailing readOnly byte only when the client
/// sent one, true from a read-only server.
pub fn connect_response_frame(
    timeout_ms: i32,
    session_id: i64,
    passwd: &[u8],
    read_only_byte: bool,
    read_only: bool,
) -> Vec<u8> {
    frame_with(|b| {
        ConnectResponse { protocol_version: 0, time_out: timeout_ms, session_id, passwd: passwd.to_vec() }.write_to(b);
        if read_only_byte {
            read_only.write_to(b);
        }
    })
}

fn encode_multi_results(results: &[MultiResult], b: &mut Vec<u8>) {
    for r in results {
        // Container and TTL creates answer as create2 inside a multi.
        let opcode = match r.opcode {
            op::CREATE_CONTAINER | op::CREATE_TTL => op::CREATE2,
            other => other,
        };
        let err = if opcode == op::ERROR { r.err } else { 0 };
        MultiHeader { op: opcode, done: false, err }.write_to(b);
        match &r.result {
            WriteResult::Created { path, stat } => {
                if r.opcode == op::CREATE {
                    CreateResponse { path: path.clone() }.write_to(b);
                } else {
                    Create2Response { path: path.clone(), stat: stat.clone() }.write_to(b);
                }
            }
            WriteResult::DataSet(stat) => SetDataResponse { stat: stat.clone() }.write_to(b),
            WriteResult::Error(e) => ErrorResponse { err: *e }.write_to(b),
            _ => {}
        }
    }
    MultiHeader { op: -1, done: true, err: -1 }.write_to(b);
}

impl Core {
    pub(super) fn on_committed(&mut self, c: Committed) {
        let zxid = c.zxid;
        let p = c.proposal;
        let ctx = TxnContext { session_id: p.session_id, zxid, time_ms: p.time_ms, auth: &p.auth, rules: p.rules };
        let applied = self.tree.apply(&ctx, &p.op);
        // Watch events first: a client must see the event before any reply
        // that shows the change, its own included.
        self.notify(&applied.triggers, zxid);
        let waiter = if p.local_ref != 0 { self.waiters.remove(&p.local_ref) } else { None };
        match (&p.op, waiter) {
            (
                WriteOp::CreateSession { timeout_ms },
                Some(Waiter::Connect { conn_id, timeout_ms: t, read_only_byte, done }),
            ) => {
                debug_assert_eq!(*timeout_ms, t);
                let sid = p.session_id;
                let live = self.conns.contains_key(&conn_id);
                self.sessions.insert(
                    sid,
                    super::SessionInfo {
                        local: false,
                        timeout_ms: t,
                        conn: live.then_some(conn_id),
                        closing: false,
                        close_ref: 0,
                    },
                );
                let now = self.now_ms();
                self.tracker.touch(sid, t as u64, now);
                if live {
                    let pw = crate::session::tracker::session_password(sid);
                    self.send(conn_id, connect_response_frame(t, sid, &pw, read_only_byte, false));
                    let _ = done.send(ConnectOutcome::Accepted { session_id: sid });
                }
            }
            (WriteOp::CreateSession { timeout_ms }, _) => {
                // Created elsewhere (a replica) or the connection is gone.
                let now = self.now_ms();
                self.sessions.insert(
                    p.session_id,
                    super::SessionInfo {
                        local: false,
                        timeout_ms: *timeout_ms,
                        conn: None,
                        closing: false,
                        close_ref: 0,
                    },
                );
                self.tracker.touch(p.session_id, *timeout_ms as u64, now);
            }
            (WriteOp::CloseSession, waiter) => {
                let sid = p.session_id;
                self.tracker.remove(sid);
                let conn = self.sessions.remove(&sid).and_then(|s| s.conn);
                // Replies this session's earlier writes hold (behind a sync
                // that is still waiting) go out before the close's.
                for (c, frame) in self.gate.drop_session(sid) {
                    self.send(c, frame);
                }
                if let Some(Waiter::Request { conn_id, xid, received, .. }) = waiter {
                    self.stats.record_update_latency(received.elapsed().as_millis() as u64);
                    self.send(conn_id, reply_frame(xid, zxid, 0));
                    self.close_after_flush(conn_id);
                } else if let Some(conn_id) = conn {
                    // Expired while connected: the client learns on reconnect.
                    self.close_after_flush(conn_id);
                }
            }
            (_, Some(Waiter::Request { conn_id, xid, opcode, permit, received, .. })) => {
                self.stats.record_update_latency(received.elapsed().as_millis() as u64);
                let frame = write_reply(xid, zxid, opcode, &applied.result);
                drop(permit);
                self.release(p.session_id, p.local_ref, Some((conn_id, frame)));
            }
            (_, _) => {}
        }
        // After the session table is updated for this zxid, so that a
        // snapshot at this zxid holds exactly the sessions alive at it.
        self.maybe_snapshot();
    }

    pub(super) fn notify(&mut self, triggers: &[Trigger], zxid: i64) {
        for t in triggers {
            for (conn, etype, path) in self.watches.fire(t) {
                // A watcher that may not read the node is not told (the
                // one-shot watch is spent all the same, as in ZooKeeper).
                let allowed = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| acl::check_acl(&t.acl, perms::READ, &c.auth, self.cfg.skip_acl));
                if allowed {
                    self.send(conn, notification_frame(etype, &path, zxid));
                }
            }
        }
    }

    fn send_event_now(&mut self, conn: ConnId, etype: i32, path: &str) {
        // Events generated by setWatches are not caused by a write being
        // applied now; like ZooKeeper, they carry no zxid.
        self.send(conn, notification_frame(etype, path, -1));
    }

    pub(super) fn run_read(&mut self, r: PendingRead) {
        let zxid = self.tree.last_zxid();
        let conn = r.conn_id;
        let xid = r.xid;
        let skip_acl = self.cfg.skip_acl;
        let can = |acl: &[jute::data::Acl], perm: i32| acl::check_acl(acl, perm, &r.auth, skip_acl);
        let err_frame = |code: i32| reply_frame(xid, zxid, code);
        let mut close_after = false;
        let frame = match r.read {
            Read::MultiError(code) => multi_error_frame(xid, zxid, code),
            Read::Error(code) => err_frame(code),
            Read::Ping => reply_frame(xid, zxid, 0),
            Read::AuthResult { ok } => {
                if ok {
                    reply_frame(xid, 0, 0)
                } else {
                    self.stats.auth_failed += 1;
                    close_after = true;
                    reply_frame(xid, 0, err::AUTH_FAILED)
                }
            }
            Read::Exists { path, watch } => {
                if path.contains('\0') {
                    err_frame(err::BAD_ARGUMENTS)
                } else {
                    match self.tree.get(&path) {
                        Some(n) if !can(&n.acl, perms::READ) => err_frame(err::NO_AUTH),
                        Some(n) => {
                            let stat = self.tree.stat_of(n);
                            if watch {
                                self.watches.add(conn, &path, WatchKind::Data);
                            }
                            reply(xid, zxid, &ExistsResponse { stat })
                        }
                        None => {
                            // An exists watch on a missing node waits for its creation.
                            if watch {
                                self.watches.add(conn, &path, WatchKind::Data);
                            }
                            err_frame(err::NO_NODE)
                        }
                    }
                }
            }
            Read::GetData { path, watch } => match self.tree.get(&path) {
                None => err_frame(err::NO_NODE),
                Some(n) if !can(&n.acl, perms::READ) => err_frame(err::NO_AUTH),
                Some(n) => {
                    let body = GetDataResponse { data: n.data.clone(), stat: self.tree.stat_of(n) };
                    if watch {
                        self.watches.add(conn, &path, WatchKind::Data);
                    }
                    reply(xid, zxid, &body)
                }
            },
            Read::GetAcl { path } => match self.tree.get(&path) {
                None => err_frame(err::NO_NODE),
                Some(n) if !can(&n.acl, perms::READ | perms::ADMIN) => err_frame(err::NO_AUTH),
                Some(n) => {
                    let acl = if can(&n.acl, perms::ADMIN) { n.acl.to_vec() } else { acl::mask_digests(&n.acl) };
                    reply(xid, zxid, &GetAclResponse { acl, stat: self.tree.stat_of(n) })
                }
            },
            Read::GetChildren { path, watch, with_stat } => match self.tree.get(&path) {
                None => err_frame(err::NO_NODE),
                Some(n) if !can(&n.acl, perms::READ) => err_frame(err::NO_AUTH),
                Some(n) => {
                    let children: Vec<String> = n.children.iter().cloned().collect();
                    let stat = self.tree.stat_of(n);
                    if watch {
                        self.watches.add(conn, &path, WatchKind::Child);
                    }
                    if with_stat {
                        reply(xid, zxid, &GetChildren2Response { children, stat })
                    } else {
                        reply(xid, zxid, &GetChildrenResponse { children })
                    }
                }
            },
            Read::GetAllChildrenNumber { path } => match self.tree.get(&path) {
                None => err_frame(err::NO_NODE),
                Some(n) if !can(&n.acl, perms::READ) => err_frame(err::NO_AUTH),
                Some(_) => {
                    let total_number = self.tree.all_children_number(&path) as i32;
                    reply(xid, zxid, &GetAllChildrenNumberResponse { total_number })
                }
            },
            Read::GetEphemerals { prefix } => {
                let all = self.tree.ephemerals_of(r.session_id);
                let p = prefix.trim();
                let ephemerals = if p.is_empty() || p == "/" {
                    all
                } else {
                    all.into_iter().filter(|e| e.starts_with(&prefix)).collect()
                };
                reply(xid, zxid, &GetEphemeralsResponse { ephemerals })
            }
            Read::Sync { path } => sync_reply_frame(xid, zxid, &path),
            // The core hands reconfigs to the quorum layer; none reaches here.
            Read::Reconfig(_) => err_frame(err::UNIMPLEMENTED),
            Read::SetWatches(w) => {
                self.set_watches(conn, &w);
                reply_frame(xid, zxid, 0)
            }
            Read::AddWatch { path, mode } => {
                let kind = if mode == add_watch_mode::PERSISTENT_RECURSIVE {
                    WatchKind::PersistentRecursive
                } else {
                    WatchKind::Persistent
                };
                self.watches.add(conn, &path, kind);
                reply(xid, zxid, &ErrorResponse { err: 0 })
            }
            Read::CheckWatches { path, watcher_type } => {
                let code = if self.watches.contains(conn, &path, watcher_type) { 0 } else { err::NO_WATCHER };
                err_frame(code)
            }
            Read::RemoveWatches { path, watcher_type } => {
                let code = if self.watches.remove(conn, &path, watcher_type) { 0 } else { err::NO_WATCHER };
                err_frame(code)
            }
            Read::WhoAmI => {
                let client_info = r
                    .auth
                    .iter()
                    .map(|id| ClientInfo { auth_scheme: id.scheme.clone(), user: acl::user_name(id) })
                    .collect();
                reply(xid, zxid, &WhoAmIResponse { client_info })
            }
            Read::MultiRead(ops) => {
                let mut body = Vec::new();
                for o in ops {
                    let (path, is_data) = match o {
                        MultiReadOp::GetData { path } => (path, true),
                        MultiReadOp::GetChildren { path } => (path, false),
                    };
                    let fail = |b: &mut Vec<u8>, e: i32| {
                        MultiHeader { op: op::ERROR, done: false, err: e }.write_to(b);
                        ErrorResponse { err: e }.write_to(b);
                    };
                    match self.tree.get(&path) {
                        None => fail(&mut body, err::NO_NODE),
                        Some(n) if !can(&n.acl, perms::READ) => fail(&mut body, err::NO_AUTH),
                        Some(n) if is_data => {
                            MultiHeader { op: op::GET_DATA, done: false, err: 0 }.write_to(&mut body);
                            GetDataResponse { data: n.data.clone(), stat: self.tree.stat_of(n) }.write_to(&mut body);
                        }
                        Some(n) => {
                            MultiHeader { op: op::GET_CHILDREN, done: false, err: 0 }.write_to(&mut body);
                            GetChildrenResponse { children: n.children.iter().cloned().collect() }.write_to(&mut body);
                        }
                    }
                }
                MultiHeader { op: -1, done: true, err: -1 }.write_to(&mut body);
                frame_with(|b| {
                    ReplyHeader { xid, zxid, err: 0 }.write_to(b);
                    b.extend_from_slice(&body);
                })
            }
        };
        self.stats.record_read_latency(r.received.elapsed().as_millis() as u64);
        self.send(conn, frame);
        drop(r.permit);
        if close_after {
            self.close_after_flush(conn);
        }
    }

    /// ZooKeeper's `DataTree.setWatches`: re-arm a reconnecting client's
    /// watches, or fire at once for what changed after `relative_zxid`.
    fn set_watches(&mut self, conn: ConnId, w: &SetWatches2) {
        use jute::proto::event_type::*;
        for path in &w.data_watches {
            match self.tree.get(path) {
                None => self.send_event_now(conn, NODE_DELETED, path),
                Some(n) if n.stat.mzxid > w.relative_zxid => self.send_event_now(conn, NODE_DATA_CHANGED, path),
                Some(_) => self.watches.add(conn, path, WatchKind::Data),
            }
        }
        for path in &w.exist_watches {
            if self.tree.get(path).is_some() {
                self.send_event_now(conn, NODE_CREATED, path);
            } else {
                self.watches.add(conn, path, WatchKind::Data);
            }
        }
        for path in &w.child_watches {
            match self.tree.get(path) {
                None => self.send_event_now(conn, NODE_DELETED, path),
                Some(n) if n.stat.pzxid > w.relative_zxid => self.send_event_now(conn, NODE_CHILDREN_CHANGED, path),
                Some(_) => self.watches.add(conn, path, WatchKind::Child),
            }
        }
        for path in &w.persistent_watches {
            self.watches.add(conn, path, WatchKind::Persistent);
        }
        for path in &w.persistent_recursive_watches {
            self.watches.add(conn, path, WatchKind::PersistentRecursive);
        }
    }
}

/// A failed multi or multiRead: ZooKeeper follows the error header with an
/// empty result list (just the end marker).
fn multi_error_frame(xid: i32, zxid: i64, code: i32) -> Vec<u8> {
    frame_with(|b| {
        ReplyHeader { xid, zxid, err: code }.write_to(b);
        MultiHeader { op: -1, done: true, err: -1 }.write_to(b);
    })
}

/// The reply to a client write, from its result.
fn write_reply(xid: i32, zxid: i64, opcode: i32, result: &WriteResult) -> Vec<u8> {
    match result {
        WriteResult::Error(code) => reply_frame(xid, zxid, *code),
        WriteResult::Created { path, stat } => {
            if opcode == op::CREATE {
                reply(xid, zxid, &CreateResponse { path: path.clone() })
            } else {
                reply(xid, zxid, &Create2Response { path: path.clone(), stat: stat.clone() })
            }
        }
        WriteResult::DataSet(stat) => reply(xid, zxid, &SetDataResponse { stat: stat.clone() }),
        WriteResult::AclSet(stat) => reply(xid, zxid, &SetAclResponse { stat: stat.clone() }),
        WriteResult::Multi(results) => frame_with(|b| {
            ReplyHeader { xid, zxid, err: 0 }.write_to(b);
            encode_multi_results(results, b);
        }),
        WriteResult::Deleted | WriteResult::Checked | WriteResult::SessionCreated | WriteResult::SessionClosed(_) => {
            reply_frame(xid, zxid, 0)
        }
    }
}
