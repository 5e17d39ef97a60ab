"""pytest setup of the quorum suite: which implementations to run, a private
copy of the Ferrokeeper binary, and the `make_ensemble` fixture.

Environment:
  QUORUM_IMPL       ferrokeeper (default) | zookeeper | both
  FERROKEEPER_BIN   the binary under test (default target/debug/ferrokeeper);
                    the session runs on a private copy, so a rebuild during
                    the run cannot mix two builds
  QUORUM_ARTIFACTS  where histories (always) and server logs (of failed
                    tests) go; default /tmp/fk-quorum-artifacts
  QUORUM_KEEP=1     keep every ensemble's directory

Tests that take an `impl` argument are run once per selected implementation
(unless they parametrize it themselves).
make_ensemble(size=3, observers=0, **Ensemble kwargs) starts an ensemble and
waits for it to serve; Ferrokeeper builds that refuse replicated
configurations make the test skip with the server's own message.
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
from ensemble import Ensemble, ReplicationRefused  # noqa: E402

ARTIFACTS = os.environ.get("QUORUM_ARTIFACTS", os.path.join(tempfile.gettempdir(), "fk-quorum-artifacts"))
_BIN_COPY = None


def selected_impls():
    choice = os.environ.get("QUORUM_IMPL", "ferrokeeper")
    if choice == "both":
        return ["zookeeper", "ferrokeeper"]
    if choice not in ("zookeeper", "ferrokeeper"):
        raise pytest.UsageError(f"QUORUM_IMPL must be zookeeper, ferrokeeper or both, not {choice!r}")
    return [choice]


def pytest_configure(config):
    global _BIN_COPY
    src = zkharness.ferrokeeper_bin()
    if "ferrokeeper" in selected_impls() and os.path.exists(src):
        _BIN_COPY = tempfile.mkdtemp(prefix="fk-quorum-bin-")
        dst = os.path.join(_BIN_COPY, "ferrokeeper")
        shutil.copy2(src, dst)
        os.environ["FERROKEEPER_BIN"] = dst


def pytest_unconfigure(config):
    if _BIN_COPY:
        shutil.rmtree(_BIN_COPY, ignore_errors=True)


def pytest_generate_tests(metafunc):
    """Parametrize `impl` over the selected implementations, unless the
    test fixes it itself."""
    fixed = any("impl" in (m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0])
                for m in metafunc.definition.iter_markers("parametrize"))
    if "impl" in metafunc.fixturenames and not fixed:
        metafunc.parametrize("impl", selected_impls())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


def skip_unless_runnable(impl):
    if impl == "zookeeper" and not zkharness.zookeeper_available():
        pytest.skip("Apache ZooKeeper 3.8 is not installed (scripts/setup installs it)")
    if impl == "ferrokeeper" and not os.path.exists(zkharness.ferrokeeper_bin()):
        pytest.skip(f"no Ferrokeeper binary at {zkharness.ferrokeeper_bin()} (cargo build)")


@pytest.fixture
def artifacts(request):
    """A per-test directory for histories and, if the test fails, server logs."""
    path = os.path.join(ARTIFACTS, request.node.name.replace("/", "_"))
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


@pytest.fixture
def make_ensemble(request, impl, artifacts):
    made = []

    def factory(size=3, observers=0, **kwargs):
        skip_unless_runnable(impl)
        ens = Ensemble(size, impl=impl, observers=observers, **kwargs)
        made.append(ens)
        try:
            ens.start(timeout=90)
        except ReplicationRefused as e:
            pytest.skip(f"this Ferrokeeper binary refuses replicated configurations: {e}")
        return ens

    yield factory
    failed = getattr(request.node, "failed_call", True)
    for ens in made:
        if failed:
            for i, m in ens.members.items():
                if os.path.exists(m.log_path):
                    shutil.copy(m.log_path, os.path.join(artifacts, f"server{i}.log"))
                shutil.copy(m.cfg_path, os.path.join(artifacts, f"zoo{i}.cfg"))
        ens.close()


def pytest_terminal_summary(terminalreporter):
    from faultrun import RESULTS
    if RESULTS:
        terminalreporter.section("quorum fault runs")
        for line in RESULTS:
            terminalreporter.write_line(line)
