"""Differential oracle: every scenario of scenarios.py runs on a reference
Apache ZooKeeper 3.8 and on each candidate (a second ZooKeeper, Ferrokeeper);
the normalised traces must be identical. See oraclelib for the normalisation
and the named masks."""
import copy

import pytest

import oraclelib
from oracleservers import TARGETS, dump
from scenarios import SCENARIOS

NAMES = list(SCENARIOS)

# Lines that must never appear in the reference trace: they mean the scenario
# itself is broken (not a server difference).
BROKEN = ("-> ABORTED", "-> TIMEOUT", "-> SKIPPED", "-> CONNECT-FAILED", "-> BAD-FRAME")


def reference_trace(servers, name):
    if name not in servers.ref_cache:
        ref = servers.get("reference")
        t = oraclelib.run_scenario(ref.port, name, SCENARIOS[name])
        servers.check_alive("reference")
        servers.ref_cache[name] = t
        dump(name, "reference", oraclelib.render(t))
    return servers.ref_cache[name]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", NAMES)
def test_scenario(servers, name, target):
    cand_server = servers.get(target)
    ref = reference_trace(servers, name)
    lines = oraclelib.render(ref)
    broken = [ln for ln in lines if any(b in ln for b in BROKEN)]
    assert not broken, f"scenario {name} is broken against the reference:\n" + "\n".join(lines)
    cand = oraclelib.run_scenario(cand_server.port, name, SCENARIOS[name])
    servers.check_alive(target)
    servers.unresponsive(target, any(r.kind == "aborted" and r.label == "probe"
                                     for r in cand.recs))
    dump(name, target, oraclelib.render(cand))
    diff = oraclelib.compare(ref, cand, "zookeeper-3.8(reference)", target)
    assert diff is None, diff


def test_comparator_detects_differences(servers):
    """The oracle can fail: a trace with one changed error code, one missing
    event or one shifted zxid must not compare equal."""
    ref = reference_trace(servers, "watch_exists")
    assert oraclelib.compare(ref, ref) is None

    changed = copy.deepcopy(ref)
    rep = next(r for r in changed.recs if r.kind == "reply" and r.obj.err == 0)
    rep.obj.err = -101
    assert "structure" in oraclelib.compare(ref, changed)

    dropped = copy.deepcopy(ref)
    i = next(i for i, r in enumerate(dropped.recs) if r.kind == "event")
    del dropped.recs[i]
    assert oraclelib.compare(ref, dropped) is not None

    shifted = copy.deepcopy(ref)
    rep = next(r for r in shifted.recs if r.kind == "reply" and r.obj.zxid > 0)
    rep.obj.zxid += 1
    assert "zxid" in oraclelib.compare(ref, shifted)
