"""The checker is not vacuous against real servers.

A real ensemble (of the implementation QUORUM_IMPL selects) and real kazoo
clients, but one client reaches its server through StaleReadShim, a
man-in-the-middle that remembers the first getData reply for each path and,
once armed, answers every later getData of that path with the remembered
body (keeping the real reply's xid, zxid and error). That client's reads go
stale although the servers are correct; the checker must say so:
read-your-writes for its plain reads, linearizability for its synced ones.

QUORUM_BROKEN_FERROKEEPER_BIN=path/to/a/deliberately broken ferrokeeper
makes test_broken_build_is_caught run the kill-the-leader workload against
that binary and require the verdict to fail (a checker violation or a lost
session/ephemeral/write). scripts/test builds one with the cargo feature
`deliberately-stale-follower` (followers apply 100 ms late and answer sync
at once) and sets it. Without it, that test skips.
"""
import os
import socket
import struct
import threading
import time

import pytest

from checker import check
from faultrun import kill_leader_under_load
from history import History, RecordingClient

pytestmark = pytest.mark.timeout(120)

GET_DATA = 4


def _recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _frames(sock):
    """Yield ZooKeeper frames (payload without the length) until EOF."""
    while True:
        (n,) = struct.unpack(">i", _recv_exactly(sock, 4))
        yield _recv_exactly(sock, n)


def _send(sock, payload):
    sock.sendall(struct.pack(">i", len(payload)) + payload)


class StaleReadShim:
    """Forwards one port to a server's client port, frame by frame; see the
    module docstring. Threads, blocking sockets; close() ends everything."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.armed = False
        self.replayed = 0
        self._cache = {}
        self._lock = threading.Lock()
        self._socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self):
        self.armed = True

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
            self._socks += [client, server]
            pending = {}
            threading.Thread(target=self._requests, args=(client, server, pending), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, pending), daemon=True).start()

    def _requests(self, client, server, pending):
        try:
            frames = _frames(client)
            _send(server, next(frames))                     # ConnectRequest
            for payload in frames:
                xid, op = struct.unpack(">ii", payload[:8])
                if op == GET_DATA:
                    (n,) = struct.unpack(">i", payload[8:12])
                    with self._lock:
                        pending[xid] = payload[12:12 + n]
                _send(server, payload)
        except (OSError, ConnectionError, StopIteration, struct.error):
            self._close_pair(client, server)

    def _replies(self, server, client, pending):
        try:
            frames = _frames(server)
            _send(client, next(frames))                     # ConnectResponse
            for payload in frames:
                xid, _zxid, err = struct.unpack(">iqi", payload[:16])
                with self._lock:
                    path = pending.pop(xid, None)
                    if path is not None and err == 0:
                        if path not in self._cache:
                            self._cache[path] = payload[16:]
                        elif self.armed:
                            payload = payload[:16] + self._cache[path]
                            self.replayed += 1
                _send(client, payload)
        except (OSError, ConnectionError, StopIteration, struct.error):
            self._close_pair(client, server)

    def _close_pair(self, *socks):
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self._close_pair(self.listener, *self._socks)


def test_stale_reads_through_a_replaying_shim_are_caught(make_ensemble, impl, artifacts):
    ens = make_ensemble(3)
    shim = StaleReadShim(ens.members[1].client_port)
    history = History()
    victim = RecordingClient(history, "victim", f"127.0.0.1:{shim.port}")
    other = RecordingClient(history, "other", ens.connect_string([2, 3]))
    try:
        plain, synced = "/catch/plain", "/catch/synced"
        other.zk.ensure_path("/catch")
        for key in (plain, synced):
            assert other.create(key, "v0").outcome == "ok"
            # A follower may lag behind the write: sync first, then the read
            # the shim remembers.
            assert victim.sync_read(key).result["value"] == "v0"
            assert victim.read(key).result["value"] == "v0"      # remembered by the shim
        shim.arm()
        assert victim.write(plain, "v1-by-victim").outcome == "ok"
        stale = victim.read(plain)                             # replayed: v0 again
        assert other.write(synced, "v1-by-other").outcome == "ok"
        stale_synced = victim.sync_read(synced)                # synced, still replayed
        assert shim.replayed == 2, "the shim did not replay the reads"
        assert stale.result["value"] == "v0" and stale_synced.result["value"] == "v0"
        history.dump(os.path.join(artifacts, "history.jsonl"))
        report = check(history.ops)
        print(f"\n{impl} checker on a stale-read shim:\n{report}")
        assert report.valid is False, str(report)
        text = "\n".join(report.violations)
        assert "read-your-writes" in text and f"op#{stale.id}" in text, text
        assert f"key {synced}" in text and f"op#{stale_synced.id}" in text, text
    finally:
        victim.close()
        other.close()
        shim.close()


@pytest.fixture
def broken_binary():
    """The deliberately broken Ferrokeeper build to run the workload against."""
    path = os.environ.get("QUORUM_BROKEN_FERROKEEPER_BIN")
    if not path:
        pytest.skip("set QUORUM_BROKEN_FERROKEEPER_BIN to a deliberately broken ferrokeeper build")
    if not os.path.exists(path):
        pytest.fail(f"QUORUM_BROKEN_FERROKEEPER_BIN={path} does not exist")
    return path


@pytest.mark.parametrize("impl", ["ferrokeeper"])
def test_broken_build_is_caught(make_ensemble, impl, artifacts, broken_binary):
    ens = make_ensemble(3, binary=broken_binary)
    run = kill_leader_under_load(ens, artifacts, name="broken-build")
    print(f"\n{impl} checker on {os.path.basename(broken_binary)}:\n{run.report}\nproblems: {run.problems}")
    assert run.report.valid is False or run.problems, (
        f"the checker found nothing wrong with {broken_binary}: {run.report}")
