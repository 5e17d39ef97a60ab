"""The offline commands: `import` (refusal without --force, --force, a
separate dataLogDir), `export`, `log dump` and `snapshot dump` on
ZooKeeper's and Ferrokeeper's files."""
import json
import os
import re
import shutil
import tempfile

import pytest

import miglib
import zkharness
from miglib import (create_ttl, describe, diff_reads, full_read, run_fk, super_client, wait_until,
                    zxid_of)

FIXTURES = os.path.join(zkharness.REPO, "compat-tests", "fixtures", "zk38")
OWN_FILE = re.compile(r"(snapshot|log)\.[0-9a-f]{16}$")


def import_cmd(fk, zk_data_dir, *extra):
    return run_fk("--config", fk.cfg_path, "import", "--zk-data-dir", zk_data_dir, *extra)


def own_files(d):
    return sorted(n for n in os.listdir(d) if OWN_FILE.match(n))


@pytest.mark.timeout(90)
def test_import_refuses_existing_state_without_force(zk_capture):
    cap = zk_capture
    fk = miglib.new_fk()
    clients = []
    try:
        p = import_cmd(fk, cap.data_dir)
        assert p.returncode == 0, describe(p)
        fk.start()
        s = super_client(fk)
        clients.append(s)
        s.kz.create("/fk-only", b"state of Ferrokeeper")
        s.close()
        fk.stop()
        state = miglib.files_digest(fk.data_dir)

        # Without --force: refused, nothing touched, the server keeps its state.
        p = import_cmd(fk, cap.data_dir)
        assert p.returncode != 0, describe(p)
        assert "--force" in p.stdout + p.stderr, describe(p)
        assert miglib.files_digest(fk.data_dir) == state, "a refused import changed dataDir"
        fk.start()
        s = super_client(fk)
        clients.append(s)
        assert s.kz.get("/fk-only")[0] == b"state of Ferrokeeper"
        s.close()
        fk.stop()
        state = miglib.files_digest(fk.data_dir)
        old_own = own_files(fk.data_dir)

        # With --force: the old files are kept aside, ZooKeeper's state is back.
        p = import_cmd(fk, cap.data_dir, "--force")
        assert p.returncode == 0, describe(p)
        backups = [d for d in os.listdir(fk.data_dir) if os.path.isdir(os.path.join(fk.data_dir, d))]
        assert len(backups) == 1, (os.listdir(fk.data_dir), describe(p))
        bdir = os.path.join(fk.data_dir, backups[0])
        assert sorted(os.listdir(bdir)) == old_own, (os.listdir(bdir), old_own)
        for n in old_own:
            assert miglib.files_digest(bdir)[n] == state[n], f"backup of {n} differs"
        fk.start()
        s = super_client(fk)
        clients.append(s)
        assert zxid_of(fk.port) >= cap.last_zxid
        assert s.kz.exists("/fk-only") is None
        diffs = diff_reads(cap.read, full_read(s.kz), "ZooKeeper vs Ferrokeeper after import --force")
        assert not diffs, "\n".join(diffs)
    finally:
        for c in clients:
            c.close()
        fk.close()


@pytest.mark.timeout(60)
def test_import_separate_data_log_dir(zk_capture):
    """ZooKeeper run with dataLogDir != dataDir: snapshots in one directory,
    logs in another (--zk-data-log-dir)."""
    cap = zk_capture
    tmp = tempfile.mkdtemp(prefix="fk-migration-split-")
    fk = miglib.new_fk()
    s = None
    try:
        snaps, logs = os.path.join(tmp, "snaps"), os.path.join(tmp, "logs")
        for d in (snaps, logs):
            os.makedirs(os.path.join(d, "version-2"))
        v2 = os.path.join(cap.data_dir, "version-2")
        for n in os.listdir(v2):
            dest = snaps if n.startswith("snapshot.") else logs
            shutil.copy(os.path.join(v2, n), os.path.join(dest, "version-2", n))
        p = import_cmd(fk, snaps, "--zk-data-log-dir", logs)
        assert p.returncode == 0, describe(p)
        assert f"0x{cap.last_zxid:x}" in p.stdout, describe(p)
        fk.start()
        s = super_client(fk)
        diffs = diff_reads(cap.read, full_read(s.kz), "ZooKeeper vs Ferrokeeper (split dirs)")
        assert not diffs, "\n".join(diffs)
    finally:
        if s:
            s.close()
        fk.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.timeout(60)
def test_export_does_not_silently_change_ttl_nodes():
    """The server gets zookeeper.extendedTypesEnabled on its command line
    (-D, as with SERVER_JVMFLAGS), not in zoo.cfg; `export` is then run as
    documented, `--config zoo.cfg export --out DIR`. The flag only governs
    whether clients may create TTL nodes: the committed transactions are
    what they are (ZooKeeper's DataTree replays them whatever the flag).
    So export must write the state the server served, or refuse with an
    error; it must not exit 0 with a different tree."""
    fk = zkharness.Server("ferrokeeper", props={**miglib.fk_props(),
                                                "zookeeper.extendedTypesEnabled": "true"})
    zk = miglib.new_zk()
    clients = []
    try:
        fk.start()
        s = super_client(fk)
        clients.append(s)
        s.kz.create("/ttl", b"")
        s.kz.create("/plain", b"p")
        create_ttl(s.kz, "/ttl/long", b"l", 3_600_000)
        create_ttl(s.kz, "/ttl/seq-", b"s", 3_600_000, sequence=True)
        create_ttl(s.kz, "/ttl/gone", b"", 300)
        wait_until("/ttl/gone reaped", lambda: s.kz.exists("/ttl/gone") is None, timeout=10)
        served = full_read(s.kz)
        s.close()
        fk.stop()
        p = run_fk("--config", fk.cfg_path, "export", "--out", zk.data_dir)
        if p.returncode != 0:
            return                      # refusing is acceptable
        zk.start()
        r = super_client(zk)
        clients.append(r)
        diffs = diff_reads(served, full_read(r.kz), "served by Ferrokeeper vs ZooKeeper from export")
        assert not diffs, (f"export (exit 0: {p.stdout.strip()}) wrote another tree:\n"
                           + "\n".join(diffs))
    finally:
        for c in clients:
            c.close()
        fk.close()
        zk.close()


# ---------------------------------------------------------------- dumps

def dump(kind, path, *extra):
    p = run_fk(kind, "dump", path, *extra)
    assert p.returncode == 0, describe(p)
    return p.stdout


def check_snapshot_against_read(problems, label, nodes, read, exact):
    """nodes: parsed snapshot dump; read: a client full read. exact: the
    snapshot is the state of `read` (else only nodes already created at the
    snapshot's zxid and alive in `read` are compared by czxid)."""
    if exact and set(nodes) != set(read):
        problems.append(f"{label}: paths differ: only in dump {sorted(set(nodes) - set(read))}, "
                        f"only in read {sorted(set(read) - set(nodes))}")
    for path, node in read.items():
        st = node["stat"]
        if path not in nodes:
            continue
        got = nodes[path]
        want = {"cZxid": hex(st["czxid"])}
        if exact:
            want.update({"mZxid": hex(st["mzxid"]), "pZxid": hex(st["pzxid"]),
                         "ctime": str(st["ctime"]), "mtime": str(st["mtime"]),
                         "dataVersion": str(st["version"]), "aclVersion": str(st["aversion"]),
                         "cversion": str(miglib.stored_cversion(node)),
                         "dataLength": str(st["dataLength"])})
            if st["ephemeralOwner"]:
                want["ephemeralOwner"] = hex(st["ephemeralOwner"])
        for k, v in want.items():
            if got.get(k) != v:
                problems.append(f"{label}: {path} {k}: dump {got.get(k)} read {v}")


@pytest.mark.timeout(90)
def test_dump_tools(zk_capture):
    cap = zk_capture
    problems = []
    v2 = os.path.join(cap.data_dir, "version-2")
    names = os.listdir(v2)

    # ZooKeeper's logs: together they hold every zxid 1..last once, and the
    # creation of every znode shows its path.
    logged = {}
    for n in sorted(n for n in names if n.startswith("log.")):
        out = dump("log", os.path.join(v2, n))
        txns = miglib.parse_log_dump(out)
        first = int(n.split(".")[1], 16)
        if txns and min(txns) != first:
            problems.append(f"{n}: first zxid 0x{min(txns):x}")
        for z in set(txns) & set(logged):
            problems.append(f"zxid 0x{z:x} in two logs")
        logged.update(txns)
    if set(logged) != set(range(1, cap.last_zxid + 1)):
        problems.append(f"ZooKeeper logs: zxids {sorted(set(range(1, cap.last_zxid + 1)) - set(logged))} "
                        f"missing, {sorted(set(logged) - set(range(1, cap.last_zxid + 1)))} extra")
    for path, node in cap.read.items():
        cz = node["stat"]["czxid"]
        if cz and path not in logged.get(cz, ""):
            problems.append(f"ZooKeeper log dump: 0x{cz:x} does not show {path}: {logged.get(cz)!r}")

    # ZooKeeper's snapshots.
    snaps = sorted((int(n.split(".")[1], 16), n) for n in names if n.startswith("snapshot."))
    assert len(snaps) >= 3, names
    binary_hex = "0x" + bytes(range(256)).hex()
    for zx, n in snaps:
        out = dump("snapshot", os.path.join(v2, n), "--data")
        hz, nodes = miglib.parse_snapshot_dump(out)
        if hz < zx:
            problems.append(f"{n}: header zxid 0x{hz:x}")
        alive = {p: v for p, v in cap.read.items() if v["stat"]["czxid"] <= zx}
        missing = sorted(set(alive) - set(nodes))
        if missing:
            problems.append(f"{n}: missing {missing}")
        check_snapshot_against_read(problems, n, nodes, alive, exact=False)
        if "/app/binary" in nodes and nodes["/app/binary"].get("data") != binary_hex:
            problems.append(f"{n}: /app/binary data {nodes['/app/binary'].get('data')!r}")

    # Ferrokeeper's files: the import's snapshot, then a run with a small
    # snapCount so that Ferrokeeper takes a snapshot of its own, and its log.
    fk = miglib.new_fk(snap_count=10)
    s = None
    try:
        p = import_cmd(fk, cap.data_dir)
        assert p.returncode == 0, describe(p)
        [imp] = own_files(fk.data_dir)
        out = dump("snapshot", os.path.join(fk.data_dir, imp), "--data")
        hz, nodes = miglib.parse_snapshot_dump(out)
        if hz != cap.last_zxid:
            problems.append(f"import snapshot {imp}: zxid 0x{hz:x}, want 0x{cap.last_zxid:x}")
        check_snapshot_against_read(problems, f"import snapshot {imp}", nodes, cap.read, exact=True)
        if nodes.get("/app/binary", {}).get("data") != binary_hex:
            problems.append(f"{imp}: /app/binary data {nodes.get('/app/binary', {}).get('data')!r}")

        fk.start()
        s = super_client(fk)
        made = [s.kz.create(f"/dumped/n{i}", b"%d" % i, makepath=True) for i in range(25)]
        s.kz.set("/dumped/n0", b"changed")
        final = full_read(s.kz)
        s.close()
        s = None
        last = zxid_of(fk.port)
        fk.stop()
        files = own_files(fk.data_dir)
        logs = [n for n in files if n.startswith("log.")]
        snaps = [n for n in files if n.startswith("snapshot.") and n != imp]
        assert logs and snaps, files
        fk_logged = {}
        for n in logs:
            out = dump("log", os.path.join(fk.data_dir, n))
            txns = miglib.parse_log_dump(out)
            fk_logged.update(txns)
        for path in made:
            cz = final[path]["stat"]["czxid"]
            if path not in fk_logged.get(cz, ""):
                problems.append(f"Ferrokeeper log dump: 0x{cz:x} does not show {path}")
        if not fk_logged or min(fk_logged) != cap.last_zxid + 1 or max(fk_logged) != last:
            problems.append(f"Ferrokeeper logs hold 0x{min(fk_logged, default=0):x}.."
                            f"0x{max(fk_logged, default=0):x}, want 0x{cap.last_zxid + 1:x}..0x{last:x}")
        for n in snaps:
            hz, nodes = miglib.parse_snapshot_dump(dump("snapshot", os.path.join(fk.data_dir, n)))
            if not cap.last_zxid < hz <= last:
                problems.append(f"Ferrokeeper snapshot {n}: zxid 0x{hz:x}")
            alive = {p: v for p, v in final.items() if v["stat"]["czxid"] <= hz}
            if set(alive) - set(nodes):
                problems.append(f"{n}: missing {sorted(set(alive) - set(nodes))}")
            check_snapshot_against_read(problems, n, nodes, alive, exact=False)
    finally:
        if s:
            s.close()
        fk.close()

    # The committed fixtures: a clean stop, kill -9 (preallocated tail) and
    # a torn last record; the newest zxid in the logs is the expected one.
    for case in ("sigterm", "kill9", "torn"):
        fv2 = os.path.join(FIXTURES, case, "version-2")
        with open(os.path.join(FIXTURES, case, "expected.json")) as fh:
            expected = json.load(fh)
        zxids = {}
        for n in sorted(os.listdir(fv2)):
            out = dump("log" if n.startswith("log.") else "snapshot", os.path.join(fv2, n))
            if n.startswith("log."):
                zxids.update(miglib.parse_log_dump(out))
            else:
                miglib.parse_snapshot_dump(out)
        if max(zxids) != expected["last_zxid"]:
            problems.append(f"fixture {case}: newest logged zxid 0x{max(zxids):x}, "
                            f"expected 0x{expected['last_zxid']:x}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
