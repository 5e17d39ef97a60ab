"""Helpers of the operations suite: scripts/zkServer.sh, signals, configuration
errors and notices, ZooKeeper's environment variables.

Run: cd compat-tests/python && python3 -m pytest ops -q

Environment: FERROKEEPER_BIN (see zkharness.py). Tests that compare with
Apache ZooKeeper's own zkServer.sh skip when Debian's ZooKeeper is not
installed.
"""
import getpass
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import zkharness  # noqa: E402

SCRIPT = os.path.join(zkharness.REPO, "scripts", "zkServer.sh")
ZK_SCRIPT = "/usr/share/zookeeper/bin/zkServer.sh"

# Variables that change what the binary or the scripts do; tests set their own.
_SCRUB = ["ZOOCFGDIR", "ZOOCFG", "ZOO_LOG_DIR", "ZOO_LOG_FILE", "ZOO_LOG4J_PROP", "ZOOPIDFILE",
          "ZOO_DATADIR_AUTOCREATE_DISABLE", "SERVER_JVMFLAGS", "JVMFLAGS", "RUST_LOG", "ZOO_NOEXEC",
          "ZOO_STOP_TIMEOUT"]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["FERROKEEPER_BIN"] = zkharness.ferrokeeper_bin()
    env.update({k: str(v) for k, v in extra.items()})
    return env


def log_file_name():
    """The log file name the binary and the script choose by default."""
    user = os.environ.get("USER") or getpass.getuser()
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    return f"zookeeper-{user}-server-{host}.log"


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def answers(port, word="srvr"):
    try:
        return zkharness.four_letter(port, word, timeout=1.0)
    except OSError:
        return ""


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Conf:
    """A configuration directory with a zoo.cfg for one server on a free port."""

    def __init__(self, root, extra=None, name="zoo.cfg"):
        self.root = str(root)
        self.conf_dir = os.path.join(self.root, "conf")
        self.data_dir = os.path.join(self.root, "data")
        self.log_dir = os.path.join(self.root, "logs")
        os.makedirs(self.conf_dir, exist_ok=True)
        self.port = zkharness.free_port()
        self.cfg = {
            "tickTime": "2000",
            "dataDir": self.data_dir,
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "admin.enableServer": "false",
        }
        self.cfg.update(extra or {})
        self.path = self.write(name)

    def write(self, name="zoo.cfg", cfg=None):
        path = os.path.join(self.conf_dir, name)
        with open(path, "w") as f:
            for k, v in (cfg or self.cfg).items():
                f.write(f"{k}={v}\n")
        return path

    def pid_file(self):
        return os.path.join(self.data_dir, "zookeeper_server.pid")


def run_script(args, env, script=SCRIPT, timeout=60):
    return subprocess.run([script] + list(args), env=env, capture_output=True, text=True, timeout=timeout)


def run_binary(args, env=None, timeout=15):
    return subprocess.run([zkharness.ferrokeeper_bin()] + list(args), env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)
