"""Sessions: reattach with (id, password), wrong password, expiry, negotiated
timeouts, close.

A RawSession (conftest) owns a session on a bare socket; dropping that socket
leaves the session alive until it expires, which real clients rely on."""
import time

import pytest
from kazoo.client import KazooState
from kazoo.exceptions import NoNodeError

FAST_TICK = 200  # ms; sessions may then be as short as 400 ms


@pytest.fixture
def fast_server(server_factory):
    return server_factory(tick_time_ms=FAST_TICK)


def test_session_ids_and_passwords(zk, client_factory):
    other = client_factory()
    sid1, pw1 = zk.client_id
    sid2, pw2 = other.client_id
    assert sid1 != sid2 and sid1 != 0 and sid2 != 0
    assert len(pw1) == 16 and len(pw2) == 16
    assert pw1 != pw2


def test_reattach_session_with_client_id(zk_server, zk, base, client_factory, zkx):
    raw = zkx.RawSession(zk_server.port, timeout_ms=10000)
    raw.create(base + "/eph", b"mine", flags=zkx.EPHEMERAL)
    sid, passwd = raw.session_id, raw.passwd
    raw.drop()  # no closeSession: the session lives on
    assert zk.exists(base + "/eph").ephemeralOwner == sid

    again = client_factory(client_id=(sid, passwd))
    assert again.client_id[0] == sid
    assert again.rec.connects[0].session_id == sid
    assert again.rec.connects[0].time_out == 10000
    # the reattached client owns the ephemeral: it may create more and they go together
    again.create(base + "/eph2", ephemeral=True)
    assert zk.exists(base + "/eph2").ephemeralOwner == sid
    again.stop()
    assert zk.exists(base + "/eph") is None
    assert zk.exists(base + "/eph2") is None


def test_reattach_with_kazoo_session(zk, base, client_factory):
    first = client_factory()
    first.create(base + "/e", ephemeral=True)
    sid, pw = first.client_id
    second = client_factory(client_id=(sid, pw))
    assert second.client_id[0] == sid
    # both clients share one session: the node is still there
    assert second.exists(base + "/e").ephemeralOwner == sid
    second.stop()  # closes the shared session
    assert zk.exists(base + "/e") is None


def test_wrong_password_is_expired(zk_server, zk, base, client_factory, zkx):
    raw = zkx.RawSession(zk_server.port, timeout_ms=10000)
    raw.create(base + "/eph", flags=zkx.EPHEMERAL)
    sid = raw.session_id
    bad = bytes(b ^ 0xFF for b in raw.passwd)

    probe = zkx.RawSession(zk_server.port, timeout_ms=10000, session_id=sid, passwd=bad)
    try:
        assert (probe.timeout, probe.session_id) == (0, 0)
        with pytest.raises((EOFError, ConnectionResetError)):
            probe._recv()
    finally:
        probe.drop()

    c = client_factory(client_id=(sid, bad))
    # kazoo saw the expiry (timeout 0), then made a brand new session
    assert c.rec.connects[0].time_out == 0
    assert c.rec.connects[0].session_id == 0
    assert c.state == KazooState.CONNECTED
    assert c.client_id[0] not in (0, sid)
    # the original session was not harmed by the failed attempt
    assert zk.exists(base + "/eph").ephemeralOwner == sid
    raw2 = zkx.RawSession(zk_server.port, timeout_ms=10000, session_id=sid, passwd=raw.passwd)
    assert raw2.session_id == sid
    raw2.close_session()
    assert zk.exists(base + "/eph") is None


def test_session_expiry_removes_ephemerals(fast_server, client_factory, zkx):
    watcher = client_factory(server=fast_server)
    watcher.create("/keep")
    raw = zkx.RawSession(fast_server.port, timeout_ms=600)
    assert raw.timeout == 600
    raw.create("/keep/eph", b"", flags=zkx.EPHEMERAL)
    raw.create("/keep/eseq-", b"", flags=zkx.EPHEMERAL_SEQUENTIAL)
    sid, pw = raw.session_id, raw.passwd
    raw.drop()
    t0 = time.monotonic()
    assert watcher.exists("/keep/eph", watch=lambda e: None) is not None
    assert watcher.rec.wait_for(
        lambda items: any(i.kind == "event" and i.path == "/keep/eph" for i in items), timeout=10)
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0
    assert watcher.get_children("/keep") == []
    assert [(e.type, e.path) for e in watcher.rec.events()] == [(2, "/keep/eph")]
    # the expired session cannot be resumed
    late = zkx.RawSession(fast_server.port, timeout_ms=600, session_id=sid, passwd=pw)
    try:
        assert (late.timeout, late.session_id) == (0, 0)
    finally:
        late.drop()


def test_session_stays_alive_while_pinging(fast_server, client_factory):
    c = client_factory(server=fast_server, timeout=0.8)
    c.create("/e", ephemeral=True)
    observer = client_factory(server=fast_server)
    time.sleep(2.5)  # > 3 session timeouts; kazoo pings keep it alive
    assert c.connected
    assert observer.exists("/e").ephemeralOwner == c.client_id[0]


def test_negotiated_timeout_is_clamped(fast_server, client_factory, zkx):
    """min = 2 * tickTime, max = 20 * tickTime by default."""
    got = {}
    for asked in (1, 100, 399, 400, 1000, 3999, 4000, 4001, 60000):
        raw = zkx.RawSession(fast_server.port, timeout_ms=asked)
        got[asked] = raw.timeout
        raw.close_session()
    assert got == {1: 400, 100: 400, 399: 400, 400: 400, 1000: 1000, 3999: 3999,
                   4000: 4000, 4001: 4000, 60000: 4000}
    c = client_factory(server=fast_server, timeout=30.0)
    assert c.rec.connects[0].time_out == 4000


def test_min_max_session_timeout_config(server_factory, zkx):
    srv = server_factory(extra_cfg={"minSessionTimeout": "1000", "maxSessionTimeout": "3000"})
    got = {}
    for asked in (100, 999, 2000, 3001, 60000):
        raw = zkx.RawSession(srv.port, timeout_ms=asked)
        got[asked] = raw.timeout
        raw.close_session()
    assert got == {100: 1000, 999: 1000, 2000: 2000, 3001: 3000, 60000: 3000}


def test_close_session(zk, base, client_factory, zkx, zk_server):
    c = client_factory()
    c.create(base + "/e1", ephemeral=True)
    c.create(base + "/e2-", ephemeral=True, sequence=True)
    sid, pw = c.client_id
    c.stop()
    assert zk.get_children(base) == []
    # a closed session is gone for good
    late = zkx.RawSession(zk_server.port, timeout_ms=10000, session_id=sid, passwd=pw)
    try:
        assert (late.timeout, late.session_id) == (0, 0)
    finally:
        late.drop()


def test_raw_close_session_reply(zk_server, zk, base, zkx):
    raw = zkx.RawSession(zk_server.port)
    raw.create(base + "/e", flags=zkx.EPHEMERAL)
    zxid, err, _, _ = raw.call(-11)
    assert err == 0
    assert zxid > 0
    # the server closes the socket after answering closeSession
    with pytest.raises((EOFError, ConnectionResetError)):
        raw._recv()
    raw.drop()
    with pytest.raises(NoNodeError):
        zk.get(base + "/e")


def test_unknown_opcode_is_unimplemented(zk_server, zkx):
    """Only the reply is checked: ZooKeeper 3.8 and 3.9 then close the
    connection, Ferrokeeper deliberately keeps it open."""
    raw = zkx.RawSession(zk_server.port)
    try:
        _, err, _, _ = raw.call(77, b"")
        assert err == -6  # UNIMPLEMENTED
    finally:
        raw.drop()
    # the session itself is not closed by this: it can be resumed
    again = zkx.RawSession(zk_server.port, session_id=raw.session_id, passwd=raw.passwd)
    try:
        assert again.session_id == raw.session_id
    finally:
        again.close_session()
