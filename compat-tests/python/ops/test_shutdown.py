"""Graceful shutdown: SIGTERM (and SIGINT) stop the server with exit status 0,
after the writes in flight have finished; every acknowledged write survives
the restart."""
import signal
import threading
import time

from kazoo.client import KazooClient

from opslib import wait_for, zkharness


def writer(hosts, prefix, acked, stop, errors):
    """Creates znodes with many requests in flight; records the acknowledged ones."""
    client = KazooClient(hosts=hosts, timeout=10, connection_retry=None, command_retry=None)
    try:
        client.start(timeout=10)
        n = 0
        while not stop.is_set():
            batch = []
            for _ in range(20):
                path = f"{prefix}-{n:06d}"
                n += 1
                batch.append((path, client.create_async(path, b"x" * 100)))
            for path, result in batch:
                try:
                    result.get(timeout=5)
                    acked.append(path)
                except Exception as e:  # connection loss at shutdown: not acknowledged
                    errors.append(repr(e))
                    stop.set()
                    break  # the rest of the batch is not acknowledged either
    except Exception as e:
        errors.append(repr(e))
    finally:
        try:
            client.stop()
            client.close()
        except Exception:
            pass


def start_writers(server, count=3):
    stop = threading.Event()
    acked = [[] for _ in range(count)]
    errors = []
    threads = [threading.Thread(target=writer, args=(server.hosts, f"/w{i}", acked[i], stop, errors), daemon=True)
               for i in range(count)]
    for t in threads:
        t.start()
    return stop, acked, errors, threads


def test_sigterm_exits_zero_and_acknowledged_writes_survive(binary):
    server = zkharness.Server(kind="ferrokeeper")
    try:
        server.start()
        stop, acked, errors, threads = start_writers(server)
        wait_for(lambda: sum(len(a) for a in acked) > 300, timeout=30, what="writes to be acknowledged")
        server.proc.send_signal(signal.SIGTERM)
        started = time.time()
        code = server.proc.wait(timeout=20)
        took = time.time() - started
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert code == 0, server.log()
        assert took < 5, took
        log = server.log()
        assert "shutting down" in log and "SIGTERM" in log, log
        assert "shutdown complete" in log, log

        server.start()
        client = KazooClient(hosts=server.hosts, timeout=10)
        client.start(timeout=10)
        try:
            present = set(client.get_children("/"))
            for paths in acked:
                missing = [p for p in paths if p[1:] not in present]
                assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        finally:
            client.stop()
            client.close()
        assert sum(len(a) for a in acked) > 300
    finally:
        server.close()


def test_sigint_exits_zero(binary):
    server = zkharness.Server(kind="ferrokeeper")
    try:
        server.start()
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=20) == 0, server.log()
        assert "SIGINT" in server.log()
    finally:
        server.close()


def test_shutdown_timeout_property_is_reported(binary):
    """zookeeper.request_throttler.shutdownTimeout bounds the drain."""
    server = zkharness.Server(kind="ferrokeeper", props={"zookeeper.request_throttler.shutdownTimeout": "2500"})
    try:
        server.start()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=20) == 0
        assert "limit_ms=2500" in server.log(), server.log()
    finally:
        server.close()

