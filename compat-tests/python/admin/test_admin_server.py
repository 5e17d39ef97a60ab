"""The AdminServer (HTTP JSON), Ferrokeeper against ZooKeeper 3.8 after the
same scenario: same command names and aliases, same JSON keys in the same
order, same value types, "command" and "error" as ZooKeeper; plus our
/commands/ready, and requests that must not hurt the server."""
import json
import re
import socket
import threading
import time

import pytest

from adminlib import ADMIN_PATHS, four_letter, http_get

SESSION_KEYED = {"/commands/dump", "/commands/watches", "/commands/wchc", "/commands/watches_by_path",
                 "/commands/wchp"}


def structure(v):
    """The shape of a JSON value: object keys in order, types, first element
    of arrays."""
    if isinstance(v, dict):
        return ("object", [(k, structure(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("array", structure(v[0]) if v else None)
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "long"
    if isinstance(v, float):
        return "double"
    if v is None:
        return "null"
    return "string"


def differences(z, f, path=""):
    """Where two JSON values differ in shape (for assertion messages)."""
    if isinstance(z, dict) and isinstance(f, dict):
        out = [] if list(z) == list(f) else [f"{path}: keys {list(z)} != {list(f)}"]
        for k in z:
            if k in f:
                out += differences(z[k], f[k], f"{path}/{k}")
        return out
    if isinstance(z, list) and isinstance(f, list):
        return differences(z[0], f[0], path + "[0]") if z and f else \
            ([] if bool(z) == bool(f) else [f"{path}: {z!r} != {f!r}"])
    return [] if structure(z) == structure(f) else [f"{path}: {z!r} != {f!r}"]


def map_ids(cap, v):
    """Session ids (numbers or keys) replaced by S1/S2, maps and lists sorted."""
    names = {str(k): n for k, n in cap.sessions.items()}
    if isinstance(v, dict):
        return {names.get(k, k): map_ids(cap, x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return sorted((map_ids(cap, x) for x in v), key=json.dumps)
    if isinstance(v, int) and not isinstance(v, bool):
        return names.get(str(v), v)
    return v


def test_command_list(captures):
    zk, fk = captures
    for p in ("/commands", "/commands/"):
        z, f = zk.http[p], fk.http[p]
        assert z[0] == f[0] == 200
        names = lambda body: re.findall(r'^<a href="/commands/(\w+)">\1</a>$', body, re.M)  # noqa: E731
        assert [n for n in names(f[2]) if n != "ready"] == names(z[2])
        assert f[2].count("<br/>") == len(names(f[2]))
        assert "ready" in names(f[2])


@pytest.mark.parametrize("path", [p for p in ADMIN_PATHS if p.rstrip("/") != "/commands"])
def test_command(captures, path):
    zk, fk = captures
    (zs, zh, zb), (fs, fh, fb) = zk.http[path], fk.http[path]
    assert fs == zs == 200
    assert fh.get("Content-Type", "").startswith("application/json")
    z, f = json.loads(zb), json.loads(fb)
    # "command" (primary name, or the name as given when unknown) and "error"
    assert f["command"] == z["command"]
    assert f["error"] == z["error"]
    assert list(f)[-2:] == list(z)[-2:]
    if path in ("/commands/environment", "/commands/env", "/commands/envi"):
        assert list(f) == list(z)
    elif path in ("/commands/system_properties", "/commands/sysp"):
        zkeys = [k for k in z if k.startswith("zookeeper.")]
        assert [k for k in f if k.startswith("zookeeper.")] == zkeys
        keys = [k for k in f if k not in ("command", "error")]
        assert keys == sorted(keys)
    elif path in ("/commands/monitor", "/commands/mntr"):
        zkeys = list(z)
        assert all(k in zkeys for k in f), [k for k in f if k not in zkeys]
        pos = [zkeys.index(k) for k in f if k not in ("command", "error")]
        assert pos == sorted(pos)
        for k in f:
            assert structure(f[k]) == structure(z[k]), k
        for k in ("server_state", "ephemerals_count", "znode_count", "global_sessions", "watch_count"):
            assert f[k] == z[k], k
    elif path in SESSION_KEYED:
        if path == "/commands/dump":
            assert map_ids(fk, f["session_id_to_ephemeral_paths"]) == \
                map_ids(zk, z["session_id_to_ephemeral_paths"]) == {"S1": ["/e"], "S2": ["/e2"]}
            ids = lambda d: sorted(x for v in d["expiry_time_to_session_ids"].values() for x in v)  # noqa: E731
            assert map_ids(fk, ids(f)) == map_ids(zk, ids(z)) == ["S1", "S2"]
            assert list(f) == list(z)
        else:
            assert map_ids(fk, f) == map_ids(zk, z)
    else:
        if "server_stats" in z:
            # ZooKeeper serializes its ServerStats bean with Jackson, whose
            # property order follows reflection and changes from run to run.
            z["server_stats"] = dict(sorted(z["server_stats"].items()))
            f["server_stats"] = dict(sorted(f["server_stats"].items()))
        assert structure(f) == structure(z), differences(z, f)


def test_same_values(captures):
    zk, fk = captures
    j = lambda cap, p: cap.json(p)  # noqa: E731
    for p in ("/commands/watch_summary", "/commands/is_read_only", "/commands/voting_view",
              "/commands/zabstate", "/commands/leader", "/commands/observers", "/commands/nosuch",
              "/commands/set_trace_mask", "/commands/set_trace_mask?traceMask=abc",
              "/commands/stmk?traceMask=99", "/commands/ruok/extra"):
        assert j(fk, p) == j(zk, p), p
    assert j(fk, "/commands/watch_summary")["num_total_watches"] == 4
    for p in ("/commands/configuration",):
        f, z = j(fk, p), j(zk, p)
        for k in ("tick_time", "max_client_cnxns", "min_session_timeout", "max_session_timeout", "server_id",
                  "client_port_listen_backlog"):
            assert f[k] == z[k], k
    f, z = j(fk, "/commands/stats"), j(zk, "/commands/stats")
    assert len(f["connections"]) == len(z["connections"]) == 2
    assert f["node_count"] == z["node_count"]
    # captured last after stmk?traceMask=99: the mask set through HTTP
    assert j(fk, "/commands/get_trace_mask") == j(zk, "/commands/get_trace_mask")
    assert j(fk, "/commands/get_trace_mask")["tracemask"] == 99
    assert j(fk, "/commands/initial_configuration")["initial_configuration"].startswith("tickTime=")


def test_trace_mask_round_trip(captures):
    _, fk = captures
    port = fk.server.admin_port
    assert json.loads(http_get(port, "/commands/set_trace_mask?traceMask=77")[2])["tracemask"] == 77
    assert json.loads(http_get(port, "/commands/gtmk")[2])["tracemask"] == 77
    assert four_letter(fk.server.port, "gtmk") == "77"
    http_get(port, "/commands/set_trace_mask?traceMask=306")


def test_ready(captures):
    _, fk = captures
    status, _, body = http_get(fk.server.admin_port, "/commands/ready")
    r = json.loads(body)
    assert status == 200
    assert r == {"ready": True, "recovered": True, "core_responsive": True, "txnlog_thread_alive": True,
                 "command": "ready", "error": None}


def raw(port, data, timeout=5.0, shut=True):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before it read everything
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
    return out


def test_bad_requests_do_not_hurt(server_factory):
    srv = server_factory(extra_cfg={"admin.idleTimeout": "1000"})
    port = srv.admin_port
    assert raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET /commands/ruok HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 ")
    assert raw(port, b"POST /commands/ruok HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").startswith(b"HTTP/1.1 405 ")
    assert raw(port, b"GET /commands/ruok HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n").startswith(
        b"HTTP/1.1 413 ")
    assert raw(port, b"GET /elsewhere HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert raw(port, b"\x00\xff\x16\x03\x01\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # a client that sends half a request is dropped after admin.idleTimeout
    t0 = time.monotonic()
    out = raw(port, b"GET /commands/ruok HT", shut=False, timeout=10)
    assert out.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 5
    # many idle connections at once: the server answers again once they go
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    for s in socks:
        s.close()
    deadline = time.monotonic() + 10
    while True:
        out = raw(port, b"HEAD /commands/ruok HTTP/1.0\r\n\r\n")
        if out or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\n")  # HEAD: no body
    results = []

    def hit():
        results.append(http_get(port, "/commands/mntr")[0])

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 20
    assert four_letter(srv.port, "ruok") == "imok"
    assert http_get(port, "/commands/ready")[0] == 200


def test_command_url_and_disable(server_factory):
    srv = server_factory(extra_cfg={"admin.commandURL": "/zk"}, wait_admin=False)
    assert json.loads(http_get(srv.admin_port, "/zk/ruok")[2])["command"] == "ruok"
    assert http_get(srv.admin_port, "/commands/ruok")[0] == 404
    off = server_factory(extra_cfg={"admin.enableServer": "false"}, wait_admin=False)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", off.admin_port), timeout=2).close()
