//! Snapshots of the data tree and the session table, and Apache ZooKeeper's
//! on-disk formats (for migration from, and rollback to, ZooKeeper).

pub mod zkformat;
