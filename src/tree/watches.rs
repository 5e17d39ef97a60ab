//! Watch registrations of this server's connections, and which of them a
//! [`Trigger`](super::Trigger) fires.
//!
//! - Inputs: registrations from reads (getData/exists/getChildren with a
//!   watch flag, addWatch, setWatches), removals (removeWatches, a closed
//!   connection), and triggers from applied writes.
//! - Outputs: the connections to notify, with the event, in trigger order.
//! - Invariants (ZooKeeper 3.9's WatchManager):
//!   - one-shot data/exist and child watches fire once and are removed;
//!   - a persistent watch on P sees every event on P (created, deleted, data
//!     changed, children changed) and stays;
//!   - a persistent-recursive watch on P sees created/deleted/data-changed on
//!     P and every descendant, never NodeChildrenChanged;
//!   - a connection gets at most one notification per trigger, whichever of
//!     its watches matched;
//!   - watches belong to a connection and vanish with it (clients re-arm them
//!     with setWatches on their next connection).

use super::path::ancestors;
use super::{Trigger, TriggerKind};
use jute::proto::{event_type, watcher_type};
use std::collections::{HashMap, HashSet};

pub type ConnId = u64;

const DATA: u8 = 1;
const CHILD: u8 = 2;
const PERSISTENT: u8 = 4;
const RECURSIVE: u8 = 8;

#[derive(Default)]
pub struct WatchManager {
    by_path: HashMap<String, HashMap<ConnId, u8>>,
    by_conn: HashMap<ConnId, HashSet<String>>,
    recursive: usize,
    count: usize,
}

/// A watch kind, as registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    Data,
    Child,
    Persistent,
    PersistentRecursive,
}

impl WatchKind {
    fn bit(self) -> u8 {
        match self {
            WatchKind::Data => DATA,
            WatchKind::Child => CHILD,
            WatchKind::Persistent => PERSISTENT,
            WatchKind::PersistentRecursive => RECURSIVE,
        }
    }
}

impl WatchManager {
    pub fn add(&mut self, conn: ConnId, path: &str, kind: WatchKind) {
        let entry = self.by_path.entry(path.to_owned()).or_default().entry(conn).or_insert(0);
        let bit = kind.bit();
        if *entry & bit == 0 {
            *entry |= bit;
            self.count += 1;
            if bit == RECURSIVE {
                self.recursive += 1;
            }
        }
        self.by_conn.entry(conn).or_default().insert(path.to_owned());
    }

    /// Number of registrations (a path watched twice by one connection in
    /// two modes counts twice).
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    pub fn connection_count(&self) -> usize {
        self.by_conn.len()
    }

    fn clear_bits(&mut self, conn: ConnId, path: &str, bits: u8) -> bool {
        let Some(conns) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(cur) = conns.get_mut(&conn) else {
            return false;
        };
        let removed = *cur & bits;
        if removed == 0 {
            return false;
        }
        *cur &= !bits;
        self.count -= removed.count_ones() as usize;
        if removed & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        if *cur == 0 {
            conns.remove(&conn);
            if conns.is_empty() {
                self.by_path.remove(path);
            }
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        }
        true
    }

    fn bits_for_type(watcher_type: i32) -> Option<u8> {
        Some(match watcher_type {
            watcher_type::CHILDREN => CHILD,
            // A one-shot data watch; also how clients name exists watches.
            watcher_type::DATA => DATA,
            watcher_type::ANY => DATA | CHILD | PERSISTENT | RECURSIVE,
            watcher_type::PERSISTENT => PERSISTENT,
            watcher_type::PERSISTENT_RECURSIVE => RECURSIVE,
            _ => return None,
        })
    }

    /// checkWatches: whether `conn` has a watch of this type on `path`.
    pub fn contains(&self, conn: ConnId, path: &str, watcher_type: i32) -> bool {
        let Some(bits) = Self::bits_for_type(watcher_type) else {
            return false;
        };
        self.by_path.get(path).and_then(|c| c.get(&conn)).is_some_and(|cur| cur & bits != 0)
    }

    /// removeWatches: removes `conn`'s watches of this type on `path`;
    /// false when there was none (NOWATCHER).
    pub fn remove(&mut self, conn: ConnId, path: &str, watcher_type: i32) -> bool {
        let Some(bits) = Self::bits_for_type(watcher_type) else {
            return false;
        };
        self.clear_bits(conn, path, bits)
    }

    pub fn remove_connection(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for p in paths {
            if let Some(conns) = self.by_path.get_mut(&p) {
                if let Some(bits) = conns.remove(&conn) {
                    self.count -= bits.count_ones() as usize;
                    if bits & RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                }
                if conns.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    /// The connections that `trigger` notifies, with the event type and path
    /// of the notification. One-shot watches that fired are removed.
    pub fn fire(&mut self, trigger: &Trigger) -> Vec<(ConnId, i32, String)> {
        // Which of ZooKeeper's two watch tables the event goes through.
        let path = &trigger.path;
        let (etype, data_table, child_table) = match trigger.kind {
            TriggerKind::Created => (event_type::NODE_CREATED, true, false),
            TriggerKind::Deleted => (event_type::NODE_DELETED, true, true),
            TriggerKind::DataChanged => (event_type::NODE_DATA_CHANGED, true, false),
            TriggerKind::ChildrenChanged => (event_type::NODE_CHILDREN_CHANGED, false, true),
        };
        let mut out: Vec<(ConnId, i32, String)> = Vec::new();
        let mut spent: Vec<(ConnId, u8)> = Vec::new();
        if let Some(conns) = self.by_path.get(path.as_str()) {
            for (&conn, &bits) in conns {
                let mut hit = bits & PERSISTENT != 0;
                if bits & RECURSIVE != 0 && etype != event_type::NODE_CHILDREN_CHANGED {
                    hit = true;
                }
                let mut one_shot = 0;
                if data_table && bits & DATA != 0 {
                    one_shot |= DATA;
                }
                if child_table && bits & CHILD != 0 {
                    one_shot |= CHILD;
                }
                if one_shot != 0 {
                    hit = true;
                    spent.push((conn, one_shot));
                }
                if hit {
                    out.push((conn, etype, path.clone()));
                }
            }
        }
        for (conn, bits) in spent {
            self.clear_bits(conn, path, bits);
        }
        if self.recursive > 0 && etype != event_type::NODE_CHILDREN_CHANGED {
            for a in ancestors(path) {
                if let Some(conns) = self.by_path.get(a) {
                    for (&conn, &bits) in conns {
                        if bits & RECURSIVE != 0 && !out.iter().any(|(c, _, _)| *c == conn) {
                            out.push((conn, etype, path.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    /// For `wchc`/`wchp`-style reports: (path, connections).
    pub fn iter_paths(&self) -> impl Iterator<Item = (&String, impl Iterator<Item = &ConnId>)> {
        self.by_path.iter().map(|(p, c)| (p, c.keys()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn t(kind: TriggerKind, path: &str) -> Trigger {
        Trigger { kind, path: path.into(), acl: Arc::new(vec![]) }
    }

    #[test]
    fn one_shot_fires_once() {
        let mut w = WatchManager::default();
        w.add(1, "/a", WatchKind::Data);
        assert_eq!(w.fire(&t(TriggerKind::DataChanged, "/a")).len(), 1);
        assert!(w.fire(&t(TriggerKind::DataChanged, "/a")).is_empty());
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn delete_notifies_once_for_data_and_child() {
        let mut w = WatchManager::default();
        w.add(1, "/a", WatchKind::Data);
        w.add(1, "/a", WatchKind::Child);
        let ev = w.fire(&t(TriggerKind::Deleted, "/a"));
        assert_eq!(ev, vec![(1, event_type::NODE_DELETED, "/a".to_string())]);
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn recursive_sees_descendants_but_not_children_changed() {
        let mut w = WatchManager::default();
        w.add(7, "/a", WatchKind::PersistentRecursive);
        assert_eq!(w.fire(&t(TriggerKind::Created, "/a/b/c")).len(), 1);
        assert!(w.fire(&t(TriggerKind::ChildrenChanged, "/a")).is_empty());
        assert_eq!(w.count(), 1);
        w.remove_connection(7);
        assert_eq!(w.count(), 0);
        assert!(w.fire(&t(TriggerKind::Created, "/a/b")).is_empty());
    }

    #[test]
    fn persistent_sees_children_changed_and_stays() {
        let mut w = WatchManager::default();
        w.add(3, "/p", WatchKind::Persistent);
        assert_eq!(w.fire(&t(TriggerKind::ChildrenChanged, "/p")).len(), 1);
        assert_eq!(w.fire(&t(TriggerKind::DataChanged, "/p")).len(), 1);
        assert!(w.fire(&t(TriggerKind::Created, "/p/x")).is_empty());
        assert!(w.remove(3, "/p", watcher_type::PERSISTENT));
        assert!(!w.remove(3, "/p", watcher_type::PERSISTENT));
    }
}
