"""Helpers of the durability suite: a Ferrokeeper server wrapper that knows
its data files, a pipelined full-tree reader over the raw protocol, a reader
of Ferrokeeper log segments (with a CRC32C of its own), and small utilities.

Everything is bounded in time; every process runs on 127.0.0.1.
"""
import os
import re
import shutil
import struct
import subprocess
import time
from collections import namedtuple

import zkharness
import zkraw

NONODE = -101
BADVERSION = -103
NODEEXISTS = -110

SYSTEM_PREFIX = "/zookeeper"

# --------------------------------------------------------------- CRC32C


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as the log records carry it."""
    c = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# --------------------------------------------------------------- log segments

LOG_MAGIC = b"FKLG"
LOG_HEADER = 16
Record = namedtuple("Record", "offset length crc zxid payload")
Segment = namedtuple("Segment", "path first_zxid records end bad size last_nonzero")


def parse_segment(path, verify_crc=True):
    """Walks a segment's records from its header. `end` is the offset just
    past the last good record; `bad` the offset of the first bad one (None
    when the data ends with the zero fill)."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != LOG_MAGIC:
        raise ValueError(f"{path}: not a Ferrokeeper log segment")
    (_version, first) = struct.unpack(">Iq", b[4:16])
    off = LOG_HEADER
    records = []
    bad = None
    expected = first
    while True:
        if off + 8 > len(b):
            if any(b[off:]):
                bad = off
            break
        ln, crc = struct.unpack(">II", b[off:off + 8])
        if ln == 0 and crc == 0:
            break
        payload = b[off + 8:off + 8 + ln]
        if ln < 8 or len(payload) != ln or (verify_crc and crc32c(payload) != crc):
            bad = off
            break
        (zxid,) = struct.unpack(">q", payload[:8])
        if zxid != expected:
            bad = off
            break
        records.append(Record(off, ln, crc, zxid, payload))
        expected += 1
        off += 8 + ln
    last_nonzero = len(b.rstrip(b"\x00")) - 1
    return Segment(path, first, records, off, bad, len(b), last_nonzero)


def encode_record(payload):
    return struct.pack(">II", len(payload), crc32c(payload)) + payload


def with_zxid(payload, zxid):
    return struct.pack(">q", zxid) + payload[8:]


# --------------------------------------------------------------- server


class DurableServer(zkharness.Server):
    """A Ferrokeeper server on a fixed port and dataDir across restarts."""

    def __init__(self, props=None, extra_cfg=None, tick_time_ms=2000, separate_log_dir=False):
        super().__init__("ferrokeeper", extra_cfg=extra_cfg, props=props, tick_time_ms=tick_time_ms)
        self.log_dir = (extra_cfg or {}).get("dataLogDir", self.data_dir)
        if separate_log_dir:
            self.log_dir = os.path.join(self.dir, "datalog")
            os.makedirs(self.log_dir)
            with open(self.cfg_path, "a") as f:
                f.write(f"dataLogDir={self.log_dir}\n")
        self.start_times = []

    def start(self, timeout=20.0):
        t0 = time.monotonic()
        super().start(timeout=timeout)
        self.start_times.append(time.monotonic() - t0)
        return self

    def kill(self):
        super().kill()
        if self.proc in zkharness._live:
            zkharness._live.remove(self.proc)

    def restart(self, how="kill"):
        if how == "kill":
            self.kill()
        else:
            self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def snapshots(self):
        """[(zxid, path)] oldest first."""
        out = []
        for name in os.listdir(self.data_dir):
            m = re.fullmatch(r"snapshot\.([0-9a-f]{16})", name)
            if m:
                out.append((int(m.group(1), 16), os.path.join(self.data_dir, name)))
        return sorted(out)

    def segments(self):
        """[(first zxid, path)] oldest first."""
        out = []
        for name in os.listdir(self.log_dir):
            m = re.fullmatch(r"log\.([0-9a-f]{16})", name)
            if m:
                out.append((int(m.group(1), 16), os.path.join(self.log_dir, name)))
        return sorted(out)

    def disk_usage(self):
        total = 0
        for d in {self.data_dir, self.log_dir}:
            for name in os.listdir(d):
                p = os.path.join(d, name)
                if os.path.isfile(p):
                    total += os.stat(p).st_blocks * 512
        return total

    def srvr_zxid(self):
        answer = zkharness.four_letter(self.port, "srvr", timeout=5.0)
        m = re.search(r"Zxid: 0x([0-9a-fA-F]+)", answer)
        assert m, f"no Zxid in srvr answer: {answer!r}"
        return int(m.group(1), 16)

    def start_expect_exit(self, timeout=15.0):
        """Starts the server expecting it to refuse: returns (returncode,
        output); returncode None if it served clients instead (answered
        ruok) or was still running after `timeout`; it is then killed."""
        out_path = os.path.join(self.dir, "refused.out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + timeout
        rc = None
        try:
            while time.monotonic() < deadline:
                rc = proc.poll()
                if rc is not None:
                    break
                try:
                    if zkharness.four_letter(self.port, "ruok", timeout=0.5).startswith("imok"):
                        break
                except OSError:
                    pass
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
        with open(out_path, "rb") as f:
            return rc, f.read().decode("utf-8", "replace")

    def close(self):
        self.stop()
        if os.environ.get("DURABILITY_KEEP"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_tool(args, timeout=60.0):
    """Runs `ferrokeeper <args>`; returns (returncode, stdout, stderr)."""
    p = subprocess.run([zkharness.ferrokeeper_bin()] + list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------- raw client use


def connect(port, timeout_ms=10000, session_id=0, passwd=b"\x00" * 16, last_zxid=0, sock_timeout=10.0):
    c = zkraw.RawClient(port, timeout=sock_timeout)
    c.connect(timeout_ms=timeout_ms, session_id=session_id, passwd=passwd, last_zxid=last_zxid)
    return c


def pipelined(client, requests, window=128, timeout=20.0):
    """Sends [(opname, args...)] keeping at most `window` outstanding;
    returns the replies in request order."""
    deadline = time.monotonic() + timeout
    replies = []
    outstanding = []
    it = iter(requests)
    done = False
    while True:
        while not done and len(outstanding) < window:
            try:
                req = next(it)
            except StopIteration:
                done = True
                break
            outstanding.append(client.send(req[0], *req[1:]))
        if not outstanding:
            return replies
        left = deadline - time.monotonic()
        if left <= 0:
            raise zkraw.Timeout("pipelined requests took too long")
        replies.append(client.wait_reply(outstanding.pop(0), timeout=left))


NodeView = namedtuple("NodeView", "data stat children")


def read_tree(client, root="/", timeout=30.0):
    """{path: NodeView} of everything under root (root included), read
    level by level with pipelined getData + getChildren. Nodes that vanish
    while being read are left out."""
    deadline = time.monotonic() + timeout
    out = {}
    level = [root]
    while level:
        reqs = []
        for p in level:
            reqs.append(("getData", p, False))
            reqs.append(("getChildren", p, False))
        reps = pipelined(client, reqs, timeout=max(1.0, deadline - time.monotonic()))
        nxt = []
        for i, p in enumerate(level):
            rd, rc = reps[2 * i], reps[2 * i + 1]
            if rd.err == NONODE or rc.err == NONODE:
                continue
            assert rd.err == 0 and rc.err == 0, f"reading {p}: {rd} {rc}"
            children = sorted(rc.body["children"])
            out[p] = NodeView(rd.body["data"], rd.body["stat"], children)
            nxt.extend((p.rstrip("/") + "/" + ch) for ch in children)
        level = nxt
    return out


def dump_tree(port, root="/", timeout=30.0):
    """A full tree read on a fresh session, closed afterwards."""
    c = connect(port)
    try:
        return read_tree(c, root, timeout=timeout)
    finally:
        try:
            c.close_session(timeout=5)
        except Exception:
            c.close()


def tree_diff(a, b, ignore=(), limit=20):
    """Differences between two read_tree results, as readable lines."""
    lines = []
    for p in sorted(set(a) | set(b)):
        if p not in b:
            lines.append(f"only before: {p}")
        elif p not in a:
            lines.append(f"only after: {p}")
        else:
            x, y = a[p], b[p]
            if x.data != y.data:
                lines.append(f"{p}: data {x.data[:40]!r}... != {y.data[:40]!r}...")
            sx, sy = x.stat._asdict(), y.stat._asdict()
            for k in sx:
                if k not in ignore and sx[k] != sy[k]:
                    lines.append(f"{p}: {k} {sx[k]} != {sy[k]}")
            if x.children != y.children:
                lines.append(f"{p}: children differ")
        if len(lines) >= limit:
            lines.append("...")
            break
    return lines


def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def write_workload(port, n, seed=1, prefix="/wl", session_timeout_ms=10000, ascii_only=False, keep_open=False):
    """About n write txns (creates, setData and deletes with versions,
    multis) under prefix, pipelined on one session; finished with a create
    of prefix/last. Returns the client if keep_open, else closes its
    session. Data is ASCII letters/digits when ascii_only."""
    import random
    rng = random.Random(seed)

    def data(i):
        if ascii_only:
            return (f"d{i}-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                       for _ in range(rng.randrange(0, 60)))).encode()
        return f"d{i}-".encode() + rng.randbytes(rng.randrange(0, 80)) + b"\x00" * rng.randrange(0, 3)

    c = connect(port, timeout_ms=session_timeout_ms)
    r = c.call("create", prefix, b"root")
    assert r.err in (0, NODEEXISTS), r
    live = {}   # path -> version
    reqs = []
    i = 0
    while len(reqs) < n:
        i += 1
        k = rng.random()
        if k < 0.35 or len(live) < 5:
            p = f"{prefix}/n{i}"
            reqs.append(("create", p, data(i)))
            live[p] = 0
        elif k < 0.65:
            p = rng.choice(sorted(live))
            reqs.append(("setData", p, data(i), live[p]))
            live[p] += 1
        elif k < 0.8:
            p = rng.choice(sorted(live))
            reqs.append(("delete", p, live.pop(p)))
        elif k < 0.9:
            a, b = f"{prefix}/m{i}a", f"{prefix}/m{i}b"
            reqs.append(("multi", [zkraw.multi_op("create", a, data(i)), zkraw.multi_op("create", b, data(i))]))
            live[a] = live[b] = 0
        else:
            reqs.append(("create", f"{prefix}/s-", data(i), None, zkraw.PERSISTENT_SEQUENTIAL))
    for req, rep in zip(reqs, pipelined(c, reqs, window=32)):
        assert rep.err == 0, (req[:2], rep)
    r = c.call("create", f"{prefix}/last", b"the-last-acknowledged-write")
    assert r.err == 0, r
    if keep_open:
        return c
    c.close_session(timeout=5)
    return None
