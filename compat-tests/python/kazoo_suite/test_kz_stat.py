"""Exact Stat values after each kind of operation.

Rules observed on Apache ZooKeeper 3.8 (unchanged in 3.9):
  * create: czxid = mzxid = pzxid = txn zxid, ctime = mtime, all versions 0
  * setData: version+1, mzxid and mtime move; czxid, pzxid, cversion unchanged
  * child create: parent cversion+1, parent pzxid = child's zxid; parent
    mzxid/mtime/version unchanged
  * child delete: parent cversion+1 as well, parent pzxid = delete's zxid
    (reported cversion = 2*creates - current children)
  * setACL: aversion+1, nothing else changes (mzxid stays)
  * all sub-operations of a multi share one zxid
"""
import time

from kazoo.security import ACL, ANYONE_ID_UNSAFE, OPEN_ACL_UNSAFE, Permissions


def fields(stat):
    return stat._asdict()


def test_stat_through_a_node_lifecycle(zk, base):
    p = base + "/node"
    _, st0 = zk.create(p, b"one", include_data=True)
    z_create = zk.last_zxid
    assert fields(st0) == dict(czxid=z_create, mzxid=z_create, ctime=st0.ctime, mtime=st0.ctime,
                               version=0, cversion=0, aversion=0, ephemeralOwner=0,
                               dataLength=3, numChildren=0, pzxid=z_create)

    # a child create touches only cversion / pzxid / numChildren of the parent
    zk.create(p + "/c1")
    z_child = zk.last_zxid
    st1 = zk.exists(p)
    assert fields(st1) == dict(fields(st0), cversion=1, numChildren=1, pzxid=z_child)

    time.sleep(0.01)
    st2 = zk.set(p, b"second")
    z_set = zk.last_zxid
    assert z_set > z_child
    assert st2.mtime >= st1.mtime
    assert fields(st2) == dict(fields(st1), mzxid=z_set, mtime=st2.mtime, version=1, dataLength=6)
    assert zk.exists(p) == st2

    st3 = zk.set(p, b"", version=1)
    z_set2 = zk.last_zxid
    assert fields(st3) == dict(fields(st2), mzxid=z_set2, mtime=st3.mtime, version=2, dataLength=0)

    # deleting a child bumps cversion again and moves pzxid
    zk.delete(p + "/c1")
    z_del = zk.last_zxid
    st4 = zk.exists(p)
    assert fields(st4) == dict(fields(st3), cversion=2, numChildren=0, pzxid=z_del)

    # setACL: only aversion changes
    st5 = zk.set_acls(p, [ACL(Permissions.READ | Permissions.ADMIN, ANYONE_ID_UNSAFE)])
    assert fields(st5) == dict(fields(st4), aversion=1)
    assert zk.exists(p) == st5
    zk.set_acls(p, OPEN_ACL_UNSAFE)
    assert zk.exists(p).aversion == 2
    assert zk.exists(p).mzxid == z_set2


def test_reported_cversion_counts_creates_and_deletes(zk, base):
    for name in ("a", "b", "c"):
        zk.create(base + "/" + name)
    zk.delete(base + "/a")
    zk.delete(base + "/b")
    st = zk.exists(base)
    assert st.numChildren == 1
    assert st.cversion == 5
    # the sequence counter only counts the three creates
    assert zk.create(base + "/s", sequence=True) == base + "/s0000000003"
    assert zk.exists(base).cversion == 6


def test_ephemeral_stat(zk, base):
    _, st = zk.create(base + "/e", b"xy", ephemeral=True, include_data=True)
    assert st.ephemeralOwner == zk.client_id[0]
    assert st.dataLength == 2
    assert st.numChildren == 0
    assert zk.exists(base + "/e").ephemeralOwner == zk.client_id[0]


def test_datalength_counts_bytes(zk, base):
    data = "\u00e9\u00e8\u20ac".encode("utf-8")
    zk.create(base + "/u", data)
    assert zk.exists(base + "/u").dataLength == len(data) == 7


def test_zxids_increase_and_reads_do_not_write(zk, base):
    zk.create(base + "/a")
    z1 = zk.last_zxid
    zk.get(base + "/a")
    zk.get_children(base)
    zk.exists(base + "/nothing")
    st = zk.exists(base + "/a")
    assert st.czxid == z1 and st.mzxid == z1
    zk.create(base + "/b")
    z2 = zk.last_zxid
    assert z2 > z1
    assert zk.exists(base + "/b").czxid == z2


def test_multi_operations_share_one_zxid(zk, base):
    zk.create(base + "/pre", b"0")
    tx = zk.transaction()
    tx.create(base + "/a", b"1")
    tx.create(base + "/b", b"2")
    tx.set_data(base + "/pre", b"3")
    results = tx.commit()
    z = zk.last_zxid
    assert results[:2] == [base + "/a", base + "/b"]
    a, b, pre = zk.exists(base + "/a"), zk.exists(base + "/b"), zk.exists(base + "/pre")
    assert a.czxid == b.czxid == pre.mzxid == z
    assert results[2] == pre
    assert zk.exists(base).pzxid == z
    assert zk.exists(base).cversion == 3


def test_get_and_exists_return_same_stat(zk, base):
    zk.create(base + "/n", b"data")
    zk.create(base + "/n/c")
    data, st = zk.get(base + "/n")
    assert st == zk.exists(base + "/n")
    children, st2 = zk.get_children(base + "/n", include_data=True)
    assert children == ["c"] and st2 == st


def test_system_node_stats(zk):
    """/zookeeper and its children are built in, not created by a txn."""
    st = zk.exists("/zookeeper")
    assert (st.czxid, st.mzxid, st.pzxid, st.ctime, st.mtime) == (0, 0, 0, 0, 0)
    assert st.numChildren == 2
    # reported cversion = 2*creates - children = 2*0 - 2
    assert st.cversion == -2
    acl, cst = zk.get_acls("/zookeeper/config")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(1, "world", "anyone")]
    assert cst.aversion == -1
    qacl, _ = zk.get_acls("/zookeeper/quota")
    assert [(a.perms, a.id.scheme, a.id.id) for a in qacl] == [(31, "world", "anyone")]
