"""Fixtures of the migration suite. `zk_capture` is one ZooKeeper 3.8 data
directory built by miglib.build_zk_tree and stopped with SIGTERM, shared by
the tests that only need ZooKeeper's files (auto import, refusal, dumps)."""
import os
import shutil
import sys
import tempfile
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import miglib  # noqa: E402
import zkharness  # noqa: E402


def pytest_collection_modifyitems(config, items):
    why = None
    if not zkharness.zookeeper_available():
        why = "Apache ZooKeeper 3.8 (Debian) and java are needed"
    elif not os.access(zkharness.ferrokeeper_bin(), os.X_OK):
        why = f"no ferrokeeper binary at {zkharness.ferrokeeper_bin()} (cargo build --bin ferrokeeper)"
    if why:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def zk_capture():
    """SimpleNamespace(data_dir, last_zxid, read, sessions) of a ZooKeeper
    data dir (data_dir/version-2). Its sessions have a 40 s timeout, so that
    nothing expires while a test uses the copy."""
    zk = miglib.new_zk()
    st = None
    out = tempfile.mkdtemp(prefix="fk-migration-capture-")
    try:
        zk.start()
        st = miglib.build_zk_tree(zk, abandoned_timeout_s=40.0)
        last, read = miglib.capture_stable(zk, st["a"])
        sessions = {k: st[k].client_id for k in ("a", "b", "e")}
        zk.stop()
        miglib.copy_v2(zk.data_dir, out)
        yield SimpleNamespace(data_dir=out, last_zxid=last, read=read, sessions=sessions)
    finally:
        for k in ("a", "b", "e", "f"):
            if st and st.get(k):
                st[k].close()
        zk.close()
        shutil.rmtree(out, ignore_errors=True)
