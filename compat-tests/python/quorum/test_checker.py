"""Unit tests of checker.py on synthetic histories (no servers).

Histories that must pass: sequential and overlapping operations, info
operations that did and did not take effect, failed CAS, create/delete,
different sessions seeing different (plain) states, and a few thousand
simulated operations of 5 clients. Histories that must fail: a stale synced
read after an acknowledged write, a lost acknowledged write, a CAS that
succeeded twice on the same version, non-monotonic session reads, a read
that misses the session's own write, a value nobody wrote, a value read
before it was written. Plus: the search reports "undecided" when capped.
"""
import os
import random
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import check  # noqa: E402
from history import Op  # noqa: E402


class H:
    """Builds a history by hand: h.op(client, kind, key, invoke, complete, ...)."""

    def __init__(self):
        self.ops = []
        self.zxid = 100

    def op(self, client, kind, key, t0, t1, outcome="ok", value=None, ev=None, session=None,
           **result):
        if kind in ("read", "sync_read") and value is not None:
            result["value"], value = value, None
        op = Op(id=len(self.ops), client=client, kind=kind, key=key, value=value,
                expected_version=ev, invoke=t0, complete=t1, outcome=outcome, result=result,
                session=session or (0x1000 + sum(map(ord, client))))
        self.ops.append(op)
        return op

    def create(self, key="/k", value="init", t0=0.0, t1=0.1, client="setup"):
        return self.op(client, "create", key, t0, t1, value=value, version=0, mzxid=self.next())

    def next(self):
        self.zxid += 1
        return self.zxid


def assert_valid(ops):
    report = check(ops)
    assert report.valid is True, str(report)
    return report


def assert_violation(ops, *words, precheck=True):
    report = check(ops, precheck=precheck)
    assert report.valid is False, str(report)
    text = "\n".join(report.violations)
    for w in words:
        assert w in text, text
    return report


# -- must pass ----------------------------------------------------------------

def test_sequential_history_passes():
    h = H()
    h.create()
    h.op("a", "write", "/k", 1, 2, value="a1", version=1, mzxid=h.next())
    h.op("b", "sync_read", "/k", 3, 4, value="a1", version=1, mzxid=h.zxid)
    h.op("b", "cas", "/k", 5, 6, value="b1", ev=1, version=2, mzxid=h.next())
    h.op("a", "read", "/k", 7, 8, value="b1", version=2, mzxid=h.zxid)
    h.op("a", "cas", "/k", 9, 10, "fail", value="a2", ev=1, error="BadVersionError")
    assert_valid(h.ops)


def test_overlapping_writes_in_either_order_pass():
    h = H()
    h.create()
    # b's write took effect first although a's was invoked first.
    h.op("a", "write", "/k", 1.0, 3.0, value="a1", version=2, mzxid=h.next() + 1)
    h.op("b", "write", "/k", 1.5, 2.5, value="b1", version=1, mzxid=h.zxid)
    h.next()
    # A synced read overlapping both may see the middle state.
    h.op("c", "sync_read", "/k", 1.2, 2.8, value="b1", version=1, mzxid=h.zxid - 1)
    h.op("c", "sync_read", "/k", 4.0, 4.5, value="a1", version=2, mzxid=h.zxid)
    assert_valid(h.ops)


def test_info_write_that_happened_passes():
    h = H()
    h.create()
    h.op("a", "write", "/k", 1, 2, "info", value="a1", error="ConnectionLoss")
    h.op("b", "write", "/k", 3, 4, value="b1", version=2, mzxid=h.next())
    # a1 must have happened (version 2 after b's write means one write before it).
    h.op("c", "sync_read", "/k", 5, 6, value="b1", version=2, mzxid=h.zxid)
    assert_valid(h.ops)


def test_info_write_that_took_effect_late_passes():
    h = H()
    h.create()
    h.op("a", "write", "/k", 1, 2, "info", value="a1", error="ConnectionLoss")
    h.op("b", "write", "/k", 3, 4, value="b1", version=1, mzxid=h.next())
    # The lost-looking write was applied after b's (it was still queued).
    h.op("c", "sync_read", "/k", 5, 6, value="a1", version=2, mzxid=h.next())
    assert_valid(h.ops)


def test_info_write_that_never_happened_passes():
    h = H()
    h.create()
    h.op("a", "cas", "/k", 1, 2, "info", value="a1", ev=0, error="KazooTimeoutError")
    h.op("b", "write", "/k", 3, 4, value="b1", version=1, mzxid=h.next())
    h.op("c", "sync_read", "/k", 5, 6, value="b1", version=1, mzxid=h.zxid)
    assert_valid(h.ops)


def test_create_delete_and_recreate_pass():
    h = H()
    h.create()
    h.op("a", "delete", "/k", 1, 2, ev=-1)
    h.op("b", "sync_read", "/k", 3, 4, absent=True)
    h.op("b", "read", "/k", 3.5, 3.6, absent=True)
    h.op("a", "write", "/k", 4.1, 4.2, "fail", value="a1", error="NoNodeError")
    h.op("b", "create", "/k", 5, 6, value="b1", version=0, mzxid=h.next())
    h.op("a", "create", "/k", 5.5, 6.5, "fail", value="a2", error="NodeExistsError")
    h.op("a", "delete", "/k", 7, 8, "fail", ev=3, error="BadVersionError")
    h.op("a", "read", "/k", 9, 10, value="b1", version=0, mzxid=h.zxid)
    assert_valid(h.ops)


def test_sessions_may_see_different_plain_states():
    h = H()
    h.create()
    h.op("a", "write", "/k", 1, 2, value="a1", version=1, mzxid=h.next())
    # b's plain read is served by a lagging follower: allowed (not linearizable, but
    # sequentially consistent for b, which never saw a1).
    h.op("b", "read", "/k", 3, 4, value="init", version=0, mzxid=101)
    h.op("b", "read", "/k", 5, 6, value="a1", version=1, mzxid=h.zxid)
    assert_valid(h.ops)


# -- must fail ------------------------------------------------------------------

# Each (a) violation is shown twice: found by the exact pre-check, and by the
# search alone (precheck=False), which must produce its own counter-example.
SEARCH = "no linearization"
PRECHECK = {"stale": "stale read or a lost write", "twice": "two writes both produced"}


@pytest.mark.parametrize("precheck", [True, False])
def test_stale_synced_read_after_acked_write_fails(precheck):
    h = H()
    h.create()
    h.op("a", "write", "/k", 1, 2, value="a1", version=1, mzxid=h.next())
    h.op("b", "sync_read", "/k", 3, 4, value="init", version=0, mzxid=101)
    r = assert_violation(h.ops, PRECHECK["stale"] if precheck else SEARCH, "op#1", "op#2",
                         precheck=precheck)
    if not precheck:
        assert "register after it: {('a1', v1)}" in r.violations[0]


@pytest.mark.parametrize("precheck", [True, False])
def test_lost_acknowledged_write_fails(precheck):
    h = H()
    h.create()
    h.op("a", "write", "/k", 1, 2, value="a1", version=1, mzxid=h.next())
    h.op("b", "write", "/k", 3, 4, value="b1", version=2, mzxid=h.next())
    # A final read shows only a's write: b's acknowledged write is gone.
    h.op("c", "sync_read", "/k", 10, 11, value="a1", version=1, mzxid=h.zxid - 1)
    assert_violation(h.ops, PRECHECK["stale"] if precheck else SEARCH, "op#3", precheck=precheck)


@pytest.mark.parametrize("precheck", [True, False])
def test_cas_succeeding_twice_on_one_version_fails(precheck):
    h = H()
    h.create()
    h.op("a", "cas", "/k", 1, 3, value="a1", ev=0, version=1, mzxid=h.next())
    h.op("b", "cas", "/k", 1.5, 3.5, value="b1", ev=0, version=1, mzxid=h.next())
    assert_violation(h.ops, PRECHECK["twice"] if precheck else SEARCH, precheck=precheck)


def test_lost_write_behind_a_delete_needs_the_search():
    # With a delete in the key's history versions restart, the pre-check
    # stands aside, and the search must find it.
    h = H()
    h.create()
    h.op("a", "delete", "/k", 1, 2, ev=-1)
    h.op("a", "create", "/k", 3, 4, value="a1", version=0, mzxid=h.next())
    h.op("b", "write", "/k", 5, 6, value="b1", version=1, mzxid=h.next())
    h.op("c", "sync_read", "/k", 7, 8, value="a1", version=0, mzxid=h.zxid - 1)
    assert_violation(h.ops, SEARCH, "op#4")


def test_non_monotonic_session_reads_fail():
    h = H()
    h.create()
    h.op("w", "write", "/k", 1, 2, value="w1", version=1, mzxid=h.next())
    h.op("w", "write", "/k", 3, 4, value="w2", version=2, mzxid=h.next())
    h.op("r", "read", "/k", 5, 6, value="w2", version=2, mzxid=h.zxid)
    h.op("r", "read", "/k", 7, 8, value="w1", version=1, mzxid=h.zxid - 1)
    assert_violation(h.ops, "broke monotonic reads", "op#4")


def test_read_missing_own_acked_write_fails():
    h = H()
    h.create()
    h.op("a", "write", "/k", 1, 2, value="a1", version=1, mzxid=h.next())
    h.op("a", "read", "/k", 3, 4, value="init", version=0, mzxid=101)
    assert_violation(h.ops, "broke read-your-writes")


def test_read_of_present_node_after_own_delete_fails():
    h = H()
    h.create()
    h.op("a", "read", "/k", 1, 2, value="init", version=0, mzxid=101)
    h.op("a", "delete", "/k", 3, 4, ev=-1)
    h.op("a", "read", "/k", 5, 6, value="init", version=0, mzxid=101)
    assert_violation(h.ops, "after the delete")


def test_value_never_written_fails():
    h = H()
    h.create()
    h.op("a", "read", "/k", 1, 2, value="ghost", version=1, mzxid=555)
    assert_violation(h.ops, "no write produced")


def test_value_read_before_it_was_written_fails():
    h = H()
    h.create()
    h.op("a", "read", "/k", 1, 2, value="b1", version=1, mzxid=102)
    h.op("b", "write", "/k", 3, 4, value="b1", version=1, mzxid=h.next())
    assert_violation(h.ops, "written only later")


def test_absent_read_without_delete_fails():
    h = H()
    h.create()
    h.op("a", "read", "/k", 1, 2, absent=True)
    assert_violation(h.ops, "no delete explains")


def test_search_cap_reports_undecided():
    h = H()
    h.create()
    for i in range(12):
        h.op(f"c{i}", "write", "/k", 1 + i * 0.01, 2, "info", value=f"v{i}", error="ConnectionLoss")
    h.op("r", "sync_read", "/k", 3, 4, value="v3", version=7, mzxid=999)
    report = check(h.ops, max_steps_per_key=20)
    assert report.valid is None, str(report)
    assert "capped" in report.undecided[0]


# -- scale ------------------------------------------------------------------------

def simulate(n_ops=3000, clients=5, keys=("/a", "/b", "/c"), info_rate=0.02, seed=1):
    """A linearizable history: each op takes effect at a random point of its
    interval, against a real register; some ops become info (half of them
    applied, half not)."""
    rng = random.Random(seed)
    planned = []
    clock = {c: 0.0 for c in range(clients)}
    per_client = n_ops // clients
    for c in range(clients):
        for n in range(per_client):
            t0 = clock[c] + rng.uniform(0.0, 0.002)
            t1 = t0 + rng.uniform(0.001, 0.02)
            clock[c] = t1
            kind = rng.choices(["write", "cas", "read", "sync_read"], [3, 3, 2, 2])[0]
            planned.append((rng.uniform(t0, t1), c, n, kind, rng.choice(keys), t0, t1))
    planned.sort()
    state = {k: ("init", 0, 1) for k in keys}    # value, version, mzxid
    zxid = 1
    ops = []
    seen = {}
    for point, c, n, kind, key, t0, t1 in planned:
        value, version, mzxid = state[key]
        op = Op(id=len(ops), client=f"c{c}", kind=kind, key=key, invoke=t0, complete=t1,
                session=0x100 + c, outcome="ok")
        info = kind in ("write", "cas") and rng.random() < info_rate
        if kind in ("read", "sync_read"):
            op.result = {"value": value, "version": version, "mzxid": mzxid}
        else:
            op.value = f"c{c}-{n}"
            if kind == "cas":
                op.expected_version = seen.get((c, key), version if rng.random() < 0.5 else 0)
            applies = kind == "write" or op.expected_version == version
            if info:
                op.outcome, op.result = "info", {"error": "ConnectionLoss"}
                applies = applies and rng.random() < 0.5
            elif not applies:
                op.outcome, op.result = "fail", {"error": "BadVersionError"}
            if applies:
                zxid += 1
                state[key] = (op.value, version + 1, zxid)
                if not info:
                    op.result = {"version": version + 1, "mzxid": zxid}
        if op.outcome == "ok":
            seen[(c, key)] = op.result["version"]
        ops.append(op)
    for key in keys:
        ops.insert(0, Op(id=-1, client="setup", kind="create", key=key, value="init", invoke=-2,
                         complete=-1, outcome="ok", result={"version": 0, "mzxid": 1}, session=1))
    for i, op in enumerate(ops):
        op.id = i
    return ops


@pytest.mark.parametrize("info_rate,precheck", [(0.02, True), (0.02, False), (0.15, False)])
def test_thousands_of_simulated_ops_pass_quickly(info_rate, precheck):
    ops = simulate(info_rate=info_rate)
    started = time.monotonic()
    report = check(ops, precheck=precheck)
    elapsed = time.monotonic() - started
    assert report.valid is True, str(report)
    print(f"\nsimulated history: {report.stats}, {elapsed:.2f}s")
    assert elapsed < 30


@pytest.mark.parametrize("seed", [2, 3])
def test_one_corrupted_synced_read_in_thousands_is_found(seed):
    ops = simulate(seed=seed)
    # Make one late synced read return the key's initial state.
    target = [op for op in ops if op.kind == "sync_read" and op.result.get("version", 0) > 3][-1]
    target.result = {"value": "init", "version": 0, "mzxid": 1}
    started = time.monotonic()
    assert_violation(ops, f"key {target.key}", PRECHECK["stale"])
    print(f"\ncorrupted history: found in {time.monotonic() - started:.2f}s")


def test_search_alone_finds_a_violation_among_hundreds_of_ops():
    ops = simulate(n_ops=400, keys=("/a",), info_rate=0.01, seed=4)
    target = [op for op in ops if op.kind == "sync_read" and op.result.get("version", 0) > 3][-1]
    target.result = {"value": "init", "version": 0, "mzxid": 1}
    started = time.monotonic()
    assert_violation(ops, SEARCH, precheck=False)
    print(f"\nsearch alone: found in {time.monotonic() - started:.2f}s")
