"""zkCli scenario test: the same zkCli session (scenarios/*.zkcli, every zkCli
command of ZooKeeper 3.8 with its options and error cases) is run against the
reference Apache ZooKeeper 3.8 and against a candidate server started with the
same settings; the outputs are normalised (zkcli_normalise) and compared
command by command, WATCHER:: notifications included.

Candidates: "zookeeper" (a second ZooKeeper: proves the normaliser stable) and
"ferrokeeper".  Run: cd compat-tests/python && python3 -m pytest zkcli -q
"""
import os

import pytest

import zkcli_normalise as zn
import zkcli_runner as zr
from zkcli_suite import SCENARIOS, TARGETS, ferrokeeper_usable, run_scenario



def _candidate(scenario, kind):
    if kind == "ferrokeeper":
        why = ferrokeeper_usable()
        if why:
            if os.environ.get("FERROKEEPER_REQUIRED") == "1":
                pytest.fail(why)
            pytest.skip(why)
        try:
            return run_scenario(scenario, kind)
        except RuntimeError as e:       # did not start
            if os.environ.get("FERROKEEPER_REQUIRED") == "1":
                raise
            pytest.skip(f"ferrokeeper did not start: {e}")
    return run_scenario(scenario, kind)


@pytest.mark.parametrize("kind", TARGETS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_zkcli_scenario(references, scenario, kind):
    ref = references.get(scenario)
    # The reference itself must have run the whole scenario.
    assert not ref.run.timed_out, "zkCli timed out against ZooKeeper:\n" + ref.run.raw[-3000:]
    missing = [n.display for n in ref.norm if n.marker == []]
    assert not missing, f"reference run lost markers at: {missing}"

    cand = _candidate(scenario, kind)
    dump = os.environ.get("ZKCLI_DUMP")
    if dump:
        ref.dump(dump, "reference")
        cand.dump(dump, kind)

    diffs, masked = zn.compare(ref.norm, cand.norm, "zookeeper-3.8", kind)
    if (ref.run.returncode, ref.run.timed_out) != (cand.run.returncode, cand.run.timed_out):
        diffs.append(f"<exit> zookeeper-3.8: returncode={ref.run.returncode} "
                     f"timed_out={ref.run.timed_out}; {kind}: returncode={cand.run.returncode} "
                     f"timed_out={cand.run.timed_out}")
    for m in masked:
        print(f"masked ({scenario}, {kind}): {m}")
    if diffs:
        head = (f"zkCli scenario {scenario!r}: {len(diffs)} of {len(ref.norm)} steps differ "
                f"between ZooKeeper 3.8 and {kind} (normalised; '-' ZooKeeper, '+' {kind})\n")
        pytest.fail(head + "\n\n".join(diffs), pytrace=False)


def test_every_zkcli_command_is_exercised(references):
    """The scenarios use every command that zkCli's usage text lists."""
    ref = references.get("extended")
    help_step = next(n for n in ref.norm if n.display == "help")
    listed = {ln.split()[0] for ln in help_step.lines if ln.startswith("\t")}
    assert len(listed) >= 25, help_step.lines
    used = set()
    for spec in SCENARIOS.values():
        for s in zr.parse_scenario(os.path.join(zr.SCENARIO_DIR, spec["file"]))[1:]:
            used.add(s.text.split()[0])
    assert listed - used == set(), f"zkCli commands never exercised: {sorted(listed - used)}"
