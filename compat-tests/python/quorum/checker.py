"""Judge a recorded history (history.Op list) against ZooKeeper's guarantees.

Role: the verdict of every quorum fault test.

Inputs: the ops of a History (or History.load of a dump). Only the fields
kind, key, value, expected_version, invoke, complete, outcome, result,
client and session are used.
Outputs: a Report: valid True (no violation), False (violations, each a
readable counter-example naming the ops involved) or None (no violation
found, but the linearizability search of some key hit its cap: undecided).

(a) Linearizability of writes and sync+read, per key (linearizability is
    local, so keys are checked one by one). Model: a versioned register,
    state None (no znode) or (value, version). write: present -> (v, ver+1);
    cas(ev): present and ver == ev -> (v, ev+1); create: absent -> (v, 0);
    delete(ev): present and ev in (-1, ver) -> absent; sync_read observes
    the state. An ok op must produce the recorded version (or read the
    recorded value and version); a fail op (BadVersion, NoNode, NodeExists)
    changed nothing and must be consistent with the state at its point
    (BadVersion: present and ver != ev; NoNode: absent; NodeExists:
    present); an info op may take effect at any point after its invocation,
    or never: its completion is treated as +infinity and its step is
    "applied or not". Plain reads and info reads are not part of (a).
    First, exact necessary conditions that need no search, for a key that
    is never deleted (versions then only grow): an op that completed before
    another began cannot have left a higher version than the later one
    started from or read (stale read, lost write); no version is produced
    by two writes (a CAS that succeeded twice); a version has one value.
    Then the search: Wing & Gong's algorithm with Lowe's memoization, as in
    Porcupine: a depth-first search that linearizes one of the calls before
    the first pending return (definite ops tried before info ops), backtracks
    when none fits, and never revisits a (linearized set, model states)
    pair; it succeeds once every definite op is linearized (info ops left
    over never happened), and never linearizes an info op where it would
    change nothing. The model state is the set of states the register may
    be in (info ops make it nondeterministic), which keeps the search
    deterministic; the
    values of info writes that no read returned are merged into one
    placeholder (only their versions are observable), so states merge, and
    of several pending info ops alike only one is tried at each point.
    The search is capped (max_steps per key): "undecided", never a hang.
(b) Session order of plain reads, per session (client name + session id)
    and key: each read returns a node with mzxid >= the largest mzxid the
    session saw before on that key (monotonic reads, from its earlier reads;
    read-your-writes, from its acknowledged writes; after its acknowledged
    delete, only a node created later: mzxid strictly greater). Every read
    (plain or synced) returns a value some write (ok or info) produced, that
    write was invoked before the read completed, and for an ok write with the
    same version and mzxid; a read of an absent node needs a delete invoked
    before it completed, or a read before the key was first created.
"""
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

INF = float("inf")
WRITE_KINDS = ("write", "cas", "create", "delete")
LIN_KINDS = WRITE_KINDS + ("sync_read",)


@dataclass
class Report:
    valid: bool
    violations: list = field(default_factory=list)
    undecided: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def __str__(self):
        head = {True: "history is valid", False: "history is NOT valid",
                None: "history undecided"}[self.valid]
        parts = [f"{head} ({', '.join(f'{k}={v}' for k, v in self.stats.items())})"]
        parts += [f"VIOLATION: {v}" for v in self.violations]
        parts += [f"UNDECIDED: {u}" for u in self.undecided]
        return "\n".join(parts)


# -- (a) the register model -------------------------------------------------

def _outcomes(s, op):
    """Next states of one register state s under op (empty: inconsistent)."""
    kind, res, outcome = op.kind, op.result or {}, op.outcome
    present = s is not None
    err = res.get("error")
    if kind == "sync_read":
        if res.get("absent"):
            return [s] if not present else []
        return [s] if present and s == (res["value"], res["version"]) else []
    if kind in ("write", "cas"):
        can = present and (kind == "write" or s[1] == op.expected_version)
        new = (op.value, s[1] + 1) if can else None
        if outcome == "ok":
            want = res.get("version")
            return [new] if can and (want is None or want == new[1]) else []
        if outcome == "fail":
            if err == "NoNodeError":
                return [s] if not present else []
            if err == "BadVersionError":
                return [s] if present and kind == "cas" and s[1] != op.expected_version else []
            return []
        return [new, s] if can else [s]
    if kind == "create":
        new = (op.value, 0)
        if outcome == "ok":
            return [new] if not present and res.get("version", 0) == 0 else []
        if outcome == "fail":
            return [s] if present and err == "NodeExistsError" else []
        return [new, s] if not present else [s]
    if kind == "delete":
        ev = op.expected_version if op.expected_version is not None else -1
        can = present and (ev == -1 or s[1] == ev)
        if outcome == "ok":
            return [None] if can else []
        if outcome == "fail":
            if err == "NoNodeError":
                return [s] if not present else []
            if err == "BadVersionError":
                return [s] if present and not can else []
            if err == "NotEmptyError":
                return [s] if present else []
            return []
        return [None, s] if can else [s]
    raise ValueError(f"unknown op kind {kind!r}")


def _step(states, op):
    out = set()
    for s in states:
        out.update(_outcomes(s, op))
    return frozenset(out)


def _fmt_states(states):
    return "{" + ", ".join("absent" if s is None else f"({s[0]!r}, v{s[1]})"
                           for s in sorted(states, key=lambda s: (s is not None, s or ()))) + "}"


UNSEEN = "<value of an unread info write>"


def _version_precheck(key, ops):
    """Exact necessary conditions for a key that is never deleted: the
    version only grows along any linearization, so an op that completed
    before another was invoked cannot have left a higher version than the
    later one started from; no version is produced twice; one version has
    one value. Returns violation messages (empty when none)."""
    if any(op.kind == "delete" and op.outcome in ("ok", "info") for op in ops):
        return []
    pinned = []                         # (op, version before, version after)
    for op in ops:
        if op.outcome != "ok":
            continue
        res = op.result
        if op.kind == "sync_read":
            v = -1 if res.get("absent") else res["version"]
            pinned.append((op, v, v))
        elif "version" in res:
            pinned.append((op, res["version"] - 1, res["version"]))
    found = []
    by_complete = sorted(pinned, key=lambda p: p[0].complete)
    top, j = None, 0
    for op, pre, post in sorted(pinned, key=lambda p: p[0].invoke):
        while j < len(by_complete) and by_complete[j][0].complete < op.invoke:
            if top is None or by_complete[j][2] > top[2]:
                top = by_complete[j]
            j += 1
        if top is not None and top[2] > pre:
            found.append(f"key {key}: an op saw an older version than one that finished before it began "
                         f"(a stale read or a lost write):\n    {top[0].describe()}\n"
                         f"    finished before\n    {op.describe()}\n"
                         f"    began, yet left version {top[2]} where the later one "
                         f"{'read' if op.kind == 'sync_read' else 'started from'} version {pre}")
            break
    writers, values = {}, {}
    for op, pre, post in pinned:
        if op.kind != "sync_read":
            if post in writers:
                found.append(f"key {key}: two writes both produced version {post}:\n"
                             f"    {writers[post].describe()}\n    {op.describe()}")
            writers[post] = op
        value = op.result.get("value") if op.kind == "sync_read" else op.value
        if post >= 0 and post in values and values[post][0] != value:
            found.append(f"key {key}: version {post} has two values:\n"
                         f"    {values[post][1].describe()}\n    {op.describe()}")
        values.setdefault(post, (value, op))
    return found


def check_key(key, ops, max_steps=300_000, deadline=None, precheck=True):
    """Linearizability of one key's ops (kinds LIN_KINDS, info reads removed);
    precheck=False runs the search alone. Returns (True|False|None, message)."""
    ops = [op for op in ops if not (op.kind == "sync_read" and op.outcome != "ok")]
    n = len(ops)
    if n == 0:
        return True, ""
    found = _version_precheck(key, ops) if precheck else []
    if found:
        return False, "\n".join(found)
    # An info write whose value no read returned is observable only through
    # versions: give all of them one placeholder value, so states merge.
    read_values = {op.result.get("value") for op in ops if op.kind == "sync_read"}
    recorded = ops
    ops = [replace(op, value=UNSEEN) if op.outcome == "info" and op.value not in read_values else op
           for op in ops]
    # Events: call 2i, return 2i+1; sorted by time, calls first on ties;
    # an info op never returns (it may take effect at any later time).
    events = []
    for i, op in enumerate(ops):
        end = INF if op.outcome == "info" or op.complete is None else op.complete
        events.append((op.invoke, 0, 2 * i))
        events.append((end, 1, 2 * i + 1))
    events.sort()
    order = [e[2] for e in events]
    # Doubly linked list over nodes 0..2n-1 with head sentinel 2n.
    head = 2 * n
    nxt = [None] * (2 * n + 1)
    prv = [None] * (2 * n + 1)
    last = head
    for node in order:
        nxt[last] = node
        prv[node] = last
        last = node
    nxt[last] = None

    def lift(call):
        for node in (call, call + 1):
            nxt[prv[node]] = nxt[node]
            if nxt[node] is not None:
                prv[nxt[node]] = prv[node]

    def unlift(call):
        for node in (call + 1, call):
            nxt[prv[node]] = node
            if nxt[node] is not None:
                prv[nxt[node]] = node

    def candidates():
        """Calls before the first remaining return (those may go next),
        definite ops before info ops; and that return. Pending info ops with
        the same kind, value and expected version are interchangeable (they
        never return and step alike), so only the first of each is offered."""
        definite, info, classes = [], [], set()
        node = nxt[head]
        while node is not None and node % 2 == 0:
            op = ops[node // 2]
            if op.outcome != "info":
                definite.append(node)
            elif (op.kind, op.value, op.expected_version) not in classes:
                classes.add((op.kind, op.value, op.expected_version))
                info.append(node)
            node = nxt[node]
        return definite + info, node

    # Depth-first search; a frame is [candidates, next index, states, bits, call that led here].
    definite_left = sum(op.outcome != "info" for op in ops)
    if definite_left == 0:
        return True, ""
    cands, _ = candidates()
    stack = [[cands, 0, frozenset([None]), 0, None]]
    cache = set()
    best = (-1, None)                   # (depth, (prefix, states, blocking return))
    steps = 0
    while stack:
        steps += 1
        if steps > max_steps or (deadline is not None and steps % 4096 == 0 and time.monotonic() > deadline):
            return None, (f"key {key}: search capped after {steps} steps ({n} ops); "
                          f"longest linearizable prefix {best[0]} ops")
        frame = stack[-1]
        cands, idx, states, bits, _ = frame
        if idx >= len(cands):
            depth = len(stack) - 1
            if depth > best[0]:
                _, blocking = candidates()
                best = (depth, ([f[4] // 2 for f in stack[1:]], states, blocking))
            stack.pop()
            if frame[4] is not None:
                unlift(frame[4])
                if ops[frame[4] // 2].outcome != "info":
                    definite_left += 1
            continue
        frame[1] += 1
        call = cands[idx]
        i = call // 2
        new_states = _step(states, ops[i])
        info = ops[i].outcome == "info"
        # An info op that changes nothing here is better left pending: it
        # may still happen later, or never.
        if not new_states or (info and new_states == states):
            continue
        new_bits = bits | (1 << i)
        memo = (new_bits, new_states)
        if memo in cache:
            continue
        cache.add(memo)
        lift(call)
        if not info:
            definite_left -= 1
            if definite_left == 0:
                return True, ""
        next_cands, _ = candidates()
        stack.append([next_cands, 0, new_states, new_bits, call])
    return False, _counterexample(key, recorded, best[1], order)


def _counterexample(key, ops, best, order):
    prefix, states, blocking = best
    done = set(prefix)
    # Ops pending at that point: called before the blocking op returned, not linearized.
    limit = order.index(blocking) if blocking is not None else len(order)
    pending = [ops[node // 2] for node in order[:limit]
               if node % 2 == 0 and node // 2 not in done]
    lines = [f"key {key}: no linearization of its {len(ops)} writes and synced reads.",
             f"  longest linearizable prefix: {len(prefix)} ops; its last ones:"]
    lines += [f"    {ops[i].describe()}" for i in prefix[-6:]]
    lines.append(f"  register after it: {_fmt_states(states)}")
    if blocking is not None:
        lines.append("  then none of these pending ops fits that state before "
                     f"op#{ops[blocking // 2].id} must have happened:")
    lines += [f"    {op.describe()}" for op in pending[:10]]
    if len(pending) > 10:
        lines.append(f"    ... and {len(pending) - 10} more")
    return "\n".join(lines)


# -- (b) sessions and provenance -------------------------------------------

def check_reads(ops):
    """Session-order and provenance checks of reads; returns violation strings."""
    violations = []
    produced = {}                       # (key, value) -> writing op
    deletes = defaultdict(list)         # key -> delete ops (ok or info)
    first_created = {}                  # key -> earliest completion of an ok create/write
    for op in ops:
        if op.kind in ("write", "cas", "create") and op.outcome in ("ok", "info"):
            produced[(op.key, op.value)] = op
        if op.kind == "delete" and op.outcome in ("ok", "info"):
            deletes[op.key].append(op)
        if op.kind in ("write", "cas", "create") and op.outcome == "ok":
            first_created[op.key] = min(first_created.get(op.key, INF), op.complete)

    for op in ops:
        if op.kind not in ("read", "sync_read") or op.outcome != "ok":
            continue
        res = op.result
        if res.get("absent"):
            if not (any(d.invoke < op.complete for d in deletes[op.key])
                    or op.invoke < first_created.get(op.key, INF)):
                violations.append(f"read of an absent node that no delete explains: {op.describe()}")
            continue
        w = produced.get((op.key, res["value"]))
        if w is None:
            violations.append(f"read returned a value no write produced: {op.describe()}")
        elif w.invoke > op.complete:
            violations.append(f"read returned a value written only later:\n    {op.describe()}\n"
                              f"    {w.describe()}")
        elif w.outcome == "ok" and (w.result.get("version") != res["version"]
                                    or w.result.get("mzxid") != res["mzxid"]):
            violations.append(f"read returned a value with another version/mzxid than its write:\n"
                              f"    {op.describe()}\n    {w.describe()}")

    sessions = defaultdict(list)
    for op in ops:
        if op.outcome == "ok" and op.session:
            sessions[(op.client, op.session)].append(op)
    for (client, session), sops in sessions.items():
        sops.sort(key=lambda o: o.invoke)
        floor = {}                      # key -> (mzxid, strict, op that set it)
        for op in sops:
            res = op.result
            mzxid = res.get("mzxid")
            if op.kind == "delete":
                if op.key in floor:
                    floor[op.key] = (floor[op.key][0], True, op)
                continue
            if mzxid is None:
                continue
            seen = floor.get(op.key)
            if op.kind in ("read", "sync_read") and seen is not None:
                low, strict, by = seen
                if mzxid < low or (strict and mzxid == low):
                    why = ("read-your-writes" if by.kind in WRITE_KINDS else "monotonic reads")
                    violations.append(
                        f"session {client} ({session:#x}) broke {why} on {op.key}: after\n"
                        f"    {by.describe()}\n  it read an older node (mzxid {mzxid:#x} < {low:#x}"
                        f"{' after the delete' if strict else ''}):\n    {op.describe()}")
            if seen is None or mzxid > seen[0]:
                floor[op.key] = (mzxid, False, op)
    return violations


# -- entry point ---------------------------------------------------------------

def check(ops, max_steps_per_key=300_000, time_budget=60.0, precheck=True):
    """Run (a) and (b) over a history; returns a Report. precheck=False skips
    (a)'s exact pre-checks, so that the search alone decides."""
    ops = [op for op in ops if op.outcome is not None]
    started = time.monotonic()
    deadline = started + time_budget
    by_key = defaultdict(list)
    for op in ops:
        if op.kind in LIN_KINDS:
            by_key[op.key].append(op)
    violations, undecided = [], []
    for key in sorted(by_key):
        verdict, message = check_key(key, by_key[key], max_steps_per_key, deadline, precheck)
        if verdict is False:
            violations.append(message)
        elif verdict is None:
            undecided.append(message)
    violations += check_reads(ops)
    stats = {"ops": len(ops), "keys": len(by_key),
             "ok": sum(op.outcome == "ok" for op in ops),
             "fail": sum(op.outcome == "fail" for op in ops),
             "info": sum(op.outcome == "info" for op in ops),
             "check_s": round(time.monotonic() - started, 2)}
    valid = False if violations else (None if undecided else True)
    return Report(valid, violations, undecided, stats)
