"""Node creation in every mode a Kazoo user reaches for.

Expectations were checked against Apache ZooKeeper 3.8 (ZK_TARGET=zookeeper).
"""
import time

import pytest
from kazoo.exceptions import (
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
)

SEQ_WIDTH = 10


def seq(n):
    return "%010d" % n


def test_create_persistent_returns_path_and_data(zk, base):
    path = zk.create(base + "/a", b"value")
    assert path == base + "/a"
    data, stat = zk.get(base + "/a")
    assert data == b"value"
    assert stat.ephemeralOwner == 0
    assert stat.dataLength == 5


def test_create_include_data_returns_create2_stat(zk, base):
    before_ms = int(time.time() * 1000)
    path, stat = zk.create(base + "/a", b"abc", include_data=True)
    create_zxid = zk.last_zxid
    assert path == base + "/a"
    assert stat.czxid == stat.mzxid == stat.pzxid == create_zxid
    assert stat.ctime == stat.mtime
    assert abs(stat.ctime - before_ms) < 30000
    assert (stat.version, stat.cversion, stat.aversion) == (0, 0, 0)
    assert stat.ephemeralOwner == 0
    assert stat.dataLength == 3
    assert stat.numChildren == 0
    assert zk.exists(base + "/a") == stat


def test_create_ephemeral_owned_by_session(zk, base):
    zk.create(base + "/e", b"x", ephemeral=True)
    stat = zk.exists(base + "/e")
    assert stat.ephemeralOwner == zk.client_id[0]
    assert stat.ephemeralOwner != 0


def test_create_sequential_numbering(zk, base):
    assert zk.create(base + "/s-", sequence=True) == base + "/s-" + seq(0)
    assert zk.create(base + "/s-", sequence=True) == base + "/s-" + seq(1)
    # the counter belongs to the parent, not to the name prefix
    assert zk.create(base + "/other-", sequence=True) == base + "/other-" + seq(2)
    assert sorted(zk.get_children(base)) == ["other-" + seq(2), "s-" + seq(0), "s-" + seq(1)]


def test_create_ephemeral_sequential(zk, base):
    p = zk.create(base + "/lock-", b"", ephemeral=True, sequence=True)
    assert p == base + "/lock-" + seq(0)
    assert zk.exists(p).ephemeralOwner == zk.client_id[0]


def test_sequential_with_trailing_slash_name(zk, base):
    # kazoo sends "<base>/" and the server appends only the counter
    assert zk.create(base + "/", sequence=True) == base + "/" + seq(0)
    assert zk.create(base + "/", sequence=True) == base + "/" + seq(1)


def test_sequence_counter_after_deletes_and_mixed_children(zk, base):
    """The suffix is the number of children ever created under the parent
    (deletes do not advance it, plain creates do)."""
    zk.create(base + "/x")
    zk.delete(base + "/x")
    assert zk.create(base + "/s", sequence=True) == base + "/s" + seq(1)
    assert zk.create(base + "/s", sequence=True) == base + "/s" + seq(2)
    zk.create(base + "/plain")
    assert zk.create(base + "/s", sequence=True) == base + "/s" + seq(4)
    zk.delete(base + "/s" + seq(4))
    zk.delete(base + "/s" + seq(2))
    assert zk.create(base + "/s", sequence=True) == base + "/s" + seq(5)


def test_sequence_counter_is_per_parent(zk, base):
    zk.create(base + "/p1")
    zk.create(base + "/p2")
    zk.create(base + "/p1/a")
    zk.create(base + "/p1/b")
    assert zk.create(base + "/p1/n", sequence=True) == base + "/p1/n" + seq(2)
    assert zk.create(base + "/p2/n", sequence=True) == base + "/p2/n" + seq(0)


def test_create2_sequential_reports_real_path(zk, base):
    zk.create(base + "/a")
    path, stat = zk.create(base + "/q-", b"12", sequence=True, include_data=True)
    assert path == base + "/q-" + seq(1)
    assert zk.exists(path) == stat
    assert stat.dataLength == 2


def test_makepath_creates_missing_parents(zk, base):
    p = zk.create(base + "/a/b/c", b"leaf", makepath=True)
    assert p == base + "/a/b/c"
    assert zk.get(base + "/a/b/c")[0] == b"leaf"
    assert zk.exists(base + "/a").numChildren == 1
    assert zk.exists(base + "/a/b").numChildren == 1
    zk.ensure_path(base + "/x/y")
    assert zk.exists(base + "/x/y") is not None


def test_missing_parent_is_nonode(zk, base):
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/child")
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/child", sequence=True)
    assert zk.exists(base + "/missing") is None


def test_node_exists(zk, base):
    zk.create(base + "/a", b"1")
    with pytest.raises(NodeExistsError):
        zk.create(base + "/a", b"2")
    with pytest.raises(NodeExistsError):
        zk.create(base + "/a", b"3", ephemeral=True)
    assert zk.get(base + "/a")[0] == b"1"
    with pytest.raises(NodeExistsError):
        zk.create("/")


def test_no_children_for_ephemerals(zk, base):
    zk.create(base + "/e", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/e/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/e/child", ephemeral=True, sequence=True)
    es = zk.create(base + "/es", ephemeral=True, sequence=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(es + "/child")
    assert zk.exists(base + "/e").numChildren == 0


def test_null_and_empty_data_are_distinct(zk, base):
    zk.create(base + "/null", None)
    zk.create(base + "/empty", b"")
    data_null, st_null = zk.get(base + "/null")
    data_empty, st_empty = zk.get(base + "/empty")
    assert data_null is None
    assert data_empty == b""
    assert st_null.dataLength == 0 and st_empty.dataLength == 0
    zk.set(base + "/empty", None)
    assert zk.get(base + "/empty")[0] is None
    zk.set(base + "/null", b"")
    assert zk.get(base + "/null")[0] == b""


def test_binary_data_round_trips(zk, base):
    blob = bytes(range(256)) * 40
    zk.create(base + "/bin", blob)
    data, stat = zk.get(base + "/bin")
    assert data == blob
    assert stat.dataLength == len(blob)


def test_unicode_node_names(zk, base):
    name = base + "/caf\u00e9-\u65e5\u672c"
    zk.create(name, "h\u00e9".encode())
    assert zk.get_children(base) == ["caf\u00e9-\u65e5\u672c"]
    data, stat = zk.get(name)
    assert data == "h\u00e9".encode()
    assert stat.dataLength == 3


def test_ephemeral_removed_when_session_closes(zk, base, client_factory):
    other = client_factory()
    other.create(base + "/eph", b"x", ephemeral=True)
    other.create(base + "/eseq-", ephemeral=True, sequence=True)
    other.create(base + "/persist", b"y")
    fired = []
    assert zk.exists(base + "/eph", watch=fired.append) is not None
    other.stop()
    # closeSession is a transaction: once stop() returned, the nodes are gone
    assert zk.exists(base + "/eph") is None
    assert sorted(zk.get_children(base)) == ["persist"]
    assert [(e.type, e.path) for e in fired] == [("DELETED", base + "/eph")]


def test_invalid_paths_rejected(zk_server, zkx, base):
    """Raw requests, because kazoo normalises some paths on its own."""
    raw = zkx.RawSession(zk_server.port)
    try:
        cases = [
            (base + "/", -8),        # trailing slash: BadArguments
            (base[1:], -8),          # relative path
            (base + "/.", -8),
            (base + "/..", -8),
            ("", -8),
            ("/", -110),             # root exists
            (base + "//x", -101),    # parent "<base>/" does not exist
        ]
        got = []
        for path, _ in cases:
            body = (zkx.j_string(path) + zkx.j_buffer(b"") + zkx.j_int(1) + zkx.j_int(31)
                    + zkx.j_string("world") + zkx.j_string("anyone") + zkx.j_int(0))
            _, err, _, _ = raw.call(zkx.OP_CREATE, body)
            got.append((path, err))
        assert got == cases
    finally:
        raw.close_session()
