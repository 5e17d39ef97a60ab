"""Crash loop: Ferrokeeper under concurrent write load is killed with SIGKILL
at a random moment, restarted on the same dataDir, and its whole tree is
checked against a model of the acknowledged history.

Each of WORKERS threads drives its own session over the raw protocol, with up
to WINDOW requests pipelined, on its own subtree /d/w<N> (persistent,
sequential, multi-created and large "blob" nodes; setData and delete with
version checks; requests that must fail) plus ephemerals /e/w<N>-<sid>-<n>.
Every request's effect is predicted when it is sent (the server applies a
session's requests in order, and nobody else touches the subtree), every
reply is checked against the prediction, and acknowledged effects go into the
worker's confirmed model.

After a kill the requests without a reply are "in flight". The recovered
state must be the confirmed model plus a prefix (per session, in send order)
of the in-flight requests: an acknowledged write is present with exactly the
acknowledged data, version, zxids and times; an unacknowledged one is fully
present or absent (a multi's two nodes both or neither), and never present
when a later one of the same session is absent. The whole tree must equal the
model: nothing missing, nothing extra. Sessions survive the restart: worker 0
re-attaches to its session every iteration (passing the last zxid it saw, so a
server that lost acknowledged zxids refuses it); the other sessions are
abandoned, their ephemerals stay until they expire (all of a session's at
once, never coming back), and at the end all of them must expire.

CRASH_ITERATIONS (default 50) sets the number of kills; CRASH_TERM_ITERATIONS
(default 10) the number of SIGTERM stops under load that follow them (same
checks: a graceful shutdown may answer more requests, never lose any);
CRASH_SEED the seed.
"""
import copy
import dataclasses
import os
import random
import threading
import time
import traceback
from typing import Optional

import pytest

import zkraw
from dhelpers import BADVERSION, NODEEXISTS, connect, dump_tree, read_tree, wait_for

ITERATIONS = int(os.environ.get("CRASH_ITERATIONS", "50"))
# Then as many iterations again stopped with SIGTERM under load (graceful shutdown).
TERM_ITERATIONS = int(os.environ.get("CRASH_TERM_ITERATIONS", "10"))
WORKERS = 4
WINDOW = 6
SESSION_TIMEOUT_MS = 6000
MAX_KEYS = 40
EPH_PER_SESSION = 4
BLOB_SIZE = 128 * 1024
SNAP_COUNT = 200
RETAIN = 3
LOAD_MIN, LOAD_MAX = 0.3, 1.5
TIME_SLACK_MS = 3000

pytestmark = pytest.mark.timeout(120 + 6 * (ITERATIONS + TERM_ITERATIONS))


def now_ms():
    return int(time.time() * 1000)


def parent_of(path):
    return path.rsplit("/", 1)[0] or "/"


@dataclasses.dataclass
class MNode:
    data: bytes
    version: int = 0
    czxid: Optional[int] = None
    mzxid: Optional[int] = None
    ctime: Optional[int] = None
    mtime: Optional[int] = None
    owner: int = 0
    creates: int = 0          # stored cversion: creates of children
    pzxid: Optional[int] = None
    tracked: bool = True      # cversion/pzxid checked (false for /d and /e)


@dataclasses.dataclass
class Op:
    kind: str                 # create seq eph blob multi set delete badset badmulti dupcreate
    path: str
    data: bytes = b""
    version: int = -1
    session: int = 0
    path2: Optional[str] = None
    expect_err: int = 0
    xid: Optional[int] = None
    zxid: Optional[int] = None
    stat: object = None


def apply_op(model, op, known):
    """Applies the predicted effect of `op` to `model`. Without `known`
    (an in-flight op) the zxids and times it set are unknown (None)."""
    if op.expect_err:
        return
    z = op.zxid if known else None
    st = op.stat if known else None
    k = op.kind
    if k in ("create", "seq", "eph", "blob", "multi"):
        paths = [op.path] if k != "multi" else [op.path, op.path2]
        for p in paths:
            model[p] = MNode(op.data, 0, czxid=z, mzxid=z,
                             ctime=st.ctime if st is not None else None,
                             mtime=st.mtime if st is not None else None,
                             owner=op.session if k == "eph" else 0, pzxid=z)
            parent = model.get(parent_of(p))
            if parent is not None:
                parent.creates += 1
                parent.pzxid = z
    elif k == "set":
        n = model[op.path]
        n.data = op.data
        n.version += 1
        n.mzxid = z
        n.mtime = st.mtime if st is not None else None
    elif k == "delete":
        del model[op.path]
        parent = model.get(parent_of(op.path))
        if parent is not None:
            parent.pzxid = z
    else:
        raise AssertionError(f"unknown op {k}")


class Worker(threading.Thread):
    def __init__(self, idx, port, submodel, rng, iteration, counter, session=None, last_zxid=0):
        super().__init__(daemon=True, name=f"worker-{idx}")
        self.idx = idx
        self.port = port
        self.prefix = f"/d/w{idx}"
        self.confirmed = copy.deepcopy(submodel)
        self.pred = copy.deepcopy(submodel)
        self.rng = rng
        self.iteration = iteration
        self.counter = counter
        self.reattach = session          # (sid, passwd) to re-attach to
        self.last_zxid = last_zxid
        self.session_id = None
        self.passwd = None
        self.connected = threading.Event()
        self.inflight = []               # sent, no reply yet (send order)
        self.acked = 0
        self.max_zxid = 0
        self.failure = None
        self.end = None
        self.kinds = {}

    # ---- op generation, against the predicted model
    def _new_data(self, n, size=None):
        tag = f"w{self.idx}i{self.iteration}o{n}:".encode()
        if size is None:
            size = self.rng.randrange(0, 200)
        body = self.rng.randbytes(size)
        if self.rng.random() < 0.2:
            body += b"\x00" * self.rng.randrange(1, 16)   # records ending in zeros
        return tag + body

    def _keys(self):
        pre = self.prefix + "/"
        return sorted(p for p in self.pred if p.startswith(pre))

    def next_op(self):
        self.counter[self.idx] += 1
        n = self.counter[self.idx]
        keys = self._keys()
        blobs = [k for k in keys if k.startswith(self.prefix + "/b")]
        neph = sum(1 for p, m in self.pred.items() if m.owner == self.session_id and m.owner)
        room = len(keys) < MAX_KEYS - 1
        weights = {
            "create": 20 if room else 0,
            "seq": 8 if room else 0,
            "multi": 8 if room else 0,
            "set": 30 if keys else 0,
            "delete": (10 + (30 if len(keys) > MAX_KEYS * 3 // 4 else 0)) if keys else 0,
            "eph": 4 if neph < EPH_PER_SESSION else 0,
            "badset": 3 if keys else 0,
            "badmulti": 3 if keys else 0,
            "dupcreate": 2 if keys else 0,
            "blob": 1 if not blobs and room else 0,
            "blobdel": 25 if blobs else 0,
        }
        kind = self.rng.choices(list(weights), weights=list(weights.values()))[0]
        parent = self.pred[self.prefix]
        if kind == "create":
            op = Op("create", f"{self.prefix}/k{n}", self._new_data(n))
        elif kind == "seq":
            op = Op("seq", f"{self.prefix}/s-{parent.creates:010d}", self._new_data(n))
        elif kind == "blob":
            op = Op("blob", f"{self.prefix}/b{n}", self._new_data(n, BLOB_SIZE))
        elif kind == "multi":
            op = Op("multi", f"{self.prefix}/m{n}a", self._new_data(n), path2=f"{self.prefix}/m{n}b")
        elif kind == "eph":
            op = Op("eph", f"/e/w{self.idx}-{self.session_id & (2**64 - 1):x}-{n}", self._new_data(n),
                    session=self.session_id)
        elif kind == "set":
            p = self.rng.choice([k for k in keys if k not in blobs] or keys)
            op = Op("set", p, self._new_data(n), version=self.pred[p].version)
        elif kind in ("delete", "blobdel"):
            p = self.rng.choice(blobs if kind == "blobdel" else keys)
            op = Op("delete", p, version=self.pred[p].version)
        elif kind == "badset":
            p = self.rng.choice(keys)
            op = Op("badset", p, self._new_data(n), version=self.pred[p].version + 1 + self.rng.randrange(5),
                    expect_err=BADVERSION)
        elif kind == "badmulti":
            p = self.rng.choice(keys)
            op = Op("badmulti", p, self._new_data(n), version=self.pred[p].version + 3,
                    path2=f"{self.prefix}/x{n}", expect_err=BADVERSION)
        else:  # dupcreate
            op = Op("dupcreate", self.rng.choice(keys), self._new_data(n), expect_err=NODEEXISTS)
        self.kinds[op.kind] = self.kinds.get(op.kind, 0) + 1
        apply_op(self.pred, op, known=False)
        return op

    def send(self, c, op):
        if op.kind in ("create", "seq", "blob", "dupcreate"):
            path = op.path.rsplit("-", 1)[0] + "-" if op.kind == "seq" else op.path
            flags = zkraw.PERSISTENT_SEQUENTIAL if op.kind == "seq" else zkraw.PERSISTENT
            op.xid = c.send("create2", path, op.data, None, flags)
        elif op.kind == "eph":
            op.xid = c.send("create2", op.path, op.data, None, zkraw.EPHEMERAL)
        elif op.kind in ("set", "badset"):
            op.xid = c.send("setData", op.path, op.data, op.version)
        elif op.kind == "delete":
            op.xid = c.send("delete", op.path, op.version)
        elif op.kind == "multi":
            op.xid = c.send("multi", [zkraw.multi_op("create", op.path, op.data),
                                      zkraw.multi_op("create", op.path2, op.data)])
        elif op.kind == "badmulti":
            op.xid = c.send("multi", [zkraw.multi_op("check", op.path, op.version),
                                      zkraw.multi_op("create", op.path2, op.data)])

    # ---- reply checking
    def check_reply(self, op, r):
        """None if the reply is what the prediction says, else a message."""
        if r.xid != op.xid:
            return f"reply xid {r.xid} but the oldest outstanding request has xid {op.xid}"
        if op.kind == "badmulti":
            if r.err == BADVERSION:
                return None
            if r.err == 0 and r.body and any(x[0] == "error" and x[1] == BADVERSION for x in r.body["results"]) \
                    and not any(x[0] == "create" for x in r.body["results"]):
                return None
            return f"failing multi answered {r}"
        if op.expect_err:
            return None if r.err == op.expect_err else f"expected error {op.expect_err}, got {r}"
        if r.err != 0:
            return f"expected success, got {r}"
        if r.zxid <= self.max_zxid:
            return f"write zxid 0x{r.zxid:x} not above the previous 0x{self.max_zxid:x}"
        op.zxid = r.zxid
        if op.kind in ("create", "seq", "blob", "eph"):
            st = r.body["stat"]
            op.stat = st
            owner = op.session if op.kind == "eph" else 0
            if r.body["path"] != op.path:
                return f"created {r.body['path']} where {op.path} was predicted"
            if (st.czxid, st.mzxid, st.version, st.ephemeralOwner, st.dataLength) != \
                    (r.zxid, r.zxid, 0, owner, len(op.data)):
                return f"create stat {st} for zxid 0x{r.zxid:x}"
        elif op.kind == "set":
            st = r.body["stat"]
            op.stat = st
            if (st.mzxid, st.version, st.dataLength) != (r.zxid, op.version + 1, len(op.data)):
                return f"setData stat {st} for zxid 0x{r.zxid:x}, version {op.version}"
        elif op.kind == "multi":
            res = r.body["results"] if r.body else None
            if not res or [x[:3] for x in res[:2]] != [("create", 0, op.path), ("create", 0, op.path2)]:
                return f"multi answered {r}"
        return None

    def run(self):
        c = None
        try:
            if self.reattach:
                sid, pw = self.reattach
                c = connect(self.port, SESSION_TIMEOUT_MS, sid, pw, self.last_zxid, sock_timeout=10)
                res = c.connect_result
                if res.session_id != sid or res.timeout <= 0:
                    self.failure = (f"re-attaching to session 0x{sid & (2**64 - 1):x} after the restart was "
                                    f"refused: {res}")
                    return
            else:
                c = connect(self.port, SESSION_TIMEOUT_MS, last_zxid=self.last_zxid, sock_timeout=10)
                if c.connect_result.timeout <= 0 or c.connect_result.session_id == 0:
                    self.failure = f"new session refused (lastZxidSeen 0x{self.last_zxid:x}): {c.connect_result}"
                    return
            self.session_id = c.connect_result.session_id
            self.passwd = c.connect_result.passwd
        except (zkraw.Closed, zkraw.Timeout, OSError) as e:
            self.failure = f"could not connect/re-attach (lastZxidSeen 0x{self.last_zxid:x}): {e!r}"
            return
        self.connected.set()
        self.max_zxid = self.last_zxid
        try:
            sending = True
            while True:
                while sending and len(self.inflight) < WINDOW:
                    op = self.next_op()
                    self.inflight.append(op)     # before sending: a failed send is still "in flight"
                    try:
                        self.send(c, op)
                    except OSError:
                        sending = False          # the server is going: still read what it answered
                if not self.inflight:
                    break
                try:
                    r = c.read_one(timeout=8.0 if sending else 3.0)
                except zkraw.Timeout:
                    if sending:
                        self.failure = f"no reply within 8s ({len(self.inflight)} outstanding)"
                    break
                except (zkraw.Closed, OSError):
                    break                        # the server was killed or stopped
                if isinstance(r, zkraw.WatchEvent):
                    self.failure = f"unexpected notification {r}"
                    return
                op = self.inflight.pop(0)
                msg = self.check_reply(op, r)
                if msg:
                    self.failure = f"{op.kind} {op.path}: {msg}"
                    return
                if not op.expect_err:
                    apply_op(self.confirmed, op, known=True)
                self.acked += 1
                if not op.expect_err:
                    self.max_zxid = r.zxid
        except Exception:
            self.failure = traceback.format_exc()
        finally:
            self.end = now_ms()
            c.close()


# ------------------------------------------------------------------ checking


def scope_of(idx, path, sessions):
    """Whether path is in worker idx's checked scope: its subtree, and the
    ephemerals of its current session(s)."""
    pre = f"/d/w{idx}"
    if path == pre or path.startswith(pre + "/"):
        return True
    return any(path.startswith(f"/e/w{idx}-{s & (2**64 - 1):x}-") for s in sessions)


def identity_diff(sim, observed, paths_filter):
    """Differences in what the ops decide (paths, data, versions, owners,
    child counts), ignoring zxids and times."""
    out = []
    counts = {}
    for p in sim:
        counts[parent_of(p)] = counts.get(parent_of(p), 0) + 1
    sp = {p for p in sim if paths_filter(p)}
    op_ = {p for p in observed if paths_filter(p)}
    for p in sorted(sp - op_):
        out.append(f"missing {p}")
    for p in sorted(op_ - sp):
        out.append(f"unexpected {p}")
    for p in sorted(sp & op_):
        m, o = sim[p], observed[p]
        if m.data != o.data:
            out.append(f"{p}: data {o.data[:24]!r} expected {m.data[:24]!r}")
        if m.version != o.stat.version:
            out.append(f"{p}: version {o.stat.version} expected {m.version}")
        if m.owner != o.stat.ephemeralOwner:
            out.append(f"{p}: ephemeralOwner {o.stat.ephemeralOwner:#x} expected {m.owner:#x}")
        nch = counts.get(p, 0)
        if o.stat.numChildren != nch:
            out.append(f"{p}: numChildren {o.stat.numChildren} expected {nch}")
        if m.tracked and o.stat.cversion != 2 * m.creates - nch:
            out.append(f"{p}: cversion {o.stat.cversion} expected {2 * m.creates - nch}")
    return out


def stat_check(model, observed, zxid_lo, zxid_hi, t_lo, t_hi):
    """Compares zxids and times: known ones exactly, unknown ones (set by
    in-flight ops) within bounds, then adopted into the model."""
    out = []
    for p, m in model.items():
        o = observed.get(p)
        if o is None:
            continue
        st = o.stat
        for field, attr, lo, hi in (("czxid", "czxid", zxid_lo, zxid_hi), ("mzxid", "mzxid", zxid_lo, zxid_hi),
                                    ("ctime", "ctime", t_lo, t_hi), ("mtime", "mtime", t_lo, t_hi)):
            want = getattr(m, attr)
            got = getattr(st, field)
            if want is None:
                if not lo <= got <= hi:
                    out.append(f"{p}: {field} {got} outside [{lo}, {hi}] of the in-flight window")
                setattr(m, attr, got)
            elif want != got:
                out.append(f"{p}: {field} {got} where {want} was acknowledged")
        if m.tracked:
            if m.pzxid is None:
                if not zxid_lo <= st.pzxid <= zxid_hi:
                    out.append(f"{p}: pzxid {st.pzxid:#x} outside the in-flight window")
                m.pzxid = st.pzxid
            elif m.pzxid != st.pzxid:
                out.append(f"{p}: pzxid {st.pzxid:#x} where {m.pzxid:#x} was acknowledged")
        if st.aversion != 0 or st.dataLength != len(o.data or b""):
            out.append(f"{p}: stat {st}")
        if m.ctime is not None and m.mtime is not None and m.mtime < m.ctime:
            out.append(f"{p}: mtime before ctime")
    return out


def test_crash_loop(make_server, report):
    seed = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    srv = make_server(props={"zookeeper.snapCount": str(SNAP_COUNT), "zookeeper.preAllocSize": "64"},
                      extra_cfg={"autopurge.snapRetainCount": str(RETAIN)})
    t_start = time.monotonic()

    # --- setup: /d, /e, /d/w<N>
    model = {}
    c = connect(srv.port)
    for p in ["/d", "/e"] + [f"/d/w{i}" for i in range(WORKERS)]:
        r = c.call("create2", p, b"", None, 0)
        assert r.err == 0, r
        st = r.body["stat"]
        model[p] = MNode(b"", 0, st.czxid, st.mzxid, st.ctime, st.mtime, pzxid=st.pzxid,
                         tracked=p.startswith("/d/w"))
        if parent_of(p) in model:
            model[parent_of(p)].creates += 1
    c.close_session()
    system = {p: v for p, v in dump_tree(srv.port).items()
              if p == "/" or p == "/zookeeper" or p.startswith("/zookeeper/")}

    counter = [0] * WORKERS
    w0_session = None
    max_acked = 0
    stats = dict(acked=0, inflight=0, inflight_applied=0, expired_during_loop=0, kinds={})
    seen_segments = set(p for _, p in srv.segments())
    rolls = purges = 0
    max_snapshots = 0
    max_disk = 0
    restart_times = []
    iteration = 0
    last_restart_mono = time.monotonic()
    try:
        for iteration in range(ITERATIONS + TERM_ITERATIONS):
            how = "kill" if iteration < ITERATIONS else "term"
            it_start = now_ms()
            workers = []
            for i in range(WORKERS):
                sessions_i = [w0_session[0]] if (i == 0 and w0_session) else []
                sub = {p: m for p, m in model.items() if scope_of(i, p, sessions_i)}
                w = Worker(i, srv.port, sub, random.Random(rng.random()), iteration, counter,
                           session=w0_session if i == 0 else None, last_zxid=max_acked)
                workers.append(w)
                w.start()
            for w in workers:
                if not w.connected.wait(10) and not w.failure:
                    w.failure = "did not connect within 10s"
            bad = [w.failure for w in workers if w.failure]
            assert not bad, f"iteration {iteration}: {bad}"
            time.sleep(rng.uniform(LOAD_MIN, LOAD_MAX))
            killed_at = now_ms()
            killed_mono = time.monotonic()
            if how == "kill":
                srv.kill()
            else:
                srv.stop()
                assert srv.proc.returncode != -9, f"iteration {iteration}: no exit within 10s of SIGTERM"
            for w in workers:
                w.join(15)
                assert not w.is_alive(), f"iteration {iteration}: worker {w.idx} did not stop"
            bad = [f"worker {w.idx}: {w.failure}" for w in workers if w.failure]
            assert not bad, f"iteration {iteration} (seed {seed}): {bad}"

            t0 = time.monotonic()
            srv.start(timeout=20)
            restart_times.append(time.monotonic() - t0)
            restarted_mono = time.monotonic()

            # --- read the recovered tree
            vc = connect(srv.port)
            observed = read_tree(vc, "/")
            vc.close_session(timeout=5)
            read_s = time.monotonic() - restarted_mono
            # Every session got a full timeout at the restart: read before it
            # ends, the tree must still hold all their ephemerals.
            assert read_s < SESSION_TIMEOUT_MS / 1000, \
                f"iteration {iteration}: reading the tree took {read_s:.1f}s, too long to check sessions"
            last_zxid = srv.srvr_zxid()
            acked_hi = max(w.max_zxid for w in workers)
            assert last_zxid >= acked_hi, (f"iteration {iteration}: recovered zxid 0x{last_zxid:x} is below the "
                                           f"acknowledged zxid 0x{acked_hi:x}")
            max_acked = max(max_acked, acked_hi)

            # --- system nodes untouched
            for p, v in system.items():
                if p == "/":
                    continue
                assert p in observed and observed[p].data == v.data and observed[p].stat == v.stat, \
                    f"iteration {iteration}: system node {p} changed"

            # --- per worker: confirmed model + a prefix of its in-flight ops
            current_sessions = set()
            errors = []
            for w in workers:
                current_sessions.add(w.session_id)
                sess = [w.session_id]
                flt = (lambda p, i=w.idx, s=sess: scope_of(i, p, s))
                chosen = None
                diffs = {}
                for k in range(len(w.inflight), -1, -1):
                    sim = copy.deepcopy(w.confirmed)
                    for op in w.inflight[:k]:
                        apply_op(sim, op, known=False)
                    d = identity_diff(sim, observed, flt)
                    if not d:
                        chosen = (k, sim)
                        break
                    diffs[k] = d
                if chosen is None:
                    best = min(diffs, key=lambda k: (len(diffs[k]), -k))
                    detail = (f"closest is {best} in-flight ops applied, still differing: {diffs[best][:6]}; "
                              f"differences with 0..{len(w.inflight)} applied: "
                              f"{[len(diffs[k]) for k in sorted(diffs)]}")
                    ops = [(o.kind, o.path, o.path2) for o in w.inflight]
                    errors.append(f"worker {w.idx}: recovered state is not the acknowledged history plus a "
                                  f"prefix of the in-flight ops {ops}: {detail}")
                    continue
                k, sim = chosen
                stats["acked"] += w.acked
                stats["inflight"] += len(w.inflight)
                stats["inflight_applied"] += k
                stats[f"applied_unanswered_{how}"] = stats.get(f"applied_unanswered_{how}", 0) + \
                    sum(1 for o in w.inflight[:k] if not o.expect_err)
                for kind, n in w.kinds.items():
                    stats["kinds"][kind] = stats["kinds"].get(kind, 0) + n
                for p in [p for p in model if flt(p)]:
                    del model[p]
                model.update(sim)
                # zxids and times of the in-flight ops that were applied
                sub = {p: m for p, m in model.items() if flt(p)}
                errors += [f"worker {w.idx}: {e}" for e in
                           stat_check(sub, observed, w.max_zxid + 1 if k else 0, last_zxid,
                                      it_start - TIME_SLACK_MS, killed_at + TIME_SLACK_MS)]
            assert not errors, f"iteration {iteration} (seed {seed}):\n" + "\n".join(errors[:30])

            # --- abandoned sessions: all of their ephemerals or none
            for attempt in range(3):
                partial = []
                gone = []
                owners = {}
                for p, m in model.items():
                    if m.owner and m.owner not in current_sessions:
                        owners.setdefault(m.owner, []).append(p)
                for sid, paths in owners.items():
                    present = [p for p in paths if p in observed]
                    if not present:
                        gone.append(sid)
                    elif len(present) != len(paths):
                        partial.append((sid, sorted(set(paths) - set(present))))
                if not partial:
                    break
                time.sleep(0.5)
                vc = connect(srv.port)
                observed = read_tree(vc, "/")
                vc.close_session(timeout=5)
            assert not partial, f"iteration {iteration}: sessions lost only some ephemerals: {partial[:3]}"
            # Abandoned sessions get a full timeout at each restart: none can
            # expire unless the server ran that long since the last one.
            uptime = killed_mono - last_restart_mono
            assert not gone or uptime >= SESSION_TIMEOUT_MS / 1000, \
                (f"iteration {iteration}: the ephemerals of abandoned sessions {[hex(g) for g in gone]} vanished "
                 f"although the server ran only {uptime:.1f}s since its last start ({SESSION_TIMEOUT_MS} ms "
                 f"sessions): {[owners[g] for g in gone][:2]}")
            for sid in gone:
                stats["expired_during_loop"] += 1
                for p in owners[sid]:
                    del model[p]

            # --- the whole tree equals the model
            want = set(model) | set(system)
            got = set(observed)
            assert got == want, (f"iteration {iteration}: missing {sorted(want - got)[:10]}, "
                                 f"unexpected {sorted(got - want)[:10]}")
            errors = identity_diff(model, observed, lambda p: p not in system)
            errors += stat_check(model, observed, 0, last_zxid, 0, killed_at + TIME_SLACK_MS)
            assert not errors, f"iteration {iteration}:\n" + "\n".join(errors[:30])

            # --- files
            segs = set(p for _, p in srv.segments())
            rolls += len(segs - seen_segments)
            purges += len(seen_segments - segs)
            seen_segments = segs
            nsnap = len(srv.snapshots())
            max_snapshots = max(max_snapshots, nsnap)
            assert nsnap <= RETAIN + 1, f"iteration {iteration}: {nsnap} snapshots kept (retain {RETAIN})"
            max_disk = max(max_disk, srv.disk_usage())

            w0 = workers[0]
            w0_session = (w0.session_id, w0.passwd)
            last_restart_mono = restarted_mono
    finally:
        report(f"crash loop: seed {seed}, {iteration + 1} of {ITERATIONS} + {TERM_ITERATIONS} iterations reached, "
               f"{time.monotonic() - t_start:.1f}s")

    # --- every abandoned session expires after the last restart
    n_eph = sum(1 for m in model.values() if m.owner)
    deadline_s = SESSION_TIMEOUT_MS / 1000 + 2 * 2 + 6

    def no_ephemerals():
        vc = connect(srv.port)
        try:
            r = vc.call("getChildren", "/e", False)
        finally:
            vc.close_session(timeout=5)
        return r.err == 0 and not r.body["children"]

    wait_for(no_ephemerals, deadline_s, interval=0.5,
             what=f"{n_eph} ephemerals of abandoned sessions to expire after the restart")
    expiry_s = time.monotonic() - last_restart_mono
    for p in [p for p, m in model.items() if m.owner]:
        del model[p]
    observed = dump_tree(srv.port)
    assert set(observed) == set(model) | set(system)
    assert not identity_diff(model, observed, lambda p: p not in system)

    # --- and everything survives one more (clean) restart
    srv.restart("term")
    observed = dump_tree(srv.port)
    assert set(observed) == set(model) | set(system)
    errors = identity_diff(model, observed, lambda p: p not in system) + \
        stat_check({p: m for p, m in model.items() if p != "/e"}, observed, 0, 1 << 62, 0, 1 << 62)
    assert not errors, errors[:20]

    report(f"crash loop: {ITERATIONS} SIGKILLs and {TERM_ITERATIONS} SIGTERMs under load, all recovered correctly; "
           f"{stats['acked']} acknowledged requests, {stats['inflight']} in flight at kills of which "
           f"{stats['inflight_applied']} were found applied (writes applied but not answered: "
           f"{stats.get('applied_unanswered_kill', 0)} at SIGKILLs, {stats.get('applied_unanswered_term', 0)} at "
           f"SIGTERMs); ops {dict(sorted(stats['kinds'].items()))}; "
           f"restart time avg {sum(restart_times) / len(restart_times):.2f}s max {max(restart_times):.2f}s; "
           f"{len(model)} znodes at the end; {n_eph} abandoned ephemerals expired {expiry_s:.1f}s after the "
           f"last restart ({stats['expired_during_loop']} sessions expired during the loop); "
           f"log segments created {rolls}, purged {purges}, now {len(srv.segments())}; "
           f"max snapshots kept {max_snapshots}; max disk use {max_disk / 1e6:.1f} MB; "
           f"final zxid 0x{srv.srvr_zxid():x}")
