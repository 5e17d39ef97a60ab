"""pytest fixtures of the operations suite (see adminlib.py)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from adminlib import AdminServer, run_scenario, zk_admin_available, zkharness  # noqa: E402


def _start(kind, **kw):
    srv = AdminServer(kind, **kw)
    try:
        srv.start()
    except Exception:
        srv.close()
        raise
    return srv


@pytest.fixture(scope="session")
def fk_bin():
    if not os.path.exists(zkharness.ferrokeeper_bin()):
        pytest.fail(f"ferrokeeper binary not found at {zkharness.ferrokeeper_bin()}")


@pytest.fixture(scope="session")
def captures(fk_bin):
    """(zookeeper capture, ferrokeeper capture) after the same scenario."""
    if not zk_admin_available():
        pytest.skip("Apache ZooKeeper, java or the AdminServer's jars are not installed")
    zk = _start("zookeeper")
    fk = _start("ferrokeeper", metrics=True)
    caps = []
    try:
        caps = [run_scenario(zk), run_scenario(fk)]
        yield caps[0], caps[1]
    finally:
        for c in caps:
            for cl in c.clients:
                try:
                    cl.stop()
                    cl.close()
                except Exception:
                    pass
        zk.close()
        fk.close()


@pytest.fixture
def server_factory(fk_bin):
    """server_factory(kind="ferrokeeper", extra_cfg=None, metrics=False) -> started server."""
    started = []

    def make(kind="ferrokeeper", extra_cfg=None, metrics=False, props=None, wait_admin=True):
        if kind == "zookeeper" and not zk_admin_available():
            pytest.skip("Apache ZooKeeper or the AdminServer's jars are not installed")
        srv = _start(kind, extra_cfg=extra_cfg, metrics=metrics, props=props, wait_admin=wait_admin)
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.close()
