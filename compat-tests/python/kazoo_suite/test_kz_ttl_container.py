"""Container and TTL nodes (kazoo 2.11 has no API for them: wire requests via
the zkx fixture on a KazooClient connection)."""
import time

import pytest
from kazoo.exceptions import BadArgumentsError, UnimplementedError

CHECK_MS = 200


@pytest.fixture
def ext_server(server_factory):
    return server_factory(props={
        "zookeeper.extendedTypesEnabled": "true",
        "znode.container.checkIntervalMs": str(CHECK_MS),
    })


@pytest.fixture
def ezk(ext_server, client_factory):
    return client_factory(server=ext_server)


def gone_within(client, path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.exists(path) is None:
            return True
        time.sleep(0.05)
    return False


def test_container_create_and_stat(zk, base, zkx):
    """Containers need no extended types (the session server has none)."""
    path, stat = zkx.create(zk, base + "/box", b"cfg", flags=zkx.CONTAINER)
    assert path == base + "/box"
    z = zk.last_zxid
    assert stat.czxid == stat.mzxid == stat.pzxid == z
    assert stat.ephemeralOwner == 0  # the container marker is not shown to clients
    assert stat.dataLength == 3
    assert zk.exists(base + "/box") == stat
    assert zk.get(base + "/box")[0] == b"cfg"
    zk.create(base + "/box/item")
    assert zk.get_children(base + "/box") == ["item"]


def test_ttl_needs_extended_types(zk, base, zkx):
    with pytest.raises(UnimplementedError):
        zkx.create(zk, base + "/t", flags=zkx.PERSISTENT_WITH_TTL, ttl=10000)
    with pytest.raises(UnimplementedError):
        zkx.create(zk, base + "/t", flags=zkx.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=10000)
    assert zk.get_children(base) == []


def test_container_deleted_after_last_child_goes(ezk, zkx):
    zkx.create(ezk, "/box", flags=zkx.CONTAINER)
    zkx.create(ezk, "/never-used", flags=zkx.CONTAINER)
    ezk.create("/box/a")
    ezk.create("/box/b")
    ezk.delete("/box/a")
    time.sleep(3 * CHECK_MS / 1000.0)
    assert ezk.exists("/box") is not None  # still has a child
    ezk.delete("/box/b")
    assert gone_within(ezk, "/box", 5.0)
    # a container that never had a child stays
    assert ezk.exists("/never-used") is not None


def test_container_with_ephemeral_child(ezk, client_factory, ext_server, zkx):
    zkx.create(ezk, "/box", flags=zkx.CONTAINER)
    owner = client_factory(server=ext_server)
    owner.create("/box/lock-", ephemeral=True, sequence=True)
    owner.stop()
    assert gone_within(ezk, "/box", 5.0)


def test_container_nested(ezk, zkx):
    zkx.create(ezk, "/outer", flags=zkx.CONTAINER)
    zkx.create(ezk, "/outer/inner", flags=zkx.CONTAINER)
    ezk.create("/outer/inner/leaf")
    ezk.delete("/outer/inner/leaf")
    # inner goes first, which empties outer, which then goes too
    assert gone_within(ezk, "/outer/inner", 5.0)
    assert gone_within(ezk, "/outer", 5.0)


def test_ttl_node_expires(ezk, zkx):
    path, stat = zkx.create(ezk, "/ttl", b"x", flags=zkx.PERSISTENT_WITH_TTL, ttl=500)
    assert path == "/ttl"
    assert stat.ephemeralOwner == 0  # the TTL is not shown to clients
    assert ezk.exists("/ttl") == stat
    assert gone_within(ezk, "/ttl", 5.0)


def test_ttl_node_with_children_is_kept(ezk, zkx):
    zkx.create(ezk, "/ttlp", flags=zkx.PERSISTENT_WITH_TTL, ttl=300)
    ezk.create("/ttlp/kid")
    time.sleep(1.0)
    assert ezk.exists("/ttlp") is not None
    ezk.delete("/ttlp/kid")
    assert gone_within(ezk, "/ttlp", 5.0)


def test_ttl_counts_from_last_modification(ezk, zkx):
    zkx.create(ezk, "/ttlm", flags=zkx.PERSISTENT_WITH_TTL, ttl=1500)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        ezk.set("/ttlm", b"touch")
        time.sleep(0.3)
    assert ezk.exists("/ttlm") is not None
    assert gone_within(ezk, "/ttlm", 6.0)


def test_ttl_sequential(ezk, zkx):
    ezk.create("/q")
    ezk.create("/q/plain")
    path, stat = zkx.create(ezk, "/q/t-", flags=zkx.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=60000)
    assert path == "/q/t-0000000001"
    assert ezk.exists(path) == stat


def test_ttl_bounds(ezk, zkx):
    for bad in (0, -1, 2 ** 40):
        with pytest.raises(BadArgumentsError):
            zkx.create(ezk, "/bad%d" % abs(bad), flags=zkx.PERSISTENT_WITH_TTL, ttl=bad)
    path, _ = zkx.create(ezk, "/maxttl", flags=zkx.PERSISTENT_WITH_TTL, ttl=2 ** 40 - 1)
    assert path == "/maxttl"


def test_create_ttl_opcode_needs_ttl_mode(ezk, zkx):
    from kazoo.security import OPEN_ACL_UNSAFE
    for flags in (zkx.PERSISTENT, zkx.EPHEMERAL, zkx.PERSISTENT_SEQUENTIAL, zkx.CONTAINER):
        req = zkx.ExtCreate("/wrong", b"", OPEN_ACL_UNSAFE, flags, 1000)
        # force opcode 21 (createTTL) whatever the flags
        req = type("ForcedTTL", (zkx.ExtCreate,), {"type": 21})(*req)
        with pytest.raises(BadArgumentsError):
            zkx.call(ezk, req)
    assert ezk.exists("/wrong") is None


def test_ttl_and_container_in_multi(ezk, zkx):
    from kazoo.security import OPEN_ACL_UNSAFE
    res = zkx.multi(ezk, [
        zkx.ExtCreate("/mbox", b"", OPEN_ACL_UNSAFE, zkx.CONTAINER, None),
        zkx.ExtCreate("/mttl", b"", OPEN_ACL_UNSAFE, zkx.PERSISTENT_WITH_TTL, 60000),
    ])
    assert [r[0] for r in res] == ["/mbox", "/mttl"]
    assert res[0][1] == ezk.exists("/mbox")
    assert res[1][1] == ezk.exists("/mttl")
    assert res[0][1].czxid == res[1][1].czxid
