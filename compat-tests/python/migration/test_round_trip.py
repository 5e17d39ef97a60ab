"""ZooKeeper 3.8 -> Ferrokeeper (import) -> ZooKeeper 3.8 (export) round trip.

A real ZooKeeper builds a tree with every kind of znode while four sessions
are live, and is stopped (SIGTERM, or SIGKILL which leaves a preallocated log
tail). Ferrokeeper imports its data dir and must serve exactly the same tree
(every Stat field, times included, cversion as clients see it), keep the old
sessions (old id + password; one client reconnects by itself to the same
address, one with its saved id; an abandoned one expires after its timeout),
continue zxids and sequence counters. Then Ferrokeeper is stopped, exports a
ZooKeeper snapshot, and a real ZooKeeper booted from it must serve what
Ferrokeeper served last.

Checks that do not prevent the rest of the scenario are collected and
reported together at the end, so one run shows every difference.
"""
import os
import time

import pytest
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import KazooState
from kazoo.security import make_acl

import miglib
from miglib import (Client, create_container, create_seq, create_ttl, diff_reads, full_read,
                    run_fk, describe, stored_cversion, super_client, wait_until, zxid_of)

ABANDONED_S = 8.0       # session e: never reconnects, must expire on Ferrokeeper
REAP_WAIT_S = 8.0       # container / TTL reapers run every 300 ms on both servers


def owned_by(read, sid):
    return sorted(p for p, v in read.items() if v["stat"]["ephemeralOwner"] == sid)


def check_session_kept(problems, label, client, sid, read_paths, kz_reader):
    """The client got the old session back (not LOST, same id) and its
    ephemerals are there, owned by it."""
    if client.lost() or client.session_id != sid:
        problems.append(f"{label}: session 0x{sid:x} not kept: now 0x{client.session_id:x}, "
                        f"states {client.states}")
        return
    for p in read_paths:
        st = kz_reader.exists(p)
        if st is None or st.ephemeralOwner != sid:
            problems.append(f"{label}: ephemeral {p} of 0x{sid:x} is {st}")


def check_reaped(problems, label, kz, paths):
    for p in paths:
        try:
            wait_until(f"{p} removed", lambda p=p: kz.exists(p) is None, timeout=REAP_WAIT_S)
        except AssertionError as e:
            problems.append(f"{label}: {e}")


@pytest.mark.timeout(150)
@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_round_trip(stop):
    problems = []
    cleanup = []
    t_test = time.time()

    def phase(msg):
        miglib.log(f"[{stop}] {time.time() - t_test:5.1f}s {msg}")

    try:
        # ------------------------------------------------ 1. real ZooKeeper 3.8
        zk = miglib.new_zk()
        cleanup.append(zk.close)
        zk.start()
        st = miglib.build_zk_tree(zk, abandoned_timeout_s=ABANDONED_S, follower=True)
        a, b, e, f = st["a"], st["b"], st["e"], st["f"]
        cleanup.extend(c.close for c in (a, b, e, f))
        zk_last, zk_read = miglib.capture_stable(zk, a)
        zk_eph = miglib.dump_ephemerals(zk.port)
        ids = {k: c.client_id for k, c in zip("abef", (a, b, e, f))}
        sid = {k: v[0] for k, v in ids.items()}
        assert e.negotiated_timeout_ms == ABANDONED_S * 1000
        eph = {k: owned_by(zk_read, sid[k]) for k in "bef"}
        assert eph["b"] == ["/app/eph-b", "/app/locks/lock-0000000000", "/app/locks/lock-0000000001"]
        assert len(eph["e"]) == 2 and len(eph["f"]) == 2, eph
        assert set(zk_eph) == {sid["b"], sid["e"], sid["f"]}, zk_eph
        phase(f"ZooKeeper built {len(zk_read)} znodes, last zxid 0x{zk_last:x}, "
              f"snapshots {[hex(z) for z in st['made']['snapshots']]}")

        if stop == "sigterm":
            zk.stop()
        else:
            zk.kill()
            zk.stop()
        # The server is gone, so these close no session: a, b and e stay open
        # in ZooKeeper's files. f keeps trying to reconnect to the same address.
        for c in (a, b, e):
            c.close()
        v2 = os.listdir(os.path.join(zk.data_dir, "version-2"))
        assert any(n.startswith("log.") for n in v2) and any(n.startswith("snapshot.") for n in v2), v2

        # ------------------------------------------------ 2. Ferrokeeper imports and serves
        fk = miglib.new_fk(extra_cfg={"clientPort": str(zk.port)})
        fk.port = zk.port           # the same address, so that f reconnects by itself
        cleanup.append(fk.close)
        p = run_fk("--config", fk.cfg_path, "import", "--zk-data-dir", zk.data_dir)
        assert p.returncode == 0, describe(p)
        if f"0x{zk_last:x}" not in p.stdout:
            problems.append(f"import does not report zxid 0x{zk_last:x}: {p.stdout!r}")
        t_boot = time.time()
        fk.start()
        fk_zxid0 = zxid_of(fk.port)
        if fk_zxid0 != zk_last:
            problems.append(f"Ferrokeeper starts at zxid 0x{fk_zxid0:x}, ZooKeeper's last is 0x{zk_last:x}")
        s = super_client(fk)
        cleanup.append(s.close)
        fk_read0 = full_read(s.kz)
        assert time.time() - t_boot < ABANDONED_S - 1.5, "too slow: session e may have expired already"
        problems += diff_reads(zk_read, fk_read0, "ZooKeeper vs Ferrokeeper after import")
        fk_eph0 = miglib.dump_ephemerals(fk.port)
        if fk_eph0 != zk_eph:
            problems.append("dump 'Sessions with Ephemerals' differs after import: "
                            f"ZooKeeper {miglib.short(zk_eph, 400)} Ferrokeeper {miglib.short(fk_eph0, 400)}")
        phase("Ferrokeeper imported and serves; full read compared")

        # Session b: a new client with the old session id + password.
        nb = Client(fk.hosts, client_id=ids["b"], auth=[("digest", "bob:bobpw")])
        cleanup.append(nb.close)
        check_session_kept(problems, "reconnect with saved id (b)", nb, sid["b"], eph["b"], s.kz)
        # Session f: the old client object reconnects by itself to the same address.
        try:
            wait_until("f reconnected", lambda: f.kz.state == KazooState.CONNECTED, timeout=10)
        except AssertionError as err:
            problems.append(f"transparent reconnect (f): {err}; states {f.states}")
        check_session_kept(problems, "transparent reconnect (f)", f, sid["f"], eph["f"], s.kz)
        # A wrong password must be refused: as with ZooKeeper, kazoo is told
        # the session expired and starts a new one. The real session survives.
        w = Client(fk.hosts, timeout=10, client_id=(sid["a"], b"\x00" * 16))
        cleanup.append(w.close)
        if w.session_id == sid["a"]:
            problems.append(f"wrong password accepted for session 0x{sid['a']:x}: states {w.states}")
        w.close()
        na = Client(fk.hosts, client_id=ids["a"])
        cleanup.append(na.close)
        if na.lost() or na.session_id != sid["a"]:
            problems.append(f"session a (0x{sid['a']:x}, right password) not kept: states {na.states}")
        na.close()    # closeSession of an imported session

        # Session e never comes back: it expires after its timeout, counted
        # from Ferrokeeper's start (as ZooKeeper does for the sessions it loads).
        try:
            wait_until("abandoned session e expired",
                       lambda: all(s.kz.exists(p) is None for p in eph["e"]),
                       timeout=ABANDONED_S + 2 * miglib.TICK_MS / 1000 + 5, interval=0.05)
            took = time.time() - t_boot
            if took < ABANDONED_S * 0.95:
                problems.append(f"session e (timeout {ABANDONED_S}s) expired after only {took:.1f}s")
        except AssertionError as err:
            problems.append(f"{err}: still present {[p for p in eph['e'] if s.kz.exists(p)]}")
        for k in "bf":
            for p in eph[k]:
                stt = s.kz.exists(p)
                if stt is None or stt.ephemeralOwner != sid[k]:
                    problems.append(f"after e expired: ephemeral {p} of session {k} is {stt}")
        phase("sessions checked")

        # ------------------------------------------------ 3. new writes on Ferrokeeper
        kz = s.kz
        for parent, prefix, kind in miglib.SEQ_PARENTS:
            want = stored_cversion(zk_read[parent])
            path = create_seq(nb if kind == "ephemeral" else s, parent, prefix, kind, b"fk")
            expect = ("" if parent == "/" else parent) + "/" + prefix + "%010d" % want
            if path != expect:
                problems.append(f"sequential under {parent} on Ferrokeeper: got {path}, ZooKeeper's "
                                f"counter gives {expect}")
            czxid = kz.exists(path).czxid
            if czxid <= zk_last:
                problems.append(f"{path}: czxid 0x{czxid:x} not above ZooKeeper's 0x{zk_last:x}")
        _, new_st = kz.create("/fk/new", b"made on ferrokeeper", makepath=True, include_data=True)
        if new_st.czxid <= zk_last:
            problems.append(f"/fk/new czxid 0x{new_st.czxid:x} <= 0x{zk_last:x}")
        v = zk_read["/app"]["stat"]["version"]
        app_st = kz.set("/app", b"hello3", version=v)
        if app_st.version != v + 1 or app_st.mzxid <= zk_last:
            problems.append(f"setData /app after import: {app_st}")
        av = zk_read["/acl-hist"]["stat"]["aversion"]
        acl_st = kz.set_acls("/acl-hist", [make_acl("world", "anyone", all=True)], version=av)
        if acl_st.aversion != av + 1:
            problems.append(f"setACL /acl-hist after import: {acl_st}")
        f.kz.create("/app/eph-f2", b"f2", ephemeral=True)
        first_seq = sorted(p for p in zk_read if p.startswith("/app/seq-"))[0]
        t = kz.transaction()
        t.create("/fk/multi", b"m")
        t.set_data("/app/counter", b"fk")
        t.delete(first_seq)
        t.check("/app/binary", 0)
        res = t.commit()
        if any(isinstance(r, Exception) for r in res):
            problems.append(f"multi on Ferrokeeper failed: {res}")
        # Imported containers / TTL nodes are still containers / TTL nodes:
        # without their last child Ferrokeeper's reaper removes them.
        kz.delete("/containers/c1/child")
        kz.delete("/ttl/mid/child")
        check_reaped(problems, "Ferrokeeper reaper (imported)", kz, ["/containers/c1", "/ttl/mid"])
        for p in ("/ttl/long", "/containers/c3", "/containers/c4", "/ttl/mid2"):
            if kz.exists(p) is None:
                problems.append(f"{p} wrongly removed on Ferrokeeper")
        # Made on Ferrokeeper, checked on the exported ZooKeeper.
        create_container(kz, "/containers/fk-c", b"fk")
        kz.create("/containers/fk-c/child", b"")
        create_ttl(kz, "/ttl/fk-mid", b"", 1000)
        kz.create("/ttl/fk-mid/child", b"")
        phase("new writes on Ferrokeeper done")

        # ------------------------------------------------ 4. stop, export, boot ZooKeeper
        fk_last, fk_final = miglib.capture_stable(fk, s)
        fk_eph = miglib.dump_ephemerals(fk.port)
        for pth, node in fk_final.items():
            old = zk_read.get(pth)
            for k in ("czxid", "mzxid", "pzxid"):
                if (old is None or node["stat"][k] != old["stat"][k]) and node["stat"][k] <= zk_last:
                    problems.append(f"{pth}: {k} 0x{node['stat'][k]:x} set on Ferrokeeper is not above "
                                    f"ZooKeeper's last zxid 0x{zk_last:x}")
        s.close()                          # closeSession: one more zxid, no znode change
        fk_last = zxid_of(fk.port)
        fk.stop()                          # b (nb) and f stay open in Ferrokeeper's state
        nb.close()
        f.close()

        zk2 = miglib.new_zk(snap_count=100000)
        cleanup.append(zk2.close)
        p = run_fk("--config", fk.cfg_path, "export", "--out", zk2.data_dir)
        assert p.returncode == 0, describe(p)
        snap = os.path.join(zk2.data_dir, "version-2", f"snapshot.{fk_last:x}")
        assert os.path.exists(snap), (os.listdir(os.path.join(zk2.data_dir, "version-2")), describe(p))
        zk2.start()
        r2 = super_client(zk2)
        cleanup.append(r2.close)
        zk2_read = full_read(r2.kz)
        zk2_zxid = zxid_of(zk2.port)
        phase(f"ZooKeeper booted from the export (zxid 0x{zk2_zxid:x}, Ferrokeeper's 0x{fk_last:x})")
        if zk2_zxid < fk_last:
            problems.append(f"ZooKeeper from export at zxid 0x{zk2_zxid:x} < 0x{fk_last:x}")
        # ZooKeeper re-arms every session of the snapshot with its full timeout
        # when it boots (SessionTrackerImpl), deletes at load the ephemerals of
        # sessions missing from the snapshot, and later expires (closeSession)
        # the sessions no client reconnects to. b and f have 30 s / 20 s
        # timeouts, so they should still be there; if ZooKeeper dropped some
        # ephemerals, compare the rest and loosen only their parents' child
        # counters.
        missing = [pth for pth, nd in fk_final.items()
                   if nd["stat"]["ephemeralOwner"] and pth not in zk2_read]
        if missing:
            miglib.log(f"ZooKeeper dropped ephemerals at boot: {missing}")
        problems += diff_reads(fk_final, zk2_read, "Ferrokeeper vs ZooKeeper booted from export",
                               skip_paths=set(missing),
                               loose_parents={miglib.parent_of(pth) for pth in missing})
        if not missing:
            zk2_eph = miglib.dump_ephemerals(zk2.port)
            if zk2_eph != fk_eph:
                problems.append(f"dump ephemerals: Ferrokeeper {fk_eph} ZooKeeper-from-export {zk2_eph}")
        with open(zk2.log_path, "rb") as fh:
            zk2_log = fh.read().decode("utf-8", "replace")
        if "Digests are not matching" in zk2_log:
            problems.append("ZooKeeper reports a digest mismatch loading the export: " + " | ".join(
                ln for ln in zk2_log.splitlines() if "igest" in ln)[:2000])

        # The old sessions, carried ZooKeeper -> Ferrokeeper -> ZooKeeper.
        b2 = Client(zk2.hosts, client_id=ids["b"], auth=[("digest", "bob:bobpw")])
        cleanup.append(b2.close)
        check_session_kept(problems, "ZooKeeper from export, session b", b2, sid["b"], eph["b"], r2.kz)
        f2 = Client(zk2.hosts, client_id=ids["f"], timeout=20.0)
        cleanup.append(f2.close)
        check_session_kept(problems, "ZooKeeper from export, session f", f2, sid["f"],
                           eph["f"] + ["/app/eph-f2"], r2.kz)
        # Sequence counters continue on ZooKeeper from Ferrokeeper's.
        for parent, prefix, kind in miglib.SEQ_PARENTS:
            want = stored_cversion(fk_final[parent])
            path = create_seq(b2 if kind == "ephemeral" else r2, parent, prefix, kind, b"zk2")
            if miglib.seq_suffix(path) != want:
                problems.append(f"sequential under {parent} on ZooKeeper-from-export: got {path}, "
                                f"Ferrokeeper's counter gives {want:010d}")
        _, zst = r2.kz.create("/zk2/new", b"", makepath=True, include_data=True)
        if zst.czxid <= fk_last:
            problems.append(f"ZooKeeper-from-export write at zxid 0x{zst.czxid:x} <= 0x{fk_last:x}")
        # Containers and TTL nodes exported as such (ZooKeeper reaps them).
        for pth in ("/containers/c4/child", "/containers/fk-c/child", "/ttl/mid2/child",
                    "/ttl/fk-mid/child"):
            try:
                r2.kz.delete(pth)
            except NoNodeError:
                problems.append(f"ZooKeeper-from-export: {pth} does not exist")
        check_reaped(problems, "ZooKeeper reaper (exported)", r2.kz,
                     ["/containers/c4", "/containers/fk-c", "/ttl/mid2", "/ttl/fk-mid"])
        for pth in ("/ttl/long", "/containers/c3"):
            if r2.kz.exists(pth) is None:
                problems.append(f"{pth} removed on ZooKeeper-from-export")
        phase("done")
    finally:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as err:        # cleanup must go on
                miglib.log(f"cleanup: {err!r}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
