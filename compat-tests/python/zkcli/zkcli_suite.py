"""Scenarios, servers and transcripts of the zkCli scenario test (see conftest.py)."""
import os

import pytest

import zkharness
import zkcli_normalise as zn
import zkcli_runner as zr

# Each scenario runs on fresh servers started with the same settings.
# The container manager interval is pushed out so that no container or
# expired TTL node is reaped (a transaction) in the middle of a scenario.
SCENARIOS = {
    "extended": {
        "file": "extended.zkcli",
        "props": {"zookeeper.extendedTypesEnabled": "true",
                  "zookeeper.enforceQuota": "true",
                  "znode.container.checkIntervalMs": "3600000"},
    },
    "plain": {
        "file": "plain.zkcli",
        "props": {"znode.container.checkIntervalMs": "3600000"},
    },
}

TARGETS = [t.strip() for t in os.environ.get("ZKCLI_TARGETS", "zookeeper,ferrokeeper").split(",")
           if t.strip()]


class Transcript:
    def __init__(self, scenario, kind, steps, run, port, norm):
        self.scenario, self.kind, self.steps, self.run = scenario, kind, steps, run
        self.port, self.norm = port, norm

    def dump(self, directory, tag):
        os.makedirs(directory, exist_ok=True)
        base = os.path.join(directory, f"{self.scenario}-{tag}")
        with open(base + ".raw.txt", "w", encoding="utf-8") as f:
            f.write(self.run.raw)
        with open(base + ".norm.txt", "w", encoding="utf-8") as f:
            f.write(zn.render_all(self.norm))
            f.write(f"<exit> returncode={self.run.returncode} timed_out={self.run.timed_out}\n")


def run_scenario(scenario, kind):
    spec = SCENARIOS[scenario]
    steps = zr.parse_scenario(os.path.join(zr.SCENARIO_DIR, spec["file"]))
    srv = zkharness.Server(kind, props=spec["props"])
    try:
        srv.start()
        run = zr.run_zkcli(steps, srv.hosts)
    finally:
        srv.close()
    return Transcript(scenario, kind, steps, run, srv.port, zn.normalise_run(steps, run, srv.port))


class References:
    """The reference ZooKeeper transcript of each scenario, run once per session."""

    def __init__(self):
        self.cache = {}

    def get(self, scenario):
        if scenario not in self.cache:
            if not zkharness.zookeeper_available():
                pytest.skip("Apache ZooKeeper (java + /usr/share/java/zookeeper.jar) not available")
            self.cache[scenario] = run_scenario(scenario, "zookeeper")
        return self.cache[scenario]


def ferrokeeper_usable():
    path = zkharness.ferrokeeper_bin()
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return None
    return f"ferrokeeper binary not found at {path}"
