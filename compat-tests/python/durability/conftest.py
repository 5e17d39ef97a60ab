"""End-to-end durability suite for Ferrokeeper: crash loops, damaged log
tails, refused corruption, sessions across restarts, snapshot retention.

Run: cd compat-tests/python && python3 -m pytest durability -q
Environment: CRASH_ITERATIONS (default 50), FERROKEEPER_BIN, DURABILITY_KEEP=1
(keep the temporary data directories for inspection).
"""
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import zkharness  # noqa: E402
from dhelpers import DurableServer  # noqa: E402


_BIN_COPY = None


def pytest_configure(config):
    """Runs the whole session on a private copy of the binary, so that a
    rebuild during the run cannot mix two builds on one dataDir."""
    global _BIN_COPY
    src = zkharness.ferrokeeper_bin()
    if not os.path.exists(src):
        raise pytest.UsageError(f"no Ferrokeeper binary at {src} (cargo build --bin ferrokeeper)")
    _BIN_COPY = tempfile.mkdtemp(prefix="fk-durability-bin-")
    dst = os.path.join(_BIN_COPY, "ferrokeeper")
    shutil.copy2(src, dst)
    os.environ["FERROKEEPER_BIN"] = dst


def pytest_unconfigure(config):
    if _BIN_COPY:
        shutil.rmtree(_BIN_COPY, ignore_errors=True)


@pytest.fixture
def make_server():
    """make_server(props=..., extra_cfg=..., tick_time_ms=...) -> a started
    DurableServer; all of them are stopped and removed after the test."""
    made = []

    def factory(props=None, extra_cfg=None, tick_time_ms=2000, start=True, separate_log_dir=False):
        s = DurableServer(props=props, extra_cfg=extra_cfg, tick_time_ms=tick_time_ms,
                          separate_log_dir=separate_log_dir)
        made.append(s)
        if start:
            s.start()
        return s

    yield factory
    for s in made:
        s.close()


_REPORT = []


@pytest.fixture
def report():
    """report(line): printed now and again in the terminal summary (shown
    even with -q and passing tests)."""
    def add(line):
        print(line)
        _REPORT.append(line)
    return add


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section("durability results")
        for line in _REPORT:
            terminalreporter.write_line(line)
