"""Helpers of the operations suite: four-letter words, the AdminServer and
/metrics, Ferrokeeper compared with Apache ZooKeeper 3.8 on the same scenario.

One ZooKeeper and one Ferrokeeper (AdminServer on, every four-letter word
whitelisted; Ferrokeeper also serves /metrics) are started once; the same
scenario (two sessions, ephemerals, 130+ transactions, data/child/exist and
persistent watches) runs on both, then every four-letter word and every
AdminServer command is captured in the same order on both. Tests compare the
captures; a few start servers of their own.
"""
import json
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
from collections import namedtuple

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
import zkharness  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402

JAVA = zkharness.JAVA_DIR
ADMIN_JARS = ["servlet-api.jar", "jetty9-server.jar", "jetty9-servlet.jar", "jetty9-http.jar",
              "jetty9-io.jar", "jetty9-util.jar", "jetty9-security.jar", "jackson-databind.jar",
              "jackson-core.jar", "jackson-annotations.jar"]
PROMETHEUS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

# Every four-letter word, in the order the captures run them: the resets last.
WORDS = ["conf", "cons", "dirs", "dump", "envi", "gtmk", "ruok", "srvr", "stat", "wchc", "wchp",
         "wchs", "mntr", "isro", "hash", "stmk", "crst", "srst"]

# AdminServer paths captured, in order (every ZooKeeper 3.8 command by each
# of its names, argument errors, unknown names, the list page).
ADMIN_PATHS = [
    "/commands", "/commands/",
    "/commands/ruok",
    "/commands/server_stats", "/commands/srvr", "/commands/stats", "/commands/stat",
    "/commands/configuration", "/commands/conf", "/commands/config",
    "/commands/connections", "/commands/cons",
    "/commands/dump",
    "/commands/environment", "/commands/env", "/commands/envi",
    "/commands/monitor", "/commands/mntr",
    "/commands/is_read_only", "/commands/isro",
    "/commands/watch_summary", "/commands/wchs",
    "/commands/watches", "/commands/wchc",
    "/commands/watches_by_path", "/commands/wchp",
    "/commands/dirs", "/commands/hash",
    "/commands/last_snapshot", "/commands/lsnp",
    "/commands/leader", "/commands/lead",
    "/commands/voting_view", "/commands/zabstate",
    "/commands/initial_configuration", "/commands/icfg",
    "/commands/system_properties", "/commands/sysp",
    "/commands/observers", "/commands/obsr",
    "/commands/get_trace_mask", "/commands/gtmk",
    "/commands/set_trace_mask", "/commands/set_trace_mask?traceMask=abc",
    "/commands/stmk?traceMask=99", "/commands/get_trace_mask",
    "/commands/set_trace_mask?traceMask=306",
    "/commands/nosuch", "/commands/digest", "/commands/ruok/extra", "/commands/ruok?x=1",
    "/commands/observer_connection_stat_reset", "/commands/orst",
    "/commands/connection_stat_reset", "/commands/crst",
    "/commands/stat_reset", "/commands/srst",
]


def zk_admin_available():
    return zkharness.zookeeper_available() and all(
        os.path.exists(os.path.join(JAVA, j)) for j in ADMIN_JARS)


class AdminServer(zkharness.Server):
    """zkharness.Server with the AdminServer on a free port (and, for
    ZooKeeper, the jars its Jetty needs)."""

    def __init__(self, kind, extra_cfg=None, metrics=False, wait_admin=True, **kw):
        self.wait_admin = wait_admin
        self.admin_port = zkharness.free_port()
        self.metrics_port = zkharness.free_port() if metrics else None
        cfg = {"admin.enableServer": "true", "admin.serverPort": str(self.admin_port),
               "admin.serverAddress": "127.0.0.1"}
        if metrics:
            cfg.update({"metricsProvider.className": PROMETHEUS_PROVIDER,
                        "metricsProvider.httpHost": "127.0.0.1",
                        "metricsProvider.httpPort": str(self.metrics_port)})
        cfg.update(extra_cfg or {})
        super().__init__(kind, extra_cfg=cfg, **kw)

    def command(self):
        cmd = super().command()
        if self.kind == "zookeeper":
            i = cmd.index("-cp")
            cmd[i + 1] = cmd[i + 1] + ":" + ":".join(os.path.join(JAVA, j) for j in ADMIN_JARS)
        return cmd

    def start(self, timeout=30.0):
        super().start(timeout)
        if not self.wait_admin:
            return self
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                status, _, _ = http_get(self.admin_port, "/commands/ruok", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind}: AdminServer did not answer: {self.log()}")


def http_get(port, path, timeout=10.0):
    """(status, headers, body text) of a GET."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


def four_letter(port, cmd, extra=b""):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(cmd.encode() + extra)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


class AddWatch(namedtuple("AddWatch", "path mode")):
    """addWatch (opcode 106) through kazoo's connection."""
    type = 106

    def serialize(self):
        p = self.path.encode()
        return struct.pack("!i", len(p)) + p + struct.pack("!i", self.mode)

    @classmethod
    def deserialize(cls, buf, off):
        return True


def add_watch(client, path, mode=0):
    res = client.handler.async_result()
    client._call(AddWatch(path, mode), res)
    return res.get(timeout=10)


class Capture:
    """A server after the scenario, and everything it answered."""

    def __init__(self, server):
        self.server = server
        self.sessions = {}      # session id -> "S1"/"S2"
        self.words = {}         # word -> text
        self.http = {}          # path -> (status, headers, body)
        self.clients = []

    def json(self, path):
        return json.loads(self.http[path][2])


def run_scenario(server):
    cap = Capture(server)
    c1 = KazooClient(hosts=server.hosts, timeout=10.0)
    c2 = KazooClient(hosts=server.hosts, timeout=10.0)
    c1.start(timeout=15)
    c2.start(timeout=15)
    cap.clients = [c1, c2]
    cap.sessions = {c1.client_id[0]: "S1", c2.client_id[0]: "S2"}
    c1.create("/a", b"x")
    c1.create("/a/b", b"yy")
    c1.create("/e", ephemeral=True)
    c2.create("/e2", ephemeral=True)
    c1.create("/bulk")
    # past zxid 0x80, where ZooKeeper logs a digest
    for r in [c1.create_async(f"/bulk/n{i}", b"v" * i) for i in range(130)]:
        r.get(timeout=30)
    for _ in range(5):
        c1.get("/a/b")
    c1.get("/a", watch=lambda e: None)
    c1.get_children("/a", watch=lambda e: None)
    c2.exists("/nope", watch=lambda e: None)
    c2.get("/a", watch=lambda e: None)
    add_watch(c2, "/p", 0)  # persistent: in both of ZooKeeper's watch tables
    for w in WORDS:
        extra = struct.pack("!q", 1234) if w == "stmk" else b""
        cap.words[w] = four_letter(server.port, w, extra)
    for p in ADMIN_PATHS:
        cap.http[p] = http_get(server.admin_port, p)
    return cap


