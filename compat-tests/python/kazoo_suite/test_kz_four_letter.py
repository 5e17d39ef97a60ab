"""Four-letter words on the client port (the session server whitelists '*')."""
import re

import pytest


def flw(server, zkx, cmd):
    return zkx.four_letter(server.port, cmd)


def test_ruok(zk_server, zkx):
    assert flw(zk_server, zkx, "ruok") == "imok"


def test_kazoo_command_helper(zk):
    assert zk.command(b"ruok") == "imok"
    assert "Mode: standalone" in zk.command(b"srvr")


@pytest.mark.parametrize("cmd", ["srvr", "stat"])
def test_srvr_and_stat(zk_server, zkx, zk, cmd):
    out = flw(zk_server, zkx, cmd)
    lines = out.splitlines()
    assert lines[0].startswith("Zookeeper version: ")
    assert "Mode: standalone" in lines
    zxid = [l for l in lines if l.startswith("Zxid: 0x")]
    assert len(zxid) == 1
    # the reported zxid is the last committed one, in hex
    assert int(zxid[0][len("Zxid: 0x"):], 16) >= zk.last_zxid
    assert re.search(r"^Node count: \d+$", out, re.M)
    assert re.search(r"^Latency min/avg/max: \S+/\S+/\S+$", out, re.M)
    assert re.search(r"^Connections: \d+$", out, re.M)
    if cmd == "stat":
        assert "Clients:" in lines
        assert re.search(r"^ /127\.0\.0\.1:\d+\[", out, re.M)
    else:
        assert "Clients:" not in lines


def test_mntr(zk_server, zkx):
    out = flw(zk_server, zkx, "mntr")
    rows = [l for l in out.splitlines() if l]
    assert rows
    values = {}
    for row in rows:
        key, sep, value = row.partition("\t")
        assert sep == "\t", row
        assert key.startswith("zk_"), row
        values[key] = value
    assert values["zk_server_state"] == "standalone"
    assert "zk_version" in values
    for key in ("zk_znode_count", "zk_ephemerals_count", "zk_watch_count",
                "zk_num_alive_connections", "zk_outstanding_requests"):
        assert re.fullmatch(r"\d+", values[key]), (key, values[key])


def test_mntr_counts(server_factory, client_factory, zkx):
    srv = server_factory()
    c = client_factory(server=srv)

    def mntr():
        out = zkx.four_letter(srv.port, "mntr")
        return dict(l.split("\t", 1) for l in out.splitlines() if "\t" in l)

    before = mntr()
    assert before["zk_ephemerals_count"] == "0"
    assert before["zk_watch_count"] == "0"
    c.create("/e1", ephemeral=True)
    c.create("/e2", ephemeral=True)
    c.create("/p")
    c.get("/p", watch=lambda e: None)
    c.get_children("/p", watch=lambda e: None)
    after = mntr()
    assert after["zk_ephemerals_count"] == "2"
    assert after["zk_watch_count"] == "2"
    assert int(after["zk_znode_count"]) == int(before["zk_znode_count"]) + 3


def test_envi(zk_server, zkx):
    out = flw(zk_server, zkx, "envi")
    lines = out.splitlines()
    assert lines[0] == "Environment:"
    assert any(l.startswith("zookeeper.version=") for l in lines)
    assert any(l.startswith("host.name=") for l in lines)


def test_isro(zk_server, zkx):
    assert flw(zk_server, zkx, "isro") == "rw"


def test_conf(zk_server, zkx):
    out = flw(zk_server, zkx, "conf")
    lines = out.splitlines()
    assert f"clientPort={zk_server.port}" in lines
    assert "tickTime=2000" in lines
    assert "minSessionTimeout=4000" in lines
    assert "maxSessionTimeout=40000" in lines
    assert any(l.startswith("dataDir=") for l in lines)


def test_whitelist_refusal(server_factory, zkx):
    srv = server_factory(extra_cfg={"4lw.commands.whitelist": "srvr"})
    assert "Mode: standalone" in zkx.four_letter(srv.port, "srvr")
    for cmd in ("ruok", "stat", "mntr", "envi", "conf", "isro", "cons", "wchs"):
        assert zkx.four_letter(srv.port, cmd) == \
            f"{cmd} is not executed because it is not in the whitelist.\n"


def test_whitelist_list(server_factory, zkx):
    srv = server_factory(extra_cfg={"4lw.commands.whitelist": "ruok, mntr"})
    assert zkx.four_letter(srv.port, "ruok") == "imok"
    assert "zk_server_state\tstandalone" in zkx.four_letter(srv.port, "mntr")
    assert zkx.four_letter(srv.port, "stat") == \
        "stat is not executed because it is not in the whitelist.\n"
    # srvr is always allowed (zkServer.sh status depends on it)
    assert "Mode: standalone" in zkx.four_letter(srv.port, "srvr")
