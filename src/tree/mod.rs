//! The data tree: znodes, their stats and ACLs, and the deterministic
//! `apply` of committed write operations.
//!
//! - Inputs: committed [`WriteOp`]s with their [`TxnContext`] (session, zxid,
//!   time and caller identities, all stamped at prep), and read requests.
//! - Outputs: a [`WriteResult`] per operation (a reply value or a ZooKeeper
//!   error code) and the [`Trigger`]s that watchers must hear about.
//! - Invariants:
//!   - `apply` reads no clock, no randomness and no local state: the same
//!     sequence of operations gives the same tree on every server;
//!   - the state-dependent checks run here, in ZooKeeper's order, so every
//!     replica reports the same error for the same operation;
//!   - a failed operation (including a failed multi) changes nothing but the
//!     last zxid: every write proposal consumes one zxid, as in ZooKeeper;
//!   - the stats follow ZooKeeper's rules: create and delete bump the
//!     parent's cversion and set its pzxid; setData bumps version, setACL
//!     aversion; the built-in nodes start with the stats real ZooKeeper shows.
//!
//! Watch bookkeeping is per server, not replicated: see [`watches`].

pub mod acl;
pub mod path;
pub mod quota;
pub mod watches;

use jute::data::{perms, Acl, Stat, StatPersisted};
use jute::proto::{create_mode, err, op};
use jute::Jute;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub const ROOT: &str = "/";
pub const PROC_ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA_ZOOKEEPER: &str = "/zookeeper/quota";
pub const CONFIG_ZOOKEEPER: &str = "/zookeeper/config";

/// ephemeralOwner of a container node.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;
/// Largest TTL in milliseconds (40 bits, about 34 years).
pub const MAX_TTL_MS: i64 = 0x00ff_ffff_ffff;

/// What an ephemeralOwner value means (`EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralType {
    Void,
    Normal,
    Container,
    Ttl(i64),
}

impl EphemeralType {
    pub fn of(owner: i64, extended_types: bool) -> Self {
        if owner == CONTAINER_EPHEMERAL_OWNER {
            return EphemeralType::Container;
        }
        if extended_types && owner & EXTENDED_MASK == EXTENDED_MASK {
            if owner & RESERVED_BITS_MASK == 0 {
                return EphemeralType::Ttl(owner & MAX_TTL_MS);
            }
            return EphemeralType::Normal;
        }
        if owner == 0 {
            EphemeralType::Void
        } else {
            EphemeralType::Normal
        }
    }
}

/// `CreateMode` decoded from request flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<Self> {
        let m = |ephemeral, sequential, container, ttl| CreateMode { ephemeral, sequential, container, ttl };
        Some(match flags {
            create_mode::PERSISTENT => m(false, false, false, false),
            create_mode::EPHEMERAL => m(true, false, false, false),
            create_mode::PERSISTENT_SEQUENTIAL => m(false, true, false, false),
            create_mode::EPHEMERAL_SEQUENTIAL => m(true, true, false, false),
            create_mode::CONTAINER => m(false, false, true, false),
            create_mode::PERSISTENT_WITH_TTL => m(false, false, false, true),
            create_mode::PERSISTENT_SEQUENTIAL_WITH_TTL => m(false, true, false, true),
            _ => return None,
        })
    }
}

/// Settings that change what `apply` does; identical on every replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeConfig {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types: bool,
    /// `zookeeper.skipACL`.
    pub skip_acl: bool,
    /// `zookeeper.enforceQuota`: hard quota limits refuse writes.
    pub enforce_quota: bool,
}

/// One znode.
#[derive(Debug, Clone)]
pub struct Node {
    pub data: Option<Vec<u8>>,
    pub acl: Arc<Vec<Acl>>,
    pub stat: StatPersisted,
    pub children: BTreeSet<String>,
}

impl Node {
    /// The stat clients see (`DataNode.copyStat`): the stored cversion counts
    /// creates only, and is reported as the number of child changes
    /// (`2 * creates - children`); ephemeralOwner is 0 for containers and TTL
    /// nodes, whose stored owner is a marker, not a session.
    pub fn stat(&self, extended_types: bool) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        let ephemeral_owner = match EphemeralType::of(s.ephemeral_owner, extended_types) {
            EphemeralType::Normal => s.ephemeral_owner,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner,
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// A node as snapshots and imports carry it (children are derived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedNode {
    pub path: String,
    pub data: Option<Vec<u8>>,
    /// Shared between the nodes that have the same ACL.
    pub acl: Arc<Vec<Acl>>,
    pub stat: StatPersisted,
}

/// Who is applying and when: stamped once at prep.
#[derive(Debug, Clone, Copy)]
pub struct TxnContext<'a> {
    pub session_id: i64,
    pub zxid: i64,
    pub time_ms: i64,
    pub auth: &'a [jute::data::Id],
    /// The settings in force when the write was proposed (logged with it),
    /// so that replay under a changed configuration reaches the same result.
    pub rules: TreeConfig,
}

/// A create request as clients send it (create, create2, createContainer,
/// createTTL all decode to this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOp {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    /// -1 when the request carried no TTL.
    pub ttl: i64,
    /// The opcode the client used; decides the reply shape.
    pub opcode: i32,
}

/// One operation of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateOp),
    Delete { path: String, version: i32 },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    Check { path: String, version: i32 },
}

/// A write, as proposed: what the client asked for, not yet checked against
/// the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    CreateSession {
        timeout_ms: i32,
    },
    CloseSession,
    Create(CreateOp),
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    /// A top-level check (version and READ permission of one node).
    Check {
        path: String,
        version: i32,
    },
    /// Issued by the container/TTL reaper, not by clients.
    DeleteContainer {
        path: String,
    },
    /// A request that failed before touching the tree (undecodable,
    /// reconfig refused); like ZooKeeper's error txn it consumes a zxid.
    Error {
        code: i32,
    },
}

/// The outcome of one applied operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    Error(i32),
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    DataSet(Stat),
    AclSet(Stat),
    Checked,
    Multi(Vec<MultiResult>),
    SessionCreated,
    /// The ephemerals deleted by the close.
    SessionClosed(Vec<String>),
}

/// The result of one multi operation, typed as its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiResult {
    /// The opcode of the result (`op::ERROR` on failure).
    pub opcode: i32,
    pub err: i32,
    pub result: WriteResult,
}

/// A change watchers may be waiting for, with the ACL of the node it is
/// about: only watchers allowed to READ that node are told (ZooKeeper
/// filters notifications by ACL since CVE-2024-23944).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub path: String,
    pub acl: Arc<Vec<Acl>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Created,
    Deleted,
    DataChanged,
    ChildrenChanged,
}

pub struct Applied {
    pub result: WriteResult,
    pub triggers: Vec<Trigger>,
}

/// The replicated tree.
pub struct DataTree {
    /// Nodes are shared with snapshots in progress: a write clones a node
    /// only while a snapshot still holds it (`Arc::make_mut`).
    nodes: HashMap<Arc<str>, Arc<Node>>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    acl_cache: HashMap<Vec<Acl>, Arc<Vec<Acl>>>,
    last_zxid: i64,
    config: TreeConfig,
    /// Prior versions of the nodes a multi touched, for rollback.
    undo: Option<Vec<(String, Option<Arc<Node>>)>>,
    data_bytes: u64,
    /// Paths that have a quota limit node (`pTrie` in ZooKeeper).
    quota_paths: BTreeSet<String>,
}

type OpResult<T> = Result<T, i32>;

/// While restoring: the last ACL seen (as given) and its interned copy.
type AclRun = Option<(Arc<Vec<Acl>>, Arc<Vec<Acl>>)>;

impl DataTree {
    pub fn new(config: TreeConfig) -> Self {
        let mut t = DataTree {
            nodes: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            acl_cache: HashMap::new(),
            last_zxid: 0,
            config,
            undo: None,
            data_bytes: 0,
            quota_paths: BTreeSet::new(),
        };
        let open = t.intern_acl(Acl::open_unsafe());
        let read_only = t.intern_acl(vec![Acl { perms: perms::READ, id: jute::data::Id::new("world", "anyone") }]);
        let node = |acl: &Arc<Vec<Acl>>, children: &[&str]| {
            Arc::new(Node {
                data: Some(vec![]),
                acl: acl.clone(),
                stat: StatPersisted::default(),
                children: children.iter().map(|c| c.to_string()).collect(),
            })
        };
        t.nodes.insert(ROOT.into(), node(&open, &["zookeeper"]));
        t.nodes.insert(PROC_ZOOKEEPER.into(), node(&open, &["quota", "config"]));
        t.nodes.insert(QUOTA_ZOOKEEPER.into(), node(&open, &[]));
        // ZooKeeper's standalone server keeps /zookeeper/config with an empty
        // configuration and a read-only ACL, set with version -1 at start-up,
        // which leaves its aversion at -1.
        let mut config = node(&read_only, &[]);
        Arc::make_mut(&mut config).stat.aversion = -1;
        t.nodes.insert(CONFIG_ZOOKEEPER.into(), config);
        t
    }

    /// Rebuilds a tree from persisted nodes (a snapshot, or an imported
    /// ZooKeeper data directory): children, indexes, ACL sharing and quota
    /// tracking are derived from the nodes. Fails when a node's parent is
    /// missing or the root is absent. Nodes may come in any order; in
    /// depth-first order ([`dfs_cmp`], as snapshots store them) no sorting
    /// is needed. When a path occurs twice, the later node wins.
    pub fn restore(config: TreeConfig, last_zxid: i64, mut nodes: Vec<PersistedNode>) -> Result<Self, String> {
        let mut t = DataTree::new(config);
        t.nodes.clear();
        // Sized once: growing a million-entry map step by step costs most of
        // a restart's time.
        t.nodes.reserve(nodes.len());
        t.data_bytes = 0;
        // Stable, and linear on input that is already in order: each node's
        // parent is then on the stack of open ancestors when it arrives, and
        // each node's children arrive in name order.
        nodes.sort_by(|a, b| dfs_cmp(&a.path, &b.path));
        if nodes.first().is_none_or(|n| n.path != ROOT) {
            return Err("the root node is missing".into());
        }
        // Open ancestors of the current node, with the names of their
        // children so far.
        let mut stack: Vec<(PersistedNode, Vec<String>)> = Vec::with_capacity(64);
        let mut last_acl: AclRun = None;
        for n in nodes {
            if let Some(top) = stack.last_mut().filter(|(top, _)| top.path == n.path) {
                top.0 = n;
                continue;
            }
            if n.path == ROOT {
                stack.push((n, Vec::new()));
                continue;
            }
            let (parent, name) = path::split_parent(&n.path).ok_or_else(|| format!("invalid path {:?}", n.path))?;
            while stack.last().is_some_and(|(top, _)| top.path != parent) {
                let done = stack.pop().expect("checked");
                t.restore_insert(done, &mut last_acl);
            }
            let (_, names) = stack.last_mut().ok_or_else(|| format!("node {:?} has no parent {parent:?}", n.path))?;
            names.push(name.to_owned());
            stack.push((n, Vec::new()));
        }
        while let Some(done) = stack.pop() {
            t.restore_insert(done, &mut last_acl);
        }
        t.last_zxid = last_zxid;
        Ok(t)
    }

    /// Inserts one restored node with its children's names (in order).
    fn restore_insert(&mut self, (n, names): (PersistedNode, Vec<String>), last_acl: &mut AclRun) {
        // Consecutive nodes mostly share one ACL (one Arc from a snapshot's
        // ACL table): intern it once per run.
        let acl = match last_acl {
            Some((from, interned)) if Arc::ptr_eq(from, &n.acl) || **from == *n.acl => interned.clone(),
            _ => {
                let interned = self.intern_acl(n.acl.to_vec());
                *last_acl = Some((n.acl.clone(), interned.clone()));
                interned
            }
        };
        self.index_add(&n.path, n.stat.ephemeral_owner);
        self.data_bytes += (n.path.len() + n.data.as_ref().map_or(0, |d| d.len())) as u64;
        let children: BTreeSet<String> = names.into_iter().collect();
        self.nodes.insert(Arc::from(n.path), Arc::new(Node { data: n.data, acl, stat: n.stat, children }));
    }

    /// Every node as persisted, parents before children.
    pub fn persisted_nodes(&self) -> Vec<PersistedNode> {
        let mut out: Vec<PersistedNode> = self
            .nodes
            .iter()
            .map(|(p, n)| PersistedNode {
                path: p.to_string(),
                data: n.data.clone(),
                acl: n.acl.clone(),
                stat: n.stat.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// Every node, shared: the caller may serialize them while the tree
    /// goes on changing (copy-on-write per node).
    pub fn share_nodes(&self) -> Vec<(Arc<str>, Arc<Node>)> {
        self.nodes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The client-visible stat of a node of this tree.
    pub fn stat_of(&self, node: &Node) -> Stat {
        node.stat(self.config.extended_types)
    }

    /// Number of znodes, counted as ZooKeeper reports it (its map holds the
    /// root twice, under "" and "/", and `Node count`/`zk_znode_count` show that).
    pub fn node_count_reported(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes
    }

    pub fn ephemerals_of(&self, session_id: i64) -> Vec<String> {
        self.ephemerals.get(&session_id).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn sessions_with_ephemerals(&self) -> impl Iterator<Item = (&i64, &BTreeSet<String>)> {
        self.ephemerals.iter()
    }

    /// Number of descendants of `path` (`getAllChildrenNumber`).
    pub fn all_children_number(&self, path: &str) -> usize {
        if path == ROOT {
            return self.nodes.len() - 1;
        }
        let prefix = format!("{path}/");
        self.nodes.keys().filter(|k| k.starts_with(&prefix)).count()
    }

    pub fn containers(&self) -> &BTreeSet<String> {
        &self.containers
    }

    pub fn ttls(&self) -> &BTreeSet<String> {
        &self.ttls
    }

    fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        if let Some(a) = self.acl_cache.get(&acl) {
            return a.clone();
        }
        let a = Arc::new(acl.clone());
        self.acl_cache.insert(acl, a.clone());
        a
    }

    fn check(&self, acl: &[Acl], perm: i32, ctx: &TxnContext) -> OpResult<()> {
        if acl::check_acl(acl, perm, ctx.auth, ctx.rules.skip_acl) {
            Ok(())
        } else {
            Err(err::NO_AUTH)
        }
    }

    fn save(&mut self, path: &str) {
        if let Some(undo) = self.undo.as_mut() {
            if !undo.iter().any(|(p, _)| p == path) {
                undo.push((path.to_owned(), self.nodes.get(path).cloned()));
            }
        }
    }

    fn index_remove(&mut self, path: &str, owner: i64) {
        if let Some(target) = quota_limit_target(path) {
            self.quota_paths.remove(target);
        }
        match EphemeralType::of(owner, self.config.extended_types) {
            EphemeralType::Container => {
                self.containers.remove(path);
            }
            EphemeralType::Ttl(_) => {
                self.ttls.remove(path);
            }
            EphemeralType::Normal => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            EphemeralType::Void => {}
        }
    }

    fn index_add(&mut self, path: &str, owner: i64) {
        if let Some(target) = quota_limit_target(path) {
            self.quota_paths.insert(target.to_owned());
        }
        match EphemeralType::of(owner, self.config.extended_types) {
            EphemeralType::Container => {
                self.containers.insert(path.to_owned());
            }
            EphemeralType::Ttl(_) => {
                self.ttls.insert(path.to_owned());
            }
            EphemeralType::Normal => {
                self.ephemerals.entry(owner).or_default().insert(path.to_owned());
            }
            EphemeralType::Void => {}
        }
    }

    fn put_node(&mut self, path: &str, node: Option<Arc<Node>>) {
        if let Some(old) = self.nodes.remove(path) {
            self.index_remove(path, old.stat.ephemeral_owner);
            self.data_bytes -= (path.len() + old.data.as_ref().map_or(0, |d| d.len())) as u64;
        }
        if let Some(n) = node {
            self.index_add(path, n.stat.ephemeral_owner);
            self.data_bytes += (path.len() + n.data.as_ref().map_or(0, |d| d.len())) as u64;
            self.nodes.insert(Arc::from(path), n);
        }
    }

    /// A committed entry that is not a client write (in a quorum: a new
    /// leader's blank entry, a membership change): the zxid advances, and a
    /// membership change rewrites `/zookeeper/config` as ZooKeeper does
    /// (`initConfigInZKDatabase`: data, version -1, mzxid; its mtime stays,
    /// as no time is replicated with a membership change). Returns the watch
    /// triggers. Deterministic.
    pub fn advance(&mut self, zxid: i64, config: Option<Vec<u8>>) -> Vec<Trigger> {
        let mut triggers = Vec::new();
        if let Some(data) = config {
            if let Some(node) = node_in(&mut self.nodes, CONFIG_ZOOKEEPER) {
                let old_len = node.data.as_ref().map_or(0, |d| d.len()) as u64;
                let new_len = data.len() as u64;
                node.data = Some(data);
                node.stat.version = -1;
                node.stat.mzxid = zxid;
                let acl = node.acl.clone();
                self.data_bytes = self.data_bytes - old_len + new_len;
                triggers.push(Trigger { kind: TriggerKind::DataChanged, path: CONFIG_ZOOKEEPER.to_owned(), acl });
            }
        }
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
        triggers
    }

    /// Applies one committed operation. Deterministic: see the module docs.
    pub fn apply(&mut self, ctx: &TxnContext, op: &WriteOp) -> Applied {
        let mut triggers = Vec::new();
        let result = match op {
            WriteOp::CreateSession { .. } => WriteResult::SessionCreated,
            WriteOp::CloseSession => {
                let paths = self.ephemerals_of(ctx.session_id);
                for p in &paths {
                    self.delete_node(p, ctx.zxid, &mut triggers);
                }
                WriteResult::SessionClosed(paths)
            }
            WriteOp::Create(c) => self.create(ctx, c, &mut triggers).unwrap_or_else(WriteResult::Error),
            WriteOp::Delete { path, version } => {
                self.delete(ctx, path, *version, &mut triggers).unwrap_or_else(WriteResult::Error)
            }
            WriteOp::SetData { path, data, version } => {
                self.set_data(ctx, path, data, *version, &mut triggers).unwrap_or_else(WriteResult::Error)
            }
            WriteOp::SetAcl { path, acl, version } => {
                self.set_acl(ctx, path, acl, *version).unwrap_or_else(WriteResult::Error)
            }
            WriteOp::Multi(ops) => self.multi(ctx, ops, &mut triggers),
            WriteOp::Error { code } => WriteResult::Error(*code),
            WriteOp::Check { path, version } => self.check_op(ctx, path, *version).unwrap_or_else(WriteResult::Error),
            WriteOp::DeleteContainer { path } => {
                self.delete_container(ctx, path, &mut triggers).unwrap_or_else(WriteResult::Error)
            }
        };
        if ctx.zxid > self.last_zxid {
            self.last_zxid = ctx.zxid;
        }
        Applied { result, triggers }
    }

    fn create(&mut self, ctx: &TxnContext, c: &CreateOp, triggers: &mut Vec<Trigger>) -> OpResult<WriteResult> {
        let mode = CreateMode::from_flags(c.flags).ok_or(err::BAD_ARGUMENTS)?;
        if mode.ttl && !ctx.rules.extended_types {
            return Err(err::UNIMPLEMENTED);
        }
        if mode.ttl {
            if c.ttl <= 0 || c.ttl > MAX_TTL_MS {
                return Err(err::BAD_ARGUMENTS);
            }
        } else if c.ttl >= 0 {
            return Err(err::BAD_ARGUMENTS);
        }
        let last_slash = c.path.rfind('/').ok_or(err::BAD_ARGUMENTS)?;
        if c.path.contains('\0') {
            return Err(err::BAD_ARGUMENTS);
        }
        let acl = acl::fixup_acl(&c.acl, ctx.auth).ok_or(err::INVALID_ACL)?;
        let parent_path = if last_slash == 0 { ROOT } else { &c.path[..last_slash] };
        let parent = self.nodes.get(parent_path).ok_or(err::NO_NODE)?;
        self.check(&parent.acl, perms::CREATE, ctx)?;
        let parent_cversion = parent.stat.cversion;
        let path = if mode.sequential { format!("{}{:010}", c.path, parent_cversion) } else { c.path.clone() };
        path::validate_path(&path).map_err(|_| err::BAD_ARGUMENTS)?;
        if self.nodes.contains_key(&*path) {
            return Err(err::NODE_EXISTS);
        }
        if EphemeralType::of(parent.stat.ephemeral_owner, ctx.rules.extended_types) == EphemeralType::Normal {
            return Err(err::NO_CHILDREN_FOR_EPHEMERALS);
        }
        self.check_quota(ctx, &path, c.data.as_ref().map_or(0, |d| d.len()) as i64, 1)?;
        let owner = if mode.container {
            CONTAINER_EPHEMERAL_OWNER
        } else if mode.ttl {
            EXTENDED_MASK | c.ttl
        } else if mode.ephemeral {
            ctx.session_id
        } else {
            0
        };
        self.create_node(&path, c.data.clone(), acl, owner, ctx.zxid, ctx.time_ms, triggers);
        let stat = self.stat_of(&self.nodes[path.as_str()]);
        Ok(WriteResult::Created { path, stat })
    }

    /// Inserts a node whose preconditions were checked.
    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        owner: i64,
        zxid: i64,
        time_ms: i64,
        triggers: &mut Vec<Trigger>,
    ) {
        let (parent_path, name) = path::split_parent(path).expect("validated path has a parent");
        let acl = self.intern_acl(acl);
        self.save(parent_path);
        self.save(path);
        let parent = node_in(&mut self.nodes, parent_path).expect("parent checked");
        parent.children.insert(name.to_owned());
        parent.stat.cversion += 1;
        parent.stat.pzxid = zxid;
        let parent_acl = parent.acl.clone();
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        let parent_path = parent_path.to_owned();
        let len = data.as_ref().map_or(0, |d| d.len()) as i64;
        self.put_node(path, Some(Arc::new(Node { data, acl: acl.clone(), stat, children: BTreeSet::new() })));
        self.update_quota_usage(path, len, 1);
        self.on_quota_node_created(&parent_path, name);
        triggers.push(Trigger { kind: TriggerKind::Created, path: path.to_owned(), acl });
        triggers.push(Trigger { kind: TriggerKind::ChildrenChanged, path: parent_path, acl: parent_acl });
    }

    fn delete_node(&mut self, path: &str, zxid: i64, triggers: &mut Vec<Trigger>) {
        let Some((parent_path, name)) = path::split_parent(path) else {
            return;
        };
        self.save(parent_path);
        self.save(path);
        let mut parent_acl = Arc::new(Vec::new());
        if let Some(parent) = node_in(&mut self.nodes, parent_path) {
            parent.children.remove(name);
            // Only creates count in the stored cversion (see `Node::stat`).
            if zxid > parent.stat.pzxid {
                parent.stat.pzxid = zxid;
            }
            parent_acl = parent.acl.clone();
        }
        let parent_path = parent_path.to_owned();
        let (len, acl) = match self.nodes.get(path) {
            Some(n) => (n.data.as_ref().map_or(0, |d| d.len()) as i64, n.acl.clone()),
            None => (0, Arc::new(Vec::new())),
        };
        self.put_node(path, None);
        self.update_quota_usage(path, -len, -1);
        triggers.push(Trigger { kind: TriggerKind::Deleted, path: path.to_owned(), acl });
        triggers.push(Trigger { kind: TriggerKind::ChildrenChanged, path: parent_path, acl: parent_acl });
    }

    fn is_special(path: &str) -> bool {
        matches!(path, ROOT | PROC_ZOOKEEPER | QUOTA_ZOOKEEPER | CONFIG_ZOOKEEPER)
    }

    fn delete(
        &mut self,
        ctx: &TxnContext,
        path: &str,
        version: i32,
        triggers: &mut Vec<Trigger>,
    ) -> OpResult<WriteResult> {
        let last_slash = path.rfind('/').ok_or(err::BAD_ARGUMENTS)?;
        if path.contains('\0') || Self::is_special(path) {
            return Err(err::BAD_ARGUMENTS);
        }
        let parent_path = if last_slash == 0 { ROOT } else { &path[..last_slash] };
        let parent = self.nodes.get(parent_path).ok_or(err::NO_NODE)?;
        self.check(&parent.acl, perms::DELETE, ctx)?;
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        check_version(node.stat.version, version)?;
        if !node.children.is_empty() {
            return Err(err::NOT_EMPTY);
        }
        self.delete_node(path, ctx.zxid, triggers);
        Ok(WriteResult::Deleted)
    }

    fn delete_container(&mut self, ctx: &TxnContext, path: &str, triggers: &mut Vec<Trigger>) -> OpResult<WriteResult> {
        path::split_parent(path).ok_or(err::BAD_ARGUMENTS)?;
        if Self::is_special(path) {
            return Err(err::BAD_ARGUMENTS);
        }
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        if !node.children.is_empty() {
            return Err(err::NOT_EMPTY);
        }
        match EphemeralType::of(node.stat.ephemeral_owner, ctx.rules.extended_types) {
            EphemeralType::Container => {}
            // The reaper stamps the time it saw the node expire; re-check at
            // apply so a setData that raced with the reaper keeps the node.
            EphemeralType::Ttl(ttl) if ctx.time_ms - node.stat.mtime > ttl => {}
            _ => return Err(err::BAD_VERSION),
        }
        self.delete_node(path, ctx.zxid, triggers);
        Ok(WriteResult::Deleted)
    }

    fn set_data(
        &mut self,
        ctx: &TxnContext,
        path: &str,
        data: &Option<Vec<u8>>,
        version: i32,
        triggers: &mut Vec<Trigger>,
    ) -> OpResult<WriteResult> {
        path::validate_path(path).map_err(|_| err::BAD_ARGUMENTS)?;
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        self.check(&node.acl, perms::WRITE, ctx)?;
        let old_len = node.data.as_ref().map_or(0, |d| d.len()) as i64;
        let bytes_diff = data.as_ref().map_or(0, |d| d.len()) as i64 - old_len;
        self.check_quota(ctx, path, bytes_diff, 0)?;
        let new_version = check_version(node.stat.version, version)?;
        self.save(path);
        let node = node_in(&mut self.nodes, path).expect("checked");
        let old_len = node.data.as_ref().map_or(0, |d| d.len()) as u64;
        node.data = data.clone();
        node.stat.version = new_version;
        node.stat.mzxid = ctx.zxid;
        node.stat.mtime = ctx.time_ms;
        let acl = node.acl.clone();
        let stat = node.stat(self.config.extended_types);
        self.data_bytes = self.data_bytes - old_len + data.as_ref().map_or(0, |d| d.len()) as u64;
        self.update_quota_usage(path, bytes_diff, 0);
        triggers.push(Trigger { kind: TriggerKind::DataChanged, path: path.to_owned(), acl });
        Ok(WriteResult::DataSet(stat))
    }

    fn set_acl(&mut self, ctx: &TxnContext, path: &str, acl: &[Acl], version: i32) -> OpResult<WriteResult> {
        path::validate_path(path).map_err(|_| err::BAD_ARGUMENTS)?;
        let acl = acl::fixup_acl(acl, ctx.auth).ok_or(err::INVALID_ACL)?;
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        self.check(&node.acl, perms::ADMIN, ctx)?;
        let new_version = check_version(node.stat.aversion, version)?;
        let acl = self.intern_acl(acl);
        self.save(path);
        let node = node_in(&mut self.nodes, path).expect("checked");
        node.acl = acl;
        node.stat.aversion = new_version;
        Ok(WriteResult::AclSet(node.stat(self.config.extended_types)))
    }

    fn check_op(&self, ctx: &TxnContext, path: &str, version: i32) -> OpResult<WriteResult> {
        path::validate_path(path).map_err(|_| err::BAD_ARGUMENTS)?;
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        self.check(&node.acl, perms::READ, ctx)?;
        check_version(node.stat.version, version)?;
        Ok(WriteResult::Checked)
    }

    fn multi(&mut self, ctx: &TxnContext, ops: &[MultiOp], triggers: &mut Vec<Trigger>) -> WriteResult {
        self.undo = Some(Vec::new());
        let mut local_triggers = Vec::new();
        let mut results: Vec<MultiResult> = Vec::with_capacity(ops.len());
        let mut failed_at = None;
        for (i, o) in ops.iter().enumerate() {
            let (opcode, r) = match o {
                MultiOp::Create(c) => (c.opcode, self.create(ctx, c, &mut local_triggers)),
                MultiOp::Delete { path, version } => {
                    (op::DELETE, self.delete(ctx, path, *version, &mut local_triggers))
                }
                MultiOp::SetData { path, data, version } => {
                    (op::SET_DATA, self.set_data(ctx, path, data, *version, &mut local_triggers))
                }
                MultiOp::Check { path, version } => (op::CHECK, self.check_op(ctx, path, *version)),
            };
            match r {
                Ok(result) => results.push(MultiResult { opcode, err: err::OK, result }),
                Err(code) => {
                    failed_at = Some((i, code));
                    break;
                }
            }
        }
        let undo = self.undo.take().unwrap_or_default();
        let Some((failed, code)) = failed_at else {
            triggers.append(&mut local_triggers);
            return WriteResult::Multi(results);
        };
        for (path, old) in undo.into_iter().rev() {
            self.put_node(&path, old);
        }
        let results = (0..ops.len())
            .map(|i| {
                let e = match i.cmp(&failed) {
                    std::cmp::Ordering::Less => err::OK,
                    std::cmp::Ordering::Equal => code,
                    std::cmp::Ordering::Greater => err::RUNTIME_INCONSISTENCY,
                };
                MultiResult { opcode: op::ERROR, err: e, result: WriteResult::Error(e) }
            })
            .collect();
        WriteResult::Multi(results)
    }

    /// Paths the container/TTL reaper should propose for deletion at `now_ms`
    /// (`ContainerManager.getCandidates`).
    pub fn reap_candidates(&self, now_ms: i64, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.containers {
            if let Some(n) = self.nodes.get(&**p) {
                if n.children.is_empty() && n.stat.cversion > 0 {
                    out.push(p.clone());
                }
            }
        }
        for p in &self.ttls {
            if let Some(n) = self.nodes.get(&**p) {
                if let EphemeralType::Ttl(ttl) = EphemeralType::of(n.stat.ephemeral_owner, self.config.extended_types) {
                    if n.children.is_empty() && ttl != 0 && now_ms - n.stat.mtime > ttl {
                        out.push(p.clone());
                    }
                }
            }
        }
        out.truncate(limit);
        out
    }

    /// A digest of the whole tree, for comparing replicas in tests.
    pub fn digest(&self) -> u64 {
        let mut paths: Vec<&Arc<str>> = self.nodes.keys().collect();
        paths.sort();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |b: &[u8]| {
            for x in b {
                h ^= *x as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        };
        for p in paths {
            let n = &self.nodes[&**p];
            feed(p.as_bytes());
            feed(&n.stat.to_bytes());
            if let Some(d) = &n.data {
                feed(d);
            }
            for a in n.acl.iter() {
                feed(&a.to_bytes());
            }
        }
        h
    }
}

/// Depth-first order of paths, children by name: byte order with '/'
/// below every other byte. A node comes right before its subtree, and its
/// subtree before its next sibling (`/a`, `/a/b`, `/a-b`).
pub fn dfs_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |c: u8| if c == b'/' { 0u16 } else { c as u16 + 1 };
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len().min(b.len());
    // Skip the common prefix 8 bytes at a time (paths share long ones).
    let mut i = 0;
    while i + 8 <= n && a[i..i + 8] == b[i..i + 8] {
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    if i < n {
        key(a[i]).cmp(&key(b[i]))
    } else {
        a.len().cmp(&b.len())
    }
}

/// For `/zookeeper/quota<target>/zookeeper_limits`, the quota'd target.
fn quota_limit_target(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(QUOTA_ZOOKEEPER)?;
    let target = rest.strip_suffix(quota::LIMIT_NODE)?.strip_suffix('/')?;
    (!target.is_empty()).then_some(target)
}

/// A node for writing: cloned first if a snapshot still shares it.
fn node_in<'a>(nodes: &'a mut HashMap<Arc<str>, Arc<Node>>, path: &str) -> Option<&'a mut Node> {
    nodes.get_mut(path).map(Arc::make_mut)
}

/// ZooKeeper's `checkAndIncVersion`: -1 matches any version.
fn check_version(current: i32, expected: i32) -> OpResult<i32> {
    if expected != -1 && expected != current {
        return Err(err::BAD_VERSION);
    }
    Ok(current.wrapping_add(1))
}

#[cfg(test)]
mod tests;
