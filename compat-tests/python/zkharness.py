"""Start a real Apache ZooKeeper (the oracle) or a Ferrokeeper process on free
loopback ports, for tests. Every process is bounded in time and killed at exit.

Environment:
  FERROKEEPER_BIN  path of the ferrokeeper binary (default: target/debug/ferrokeeper
                   under the repository root)
  ZK_CLASSPATH     classpath of the Debian ZooKeeper 3.8 server (default below)
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JAVA_DIR = "/usr/share/java"
ZK_JARS = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar",
           "netty-all.jar", "commons-cli.jar", "metrics-core.jar", "snappy-java.jar"]
DEFAULT_ZK_CLASSPATH = ":".join(os.path.join(JAVA_DIR, j) for j in ZK_JARS)

_live = []


def _cleanup():
    for p in list(_live):
        try:
            p.kill()
        except Exception:
            pass


atexit.register(_cleanup)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ferrokeeper_bin():
    return os.environ.get("FERROKEEPER_BIN", os.path.join(REPO, "target", "debug", "ferrokeeper"))


def zookeeper_available():
    return os.path.exists(os.path.join(JAVA_DIR, "zookeeper.jar")) and shutil.which("java")


def four_letter(port, cmd, timeout=5.0):
    """Send a four-letter word and return the whole answer as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd.encode())
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


class Server:
    """One server process. kind is 'ferrokeeper' or 'zookeeper'."""

    def __init__(self, kind="ferrokeeper", extra_cfg=None, props=None, tick_time_ms=2000):
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"fk-{kind}-")
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.cfg_path = os.path.join(self.dir, "zoo.cfg")
        cfg = {
            "tickTime": str(tick_time_ms),
            "dataDir": self.data_dir,
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": "0",
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
        }
        cfg.update(extra_cfg or {})
        with open(self.cfg_path, "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}={v}\n")
        self.props = dict(props or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def command(self):
        props = [f"-D{k}={v}" for k, v in self.props.items()]
        if self.kind == "zookeeper":
            cp = os.environ.get("ZK_CLASSPATH", DEFAULT_ZK_CLASSPATH)
            return ["java", "-Xmx512m", "-Dzookeeper.admin.enableServer=false"] + props + [
                "-cp", cp, "org.apache.zookeeper.server.ZooKeeperServerMain", self.cfg_path]
        return [ferrokeeper_bin(), "--config", self.cfg_path] + props

    def start(self, timeout=30.0):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _live.append(self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}: {self.log()}")
            try:
                answer = four_letter(self.port, "ruok", timeout=1.0)
                # A server whose whitelist excludes ruok still answers, with a refusal.
                if answer.startswith("imok") or "not executed" in answer:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start within {timeout}s: {self.log()}")

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc in _live:
            _live.remove(self.proc)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
