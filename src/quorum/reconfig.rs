//! Dynamic reconfiguration (ZooKeeper's `reconfig`, opcode 16) as Raft
//! membership changes, run by the leader.
//!
//! - Inputs: a `ReconfigRequest` (incremental: joining servers and leaving
//!   ids; or non-incremental: the whole new member list), the expected
//!   configuration version, and the caller's identities.
//! - Outputs: the zxid of the configuration that is now in force (the
//!   client is answered with `/zookeeper/config` once its server applied
//!   it), or a ZooKeeper error code.
//! - Checks, in ZooKeeper's order where it matters to clients:
//!   RECONFIGINPROGRESS, BADVERSION (`curConfigId` is neither -1 nor the
//!   current version), BADARGUMENTS (syntax; fewer than 2 voters), NOAUTH
//!   (WRITE on `/zookeeper/config`), NEWCONFIGNOQUORUM (a majority of the
//!   new voters must be caught up with the leader). ZooKeeper checks the
//!   quorum before the ACL; we check the ACL first so that an unauthorised
//!   caller never causes the side effect of adding learners.
//! - How: servers that are new join as learners (non-voting; they start to
//!   replicate), then the voters are replaced (openraft's joint consensus),
//!   then servers that are gone are removed. Each step is a membership
//!   entry and rewrites `/zookeeper/config`; the answer is the last one.
//!   Observers are learners throughout.

use super::{PeerNode, Raft};
use crate::pipeline::{CoreMsg, Inspector};
use jute::data::{perms, Id};
use jute::proto::err;
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long new voters may take to catch up before the change is refused.
const CATCH_UP: Duration = Duration::from_secs(10);
/// A learner within this many entries of the leader counts as synced.
const SYNCED_LAG: u64 = 100;

/// A reconfig request as it travels to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconfigSpec {
    pub joining: Option<String>,
    pub leaving: Option<String>,
    pub new_members: Option<String>,
    pub cur_config_id: i64,
    /// The caller's identities (scheme, id).
    pub auth: Vec<(String, String)>,
    /// `standaloneEnabled`: then a configuration needs at least 2 voters.
    pub standalone_enabled: bool,
}

/// One member of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node: PeerNode,
    pub observer: bool,
}

fn port(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// Parses `host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]`
/// (ZooKeeper's `QuorumServer` syntax). `need_client`: a joining server must
/// give its client address.
pub fn parse_server_spec(spec: &str, need_client: bool) -> Result<Member, String> {
    let (server, client) = match spec.split_once(';') {
        Some((s, c)) => (s.trim(), Some(c.trim())),
        None => (spec.trim(), None),
    };
    let parts: Vec<&str> = server.split(':').collect();
    if parts.len() < 3 || parts.len() > 4 || parts[0].is_empty() {
        return Err(format!("{spec:?} is not host:quorumPort:electionPort[:role][;clientAddress]"));
    }
    let (q, e) = match (port(parts[1]), port(parts[2])) {
        (Some(q), Some(e)) => (q, e),
        _ => return Err(format!("{spec:?} has an invalid port")),
    };
    let observer = match parts.get(3).map(|r| r.trim().to_ascii_lowercase()) {
        None => false,
        Some(r) if r == "participant" => false,
        Some(r) if r == "observer" => true,
        Some(r) => return Err(format!("unknown server role {r:?}")),
    };
    let client = match client {
        None | Some("") => {
            if need_client {
                return Err("each server must give its quorum, election and client ports".into());
            }
            String::new()
        }
        Some(c) => match c.rsplit_once(':') {
            Some((h, p)) if port(p).is_some() && !h.is_empty() => format!("{h}:{}", port(p).unwrap_or(0)),
            None if port(c).is_some() => format!("0.0.0.0:{}", port(c).unwrap_or(0)),
            _ => return Err(format!("invalid client address {c:?}")),
        },
    };
    Ok(Member { node: PeerNode { addr: format!("{}:{q}:{e}", parts[0]), client }, observer })
}

/// `server.N=spec` into (N, member).
fn parse_server_line(line: &str, need_client: bool) -> Result<(u64, Member), String> {
    let (key, spec) = line.split_once('=').ok_or_else(|| "wrong format of server string".to_string())?;
    let id = key
        .trim()
        .rsplit('.')
        .next()
        .and_then(|i| i.parse::<u64>().ok())
        .filter(|_| key.trim().starts_with("server."))
        .ok_or_else(|| format!("{:?} is not server.N", key.trim()))?;
    Ok((id, parse_server_spec(spec, need_client)?))
}

/// The configuration a request asks for, from the current one; Err is
/// BADARGUMENTS.
pub fn next_config(current: &BTreeMap<u64, Member>, spec: &ReconfigSpec) -> Result<BTreeMap<u64, Member>, String> {
    if let Some(all) = &spec.new_members {
        // Non-incremental: the whole list, by commas or lines.
        let mut next = BTreeMap::new();
        for line in all.split([',', '\n']).map(str::trim).filter(|l| !l.is_empty()) {
            if line.starts_with("version=") {
                continue;
            }
            let (id, m) = parse_server_line(line, false)?;
            next.insert(id, m);
        }
        return Ok(next);
    }
    let mut next = current.clone();
    if let Some(leaving) = &spec.leaving {
        for id in leaving.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let id: u64 = id.parse().map_err(|_| format!("{id:?} is not a server id"))?;
            next.remove(&id);
        }
    }
    if let Some(joining) = &spec.joining {
        for line in joining.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, m) = parse_server_line(line, true)?;
            let clash = next.iter().any(|(other, o)| *other != id && o.node.addr == m.node.addr);
            if clash {
                return Err(format!("server {id} has the address of another server"));
            }
            next.insert(id, m);
        }
    }
    Ok(next)
}

/// The members of a membership (observers are its learners).
pub fn members_of(m: &openraft::Membership<u64, PeerNode>) -> BTreeMap<u64, Member> {
    let voters: BTreeSet<u64> = m.voter_ids().collect();
    m.nodes().map(|(id, n)| (*id, Member { node: n.clone(), observer: !voters.contains(id) })).collect()
}

fn voters(c: &BTreeMap<u64, Member>) -> BTreeSet<u64> {
    c.iter().filter(|(_, m)| !m.observer).map(|(id, _)| *id).collect()
}

/// One reconfiguration at a time on this leader.
static IN_PROGRESS: AtomicBool = AtomicBool::new(false);

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        IN_PROGRESS.store(false, Ordering::Release);
    }
}

/// Asks the core whether these identities may write `/zookeeper/config`.
async fn may_write_config(core: &mpsc::Sender<CoreMsg>, auth: Vec<Id>) -> bool {
    let (tx, rx) = oneshot::channel();
    let job = Inspector(Box::new(move |core: &mut crate::pipeline::Core| {
        let skip = core.cfg.skip_acl;
        let ok = core
            .tree
            .get(crate::tree::CONFIG_ZOOKEEPER)
            .is_some_and(|n| crate::tree::acl::check_acl(&n.acl, perms::WRITE, &auth, skip));
        let _ = tx.send(ok);
    }));
    if core.send(CoreMsg::Inspect(job)).await.is_err() {
        return false;
    }
    rx.await.unwrap_or(false)
}

/// Runs a reconfiguration on the leader; Ok is the zxid of the resulting
/// configuration, Err a ZooKeeper error code.
pub async fn run(
    raft: &Raft,
    core: &mpsc::Sender<CoreMsg>,
    peers: &std::sync::Arc<super::network::Peers>,
    spec: ReconfigSpec,
) -> Result<i64, i32> {
    if IN_PROGRESS.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(err::RECONFIG_IN_PROGRESS);
    }
    let _guard = Guard;
    let stored = raft.metrics().borrow().membership_config.clone();
    if stored.membership().get_joint_config().len() > 1 {
        return Err(err::RECONFIG_IN_PROGRESS);
    }
    let version = stored.log_id().map_or(0, |l| super::zxid_of(l.index, 0));
    if spec.cur_config_id != -1 && spec.cur_config_id != version {
        tracing::info!(expected = spec.cur_config_id, version, "reconfig refused: the configuration version differs");
        return Err(err::BAD_VERSION);
    }
    let current = members_of(stored.membership());
    let next = next_config(&current, &spec).map_err(|e| {
        tracing::info!(error = %e, "reconfig refused: bad arguments");
        err::BAD_ARGUMENTS
    })?;
    let next_voters = voters(&next);
    let min_voters = if spec.standalone_enabled { 2 } else { 1 };
    if next_voters.len() < min_voters {
        tracing::info!(voters = next_voters.len(), "reconfig refused: too few voters");
        return Err(err::BAD_ARGUMENTS);
    }
    let auth: Vec<Id> = spec.auth.iter().map(|(s, i)| Id::new(s, i)).collect();
    if !may_write_config(core, auth).await {
        return Err(err::NO_AUTH);
    }
    if next == current {
        return Ok(version);
    }
    let fail = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "reconfig failed");
        err::NEW_CONFIG_NO_QUORUM
    };

    // 1. New servers join as learners; changed addresses are updated.
    let added: BTreeMap<u64, PeerNode> =
        next.iter().filter(|(id, _)| !current.contains_key(id)).map(|(id, m)| (*id, m.node.clone())).collect();
    let moved: BTreeMap<u64, PeerNode> = next
        .iter()
        .filter(|(id, m)| current.get(id).is_some_and(|c| c.node != m.node))
        .map(|(id, m)| (*id, m.node.clone()))
        .collect();
    if !added.is_empty() {
        raft.change_membership(ChangeMembers::AddNodes(added.clone()), true).await.map_err(|e| fail(&e))?;
    }
    if !moved.is_empty() {
        raft.change_membership(ChangeMembers::SetNodes(moved), true).await.map_err(|e| fail(&e))?;
    }

    // 2. A majority of the new voters must be caught up.
    let current_voters = voters(&current);
    if next_voters != current_voters {
        let majority = next_voters.len() / 2 + 1;
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let synced = {
                let m = raft.metrics().borrow().clone();
                let last = m.last_log_index.unwrap_or(0);
                next_voters
                    .iter()
                    .filter(|id| {
                        **id == m.id
                            || m.replication
                                .as_ref()
                                .and_then(|r| r.get(id))
                                .is_some_and(|matched| matched.is_some_and(|l| l.index + SYNCED_LAG >= last))
                    })
                    .count()
            };
            if synced >= majority {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(synced, majority, "reconfig refused: the new voters did not catch up");
                if !added.is_empty() {
                    let ids: BTreeSet<u64> = added.keys().copied().collect();
                    let _ = raft.change_membership(ChangeMembers::RemoveNodes(ids), true).await;
                }
                return Err(err::NEW_CONFIG_NO_QUORUM);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // 3. The voters (joint consensus, then the new set); voters that
        // become observers stay as learners.
        raft.change_membership(ChangeMembers::ReplaceAllVoters(next_voters), true).await.map_err(|e| fail(&e))?;
    }

    // 4. Servers no longer in the configuration go.
    let now: BTreeSet<u64> =
        raft.metrics().borrow().membership_config.membership().nodes().map(|(id, _)| *id).collect();
    let gone: BTreeSet<u64> = now.into_iter().filter(|id| !next.contains_key(id)).collect();
    if !gone.is_empty() {
        raft.change_membership(ChangeMembers::RemoveNodes(gone.clone()), true).await.map_err(|e| fail(&e))?;
    }
    let final_version = raft.metrics().borrow().membership_config.log_id().map_or(0, |l| super::zxid_of(l.index, 0));
    // A removed server no longer hears from the leader: tell it, so that it
    // stops serving its (from now on stale) state.
    for id in gone {
        peers.link(id).notify(super::network::PeerReq::Removed { at: final_version });
    }
    tracing::info!(
        version = format_args!("{final_version:x}"),
        voters = ?voters(&next),
        observers = ?next.iter().filter(|(_, m)| m.observer).map(|(id, _)| *id).collect::<Vec<_>>(),
        "reconfigured"
    );
    Ok(final_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(joining: Option<&str>, leaving: Option<&str>, new_members: Option<&str>) -> ReconfigSpec {
        ReconfigSpec {
            joining: joining.map(Into::into),
            leaving: leaving.map(Into::into),
            new_members: new_members.map(Into::into),
            cur_config_id: -1,
            auth: vec![],
            standalone_enabled: true,
        }
    }

    fn three() -> BTreeMap<u64, Member> {
        (1..=3)
            .map(|i| {
                let spec = format!("127.0.0.1:288{i}:388{i}:participant;0.0.0.0:218{i}");
                (i, parse_server_spec(&spec, true).unwrap())
            })
            .collect()
    }

    #[test]
    fn server_specs_parse_as_zookeeper_writes_them() {
        let m = parse_server_spec("0.0.0.0:1234:2345:observer;3456", true).unwrap();
        assert!(m.observer);
        assert_eq!(m.node, PeerNode { addr: "0.0.0.0:1234:2345".into(), client: "0.0.0.0:3456".into() });
        let m = parse_server_spec("h:1:2;10.0.0.1:99", true).unwrap();
        assert!(!m.observer);
        assert_eq!(m.node.client, "10.0.0.1:99");
        for bad in ["some thing", "h:1", "h:1:x;3", "h:1:2:leader;3", "h:1:2:observer;0.0.0.0:"] {
            assert!(parse_server_spec(bad, true).is_err(), "{bad}");
        }
        assert!(parse_server_spec("h:1:2", true).is_err(), "a joiner needs its client port");
        assert!(parse_server_spec("h:1:2", false).is_ok());
    }

    #[test]
    fn incremental_and_whole_changes() {
        let cur = three();
        let joined = next_config(&cur, &spec(Some("server.100=0.0.0.0:1:2:observer;0.0.0.0:3"), None, None)).unwrap();
        assert_eq!(joined.len(), 4);
        assert!(joined[&100].observer);
        let left = next_config(&joined, &spec(None, Some("100,3"), None)).unwrap();
        assert_eq!(left.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        let whole = next_config(&cur, &spec(None, None, Some("server.1=a:1:2,server.5=b:1:2:observer\nversion=9")));
        let whole = whole.unwrap();
        assert_eq!(whole.keys().copied().collect::<Vec<_>>(), vec![1, 5]);
        assert!(next_config(&cur, &spec(Some("some thing"), None, None)).is_err());
        assert!(next_config(&cur, &spec(None, Some("x"), None)).is_err());
        let clash = spec(Some("server.4=127.0.0.1:2881:3881:participant;0.0.0.0:9"), None, None);
        assert!(next_config(&cur, &clash).is_err(), "two servers cannot share an address");
    }
}
