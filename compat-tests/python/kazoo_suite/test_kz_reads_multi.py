"""get_children / exists / sync / multi transactions / the /zookeeper subtree."""
import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.security import OPEN_ACL_UNSAFE


def kinds(results):
    return [type(r) if isinstance(r, Exception) else r for r in results]


def test_get_children(zk, base):
    assert zk.get_children(base) == []
    for n in ("b", "a", "c"):
        zk.create(base + "/" + n)
    zk.create(base + "/a/deep")
    assert sorted(zk.get_children(base)) == ["a", "b", "c"]
    assert zk.get_children(base + "/a") == ["deep"]
    with pytest.raises(NoNodeError):
        zk.get_children(base + "/missing")


def test_get_children_include_data(zk, base):
    zk.create(base + "/x", b"1")
    zk.create(base + "/y", b"2")
    children, stat = zk.get_children(base, include_data=True)
    assert sorted(children) == ["x", "y"]
    assert stat == zk.exists(base)
    assert stat.numChildren == 2


def test_exists(zk, base):
    assert zk.exists(base + "/nope") is None
    assert zk.exists(base + "/nope/deeper") is None
    zk.create(base + "/yes", b"abc")
    st = zk.exists(base + "/yes")
    assert st.dataLength == 3
    assert zk.exists("/") is not None


def test_sync_returns_path(zk, base):
    assert zk.sync(base) == base
    # sync does not check that the node exists
    assert zk.sync(base + "/does-not-exist") == base + "/does-not-exist"


def test_multi_success(zk, base):
    zk.create(base + "/old", b"o")
    zk.create(base + "/gone")
    tx = zk.transaction()
    tx.create(base + "/new", b"n")
    tx.set_data(base + "/old", b"changed", version=0)
    tx.delete(base + "/gone", version=0)
    tx.check(base + "/new", 0)
    tx.create(base + "/seq-", sequence=True)
    results = tx.commit()
    assert results[0] == base + "/new"
    assert results[1] == zk.exists(base + "/old") and results[1].version == 1
    assert results[2] is True
    assert results[3] is True
    assert results[4] == base + "/seq-0000000003"
    assert zk.get(base + "/old")[0] == b"changed"
    assert zk.exists(base + "/gone") is None
    assert sorted(zk.get_children(base)) == ["new", "old", "seq-0000000003"]


def test_multi_ops_see_earlier_ops(zk, base):
    tx = zk.transaction()
    tx.create(base + "/p", b"")
    tx.create(base + "/p/c", b"")
    tx.set_data(base + "/p/c", b"v", version=0)
    tx.check(base + "/p/c", 1)
    tx.delete(base + "/p/c", version=1)
    results = tx.commit()
    assert kinds(results) == [base + "/p", base + "/p/c", results[2], True, True]
    assert results[2].version == 1
    assert zk.exists(base + "/p/c") is None
    assert zk.exists(base + "/p").cversion == 2


def test_multi_failure_in_the_middle(zk, base):
    zk.create(base + "/v", b"x")
    tx = zk.transaction()
    tx.create(base + "/a")
    tx.set_data(base + "/v", b"y", version=5)  # fails
    tx.create(base + "/b")
    tx.delete(base + "/v")
    results = tx.commit()
    assert kinds(results) == [RolledBackError, BadVersionError, RuntimeInconsistency, RuntimeInconsistency]
    assert zk.exists(base + "/a") is None
    assert zk.exists(base + "/b") is None
    assert zk.get(base + "/v")[0] == b"x"
    assert zk.exists(base + "/v").version == 0
    assert zk.exists(base).cversion == 1


def test_multi_failure_first_and_last(zk, base):
    zk.create(base + "/exists")
    tx = zk.transaction()
    tx.create(base + "/exists")
    tx.create(base + "/a")
    results = tx.commit()
    assert kinds(results) == [NodeExistsError, RuntimeInconsistency]

    tx = zk.transaction()
    tx.create(base + "/a")
    tx.create(base + "/a/b")
    tx.delete(base + "/missing")
    results = tx.commit()
    assert kinds(results) == [RolledBackError, RolledBackError, NoNodeError]
    assert zk.exists(base + "/a") is None


def test_multi_not_empty_and_sequence_not_consumed(zk, base):
    zk.create(base + "/p/c", makepath=True)
    tx = zk.transaction()
    tx.create(base + "/s-", sequence=True)
    tx.delete(base + "/p")
    results = tx.commit()
    assert kinds(results) == [RolledBackError, NotEmptyError]
    # the rolled back sequential create did not consume a number
    assert zk.create(base + "/s-", sequence=True) == base + "/s-0000000001"


def test_multi_check_only(zk, base):
    zk.create(base + "/c", b"")
    zk.set(base + "/c", b"1")
    tx = zk.transaction()
    tx.check(base + "/c", 1)
    assert tx.commit() == [True]
    tx = zk.transaction()
    tx.check(base + "/c", 0)
    assert kinds(tx.commit()) == [BadVersionError]
    tx = zk.transaction()
    tx.check(base + "/missing", -1)
    assert kinds(tx.commit()) == [NoNodeError]
    tx = zk.transaction()
    tx.check(base + "/c", -1)
    tx.check(base, 0)
    assert tx.commit() == [True, True]


def test_multi_check_guards_writes(zk, base):
    zk.create(base + "/lock", b"")
    zk.create(base + "/data", b"0")
    tx = zk.transaction()
    tx.check(base + "/lock", 3)
    tx.set_data(base + "/data", b"1")
    assert kinds(tx.commit()) == [BadVersionError, RuntimeInconsistency]
    assert zk.get(base + "/data")[0] == b"0"
    tx = zk.transaction()
    tx.check(base + "/lock", 0)
    tx.set_data(base + "/data", b"1")
    res = tx.commit()
    assert res[0] is True and res[1].version == 1


def test_empty_multi(zk):
    assert zk.transaction().commit() == []


def test_multi_create_container_and_plain_results(zk, base, zkx):
    """Wire-level multi: plain create returns the path; a container create
    (opcode 19) returns path and Stat even on 3.8."""
    res = zkx.multi(zk, [
        zkx.PlainCreate(base + "/p", b"", OPEN_ACL_UNSAFE, 0),
        zkx.ExtCreate(base + "/box", b"", OPEN_ACL_UNSAFE, zkx.CONTAINER, None),
        zkx.MultiCheck(base + "/p", 0),
    ])
    assert res[0] == base + "/p"
    path, stat = res[1]
    assert path == base + "/box"
    assert stat == zk.exists(base + "/box")
    assert res[2] is True


@pytest.mark.zk39("create2 inside a multi returns only the path on 3.8 (no Stat)")
def test_multi_create2_returns_stat(zk, base, zkx):
    res = zkx.multi(zk, [
        zkx.ExtCreate(base + "/a", b"abc", OPEN_ACL_UNSAFE, 0, None),
        zkx.ExtCreate(base + "/s-", b"", OPEN_ACL_UNSAFE, zkx.PERSISTENT_SEQUENTIAL, None),
    ])
    assert isinstance(res[0], tuple), res
    assert res[0] == (base + "/a", zk.exists(base + "/a"))
    assert res[0][1].dataLength == 3
    assert res[1] == (base + "/s-0000000001", zk.exists(base + "/s-0000000001"))


def test_zookeeper_system_nodes(zk):
    assert zk.exists("/zookeeper") is not None
    assert zk.exists("/zookeeper/quota") is not None
    assert zk.exists("/zookeeper/config") is not None
    assert sorted(zk.get_children("/zookeeper")) == ["config", "quota"]
    assert "zookeeper" in zk.get_children("/")


def test_cannot_delete_system_nodes(zk):
    for p in ("/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
        with pytest.raises(BadArgumentsError):
            zk.delete(p)
    with pytest.raises(NoAuthError):
        zk.set("/zookeeper/config", b"x")
    assert zk.exists("/zookeeper/config") is not None


def test_get_ephemerals(zk, base, zkx, client_factory):
    zk.create(base + "/e1", ephemeral=True)
    zk.create(base + "/d/e2", ephemeral=True, makepath=True)
    zk.create(base + "/p")
    other = client_factory()
    other.create(base + "/theirs", ephemeral=True)
    assert sorted(zkx.get_ephemerals(zk, base)) == [base + "/d/e2", base + "/e1"]
    assert zkx.get_ephemerals(zk, base + "/d") == [base + "/d/e2"]
    assert zkx.get_ephemerals(other, base) == [base + "/theirs"]
