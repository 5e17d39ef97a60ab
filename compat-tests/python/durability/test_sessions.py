"""Sessions across restarts.

Across a quick restart of the server (SIGTERM and SIGKILL):
- a kazoo client reconnects with the same session, its ephemeral is still
  there, and its DataWatch/ChildrenWatch recipes see later changes. (Kazoo
  2.11 does not send setWatches: on a disconnect it fires its one-shot
  watches with a NONE event and drops them, and its recipes re-read on
  reconnect. So the server side of watch re-arming is checked with a raw
  client below.)
- a raw-protocol client re-attaches to its session with its password and
  last seen zxid, sends setWatches (data, exist and child watches) with that
  zxid, gets at once the notification for a change made after it but before
  the re-attach, and the others on later changes;
- a session whose client is gone while the server is down is kept for its
  full timeout after the restart, then expires (its ephemeral is removed).
"""
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.retry import KazooRetry

import zkraw
from dhelpers import connect, wait_for

pytestmark = pytest.mark.timeout(120)

ABANDONED_TIMEOUT_MS = 4000      # minSessionTimeout with tickTime 2000
TICK_S = 2.0
NODE_CREATED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED = 1, 3, 4


def has_event(c, typ, path):
    return any(e.type == typ and e.path == path for e in c.events)


def wait_event(c, typ, path, timeout):
    """Reads from raw client c (pinging it) until the notification arrives."""
    deadline = time.monotonic() + timeout
    last_ping = time.monotonic()
    while not has_event(c, typ, path):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {zkraw.EVENT_TYPES.get(typ)} for {path} within {timeout}s; got {c.events}")
        if time.monotonic() - last_ping > 1.0:
            c.send("ping")
            last_ping = time.monotonic()
        try:
            c.read_one(timeout=0.2)
        except zkraw.Timeout:
            pass


class Seen:
    """Values a kazoo recipe reported, in order."""

    def __init__(self):
        self.values = []

    def data(self, data, stat, *args):
        self.values.append(data)

    def children(self, children):
        self.values.append(sorted(children))


@pytest.mark.parametrize("how", ["term", "kill"])
def test_session_survives_restart(make_server, report, how):
    srv = make_server()
    kz = KazooClient(hosts=srv.hosts, timeout=10.0,
                     connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=1.5, max_delay=0.5))
    states = []
    kz.add_listener(lambda s: states.append(s))
    kz.start(timeout=10)
    rw = gone = other = None
    try:
        sid, _ = kz.client_id
        kz.create("/s/eph", b"mine", ephemeral=True, makepath=True)
        kz.create("/s/data", b"v0")
        kz.create("/s/data2", b"v0")
        kz.create("/s/kids")
        seen_data, seen_kids, seen_later = Seen(), Seen(), Seen()
        kz.DataWatch("/s/data", seen_data.data)
        kz.ChildrenWatch("/s/kids", seen_kids.children)
        kz.DataWatch("/s/later", seen_later.data)

        # A raw client with one-shot watches.
        rw = connect(srv.port, timeout_ms=30000)
        last_seen = 0
        for r in (rw.call("getData", "/s/data", True), rw.call("getData", "/s/data2", True),
                  rw.call("getChildren", "/s/kids", True), rw.call("exists", "/s/later", True)):
            assert r.err in (0, -101), r
            last_seen = max(last_seen, r.zxid)
        rw_sid, rw_pw = rw.session_id, rw.passwd

        # A session abandoned while the server is down.
        gone = connect(srv.port, timeout_ms=ABANDONED_TIMEOUT_MS)
        r = gone.call("create", "/s/abandoned", b"x", None, zkraw.EPHEMERAL)
        assert r.err == 0, r
        gone_sid = gone.session_id

        if how == "term":
            srv.stop()
        else:
            srv.kill()
        gone.close()                       # no closeSession: the server is down
        rw.close()
        wait_for(lambda: KazooState.SUSPENDED in states, 10, what="kazoo to notice the restart")
        srv.start()
        restarted = time.monotonic()

        # A change after the raw client's last seen zxid, before it is back.
        w = connect(srv.port)
        assert w.call("setData", "/s/data2", b"v1-early", 0).err == 0
        w.close_session()

        # The raw client re-attaches and re-arms its watches.
        rw = connect(srv.port, timeout_ms=30000, session_id=rw_sid, passwd=rw_pw, last_zxid=last_seen)
        assert rw.session_id == rw_sid and rw.connect_result.timeout > 0, \
            f"re-attach after the restart refused: {rw.connect_result}"
        r = rw.call("setWatches", last_seen, data=["/s/data", "/s/data2"], exist=["/s/later"],
                    child=["/s/kids"])
        assert r.err == 0, r
        wait_event(rw, NODE_DATA_CHANGED, "/s/data2", 5)

        wait_for(lambda: kz.state == KazooState.CONNECTED and states[-1] == KazooState.CONNECTED,
                 15, what="kazoo to reconnect")
        reconnect_s = time.monotonic() - restarted
        assert KazooState.LOST not in states, f"kazoo session lost: {states}"
        assert kz.client_id[0] == sid, "kazoo got a new session"
        data, st = kz.get("/s/eph")
        assert data == b"mine" and st.ephemeralOwner == sid

        other = KazooClient(hosts=srv.hosts, timeout=10.0)
        other.start(timeout=10)
        # The abandoned session is still alive right after the restart.
        st = other.exists("/s/abandoned")
        assert st is not None and st.ephemeralOwner == gone_sid, \
            "the abandoned session's ephemeral vanished at the restart"

        other.set("/s/data", b"v1")
        other.create("/s/kids/c1", b"")
        other.create("/s/later", b"L")
        wait_event(rw, NODE_DATA_CHANGED, "/s/data", 5)
        wait_event(rw, NODE_CHILDREN_CHANGED, "/s/kids", 5)
        wait_event(rw, NODE_CREATED, "/s/later", 5)
        assert len(rw.events) == 4, f"notifications: {rw.events}"
        wait_for(lambda: seen_data.values[-1:] == [b"v1"], 5, what=f"kazoo DataWatch ({seen_data.values})")
        wait_for(lambda: seen_kids.values[-1:] == [["c1"]], 5, what=f"kazoo ChildrenWatch ({seen_kids.values})")
        wait_for(lambda: seen_later.values[-1:] == [b"L"], 5, what=f"kazoo DataWatch ({seen_later.values})")

        # Not expired early: the full timeout counts from the restart ...
        while time.monotonic() - restarted < ABANDONED_TIMEOUT_MS / 1000 * 0.6:
            time.sleep(0.1)
        assert other.exists("/s/abandoned") is not None, \
            f"abandoned session expired {time.monotonic() - restarted:.1f}s after the restart, " \
            f"before its {ABANDONED_TIMEOUT_MS} ms timeout"
        # ... but it does expire.
        limit = ABANDONED_TIMEOUT_MS / 1000 + 2 * TICK_S + 3
        while other.exists("/s/abandoned") is not None:
            assert time.monotonic() - restarted < limit, \
                f"the abandoned session did not expire within {limit}s of the restart"
            rw.ping()
            time.sleep(0.2)
        expired_s = time.monotonic() - restarted
        rw.ping()
        assert kz.exists("/s/eph") is not None

        # Both live sessions survive another (hard) restart.
        other.stop()
        rw.close()
        srv.restart("kill")
        rw = connect(srv.port, timeout_ms=30000, session_id=rw_sid, passwd=rw_pw)
        assert rw.session_id == rw_sid and rw.connect_result.timeout > 0, rw.connect_result
        wait_for(lambda: kz.state == KazooState.CONNECTED and states[-1] == KazooState.CONNECTED,
                 15, what="kazoo to reconnect after the second restart")
        assert kz.client_id[0] == sid
        assert kz.get("/s/eph")[1].ephemeralOwner == sid
        report(f"session ({how}): kazoo and a raw client kept their sessions across the restart (kazoo "
               f"reconnected within {reconnect_s:.2f}s), ephemeral kept, setWatches re-armed 4 watches (one fired at "
               f"once for a change made before the re-attach), kazoo recipes saw the changes; abandoned "
               f"{ABANDONED_TIMEOUT_MS} ms session expired {expired_s:.1f}s after the restart")
    finally:
        for c in (rw, gone):
            if c is not None:
                c.close()
        if other is not None:
            other.stop()
            other.close()
        kz.stop()
        kz.close()
