"""Helpers of the migration suite (Apache ZooKeeper 3.8 -> Ferrokeeper -> ZooKeeper).

A real ZooKeeper 3.8 (zkharness) builds a tree with every kind of znode and
live sessions (build_zk_tree); full_read() reads the whole tree as the super
user (data, ACLs, every Stat field, as a client sees them); diff_reads()
compares two reads. run_fk() runs the ferrokeeper binary's offline commands
(import, export, log dump, snapshot dump).
"""
import base64
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
import zkharness  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError  # noqa: E402
from kazoo.protocol.serialization import Create, Create2, SetData  # noqa: E402
from kazoo.protocol.states import KazooState  # noqa: E402
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, make_acl, make_digest_acl  # noqa: E402

SUPER_PASSWORD = "migration-super"
TICK_MS = 2000                      # zkharness default: sessions within [4 s, 40 s]
LONG_TIMEOUT_S = 30.0
CONTAINER_CHECK_MS = 300

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")

# The sequential parents of build_zk_tree: (parent, child name prefix, kind).
# kind: "persistent", "ephemeral" (created by session b), "ttl".
SEQ_PARENTS = [
    ("/", "rootseq-", "persistent"),
    ("/app", "seq-", "persistent"),
    ("/queue", "item-", "persistent"),
    ("/\u00fcn\u00efc\u00f6d\u00e9", "seq-\u00e9-", "persistent"),
    ("/app/locks", "lock-", "ephemeral"),
    ("/ttl", "seq-", "ttl"),
]

os.environ.setdefault("LC_ALL", "C.UTF-8")


def log(msg):
    print(f"[migration] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- servers

def super_digest():
    raw = hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()
    return "super:" + base64.b64encode(raw).decode()


def zk_props(snap_count=20):
    return {
        "zookeeper.extendedTypesEnabled": "true",
        "zookeeper.snapCount": str(snap_count),
        "zookeeper.preAllocSize": "1",                  # KB: small log files
        "znode.container.checkIntervalMs": str(CONTAINER_CHECK_MS),
        "zookeeper.digest.enabled": "true",
        "zookeeper.DigestAuthenticationProvider.superDigest": super_digest(),
        # Paths are hashed into the digests with String.getBytes(): UTF-8 whatever the locale.
        "file.encoding": "UTF-8",
        "sun.jnu.encoding": "UTF-8",
    }


# zoo.cfg of Ferrokeeper: extended types (TTL nodes) are enabled in the file
# (a zoo.cfg key that is not a configuration key becomes the property
# zookeeper.<key>), so that the offline commands (import, export) see the
# same setting as the server.
FK_CFG = {"extendedTypesEnabled": "true"}


def new_fk(extra_cfg=None, snap_count=None, **kw):
    cfg = dict(FK_CFG)
    cfg.update(extra_cfg or {})
    return zkharness.Server("ferrokeeper", extra_cfg=cfg, props=fk_props(snap_count), **kw)


def fk_props(snap_count=None):
    p = {
        "zookeeper.DigestAuthenticationProvider.superDigest": super_digest(),
        "znode.container.checkIntervalMs": str(CONTAINER_CHECK_MS),
    }
    if snap_count:
        p["zookeeper.snapCount"] = str(snap_count)
    return p


def new_zk(snap_count=20):
    return zkharness.Server("zookeeper", props=zk_props(snap_count))


def run_fk(*args, timeout=60):
    """Runs the ferrokeeper binary; returns CompletedProcess (text)."""
    cmd = [zkharness.ferrokeeper_bin()] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    p.cmd = " ".join(cmd)
    return p


def describe(p, limit=3000):
    return (f"$ {p.cmd}\nexit {p.returncode}\nstdout: {p.stdout[-limit:]}\n"
            f"stderr: {p.stderr[-limit:]}")


def zxid_of(port, timeout=20.0):
    """The server's last zxid (srvr), waiting while it is not yet serving."""
    deadline = time.time() + timeout
    out = ""
    while time.time() < deadline:
        try:
            out = zkharness.four_letter(port, "srvr")
        except OSError:
            out = ""
        m = re.search(r"Zxid: (0x[0-9a-fA-F]+)", out)
        if m:
            return int(m.group(1), 16)
        time.sleep(0.1)
    raise RuntimeError(f"no Zxid in srvr output: {out!r}")


def dump_ephemerals(port):
    """The 'Sessions with Ephemerals' part of the dump four-letter word:
    {session id: set of paths}."""
    text = zkharness.four_letter(port, "dump")
    if "Sessions with Ephemerals" not in text:
        raise RuntimeError(f"unexpected dump output: {text!r}")
    out, sid = {}, None
    for line in text.split("Sessions with Ephemerals", 1)[1].splitlines()[1:]:
        if line.startswith("0x") and line.rstrip().endswith(":"):
            sid = int(line.strip()[:-1], 16)
            out[sid] = set()
        elif line.startswith("\t") and sid is not None:
            out[sid].add(line.strip())
        else:
            break
    return out


def server_log_since(server, offset):
    with open(server.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def log_size(server):
    try:
        return os.path.getsize(server.log_path)
    except OSError:
        return 0


def files_digest(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ---------------------------------------------------------------- clients

class Client:
    """A KazooClient plus the list of connection states it went through."""

    def __init__(self, hosts, timeout=LONG_TIMEOUT_S, auth=(), client_id=None, fast_retry=False):
        # Unlimited connection attempts: a server that has just started
        # answers ruok before it serves (ZooKeeper closes those connections).
        # stop() ends the attempts.
        retry = {"max_tries": -1, "delay": 0.1, "backoff": 1.5,
                 "max_delay": 0.5 if fast_retry else 1.0}
        self.states = []
        self.kz = KazooClient(hosts=hosts, timeout=timeout, client_id=client_id,
                              connection_retry=retry, command_retry={"max_tries": 0})
        self.kz.add_listener(self.states.append)
        try:
            self.kz.start(timeout=30)
        except Exception:
            self.close()
            raise
        for scheme, cred in auth:
            self.kz.add_auth(scheme, cred)

    @property
    def session_id(self):
        return self.kz.client_id[0]

    @property
    def client_id(self):
        return self.kz.client_id

    @property
    def negotiated_timeout_ms(self):
        return int(self.kz._session_timeout)

    def lost(self):
        return KazooState.LOST in self.states

    def close(self):
        try:
            self.kz.stop()
            self.kz.close()
        except Exception:
            pass


def super_client(server, timeout=LONG_TIMEOUT_S):
    return Client(server.hosts, timeout=timeout, auth=[("digest", f"super:{SUPER_PASSWORD}")])


class CreateContainer(Create2):
    """createContainer (kazoo 2.11 has none): a CreateRequest with flags CONTAINER (4)."""
    type = 19


class CreateTTL(Create2):
    """createTTL: a CreateRequest then a long ttl; flags 5 (TTL) or 6 (sequential TTL)."""
    type = 21

    def __new__(cls, path, data, acl, flags, ttl):
        self = super().__new__(cls, path, data, acl, flags)
        self.ttl = ttl
        return self

    def serialize(self):
        return super().serialize() + struct.pack(">q", self.ttl)


def raw_call(kz, request):
    result = kz.handler.async_result()
    kz._call(request, result)
    return result.get(timeout=10)


def create_container(kz, path, data=b""):
    return raw_call(kz, CreateContainer(path, data, OPEN_ACL_UNSAFE, 4))[0]


def create_ttl(kz, path, data, ttl, sequence=False):
    return raw_call(kz, CreateTTL(path, data, OPEN_ACL_UNSAFE, 6 if sequence else 5, ttl))[0]


def create_seq(c, parent, prefix, kind, data=b""):
    """Creates a sequential child of the SEQ_PARENTS kind; returns its path."""
    path = ("" if parent == "/" else parent) + "/" + prefix
    if kind == "ttl":
        return create_ttl(c.kz, path, data, 7_200_000, sequence=True)
    return c.kz.create(path, data, sequence=True, ephemeral=(kind == "ephemeral"))


def wait_until(what, cond, timeout=20.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- reading

def stat_dict(st):
    return {k: getattr(st, k) for k in STAT_FIELDS}


def full_read(kz, attempts=5):
    """The whole tree as the client sees it: {path: {"data", "acl", "stat",
    "acl_stat"}} (data as bytes or None; stat from getData, acl_stat from
    getACL; cversion as clients see it). Read again if the tree changed
    while it was read (a server-side expiry or reaper)."""
    for _ in range(attempts):
        out, todo = {}, ["/"]
        while todo:
            path = todo.pop()
            try:
                data, st = kz.get(path)
                acls, ast = kz.get_acls(path)
                children = kz.get_children(path)
            except NoNodeError:
                out = None
                break
            out[path] = {"data": data,
                         "acl": [(a.perms, a.id.scheme, a.id.id) for a in acls],
                         "stat": stat_dict(st), "acl_stat": stat_dict(ast)}
            todo.extend(("" if path == "/" else path) + "/" + ch for ch in children)
        if out is not None:
            counts = {}
            for p in out:
                if p != "/":
                    counts[parent_of(p)] = counts.get(parent_of(p), 0) + 1
            if all(v["stat"]["numChildren"] == counts.get(k, 0) for k, v in out.items()):
                return out
        time.sleep(0.2)
    raise RuntimeError("the tree kept changing while it was read")


def parent_of(path):
    return path.rsplit("/", 1)[0] or "/"


def short(v, n=80):
    r = repr(v)
    return r if len(r) <= n else r[:n] + f"...({len(v)} long)"


def diff_reads(want, got, label, skip_paths=(), loose_parents=()):
    """Differences between two full reads, as readable lines. skip_paths are
    not compared; for loose_parents cversion, pzxid and numChildren are not
    compared."""
    out = []
    for p in sorted(set(want) | set(got)):
        if p in skip_paths:
            continue
        if p not in got:
            out.append(f"{label}: {p} missing (want {short(want[p])})")
            continue
        if p not in want:
            out.append(f"{label}: {p} unexpected (got {short(got[p])})")
            continue
        w, g = want[p], got[p]
        for k in ("data", "acl"):
            if w[k] != g[k]:
                out.append(f"{label}: {p} {k}: want {short(w[k])} got {short(g[k])}")
        for which in ("stat", "acl_stat"):
            for k in STAT_FIELDS:
                if p in loose_parents and k in ("cversion", "pzxid", "numChildren"):
                    continue
                if w[which][k] != g[which][k]:
                    out.append(f"{label}: {p} {which}.{k}: want {w[which][k]} got {g[which][k]}")
    return out


def stored_cversion(node):
    """The parent's sequence counter (ZooKeeper's stored cversion, the count
    of child creations): clients see 2 * stored - numChildren."""
    s = node["stat"]
    total = s["cversion"] + s["numChildren"]
    assert total % 2 == 0, f"odd cversion + numChildren: {s}"
    return total // 2


def seq_suffix(path):
    return int(path[-10:])


# ---------------------------------------------------------------- the scenario

def build_zk_tree(zk, abandoned_timeout_s=6.0, follower=False):
    """Drives a real ZooKeeper: every kind of znode, ACL and transaction,
    enough churn for several snapshots (fuzzy ones included) and
    transactions in the log after the last one. Returns a dict of the
    clients still open (sessions to carry over) and what was made:

      a  super user (no ephemerals)
      b  bob, ephemerals /app/eph-b and two /app/locks/lock-N
      e  'abandoned' session (timeout abandoned_timeout_s), ephemerals
         /app/eph-e and one /app/locks/lock-N
      f  (if follower) a client with a fast reconnect loop, ephemerals
         /app/eph-f and /\u00fcn\u00efc\u00f6d\u00e9/eph-f
    """
    a = super_client(zk)
    b = Client(zk.hosts, auth=[("digest", "bob:bobpw")])
    e = Client(zk.hosts, timeout=abandoned_timeout_s)
    f = Client(zk.hosts, timeout=20.0, fast_retry=True) if follower else None
    kz = a.kz
    made = {"ephemerals": {}}

    # Data variants, nested and unicode paths.
    kz.create("/app", b"hello")
    kz.create("/app/binary", bytes(range(256)))
    kz.create("/app/empty", b"")
    raw_call(kz, Create("/app/null", None, OPEN_ACL_UNSAFE, 0))
    kz.create("/app/nulled", b"soon null")
    raw_call(kz, SetData("/app/nulled", None, -1))
    kz.create("/app/big", bytes((i * 7 + i // 256) % 256 for i in range(200_000)))
    kz.create("/app/deep/a/b/c/d", b"deep", makepath=True)
    kz.create("/\u00fcn\u00efc\u00f6d\u00e9/\u4e2d\u6587", "\u6570\u636e \u00e9".encode(), makepath=True)
    kz.create("/\u00fcn\u00efc\u00f6d\u00e9/\u03ba\u03cc\u03c3\u03bc\u03bf\u03c2/\u65e5\u672c\u8a9e",
              b"\xff\xfe\x00", makepath=True)
    kz.create("/app/counter", b"0", include_data=True)          # create2

    # Sequential nodes under several parents, with deletes in between.
    kz.create("/rootseq-", b"r", sequence=True)
    seqs = [kz.create("/app/seq-", b"s%d" % i, sequence=True) for i in range(4)]
    kz.delete(seqs[1])
    kz.create("/queue")
    items = [kz.create("/queue/item-", b"i%d" % i, sequence=True) for i in range(6)]
    kz.delete(items[0])
    useqs = [kz.create("/\u00fcn\u00efc\u00f6d\u00e9/seq-\u00e9-", b"", sequence=True) for _ in range(3)]
    kz.delete(useqs[0])

    # ACLs: digest, ip, auth (bob's digest), read-only world; setACL history.
    alice_all = make_digest_acl("alice", "alicepw", all=True)
    kz.create("/secure", b"secret", acl=[alice_all])
    kz.create("/secure/mixed", b"m", acl=[make_digest_acl("alice", "alicepw", read=True),
                                          make_acl("world", "anyone", read=True)])
    kz.create("/ip", b"ip", acl=[make_acl("ip", "127.0.0.1", all=True)])
    kz.create("/ipnet", b"net", acl=[make_acl("ip", "127.0.0.0/8", read=True, write=True),
                                     make_acl("world", "anyone", read=True)])
    b.kz.create("/bob", b"bob's", acl=[ACL(31, Id("auth", ""))])
    kz.set_acls("/app/empty", [make_acl("world", "anyone", read=True, write=True)])
    kz.set_acls("/app/empty", [make_acl("world", "anyone", read=True, write=True, create=True)])
    kz.create("/acl-hist", b"h")
    kz.set_acls("/acl-hist", [make_acl("world", "anyone", read=True, write=True)], version=0)
    kz.set_acls("/acl-hist", [alice_all, make_acl("world", "anyone", read=True)], version=1)
    kz.set_acls("/acl-hist", [make_acl("world", "anyone", read=True, create=True, delete=True)],
                version=2)
    kz.set_acls("/secure", [alice_all, make_digest_acl("carol", "carolpw", read=True)])

    # Ephemerals of live sessions.
    kz.create("/app/locks")
    b.kz.create("/app/eph-b", b"b", ephemeral=True)
    b.kz.create("/app/locks/lock-", b"", ephemeral=True, sequence=True)
    b.kz.create("/app/locks/lock-", b"", ephemeral=True, sequence=True)
    e.kz.create("/app/eph-e", b"e", ephemeral=True)
    e.kz.create("/app/locks/lock-", b"e", ephemeral=True, sequence=True)
    if f:
        f.kz.create("/app/eph-f", b"f", ephemeral=True)
        f.kz.create("/\u00fcn\u00efc\u00f6d\u00e9/eph-f", None, ephemeral=True)

    # Ephemerals of a session closed normally (closeSession deletes them).
    c = Client(zk.hosts)
    c.kz.create("/app/eph-c", b"c", ephemeral=True)
    c.kz.create("/app/locks/lock-", b"", ephemeral=True, sequence=True)
    c.close()

    # Containers: c1 keeps a child, c2 loses its child (ZooKeeper's container
    # manager deletes it), c3 never had one (stays), c4 keeps a child.
    kz.ensure_path("/containers")
    create_container(kz, "/containers/c1", b"c1")
    kz.create("/containers/c1/child", b"x")
    create_container(kz, "/containers/c2", b"c2")
    kz.create("/containers/c2/child", b"x")
    kz.delete("/containers/c2/child")
    create_container(kz, "/containers/c3", b"")
    create_container(kz, "/containers/c4", b"c4")
    kz.create("/containers/c4/child", b"y")

    # TTL nodes: long-lived, sequential, one that expires on ZooKeeper, and
    # two with a 1 s TTL kept alive by a child (they expire once it is gone).
    kz.create("/ttl", b"")
    create_ttl(kz, "/ttl/long", b"t", 3_600_000)
    tseqs = [create_ttl(kz, "/ttl/seq-", b"ts", 7_200_000, sequence=True) for _ in range(2)]
    kz.delete(tseqs[0])
    create_ttl(kz, "/ttl/short", b"bye", 200)
    for name in ("mid", "mid2"):
        create_ttl(kz, f"/ttl/{name}", b"m", 1000)
        kz.create(f"/ttl/{name}/child", b"keep")

    # A successful multi (with a sequential create) and a failed one.
    t = kz.transaction()
    t.create("/multi", b"")
    t.create("/multi/x", b"x")
    t.create("/queue/item-", b"from multi", sequence=True)
    t.set_data("/app", b"hello2")
    t.delete(items[1])
    t.check("/app/binary", 0)
    results = t.commit()
    assert not any(isinstance(r, Exception) for r in results), results
    t = kz.transaction()
    t.create("/multi/y", b"y")
    t.create("/multi/x", b"again")
    t.set_data("/app", b"not applied")
    results = t.commit()
    assert any(isinstance(r, Exception) for r in results), results

    # Failed single operations (error txns in the log).
    for op in (lambda: kz.create("/app", b"dup"),
               lambda: kz.set("/app", b"v", version=99),
               lambda: kz.delete("/nope")):
        try:
            op()
            raise AssertionError("expected a failure")
        except (NodeExistsError, BadVersionError, NoNodeError):
            pass

    # Churn: several snapshots and log rolls; bursts of asynchronous writes
    # so that a snapshot may be taken while they apply (fuzzy snapshots).
    kz.create("/churn", b"")
    for i in range(24):
        kz.set("/app/counter", str(i).encode())
        kz.create(f"/churn/n{i}", b"%d" % i)
        if i >= 3:
            kz.delete(f"/churn/n{i - 3}")
        if i % 8 == 0:
            for r in [kz.set_async("/app/counter", b"burst%d" % j) for j in range(10)]:
                r.get(timeout=10)

    # What the server does by itself.
    wait_until("container c2 removed by ZooKeeper", lambda: kz.exists("/containers/c2") is None)
    wait_until("TTL node /ttl/short removed by ZooKeeper", lambda: kz.exists("/ttl/short") is None)

    # Transactions in the log after the newest snapshot.
    for i in range(100):
        time.sleep(0.2)
        snaps = snapshot_zxids(zk.data_dir)
        if len(snaps) >= 3 and snaps[-1] < zxid_of(zk.port):
            break
        kz.set("/app/counter", b"tail%d" % i)
    else:
        raise AssertionError("ZooKeeper took too few snapshots")
    kz.set("/app/counter", b"final")
    time.sleep(0.5)
    snaps = snapshot_zxids(zk.data_dir)
    assert snaps and snaps[-1] < zxid_of(zk.port), "no transactions after the last snapshot"
    made["snapshots"] = snaps
    return {"a": a, "b": b, "e": e, "f": f, "made": made}


def snapshot_zxids(data_dir):
    v2 = os.path.join(data_dir, "version-2")
    return sorted(int(n.split(".")[1], 16) for n in os.listdir(v2) if n.startswith("snapshot.")) \
        if os.path.isdir(v2) else []


def capture_stable(zk, reader):
    """(zxid, full read) with no write in between."""
    for _ in range(5):
        before = zxid_of(zk.port)
        tree = full_read(reader.kz)
        if zxid_of(zk.port) == before:
            return before, tree
    raise RuntimeError("the tree kept changing")


# ---------------------------------------------------------------- dump parsing

def parse_snapshot_dump(text):
    """`snapshot dump` output -> (zxid, {path: {field: value}})."""
    m = re.search(r"^zxid 0x([0-9a-f]+), (\d+) znodes, (\d+) sessions", text, re.M)
    assert m, f"no zxid header in snapshot dump: {text[:500]!r}"
    nodes, cur = {}, None
    for line in text.splitlines():
        if line.startswith("/"):
            cur = nodes.setdefault(line, {})
        elif line.startswith("  ") and cur is not None and " = " in line:
            k, v = line.strip().split(" = ", 1)
            cur[k] = v
    assert len(nodes) == int(m.group(2)), f"header says {m.group(2)} znodes, listed {len(nodes)}"
    return int(m.group(1), 16), nodes


LOG_LINE = re.compile(r"^0x([0-9a-f]+) session:0x([0-9a-f]+) ", re.M)


def parse_log_dump(text):
    """`log dump` output -> {zxid: line}."""
    out = {}
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            z = int(m.group(1), 16)
            assert z not in out, f"zxid 0x{z:x} twice in one log dump"
            out[z] = line
    return out


def copy_v2(src_data_dir, dst_data_dir):
    shutil.copytree(os.path.join(src_data_dir, "version-2"), os.path.join(dst_data_dir, "version-2"))
