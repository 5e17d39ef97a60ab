"""Differential oracle machinery: run a named scenario (a Python function that
drives one or several raw sessions) against a server, record every reply and
watch event in arrival order, normalise the record and compare two records.

A scenario receives a Trace `t` and uses:
    a = t.session("A")                  new session (recorded ConnectResponse)
    a.op("create", t.p("x"), b"data")   request + wait for its reply
    a.raw(opcode, body, "label")        arbitrary request body
    a.barrier()                         ping round trip: every event that the
                                        server queued before is read/recorded
    a.close()                           closeSession (+ was the socket closed)
    a.drop() / t.reconnect("A", "A2")   lose the socket / resume the session
    t.note("text")                      a label line in the record
Paths are made with t.p("x") -> "/<scenario>/x".

Normalisation (applied to both sides identically):
  * session ids (ConnectResponse, Stat.ephemeralOwner) -> the session's name;
  * zxids -> offsets from the server's last zxid just before the scenario
    ("z+N"; 0 and -1 kept literally); the comparison is done twice, first with
    every zxid hidden (structure), then with the offsets;
  * ctime/mtime -> "T" (0 kept), passwords -> their length (all-zero kept);
  * lists whose order ZooKeeper leaves to a hash set are sorted: children,
    ephemerals, whoAmI identities, an ACL expanded from the "auth" scheme
    (mask="unordered"), events of barrier(unordered=True).
Masks for known 3.8-vs-3.9 (or 3.8-vs-Ferrokeeper by design) differences are
marked MASK(name) where applied; MASK_NOTES lists them:
  watch-zxid, multi-create2, exists-noread, unknown-opcode.
Everything else is compared exactly, including bytes that follow an error
reply's header (shown as tail=0x...).
"""
import difflib
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import zkraw as z  # noqa: E402

REPLY_TIMEOUT = float(os.environ.get("ORACLE_REPLY_TIMEOUT", "5.0"))
SESSION_TIMEOUT_MS = 30000


# ---------------------------------------------------------------- recording

class Rec:
    """One line of a trace, kept structured until formatting."""

    def __init__(self, kind, sess=None, label=None, obj=None, mask=None, extra=None):
        self.kind, self.sess, self.label, self.obj = kind, sess, label, obj
        self.mask, self.extra = mask, extra


class Session:
    def __init__(self, trace, name, client):
        self.t, self.name, self.c = trace, name, client
        self.state = "open"          # open | closed | stuck | dead
        self.session_id = None
        self.passwd = None

    # -- helpers
    def _rec(self, kind, label=None, obj=None, mask=None, extra=None):
        self.t.recs.append(Rec(kind, self.name, label, obj, mask, extra))

    def _record_arrivals(self, upto=None, skip=()):
        """Record what was read since the last call: events, and replies that
        nobody waited for (stray). Replies in skip (by identity) are left to
        the caller."""
        upto = len(self.c.arrivals) if upto is None else upto
        for m in self.c.arrivals[self._seen:upto]:
            if any(m is k for k in skip):
                continue
            if isinstance(m, z.WatchEvent):
                self._rec("event", obj=m)
            elif isinstance(m, z.Reply):
                self._rec("stray", obj=m)
        self._seen = upto

    def _usable(self, label):
        if self.state != "open":
            self._rec("skipped", label, extra=self.state)
            return False
        return True

    def _wait(self, xid, label, mask, record=True, timeout=None, extra=None):
        try:
            rep = self.c.wait_reply(xid, timeout or REPLY_TIMEOUT)
        except z.Timeout:
            self._record_arrivals()
            self._rec("timeout", label, mask=mask)
            self.state = "stuck"
            return None
        except z.Closed:
            self._record_arrivals()
            self._rec("closed-before-reply", label, mask=mask)
            self.state = "closed"
            return None
        except z.DecodeError as e:
            self._record_arrivals()
            self._rec("bad-frame", label, extra=str(e))
            self.state = "dead"
            return None
        self._record_arrivals(skip=(rep,))
        if record:
            self._rec("reply", label, rep, mask=mask, extra=extra)
        return rep

    _seen = 0

    # -- requests
    def op(self, opname, *args, label=None, mask=None, xid=None, **kw):
        """Send one request and wait for its reply; returns the Reply or None."""
        if label is None:
            label = opname
            if args and isinstance(args[0], str):
                label += " " + repr(args[0])
        if not self._usable(label):
            return None
        subops = None
        if opname in ("multi", "multiRead") and args:
            subops = [z.OP_NAMES.get(code, str(code)) for code, _ in args[0]]
        try:
            x = self.c.send(opname, *args, xid=xid, **kw)
        except OSError:
            self._rec("send-failed", label)
            self.state = "closed"
            return None
        return self._wait(x, label, mask, extra=subops)

    def raw(self, opcode, body, label, mask=None, xid=None):
        if not self._usable(label):
            return None
        try:
            x = self.c.send_body(opcode, body, xid=xid, opname=z.OP_NAMES.get(opcode))
        except OSError:
            self._rec("send-failed", label)
            self.state = "closed"
            return None
        return self._wait(x, label, mask)

    def op_maybe_unanswered(self, opname, *args, label=None, mask=None, **kw):
        """Send a request followed by a ping. Replies come back in request
        order, so if the ping's reply arrives without a reply for the request,
        the server dropped that reply (ZooKeeper does this for a successful
        top-level check: serialising its null Stat fails)."""
        label = label or f"{opname} {args[0]!r}"
        if not self._usable(label):
            return None
        x = self.c.send(opname, *args, **kw)
        p = self.c.send("ping")
        got = None
        try:
            deadline = time.monotonic() + REPLY_TIMEOUT
            while True:
                m = self.c.read_one(max(0.01, deadline - time.monotonic()))
                if isinstance(m, z.Reply) and m.xid == x:
                    got = m
                    self._record_arrivals(skip=(m,))
                    self._rec("reply", label, m, mask=mask)
                elif isinstance(m, z.Reply) and m.xid == p:
                    self._record_arrivals(skip=(m,))
                    if got is None:
                        self._rec("no-reply", label, extra="ping answered first", mask=mask)
                    return got
        except z.Timeout:
            self._record_arrivals()
            self._rec("timeout", label)
            self.state = "stuck"
        except z.Closed:
            self._record_arrivals()
            self._rec("closed-before-reply", label)
            self.state = "closed"
        return None

    def pipeline(self, calls, label="pipeline"):
        """Send several requests back to back, then read all the replies; the
        arrival order is recorded as is."""
        if not self._usable(label):
            return []
        xids = [self.c.send(opname, *args, **kw) for opname, args, kw in calls]
        self._rec("note", label, extra=f"{len(xids)} requests sent back to back")
        out = []
        for x, (opname, args, kw) in zip(xids, calls):
            lab = opname + (" " + repr(args[0]) if args and isinstance(args[0], str) else "")
            out.append(self._wait(x, lab, None))
            if self.state != "open":
                break
        return out

    def barrier(self, unordered=False):
        """Ping and read up to its reply: records every event queued before.
        unordered=True sorts the events read here (for events whose order
        ZooKeeper leaves to a hash set, e.g. the deletion of a closed
        session's ephemeral nodes)."""
        if self.state != "open":
            return
        first = len(self.t.recs)
        x = self.c.send("ping")
        self._wait(x, "ping", None, record=False)
        if unordered:
            got = self.t.recs[first:]
            got.sort(key=lambda r: (r.kind, getattr(r.obj, "path", "") or "",
                                    getattr(r.obj, "type", 0)))
            self.t.recs[first:] = [Rec("note", self.name,
                                       "events below sorted (order unspecified)")] + got

    def auth(self, scheme, credential, label=None):
        return self.op("auth", scheme, credential, label=label or f"auth {scheme}")

    def close(self, mask=None):
        """closeSession; records the reply and whether the socket was closed."""
        rep = self.op("closeSession", mask=mask)
        if rep is not None:
            self.t.closed_sessions.add(self.t.sids.get(self.session_id, self.name))
            closed = self.c.wait_closed(5.0)
            self._record_arrivals(len(self.c.arrivals))
            self._rec("conn", "after closeSession", extra="closed" if closed else "open")
        self.state = "closed"
        self.c.close()
        return rep

    def expect_closed(self, label, timeout=5.0, mask=None):
        """Record whether the server closes the connection within timeout."""
        if self.state not in ("open",):
            self._rec("conn", label, extra=self.state, mask=mask)
            return self.state == "closed"
        closed = self.c.wait_closed(timeout)
        self._record_arrivals(len(self.c.arrivals))
        self._rec("conn", label, extra="closed" if closed else "open", mask=mask)
        if closed:
            self.state = "closed"
        return closed

    def drop(self):
        """Close the socket without closing the session."""
        self.c.close()
        self.state = "closed"
        self._rec("note", "socket dropped by client")


class Trace:
    def __init__(self, port, scenario):
        self.port = port
        self.scenario = scenario
        self.root = "/" + scenario
        self.recs = []
        self.sessions = {}
        self.sids = {}             # session id -> name
        self.closed_sessions = set()
        self.base = None

    def p(self, *parts):
        return "/".join([self.root] + [s for s in parts if s])

    def note(self, text):
        self.recs.append(Rec("note", None, text))

    def session(self, name, timeout_ms=SESSION_TIMEOUT_MS, read_only=False, record=True,
                session_id=0, passwd=b"\x00" * 16, last_zxid=0):
        c = z.RawClient(self.port, timeout=REPLY_TIMEOUT)
        s = Session(self, name, c)
        try:
            res = c.connect(timeout_ms=timeout_ms, session_id=session_id, passwd=passwd,
                            last_zxid=last_zxid, read_only=read_only,
                            recv_timeout=REPLY_TIMEOUT)
        except (z.Closed, z.Timeout, z.DecodeError) as e:
            s.state = "closed" if isinstance(e, z.Closed) else "dead"
            self.recs.append(Rec("connect-failed", name, extra=type(e).__name__))
            self.sessions[name] = s
            return s
        s._seen = len(c.arrivals)
        if res.session_id and res.session_id not in self.sids:
            self.sids[res.session_id] = name
        s.session_id, s.passwd = res.session_id, res.passwd
        if record:
            self.recs.append(Rec("connect", name, None, res))
        self.sessions[name] = s
        return s

    def reconnect(self, old, new_name, passwd=None, **kw):
        """A new connection that resumes session `old` (by id and password)."""
        o = self.sessions[old]
        return self.session(new_name, session_id=o.session_id,
                            passwd=o.passwd if passwd is None else passwd, **kw)

    def cleanup(self):
        """Close every session still alive so that no session expires (and
        writes a closeSession transaction) during a later scenario. Not
        recorded."""
        done = set(self.closed_sessions)
        for name, s in list(self.sessions.items()):
            sid = s.session_id
            if not sid or self.sids.get(sid) in done:
                continue
            done.add(self.sids.get(sid))
            if s.state in ("stuck", "dead"):
                continue      # an unresponsive server: do not wait on it again
            try:
                if s.state == "open":
                    s.c.close_session(timeout=REPLY_TIMEOUT)
                    continue
            except Exception:
                pass
            try:
                c = z.RawClient(self.port, timeout=REPLY_TIMEOUT)
                res = c.connect(session_id=sid, passwd=s.passwd, recv_timeout=REPLY_TIMEOUT)
                if res.session_id:
                    c.close_session(timeout=REPLY_TIMEOUT)
                else:
                    c.close()
            except Exception:
                pass
        for s in self.sessions.values():
            s.c.close()


def last_zxid(port):
    """The server's last processed zxid: connect, ping, close. The probe's own
    createSession/closeSession transactions come before/after the value."""
    c = z.connect(port, timeout_ms=SESSION_TIMEOUT_MS, sock_timeout=REPLY_TIMEOUT)
    try:
        rep = c.ping(timeout=REPLY_TIMEOUT)
        c.close_session(timeout=REPLY_TIMEOUT)
        return rep.zxid
    finally:
        c.close()


def run_scenario(port, name, fn):
    t = Trace(port, name)
    try:
        t.base = last_zxid(port)
    except Exception as e:  # server not answering at all
        t.recs.append(Rec("aborted", None, "probe", extra=f"{type(e).__name__}: {e}"))
        return t
    try:
        fn(t)
    except Exception as e:
        t.recs.append(Rec("aborted", None, "scenario raised",
                          extra=f"{type(e).__name__}: {e}"))
    finally:
        try:
            t.cleanup()
        except Exception:
            pass
        t.sessions = {}     # sockets are closed; keep the trace plain data
    return t


# ---------------------------------------------------------------- formatting

MASK_NOTES = {
    # MASK(watch-zxid): 3.8 sends -1 as the zxid of a watch notification's
    # ReplyHeader; 3.9 sends the zxid of the transaction that triggered it.
    "watch-zxid": "3.8: -1, 3.9: triggering zxid",
    # MASK(multi-create2): inside a multi, 3.8 answers a create2 with a plain
    # create result (type 1, path only); 3.9 returns type 15 with path + Stat.
    "multi-create2": "3.8 create result / 3.9 create2 result with Stat",
    # MASK(exists-noread): exists on an existing node without READ permission:
    # 3.8 returns the Stat, 3.9 returns NOAUTH.
    "exists-noread": "3.8 OK+Stat / 3.9 NOAUTH",
    # MASK(unknown-opcode): after an unknown opcode 3.8 replies UNIMPLEMENTED
    # and closes the connection; Ferrokeeper replies UNIMPLEMENTED and keeps it.
    "unknown-opcode": "3.8 closes / Ferrokeeper keeps the connection",
    # MASK(check-success): a successful top-level check: ZooKeeper (3.8 and
    # 3.9) fails to serialise its reply and sends nothing, leaving the client
    # waiting; Ferrokeeper answers OK. Failures are compared unmasked.
    "check-success": "ZooKeeper: no reply / Ferrokeeper: OK",
    # MASK(zxid-gap): a multi with a null path: ZooKeeper allocates a zxid
    # for it, fails it before logging anything and never uses that zxid, so
    # its next transaction skips one; Ferrokeeper's zxids have no gaps.
    "zxid-gap": "ZooKeeper skips a zxid after a multi with a null path",
}


class Fmt:
    def __init__(self, trace, show_zxid):
        self.t = trace
        self.show_zxid = show_zxid

    def zx(self, v):
        if not self.show_zxid:
            return "z"
        if v is None:
            return "None"
        if v in (0, -1):
            return str(v)
        if self.t.base is None:
            return "z?"
        d = v - self.t.base
        return f"z{d:+d}"

    def sid(self, v):
        if v == 0:
            return "0"
        name = self.t.sids.get(v)
        return f"sid<{name}>" if name else "sid<unknown>"

    def time(self, v):
        return "0" if v == 0 else "T"

    def data(self, v):
        if v is None:
            return "null"
        try:
            s = v.decode("utf-8")
            return repr(s) if len(s) <= 80 else repr(s[:60]) + f"...({len(v)} bytes)"
        except UnicodeDecodeError:
            return "0x" + v.hex()

    def stat(self, s):
        if s is None:
            return "stat=None"
        return ("stat(cz={} mz={} ct={} mt={} v={} cv={} av={} owner={} len={} nc={} pz={})"
                .format(self.zx(s.czxid), self.zx(s.mzxid), self.time(s.ctime),
                        self.time(s.mtime), s.version, s.cversion, s.aversion,
                        self.sid(s.ephemeralOwner), s.dataLength, s.numChildren,
                        self.zx(s.pzxid)))

    def acl(self, acl):
        if acl is None:
            return "null"
        return "[" + ", ".join(f"{p}:{sch}:{i}" for p, sch, i in acl) + "]"

    def strings(self, items):
        if items is None:
            return "null"
        return repr(sorted(items))

    def multi_results(self, results, subops=None):
        out = []
        for i, r in enumerate(results):
            kind = r[0]
            req = subops[i] if subops and i < len(subops) else None
            if req == "create2" and kind in ("create", "create2"):
                # MASK(multi-create2): only the path is compared.
                out.append(f"create2-result(err={r[1]}, {r[2]!r}) [MASK multi-create2]")
            elif kind == "create":
                out.append(f"create(err={r[1]}, {r[2]!r})")
            elif kind in ("create2", "createTTL", "createContainer"):
                out.append(f"{kind}(err={r[1]}, {r[2]!r}, {self.stat(r[3])})")
            elif kind == "error":
                out.append(f"error(hdr={z.ERRORS.get(r[1], r[1])}, {z.ERRORS.get(r[2], r[2])})")
            elif kind in ("delete", "deleteContainer", "check"):
                out.append(f"{kind}(err={r[1]})")
            elif kind == "setData":
                out.append(f"setData(err={r[1]}, {self.stat(r[2])})")
            elif kind == "getData":
                out.append(f"getData(err={r[1]}, {self.data(r[2])}, {self.stat(r[3])})")
            elif kind == "getChildren":
                out.append(f"getChildren(err={r[1]}, {self.strings(r[2])})")
            elif kind == "end":
                out.append(f"end(type={r[1]}, err={r[2]})")
            else:
                out.append(repr(r))
        return "[" + ", ".join(out) + "]"

    def body(self, op, b, subops=None, unordered=False):
        if b is None:
            return ""
        if "undecodable" in b:
            return f"UNDECODABLE({b['undecodable']})"
        parts = []
        for k, v in b.items():
            if k == "stat":
                parts.append(self.stat(v))
            elif k == "data":
                parts.append("data=" + self.data(v))
            elif k == "acl":
                parts.append("acl=" + self.acl(sorted(v) if v and unordered else v))
            elif k in ("children", "ephemerals"):
                parts.append(f"{k}=" + self.strings(v))
            elif k == "results":
                parts.append("results=" + self.multi_results(v, subops))
            elif k == "clientInfo":
                # ZooKeeper keeps a connection's identities in a hash set:
                # the order is unspecified
                parts.append(f"clientInfo={sorted(v) if v is not None else None!r}")
            else:
                parts.append(f"{k}={v!r}")
        return " ".join(parts)

    def connect(self, r):
        pw = r.passwd
        if pw is None:
            pws = "null"
        elif pw == b"\x00" * len(pw):
            pws = f"zeros[{len(pw)}]"
        else:
            pws = f"bytes[{len(pw)}]"
        ro = "absent" if r.read_only is None else str(r.read_only)
        return (f"proto={r.protocol_version} timeout={r.timeout} session={self.sid(r.session_id)} "
                f"passwd={pws} readOnly={ro}")

    def line(self, rec):
        who = f"[{rec.sess}] " if rec.sess else ""
        k = rec.kind
        if k == "note":
            return f"{who}# {rec.label or ''}{(' ' + rec.extra) if rec.extra else ''}"
        if k == "connect":
            return f"{who}connect -> {self.connect(rec.obj)}"
        if k == "reply":
            r = rec.obj
            if rec.mask == "check-success" and r.err == 0:
                # MASK(check-success)
                return f"{who}{rec.label} -> <masked: {MASK_NOTES['check-success']}>"
            if rec.mask == "exists-noread":
                # MASK(exists-noread)
                return f"{who}{rec.label} -> <masked: {MASK_NOTES['exists-noread']}>"
            if rec.mask == "unknown-opcode" and r.err == -6:
                # MASK(unknown-opcode): UNIMPLEMENTED, or a close without reply
                return f"{who}{rec.label} -> UNIMPLEMENTED-or-closed [MASK unknown-opcode]"
            err = z.ERRORS.get(r.err, str(r.err))
            # MASK(zxid-gap): the zxid is not shown.
            zx = "<masked: zxid-gap>" if rec.mask == "zxid-gap" else self.zx(r.zxid)
            s = f"{who}{rec.label} -> {err} xid={self.xid(r.xid)} zxid={zx}"
            b = self.body(r.op, r.body, rec.extra, unordered=rec.mask == "unordered")
            if b:
                s += " " + b
            if r.tail:
                s += f" tail=0x{r.tail}"
            return s
        if k in ("event", "stray"):
            e = rec.obj
            if isinstance(e, z.WatchEvent):
                # MASK(watch-zxid): the notification header zxid is not shown.
                s = (f"{who}EVENT {e.typename} state={z.KEEPER_STATES.get(e.state, e.state)} "
                     f"path={e.path!r} err={e.err}")
                if getattr(e, "tail", ""):
                    s += f" tail=0x{e.tail}"
                return s
            err = z.ERRORS.get(e.err, str(e.err))
            return (f"{who}UNSOLICITED reply xid={e.xid} {err} zxid={self.zx(e.zxid)}"
                    + (f" 0x{e.raw[16:].hex()}" if len(e.raw) > 16 else ""))
        if k == "conn":
            if rec.mask == "unknown-opcode":
                # MASK(unknown-opcode)
                return f"{who}connection {rec.label}: <masked: {MASK_NOTES['unknown-opcode']}>"
            return f"{who}connection {rec.label}: {rec.extra}"
        if k == "no-reply" and rec.mask == "check-success":
            # MASK(check-success)
            return f"{who}{rec.label} -> <masked: {MASK_NOTES['check-success']}>"
        if k == "no-reply":
            return f"{who}{rec.label} -> NO REPLY ({rec.extra})"
        if k in ("timeout", "closed-before-reply", "send-failed", "skipped", "bad-frame",
                 "connect-failed", "aborted"):
            if rec.mask == "unknown-opcode" and k == "closed-before-reply":
                # MASK(unknown-opcode): UNIMPLEMENTED, or a close without reply
                return f"{who}{rec.label} -> UNIMPLEMENTED-or-closed [MASK unknown-opcode]"
            return f"{who}{rec.label or ''} -> {k.upper()}{(' ' + rec.extra) if rec.extra else ''}"
        return f"{who}{k} {rec.label} {rec.extra}"

    def xid(self, x):
        return str(x)

    def lines(self):
        return [self.line(r) for r in self.t.recs]


def render(trace, show_zxid=True):
    return Fmt(trace, show_zxid).lines()


def compare(ref, cand, ref_name="zookeeper-3.8", cand_name="candidate"):
    """Returns None when equal, else a readable report (structure first, then
    zxid offsets)."""
    for show_zxid, what in ((False, "structure (zxids hidden)"), (True, "zxid offsets")):
        a, b = render(ref, show_zxid), render(cand, show_zxid)
        if a != b:
            diff = difflib.unified_diff(a, b, fromfile=ref_name, tofile=cand_name,
                                        lineterm="", n=3)
            return f"scenario {ref.scenario}: traces differ in {what}\n" + "\n".join(diff)
    return None
