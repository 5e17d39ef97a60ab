"""Watches: one-shot data/exists/child watches, wire ordering, persistent and
persistent-recursive watches, checkWatches/removeWatches.

`client.rec` (see conftest) records replies and notifications in socket order.
"No event" checks use a round trip on the watching connection as a barrier:
the server sends a notification before any later reply on that connection.
"""
import threading

import pytest
from kazoo.exceptions import NoNodeError, NoWatcherError

CREATED, DELETED, CHANGED, CHILD = 1, 2, 3, 4


class Calls:
    """A kazoo watcher callback that records what it saw."""

    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, event):
        with self.cond:
            self.events.append((event.type, event.path))
            self.cond.notify_all()

    def wait(self, n=1, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.events) >= n, timeout)
            return list(self.events)


def barrier(client):
    """A round trip on this client's connection."""
    client.exists("/")


def wire_events(client, path=None):
    return [(e.type, e.path) for e in client.rec.events(path)]


def test_data_watch_fires_once(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/n", b"0")
    cb = Calls()
    zk.get(base + "/n", watch=cb)
    other.set(base + "/n", b"1")
    assert cb.wait(1) == [("CHANGED", base + "/n")]
    other.set(base + "/n", b"2")
    other.delete(base + "/n")
    barrier(zk)
    assert cb.events == [("CHANGED", base + "/n")]
    assert wire_events(zk, base + "/n") == [(CHANGED, base + "/n")]


def test_exists_watch_on_missing_node_fires_on_create(zk, base, client_factory):
    other = client_factory()
    cb = Calls()
    assert zk.exists(base + "/later", watch=cb) is None
    other.create(base + "/later")
    assert cb.wait(1) == [("CREATED", base + "/later")]
    other.set(base + "/later", b"x")
    barrier(zk)
    assert cb.events == [("CREATED", base + "/later")]


def test_exists_watch_on_existing_node(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/n")
    cb = Calls()
    assert zk.exists(base + "/n", watch=cb) is not None
    other.delete(base + "/n")
    assert cb.wait(1) == [("DELETED", base + "/n")]


def test_data_watch_not_fired_by_children(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/n")
    cb = Calls()
    zk.get(base + "/n", watch=cb)
    other.create(base + "/n/kid")
    other.delete(base + "/n/kid")
    barrier(zk)
    assert cb.events == []
    other.set(base + "/n", b"now")
    assert cb.wait(1) == [("CHANGED", base + "/n")]


def test_child_watch(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/p")
    cb = Calls()
    assert zk.get_children(base + "/p", watch=cb) == []
    other.set(base + "/p", b"data change is not a child change")
    other.create(base + "/p/kid")
    assert cb.wait(1) == [("CHILD", base + "/p")]
    other.create(base + "/p/kid2")
    other.set(base + "/p/kid", b"grandchild data")
    barrier(zk)
    assert cb.events == [("CHILD", base + "/p")]

    cb2 = Calls()
    zk.get_children(base + "/p", watch=cb2)
    other.delete(base + "/p/kid")
    assert cb2.wait(1) == [("CHILD", base + "/p")]


def test_child_watch_not_fired_by_grandchildren(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/p/kid", makepath=True)
    cb = Calls()
    zk.get_children(base + "/p", watch=cb)
    other.create(base + "/p/kid/grand")
    barrier(zk)
    assert cb.events == []


def test_get_on_missing_node_leaves_no_watch(zk, base, client_factory):
    other = client_factory()
    cb = Calls()
    with pytest.raises(NoNodeError):
        zk.get(base + "/nope", watch=cb)
    with pytest.raises(NoNodeError):
        zk.get_children(base + "/nope", watch=cb)
    other.create(base + "/nope")
    other.create(base + "/nope/kid")
    barrier(zk)
    assert cb.events == []
    assert wire_events(zk) == []


def test_delete_sends_one_notification_for_data_and_child_watch(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/n")
    data_cb, child_cb, exists_cb = Calls(), Calls(), Calls()
    zk.get(base + "/n", watch=data_cb)
    zk.get_children(base + "/n", watch=child_cb)
    zk.exists(base + "/n", watch=exists_cb)
    other.delete(base + "/n")
    assert data_cb.wait(1) == [("DELETED", base + "/n")]
    assert child_cb.wait(1) == [("DELETED", base + "/n")]
    assert exists_cb.wait(1) == [("DELETED", base + "/n")]
    barrier(zk)
    assert wire_events(zk, base + "/n") == [(DELETED, base + "/n")]


def test_parent_child_watch_and_node_data_watch_on_create(zk, base, client_factory):
    other = client_factory()
    parent_cb, node_cb = Calls(), Calls()
    zk.get_children(base, watch=parent_cb)
    zk.exists(base + "/n", watch=node_cb)
    other.create(base + "/n")
    assert node_cb.wait(1) == [("CREATED", base + "/n")]
    assert parent_cb.wait(1) == [("CHILD", base)]
    barrier(zk)
    assert sorted(wire_events(zk)) == sorted([(CREATED, base + "/n"), (CHILD, base)])


def test_event_arrives_before_reply_of_own_write(zk, base):
    zk.create(base + "/n")
    zk.get(base + "/n", watch=lambda e: None)
    zk.rec.clear()
    zk.set(base + "/n", b"mine")
    items = zk.rec.items
    kinds = [(i.kind, i.type, i.path) for i in items]
    assert kinds == [("event", CHANGED, base + "/n"), ("reply", 5, base + "/n")]


def test_event_arrives_before_reply_showing_other_clients_write(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/n", b"old")
    zk.create(base + "/p")
    zk.get(base + "/n", watch=lambda e: None)
    zk.get_children(base + "/p", watch=lambda e: None)
    zk.rec.clear()
    other.set(base + "/n", b"new")
    other.create(base + "/p/kid")
    data, _ = zk.get(base + "/n")
    assert data == b"new"
    kinds = [(i.kind, i.type, i.path) for i in zk.rec.items]
    # both notifications are on the wire before the getData reply
    assert kinds == [("event", CHANGED, base + "/n"), ("event", CHILD, base + "/p"),
                     ("reply", 4, base + "/n")]


def test_one_notification_per_connection_even_if_watched_twice(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/n")
    a, b = Calls(), Calls()
    zk.get(base + "/n", watch=a)
    zk.exists(base + "/n", watch=b)
    zk.get(base + "/n", watch=a)
    other.set(base + "/n", b"x")
    assert a.wait(1) == [("CHANGED", base + "/n")]
    assert b.wait(1) == [("CHANGED", base + "/n")]
    barrier(zk)
    assert wire_events(zk, base + "/n") == [(CHANGED, base + "/n")]


def test_watches_are_per_session(zk, base, client_factory):
    other = client_factory()
    third = client_factory()
    zk.create(base + "/n")
    mine, theirs = Calls(), Calls()
    zk.get(base + "/n", watch=mine)
    other.get(base + "/n", watch=theirs)
    third.set(base + "/n", b"x")
    assert mine.wait(1) == [("CHANGED", base + "/n")]
    assert theirs.wait(1) == [("CHANGED", base + "/n")]
    assert wire_events(third) == []


def test_multi_triggers_watches(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/a")
    cb_a, cb_b, cb_parent = Calls(), Calls(), Calls()
    zk.get(base + "/a", watch=cb_a)
    zk.exists(base + "/b", watch=cb_b)
    zk.get_children(base, watch=cb_parent)
    tx = other.transaction()
    tx.set_data(base + "/a", b"1")
    tx.create(base + "/b")
    tx.commit()
    assert cb_a.wait(1) == [("CHANGED", base + "/a")]
    assert cb_b.wait(1) == [("CREATED", base + "/b")]
    assert cb_parent.wait(1) == [("CHILD", base)]


def test_failed_multi_triggers_nothing(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/a")
    cb = Calls()
    zk.get(base + "/a", watch=cb)
    zk.get_children(base, watch=cb)
    tx = other.transaction()
    tx.set_data(base + "/a", b"1")
    tx.create(base + "/a")  # NodeExists
    tx.commit()
    barrier(zk)
    assert cb.events == []
    assert wire_events(zk) == []


@pytest.mark.zk39("3.8 sends zxid -1 in watch notifications")
def test_notification_carries_triggering_zxid(zk, base, client_factory):
    other = client_factory()
    zk.create(base + "/n")
    zk.get(base + "/n", watch=lambda e: None)
    zk.get_children(base, watch=lambda e: None)
    other.set(base + "/n", b"x")
    set_zxid = other.last_zxid
    other.create(base + "/m")
    create_zxid = other.last_zxid
    barrier(zk)
    got = [(e.type, e.path, e.zxid) for e in zk.rec.events()]
    assert got == [(CHANGED, base + "/n", set_zxid), (CHILD, base, create_zxid)]


# ---------------------------------------------------------------- persistent watches

def test_persistent_watch(zk, base, client_factory, zkx):
    other = client_factory()
    p = base + "/pw"
    assert zkx.add_watch(zk, p, zkx.ADD_WATCH_PERSISTENT) is True
    other.create(p)
    other.create(p + "/c")
    other.set(p, b"1")
    other.set(p, b"2")
    other.set(p + "/c", b"child data: not reported")
    other.create(p + "/c/grand")  # not a child of p
    other.delete(p + "/c/grand")
    other.delete(p + "/c")
    other.delete(p)
    other.create(p)
    barrier(zk)
    assert wire_events(zk) == [
        (CREATED, p), (CHILD, p), (CHANGED, p), (CHANGED, p), (CHILD, p), (DELETED, p), (CREATED, p)]


def test_persistent_recursive_watch(zk, base, client_factory, zkx):
    other = client_factory()
    r = base + "/rw"
    zkx.add_watch(zk, r, zkx.ADD_WATCH_PERSISTENT_RECURSIVE)
    other.create(r)
    other.create(r + "/a")
    other.create(r + "/a/b")
    other.set(r + "/a/b", b"x")
    other.set(r, b"y")
    other.delete(r + "/a/b")
    other.create(base + "/rwx")  # sibling with the same prefix: not under r
    other.set(base, b"parent: not under r")
    barrier(zk)
    assert wire_events(zk) == [
        (CREATED, r), (CREATED, r + "/a"), (CREATED, r + "/a/b"), (CHANGED, r + "/a/b"),
        (CHANGED, r), (DELETED, r + "/a/b")]


def test_persistent_watch_on_existing_node_and_root_recursive(zk, base, client_factory, zkx):
    other = client_factory()
    zk.create(base + "/n")
    zkx.add_watch(zk, base + "/n", zkx.ADD_WATCH_PERSISTENT)
    other.set(base + "/n", b"1")
    other.set(base + "/n", b"2")
    barrier(zk)
    assert wire_events(zk) == [(CHANGED, base + "/n"), (CHANGED, base + "/n")]

    watcher = client_factory()
    zkx.add_watch(watcher, "/", zkx.ADD_WATCH_PERSISTENT_RECURSIVE)
    other.create(base + "/deep/er/path", makepath=True)
    barrier(watcher)
    mine = [e for e in wire_events(watcher) if e[1].startswith(base)]
    assert mine == [(CREATED, base + "/deep"), (CREATED, base + "/deep/er"),
                    (CREATED, base + "/deep/er/path")]


def test_check_and_remove_watches(zk, base, client_factory, zkx):
    other = client_factory()
    zk.create(base + "/n")
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, base + "/n", zkx.WT_ANY)

    zk.get(base + "/n", watch=lambda e: None)
    assert zkx.check_watches(zk, base + "/n", zkx.WT_DATA) is True
    assert zkx.check_watches(zk, base + "/n", zkx.WT_ANY) is True
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, base + "/n", zkx.WT_CHILDREN)
    with pytest.raises(NoWatcherError):
        zkx.remove_watches(zk, base + "/n", zkx.WT_CHILDREN)
    assert zkx.remove_watches(zk, base + "/n", zkx.WT_DATA) is True
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, base + "/n", zkx.WT_DATA)
    other.set(base + "/n", b"x")
    barrier(zk)
    assert wire_events(zk) == []

    zk.get_children(base + "/n", watch=lambda e: None)
    assert zkx.check_watches(zk, base + "/n", zkx.WT_CHILDREN) is True
    assert zkx.remove_watches(zk, base + "/n", zkx.WT_ANY) is True
    with pytest.raises(NoWatcherError):
        zkx.remove_watches(zk, base + "/n", zkx.WT_ANY)
    other.create(base + "/n/kid")
    barrier(zk)
    assert wire_events(zk) == []

    with pytest.raises(NoWatcherError):
        zkx.remove_watches(zk, base + "/missing", zkx.WT_ANY)


@pytest.mark.zk39("3.8 checkWatches answers OK when any session watches the path")
def test_check_watches_ignores_other_sessions(zk, base, client_factory, zkx):
    other = client_factory()
    zk.create(base + "/n")
    other.get(base + "/n", watch=lambda e: None)
    other.get_children(base + "/n", watch=lambda e: None)
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, base + "/n", zkx.WT_ANY)
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, base + "/n", zkx.WT_DATA)
    with pytest.raises(NoWatcherError):
        zkx.remove_watches(zk, base + "/n", zkx.WT_ANY)
    assert zkx.check_watches(other, base + "/n", zkx.WT_ANY) is True


def test_fired_watch_is_gone(zk, base, client_factory, zkx):
    other = client_factory()
    zk.create(base + "/n")
    zk.get(base + "/n", watch=lambda e: None)
    other.set(base + "/n", b"x")
    barrier(zk)
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, base + "/n", zkx.WT_DATA)


def test_remove_persistent_watch_with_any(zk, base, client_factory, zkx):
    other = client_factory()
    zkx.add_watch(zk, base + "/p", zkx.ADD_WATCH_PERSISTENT)
    zkx.add_watch(zk, base + "/r", zkx.ADD_WATCH_PERSISTENT_RECURSIVE)
    assert zkx.check_watches(zk, base + "/p", zkx.WT_ANY) is True
    assert zkx.check_watches(zk, base + "/r", zkx.WT_ANY) is True
    assert zkx.remove_watches(zk, base + "/p", zkx.WT_ANY) is True
    assert zkx.remove_watches(zk, base + "/r", zkx.WT_ANY) is True
    other.create(base + "/p")
    other.create(base + "/r")
    other.create(base + "/r/x")
    barrier(zk)
    assert wire_events(zk) == []


@pytest.mark.zk39("3.8 keeps one watch mode per path and connection; a standard watch replaces the persistent one")
def test_standard_and_persistent_watch_share_a_path(zk, base, client_factory, zkx):
    other = client_factory()
    zk.create(base + "/n")
    zkx.add_watch(zk, base + "/n", zkx.ADD_WATCH_PERSISTENT)
    zk.get(base + "/n", watch=lambda e: None)
    other.set(base + "/n", b"1")
    other.set(base + "/n", b"2")
    barrier(zk)
    # one notification per change: the standard watch is consumed, the persistent one stays
    assert wire_events(zk) == [(CHANGED, base + "/n"), (CHANGED, base + "/n")]


@pytest.mark.zk39("3.8 has no Persistent/PersistentRecursive watcher types for check/removeWatches")
def test_remove_persistent_watches_one_by_one(zk, base, client_factory, zkx):
    other = client_factory()
    n = base + "/n"
    zk.create(n)
    zkx.add_watch(zk, n, zkx.ADD_WATCH_PERSISTENT)
    zkx.add_watch(zk, n, zkx.ADD_WATCH_PERSISTENT_RECURSIVE)
    assert zkx.check_watches(zk, n, zkx.WT_PERSISTENT) is True
    assert zkx.check_watches(zk, n, zkx.WT_PERSISTENT_RECURSIVE) is True
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, n, zkx.WT_DATA)

    assert zkx.remove_watches(zk, n, zkx.WT_PERSISTENT_RECURSIVE) is True
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, n, zkx.WT_PERSISTENT_RECURSIVE)
    other.create(n + "/kid")          # persistent: child event on n
    other.set(n + "/kid", b"x")       # recursive is gone: nothing
    other.set(n, b"y")                # persistent: data event
    barrier(zk)
    assert wire_events(zk) == [(CHILD, n), (CHANGED, n)]

    assert zkx.remove_watches(zk, n, zkx.WT_PERSISTENT) is True
    with pytest.raises(NoWatcherError):
        zkx.remove_watches(zk, n, zkx.WT_PERSISTENT)
    other.set(n, b"z")
    barrier(zk)
    assert wire_events(zk) == [(CHILD, n), (CHANGED, n)]


def test_notifications_filtered_by_read_acl(zk, base, client_factory, zkx):
    from kazoo.security import make_digest_acl
    other = client_factory(auth_data=[("digest", "owner:pw")])
    # no READ on the node: no notification (CVE-2024-23944 fix; Debian's 3.8.0 has it too)
    zkx.add_watch(zk, base, zkx.ADD_WATCH_PERSISTENT_RECURSIVE)
    other.create(base + "/secret", b"s", acl=[make_digest_acl("owner", "pw", all=True)])
    other.set(base + "/secret", b"t")
    other.create(base + "/open", b"o")
    barrier(zk)
    assert wire_events(zk) == [(CREATED, base + "/open")]
    other.delete(base + "/secret")


def test_standard_watch_filtered_by_read_acl(zk, base, client_factory, zkx):
    other = client_factory(auth_data=[("digest", "owner:pw")])
    from kazoo.security import make_digest_acl
    cb = Calls()
    zk.exists(base + "/secret", watch=cb)
    zk.get_children(base, watch=cb)
    other.create(base + "/secret", b"s", acl=[make_digest_acl("owner", "pw", all=True)])
    barrier(zk)
    # the child event is about the (readable) parent; the created event is filtered
    assert wire_events(zk) == [(CHILD, base)]
    # the filtered watch was still consumed
    with pytest.raises(NoWatcherError):
        zkx.check_watches(zk, base + "/secret", zkx.WT_DATA)
    other.delete(base + "/secret")
