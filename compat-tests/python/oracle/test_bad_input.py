"""Bad input on the wire: each case drives one misbehaving connection, records
what the server does (replies, ConnectResponses, whether the connection is
closed or left open) and compares that with what Apache ZooKeeper 3.8 does.
Throughout every case a second, well-behaved client on the same server must
keep working (Bystander).

Documented better behaviour (MASK unknown-opcode): after an unknown opcode 3.8
replies UNIMPLEMENTED and closes the connection; Ferrokeeper replies
UNIMPLEMENTED and keeps the connection usable (test_unknown_opcode_keeps_...).
"""
import random
import socket
import struct
import time

import pytest

import zkraw as z
from oracleservers import TARGETS, dump

MAXBUFFER = 0xFFFFF      # jute.maxbuffer default: largest accepted frame payload


# ---------------------------------------------------------------- helpers

class Bystander:
    """A well-behaved session: a node of its own, a watch on it, and a round
    of requests that must all succeed, at any point of a case."""

    def __init__(self, port, name):
        self.port = port
        self.path = f"/bystander-{name}"
        self.c = z.connect(port, timeout_ms=30000, sock_timeout=3.0)
        rep = self.c.call("create", self.path, b"0", flags=z.EPHEMERAL)
        assert rep.err == 0, rep
        self.n = 0

    def check(self):
        self.n += 1
        c = self.c
        rep = c.call("exists", self.path, watch=True, timeout=3.0)
        assert rep.err == 0, f"bystander exists: {rep}"
        rep = c.call("setData", self.path, str(self.n).encode(), timeout=3.0)
        assert rep.err == 0, f"bystander setData: {rep}"
        assert c.arrivals[-2].kind == "event" and c.arrivals[-2].path == self.path, \
            f"bystander missed its NodeDataChanged event: {c.arrivals[-3:]}"
        rep = c.call("getData", self.path, timeout=3.0)
        assert rep.err == 0 and rep.body["data"] == str(self.n).encode(), rep
        assert c.ping(timeout=3.0).err == 0

    def close(self):
        try:
            self.c.close_session(timeout=3.0)
        except Exception:
            self.c.close()


def describe(msg, connected):
    if isinstance(msg, z.ConnectResult):
        return "ConnectResponse " + describe_connect(msg)
    if isinstance(msg, z.WatchEvent):
        return f"event {msg.typename} {msg.path!r}"
    if msg.zxid is None:
        return f"short frame {msg.tail}"
    name = z.ERRORS.get(msg.err, str(msg.err))
    extra = len(msg.raw) - 16
    return f"reply xid={msg.xid} {name}" + (f" +{extra} bytes" if extra else "")


def describe_connect(r):
    pw = "null" if r.passwd is None else (
        f"zeros[{len(r.passwd)}]" if r.passwd == bytes(len(r.passwd)) else f"bytes[{len(r.passwd)}]")
    ro = "absent" if r.read_only is None else str(r.read_only)
    sess = "0" if r.session_id == 0 else "new/valid"
    return f"(timeout={r.timeout} session={sess} passwd={pw} readOnly={ro})"


class Probe:
    """One raw connection; records observations as plain strings."""

    def __init__(self, port):
        self.c = z.RawClient(port, timeout=3.0)
        self.connected = False
        self.obs = []

    def note(self, text):
        self.obs.append(text)

    def connect(self, **kw):
        res = self.c.connect(recv_timeout=3.0, **kw)
        self.connected = res.session_id != 0
        return res

    def send(self, data):
        # A failed send is not an observation of its own: whether the server
        # closed before or after our last byte went out is a race. What the
        # next read sees (normally "closed") is recorded instead.
        try:
            self.c.send_raw(data)
        except OSError as e:
            self.send_error = e

    def observe_connect(self, timeout=2.0):
        """Read the answer to a ConnectRequest. A session that was granted is
        probed with a ping and closed; a refused one is watched for the close."""
        try:
            payload = self.c.recv_frame(timeout)
        except z.Closed:
            self.obs.append("closed")
            return None
        except z.Timeout:
            self.obs.append("open")
            return None
        try:
            res = z.decode_connect_response(payload)
        except z.DecodeError as e:
            self.obs.append(f"undecodable ConnectResponse ({e})")
            return None
        self.c.connect_result = res
        self.obs.append("ConnectResponse " + describe_connect(res))
        if res.session_id == 0:
            self.observe(5.0)
        else:
            self.connected = True
            self.probe_alive()
            if self.obs[-1].endswith("(probe)"):
                try:
                    self.c.close_session(timeout=2.0)
                except Exception:
                    pass
        return res

    def observe(self, timeout=1.0, until_xid=None):
        """Read until the connection closes, the reply with until_xid arrives,
        or nothing more comes within timeout ('open')."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.obs.append("open")
                    return
                m = self.c.read_one(left)
                if until_xid is not None and isinstance(m, z.Reply) and m.xid == until_xid:
                    self.obs.append(describe(m, True) + " (probe)")
                    return
                self.obs.append(describe(m, True))
        except z.Closed:
            self.obs.append("closed")
        except z.Timeout:
            self.obs.append("open")
        except z.DecodeError as e:
            self.obs.append(f"undecodable frame ({e})")

    def probe_alive(self, timeout=2.0):
        """Send a ping (if we can) and read up to its reply or the close."""
        try:
            x = self.c.send("ping")
        except OSError:
            self.obs.append("closed (send failed)")
            return
        self.observe(timeout, until_xid=x)

    def close(self):
        self.c.close()


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def req(xid, opcode, body=b""):
    return frame(struct.pack(">ii", xid, opcode) + body)


def session_probe(port):
    p = Probe(port)
    p.connect()
    return p


# ---------------------------------------------------------------- cases
# Each case: fn(port, bystander) -> list of observation strings.

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _random_first_frame(port, by, seed):
    rnd = random.Random(seed)
    body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(40, 120)))
    p = Probe(port)
    p.send(frame(body))
    by.check()
    p.observe(5.0)
    p.close()
    return p.obs


@case
def random_first_frame_1(port, by):
    return _random_first_frame(port, by, 1)


@case
def random_first_frame_2(port, by):
    return _random_first_frame(port, by, 2)


@case
def random_first_frame_3(port, by):
    return _random_first_frame(port, by, 3)


@case
def random_bytes_stream(port, by):
    rnd = random.Random(7)
    data = bytes(rnd.randrange(256) for _ in range(300))
    assert data[:4] not in (b"ruok", b"stat", b"srvr", b"conf", b"cons", b"dump")
    p = Probe(port)
    p.send(data)
    p.observe(5.0)
    p.close()
    return p.obs


@case
def truncated_connect_then_eof(port, by):
    body = z.connect_body()
    p = Probe(port)
    p.send(frame(body)[:12])
    p.observe(1.0)
    by.check()
    p.c.sock.shutdown(socket.SHUT_WR)
    p.observe(5.0)
    p.close()
    return p.obs


@case
def truncated_length_prefix(port, by):
    p = Probe(port)
    p.send(b"\x00\x00")
    p.observe(1.0)
    by.check()
    p.c.sock.shutdown(socket.SHUT_WR)
    p.observe(5.0)
    p.close()
    return p.obs


@case
def request_split_across_writes(port, by):
    p = session_probe(port)
    data = req(1, z.OPS["exists"], z.enc_path_watch("/zookeeper"))
    p.send(data[:3])
    p.observe(0.5)
    by.check()
    p.send(data[3:10])
    p.observe(0.5)
    for b in data[10:]:
        p.send(bytes([b]))
        time.sleep(0.002)
    p.c.pending[1] = "exists"
    p.observe(2.0, until_xid=1)
    p.probe_alive()
    p.close()
    return p.obs


@case
def two_requests_one_write(port, by):
    p = session_probe(port)
    p.c.pending.update({1: "exists", 2: "getData"})
    p.send(req(1, z.OPS["exists"], z.enc_path_watch("/zookeeper")) +
           req(2, z.OPS["getData"], z.enc_path_watch("/zookeeper")))
    p.observe(2.0, until_xid=2)
    p.probe_alive()
    p.close()
    return p.obs


@case
def truncated_request_then_eof(port, by):
    p = session_probe(port)
    data = req(1, z.OPS["getData"], z.enc_path_watch("/zookeeper"))
    p.send(data[:-3])
    p.observe(1.0)
    by.check()
    p.c.sock.shutdown(socket.SHUT_WR)
    p.observe(5.0)
    p.close()
    return p.obs


@case
def frame_over_maxbuffer_first(port, by):
    p = Probe(port)
    p.send(struct.pack(">i", MAXBUFFER + 1))
    p.observe(5.0)
    p.close()
    return p.obs


@case
def frame_over_maxbuffer_after_session(port, by):
    out = []
    for n in (MAXBUFFER + 1, 2 ** 31 - 1):
        p = session_probe(port)
        p.note(f"length {n}")
        p.send(struct.pack(">i", n) + b"\x00" * 64)
        p.observe(5.0)
        by.check()
        p.close()
        out += p.obs
    return out


@case
def frame_at_maxbuffer_boundary(port, by):
    out = []
    path = "/bad-input-big"
    setup = z.connect(port, sock_timeout=3.0)
    assert setup.call("create", path, b"").err in (0, -110)
    for payload_len in (MAXBUFFER, MAXBUFFER + 1):
        p = session_probe(port)
        p.note(f"setData frame payload {payload_len}")
        fixed = 8 + 4 + len(path) + 4 + 4      # header, path, data length, version
        body = z.enc_set_data(path, b"x" * (payload_len - fixed), -1)
        assert 8 + len(body) == payload_len
        p.c.pending[1] = "setData"
        p.send(struct.pack(">iii", payload_len, 1, z.OPS["setData"]) + body)
        p.observe(5.0, until_xid=1)
        by.check()
        p.close()
        out += p.obs
    assert setup.call("delete", path).err == 0
    setup.close_session()
    return out


@case
def negative_and_zero_lengths(port, by):
    out = []
    for label, data, connect in (("-1 as first frame", struct.pack(">i", -1), False),
                                 ("0 as first frame", struct.pack(">i", 0), False),
                                 ("-5 after session", struct.pack(">i", -5), True),
                                 ("0 after session", struct.pack(">i", 0), True),
                                 ("4-byte payload after session", frame(b"\x00\x00\x00\x01"),
                                  True)):
        p = session_probe(port) if connect else Probe(port)
        p.note(label)
        p.send(data)
        p.observe(5.0)
        by.check()
        p.close()
        out += p.obs
    return out


BODY_OPS = ["create", "delete", "exists", "getData", "setData", "getACL", "setACL",
            "getChildren", "sync", "getChildren2", "check", "multi", "create2", "reconfig",
            "checkWatches", "removeWatches", "createContainer", "createTTL", "multiRead",
            "setWatches", "getEphemerals", "getAllChildrenNumber", "setWatches2", "addWatch"]


def _garbage_bodies(port, by, variant, body):
    out = []
    for opname in BODY_OPS:
        p = session_probe(port)
        xid = z.SPECIAL_XIDS.get(opname, 1)
        p.c.pending[xid] = opname
        p.send(req(xid, z.OPS[opname], body))
        p.note(f"{opname} with {variant}")
        p.observe(2.0, until_xid=xid)
        if p.obs[-1] not in ("closed", "open"):
            p.probe_alive()
        p.close()
        out += p.obs
    by.check()
    return out


@case
def empty_request_bodies(port, by):
    return _garbage_bodies(port, by, "an empty body", b"")


@case
def three_byte_request_bodies(port, by):
    return _garbage_bodies(port, by, "a 3-byte body", b"\xff\xff\xff")


@case
def huge_string_length_bodies(port, by):
    return _garbage_bodies(port, by, "a string length of 2^31-1", struct.pack(">i", 2 ** 31 - 1)
                           + b"/abc" + b"\x00" * 8)


@case
def negative_string_length_bodies(port, by):
    return _garbage_bodies(port, by, "a string length of -7", struct.pack(">i", -7) + b"\x00" * 8)


@case
def trailing_bytes_after_body(port, by):
    p = session_probe(port)
    p.c.pending.update({1: "exists", 2: "getData"})
    p.send(req(1, z.OPS["exists"], z.enc_path_watch("/zookeeper") + b"\x01\x02\x03\x04\x05"))
    p.observe(2.0, until_xid=1)
    p.send(req(2, z.OPS["getData"], z.enc_path_watch("/zookeeper") + b"\x00" * 100))
    p.observe(2.0, until_xid=2)
    p.probe_alive()
    p.close()
    return p.obs


@case
def huge_vector_counts(port, by):
    out = []
    for opname, body in (
            ("setWatches", struct.pack(">q", 0) + struct.pack(">i", 2 ** 30)),
            ("create", z.Writer().ustring("/bad-vec").buffer(b"").int(2 ** 30).bytes()),
            ("setACL", z.Writer().ustring("/zookeeper").int(2 ** 30).bytes()),
            ("multi", struct.pack(">i?i", 1, False, -1) + struct.pack(">i", 2 ** 30))):
        p = session_probe(port)
        xid = z.SPECIAL_XIDS.get(opname, 1)
        p.c.pending[xid] = opname
        p.note(f"{opname} with a huge count")
        p.send(req(xid, z.OPS[opname], body))
        p.observe(2.0, until_xid=xid)
        if p.obs[-1] not in ("closed", "open"):
            p.probe_alive()
        p.close()
        out += p.obs
    by.check()
    return out


@case
def invalid_utf8_paths(port, by):
    out = []
    for raw in (b"/bad-utf8-\xff\xfe", b"/bad-utf8-\xc3", b"/bad-utf8-\xed\xa0\x80"):
        for opname in ("create", "getData", "exists", "delete"):
            p = session_probe(port)
            w = z.Writer().buffer(raw)
            if opname == "create":
                body = w.buffer(b"").acls(z.OPEN_ACL_UNSAFE).int(0).bytes()
            elif opname == "delete":
                body = w.int(-1).bytes()
            else:
                body = w.bool(False).bytes()
            p.c.pending[1] = opname
            p.note(f"{opname} {raw!r}")
            p.send(req(1, z.OPS[opname], body))
            p.observe(2.0, until_xid=1)
            if p.obs[-1] not in ("closed", "open"):
                p.probe_alive()
            p.close()
            out += p.obs
    by.check()
    return out


@case
def delete_zookeeper_and_root(port, by):
    p = session_probe(port)
    for path in ("/zookeeper", "/zookeeper/quota", "/zookeeper/config", "/"):
        rep = p.c.call("delete", path, timeout=3.0)
        p.note(f"delete {path}: {z.ERRORS.get(rep.err, rep.err)}")
    for path in ("/zookeeper/quota", "/zookeeper/config"):
        rep = p.c.call("setData", path, b"x", 0, timeout=3.0)
        p.note(f"setData {path}: {z.ERRORS.get(rep.err, rep.err)}")
    rep = p.c.call("getChildren", "/zookeeper", timeout=3.0)
    p.note(f"children of /zookeeper: {sorted(rep.body['children']) if rep.err == 0 else rep.err}")
    p.c.close_session()
    by.check()
    return p.obs


@case
def connect_zxid_ahead(port, by):
    c = z.connect(port)
    cur = c.ping().zxid
    c.close_session()
    out = []
    for label, last in (("lastZxidSeen = current", cur), ("lastZxidSeen = current+1000", cur + 1000),
                        ("lastZxidSeen = 2^40", 2 ** 40)):
        p = Probe(port)
        p.note(label)
        p.send(frame(z.connect_body(last_zxid=last)))
        p.observe_connect()
        by.check()
        p.close()
        out += p.obs
    return out


@case
def reconnect_wrong_password(port, by):
    a = z.connect(port, sock_timeout=3.0)
    out = []
    for label, ro in (("with readOnly byte", False), ("without readOnly byte", None)):
        p = Probe(port)
        p.note(label)
        p.send(frame(z.connect_body(session_id=a.session_id, passwd=b"\x01" * 16, read_only=ro)))
        p.observe_connect()
        out += p.obs
        p.close()
        # MASK(wrong-password-kick): ZooKeeper closes the session's current
        # connection before it checks the password of the new one, so anyone
        # who knows a session id can disconnect its owner; Ferrokeeper checks
        # first and leaves the owner connected. Either way the session must
        # still be resumable with the right password, which is compared.
        try:
            a.ping(timeout=3.0)
        except z.Closed:
            pass
        out.append("original connection: <masked: ZooKeeper closes / Ferrokeeper keeps>")
        sid, pw = a.session_id, a.passwd
        a.close()
        a = z.RawClient(port, timeout=3.0)
        res = a.connect(session_id=sid, passwd=pw, recv_timeout=3.0)
        out.append("session resumed with the right password: " + describe_connect(res))
        by.check()
    a.close_session()
    return out


@case
def reconnect_unknown_session(port, by):
    p = Probe(port)
    p.send(frame(z.connect_body(session_id=0x0123456789ABCDEF, passwd=b"\x00" * 16)))
    p.observe_connect()
    by.check()
    p.close()
    return p.obs


@case
def odd_connect_requests(port, by):
    out = []
    variants = [
        ("trailing garbage", z.connect_body() + b"\x07\x07\x07"),
        ("password of 17 bytes", z.connect_body(passwd=b"\x00" * 17)),
        ("empty password", z.connect_body(passwd=b"")),
        ("null password", z.connect_body(passwd=None)),
        ("protocolVersion 99", z.connect_body(protocol_version=99)),
        ("protocolVersion -1", z.connect_body(protocol_version=-1)),
        ("timeout -1", z.connect_body(timeout_ms=-1)),
        ("timeout 0", z.connect_body(timeout_ms=0)),
        ("negative session id, zero password", z.connect_body(session_id=-1)),
        ("truncated before password", z.connect_body()[:20]),
        ("password length 2^31-1", z.connect_body()[:24] + struct.pack(">i", 2 ** 31 - 1)),
        ("ping header as first frame", struct.pack(">ii", -2, 11)),
    ]
    for label, body in variants:
        p = Probe(port)
        p.note(label)
        p.send(frame(body))
        p.observe_connect()
        p.close()
        out += p.obs
    by.check()
    return out


@case
def second_connect_on_open_session(port, by):
    # read as a request: xid = protocolVersion (0), opcode = high half of
    # lastZxidSeen (0), i.e. an unknown opcode
    p = session_probe(port)
    p.c.pending[0] = "connect-again"
    p.send(frame(z.connect_body()))
    p.observe(2.0, until_xid=0)
    by.check()
    p.close()
    return p.obs


@case
def four_letter_ruok(port, by):
    p = Probe(port)
    p.send(b"ruok")
    try:
        p.note("answer " + repr(p.c.recv_raw(2.0)))
    except z.Timeout:
        p.note("no answer")
    p.observe(5.0)
    p.close()
    return p.obs


@case
def closed_session_then_more_requests(port, by):
    p = session_probe(port)
    p.c.pending.update({1: "closeSession"})
    p.send(req(1, z.OPS["closeSession"]))
    p.observe(5.0, until_xid=1)
    p.observe(5.0)
    p.close()
    by.check()
    return p.obs


@case
def very_long_path(port, by):
    p = session_probe(port)
    path = "/long-" + "x" * 100000
    for opname, args in (("create", (path, b"")), ("exists", (path,)), ("delete", (path,))):
        rep = p.c.call(opname, *args, timeout=3.0)
        p.note(f"{opname} 100KB path: {z.ERRORS.get(rep.err, rep.err)}")
    deep = "".join(f"/d{i}" for i in range(50))
    rep = p.c.call("create", deep, b"", timeout=3.0)
    p.note(f"create 50-level path under a missing parent: {z.ERRORS.get(rep.err, rep.err)}")
    p.c.close_session()
    by.check()
    return p.obs


UNKNOWN_OPS = [999, 10, 0, -1, -100, 2 ** 31 - 1, -(2 ** 31)]


@case
def unknown_opcodes(port, by):
    out = []
    for code in UNKNOWN_OPS:
        p = session_probe(port)
        p.note(f"opcode {code}")
        p.c.pending[1] = f"op{code}"
        p.send(req(1, code, b"\x00\x00\x00\x01"))
        p.observe(2.0, until_xid=1)
        # MASK(unknown-opcode): whether the connection stays usable afterwards
        # differs on purpose (3.8 closes it); the reply itself is compared.
        out += [o for o in p.obs]
        by.check()
        p.close()
    return out


def _mask_unknown(obs):
    # MASK(unknown-opcode): "reply UNIMPLEMENTED" and a bare close are both
    # accepted as the answer to an unknown opcode.
    return ["UNIMPLEMENTED-or-closed" if (o.endswith(" UNIMPLEMENTED (probe)") or o == "closed")
            else o for o in obs]


MASKERS = {"unknown_opcodes": _mask_unknown, "second_connect_on_open_session": _mask_unknown}


# ---------------------------------------------------------------- tests

def run_case(server, name):
    try:
        by = Bystander(server.port, name)
    except (OSError, z.Closed, z.Timeout, z.DecodeError) as e:
        raise AssertionError(f"a well-behaved client cannot even start a session: {e!r}")
    try:
        by.check()
        obs = CASES[name](server.port, by)
        by.check()
    finally:
        by.close()
    assert server.proc.poll() is None, f"server died during {name}:\n{server.log()}"
    return obs


def reference_obs(servers, name):
    key = "bad:" + name
    if key not in servers.ref_cache:
        servers.ref_cache[key] = run_case(servers.get("reference"), name)
        dump("bad_" + name, "reference", servers.ref_cache[key])
    return servers.ref_cache[key]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(servers, name, target):
    cand_server = servers.get(target)
    ref = reference_obs(servers, name)
    try:
        cand = run_case(cand_server, name)
    except AssertionError:
        servers.unresponsive(target, True)
        raise
    servers.unresponsive(target, False)
    servers.check_alive(target)
    dump("bad_" + name, target, cand)
    mask = MASKERS.get(name, lambda o: o)
    a, b = mask(ref), mask(cand)
    if a != b:
        import difflib
        diff = "\n".join(difflib.unified_diff(a, b, "zookeeper-3.8(reference)", target,
                                              lineterm=""))
        pytest.fail(f"bad input case {name}: behaviour differs\n{diff}")


def test_unknown_opcode_reference_closes(servers):
    """What the mask hides, checked on ZooKeeper: UNIMPLEMENTED, then close."""
    port = servers.get("reference").port
    for code in (999, 10, -100):
        p = session_probe(port)
        p.c.pending[1] = "unknown"
        p.send(req(1, code, b""))
        p.observe(5.0, until_xid=1)
        p.observe(5.0)
        p.close()
        assert p.obs == ["reply xid=1 UNIMPLEMENTED (probe)", "closed"], p.obs


def test_unknown_opcode_keeps_connection_ferrokeeper(servers):
    """Ferrokeeper's documented behaviour: UNIMPLEMENTED and the connection
    (and session) stay usable."""
    if "ferrokeeper" not in TARGETS:
        pytest.skip("ferrokeeper not selected")
    port = servers.get("ferrokeeper").port
    c = z.connect(port, sock_timeout=3.0)
    try:
        for code in (999, 10, -100, 2 ** 31 - 1):
            rep = c.call_body(code, b"\x00\x00\x00\x01", timeout=3.0)
            assert rep.err == -6, f"opcode {code}: {rep}"
            assert c.ping(timeout=3.0).err == 0
            rep = c.call("exists", "/zookeeper", timeout=3.0)
            assert rep.err == 0, rep
        c.close_session(timeout=3.0)
    finally:
        c.close()
