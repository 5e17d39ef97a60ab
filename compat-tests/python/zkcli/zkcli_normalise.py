"""Normalise zkCli output so that two servers can be compared step by step.

Input: the Pieces of zkcli_runner.split_output (main-thread lines, marker
answer, notifications per step).  Only what differs by nature between two
runs is rewritten; everything else is compared verbatim:

  * cZxid/mZxid/pZxid (and `version=` of a config): each distinct non-zero
    zxid becomes Z1, Z2, ... in order of first appearance in the run (0x0
    stays 0x0), so equality and first-appearance order are still compared;
    a zxid first seen in a masked step is shown as Z? (and not ranked);
  * ctime/mtime: <epoch> for 1970-01-01 00:00:00 UTC, <time> otherwise;
  * ephemeralOwner: session ids become S1, S2, ... in order of first
    appearance; 0x0 and values with the top bit set (container / TTL
    encodings) are kept;
  * the server's port (in `Connecting to`, `connect`, `history`) -> <port>;
  * `ZooKeeper CLI version: ...` -> <version> (the line names zkCli's own jar;
    zkCli never prints the server's version);
  * SLF4J/log4j noise and blank lines are dropped (zkcli_runner);
  * `getEphemerals` lists are sorted: the server returns a set (ZooKeeper's
    order is that of a Java HashSet);
  * `whoami` lines are sorted: the server returns the connection's set of
    identities (ZooKeeper's order is that of a ConcurrentHashMap key set);
  * adjacent *WatchRemoved notifications are sorted: one `removewatches` that
    removes several watches queues them in the iteration order of a HashMap
    of the client (differs between two runs against the same ZooKeeper);
  * `deleteall`: the line "Failed to delete some node(s) in the subtree!" is
    dropped: zkCli 3.8 (ZKUtil.deleteInBatch) releases its semaphore before
    it records a failed multi, so it prints that line or not at random (the
    scenario lists the tree afterwards instead);
  * offline steps (local markers): zkCli's usage text printed for the
    marker is dropped; notifications of an offline group are pooled, sorted,
    on its first step (two client instances print them: no order between
    them); a `connect` also sorts its notifications (old and new client);
  * around `printwatches off` ... `printwatches on` the presence of marker
    notifications is not compared (the event thread reads the flag late);
  * after `quit` zkCli exits while its event thread may or may not have
    printed the Closed notification: that notification is dropped;
  * `#! authfailed` steps: "Not connected" and "KeeperErrorCode = AuthFailed
    for P" are dropped (which one zkCli prints depends on whether its send
    thread has handled the server's AuthFailed reply yet).

Known, intended ZooKeeper 3.8-vs-3.9 differences are accepted only where a
step carries `#! mask=NAME`, NAME being a key of MASKS below.
"""
import difflib
import re
from dataclasses import dataclass, field

ZXID_LINE_RE = re.compile(r"^(cZxid|mZxid|pZxid) = 0x([0-9a-f]+)$")
CONFIG_VERSION_RE = re.compile(r"^version=([0-9a-f]+)$")
TIME_LINE_RE = re.compile(r"^(ctime|mtime) = (.*)$")
OWNER_LINE_RE = re.compile(r"^ephemeralOwner = 0x([0-9a-f]+)$")
EPOCH_DATES = {"Thu Jan 01 00:00:00 UTC 1970", "Thu Jan 01 00:00:00 GMT 1970"}
MARK_NUM_RE = re.compile(r"zkcli-mark-\d{4}")
STD_MARKERS = (["Node does not exist: /zkcli-mark-N"],
               ["Command not found: Command not found zkcli-mark-N"])
USAGE_HEAD = "ZooKeeper -server host:port -client-configuration properties-file cmd args"
AUTHFAILED_RE = re.compile(r"^(Not connected|KeeperErrorCode = AuthFailed for \S*)$")
DELETEALL_RACY_LINE = "Failed to delete some node(s) in the subtree!"


def _arg_path(command):
    for tok in command.split()[1:]:
        if tok.startswith("/"):
            return tok
    return None


def _mask_exists_read_acl(ref, cand):
    """exists-read-acl: ZooKeeper 3.9 checks the READ permission in exists
    (`stat`); 3.8 returns the Stat of a node the client may not read.  A
    server following 3.9 answers NoAuth instead: accept exactly that."""
    path = _arg_path(ref.command)
    return (cand.lines == [f"Insufficient permission : {path}"]
            and cand.events == ref.events and cand.marker == ref.marker)


PERSISTENT_REMOVED = "state:SyncConnected type:PersistentWatchRemoved path:"


def _mask_persistent_removal(ref, cand):
    """persistent-removal: ZooKeeper 3.9 (ZOOKEEPER-4472) removes a
    persistent watch only by its own type or by `-a`; 3.8's server drops it
    on a failed `removewatches -c`/`-d` for the same path. So after such a
    failure, a later `removewatches -a` finds the watch on a 3.9 server
    ("PersistentWatchRemoved") and not on 3.8 ("No such watcher"). Accept
    exactly that exchange: the same output but for that one line, either way."""
    path = _arg_path(ref.command)
    no_watcher = f"KeeperErrorCode = No such watcher for {path}"
    removed = PERSISTENT_REMOVED + path

    def strip(step):
        lines = [l for l in step.lines if l != no_watcher]
        events = [e for e in step.events if e != removed]
        return lines, events

    return strip(ref) == strip(cand) and cand.marker == ref.marker


MASKS = {
    "exists-read-acl": _mask_exists_read_acl,
    "persistent-removal": _mask_persistent_removal,
}


@dataclass
class NormStep:
    index: int
    lineno: int
    display: str
    command: str
    flags: dict
    lines: list = field(default_factory=list)
    events: list = field(default_factory=list)
    marker: list = field(default_factory=list)
    event_marker: bool = True
    local: bool = False
    events_note: str = ""

    def render(self):
        out = [f"[{self.index:03d}] line {self.lineno}: {self.display}"]
        out += [f"  | {ln}" for ln in self.lines]
        if self.events_note:
            out.append(f"  ({self.events_note})")
        out += [f"  WATCHER:: {ev}" for ev in self.events]
        if self.marker not in STD_MARKERS:
            out += [f"  ~ marker answer: {ln}" for ln in self.marker] or ["  ~ no marker answer"]
        if not self.local and not self.event_marker:
            out.append("  ~ no marker notification")
        return out


class Normaliser:
    """One per run: zxid and session ranks are per server."""

    def __init__(self, port):
        self.port = str(port)
        self.zxids = {}
        self.sessions = {}
        # Masked steps may legitimately show a Stat on one server and not on
        # the other: what they show must not shift the ranks of later steps.
        self.register = True

    def _rank(self, table, v, prefix):
        if v in table:
            return table[v]
        if not self.register:
            return f"{prefix}?"
        return table.setdefault(v, f"{prefix}{len(table) + 1}")

    def zxid(self, hexval):
        v = int(hexval, 16)
        if v == 0:
            return "0x0"
        return self._rank(self.zxids, v, "Z")

    def session(self, hexval):
        v = int(hexval, 16)
        if v == 0 or v >= 1 << 63:
            return f"0x{hexval}"
        return self._rank(self.sessions, v, "S")

    def line(self, ln):
        ln = re.sub(rf"(?<=:){re.escape(self.port)}\b", "<port>", ln)
        if ln.startswith("ZooKeeper CLI version: "):
            return "ZooKeeper CLI version: <version>"
        m = ZXID_LINE_RE.match(ln)
        if m:
            return f"{m.group(1)} = {self.zxid(m.group(2))}"
        m = CONFIG_VERSION_RE.match(ln)
        if m:
            return f"version={self.zxid(m.group(1))}"
        m = TIME_LINE_RE.match(ln)
        if m:
            return f"{m.group(1)} = {'<epoch>' if m.group(2) in EPOCH_DATES else '<time>'}"
        m = OWNER_LINE_RE.match(ln)
        if m:
            return f"ephemeralOwner = {self.session(m.group(1))}"
        return ln


def _strip_usage(lines):
    """Drop the usage text zkCli prints for an unknown command (the local
    marker); its tab lines may be interleaved with other threads' lines."""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] == USAGE_HEAD:
            return lines[:i] + [ln for ln in lines[i + 1:] if not ln.startswith("\t")]
    return lines


def _sort_removed_runs(events):
    out, run = [], []
    for ev in events + [None]:
        if ev is not None and "WatchRemoved " in ev:
            run.append(ev)
            continue
        out += sorted(run)
        run = []
        if ev is not None:
            out.append(ev)
    return out


def _sort_list_line(ln):
    if ln.startswith("[") and ln.endswith("]") and len(ln) > 2:
        return "[" + ", ".join(sorted(ln[1:-1].split(", "))) + "]"
    return ln


def normalise_run(steps, run, port):
    """RunResult -> [NormStep], one per scenario step (index 0 = start-up)."""
    norm = Normaliser(port)
    result = []
    for s in steps:
        p = run.pieces[s.index]
        lines = p.lines
        if s.local_marker:
            lines = _strip_usage(lines)
        norm.register = "mask" not in s.flags
        lines = [norm.line(MARK_NUM_RE.sub("zkcli-mark-N", ln)) for ln in lines]
        norm.register = True
        if s.word == "getEphemerals":
            lines = [_sort_list_line(ln) for ln in lines]
        if s.word == "whoami":
            lines = sorted(lines, key=lambda ln: (ln != "Auth scheme: User", ln))
        if s.word == "deleteall":
            lines = [ln for ln in lines if ln != DELETEALL_RACY_LINE]
        if "authfailed" in s.flags:
            lines = [ln for ln in lines if not AUTHFAILED_RE.match(ln)]
        marker = ([norm.line(MARK_NUM_RE.sub("zkcli-mark-N", ln)) for ln in p.marker]
                  if p.marker is not None else [])
        result.append(NormStep(s.index, s.lineno, s.text, s.command, s.flags, lines,
                               _sort_removed_runs(p.events), marker, p.event_marker,
                               s.local_marker))
    _printwatches(steps, result)
    _pool_events(steps, result)
    _quit(steps, result)
    return result


def _printwatches(steps, result):
    """From the step before `printwatches off` to `printwatches on`, whether a
    marker notification is printed depends on when the event thread reads the
    flag: do not compare that (scenarios toggle it with no notification of
    their own in flight)."""
    off = False
    for s, n in zip(steps, result):
        args = s.command.split()
        if args[:2] == ["printwatches", "off"]:
            off = True
            if s.index > 0:
                result[s.index - 1].local = True
        if off:
            n.local = True
        if args[:2] == ["printwatches", "on"]:
            off = False


def _pool_events(steps, result):
    groups = {}
    for s, n in zip(steps, result):
        if s.group:
            groups.setdefault(s.group, []).append(n)
    for members in groups.values():
        pooled = sorted(ev for n in members for ev in n.events)
        for n in members:
            n.events = []
        members[0].events = pooled
        members[0].events_note = (f"notifications of steps {members[0].index}-"
                                  f"{members[-1].index}, sorted")
    for s, n in zip(steps, result):
        if s.word == "connect" and not s.group:
            n.events = sorted(n.events)


def _quit(steps, result):
    """Nothing after `quit` runs: its marker is never answered."""
    for s, n in zip(steps, result):
        if s.word == "quit":
            n.events = [ev for ev in n.events if not ev.startswith("state:Closed ")]
            for later in result[s.index:]:
                later.local = True
                if not later.marker:
                    later.marker = ["(never run: after quit)"] if later.index > s.index \
                        else STD_MARKERS[0]
            break


def compare(ref_steps, cand_steps, ref_label="zookeeper", cand_label="candidate"):
    """Return (diffs, masked): diffs is a list of readable diff texts, one per
    differing step; masked lists the steps accepted through a named mask."""
    diffs, masked = [], []
    for r, c in zip(ref_steps, cand_steps):
        a, b = r.render(), c.render()
        if a == b:
            continue
        mask = r.flags.get("mask")
        if mask and MASKS[mask](r, c):
            masked.append(f"[{r.index:03d}] line {r.lineno}: {r.display}  (mask {mask})")
            continue
        d = difflib.unified_diff(a, b, fromfile=ref_label, tofile=cand_label, lineterm="", n=50)
        diffs.append("\n".join(list(d)[2:]))
    if len(ref_steps) != len(cand_steps):
        diffs.append(f"step count differs: {len(ref_steps)} vs {len(cand_steps)}")
    return diffs, masked


def render_all(nsteps):
    return "\n".join(ln for n in nsteps for ln in n.render()) + "\n"
