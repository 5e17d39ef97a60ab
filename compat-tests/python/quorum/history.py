"""Record a concurrent history of ZooKeeper operations from kazoo clients.

Role: the recording half of the quorum fault tests; checker.py judges what
is recorded here.

Inputs: connect strings, a key set, an operation mix; the clients are kazoo
clients, one session each.
Outputs: a History, a list of Op, one per operation:
  id, client (a name), session (the session id when the op completed),
  kind    write (blind setData) | cas (setData with expected version) |
          create | delete (expected version, -1 for any) |
          read (plain getData) | sync_read (sync then getData),
  key, value (written), expected_version,
  invoke, complete (time.monotonic() just before sending / after the answer),
  outcome ok   - the server answered with success;
          fail - a definite ZooKeeper error (BadVersion, NoNode, NodeExists,
                 NotEmpty): the operation did not happen;
          info - ConnectionLoss, timeout, session expiry, closed client: it
                 may or may not have happened, now or later (complete is the
                 time we stopped waiting; the checker treats it as open-ended),
  result  ok write/cas/create: {"version", "mzxid"} of the node afterwards;
          ok read/sync_read: {"value", "version", "mzxid"} or {"absent": True};
          fail/info: {"error": exception class name},
  server  host:port the client was connected to when the op completed.
A read that gets NoNode is an ok read of an absent node. Written values are
unique per operation ("<client>-<n>"), so a read names the write it saw.

Workload runs worker threads, each with its own RecordingClient, doing random
operations from the mix on the keys, with think time in between, until
stopped; it creates the keys first (recorded), and optionally one ephemeral
node per client, so tests can check sessions and ephemerals survive faults.
"""
import itertools
import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field

from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError)

DEFINITE = (BadVersionError, NoNodeError, NodeExistsError, NotEmptyError)
WRITE_KINDS = ("write", "cas", "create", "delete")
READ_KINDS = ("read", "sync_read")
DEFAULT_MIX = {"write": 0.3, "cas": 0.25, "read": 0.25, "sync_read": 0.2}
FAST_RECONNECT = {"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 0.5,
                  "max_jitter": 0.1}


@dataclass
class Op:
    id: int
    client: str
    kind: str
    key: str
    value: str = None
    expected_version: int = None
    invoke: float = 0.0
    complete: float = None
    outcome: str = None
    result: dict = field(default_factory=dict)
    session: int = None
    server: str = None

    def describe(self):
        """One line for reports: op#12 c3(0x1000..) cas(/k1, v=2 -> 'c3-7') ok {version: 3} [1.203-1.210]"""
        args = [self.key]
        if self.expected_version is not None:
            args.append(f"v={self.expected_version}")
        if self.value is not None:
            args.append(repr(self.value))
        sess = f"({self.session:#x})" if self.session else ""
        result = {k: (f"{v:#x}" if k == "mzxid" else v) for k, v in (self.result or {}).items()}
        end = "..." if self.complete is None else f"{self.complete:.3f}"
        return (f"op#{self.id} {self.client}{sess} {self.kind}({', '.join(args)}) "
                f"{self.outcome} {result or ''} [{self.invoke:.3f}-{end}]"
                + (f" via {self.server}" if self.server else ""))


class History:
    """A thread-safe list of Op; times are time.monotonic() - start."""

    def __init__(self):
        self._ops = []
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self.start = time.monotonic()

    def now(self):
        return time.monotonic() - self.start

    def invoke(self, client, kind, key, value=None, expected_version=None):
        with self._lock:
            op = Op(id=next(self._ids), client=client, kind=kind, key=key, value=value,
                    expected_version=expected_version, invoke=self.now())
            self._ops.append(op)
        return op

    def finish(self, op, outcome, result=None, session=None, server=None):
        op.complete = self.now()
        op.outcome = outcome
        op.result = result or {}
        op.session = session
        op.server = server
        return op

    @property
    def ops(self):
        with self._lock:
            return list(self._ops)

    def counts(self):
        ops = self.ops
        c = {"ops": len(ops), "ok": 0, "fail": 0, "info": 0, "acked_writes": 0}
        for op in ops:
            if op.outcome in c:
                c[op.outcome] += 1
            if op.outcome == "ok" and op.kind in WRITE_KINDS:
                c["acked_writes"] += 1
        return c

    def first_ok_after(self, t, kinds=WRITE_KINDS):
        """Completion time of the first ok op of these kinds invoked at or
        after t (History time), or None."""
        times = [op.complete for op in self.ops
                 if op.outcome == "ok" and op.kind in kinds and op.invoke >= t]
        return min(times) if times else None

    def dump(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(asdict(op)) + "\n")

    @staticmethod
    def load(path):
        with open(path) as f:
            return [Op(**json.loads(line)) for line in f if line.strip()]


def _stat(stat):
    return {"version": stat.version, "mzxid": stat.mzxid}


class _ErrorLog(logging.Handler):
    """Keeps the ERROR records of one kazoo client (e.g. its connection
    thread dying on a protocol error such as replies out of order)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]!r}"
        self.messages.append(text)


class RecordingClient:
    """A kazoo client whose operations are recorded in a History. Each call
    returns the finished Op; it never raises for a ZooKeeper or connection
    error (that is the op's outcome). `errors` lists kazoo's own error log
    lines for this client."""

    _count = itertools.count()

    def __init__(self, history, name, hosts, session_timeout=10.0, op_timeout=3.0,
                 randomize_hosts=True, connect_timeout=15.0):
        self.history = history
        self.name = name
        self.op_timeout = op_timeout
        self._log = _ErrorLog()
        logger = logging.getLogger(f"kazoo.client.{name}.{next(self._count)}")
        logger.addHandler(self._log)
        self.zk = KazooClient(hosts=hosts, timeout=session_timeout, randomize_hosts=randomize_hosts,
                              connection_retry=dict(FAST_RECONNECT), logger=logger)
        self.zk.start(timeout=connect_timeout)

    @property
    def errors(self):
        return list(self._log.messages)

    @property
    def session_id(self):
        return self.zk._session_id

    def server(self):
        """host:port of the server this client is connected to, or None."""
        try:
            host, port = self.zk._connection._socket.getpeername()[:2]
            return f"{host}:{port}"
        except (AttributeError, OSError):
            return None

    def _run(self, kind, key, call, on_ok, value=None, expected_version=None):
        op = self.history.invoke(self.name, kind, key, value, expected_version)
        try:
            answer = call()
        except DEFINITE as e:
            if kind in READ_KINDS and isinstance(e, NoNodeError):
                return self.history.finish(op, "ok", {"absent": True}, self.session_id, self.server())
            return self.history.finish(op, "fail", {"error": type(e).__name__}, self.session_id,
                                       self.server())
        except Exception as e:  # connection loss, timeouts, expiry: unknown outcome
            return self.history.finish(op, "info", {"error": type(e).__name__}, self.session_id,
                                       self.server())
        return self.history.finish(op, "ok", on_ok(answer), self.session_id, self.server())

    def _get(self, a):
        return a.get(timeout=self.op_timeout)

    def write(self, key, value):
        return self._run("write", key, lambda: self._get(self.zk.set_async(key, value.encode())),
                         _stat, value)

    def cas(self, key, value, version):
        return self._run("cas", key,
                         lambda: self._get(self.zk.set_async(key, value.encode(), version=version)),
                         _stat, value, version)

    def create(self, key, value, ephemeral=False):
        return self._run("create", key,
                         lambda: self._get(self.zk.create_async(key, value.encode(), ephemeral=ephemeral,
                                                                include_data=True)),
                         lambda answer: _stat(answer[1]), value)

    def delete(self, key, version=-1):
        return self._run("delete", key, lambda: self._get(self.zk.delete_async(key, version=version)),
                         lambda _: {}, None, version)

    def _read_result(self, answer):
        data, stat = answer
        return {"value": data.decode() if data is not None else None, "version": stat.version,
                "mzxid": stat.mzxid}

    def read(self, key):
        return self._run("read", key, lambda: self._get(self.zk.get_async(key)), self._read_result)

    def sync_read(self, key):
        def call():
            self._get(self.zk.sync_async(key))
            return self._get(self.zk.get_async(key))
        return self._run("sync_read", key, call, self._read_result)

    def close(self):
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass


class Workload:
    """`clients` worker threads doing random operations on `keys`.

    hosts: one connect string for every client, or a list (one per client).
    mix: {kind: weight}; create/delete are allowed too (the keys then come
    and go; writes on an absent key fail with NoNode).
    ephemeral_dir: if given, each client creates <dir>/<name> (ephemeral) at
    start; `sessions` maps client name -> session id at start."""

    def __init__(self, history, hosts, keys, clients=5, mix=None, think=0.01, session_timeout=10.0,
                 op_timeout=3.0, seed=None, ephemeral_dir=None, prefix="c"):
        self.history = history
        self.hosts = hosts if isinstance(hosts, list) else [hosts] * clients
        self.keys = list(keys)
        self.n = clients
        self.mix = dict(mix or DEFAULT_MIX)
        self.think = think
        self.session_timeout = session_timeout
        self.op_timeout = op_timeout
        self.rng = random.Random(seed)
        self.ephemeral_dir = ephemeral_dir
        self.prefix = prefix
        self.clients = {}
        self.sessions = {}
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        for i in range(self.n):
            name = f"{self.prefix}{i}"
            self.clients[name] = RecordingClient(self.history, name, self.hosts[i],
                                                 self.session_timeout, self.op_timeout)
            self.sessions[name] = self.clients[name].session_id
        first = next(iter(self.clients.values()))
        for key in self.keys:
            first.zk.ensure_path(key.rsplit("/", 1)[0] or "/")
            op = first.create(key, f"{first.name}-init-{key}")
            if op.outcome != "ok":
                raise RuntimeError(f"could not create {key}: {op.describe()}")
        if self.ephemeral_dir:
            first.zk.ensure_path(self.ephemeral_dir)
            for name, c in self.clients.items():
                c.zk.create(f"{self.ephemeral_dir}/{name}", name.encode(), ephemeral=True)
        for name, c in self.clients.items():
            t = threading.Thread(target=self._worker, args=(c, random.Random(self.rng.random())),
                                 name=f"workload-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _worker(self, c, rng):
        kinds, weights = zip(*self.mix.items())
        seen_version = {}
        n = itertools.count()
        while not self._stop.is_set():
            key = rng.choice(self.keys)
            kind = rng.choices(kinds, weights)[0]
            value = f"{c.name}-{next(n)}"
            if kind == "write":
                op = c.write(key, value)
            elif kind == "cas":
                op = c.cas(key, value, seen_version.get(key, 0))
            elif kind == "create":
                op = c.create(key, value)
            elif kind == "delete":
                op = c.delete(key, rng.choice([-1, seen_version.get(key, 0)]))
            elif kind == "read":
                op = c.read(key)
            else:
                op = c.sync_read(key)
            if op.outcome == "ok" and "version" in op.result:
                seen_version[key] = op.result["version"]
            self._stop.wait(self.think)

    def stop(self, timeout=None):
        """Stop the workers (each finishes its current op, bounded by op_timeout)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout or self.op_timeout * 3 + 5)
        self._threads = []

    def close(self):
        self.stop()
        for c in self.clients.values():
            c.close()
