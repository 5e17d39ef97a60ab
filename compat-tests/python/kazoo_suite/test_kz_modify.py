"""delete / set / setACL with and without expected versions."""
import pytest
from kazoo.exceptions import BadVersionError, NoNodeError, NotEmptyError
from kazoo.security import OPEN_ACL_UNSAFE


def test_delete_any_version(zk, base):
    zk.create(base + "/a", b"x")
    zk.set(base + "/a", b"y")
    zk.delete(base + "/a")
    assert zk.exists(base + "/a") is None


def test_delete_with_matching_version(zk, base):
    zk.create(base + "/a")
    zk.set(base + "/a", b"1")
    zk.set(base + "/a", b"2")
    zk.delete(base + "/a", version=2)
    assert zk.exists(base + "/a") is None


def test_delete_with_wrong_version(zk, base):
    zk.create(base + "/a")
    with pytest.raises(BadVersionError):
        zk.delete(base + "/a", version=1)
    zk.set(base + "/a", b"1")
    with pytest.raises(BadVersionError):
        zk.delete(base + "/a", version=0)
    assert zk.exists(base + "/a").version == 1


def test_delete_missing_is_nonode(zk, base):
    with pytest.raises(NoNodeError):
        zk.delete(base + "/missing")
    with pytest.raises(NoNodeError):
        zk.delete(base + "/missing/deeper", version=3)


def test_delete_non_empty(zk, base):
    zk.create(base + "/p/c", makepath=True)
    with pytest.raises(NotEmptyError):
        zk.delete(base + "/p")
    # version is checked before emptiness
    with pytest.raises(BadVersionError):
        zk.delete(base + "/p", version=7)
    zk.delete(base + "/p", recursive=True)
    assert zk.exists(base + "/p") is None


def test_set_with_versions(zk, base):
    zk.create(base + "/a", b"0")
    st = zk.set(base + "/a", b"1", version=0)
    assert st.version == 1
    with pytest.raises(BadVersionError):
        zk.set(base + "/a", b"stale", version=0)
    assert zk.get(base + "/a")[0] == b"1"
    st = zk.set(base + "/a", b"2", version=-1)
    assert st.version == 2
    assert zk.get(base + "/a") == (b"2", st)


def test_set_same_data_still_bumps_version(zk, base):
    zk.create(base + "/a", b"same")
    st1 = zk.set(base + "/a", b"same")
    st2 = zk.set(base + "/a", b"same")
    assert (st1.version, st2.version) == (1, 2)
    assert st2.mzxid > st1.mzxid


def test_set_missing_is_nonode(zk, base):
    with pytest.raises(NoNodeError):
        zk.set(base + "/missing", b"x")
    with pytest.raises(NoNodeError):
        zk.get(base + "/missing")


def test_set_acls_with_version(zk, base):
    zk.create(base + "/a")
    with pytest.raises(BadVersionError):
        zk.set_acls(base + "/a", OPEN_ACL_UNSAFE, version=1)
    st = zk.set_acls(base + "/a", OPEN_ACL_UNSAFE, version=0)
    assert st.aversion == 1
    st = zk.set_acls(base + "/a", OPEN_ACL_UNSAFE, version=1)
    assert st.aversion == 2
    with pytest.raises(NoNodeError):
        zk.set_acls(base + "/missing", OPEN_ACL_UNSAFE)
    with pytest.raises(NoNodeError):
        zk.get_acls(base + "/missing")


def test_version_checks_after_recreate(zk, base):
    zk.create(base + "/a", b"x")
    zk.set(base + "/a", b"y")
    zk.delete(base + "/a")
    zk.create(base + "/a", b"z")
    st = zk.exists(base + "/a")
    assert st.version == 0
    with pytest.raises(BadVersionError):
        zk.set(base + "/a", b"w", version=1)
