"""Fixtures of the operations suite (helpers in opslib.py)."""
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import opslib  # noqa: E402


@pytest.fixture
def binary():
    b = opslib.zkharness.ferrokeeper_bin()
    if not os.path.exists(b):
        pytest.fail(f"no ferrokeeper binary at {b}: run cargo build (or set FERROKEEPER_BIN)")
    return b


@pytest.fixture
def reaper():
    """Pids (or pid files) to kill at the end of a test, whatever happened."""
    pids, pid_files = [], []

    class R:
        def pid(self, p):
            pids.append(p)

        def pid_file(self, f):
            pid_files.append(f)

    yield R()
    for f in pid_files:
        try:
            with open(f) as fh:
                pids.append(int(fh.read().strip()))
        except (OSError, ValueError):
            pass
    for p in pids:
        if opslib.alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
