"""Run a zkCli scenario in ONE zkCli process and cut its output into steps.

A scenario (scenarios/*.zkcli) is a list of zkCli commands, fed to zkCli's
stdin.  zkCli prints from two threads into the merged stdout+stderr: its main
thread (command output) and its event thread (WATCHER:: notifications), which
lags behind by an unpredictable number of commands.  So each step is followed
by marker commands that mark BOTH streams:

  * while the session is alive:
        stat -w /zkcli-mark-NNNN        main thread: "Node does not exist: /zkcli-mark-NNNN"
        removewatches /zkcli-mark-NNNN  event thread: "WatchedEvent ... type:DataWatchRemoved
                                                       path:/zkcli-mark-NNNN"
    The main-thread answer ends the step's command output.  The marker
    notification is queued by the client after every notification that came
    before the marker's reply -- in particular after any notification that the
    step's command caused (a server sends it before the command's reply) -- and
    the event thread prints in queue order: the notifications printed between
    two marker notifications belong to the step of the second one.
  * while there is no session (after `close`, or after a step annotated
    `offline`, until `connect`): the unknown command `zkcli-mark-NNNN`
    (answered with zkCli's usage text, stripped by the normaliser, and
    "Command not found: Command not found zkcli-mark-NNNN").  Such steps have no
    marker notification; their notifications are pooled with the steps of the
    same offline group (Step.group), up to the `connect` that ends it.

Marker commands are part of zkCli's history (`history` shows them); the history
number of each step is computed here (Step.cmdno) for `{cmdno:LABEL}`.
"""
import os
import re
import subprocess
from dataclasses import dataclass, field

JAVA_DIR = "/usr/share/java"
ZKCLI_JARS = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "commons-cli.jar"]
DEFAULT_ZKCLI_CLASSPATH = ":".join(os.path.join(JAVA_DIR, j) for j in ZKCLI_JARS)
# Small, quick JVM: zkCli does little work; keep the two cores for the servers.
JVM_OPTS = ["-Xmx128m", "-Xss512k", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "-XX:CICompilerCount=1", "-Xshare:auto", "-Djava.awt.headless=true",
            "-Dfile.encoding=UTF-8", "-Dsun.stdout.encoding=UTF-8",
            "-Dsun.stderr.encoding=UTF-8", "-Duser.timezone=UTC"]

SCENARIO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
MARK_RE = re.compile(r"zkcli-mark-(\d{4})")
MARK_PATH_RE = re.compile(r"^/zkcli-mark-(\d{4})$")
HISTORY_LINE_RE = re.compile(r"^\d+ - ")     # `history` lists marker commands too
# SLF4J warns (once, from whichever thread logs first) on stderr.
NOISE_RAW_RE = re.compile(r"(SLF4J: |log4j:WARN )[^\n]*\n")
EVENT_RE = re.compile(r"WatchedEvent state:(\S+) type:(\S+) path:(\S*)")


@dataclass
class Step:
    index: int              # 1-based; 0 is the start-up piece
    lineno: int             # line in the scenario file
    text: str               # command as written (placeholders kept)
    command: str = ""       # command as sent
    flags: dict = field(default_factory=dict)
    local_marker: bool = False
    group: int = 0          # steps sharing a group pool their notifications
    cmdno: int = -1         # zkCli history number of the command

    @property
    def word(self):
        return self.command.split()[0] if self.command.split() else ""


def parse_scenario(path):
    steps = [Step(0, 0, "<start-up: connect, welcome>")]
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            flags = {}
            if "  #!" in line:
                line, ann = line.split("  #!", 1)
                for tok in ann.split():
                    k, _, v = tok.partition("=")
                    flags[k] = v or True
            steps.append(Step(len(steps), lineno, line.rstrip(), flags=flags))
    return steps


def online_markers(k):
    return [f"stat -w /zkcli-mark-{k:04d}", f"removewatches /zkcli-mark-{k:04d}"]


def build_script(steps, host):
    labels = {}

    def subst(m):
        name = m.group(1)
        if name not in labels:
            raise ValueError(f"label {name!r} unknown or not before its use")
        return str(labels[name])

    lines = online_markers(0)
    alive = True
    group = 0
    for s in steps[1:]:
        s.command = re.sub(r"\{cmdno:([\w-]+)\}", subst, s.text).replace("{host}", host)
        s.cmdno = len(lines)
        if "label" in s.flags:
            labels[s.flags["label"]] = s.cmdno
        word = s.word
        if word == "connect":
            alive = True
        if word == "close" or "offline" in s.flags:
            alive = False
        if not alive:
            if not steps[s.index - 1].local_marker:
                group += 1
            s.group = group
        elif word == "connect" and steps[s.index - 1].local_marker:
            s.group = group        # the step that ends an offline run
        s.local_marker = not alive
        lines.append(s.command)
        lines += [f"zkcli-mark-{s.index:04d}"] if s.local_marker else online_markers(s.index)
    # Whatever the scenario does, the JVM must end.
    lines.append("quit")
    return "\n".join(lines) + "\n"


@dataclass
class Piece:
    lines: list                     # main-thread output lines (blank lines dropped)
    marker: list                    # main-thread lines naming this step's marker (None: no answer)
    events: list                    # notifications "state:S type:T path:P", in printed order
    event_marker: bool = False      # its marker notification was printed


@dataclass
class RunResult:
    raw: str
    returncode: int
    timed_out: bool
    pieces: dict                    # step index -> Piece


def zkcli_command(host):
    cp = os.environ.get("ZKCLI_CLASSPATH", DEFAULT_ZKCLI_CLASSPATH)
    # -waitforconnection: zkCli (and each `connect`) waits until its watcher
    # has handled, hence printed, the SyncConnected notification.
    return ["java"] + JVM_OPTS + ["-cp", cp, "org.apache.zookeeper.ZooKeeperMain",
                                 "-server", host, "-waitforconnection"]


def run_zkcli(steps, host, timeout=60.0):
    script = build_script(steps, host)
    env = dict(os.environ)
    env["LC_ALL"] = "C.UTF-8"
    env.pop("JAVA_TOOL_OPTIONS", None)     # would print "Picked up ..." noise
    proc = subprocess.Popen(zkcli_command(host), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(script.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    raw = out.decode("utf-8", "replace").replace("\r\n", "\n")
    return RunResult(raw, proc.returncode, timed_out, split_output(raw, steps))


def split_output(raw, steps):
    """Cut the merged output into one Piece per step (see the module doc)."""
    text = NOISE_RAW_RE.sub("", raw)
    pieces = {s.index: Piece([], None, []) for s in steps}
    last = steps[-1].index

    # Event thread: notifications, attributed by the marker notifications.
    pending = []
    last_marked = -1
    for m in EVENT_RE.finditer(text):
        state, etype, path = m.groups()
        mk = MARK_PATH_RE.match(path)
        if mk and etype == "DataWatchRemoved" and int(mk.group(1)) in pieces:
            k = int(mk.group(1))
            pieces[k].events += pending
            pieces[k].event_marker = True
            pending = []
            last_marked = max(last_marked, k)
            continue
        pending.append(f"state:{state} type:{etype} path:{path}")
    if pending:     # after the last marker notification: the next step's
        pieces[min(last_marked + 1, last)].events += pending

    # Main thread: everything else.  The event thread prints
    # "\nWATCHER::\n" and "\nWatchedEvent ...\n", each with one println on
    # System.out, which the main thread shares: such a chunk can land in the
    # middle of a line that the main thread prints piecewise (`ls` prints
    # "[", each child, ", ", "]\n" separately).  Cutting the exact chunks
    # restores the main thread's lines; leftovers (a chunk split by a write
    # to System.err) are cut wherever they are.  Blank lines are dropped:
    # zkCli prints no blank line that carries server information (an empty
    # `get` value is a blank line, but zkCli prints it whatever the server).
    text = text.replace("\nWATCHER::\n", "")
    text = re.sub("\n" + EVENT_RE.pattern + "\n", "", text)
    text = EVENT_RE.sub("", text).replace("WATCHER::", "")
    body = []
    for line in text.split("\n"):
        m = MARK_RE.search(line)
        if not m or HISTORY_LINE_RE.match(line):
            if line.strip():
                body.append(line)
            continue
        k = int(m.group(1))
        if k not in pieces:
            body.append(line)
        elif pieces[k].marker is None:
            pieces[k].lines = body
            pieces[k].marker = [line]
            body = []
        else:
            pieces[k].marker.append(line)
    # Output after the last marker answer belongs to the first step after it.
    answered = [k for k, p in pieces.items() if p.marker is not None]
    after = max(answered) + 1 if answered else 0
    if after <= last:
        pieces[after].lines = body
    return pieces
