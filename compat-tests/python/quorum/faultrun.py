"""One fault scenario's workload, final read-back and verdict, shared by
test_faults.py and test_checker_catches.py.

Role: a test creates an Ensemble, then a Run: the Run starts a recorded
Workload (history.py) on fresh keys, the test injects its faults (marking
the times it wants measured), and run.finish() stops the load, reads every
key back through every serving server after `sync` (recorded, so the
checker judges them too), checks that the workload's clients kept their
sessions and ephemerals, runs checker.check, prints one summary line and
dumps the history. run.assert_valid() then fails the test on a checker
violation, an undecided check, or a harness-level problem.

kill_leader_under_load() is the scenario both suites share (test_checker_catches
runs it against a deliberately broken build and expects a failure).

Inputs: an Ensemble, a scenario name, workload settings.
Outputs: run.report (checker.Report), run.problems (list of strings),
run.notes (numbers: failover_ms, ...), a line in RESULTS (printed by
conftest at the end of the session) and <artifacts>/history.jsonl.
"""
import os
import time

from checker import check
from history import History, RecordingClient, Workload

RESULTS = []


class Run:
    def __init__(self, ens, name, artifacts=None, clients=5, keys=4, hosts=None,
                 session_timeout=10.0, op_timeout=3.0, mix=None, think=0.01, ephemerals=True,
                 seed=0):
        self.ens = ens
        self.name = name
        self.artifacts = artifacts
        self.history = History()
        self.keys = [f"/q/{name}/k{i}" for i in range(keys)]
        self.ephemeral_dir = f"/q/{name}/eph" if ephemerals else None
        self.workload = Workload(self.history, hosts or ens.connect_string(), self.keys, clients, mix,
                                 think, session_timeout, op_timeout, seed, self.ephemeral_dir)
        self.notes = {}
        self.problems = []
        self.report = None
        self.faults_end = 0.0
        self._clients = []

    def start(self):
        self.workload.start()
        return self

    def now(self):
        return self.history.now()

    def client(self, name, hosts, **kwargs):
        """A RecordingClient of this run's history, closed at the end."""
        c = RecordingClient(self.history, name, hosts, **kwargs)
        self._clients.append(c)
        return c

    def fault_done(self):
        """Mark the end of the faults: every workload client must complete an
        ok op after this point (it continued on its session)."""
        self.faults_end = self.now()

    def measure_failover(self, t, timeout=30.0, label="failover_ms"):
        """Wait for the first ok write invoked at or after history time t;
        note and return the delay in ms (None if none within timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            first = self.history.first_ok_after(t)
            if first is not None:
                self.notes[label] = round((first - t) * 1000)
                return self.notes[label]
            time.sleep(0.02)
        self.problems.append(f"no write acknowledged within {timeout}s after {label} start")
        self.notes[label] = None
        return None

    def final_reads(self, servers=None, attempts=5):
        """sync + getData of every key through each server given (default
        every running, unpaused one), recorded; returns {server: {key: (value, version)}}."""
        servers = servers or [i for i, m in self.ens.members.items() if m.alive() and not m.paused]
        seen = {}
        for i in servers:
            c = self.client(f"final-{i}", self.ens.connect_string([i]), randomize_hosts=False)
            seen[i] = {}
            for key in self.keys:
                for _ in range(attempts):
                    op = c.sync_read(key)
                    if op.outcome == "ok":
                        r = op.result
                        seen[i][key] = None if r.get("absent") else (r["value"], r["version"])
                        break
                    time.sleep(0.2)
                else:
                    self.problems.append(f"server {i}: no final read of {key}: {op.describe()}")
        reference = None
        for i, values in seen.items():
            if reference is None:
                reference = (i, values)
            elif values != reference[1]:
                self.problems.append(f"servers {reference[0]} and {i} disagree after sync: "
                                     f"{reference[1]} vs {values}")
        return seen

    def check_sessions(self, servers=None):
        """Every workload client still has its first session, is connected,
        made an ok op after fault_done(), and its ephemeral exists on every
        server given, owned by that session."""
        servers = servers or [i for i, m in self.ens.members.items() if m.alive() and not m.paused]
        ops = self.history.ops
        for name, c in self.workload.clients.items():
            if c.errors:
                self.problems.append(f"client {name}: kazoo logged {c.errors[0]}")
            first = self.workload.sessions[name]
            if c.session_id != first or not c.zk.connected:
                now = f"{c.session_id:#x}" if c.session_id else "none"
                self.problems.append(f"client {name} lost its session {first:#x} (now {now}, "
                                     f"state {c.zk.state}, connected={c.zk.connected})")
            if not any(op.client == name and op.outcome == "ok" and op.invoke >= self.faults_end
                       for op in ops):
                self.problems.append(f"client {name} made no ok op after the faults")
        if not self.ephemeral_dir:
            return
        for i in servers:
            c = self.client(f"eph-{i}", self.ens.connect_string([i]), randomize_hosts=False)
            c.zk.sync(self.ephemeral_dir)
            for name in self.workload.clients:
                stat = c.zk.exists(f"{self.ephemeral_dir}/{name}")
                want = self.workload.sessions[name]
                if stat is None or stat.ephemeralOwner != want:
                    self.problems.append(f"server {i}: ephemeral of {name} (session {want:#x}) is "
                                         f"{'missing' if stat is None else f'owned by {stat.ephemeralOwner:#x}'}")

    def finish(self, sessions=True, servers=None):
        """Stop the load, read back, check sessions, run the checker, report."""
        self.workload.stop()
        self.final_reads(servers)
        if sessions:
            self.check_sessions(servers)
        self.report = check(self.history.ops)
        counts = self.history.counts()
        parts = [f"{k}={v}" for k, v in counts.items()]
        parts += [f"{k}={v}" for k, v in self.notes.items()]
        parts += [f"check_s={self.report.stats['check_s']}", f"verdict={self.report.valid}"]
        if self.problems:
            parts.append(f"problems={len(self.problems)}")
        line = f"{self.ens.impl} {self.name}: " + " ".join(parts)
        RESULTS.append(line)
        print("\n" + line, flush=True)
        if self.artifacts:
            self.history.dump(os.path.join(self.artifacts, "history.jsonl"))
        return self.report

    def assert_valid(self):
        assert self.report is not None, "finish() first"
        assert not self.problems, "\n".join(self.problems)
        assert self.report.valid is True, str(self.report)

    def close(self):
        self.workload.close()
        for c in self._clients:
            c.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def kill_leader_under_load(ens, artifacts=None, name="kill-leader"):
    """The kill-the-leader scenario (test_faults and test_checker_catches):
    3 s of load, kill -9 the leader, measure the new leader and the first
    acknowledged write, 3 s more, restart the old leader, 2 s more, finish.
    Returns the finished Run (not yet asserted)."""
    with Run(ens, name, artifacts) as run:
        time.sleep(3)
        old = ens.wait_for_leader()
        t = run.now()
        ens.kill(old)
        started = time.monotonic()
        new = ens.wait_for_leader(30, among=[i for i in ens.ids() if i != old])
        run.notes["leader_ms"] = round((time.monotonic() - started) * 1000)
        run.measure_failover(t)
        time.sleep(3)
        ens.start_server(old)
        ens.wait_serving(ens.ids(), 60)
        run.notes["old_leader"], run.notes["new_leader"] = old, new
        run.fault_done()
        time.sleep(2)
        run.finish()
    return run
