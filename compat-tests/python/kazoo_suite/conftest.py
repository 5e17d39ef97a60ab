"""Fixtures and helpers for the Kazoo-based compatibility suite.

Target server: ZK_TARGET=ferrokeeper (default) or ZK_TARGET=zookeeper (the
Apache ZooKeeper 3.8 oracle).  One server is shared by the whole session; tests
that need special configuration start their own through `server_factory`.

Tests marked `@pytest.mark.zk39("why")` check ZooKeeper 3.9 behaviour that the
3.8 oracle does not have; against ZK_TARGET=zookeeper they are strict xfails
(so they still prove that 3.8 really differs).

Kazoo 2.11 has no API for containers, TTL nodes, addWatch, checkWatches or
removeWatches, so this file adds small wire-level request classes that go
through KazooClient's own connection (`client._call`), plus a recorder that
logs every reply and watch notification in the order they came off the socket.
Helpers are handed to tests through the `zkx` fixture (no extra modules).
"""
import os
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import namedtuple

import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
import zkharness  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import EXCEPTIONS  # noqa: E402
from kazoo.protocol.serialization import Connect, Watch  # noqa: E402
from kazoo.protocol.states import ZnodeStat  # noqa: E402
from kazoo.security import OPEN_ACL_UNSAFE  # noqa: E402

TARGET = os.environ.get("ZK_TARGET", "ferrokeeper")
if TARGET not in ("ferrokeeper", "zookeeper"):
    raise RuntimeError(f"ZK_TARGET must be 'ferrokeeper' or 'zookeeper', not {TARGET!r}")

DEFAULT_TEST_TIMEOUT = 30  # seconds, per test

# ---------------------------------------------------------------- opcodes
OP_CREATE = 1
OP_DELETE = 2
OP_SET_DATA = 5
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_CHECK_WATCHES = 17
OP_REMOVE_WATCHES = 18
OP_CREATE_CONTAINER = 19
OP_CREATE_TTL = 21
OP_AUTH = 100
OP_GET_EPHEMERALS = 103
OP_ADD_WATCH = 106
OP_CLOSE = -11

# create flags (CreateMode.toFlag)
PERSISTENT = 0
EPHEMERAL = 1
PERSISTENT_SEQUENTIAL = 2
EPHEMERAL_SEQUENTIAL = 3
CONTAINER = 4
PERSISTENT_WITH_TTL = 5
PERSISTENT_SEQUENTIAL_WITH_TTL = 6

# addWatch modes
ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1

# WatcherType for checkWatches/removeWatches
WT_CHILDREN = 1
WT_DATA = 2
WT_ANY = 3
WT_PERSISTENT = 4
WT_PERSISTENT_RECURSIVE = 5

# watch event types on the wire
EV_CREATED = 1
EV_DELETED = 2
EV_CHANGED = 3
EV_CHILD = 4

WATCH_XID = -1
PING_XID = -2
AUTH_XID = -4

_STAT = struct.Struct("!qqqqiiiqiiq")


# ---------------------------------------------------------------- jute encoding
def j_int(v):
    return struct.pack("!i", v)


def j_long(v):
    return struct.pack("!q", v)


def j_buffer(b):
    if b is None:
        return j_int(-1)
    return j_int(len(b)) + b


def j_string(s):
    if s is None:
        return j_int(-1)
    raw = s.encode("utf-8")
    return j_int(len(raw)) + raw


def j_acls(acls):
    out = j_int(len(acls))
    for a in acls:
        out += j_int(a.perms) + j_string(a.id.scheme) + j_string(a.id.id)
    return out


def r_int(buf, off):
    return struct.unpack_from("!i", buf, off)[0], off + 4


def r_long(buf, off):
    return struct.unpack_from("!q", buf, off)[0], off + 8


def r_buffer(buf, off):
    n, off = r_int(buf, off)
    if n < 0:
        return None, off
    return bytes(buf[off:off + n]), off + n


def r_string(buf, off):
    b, off = r_buffer(buf, off)
    return (None if b is None else b.decode("utf-8")), off


def r_stat(buf, off):
    return ZnodeStat._make(_STAT.unpack_from(buf, off)), off + _STAT.size


def error_for(code):
    """A kazoo exception instance for a ZooKeeper error code."""
    try:
        return EXCEPTIONS[code]()
    except RuntimeError:
        return RuntimeError(f"unknown ZooKeeper error code {code}")


def create_body(path, data, acl, flags, ttl=None):
    body = j_string(path) + j_buffer(data) + j_acls(acl) + j_int(flags)
    if ttl is not None:
        body += j_long(ttl)
    return body


def create_opcode(flags, ttl):
    if flags == CONTAINER:
        return OP_CREATE_CONTAINER
    if ttl is not None or flags in (PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL):
        return OP_CREATE_TTL
    return OP_CREATE2


# ---------------------------------------------------------------- kazoo request classes
class ExtCreate(namedtuple("ExtCreate", "path data acl flags ttl")):
    """create2 / createContainer / createTTL; the reply is (path, stat)."""

    @property
    def type(self):
        return create_opcode(self.flags, self.ttl)

    def serialize(self):
        ttl = self.ttl if self.type == OP_CREATE_TTL else None
        return create_body(self.path, self.data, self.acl, self.flags, ttl)

    @classmethod
    def deserialize(cls, buf, off):
        path, off = r_string(buf, off)
        stat, off = r_stat(buf, off)
        return path, stat


class PlainCreate(namedtuple("PlainCreate", "path data acl flags")):
    """opcode 1 create (used inside ExtMulti); the reply is the path."""
    type = OP_CREATE

    def serialize(self):
        return create_body(self.path, self.data, self.acl, self.flags)


class MultiDelete(namedtuple("MultiDelete", "path version")):
    type = OP_DELETE

    def serialize(self):
        return j_string(self.path) + j_int(self.version)


class MultiSetData(namedtuple("MultiSetData", "path data version")):
    type = OP_SET_DATA

    def serialize(self):
        return j_string(self.path) + j_buffer(self.data) + j_int(self.version)


class MultiCheck(namedtuple("MultiCheck", "path version")):
    type = OP_CHECK

    def serialize(self):
        return j_string(self.path) + j_int(self.version)


class ExtMulti(namedtuple("ExtMulti", "operations")):
    """A multi whose result list keeps every sub-result, including create2
    Stats. Results: create -> path; create2/container/ttl -> (path, stat);
    delete/check -> True; setData -> stat; error -> kazoo exception instance."""
    type = OP_MULTI

    def serialize(self):
        out = b""
        for op in self.operations:
            out += j_int(op.type) + b"\x00" + j_int(-1) + op.serialize()
        return out + j_int(-1) + b"\x01" + j_int(-1)

    @classmethod
    def deserialize(cls, buf, off):
        results = []
        while True:
            typ, done, err = struct.unpack_from("!iBi", buf, off)
            off += 9
            if done:
                return results
            if typ == OP_CREATE:
                path, off = r_string(buf, off)
                results.append(path)
            elif typ in (OP_CREATE2, OP_CREATE_CONTAINER, OP_CREATE_TTL):
                path, off = r_string(buf, off)
                stat, off = r_stat(buf, off)
                results.append((path, stat))
            elif typ in (OP_DELETE, OP_CHECK):
                results.append(True)
            elif typ == OP_SET_DATA:
                stat, off = r_stat(buf, off)
                results.append(stat)
            elif typ == -1:
                code, off = r_int(buf, off)
                results.append(error_for(code))
            else:
                raise ValueError(f"unexpected multi result type {typ}")


class AddWatch(namedtuple("AddWatch", "path mode")):
    type = OP_ADD_WATCH

    def serialize(self):
        return j_string(self.path) + j_int(self.mode)

    @classmethod
    def deserialize(cls, buf, off):
        return True


class CheckWatches(namedtuple("CheckWatches", "path wtype")):
    type = OP_CHECK_WATCHES

    def serialize(self):
        return j_string(self.path) + j_int(self.wtype)

    @classmethod
    def deserialize(cls, buf, off):
        return True


class RemoveWatches(namedtuple("RemoveWatches", "path wtype")):
    type = OP_REMOVE_WATCHES

    def serialize(self):
        return j_string(self.path) + j_int(self.wtype)

    @classmethod
    def deserialize(cls, buf, off):
        return True


class GetEphemerals(namedtuple("GetEphemerals", "prefix")):
    type = OP_GET_EPHEMERALS

    def serialize(self):
        return j_string(self.prefix)

    @classmethod
    def deserialize(cls, buf, off):
        n, off = r_int(buf, off)
        out = []
        for _ in range(max(n, 0)):
            s, off = r_string(buf, off)
            out.append(s)
        return out


# ---------------------------------------------------------------- wire recorder
WireEvent = namedtuple("WireEvent", "kind type path zxid err xid")
# kind: "event" (type = event type, path = event path, zxid = header zxid)
#       "reply" (type = request opcode, path = request path or None)


class Recorder:
    """Logs every reply and watch notification of one KazooClient, in socket
    order, from kazoo's reader thread."""

    def __init__(self, client):
        self.client = client
        self.items = []
        self.connects = []  # ConnectResponse tuples (time_out, session_id, ...)
        self.cond = threading.Condition()
        conn = client._connection
        self._last_header = None
        orig_header = conn._read_header
        orig_event = conn._read_watch_event
        orig_response = conn._read_response
        orig_invoke = conn._invoke

        def read_header(timeout):
            res = orig_header(timeout)
            self._last_header = res[0]
            return res

        def read_watch_event(buf, off):
            try:
                w, _ = Watch.deserialize(buf, off)
                hdr = self._last_header
                self._add(WireEvent("event", w.type, w.path, hdr.zxid if hdr else None,
                                    hdr.err if hdr else None, WATCH_XID))
            except Exception:  # never break kazoo's reader
                pass
            return orig_event(buf, off)

        def read_response(header, buf, off):
            try:
                req = client._pending[0][0]
                self._add(WireEvent("reply", getattr(req, "type", None), getattr(req, "path", None),
                                    header.zxid, header.err, header.xid))
            except Exception:
                pass
            return orig_response(header, buf, off)

        def invoke(timeout, request, xid=None):
            res = orig_invoke(timeout, request, xid)
            if isinstance(request, Connect) and isinstance(res, tuple):
                with self.cond:
                    self.connects.append(res[0])
                    self.cond.notify_all()
            return res

        conn._read_header = read_header
        conn._read_watch_event = read_watch_event
        conn._read_response = read_response
        conn._invoke = invoke

    def _add(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def events(self, path=None):
        with self.cond:
            return [i for i in self.items if i.kind == "event" and (path is None or i.path == path)]

    def clear(self):
        with self.cond:
            self.items.clear()

    def wait_for(self, pred, timeout=5.0):
        """Wait until pred(items) is true; returns the final truth value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if pred(list(self.items)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def wait_events(self, n, path=None, timeout=5.0):
        self.wait_for(lambda items: len([i for i in items if i.kind == "event" and
                                         (path is None or i.path == path)]) >= n, timeout)
        return self.events(path)


# ---------------------------------------------------------------- raw session (own socket)
class RawSession:
    """A bare ZooKeeper session on its own socket. Closing the socket does
    NOT close the session (use close_session() for that)."""

    def __init__(self, port, timeout_ms=30000, session_id=0, passwd=b"\0" * 16,
                 sock_timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=sock_timeout)
        self.xid = 0
        self.events = []
        body = (j_int(0) + j_long(0) + j_int(timeout_ms) + j_long(session_id)
                + j_buffer(passwd) + b"\x00")
        self._send(body)
        resp = self._recv()
        off = 0
        self.protocol_version, off = r_int(resp, off)
        self.timeout, off = r_int(resp, off)
        self.session_id, off = r_long(resp, off)
        self.passwd, off = r_buffer(resp, off)

    def _send(self, body):
        self.sock.sendall(j_int(len(body)) + body)

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed by server")
            out += chunk
        return out

    def _recv(self):
        n = struct.unpack("!i", self._recv_exact(4))[0]
        return self._recv_exact(n)

    def send_request(self, opcode, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self._send(j_int(xid) + j_int(opcode) + body)
        return xid

    def read_reply(self, xid):
        """Next reply with this xid: (zxid, err, body, offset). Watch events
        met on the way are kept in self.events."""
        while True:
            frame = self._recv()
            rxid, zxid, err = struct.unpack_from("!iqi", frame, 0)
            if rxid == WATCH_XID:
                self.events.append((zxid, Watch.deserialize(frame, 16)[0]))
                continue
            if rxid == xid:
                return zxid, err, frame, 16

    def call(self, opcode, body=b"", xid=None):
        return self.read_reply(self.send_request(opcode, body, xid))

    def create(self, path, data=b"", flags=PERSISTENT, acl=OPEN_ACL_UNSAFE):
        zxid, err, frame, off = self.call(OP_CREATE, create_body(path, data, acl, flags))
        if err:
            raise error_for(err)
        return r_string(frame, off)[0]

    def close_session(self):
        try:
            self.call(OP_CLOSE)
        except (OSError, EOFError):
            pass
        self.drop()

    def drop(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- servers
class SuiteServer(zkharness.Server):
    """zkharness.Server whose readiness check is a real session handshake
    (ZooKeeper answers ruok before it serves requests, and ruok may not be
    whitelisted)."""

    def start(self, timeout=20.0):
        import subprocess
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        zkharness._live.append(self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}: {self.log()}")
            try:
                s = RawSession(self.port, timeout_ms=30000, sock_timeout=2.0)
                ok = s.timeout > 0
                s.close_session()
                if ok:
                    return self
            except (OSError, EOFError, struct.error):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.kind} did not start serving within {timeout}s: {self.log()}")


def _new_server(extra_cfg=None, props=None, tick_time_ms=2000):
    if TARGET == "zookeeper" and not zkharness.zookeeper_available():
        pytest.skip("Apache ZooKeeper jars or java not installed")
    if TARGET == "ferrokeeper" and not os.path.exists(zkharness.ferrokeeper_bin()):
        pytest.fail(f"ferrokeeper binary not found at {zkharness.ferrokeeper_bin()}")
    srv = SuiteServer(TARGET, extra_cfg=extra_cfg, props=props, tick_time_ms=tick_time_ms)
    try:
        srv.start()
    except Exception:
        srv.close()
        raise
    return srv


# ---------------------------------------------------------------- pytest hooks
def pytest_configure(config):
    config.addinivalue_line(
        "markers", "zk39(reason): ZooKeeper 3.9 behaviour absent from the 3.8 oracle "
        "(strict xfail when ZK_TARGET=zookeeper)")


def pytest_collection_modifyitems(config, items):
    has_timeout = config.pluginmanager.hasplugin("timeout")
    for item in items:
        m = item.get_closest_marker("zk39")
        if m is not None and TARGET == "zookeeper":
            why = m.args[0] if m.args else m.kwargs.get("reason", "3.9-only behaviour")
            item.add_marker(pytest.mark.xfail(
                strict=True, reason=f"ZooKeeper 3.9 behaviour; the 3.8 oracle differs: {why}"))
        if has_timeout and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


@pytest.fixture(autouse=True)
def _watchdog(request):
    """Fallback per-test time bound when pytest-timeout is not installed."""
    if request.config.pluginmanager.hasplugin("timeout") or threading.current_thread() is not threading.main_thread():
        yield
        return
    import signal

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded {DEFAULT_TEST_TIMEOUT}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(DEFAULT_TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def target():
    return TARGET


@pytest.fixture(scope="session")
def zk_server():
    srv = _new_server()
    yield srv
    srv.close()


@pytest.fixture
def server_factory():
    """server_factory(extra_cfg=None, props=None, tick_time_ms=2000) -> started server."""
    started = []

    def make(extra_cfg=None, props=None, tick_time_ms=2000):
        srv = _new_server(extra_cfg=extra_cfg, props=props, tick_time_ms=tick_time_ms)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.close()


@pytest.fixture
def client_factory(zk_server):
    """client_factory(server=None, start=True, **KazooClient kwargs) -> started
    KazooClient with a `.rec` Recorder attached. Stopped at teardown."""
    clients = []

    def make(server=None, start=True, start_timeout=10.0, **kwargs):
        srv = server or zk_server
        kwargs.setdefault("timeout", 10.0)
        c = KazooClient(hosts=srv.hosts, **kwargs)
        c.rec = Recorder(c)
        clients.append(c)
        if start:
            c.start(timeout=start_timeout)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
        except Exception:
            pass
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def zk(client_factory):
    return client_factory()


@pytest.fixture
def base(request, zk):
    """A fresh top-level path for this test (no chroot)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    path = f"/kz_{name}_{uuid.uuid4().hex[:8]}"
    zk.create(path)
    yield path
    try:
        if zk.connected:
            zk.delete(path, recursive=True)
    except Exception:
        pass


class Ext:
    """Wire-level extras for KazooClient (what kazoo 2.11 lacks)."""

    PERSISTENT = PERSISTENT
    EPHEMERAL = EPHEMERAL
    PERSISTENT_SEQUENTIAL = PERSISTENT_SEQUENTIAL
    EPHEMERAL_SEQUENTIAL = EPHEMERAL_SEQUENTIAL
    CONTAINER = CONTAINER
    PERSISTENT_WITH_TTL = PERSISTENT_WITH_TTL
    PERSISTENT_SEQUENTIAL_WITH_TTL = PERSISTENT_SEQUENTIAL_WITH_TTL
    ADD_WATCH_PERSISTENT = ADD_WATCH_PERSISTENT
    ADD_WATCH_PERSISTENT_RECURSIVE = ADD_WATCH_PERSISTENT_RECURSIVE
    WT_CHILDREN = WT_CHILDREN
    WT_DATA = WT_DATA
    WT_ANY = WT_ANY
    WT_PERSISTENT = WT_PERSISTENT
    WT_PERSISTENT_RECURSIVE = WT_PERSISTENT_RECURSIVE
    EV_CREATED = EV_CREATED
    EV_DELETED = EV_DELETED
    EV_CHANGED = EV_CHANGED
    EV_CHILD = EV_CHILD
    OP_CREATE = OP_CREATE
    OP_CREATE2 = OP_CREATE2
    OP_SET_DATA = OP_SET_DATA
    OP_DELETE = OP_DELETE
    OP_MULTI = OP_MULTI
    OP_AUTH = OP_AUTH
    TARGET = TARGET
    RawSession = RawSession
    PlainCreate = PlainCreate
    ExtCreate = ExtCreate
    MultiDelete = MultiDelete
    MultiSetData = MultiSetData
    MultiCheck = MultiCheck
    j_int = staticmethod(j_int)
    j_long = staticmethod(j_long)
    j_string = staticmethod(j_string)
    j_buffer = staticmethod(j_buffer)
    r_string = staticmethod(r_string)
    r_stat = staticmethod(r_stat)
    error_for = staticmethod(error_for)
    four_letter = staticmethod(zkharness.four_letter)

    @staticmethod
    def call(client, request, timeout=10.0):
        res = client.handler.async_result()
        client._call(request, res)
        return res.get(timeout=timeout)

    @classmethod
    def create(cls, client, path, data=b"", flags=PERSISTENT, ttl=None, acl=None):
        """create2/createContainer/createTTL; returns (path, stat)."""
        return cls.call(client, ExtCreate(path, data, acl or OPEN_ACL_UNSAFE, flags, ttl))

    @classmethod
    def multi(cls, client, ops):
        return cls.call(client, ExtMulti(list(ops)))

    @classmethod
    def add_watch(cls, client, path, mode):
        return cls.call(client, AddWatch(path, mode))

    @classmethod
    def check_watches(cls, client, path, wtype):
        return cls.call(client, CheckWatches(path, wtype))

    @classmethod
    def remove_watches(cls, client, path, wtype):
        return cls.call(client, RemoveWatches(path, wtype))

    @classmethod
    def get_ephemerals(cls, client, prefix):
        return cls.call(client, GetEphemerals(prefix))

    @staticmethod
    def wait_until(pred, timeout=5.0, interval=0.05):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() >= deadline:
                return v
            time.sleep(interval)


@pytest.fixture(scope="session")
def zkx():
    return Ext
