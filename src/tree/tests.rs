//! Tree tests: ZooKeeper's stat rules, error order, multi rollback, and a
//! property test of create/delete/setData against a plain map model.

use super::*;
use jute::data::Id;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn ctx(zxid: i64) -> TxnContext<'static> {
    let rules = TreeConfig { extended_types: true, skip_acl: false, enforce_quota: true };
    TxnContext { session_id: 0x42, zxid, time_ms: 1000 + zxid, auth: &[], rules }
}

fn create(path: &str, flags: i32) -> WriteOp {
    WriteOp::Create(CreateOp {
        path: path.into(),
        data: Some(b"x".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
        opcode: op::CREATE,
    })
}

#[test]
fn builtin_nodes_match_zookeeper() {
    let t = DataTree::new(TreeConfig::default());
    assert_eq!(t.get("/").unwrap().stat(false).cversion, -1);
    assert_eq!(t.get("/zookeeper").unwrap().stat(false).cversion, -2);
    assert_eq!(t.get("/zookeeper/config").unwrap().stat.aversion, -1);
    assert_eq!(t.node_count_reported(), 5);
    assert_eq!(t.all_children_number("/"), 3);
}

#[test]
fn create_and_delete_update_parent() {
    let mut t = DataTree::new(TreeConfig::default());
    t.apply(&ctx(2), &create("/p", 0));
    t.apply(&ctx(3), &create("/p/a", 0));
    let p = t.get("/p").unwrap().stat(false);
    assert_eq!((p.cversion, p.pzxid, p.num_children), (1, 3, 1));
    let r = t.apply(&ctx(4), &WriteOp::Delete { path: "/p/a".into(), version: -1 });
    assert_eq!(r.result, WriteResult::Deleted);
    let p = t.get("/p").unwrap().stat(false);
    assert_eq!((p.cversion, p.pzxid, p.num_children), (2, 4, 0));
    let r = t.apply(&ctx(5), &create("/p/s", create_mode::PERSISTENT_SEQUENTIAL));
    assert!(matches!(r.result, WriteResult::Created { ref path, .. } if path == "/p/s0000000001"));
    assert_eq!(t.last_zxid(), 5);
}

#[test]
fn container_and_ttl_owner_is_hidden_from_clients() {
    let mut t = DataTree::new(TreeConfig { extended_types: true, ..Default::default() });
    t.apply(&ctx(1), &create("/c", create_mode::CONTAINER));
    let ttl = WriteOp::Create(CreateOp {
        path: "/t".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl: 500,
        opcode: op::CREATE_TTL,
    });
    t.apply(&ctx(2), &ttl);
    t.apply(&ctx(3), &create("/e", create_mode::EPHEMERAL));
    assert_eq!(t.stat_of(t.get("/c").unwrap()).ephemeral_owner, 0);
    assert_eq!(t.stat_of(t.get("/t").unwrap()).ephemeral_owner, 0);
    assert_eq!(t.stat_of(t.get("/e").unwrap()).ephemeral_owner, 0x42);
}

#[test]
fn delete_checks_parent_acl_before_existence() {
    let mut t = DataTree::new(TreeConfig::default());
    let op = WriteOp::Create(CreateOp {
        path: "/ro".into(),
        data: None,
        acl: vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }],
        flags: 0,
        ttl: -1,
        opcode: op::CREATE,
    });
    t.apply(&ctx(1), &op);
    let r = t.apply(&ctx(2), &WriteOp::Delete { path: "/ro/missing".into(), version: -1 });
    assert_eq!(r.result, WriteResult::Error(err::NO_AUTH));
}

#[test]
fn quota_usage_and_hard_limit() {
    let mut t = DataTree::new(TreeConfig { enforce_quota: true, ..Default::default() });
    t.apply(&ctx(1), &create("/q", 0));
    t.apply(&ctx(2), &create("/q/a", 0));
    let mk = |p: &str, d: &str| {
        WriteOp::Create(CreateOp {
            path: p.into(),
            data: Some(d.as_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: -1,
            opcode: op::CREATE,
        })
    };
    t.apply(&ctx(3), &mk("/zookeeper/quota/q", ""));
    t.apply(&ctx(4), &mk("/zookeeper/quota/q/zookeeper_limits", "count=-1,bytes=-1,countHardLimit=3,byteHardLimit=-1"));
    t.apply(&ctx(5), &mk("/zookeeper/quota/q/zookeeper_stats", "count=0,bytes=0"));
    let usage = |t: &DataTree| t.get("/zookeeper/quota/q/zookeeper_stats").unwrap().data.clone().unwrap();
    assert_eq!(usage(&t), b"count=2,bytes=2".to_vec());
    assert!(matches!(t.apply(&ctx(6), &create("/q/b", 0)).result, WriteResult::Created { .. }));
    assert_eq!(usage(&t), b"count=3,bytes=3".to_vec());
    assert_eq!(t.apply(&ctx(7), &create("/q/c", 0)).result, WriteResult::Error(err::QUOTA_EXCEEDED));
    t.apply(&ctx(8), &WriteOp::Delete { path: "/q/b".into(), version: -1 });
    assert_eq!(usage(&t), b"count=2,bytes=2".to_vec());
}

#[test]
fn error_order_and_codes() {
    let mut t = DataTree::new(TreeConfig::default());
    assert_eq!(t.apply(&ctx(1), &create("/a/b", 0)).result, WriteResult::Error(err::NO_NODE));
    assert_eq!(t.apply(&ctx(2), &create("/zookeeper", 0)).result, WriteResult::Error(err::NODE_EXISTS));
    assert_eq!(t.apply(&ctx(3), &create("/x/", 0)).result, WriteResult::Error(err::NO_NODE));
    assert!(matches!(t.apply(&ctx(4), &create("/e", 1)).result, WriteResult::Created { .. }));
    assert_eq!(t.apply(&ctx(4), &create("/e", 1)).result, WriteResult::Error(err::NODE_EXISTS));
    assert_eq!(t.apply(&ctx(5), &create("/e/c", 0)).result, WriteResult::Error(err::NO_CHILDREN_FOR_EPHEMERALS));
    assert_eq!(
        t.apply(&TxnContext { rules: TreeConfig::default(), ..ctx(6) }, &create("/t", 5)).result,
        WriteResult::Error(err::UNIMPLEMENTED)
    );
    assert_eq!(t.apply(&ctx(7), &create("/t", 9)).result, WriteResult::Error(err::BAD_ARGUMENTS));
    assert_eq!(
        t.apply(&ctx(8), &WriteOp::Delete { path: "/zookeeper".into(), version: -1 }).result,
        WriteResult::Error(err::BAD_ARGUMENTS)
    );
    assert_eq!(
        t.apply(&ctx(9), &WriteOp::SetData { path: "/e".into(), data: None, version: 7 }).result,
        WriteResult::Error(err::BAD_VERSION)
    );
    assert_eq!(t.last_zxid(), 9, "failed writes consume their zxid");
}

#[test]
fn acl_checks() {
    let mut t = DataTree::new(TreeConfig::default());
    let digest = Id::new("digest", &acl::generate_digest("u:p"));
    let op = WriteOp::Create(CreateOp {
        path: "/s".into(),
        data: None,
        acl: vec![Acl { perms: perms::READ, id: Id::new("auth", "") }],
        flags: 0,
        ttl: -1,
        opcode: op::CREATE,
    });
    assert_eq!(t.apply(&ctx(1), &op).result, WriteResult::Error(err::INVALID_ACL));
    let auth = [digest.clone()];
    let c = TxnContext { auth: &auth, ..ctx(2) };
    assert!(matches!(t.apply(&c, &op).result, WriteResult::Created { .. }));
    assert_eq!(&t.get("/s").unwrap().acl[0].id, &digest);
    assert_eq!(t.apply(&ctx(3), &create("/s/c", 0)).result, WriteResult::Error(err::NO_AUTH));
    let sup = [Id::new("super", "")];
    let c = TxnContext { auth: &sup, ..ctx(4) };
    assert!(matches!(t.apply(&c, &create("/s/c", 0)).result, WriteResult::Created { .. }));
}

#[test]
fn failed_multi_changes_nothing() {
    let mut t = DataTree::new(TreeConfig::default());
    t.apply(&ctx(1), &create("/m", 0));
    let before = t.digest();
    let ops = vec![
        MultiOp::Create(CreateOp {
            path: "/m/a".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 2,
            ttl: -1,
            opcode: op::CREATE,
        }),
        MultiOp::SetData { path: "/m".into(), data: Some(vec![1]), version: -1 },
        MultiOp::Check { path: "/m".into(), version: 0 },
        MultiOp::Delete { path: "/nope".into(), version: -1 },
    ];
    let r = t.apply(&ctx(2), &WriteOp::Multi(ops.clone()));
    let WriteResult::Multi(results) = r.result else { panic!() };
    let codes: Vec<i32> = results.iter().map(|r| r.err).collect();
    assert_eq!(codes, vec![0, 0, err::BAD_VERSION, err::RUNTIME_INCONSISTENCY]);
    assert!(r.triggers.is_empty());
    assert_eq!(t.digest(), before);
    // The same multi without the failing ops applies atomically.
    let r = t.apply(&ctx(3), &WriteOp::Multi(ops[..2].to_vec()));
    let WriteResult::Multi(results) = r.result else { panic!() };
    assert!(results.iter().all(|r| r.err == 0));
    assert!(t.get("/m/a0000000000").is_some());
}

#[test]
fn close_session_deletes_its_ephemerals() {
    let mut t = DataTree::new(TreeConfig::default());
    t.apply(&ctx(1), &create("/e1", create_mode::EPHEMERAL));
    t.apply(&ctx(2), &create("/e2", create_mode::EPHEMERAL_SEQUENTIAL));
    assert_eq!(t.ephemerals_of(0x42).len(), 2);
    let r = t.apply(&ctx(3), &WriteOp::CloseSession);
    assert!(matches!(r.result, WriteResult::SessionClosed(ref p) if p.len() == 2));
    assert_eq!(t.ephemeral_count(), 0);
}

#[test]
fn containers_and_ttls_are_reaped() {
    let mut t = DataTree::new(TreeConfig { extended_types: true, ..Default::default() });
    t.apply(&ctx(1), &create("/c", create_mode::CONTAINER));
    assert!(t.reap_candidates(10_000, 100).is_empty(), "never-used containers stay");
    t.apply(&ctx(2), &create("/c/x", 0));
    t.apply(&ctx(3), &WriteOp::Delete { path: "/c/x".into(), version: -1 });
    assert_eq!(t.reap_candidates(10_000, 100), vec!["/c".to_string()]);
    let ttl = WriteOp::Create(CreateOp {
        path: "/t".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl: 100,
        opcode: op::CREATE_TTL,
    });
    t.apply(&ctx(4), &ttl);
    assert!(!t.reap_candidates(1004 + 50, 100).contains(&"/t".to_string()));
    assert!(t.reap_candidates(1004 + 101, 100).contains(&"/t".to_string()));
    let r = t.apply(&TxnContext { time_ms: 1004 + 101, ..ctx(5) }, &WriteOp::DeleteContainer { path: "/t".into() });
    assert_eq!(r.result, WriteResult::Deleted);
}

#[derive(Debug, Clone)]
enum ModelOp {
    Create(u8, u8),
    Delete(u8, u8),
    Set(u8, u8, u8),
}

fn model_path(a: u8, b: u8) -> String {
    if b.is_multiple_of(3) {
        format!("/n{}", a % 4)
    } else {
        format!("/n{}/c{}", a % 4, b % 3)
    }
}

proptest! {
    /// The tree agrees with a plain map on existence, data and children for
    /// any sequence of creates, deletes and setDatas.
    #[test]
    fn tree_matches_map_model(ops in proptest::collection::vec(
        prop_oneof![
            (any::<u8>(), any::<u8>()).prop_map(|(a, b)| ModelOp::Create(a, b)),
            (any::<u8>(), any::<u8>()).prop_map(|(a, b)| ModelOp::Delete(a, b)),
            (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, d)| ModelOp::Set(a, b, d)),
        ], 1..60)) {
        let mut t = DataTree::new(TreeConfig::default());
        let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (i, o) in ops.iter().enumerate() {
            let zxid = i as i64 + 1;
            match o {
                ModelOp::Create(a, b) => {
                    let p = model_path(*a, *b);
                    let (parent, _) = path::split_parent(&p).unwrap();
                    let ok = !model.contains_key(&p) && (parent == "/" || model.contains_key(parent));
                    let r = t.apply(&ctx(zxid), &create(&p, 0)).result;
                    prop_assert_eq!(matches!(r, WriteResult::Created { .. }), ok);
                    if ok { model.insert(p, b"x".to_vec()); }
                }
                ModelOp::Delete(a, b) => {
                    let p = model_path(*a, *b);
                    let prefix = format!("{p}/");
                    let ok = model.contains_key(&p) && !model.keys().any(|k| k.starts_with(&prefix));
                    let r = t.apply(&ctx(zxid), &WriteOp::Delete { path: p.clone(), version: -1 }).result;
                    prop_assert_eq!(r == WriteResult::Deleted, ok);
                    if ok { model.remove(&p); }
                }
                ModelOp::Set(a, b, d) => {
                    let p = model_path(*a, *b);
                    let ok = model.contains_key(&p);
                    let r = t.apply(&ctx(zxid), &WriteOp::SetData { path: p.clone(), data: Some(vec![*d]), version: -1 }).result;
                    prop_assert_eq!(matches!(r, WriteResult::DataSet(_)), ok);
                    if ok { model.insert(p, vec![*d]); }
                }
            }
        }
        for (p, d) in &model {
            let n = t.get(p).expect("model node exists in tree");
            prop_assert_eq!(n.data.as_ref(), Some(d));
            let prefix = format!("{p}/");
            let kids = model.keys().filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/')).count();
            prop_assert_eq!(n.children.len(), kids);
        }
        prop_assert_eq!(t.node_count(), model.len() + 4);
    }
}

#[test]
fn replay_uses_the_rules_logged_with_the_write() {
    // A TTL create accepted with extended types stays accepted on replay
    // even when the server restarts without them.
    let mut t = DataTree::new(TreeConfig::default());
    let ttl = WriteOp::Create(CreateOp {
        path: "/t".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl: 100,
        opcode: op::CREATE_TTL,
    });
    assert!(matches!(t.apply(&ctx(1), &ttl).result, WriteResult::Created { .. }));
}

#[test]
fn dfs_order_puts_each_subtree_before_the_next_sibling() {
    let mut paths =
        vec!["/a-b", "/a/b/c", "/", "/a.x", "/a/b", "/a", "/zookeeper", "/a/b-1", "/abcdefghij/k", "/abcdefghij"];
    paths.sort_by(|a, b| super::dfs_cmp(a, b));
    assert_eq!(
        paths,
        vec!["/", "/a", "/a/b", "/a/b/c", "/a/b-1", "/a-b", "/a.x", "/abcdefghij", "/abcdefghij/k", "/zookeeper"]
    );
}
