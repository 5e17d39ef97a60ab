"""Servers for the differential oracle (used through the `servers` fixture of
conftest.py).

Each test module gets its own servers (module scope), started lazily:
  reference   - Apache ZooKeeper 3.8 (the oracle)
  zookeeper   - a second ZooKeeper 3.8: ZK vs ZK proves the normaliser stable
  ferrokeeper - target/debug/ferrokeeper (or $FERROKEEPER_BIN); its tests are
                skipped when the binary is missing or does not start, unless
                FERROKEEPER_REQUIRED=1 (then they fail).
ORACLE_TARGETS (default "zookeeper,ferrokeeper") selects the candidates.
ORACLE_DUMP=<dir> writes every rendered trace there.
"""
import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import zkharness  # noqa: E402
import zkraw as z  # noqa: E402

TARGETS = [x.strip() for x in os.environ.get("ORACLE_TARGETS", "zookeeper,ferrokeeper").split(",")
           if x.strip()]

# Same settings on every server. extendedTypesEnabled enables TTL nodes; the
# container manager interval is pushed far out so that it never deletes a node
# (a delete transaction) in the middle of a scenario.
ORACLE_PROPS = {
    "zookeeper.extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "3600000",
}


def wait_serving(server, timeout=30.0):
    """ruok answers before ZooKeeper serves sessions; wait for a real session."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.kind} exited with {server.proc.returncode}: "
                               f"{server.log()}")
        try:
            c = z.connect(server.port, timeout_ms=30000, sock_timeout=2.0)
            try:
                c.ping(timeout=2.0)
                c.close_session(timeout=2.0)
                return
            finally:
                c.close()
        except Exception as e:  # not yet
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{server.kind} never served a session: {last!r}\n{server.log()}")


def start_server(kind, props=None, extra_cfg=None):
    s = zkharness.Server(kind, props=props, extra_cfg=extra_cfg)
    try:
        s.start()
        wait_serving(s)
    except Exception:
        s.close()
        raise
    return s


class Servers:
    """Lazily started servers for one module."""

    def __init__(self, props=None, extra_cfg=None):
        self.props = dict(ORACLE_PROPS if props is None else props)
        self.extra_cfg = extra_cfg
        self.servers = {}
        self.failed = {}
        self.ref_cache = {}
        self.strikes = {}       # role -> consecutive runs where it did not answer

    def get(self, role):
        if role in self.servers:
            return self.servers[role]
        if role in self.failed:
            self._unavailable(role, self.failed[role])
        kind = "ferrokeeper" if role == "ferrokeeper" else "zookeeper"
        if kind == "zookeeper" and not zkharness.zookeeper_available():
            pytest.skip("Apache ZooKeeper (Debian jars) or java not installed")
        if kind == "ferrokeeper" and not os.path.exists(zkharness.ferrokeeper_bin()):
            self.failed[role] = f"binary {zkharness.ferrokeeper_bin()} not found"
            self._unavailable(role, self.failed[role])
        try:
            self.servers[role] = start_server(kind, self.props, self.extra_cfg)
        except Exception as e:
            self.failed[role] = f"{kind} did not start: {e}"
            self._unavailable(role, self.failed[role])
        return self.servers[role]

    @staticmethod
    def _unavailable(role, why):
        if role == "ferrokeeper" and os.environ.get("FERROKEEPER_REQUIRED") != "1":
            pytest.skip(why[:2000])
        pytest.fail(why[:4000])

    def unresponsive(self, role, did_not_answer):
        """Count consecutive runs in which a server did not answer at all; after
        three, later tests fail at once instead of waiting on timeouts."""
        self.strikes[role] = self.strikes.get(role, 0) + 1 if did_not_answer else 0
        if self.strikes[role] >= 3:
            self.failed[role] = f"{role} stopped answering (3 runs in a row)"

    def check_alive(self, role):
        s = self.servers.get(role)
        if s is not None and s.proc.poll() is not None:
            log = s.log()
            del self.servers[role]
            self.failed[role] = f"{role} died (exit {s.proc.returncode}): {log}"
            pytest.fail(self.failed[role][:4000])

    def close(self):
        for s in self.servers.values():
            s.close()
        self.servers.clear()



def dump(name, target, lines):
    d = os.environ.get("ORACLE_DUMP")
    if not d:
        return
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{name}.{target}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
