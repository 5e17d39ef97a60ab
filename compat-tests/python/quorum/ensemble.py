"""Run a 3- or 5-server ensemble (plus observers) of Apache ZooKeeper or
Ferrokeeper on 127.0.0.1, with every peer link through a fault proxy.

Role: the process side of the quorum fault tests and of scripts/ensemble.
Inputs: size, impl ("zookeeper" | "ferrokeeper"), observers, timing
(tickTime, initLimit, syncLimit), optional reconfigEnabled, extra zoo.cfg
keys and -D properties, the Ferrokeeper binary (default FERROKEEPER_BIN,
through zkharness); environment ZK_CLASSPATH (zkharness),
QUORUM_ZK_JVMFLAGS (JVM flags for ZooKeeper, default below).
Outputs: per server a directory <base>/<id>/ with zoo.cfg, data/myid and
server.log; running processes; `connect_string()`, `mode(i)`,
`wait_for_leader()`, and controls: start / stop (SIGTERM) / kill (SIGKILL) /
pause (SIGSTOP) / resume (SIGCONT) / restart of one server or all, and
partitions through `proxy` (faultproxy.FaultProxy): block / unblock /
isolate / partition / heal (unless proxied=False). Every wait is bounded;
every process is registered with zkharness's exit-time cleanup (killed
when the Python process exits).

How links are wired. Server i's zoo.cfg has its own line with its real
ports and, for every other server j, the ports of proxy links (i -> j,
"quorum") and (i -> j, "election"), which forward to j's real ports. So each
directed link has its own proxy port, and each server dials a peer at the
address its own zoo.cfg gives for that id. Client ports are not proxied
(clients connect straight to servers); a test that wants to cut a client
off asks for a client link (`client_address`).

What ZooKeeper 3.8 insists on, from its source (tag release-3.8.0-1,
zookeeper-server/src/main/java/org/apache/zookeeper/server/quorum/):
- Election connections. QuorumCnxManager.startConnection (~line 482) opens
  every election connection with an initial message: protocol version
  (long, -65536), its sid (long), then the length and text of *its own*
  election address. handleConnection (~line 638) keeps a connection only
  when the dialler's sid is higher; otherwise it closes it and dials back
  `connectOne(sid, electionAddr)` at the address taken from that message,
  not from its own zoo.cfg. Left alone, the higher server would then talk
  to the lower one straight at its real election port, bypassing the proxy
  (and a later isolate() would not cut it). So every election link's proxy
  rewrites that address to the proxy port of the reverse link (j -> i,
  "election") [_zk_election_preamble]; `direct_peer_connections()` checks
  that no peer connection bypasses the proxy.
- Quorum connections. A learner dials the leader at the address of the
  leader's id in its own view (Learner.findLeader, ~line 273); the leader
  never dials learners. Nothing to rewrite.
- Server lists and reconfigEnabled. A leader bumps the version of an
  initial (version 0) configuration to the NEWLEADER zxid (Leader.lead,
  ~line 622) and sends it to learners; with reconfigEnabled=true a learner
  adopts it at UPTODATE (Learner.syncWithLeader ~line 723 ->
  QuorumPeer.processReconfig -> setQuorumVerifier, which rewrites zoo.cfg
  to a dynamicConfigFile and resets the learner's *own* addresses from the
  leader's line). Seen here: follower 1 took the leader's proxy ports for
  link 3 -> 1 as its own, restarted its election listener on a port the
  proxy owns, failed three binds and exited with status 14. With
  reconfigEnabled=false (the default here) processReconfig and
  setLastSeenQuorumVerifier return at once and every server keeps its own
  list. So ZooKeeper with reconfigEnabled=true runs only unproxied
  (proxied=False: every server gets the real addresses, no partitions).
- Election back-off. A LOOKING server doubles its notification timeout from
  200 ms up to zookeeper.fastleader.maxNotificationInterval (default
  60000 ms; FastLeaderElection ~line 70), so a server that was cut off for
  a while rejoins only at its next round after heal. We pass
  -Dzookeeper.fastleader.maxNotificationInterval=2000 so catch-up after a
  heal is bounded by seconds; Ferrokeeper ignores the property.
- A server that is not in a quorum answers `srvr` with "This ZooKeeper
  instance is not currently serving requests"; mode() reports "looking".
"""
import atexit
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import zkharness  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

IMPLS = ("zookeeper", "ferrokeeper")
SERVING = ("leader", "follower", "observer", "standalone", "read-only")
DEFAULT_ZK_JVMFLAGS = ("-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData "
                       "-Dzookeeper.fastleader.maxNotificationInterval=2000 "
                       "-Dorg.slf4j.simpleLogger.showDateTime=true "
                       "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS")
NOT_SERVING = "not currently serving"
# How a Ferrokeeper build without quorums refuses server.N lines (src/main.rs
# before 7ef98ef: "... describe a replicated ensemble ..., and replication is
# not implemented yet: Ferrokeeper runs standalone only ...").
REFUSAL_WORDS = ("replication is not implemented", "standalone only")


class ServerExited(RuntimeError):
    """A server process exited while the ensemble waited for it."""


class ReplicationRefused(ServerExited):
    """A Ferrokeeper server exited at start complaining about the replicated
    configuration: this binary does not run quorums (yet)."""


def _zk_election_preamble(reply_port):
    """Returns a faultproxy preamble that rewrites the election address in
    ZooKeeper's initial election message to 127.0.0.1:reply_port()."""
    async def preamble(reader):
        head = await reader.readexactly(8)
        (version,) = struct.unpack(">q", head)
        if version >= 0:          # pre-3.5 handshake: the sid alone, no address
            return head
        sid = await reader.readexactly(8)
        (length,) = struct.unpack(">i", await reader.readexactly(4))
        if not 0 <= length <= 4096:
            raise ValueError(f"election handshake address length {length}")
        await reader.readexactly(length)
        addr = f"127.0.0.1:{reply_port()}".encode()
        return head + sid + struct.pack(">i", len(addr)) + addr
    return preamble


class Member:
    """One server of the ensemble: its ports, files and process."""

    def __init__(self, sid, role, base_dir):
        self.id = sid
        self.role = role                      # "participant" | "observer"
        self.client_port = zkharness.free_port()
        self.quorum_port = zkharness.free_port()
        self.election_port = zkharness.free_port()
        self.dir = os.path.join(base_dir, str(sid))
        self.data_dir = os.path.join(self.dir, "data")
        self.cfg_path = os.path.join(self.dir, "zoo.cfg")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.paused = False
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write(f"{sid}\n")

    @property
    def voter(self):
        return self.role == "participant"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Ensemble:
    """An N-server ensemble. Server ids are 1..size for voters, then
    size+1..size+observers for observers."""

    def __init__(self, size=3, impl="zookeeper", observers=0, base_dir=None, tick_time_ms=1000,
                 init_limit=10, sync_limit=3, reconfig_enabled=False, extra_cfg=None, props=None,
                 keep=False, binary=None, proxied=True):
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
        if impl == "zookeeper" and reconfig_enabled and proxied:
            raise ValueError("ZooKeeper with reconfigEnabled=true adopts the leader's server list, "
                             "proxy ports included, and then cannot bind its own ports: use "
                             "proxied=False (see the module docstring)")
        self.impl = impl
        self.size = size
        self.tick_time_ms = tick_time_ms
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.reconfig_enabled = reconfig_enabled
        self.extra_cfg = dict(extra_cfg or {})
        self.props = dict(props or {})
        self.binary = binary
        self.proxied = proxied
        self.own_dir = base_dir is None
        self.base_dir = base_dir or tempfile.mkdtemp(prefix=f"fk-ensemble-{impl}-")
        os.makedirs(self.base_dir, exist_ok=True)
        self.keep = keep or os.environ.get("QUORUM_KEEP") == "1"
        self.members = {}
        for sid in range(1, size + observers + 1):
            self.members[sid] = Member(sid, "participant" if sid <= size else "observer", self.base_dir)
        self.proxy = FaultProxy()
        self._client_links = {}
        self._wire_peers()
        for m in self.members.values():
            self._write_cfg(m)
        atexit.register(self.close)

    # -- configuration ---------------------------------------------------

    def _wire_peers(self):
        if not self.proxied:
            return
        for a in self.members:
            for b, mb in self.members.items():
                if a == b:
                    continue
                self.proxy.add_link(a, b, ("127.0.0.1", mb.quorum_port), kind="quorum")
                preamble = None
                if self.impl == "zookeeper":
                    preamble = _zk_election_preamble(
                        lambda a=a, b=b: self.proxy.port(b, a, "election"))
                self.proxy.add_link(a, b, ("127.0.0.1", mb.election_port), kind="election",
                                    preamble=preamble)

    def _write_cfg(self, m):
        cfg = {
            "tickTime": self.tick_time_ms,
            "initLimit": self.init_limit,
            "syncLimit": self.sync_limit,
            "dataDir": m.data_dir,
            "clientPort": m.client_port,
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": 0,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "standaloneEnabled": "false",
            "reconfigEnabled": "true" if self.reconfig_enabled else "false",
        }
        if m.role == "observer":
            cfg["peerType"] = "observer"
        cfg.update(self.extra_cfg)
        lines = [f"{k}={v}" for k, v in cfg.items()]
        for sid, other in self.members.items():
            if sid == m.id or not self.proxied:
                q, e = other.quorum_port, other.election_port
            else:
                q, e = self.proxy.port(m.id, sid, "quorum"), self.proxy.port(m.id, sid, "election")
            role = ":observer" if other.role == "observer" else ""
            lines.append(f"server.{sid}=127.0.0.1:{q}:{e}{role};127.0.0.1:{other.client_port}")
        with open(m.cfg_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _command(self, m):
        props = [f"-D{k}={v}" for k, v in self.props.items()]
        if self.impl == "zookeeper":
            flags = os.environ.get("QUORUM_ZK_JVMFLAGS", DEFAULT_ZK_JVMFLAGS).split()
            cp = os.environ.get("ZK_CLASSPATH", zkharness.DEFAULT_ZK_CLASSPATH)
            return (["java"] + flags + ["-Dzookeeper.admin.enableServer=false"] + props
                    + ["-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", m.cfg_path])
        return [self.binary or zkharness.ferrokeeper_bin(), "--config", m.cfg_path] + props

    # -- processes -------------------------------------------------------

    def ids(self, voters_only=False):
        return [i for i, m in self.members.items() if m.voter or not voters_only]

    def start_server(self, i):
        """Start server i (no wait). Its files and ports are kept across restarts."""
        m = self.members[i]
        if m.alive():
            return
        log = open(m.log_path, "ab")
        log.write(f"---- start {time.strftime('%H:%M:%S')} ----\n".encode())
        log.flush()
        m.proc = subprocess.Popen(self._command(m), stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        m.paused = False
        zkharness._live.append(m.proc)

    def start(self, timeout=60.0):
        """Start every server and wait until there is a leader and every
        server serves. Raises ReplicationRefused / ServerExited / TimeoutError."""
        for i in self.members:
            self.start_server(i)
        self.wait_serving(self.ids(), timeout)
        return self

    def stop(self, i, timeout=15.0):
        """SIGTERM server i (resumed first if paused), SIGKILL after timeout."""
        m = self.members[i]
        if m.alive():
            if m.paused:
                self.resume(i)
            m.proc.send_signal(signal.SIGTERM)
            try:
                m.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait(5)
        self._forget(m)

    def kill(self, i):
        """SIGKILL server i (works on a paused one too)."""
        m = self.members[i]
        if m.alive():
            m.proc.kill()
            m.proc.wait(10)
        self._forget(m)

    def _forget(self, m):
        m.paused = False
        if m.proc in zkharness._live:
            zkharness._live.remove(m.proc)

    def pause(self, i):
        m = self.members[i]
        if not m.alive():
            raise ServerExited(f"server {i} is not running")
        os.kill(m.proc.pid, signal.SIGSTOP)
        m.paused = True

    def resume(self, i):
        m = self.members[i]
        if m.alive():
            os.kill(m.proc.pid, signal.SIGCONT)
        m.paused = False

    def restart(self, i, kill=False, wait=True, timeout=60.0):
        """Stop (SIGTERM, or SIGKILL with kill=True) and start server i; with
        wait, until it serves again."""
        (self.kill if kill else self.stop)(i)
        self.start_server(i)
        if wait:
            self.wait_serving([i], timeout)

    def stop_all(self):
        for i in self.members:
            self.stop(i)

    def kill_all(self):
        for i in self.members:
            self.kill(i)

    def restart_all(self, kill=False, timeout=60.0):
        (self.kill_all if kill else self.stop_all)()
        self.start(timeout)

    def close(self):
        """Kill every server, stop the proxy, remove the files (unless keep)."""
        atexit.unregister(self.close)
        for i in self.members:
            self.kill(i)
        self.proxy.close()
        if self.own_dir and not self.keep:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- observation -----------------------------------------------------

    def srvr(self, i, timeout=2.0):
        """The `srvr` answer of server i, or None if it does not answer."""
        m = self.members[i]
        if not m.alive() or m.paused:
            return None
        try:
            return zkharness.four_letter(m.client_port, "srvr", timeout=timeout)
        except OSError:
            return None

    def mode(self, i):
        """'leader' | 'follower' | 'observer' | 'standalone' | 'read-only' from
        srvr's Mode line; 'looking' when it answers but does not serve; 'paused';
        'down' when not running or not answering."""
        m = self.members[i]
        if m.alive() and m.paused:
            return "paused"
        answer = self.srvr(i)
        if answer is None:
            return "down"
        match = re.search(r"^Mode: (\S+)", answer, re.M)
        if match:
            return match.group(1)
        return "looking" if NOT_SERVING in answer else "down"

    def modes(self, among=None):
        return {i: self.mode(i) for i in (among or self.members)}

    def _check_exits(self, ids):
        for i in ids:
            m = self.members[i]
            if m.proc is not None and m.proc.poll() is not None and m.proc in zkharness._live:
                self._forget(m)
                tail = m.log_tail()
                cls = ServerExited
                if (self.impl == "ferrokeeper" and m.proc.returncode != 0
                        and any(w in tail.lower() for w in REFUSAL_WORDS)):
                    cls = ReplicationRefused
                raise cls(f"{self.impl} server {i} exited with status {m.proc.returncode}; "
                          f"log {m.log_path}:\n{tail}")

    def wait_for_leader(self, timeout=30.0, among=None):
        """Wait until exactly one of the servers given (default all) says
        leader and a majority of all voters serve as leader or follower.
        Returns the leader's id."""
        among = list(among or self.members)
        quorum = self.size // 2 + 1
        deadline = time.monotonic() + timeout
        modes = {}
        while time.monotonic() < deadline:
            self._check_exits(among)
            modes = self.modes(among)
            leaders = [i for i, mode in modes.items() if mode == "leader"]
            voting = [i for i, mode in modes.items()
                      if mode in ("leader", "follower") and self.members[i].voter]
            if len(leaders) == 1 and len(voting) >= quorum:
                return leaders[0]
            time.sleep(0.05)
        raise TimeoutError(f"no leader among {among} within {timeout}s: {modes}")

    def wait_serving(self, ids, timeout=60.0):
        """Wait until every server given serves (and there is a leader)."""
        deadline = time.monotonic() + timeout
        modes = {}
        while time.monotonic() < deadline:
            self._check_exits(ids)
            modes = self.modes(ids)
            if all(mode in SERVING for mode in modes.values()):
                return self.wait_for_leader(max(1.0, deadline - time.monotonic()))
            time.sleep(0.05)
        raise TimeoutError(f"servers {ids} not all serving within {timeout}s: {modes}")

    def wait_mode(self, i, predicate, timeout):
        """Wait until predicate(mode(i)) holds; returns the mode."""
        deadline = time.monotonic() + timeout
        mode = None
        while time.monotonic() < deadline:
            mode = self.mode(i)
            if predicate(mode):
                return mode
            time.sleep(0.05)
        raise TimeoutError(f"server {i} still in mode {mode!r} after {timeout}s")

    def connect_string(self, ids=None):
        """host:port,... of the client ports of the servers given (default all)."""
        return ",".join(f"127.0.0.1:{self.members[i].client_port}" for i in (ids or self.members))

    def client_address(self, name, i):
        """host:port of a proxy link from client `name` to server i's client
        port (created on first use); cut it with proxy.block(name, i, ...) or
        proxy.isolate(name)."""
        key = (name, i)
        if key not in self._client_links:
            self._client_links[key] = self.proxy.add_link(
                name, i, ("127.0.0.1", self.members[i].client_port), kind="client")
        return f"127.0.0.1:{self._client_links[key]}"

    # -- partitions --------------------------------------------------------

    def _require_proxy(self):
        if not self.proxied:
            raise RuntimeError("this ensemble was started with proxied=False: no partitions")

    def isolate(self, i, mode="drop"):
        """Cut server i from every other server (clients still reach it)."""
        self._require_proxy()
        for j in self.members:
            if j != i:
                self.proxy.block(i, j, mode)
                self.proxy.block(j, i, mode)

    def partition(self, side, mode="drop"):
        """Cut the servers in `side` from the rest (both directions)."""
        self._require_proxy()
        side = set(side)
        for a in self.members:
            for b in self.members:
                if (a in side) != (b in side):
                    self.proxy.block(a, b, mode)

    def heal(self):
        self.proxy.heal()

    def direct_peer_connections(self):
        """Established TCP connections to a server's real quorum or election
        port that this process (the proxy) does not own: peer traffic that
        bypasses the proxy. Empty when the wiring holds."""
        real = {}
        for m in self.members.values():
            real[m.quorum_port] = (m.id, "quorum")
            real[m.election_port] = (m.id, "election")
        mine = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                mine.add(link[8:-1])
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                if cols[3] != "01":       # ESTABLISHED
                    continue
                local_port = int(cols[1].rsplit(":", 1)[1], 16)
                remote_port = int(cols[2].rsplit(":", 1)[1], 16)
                if remote_port in real and cols[9] not in mine:
                    sid, kind = real[remote_port]
                    found.append({"to": sid, "kind": kind, "from_port": local_port})
        return found

    def describe(self):
        """A JSON-able description (what scripts/ensemble keeps in its state file)."""
        return {
            "impl": self.impl, "size": self.size, "dir": self.base_dir,
            "connect": self.connect_string(),
            "members": {str(i): {"role": m.role, "client_port": m.client_port,
                                 "quorum_port": m.quorum_port, "election_port": m.election_port,
                                 "pid": m.proc.pid if m.alive() else None, "paused": m.paused,
                                 "cfg": m.cfg_path, "log": m.log_path}
                        for i, m in self.members.items()},
            "blocked": [list(map(str, k)) + [v] for k, v in self.proxy.blocked().items()],
        }
