"""Every four-letter word, Ferrokeeper against ZooKeeper 3.8 after the same
scenario: same lines, same keys, same order; values compared where they do
not differ by nature (ports, ids, times, sizes)."""
import re

import pytest

from adminlib import four_letter

# ZooKeeper lists the connection that runs the word itself (interest ops 0,
# one packet received); ours is not in the core's table (see the README of
# this suite), so it is removed before comparing.
SELF = re.compile(r"^ /[\d.]+:\d+\[0\]\(queued=0,recved=1,sent=0\)$")


def lines(text):
    return text.split("\n")


def shape(line):
    if line.startswith("Zookeeper version: "):
        return "Zookeeper version: V"
    line = re.sub(r",lop=\w+,", ",lop=OP,", line)
    line = re.sub(r"0x[0-9a-f]+", "0xH", line)
    line = re.sub(r"\d+(\.\d+)?(E-?\d+)?", "N", line)
    return line


def map_sessions(cap, text):
    for sid, name in cap.sessions.items():
        text = text.replace(f"0x{sid:x}", name)
    return text


def without_self(text):
    return "\n".join(line for line in lines(text) if not SELF.match(line))


def kv(text, sep):
    out = []
    for line in lines(text):
        if line:
            k, s, v = line.partition(sep)
            assert s == sep, line
            out.append((k, v))
    return out


def test_ruok_isro(captures):
    zk, fk = captures
    assert fk.words["ruok"] == zk.words["ruok"] == "imok"
    assert fk.words["isro"] == zk.words["isro"] == "rw"


def test_resets(captures):
    zk, fk = captures
    assert fk.words["crst"] == zk.words["crst"] == "Connection stats reset.\n"
    assert fk.words["srst"] == zk.words["srst"] == "Server stats reset.\n"


def test_gtmk(captures):
    zk, fk = captures
    assert re.fullmatch(r"\d+", fk.words["gtmk"])
    assert fk.words["gtmk"] == zk.words["gtmk"] == "306"


def test_stmk_format(captures):
    zk, fk = captures
    assert zk.words["stmk"] == "1234"
    assert re.fullmatch(r"-?\d+", fk.words["stmk"])


def test_stmk_sets_the_mask(captures):
    zk, fk = captures
    assert fk.words["stmk"] == zk.words["stmk"]


@pytest.mark.parametrize("word", ["srvr", "stat"])
def test_srvr_stat(captures, word):
    zk, fk = captures
    z, f = without_self(zk.words[word]), fk.words[word]
    assert [shape(x) for x in lines(f)] == [shape(x) for x in lines(z)]
    zl, fl = lines(z), lines(f)
    for prefix in ("Mode: ", "Node count: ", "Outstanding: "):
        assert [x for x in fl if x.startswith(prefix)] == [x for x in zl if x.startswith(prefix)]
    assert fl[0].startswith("Zookeeper version: 3.9.")


def test_srvr_connections_count(captures):
    zk, fk = captures
    count = lambda t: int(re.search(r"^Connections: (\d+)$", t, re.M).group(1))  # noqa: E731
    # ZooKeeper counts the connection running the word.
    assert count(fk.words["srvr"]) + 1 == count(zk.words["srvr"])


def test_cons(captures):
    zk, fk = captures
    z = re.sub(r",lcxid=0x[0-9a-f]+", "", without_self(zk.words["cons"]))
    f = fk.words["cons"]
    assert [shape(x) for x in lines(f)] == [shape(x) for x in lines(z)]
    conn = re.compile(r"^ /127\.0\.0\.1:\d+\[1\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x[0-9a-f]+,lop=\w+,"
                      r"est=\d+,to=\d+(,lcxid=0x[0-9a-f]+)?,lzxid=0x[0-9a-f]+,lresp=\d+,llat=\d+,"
                      r"minlat=\d+,avglat=\d+,maxlat=\d+\)$")
    body = [x for x in lines(f) if x]
    assert len(body) == 2 and all(conn.match(x) for x in body), f
    assert sorted(re.findall(r"sid=(0x[0-9a-f]+)", map_sessions(fk, f))) == []  # both mapped
    assert sorted(re.findall(r"sid=(S\d)", map_sessions(fk, f))) == ["S1", "S2"]
    assert sorted(re.findall(r"to=(\d+)", f)) == sorted(re.findall(r"to=(\d+)", z))


def test_conf(captures):
    zk, fk = captures
    z, f = kv(zk.words["conf"], "="), kv(fk.words["conf"], "=")
    assert [k for k, _ in f] == [k for k, _ in z]
    same = {"secureClientPort", "tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout",
            "clientPortListenBacklog", "serverId"}
    assert [(k, v) for k, v in f if k in same] == [(k, v) for k, v in z if k in same]
    assert dict(f)["clientPort"] == str(fk.server.port)
    assert int(dict(f)["dataDirSize"]) > 0


def test_dirs(captures):
    zk, fk = captures
    z, f = kv(zk.words["dirs"], ": "), kv(fk.words["dirs"], ": ")
    assert [k for k, _ in f] == [k for k, _ in z] == ["datadir_size", "logdir_size"]
    assert all(int(v) > 0 for _, v in f)


def test_envi(captures):
    zk, fk = captures
    z, f = lines(zk.words["envi"]), lines(fk.words["envi"])
    assert f[0] == z[0] == "Environment:"
    assert [k for k, _ in kv("\n".join(f[1:]), "=")] == [k for k, _ in kv("\n".join(z[1:]), "=")]
    same = {"os.name", "os.arch", "os.version", "user.name", "user.home", "java.io.tmpdir", "java.compiler"}
    zd, fd = dict(kv("\n".join(z[1:]), "=")), dict(kv("\n".join(f[1:]), "="))
    assert {k: fd[k] for k in same} == {k: zd[k] for k in same}


def test_dump(captures):
    zk, fk = captures
    z, f = map_sessions(zk, zk.words["dump"]), map_sessions(fk, fk.words["dump"])
    zs, fs = z.split("ephemeral nodes dump:\n"), f.split("ephemeral nodes dump:\n")
    # sessions: same header, every session listed under an "expire at" line
    head = re.compile(r"^Session Sets \((\d+)\)/\((\d+)\):$")
    for part in (zs[0], fs[0]):
        ls = [x for x in lines(part) if x]
        assert ls[0] == "SessionTracker dump:"
        assert head.match(ls[1])
        assert int(head.match(ls[1]).group(2)) == 2
        for x in ls[2:]:
            assert re.match(r"^\d+ expire at \w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}:$", x) or \
                re.match(r"^\tS[12]$", x), x
        assert sorted(x for x in ls if x.startswith("\t")) == ["\tS1", "\tS2"]
    # ephemerals: identical once session ids are mapped (blocks in any order)
    def eph(part):
        text = part.split("Connections dump:\n")[0]
        ls = lines(text)
        assert ls[0] == "Sessions with Ephemerals (2):"
        blocks = re.findall(r"^(S\d):\n((?:\t.*\n)*)", text, re.M)
        return sorted(blocks)
    assert eph(fs[1]) == eph(zs[1]) == [("S1", "\t/e\n"), ("S2", "\t/e2\n")]
    assert "Connections dump:\n" in zs[1] and fs[1].endswith("Connections dump:\n")


def test_wchs(captures):
    zk, fk = captures
    assert fk.words["wchs"] == zk.words["wchs"] == "2 connections watching 3 paths\nTotal watches:4\n"


def blocks(text, head_re):
    out = {}
    cur = None
    for line in lines(text):
        if not line:
            continue
        if line.startswith("\t"):
            out[cur].add(line[1:])
        else:
            assert re.match(head_re, line), line
            cur = line
            out[cur] = set()
    return out


@pytest.mark.parametrize("word,head", [("wchc", r"^S\d$"), ("wchp", r"^/")])
def test_wchc_wchp(captures, word, head):
    zk, fk = captures
    z, f = map_sessions(zk, zk.words[word]), map_sessions(fk, fk.words[word])
    assert f.endswith("\n\n") and z.endswith("\n\n")
    assert blocks(f, head) == blocks(z, head)
    if word == "wchc":
        assert blocks(f, head) == {"S1": {"/a"}, "S2": {"/a", "/nope", "/p"}}


def test_hash(captures):
    zk, fk = captures
    pat = re.compile(r"^[0-9a-f]+: -?\d+$")
    for t in (zk.words["hash"], fk.words["hash"]):
        ls = [x for x in lines(t) if x]
        assert len(ls) == 1 and pat.match(ls[0]), t
    # ZooKeeper logs the digest at zxid 0x80; we report the current one.
    assert zk.words["hash"].startswith("80: ")


def mntr(text):
    return kv(text, "\t")


def test_mntr_keys_in_zookeeper_order(captures):
    zk, fk = captures
    z, f = mntr(zk.words["mntr"]), mntr(fk.words["mntr"])
    zkeys = [k for k, _ in z]
    fkeys = [k for k, _ in f]
    assert all(k.startswith("zk_") for k in fkeys)
    missing = [k for k in fkeys if k not in zkeys]
    assert not missing, f"keys ZooKeeper does not have: {missing}"
    positions = [zkeys.index(k) for k in fkeys]
    assert positions == sorted(positions), "keys out of ZooKeeper's order"
    for k in ("zk_readlatency", "zk_updatelatency"):
        for p in ("avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999"):
            name = k.replace("zk_", f"zk_{p}_")
            assert name in fkeys


def test_mntr_values(captures):
    zk, fk = captures
    z, f = dict(mntr(zk.words["mntr"])), dict(mntr(fk.words["mntr"]))
    for k in ("zk_server_state", "zk_ephemerals_count", "zk_znode_count", "zk_global_sessions",
              "zk_watch_count", "zk_outstanding_requests", "zk_local_sessions"):
        assert f[k] == z[k], k
    assert f["zk_watch_count"] == "6"  # data table 4 + child table 2
    assert int(f["zk_num_alive_connections"]) + 1 == int(z["zk_num_alive_connections"])
    # quorum, TLS and JVM metrics: zero standalone, here as there
    for k, v in f.items():
        if re.match(r"zk_(\w+_)?(proposal|learner|election|quorum|looking|observer|om_|jvm|tls|ensemble|"
                    r"digest_mismatches|netty|follower|leader)", k):
            assert v in ("0", "0.0") and z[k] in ("0", "0.0"), (k, v, z[k])
    for k, v in f.items():
        if k.startswith(("zk_avg_", "zk_connection_drop_probability")) or k == "zk_avg_latency":
            assert re.fullmatch(r"\d+\.\d+(E-?\d+)?", v), (k, v)
        elif k not in ("zk_version", "zk_server_state"):
            assert re.fullmatch(r"-?\d+", v), (k, v)


def test_whitelist_against_zookeeper(server_factory):
    """An empty whitelist is the default (srvr only); a list allows its words."""
    for wl in ("", "ruok, mntr"):
        zk = server_factory("zookeeper", extra_cfg={"4lw.commands.whitelist": wl})
        fk = server_factory("ferrokeeper", extra_cfg={"4lw.commands.whitelist": wl})
        for w in ("ruok", "mntr", "stat", "conf", "cons", "dump", "envi", "wchc", "hash", "isro", "srvr"):
            a, b = four_letter(zk.port, w), four_letter(fk.port, w)
            allowed = w == "srvr" or w in wl
            if allowed:
                assert "not executed" not in b and "not executed" not in a, (wl, w)
            else:
                assert b == a == f"{w} is not executed because it is not in the whitelist.\n", (wl, w)
        zk.close()
        fk.close()
