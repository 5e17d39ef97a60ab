#!/usr/bin/env python3
"""Start one server exactly as kazoo's harness does (kazoo.testing.harness
get_global_cluster(), same environment as the real run) and check that a
KazooClient can connect and create a node. Exit 0 when it can; otherwise print
the end of the server's log and exit 1, so run.sh can stop before a suite in
which every server test would wait through its connection retries.
"""
import sys
import time


def main():
    from kazoo.client import KazooClient
    from kazoo.testing import harness

    cluster = harness.get_global_cluster()
    ok = False
    t0 = time.time()
    try:
        cluster.start()
        servers = ",".join(s.address for s in cluster)
        for attempt in range(3):
            client = KazooClient(servers, timeout=5)
            try:
                client.start(timeout=8)
                client.ensure_path("/kazoo-upstream-preflight")
                client.delete("/kazoo-upstream-preflight")
                ok = True
                break
            except Exception as exc:  # noqa: BLE001 - report whatever it was
                print("preflight: attempt %d: %s: %s" % (attempt + 1, type(exc).__name__, exc))
            finally:
                try:
                    client.stop()
                    client.close()
                except Exception:
                    pass
        if ok:
            print("preflight: server up and serving after %.1fs" % (time.time() - t0))
        else:
            print("preflight: the server did not serve a kazoo client; end of its log:")
            for line in cluster.get_logs()[-40:]:
                print("  | " + line.rstrip("\n"))
            for s in cluster:
                rc = s.process.poll() if getattr(s, "process", None) else None
                if rc is not None:
                    print("preflight: server process already exited with status %s" % rc)
    finally:
        cluster.terminate()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
