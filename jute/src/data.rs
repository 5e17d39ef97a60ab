//! `org.apache.zookeeper.data`: identities, ACLs and znode statistics.

use crate::jute_records;

jute_records! {
    /// An identity: `scheme:id`, e.g. `digest:user:base64(sha1)`.
    Id { scheme: String, id: String }

    /// A permission set granted to an identity.
    Acl { perms: i32, id: Id }

    /// The znode statistics that clients see.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }

    /// The statistics ZooKeeper persists in snapshots (no derived fields).
    StatPersisted {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        pzxid: i64,
    }

    /// whoAmI: one authenticated identity of the caller.
    ClientInfo { auth_scheme: String, user: Option<String> }
}

/// Permission bits of [`Acl::perms`].
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Self {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }
}

impl Acl {
    /// `world:anyone` with every permission: ZooKeeper's OPEN_ACL_UNSAFE.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: Id::new("world", "anyone") }]
    }
}
