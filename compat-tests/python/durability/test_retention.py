"""Snapshot retention, log purging and the dump tools.

With snapCount=100 and autopurge.snapRetainCount=3, after ~2000 txns only
the 3 newest snapshots remain, with only the log segments they still need;
`ferrokeeper snapshot dump` of the newest snapshot (taken exactly after our
last write) lists exactly the tree we read through the server, and
`ferrokeeper log dump` lists the records the segments hold. A restart, hard
or clean, recovers the exact tree (paths, data, every stat field, times
included).

Segments roll at 64 MiB whatever preAllocSize is, so a second test writes
~70 MB of large values to roll the log and checks that the older segment is
purged once the retained snapshots no longer need it.
"""
import os
import re

import pytest

from dhelpers import connect, dump_tree, parse_segment, run_tool, tree_diff, wait_for, write_workload

pytestmark = pytest.mark.timeout(120)

SNAP_COUNT = 100
RETAIN = 3
PROPS = {"zookeeper.snapCount": str(SNAP_COUNT), "zookeeper.preAllocSize": "64"}
CFG = {"autopurge.snapRetainCount": str(RETAIN)}


def parse_snapshot_dump(text):
    """{path: {field: value}} and [(sid, timeout, ephemeral count)]."""
    lines = text.splitlines()
    m = re.match(r"zxid 0x([0-9a-f]+), (\d+) znodes, (\d+) sessions", lines[1])
    assert m, lines[:3]
    zxid, nnodes, nsess = int(m.group(1), 16), int(m.group(2)), int(m.group(3))
    nodes = {}
    sessions = []
    cur = None
    in_sessions = False
    for line in lines[2:]:
        if line.startswith("Session Details"):
            in_sessions = True
        elif in_sessions:
            sid, timeout, count = [x.strip() for x in line.split(",")]
            sessions.append((int(sid, 16), int(timeout), int(count)))
        elif line.startswith("/"):
            cur = nodes.setdefault(line, {})
        else:
            k, _, v = line.strip().partition(" = ")
            cur[k] = v
    assert len(nodes) == nnodes and len(sessions) == nsess, (len(nodes), nnodes, len(sessions), nsess)
    return zxid, nodes, sessions


def dump_value(v):
    if v == "null":
        return None
    if v.startswith('"'):
        assert "\\" not in v, v
        return v[1:-1].encode()
    assert v.startswith("0x"), v
    return bytes.fromhex(v[2:])


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def compare_snapshot_with_tree(nodes, tree):
    errors = []
    if set(nodes) != set(tree):
        errors.append(f"paths: only in snapshot {sorted(set(nodes) - set(tree))[:5]}, "
                      f"only in tree {sorted(set(tree) - set(nodes))[:5]}")
    for p in sorted(set(nodes) & set(tree)):
        n, t = nodes[p], tree[p]
        st = t.stat
        want = {
            "cZxid": st.czxid, "ctime": st.ctime, "mZxid": st.mzxid, "mtime": st.mtime, "pZxid": st.pzxid,
            # the snapshot holds the stored cversion (creates of children)
            "cversion": (st.cversion + st.numChildren) // 2, "dataVersion": st.version,
            "aclVersion": st.aversion, "ephemeralOwner": st.ephemeralOwner, "dataLength": st.dataLength,
        }
        for k, v in want.items():
            got = n.get(k)
            got = signed(int(got, 16)) if got is not None and got.startswith("0x") else \
                (int(got) if got is not None else None)
            if got != v:
                errors.append(f"{p}: {k} {got} in the snapshot, {v} in the tree")
        if dump_value(n["data"]) != (t.data if t.data is not None else None) and \
                not (t.data == b"" and n["data"] in ('""', "null")):
            errors.append(f"{p}: data {n['data'][:40]} in the snapshot, {t.data[:40]!r} in the tree")
    return errors


def check_retention(srv, what):
    """At most RETAIN snapshots, only the needed segments, no leftovers."""
    snaps = wait_for(lambda: (lambda s: s if len(s) <= RETAIN else None)(srv.snapshots()), 5,
                     what=f"{what}: at most {RETAIN} snapshots (have {len(srv.snapshots())})")
    oldest = snaps[0][0]
    segs = srv.segments()
    assert segs and segs[0][0] <= oldest + 1, \
        f"{what}: the log no longer covers the txns after the oldest snapshot 0x{oldest:x}: {segs}"
    for (first, path), (nxt, _) in zip(segs, segs[1:]):
        assert nxt > oldest, (f"{what}: {os.path.basename(path)} holds only txns up to 0x{nxt - 1:x}, all in "
                              f"the oldest kept snapshot 0x{oldest:x}, and was not removed")
    leftovers = [n for n in os.listdir(srv.data_dir) if n.endswith(".tmp")]
    assert not leftovers, f"{what}: temporary files left: {leftovers}"
    return snaps, segs


def land_snapshot(srv, c, limit=350):
    """Writes single txns until a snapshot is taken exactly at our last
    write; returns its zxid."""
    for i in range(limit):
        r = c.call("create", f"/land{i}", b"land")
        assert r.err == 0, r
        z = r.zxid
        known = [s for s, _ in srv.snapshots()]
        nxt = max(known) + SNAP_COUNT if known else SNAP_COUNT
        if z >= nxt - 1:
            try:
                wait_for(lambda: any(s >= z for s, _ in srv.snapshots()), 2, what="a snapshot")
            except AssertionError:
                continue
            if any(s == z for s, _ in srv.snapshots()):
                return z
    raise AssertionError(f"no snapshot taken at our last write within {limit} writes: {srv.snapshots()}")


@pytest.mark.parametrize("layout", ["dataDir", "dataLogDir"])
def test_snapshot_retention(make_server, report, layout):
    srv = make_server(props=PROPS, extra_cfg=CFG, separate_log_dir=layout == "dataLogDir")
    c = write_workload(srv.port, 2000, seed=11, ascii_only=True, keep_open=True)
    for i in range(3):
        assert c.call("create", f"/wl/eph{i}", b"e", None, 1).err == 0
    z = land_snapshot(srv, c)
    tree = dump_tree(srv.port)
    last = srv.srvr_zxid()
    assert last >= 2000, f"only 0x{last:x} txns"

    snaps, segs = check_retention(srv, "after ~2000 txns")
    assert len(snaps) == RETAIN, snaps
    assert snaps[-1][0] == z
    zs = [s for s, _ in snaps]
    assert all(SNAP_COUNT <= b - a <= 3 * SNAP_COUNT for a, b in zip(zs, zs[1:])), \
        f"snapshots not every {SNAP_COUNT} txns: {[hex(x) for x in zs]}"
    if layout == "dataLogDir":
        assert not [n for n in os.listdir(srv.data_dir) if n.startswith("log.")], os.listdir(srv.data_dir)
        assert not [n for n in os.listdir(srv.log_dir) if n.startswith("snapshot.")], os.listdir(srv.log_dir)
    disk = srv.disk_usage()
    assert disk < 2_000_000, f"{disk} bytes on disk for ~2000 small txns: {os.listdir(srv.data_dir)}"

    # --- snapshot dump: the newest is exactly the tree we read
    rc, out, err = run_tool(["snapshot", "dump", "--data", snaps[-1][1]])
    assert rc == 0, err
    zxid, nodes, sessions = parse_snapshot_dump(out)
    assert zxid == z
    errors = compare_snapshot_with_tree(nodes, tree)
    assert not errors, errors[:20]
    # exactly the one live session (closed ones are gone), with its 3 ephemerals
    assert sessions == [(c.session_id, c.connect_result.timeout, 3)], sessions
    for s, path in snaps[:-1]:
        rc, out, err = run_tool(["snapshot", "dump", path])
        assert rc == 0, err
        zxid, nodes, _ = parse_snapshot_dump(out)
        assert zxid == s and "/wl" in nodes and "/" in nodes

    # --- log dump: the records the segments hold, in order, up to the last
    last = srv.srvr_zxid()
    expect = None
    for first, path in segs:
        rc, out, err = run_tool(["log", "dump", path])
        assert rc == 0, err
        seg = parse_segment(path)
        assert seg.bad is None
        head = out.splitlines()[0]
        assert f"first zxid 0x{first:x}, {len(seg.records)} entries" in head, head
        zx = [int(line.split()[0], 16) for line in out.splitlines()[1:] if line.startswith("0x")]
        assert zx == [r.zxid for r in seg.records], "log dump and the records differ"
        assert "bad record" not in out and "undecodable" not in out
        assert expect is None or zx[0] == expect
        expect = zx[-1] + 1
        assert re.search(r"Create|SetData|Delete|Multi", out), out[:500]
    assert expect == last + 1, f"the log ends at 0x{expect - 1:x}, the server is at 0x{last:x}"

    # --- restarts recover the exact tree, ephemerals of the live session too
    c.close()                                     # the session stays, as after a client crash
    for how in ("kill", "term"):
        srv.restart(how)
        after = dump_tree(srv.port)
        diff = tree_diff(tree, after)
        assert not diff, f"after a {how} restart: {diff}"
    report(f"retention ({layout}): {last} txns, {len(snaps)} snapshots kept ({', '.join(hex(s) for s in zs)}), "
           f"{len(segs)} log segment(s), {disk / 1e3:.0f} kB on disk; snapshot dump equals the tree "
           f"({len(nodes)} znodes); kill and term restarts recovered the exact tree")


def test_segment_roll_and_purge(make_server, report):
    srv = make_server(props=PROPS, extra_cfg=CFG)
    c = connect(srv.port)
    assert c.call("create", "/big", b"").err == 0
    big = os.urandom(1000 * 1000)
    for i in range(70):                                   # ~70 MB: past one 64 MiB segment
        r = c.call("setData", "/big", big[i:] + big[:i], i)
        assert r.err == 0, r
    rolled = srv.segments()
    assert len(rolled) >= 2, f"the log did not roll after 70 MB: {rolled}"
    peak = srv.disk_usage()
    for i in range(4 * SNAP_COUNT):                       # snapshots past the roll
        assert c.call("create", f"/n{i}", b"x" * 20).err == 0
    c.close_session()
    snaps, segs = wait_for(lambda: (lambda r: r if r[1][0][0] > 1 else None)(check_retention(srv, "after a roll")),
                           5, what="the first segment to be purged")
    disk = srv.disk_usage()
    assert disk < 24_000_000, f"{disk} bytes on disk after the purge: " \
        f"{[(n, os.path.getsize(os.path.join(srv.data_dir, n))) for n in os.listdir(srv.data_dir)]}"
    tree = dump_tree(srv.port)
    srv.restart("kill")
    diff = tree_diff(tree, dump_tree(srv.port))
    assert not diff, diff
    report(f"segment roll: log rolled at 64 MiB ({len(rolled)} segments, {peak / 1e6:.0f} MB on disk), "
           f"older segment purged after {RETAIN} later snapshots ({len(segs)} left, {disk / 1e6:.1f} MB); "
           f"restart recovered the exact tree")


def flip_middle(path):
    with open(path, "r+b") as f:
        b = bytearray(f.read())
        b[len(b) // 2] ^= 0xFF
        f.seek(0)
        f.write(b)


def test_damaged_snapshots_after_purge(make_server, report):
    """Once old log segments are purged, the snapshots are the only copy of
    the early txns. A damaged newest snapshot is skipped for an older one
    plus the log. If no snapshot is readable, the log (which starts after
    zxid 1) cannot rebuild the tree: the server must refuse to start rather
    than serve a tree missing those txns; with the files restored it starts
    with everything."""
    srv = make_server(props=PROPS, extra_cfg=CFG)
    c = connect(srv.port)
    assert c.call("create", "/early", b"from zxid 2").err == 0
    assert c.call("create", "/big", b"").err == 0
    big = os.urandom(1000 * 1000)
    for i in range(70):
        assert c.call("setData", "/big", big, i).err == 0
    for i in range(4 * SNAP_COUNT):
        assert c.call("create", f"/n{i}", b"x").err == 0
    c.close_session()
    snaps, segs = wait_for(lambda: (lambda r: r if r[1][0][0] > 1 else None)(check_retention(srv, "setup")),
                           5, what="the first segment to be purged")
    tree = dump_tree(srv.port)
    srv.kill()
    snaps = srv.snapshots()
    originals = {p: open(p, "rb").read() for _, p in snaps}

    # The newest snapshot damaged: an older one and the log rebuild it all.
    flip_middle(snaps[-1][1])
    srv.start()
    diff = tree_diff(tree, dump_tree(srv.port))
    assert not diff, f"newest snapshot damaged: {diff}"
    srv.kill()
    for p, b in originals.items():
        with open(p, "wb") as f:
            f.write(b)
    snaps_now = srv.snapshots()
    originals = {p: open(p, "rb").read() for _, p in snaps_now}

    # Every snapshot damaged: the log starts at 0x{first:x}, nothing covers before.
    for _, p in snaps_now:
        flip_middle(p)
    first = srv.segments()[0][0]
    rc, out = srv.start_expect_exit(timeout=15)
    if rc is None:
        srv.start()
        lost = tree_diff(tree, dump_tree(srv.port), limit=6)
        raise AssertionError(f"all {len(snaps_now)} snapshots damaged and the log starting at zxid 0x{first:x}: "
                             f"the server started anyway and serves a tree without the txns before it: {lost}"
                             f"\n{out[-1200:]}")
    assert rc != 0, out[-1500:]
    for p, b in originals.items():
        with open(p, "wb") as f:
            f.write(b)
    srv.start()
    diff = tree_diff(tree, dump_tree(srv.port))
    assert not diff, f"snapshots restored: {diff}"
    report(f"damaged snapshots: newest damaged -> recovered from an older one; all damaged with the log "
           f"purged to 0x{first:x} -> refused (rc {rc}); restored -> exact tree")
