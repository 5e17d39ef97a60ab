"""Quorum fault tests: crashes, pauses, partitions and restarts of a 3- or
5-server ensemble under concurrent load, judged by checker.py.

Each test runs against the implementations QUORUM_IMPL selects (conftest),
records a history of a concurrent kazoo workload (faultrun.Run), injects
its faults, reads everything back through every server after sync, and
fails if the checker finds a violation (or cannot decide), if a workload
client lost its session or ephemeral, or if a fault-specific expectation
fails. One summary line per run (ops, acked, info, failover times) is
printed and repeated at the end of the session.

Timing: tickTime 1000 ms, syncLimit 3, so a silently cut-off ZooKeeper
server notices after about 3 s; workload sessions time out after 10 s
unless a test says otherwise.
"""
import time

import pytest
from kazoo.protocol.states import KazooState

import zkraw
from faultrun import Run, kill_leader_under_load

pytestmark = pytest.mark.timeout(120)

FAILOVER_BOUND_MS = 10_000


def followers(ens):
    return [i for i in ens.ids(voters_only=True) if ens.mode(i) == "follower"]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_links_go_through_the_proxy(make_ensemble, impl, artifacts):
    """The ensemble forms with every peer connection through the proxy: no
    connection reaches a real peer port directly, every pair of servers has
    talked, and the leader's quorum links carried traffic."""
    ens = make_ensemble(3)
    leader = ens.wait_for_leader()
    assert ens.direct_peer_connections() == []
    stats = ens.proxy.stats()
    for f in followers(ens):
        both = [stats[(a, b, kind)]["bytes_up"] + stats[(a, b, kind)]["bytes_down"]
                for a, b in ((f, leader), (leader, f)) for kind in ("quorum", "election")]
        assert sum(both) > 0, f"no traffic between {f} and leader {leader}: {stats}"
    with Run(ens, "links", artifacts, clients=3) as run:
        run.fault_done()
        time.sleep(2)
        run.finish()
    run.assert_valid()
    assert ens.direct_peer_connections() == []


def test_kill_leader_under_load(make_ensemble, impl, artifacts):
    """kill -9 the leader under concurrent writes: a new leader serves
    writes within seconds, clients keep their sessions and ephemerals, no
    acknowledged write is lost; then the old leader rejoins and catches up."""
    run = kill_leader_under_load(make_ensemble(3), artifacts)
    run.assert_valid()
    assert run.notes["failover_ms"] < FAILOVER_BOUND_MS


def test_kill_and_restart_followers_one_at_a_time(make_ensemble, impl, artifacts):
    """kill -9 each follower in turn under load, restart it, let it catch up."""
    ens = make_ensemble(3)
    with Run(ens, "kill-followers", artifacts) as run:
        time.sleep(2)
        for n, f in enumerate(followers(ens)):
            t = run.now()
            ens.kill(f)
            run.measure_failover(t, label=f"write_after_kill{n + 1}_ms")
            time.sleep(2)
            ens.restart(f, wait=True)
            time.sleep(1)
        run.fault_done()
        time.sleep(2)
        run.finish()
    run.assert_valid()


def test_five_servers_two_followers_down(make_ensemble, impl, artifacts):
    """5 servers: kill -9 two followers at once (a majority of 3 remains),
    writes go on, restart both, everything converges."""
    ens = make_ensemble(5)
    with Run(ens, "five-two-down", artifacts) as run:
        time.sleep(2)
        down = followers(ens)[:2]
        t = run.now()
        for f in down:
            ens.kill(f)
        run.measure_failover(t)
        run.notes["down"] = "+".join(map(str, down))
        time.sleep(3)
        for f in down:
            ens.start_server(f)
        ens.wait_serving(ens.ids(), 60)
        run.fault_done()
        time.sleep(2)
        run.finish()
    run.assert_valid()


def test_pause_leader_longer_than_session_timeout(make_ensemble, impl, artifacts):
    """SIGSTOP the leader for longer than the session timeout: clients on the
    other servers keep their sessions (the new leader gives every session a
    full timeout, and the resumed old leader cannot expire anyone), while the
    session of a client that only knew the paused server expires, and its
    ephemeral disappears everywhere."""
    ens = make_ensemble(3)
    leader = ens.wait_for_leader()
    others = [i for i in ens.ids() if i != leader]
    timeout = 4.0
    with Run(ens, "pause-leader-long", artifacts, hosts=ens.connect_string(others),
             session_timeout=timeout) as run:
        stuck = run.client("stuck", ens.connect_string([leader]), session_timeout=timeout,
                           randomize_hosts=False)
        stuck.zk.create(f"/q/{run.name}/stuck", b"", ephemeral=True)
        time.sleep(2)
        t = run.now()
        ens.pause(leader)
        run.measure_failover(t)
        time.sleep(max(0.0, 2.5 * timeout - (run.now() - t)))
        run.notes["paused_s"] = round(run.now() - t, 1)
        ens.resume(leader)
        ens.wait_serving(ens.ids(), 60)
        run.fault_done()
        time.sleep(2)
        run.finish()
        for i in ens.ids():
            c = run.client(f"probe-{i}", ens.connect_string([i]), randomize_hosts=False)
            c.zk.sync(f"/q/{run.name}")
            assert c.zk.exists(f"/q/{run.name}/stuck") is None, \
                f"server {i}: the ephemeral of the client cut off with the paused leader survived"
    run.assert_valid()


def test_pause_follower_shorter_than_session_timeout(make_ensemble, impl, artifacts):
    """SIGSTOP a follower for less than the session timeout of its clients:
    when it resumes, its own client goes on with the same session and
    ephemeral, and the server catches up."""
    ens = make_ensemble(3)
    f = followers(ens)[0]
    timeout = 6.0
    with Run(ens, "pause-follower-short", artifacts, session_timeout=timeout) as run:
        mine = run.client("mine", ens.connect_string([f]), session_timeout=timeout,
                          randomize_hosts=False)
        session = mine.session_id
        mine.zk.create(f"/q/{run.name}/mine", b"", ephemeral=True)
        time.sleep(2)
        ens.pause(f)
        time.sleep(timeout / 3)
        ens.resume(f)
        ens.wait_serving(ens.ids(), 30)
        wait_for(lambda: mine.write(run.keys[0], "mine-after").outcome == "ok", 20,
                 "a write by the paused server's client")
        assert mine.session_id == session, "the client of the paused follower lost its session"
        run.fault_done()
        time.sleep(2)
        run.finish()
        for i in ens.ids():
            c = run.client(f"probe-{i}", ens.connect_string([i]), randomize_hosts=False)
            c.zk.sync(f"/q/{run.name}")
            stat = c.zk.exists(f"/q/{run.name}/mine")
            assert stat is not None and stat.ephemeralOwner == session, f"server {i}: ephemeral lost"
    run.assert_valid()


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_partition_one_server(make_ensemble, impl, artifacts, role):
    """Cut one server (leader or follower) from the others through the proxy
    (silently: connections hang, nothing is reset). The others go on; the
    cut-off server stops serving, so a client pinned to it gets no write
    acknowledged and a client that can move is moved (same session); after
    the heal it rejoins and catches up."""
    ens = make_ensemble(3)
    leader = ens.wait_for_leader()
    cut = leader if role == "leader" else followers(ens)[0]
    rest = [i for i in ens.ids() if i != cut]
    with Run(ens, f"partition-{role}", artifacts) as run:
        pinned = run.client("pinned", ens.connect_string([cut]), randomize_hosts=False,
                            op_timeout=2.0)
        mover = run.client("mover", ens.connect_string([cut] + rest), randomize_hosts=False)
        mover_session = mover.session_id
        time.sleep(2)
        t = run.now()
        ens.isolate(cut, mode="hang")
        started = time.monotonic()
        ens.wait_for_leader(30, among=rest)
        run.notes["leader_ms"] = round((time.monotonic() - started) * 1000)
        run.measure_failover(t)
        ens.wait_mode(cut, lambda m: m not in ("leader", "follower", "observer"), 30)
        run.notes["cut_stops_serving_ms"] = round((time.monotonic() - started) * 1000)
        acked = [op for op in (pinned.write(run.keys[0], f"pinned-{n}") for n in range(3))
                 if op.outcome == "ok"]
        assert not acked, f"server {cut} acknowledged writes while cut off: {acked[0].describe()}"
        op = wait_for(lambda: (lambda o: o if o.outcome == "ok" else None)(mover.write(run.keys[1], "moved")),
                      20, "a write by the client that must move")
        assert mover.session_id == mover_session and op.server != ens.connect_string([cut]), \
            "the movable client did not move to another server on its session"
        time.sleep(1)
        ens.heal()
        healed = time.monotonic()
        ens.wait_serving(ens.ids(), 60)
        run.notes["rejoin_ms"] = round((time.monotonic() - healed) * 1000)
        run.fault_done()
        time.sleep(2)
        latest = run.client("latest", ens.connect_string(rest), randomize_hosts=False)
        want = latest.sync_read(run.keys[1]).result
        wait_for(lambda: pinned.read(run.keys[1]).result.get("version", -1) >= want["version"], 20,
                 f"server {cut} catching up")
        run.finish()
    run.assert_valid()


def test_five_servers_minority_partition(make_ensemble, impl, artifacts):
    """5 servers split 2 | 3 with the leader on the small side (silently):
    the 3 elect a leader and go on, both servers of the 2 stop serving and
    acknowledge no write, and after the heal all 5 converge."""
    ens = make_ensemble(5)
    leader = ens.wait_for_leader()
    minority = [leader, followers(ens)[0]]
    majority = [i for i in ens.ids() if i not in minority]
    with Run(ens, "five-split", artifacts) as run:
        pinned = [run.client(f"pinned-{i}", ens.connect_string([i]), randomize_hosts=False,
                             op_timeout=2.0) for i in minority]
        time.sleep(2)
        t = run.now()
        ens.partition(minority, mode="hang")
        started = time.monotonic()
        ens.wait_for_leader(30, among=majority)
        run.notes["leader_ms"] = round((time.monotonic() - started) * 1000)
        run.measure_failover(t)
        for i in minority:
            ens.wait_mode(i, lambda m: m not in ("leader", "follower"), 30)
        run.notes["minority_stops_serving_ms"] = round((time.monotonic() - started) * 1000)
        for c in pinned:
            op = c.write(run.keys[0], f"{c.name}-cut")
            assert op.outcome != "ok", f"a cut-off server acknowledged a write: {op.describe()}"
        ens.heal()
        ens.wait_serving(ens.ids(), 60)
        run.fault_done()
        time.sleep(2)
        run.finish()
    run.assert_valid()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_whole_ensemble(make_ensemble, impl, artifacts, how):
    """Stop every server (SIGTERM, or kill -9) after acknowledged writes,
    start them all again: every acknowledged write is there, on every server."""
    ens = make_ensemble(3)
    with Run(ens, f"restart-all-{how}", artifacts, ephemerals=False) as run:
        time.sleep(3)
        run.workload.stop()
        t = run.now()
        ens.restart_all(kill=(how == "sigkill"), timeout=90)
        run.notes["restart_ms"] = round((run.now() - t) * 1000)
        run.finish(sessions=False)
    run.assert_valid()


def test_ephemerals_live_exactly_as_long_as_their_session(make_ensemble, impl, artifacts):
    """An ephemeral created through one server is visible on all; closing the
    session through that server removes it everywhere at once; a session
    whose client is cut off (its connection hangs, nothing is closed) keeps
    its ephemeral until the timeout and loses it everywhere after."""
    ens = make_ensemble(3)
    timeout = 4.0
    with Run(ens, "ephemerals", artifacts, clients=2, ephemerals=False) as run:
        path = f"/q/{run.name}"
        probes = {i: run.client(f"probe-{i}", ens.connect_string([i]), randomize_hosts=False)
                  for i in ens.ids()}

        def everywhere(node):
            """{server: present?} after sync, recorded as synced reads."""
            return {i: not c.sync_read(node).result.get("absent") for i, c in probes.items()}

        closer = run.client("closer", ens.connect_string([1]), randomize_hosts=False)
        assert closer.create(f"{path}/closed", "x", ephemeral=True).outcome == "ok"
        assert all(everywhere(f"{path}/closed").values())
        # Closing the session deletes its ephemerals: record that as a delete.
        op = run.history.invoke("closer", "delete", f"{path}/closed", expected_version=-1)
        closer.close()
        run.history.finish(op, "ok", {}, session=None)
        assert not any(everywhere(f"{path}/closed").values()), "ephemeral survived closeSession"

        cut = run.client("cut", ens.client_address("cut", 2), session_timeout=timeout,
                         randomize_hosts=False)
        negotiated = cut.zk._session_timeout / 1000.0
        assert cut.create(f"{path}/expiring", "x", ephemeral=True).outcome == "ok"
        ens.proxy.block("cut", 2, mode="hang")
        t = time.monotonic()
        expiry = run.history.invoke("cut", "delete", f"{path}/expiring", expected_version=-1)
        time.sleep(negotiated / 2)
        assert all(everywhere(f"{path}/expiring").values()), "ephemeral gone before the timeout"
        wait_for(lambda: not any(everywhere(f"{path}/expiring").values()),
                 negotiated + 3 * ens.tick_time_ms / 1000 + 10, "the ephemeral to expire everywhere")
        gone = time.monotonic() - t
        run.history.finish(expiry, "info", {"error": "session expired"})
        run.notes["timeout_s"] = negotiated
        run.notes["expired_after_s"] = round(gone, 2)
        assert gone >= negotiated * 0.9, f"expired after {gone:.2f}s, timeout {negotiated}s"
        ens.proxy.unblock("cut", 2)
        wait_for(lambda: cut.zk.state == KazooState.LOST or cut.zk.client_state == "EXPIRED_SESSION",
                 15, "the cut-off client to learn its session expired")
        run.fault_done()
        time.sleep(1)
        run.finish()
    run.assert_valid()


def test_watch_survives_failover(make_ensemble, impl, artifacts):
    """Watches set through the leader, which then dies, are re-armed on
    another server: the client re-attaches to its session there with its
    last seen zxid and sends setWatches, as the Java client does; a node
    changed while it was away fires at once, another fires on a later change.
    (Kazoo 2.11 cannot show this: on any disconnect it fires its one-shot
    watches with a NONE event and drops them, and it never sends setWatches
    - KazooClient._reset_watchers - so the watcher is a zkraw client.)"""
    ens = make_ensemble(3)
    leader = ens.wait_for_leader()
    rest = [i for i in ens.ids() if i != leader]
    with Run(ens, "watch-failover", artifacts, clients=2, ephemerals=False) as run:
        a, b = run.keys[0], run.keys[1]
        w = zkraw.connect(ens.members[leader].client_port, timeout_ms=10000)
        session, passwd = w.session_id, w.passwd
        seen = max(w.call("getData", key, True).zxid for key in (a, b))
        ens.kill(leader)
        w.close()
        ens.wait_for_leader(30, among=rest)
        writer = run.client("writer", ens.connect_string(rest))
        assert writer.write(a, "while-away").outcome == "ok"
        w = zkraw.reconnect(ens.members[rest[0]].client_port, session, passwd, timeout_ms=10000,
                            last_zxid=seen)
        try:
            assert w.session_id == session, f"re-attach refused: {w.connect_result}"
            t = time.monotonic()
            assert w.call("setWatches", seen, data=[a, b]).err == 0
            fired = wait_event(w, "NodeDataChanged", a, 10)
            run.notes["rearmed_fired_ms"] = round((time.monotonic() - t) * 1000)
            assert not [e for e in w.events if e.path == b], f"watch on {b} fired early: {w.events}"
            t = time.monotonic()
            assert writer.write(b, "after").outcome == "ok"
            wait_event(w, "NodeDataChanged", b, 10)
            run.notes["watch_fired_ms"] = round((time.monotonic() - t) * 1000)
            assert fired.path == a
        finally:
            w.close()
        ens.start_server(leader)
        ens.wait_serving(ens.ids(), 60)
        run.fault_done()
        time.sleep(1)
        run.finish()
    run.assert_valid()


def wait_event(raw, typename, path, timeout):
    """Read the raw client's frames (answering nothing) until the event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in raw.events:
            if e.typename == typename and e.path == path:
                return e
        try:
            raw.read_one(timeout=max(0.05, min(0.5, deadline - time.monotonic())))
        except zkraw.Timeout:
            raw.ping(timeout=2)
    raise AssertionError(f"no {typename} event for {path} within {timeout}s: {raw.events}")


def test_observer_serves_through_failover(make_ensemble, impl, artifacts):
    """3 voters + 1 observer: the observer says Mode: observer, serves a
    workload of its own (writes forwarded), keeps it going when the leader
    is killed, and agrees with the voters at the end."""
    ens = make_ensemble(3, observers=1)
    obs = 4
    assert ens.mode(obs) == "observer"
    with Run(ens, "observer", artifacts, hosts=ens.connect_string([obs]), clients=3) as run:
        time.sleep(2)
        old = ens.wait_for_leader()
        t = run.now()
        ens.kill(old)
        ens.wait_for_leader(30, among=[i for i in ens.ids() if i != old])
        run.measure_failover(t)
        time.sleep(2)
        ens.start_server(old)
        ens.wait_serving(ens.ids(), 60)
        run.fault_done()
        time.sleep(2)
        run.finish()
    run.assert_valid()
