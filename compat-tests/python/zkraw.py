"""zkraw: a small synchronous raw ZooKeeper wire-protocol client, for tests.

Written from the protocol description:

* every message on the socket is a frame: a 4-byte big-endian signed length
  followed by that many bytes;
* the first frame from a client is a ConnectRequest (protocolVersion int,
  lastZxidSeen long, timeOut int, sessionId long, passwd buffer, and an
  optional trailing readOnly bool); the server answers with a ConnectResponse
  (protocolVersion int, timeOut int, sessionId long, passwd buffer, and a
  trailing readOnly bool only if the client sent one);
* later frames are RequestHeader (xid int, type int) + request record, and the
  server answers ReplyHeader (xid int, zxid long, err int) + response record;
  watch notifications arrive with xid -1 and carry a WatcherEvent.

Jute encoding: big-endian int (4), long (8), bool (1 byte), buffer and ustring
as an int length followed by bytes (length -1 means null), vector as an int
count followed by the elements (-1 means null), records as their fields in
order.

Nothing here blocks without a bound: every socket read has a timeout.
"""
import collections
import socket
import struct
import time

# ---------------------------------------------------------------- constants

OPS = {
    "notification": 0, "create": 1, "delete": 2, "exists": 3, "getData": 4,
    "setData": 5, "getACL": 6, "setACL": 7, "getChildren": 8, "sync": 9,
    "ping": 11, "getChildren2": 12, "check": 13, "multi": 14, "create2": 15,
    "reconfig": 16, "checkWatches": 17, "removeWatches": 18,
    "createContainer": 19, "deleteContainer": 20, "createTTL": 21,
    "multiRead": 22, "auth": 100, "setWatches": 101, "sasl": 102,
    "getEphemerals": 103, "getAllChildrenNumber": 104, "setWatches2": 105,
    "addWatch": 106, "whoAmI": 107, "createSession": -10, "closeSession": -11,
    "error": -1,
}
OP_NAMES = {v: k for k, v in OPS.items()}

ERRORS = {
    0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY",
    -3: "DATAINCONSISTENCY", -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR",
    -6: "UNIMPLEMENTED", -7: "OPERATIONTIMEOUT", -8: "BADARGUMENTS",
    -12: "UNKNOWNSESSION", -13: "NEWCONFIGNOQUORUM", -14: "RECONFIGINPROGRESS",
    -100: "APIERROR", -101: "NONODE", -102: "NOAUTH", -103: "BADVERSION",
    -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS", -111: "NOTEMPTY",
    -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK", -114: "INVALIDACL",
    -115: "AUTHFAILED", -118: "SESSIONMOVED", -119: "NOTREADONLY",
    -120: "EPHEMERALONLOCALSESSION", -121: "NOWATCHER", -122: "REQUESTTIMEOUT",
    -123: "RECONFIGDISABLED", -124: "SESSIONCLOSEDREQUIRESASLAUTH",
    -125: "QUOTAEXCEEDED", -127: "THROTTLEDOP",
}

EVENT_TYPES = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
               4: "NodeChildrenChanged", 5: "DataWatchRemoved", 6: "ChildWatchRemoved",
               7: "PersistentWatchRemoved"}
KEEPER_STATES = {-1: "Unknown", 0: "Disconnected", 3: "SyncConnected", 4: "AuthFailed",
                 5: "ConnectedReadOnly", 6: "SaslAuthenticated", -112: "Expired", 7: "Closed"}

XID_WATCH = -1
XID_PING = -2
XID_AUTH = -4
XID_SET_WATCHES = -8

# create flags (CreateMode)
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6

# permissions
PERM_READ, PERM_WRITE, PERM_CREATE, PERM_DELETE, PERM_ADMIN = 1, 2, 4, 8, 16
PERM_ALL = 31

# watcher types for checkWatches/removeWatches
WT_CHILDREN, WT_DATA, WT_ANY, WT_PERSISTENT, WT_PERSISTENT_RECURSIVE = 1, 2, 3, 4, 5

# addWatch modes
ADD_WATCH_PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE = 0, 1

OPEN_ACL_UNSAFE = [(PERM_ALL, "world", "anyone")]
READ_ACL_UNSAFE = [(PERM_READ, "world", "anyone")]


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


class Timeout(Exception):
    """Nothing (or not enough) arrived within the time limit."""


class DecodeError(Exception):
    pass


# ---------------------------------------------------------------- jute codec

class Writer:
    def __init__(self):
        self.parts = []

    def int(self, v):
        self.parts.append(struct.pack(">i", v))
        return self

    def long(self, v):
        self.parts.append(struct.pack(">q", v))
        return self

    def bool(self, v):
        self.parts.append(b"\x01" if v else b"\x00")
        return self

    def buffer(self, v):
        if v is None:
            return self.int(-1)
        self.int(len(v))
        self.parts.append(bytes(v))
        return self

    def ustring(self, v):
        if v is None:
            return self.int(-1)
        if isinstance(v, str):
            v = v.encode("utf-8", "surrogatepass")
        return self.buffer(v)

    def vector(self, items, write_item):
        if items is None:
            return self.int(-1)
        self.int(len(items))
        for it in items:
            write_item(self, it)
        return self

    def raw(self, b):
        self.parts.append(bytes(b))
        return self

    def acl(self, acl):
        perms, scheme, ident = acl
        return self.int(perms).ustring(scheme).ustring(ident)

    def acls(self, acls):
        return self.vector(acls, Writer.acl)

    def strings(self, items):
        return self.vector(items, Writer.ustring)

    def bytes(self):
        return b"".join(self.parts)


class Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def _take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"need {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def remaining(self):
        return len(self.data) - self.pos

    def rest(self):
        b = self.data[self.pos:]
        self.pos = len(self.data)
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        b = self._take(1)[0]
        return b != 0

    def buffer(self):
        n = self.int()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError(f"negative buffer length {n}")
        return self._take(n)

    def ustring(self):
        b = self.buffer()
        if b is None:
            return None
        return b.decode("utf-8", "surrogateescape")

    def vector(self, read_item):
        n = self.int()
        if n == -1:
            return None
        if n < -1 or n > self.remaining():
            raise DecodeError(f"bad vector length {n}")
        return [read_item(self) for _ in range(n)]

    def strings(self):
        return self.vector(Reader.ustring)

    def acl(self):
        return (self.int(), self.ustring(), self.ustring())

    def acls(self):
        return self.vector(Reader.acl)

    def stat(self):
        return Stat(*(self.long(), self.long(), self.long(), self.long(), self.int(),
                      self.int(), self.int(), self.long(), self.int(), self.int(),
                      self.long()))


STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")


_StatBase = collections.namedtuple("Stat", STAT_FIELDS)


class Stat(_StatBase):
    __slots__ = ()

    def asdict(self):
        return dict(self._asdict())


# ---------------------------------------------------------------- requests
# Each encoder returns the record body (bytes) for its opcode.

def enc_create(path, data=b"", acl=None, flags=0):
    return Writer().ustring(path).buffer(data).acls(OPEN_ACL_UNSAFE if acl is None else acl) \
        .int(flags).bytes()


def enc_create_ttl(path, data=b"", acl=None, flags=PERSISTENT_WITH_TTL, ttl=60000):
    return Writer().ustring(path).buffer(data).acls(OPEN_ACL_UNSAFE if acl is None else acl) \
        .int(flags).long(ttl).bytes()


def enc_delete(path, version=-1):
    return Writer().ustring(path).int(version).bytes()


def enc_path_watch(path, watch=False):
    return Writer().ustring(path).bool(watch).bytes()


def enc_path(path):
    return Writer().ustring(path).bytes()


def enc_set_data(path, data=b"", version=-1):
    return Writer().ustring(path).buffer(data).int(version).bytes()


def enc_set_acl(path, acl, version=-1):
    return Writer().ustring(path).acls(acl).int(version).bytes()


def enc_check(path, version=-1):
    return Writer().ustring(path).int(version).bytes()


def enc_path_type(path, wtype):
    return Writer().ustring(path).int(wtype).bytes()


def enc_add_watch(path, mode=ADD_WATCH_PERSISTENT):
    return Writer().ustring(path).int(mode).bytes()


def enc_reconfig(joining=None, leaving=None, new_members=None, cur_config_id=-1):
    return Writer().ustring(joining).ustring(leaving).ustring(new_members) \
        .long(cur_config_id).bytes()


def enc_auth(scheme, auth, type_=0):
    if isinstance(auth, str):
        auth = auth.encode()
    return Writer().int(type_).ustring(scheme).buffer(auth).bytes()


def enc_set_watches(relative_zxid, data=(), exist=(), child=()):
    return Writer().long(relative_zxid).strings(list(data)).strings(list(exist)) \
        .strings(list(child)).bytes()


def enc_set_watches2(relative_zxid, data=(), exist=(), child=(), persistent=(),
                     persistent_recursive=()):
    return Writer().long(relative_zxid).strings(list(data)).strings(list(exist)) \
        .strings(list(child)).strings(list(persistent)) \
        .strings(list(persistent_recursive)).bytes()


def enc_multi(ops):
    """ops: list of (opname_or_code, body_bytes). Each op is framed with a
    MultiHeader(type, done=false, err=-1); the list ends with
    MultiHeader(-1, true, -1)."""
    w = Writer()
    for op, body in ops:
        code = OPS[op] if isinstance(op, str) else op
        w.int(code).bool(False).int(-1).raw(body)
    w.int(-1).bool(True).int(-1)
    return w.bytes()


def multi_op(opname, *args, **kw):
    """Build one (opcode, body) element for enc_multi with the named encoder."""
    return (OPS[opname], encode_request(opname, *args, **kw))


_ENCODERS = {
    "create": enc_create, "create2": enc_create, "createContainer": enc_create,
    "createTTL": enc_create_ttl, "delete": enc_delete, "deleteContainer": enc_path,
    "exists": enc_path_watch, "getData": enc_path_watch, "setData": enc_set_data,
    "getACL": enc_path, "setACL": enc_set_acl, "getChildren": enc_path_watch,
    "getChildren2": enc_path_watch, "sync": enc_path, "check": enc_check,
    "reconfig": enc_reconfig, "checkWatches": enc_path_type,
    "removeWatches": enc_path_type, "getEphemerals": enc_path,
    "getAllChildrenNumber": enc_path, "addWatch": enc_add_watch,
    "auth": enc_auth, "setWatches": enc_set_watches, "setWatches2": enc_set_watches2,
    "multi": enc_multi, "multiRead": enc_multi,
    "ping": lambda: b"", "whoAmI": lambda: b"", "closeSession": lambda: b"",
}

# default xids for the special requests
SPECIAL_XIDS = {"ping": XID_PING, "auth": XID_AUTH, "setWatches": XID_SET_WATCHES,
                "setWatches2": XID_SET_WATCHES}


def encode_request(opname, *args, **kw):
    if opname == "createContainer" and "flags" not in kw and len(args) < 4:
        kw["flags"] = CONTAINER
    return _ENCODERS[opname](*args, **kw)


def request_frame(xid, opcode, body=b""):
    payload = struct.pack(">ii", xid, opcode) + body
    return struct.pack(">i", len(payload)) + payload


def connect_body(protocol_version=0, last_zxid=0, timeout_ms=10000, session_id=0,
                 passwd=b"\x00" * 16, read_only=False):
    """read_only=None omits the trailing readOnly byte (old clients)."""
    w = Writer().int(protocol_version).long(last_zxid).int(timeout_ms).long(session_id) \
        .buffer(passwd)
    if read_only is not None:
        w.bool(read_only)
    return w.bytes()


# ---------------------------------------------------------------- responses

def _dec_multi(r):
    results = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            results.append(("end", typ, err))
            break
        if typ == -1:
            results.append(("error", err, r.int()))
        elif typ == OPS["create"]:
            results.append(("create", err, r.ustring()))
        elif typ in (OPS["create2"], OPS["createTTL"], OPS["createContainer"]):
            results.append((OP_NAMES[typ], err, r.ustring(), r.stat()))
        elif typ in (OPS["delete"], OPS["deleteContainer"]):
            results.append((OP_NAMES[typ], err))
        elif typ == OPS["setData"]:
            results.append(("setData", err, r.stat()))
        elif typ == OPS["check"]:
            results.append(("check", err))
        elif typ == OPS["getData"]:
            results.append(("getData", err, r.buffer(), r.stat()))
        elif typ == OPS["getChildren"]:
            results.append(("getChildren", err, r.strings()))
        else:
            results.append(("unknown-type", typ, err, r.rest().hex()))
            break
    return results


_DECODERS = {
    "create": lambda r: {"path": r.ustring()},
    "create2": lambda r: {"path": r.ustring(), "stat": r.stat()},
    "createContainer": lambda r: {"path": r.ustring(), "stat": r.stat()},
    "createTTL": lambda r: {"path": r.ustring(), "stat": r.stat()},
    "exists": lambda r: {"stat": r.stat()},
    "getData": lambda r: {"data": r.buffer(), "stat": r.stat()},
    "setData": lambda r: {"stat": r.stat()},
    "check": lambda r: {"stat": r.stat()},
    "getACL": lambda r: {"acl": r.acls(), "stat": r.stat()},
    "setACL": lambda r: {"stat": r.stat()},
    "getChildren": lambda r: {"children": r.strings()},
    "getChildren2": lambda r: {"children": r.strings(), "stat": r.stat()},
    "sync": lambda r: {"path": r.ustring()},
    "reconfig": lambda r: {"data": r.buffer(), "stat": r.stat()},
    "getEphemerals": lambda r: {"ephemerals": r.strings()},
    "getAllChildrenNumber": lambda r: {"totalNumber": r.int()},
    "addWatch": lambda r: {"err": r.int()},
    "whoAmI": lambda r: {"clientInfo": r.vector(lambda rr: (rr.ustring(), rr.ustring()))},
    "multi": lambda r: {"results": _dec_multi(r)},
    "multiRead": lambda r: {"results": _dec_multi(r)},
}


class Reply:
    """One server reply. body is a dict (decoded when err == 0), tail holds any
    bytes left over after decoding (hex; for err != 0 replies everything after
    the header ends up here, since such replies have no defined body)."""
    kind = "reply"

    def __init__(self, xid, zxid, err, op, body=None, tail="", raw=b""):
        self.xid, self.zxid, self.err, self.op = xid, zxid, err, op
        self.body, self.tail, self.raw = body, tail, raw

    @property
    def errname(self):
        return ERRORS.get(self.err, str(self.err))

    def __repr__(self):
        return (f"Reply(op={self.op} xid={self.xid} zxid={self.zxid} err={self.errname} "
                f"body={self.body} tail={self.tail!r})")


class WatchEvent:
    kind = "event"

    def __init__(self, zxid, err, type_, state, path, raw=b""):
        self.zxid, self.err, self.type, self.state, self.path = zxid, err, type_, state, path
        self.raw = raw

    @property
    def typename(self):
        return EVENT_TYPES.get(self.type, str(self.type))

    def __repr__(self):
        return (f"WatchEvent({self.typename} state={KEEPER_STATES.get(self.state, self.state)} "
                f"path={self.path!r} zxid={self.zxid})")


class ConnectResult:
    kind = "connect"

    def __init__(self, protocol_version, timeout, session_id, passwd, read_only, raw):
        self.protocol_version, self.timeout, self.session_id = protocol_version, timeout, session_id
        self.passwd, self.read_only, self.raw = passwd, read_only, raw

    @property
    def has_read_only(self):
        return self.read_only is not None

    def __repr__(self):
        return (f"ConnectResult(proto={self.protocol_version} timeout={self.timeout} "
                f"session=0x{self.session_id & (2**64 - 1):x} passwd_len="
                f"{None if self.passwd is None else len(self.passwd)} readOnly={self.read_only})")


def decode_connect_response(payload):
    r = Reader(payload)
    pv, to, sid, pw = r.int(), r.int(), r.long(), r.buffer()
    ro = None
    if r.remaining() >= 1:
        ro = r.bool()
    return ConnectResult(pv, to, sid, pw, ro, payload)


def decode_reply(payload, op):
    """Decode a reply frame payload given the opcode name of the request it
    answers (None if unknown). Returns a Reply or a WatchEvent."""
    r = Reader(payload)
    xid, zxid, err = r.int(), r.long(), r.int()
    if xid == XID_WATCH:
        try:
            typ, state, path = r.int(), r.int(), r.ustring()
        except DecodeError:
            return Reply(xid, zxid, err, "notification", None, r.rest().hex(), payload)
        ev = WatchEvent(zxid, err, typ, state, path, payload)
        ev.tail = r.rest().hex()
        return ev
    body = None
    if err == 0 and op in _DECODERS:
        start = r.pos
        try:
            body = _DECODERS[op](r)
        except DecodeError as e:
            r.pos = start
            body = {"undecodable": str(e)}
    return Reply(xid, zxid, err, op, body, r.rest().hex(), payload)


# ---------------------------------------------------------------- client

class RawClient:
    """A synchronous raw client on one TCP connection.

    arrivals: every decoded frame (ConnectResult, Reply, WatchEvent) in the
    order it was read from the socket; events: only the WatchEvents.
    """

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.next_xid = 1
        self.pending = {}          # xid -> opname
        self.arrivals = []
        self.events = []
        self.closed = False
        self.connect_result = None

    # ---- low level
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"waited for {n} bytes, have {len(self.buf)}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout(f"waited for {n} bytes, have {len(self.buf)}")
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as e:
                self.closed = True
                raise Closed(str(e))
            if not chunk:
                self.closed = True
                raise Closed("EOF")
            self.buf += chunk

    def recv_frame(self, timeout=None):
        """Return the payload of the next frame (without its length)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(4, deadline)
        (n,) = struct.unpack(">i", self.buf[:4])
        if n < 0 or n > 64 * 1024 * 1024:
            raise DecodeError(f"bad frame length {n}")
        self._fill(4 + n, deadline)
        payload = self.buf[4:4 + n]
        self.buf = self.buf[4 + n:]
        return payload

    def recv_raw(self, timeout=1.0):
        """Whatever bytes arrive within timeout (b'' on EOF; raises Timeout if none)."""
        if self.buf:
            b, self.buf = self.buf, b""
            return b
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("no data")
        except (ConnectionResetError, ConnectionAbortedError):
            self.closed = True
            return b""
        if not b:
            self.closed = True
        return b

    def wait_closed(self, timeout=2.0):
        """True if the server closes the connection within timeout (data that
        arrives meanwhile is read as frames and recorded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.read_one(timeout=left)
            except Closed:
                return True
            except Timeout:
                return False
            except DecodeError:
                self.buf = b""

    # ---- session
    def connect(self, timeout_ms=10000, session_id=0, passwd=b"\x00" * 16, last_zxid=0,
                read_only=False, protocol_version=0, recv_timeout=None):
        self.send_frame(connect_body(protocol_version, last_zxid, timeout_ms, session_id,
                                     passwd, read_only))
        payload = self.recv_frame(recv_timeout)
        res = decode_connect_response(payload)
        self.connect_result = res
        self.arrivals.append(res)
        return res

    @property
    def session_id(self):
        return self.connect_result.session_id if self.connect_result else None

    @property
    def passwd(self):
        return self.connect_result.passwd if self.connect_result else None

    # ---- requests
    def send(self, opname, *args, xid=None, **kw):
        """Send a request built with the named encoder; returns its xid."""
        body = encode_request(opname, *args, **kw)
        return self.send_body(OPS[opname], body, xid=xid, opname=opname)

    def send_body(self, opcode, body, xid=None, opname=None):
        if xid is None:
            if opname in SPECIAL_XIDS:
                xid = SPECIAL_XIDS[opname]
            else:
                xid = self.next_xid
                self.next_xid += 1
        self.pending[xid] = opname if opname else OP_NAMES.get(opcode, f"op{opcode}")
        self.sock.sendall(request_frame(xid, opcode, body))
        return xid

    def read_one(self, timeout=None):
        payload = self.recv_frame(timeout)
        (xid,) = struct.unpack(">i", payload[:4]) if len(payload) >= 4 else (None,)
        if len(payload) < 16:
            rep = Reply(xid, None, None, "short-frame", None, payload.hex(), payload)
            self.arrivals.append(rep)
            return rep
        op = None if xid == XID_WATCH else self.pending.pop(xid, None)
        msg = decode_reply(payload, op)
        self.arrivals.append(msg)
        if isinstance(msg, WatchEvent):
            self.events.append(msg)
        return msg

    def wait_reply(self, xid, timeout=None):
        """Read frames until the reply with this xid; events met on the way are
        recorded. Returns the Reply."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"no reply for xid {xid}")
            msg = self.read_one(timeout=left)
            if isinstance(msg, Reply) and msg.xid == xid:
                return msg

    def call(self, opname, *args, xid=None, timeout=None, **kw):
        x = self.send(opname, *args, xid=xid, **kw)
        return self.wait_reply(x, timeout)

    def call_body(self, opcode, body, xid=None, timeout=None):
        x = self.send_body(opcode, body, xid=xid)
        return self.wait_reply(x, timeout)

    def ping(self, timeout=None):
        return self.call("ping", timeout=timeout)

    def drain(self, timeout=0.2):
        """Read whatever arrives within timeout; returns the list read."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            try:
                got.append(self.read_one(timeout=left))
            except Timeout:
                return got

    def close_session(self, timeout=None):
        """Send closeSession and wait for its reply; then close the socket."""
        try:
            return self.call("closeSession", timeout=timeout)
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(port, **kw):
    """Open a connection and establish a new session; returns the client."""
    c = RawClient(port, timeout=kw.pop("sock_timeout", 5.0))
    try:
        c.connect(**kw)
    except Exception:
        c.close()
        raise
    return c


def reconnect(port, session_id, passwd, **kw):
    """Open a new connection resuming an existing session (id + password).
    The ConnectResult tells whether the server accepted it (session_id != 0)."""
    return connect(port, session_id=session_id, passwd=passwd, **kw)


def digest(user, password):
    """The id stored in a digest ACL for user:password (user:base64(sha1))."""
    import base64
    import hashlib
    h = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(h).decode()}"
