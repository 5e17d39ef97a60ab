"""The differential oracle on servers started with ZooKeeper's default
settings (no zookeeper.extendedTypesEnabled): see DEFAULT_SCENARIOS."""
import pytest

import oraclelib
from oracleservers import TARGETS, Servers, dump
from scenarios import DEFAULT_SCENARIOS
from test_oracle import BROKEN

# only the container manager is kept away, as everywhere in the oracle
DEFAULT_PROPS = {"znode.container.checkIntervalMs": "3600000"}


@pytest.fixture(scope="module")
def servers():
    s = Servers(props=DEFAULT_PROPS)
    yield s
    s.close()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(DEFAULT_SCENARIOS))
def test_default_settings_scenario(servers, name, target):
    cand_server = servers.get(target)
    key = "defaults:" + name
    if key not in servers.ref_cache:
        ref = servers.get("reference")
        servers.ref_cache[key] = oraclelib.run_scenario(ref.port, name, DEFAULT_SCENARIOS[name])
        dump("defaults_" + name, "reference", oraclelib.render(servers.ref_cache[key]))
    ref = servers.ref_cache[key]
    lines = oraclelib.render(ref)
    broken = [ln for ln in lines if any(b in ln for b in BROKEN)]
    assert not broken, f"scenario {name} is broken against the reference:\n" + "\n".join(lines)
    cand = oraclelib.run_scenario(cand_server.port, name, DEFAULT_SCENARIOS[name])
    servers.check_alive(target)
    dump("defaults_" + name, target, oraclelib.render(cand))
    diff = oraclelib.compare(ref, cand, "zookeeper-3.8(reference)", target)
    assert diff is None, diff
