#!/usr/bin/env bash
# Run Kazoo's own upstream test suite (the kazoo/tests shipped in the installed
# kazoo package, driven unchanged by kazoo/testing/harness.py) against
#   zookeeper    the real Apache ZooKeeper 3.8 from Debian (/usr/share/java), or
#   ferrokeeper  target/debug/ferrokeeper, started through the fake `java` in shim/.
#
# Usage: compat-tests/kazoo-upstream/run.sh [zookeeper|ferrokeeper] [extra pytest args...]
#   e.g. run.sh ferrokeeper -k "test_client or test_lock"
#        run.sh ferrokeeper kazoo/tests/test_lock.py   (paths relative to site-packages;
#        when some argument starts with kazoo/ the default kazoo/tests is not added)
#
# Writes compat-tests/kazoo-upstream/results-<target>.txt (see summarize.py) and
# prints "N passed, N failed, N skipped". Raw junit XML, the pytest log and the
# servers' working dirs go to $KAZOO_UPSTREAM_OUT (default: a fresh /tmp dir).
#
# Environment knobs (all optional):
#   FERROKEEPER_BIN            ferrokeeper binary (default <repo>/target/debug/ferrokeeper;
#                              this script never builds it: run `cargo build` first)
#   KAZOO_UPSTREAM_TOTAL       whole pytest run limit, seconds (default 900)
#   KAZOO_UPSTREAM_PER_TEST    pytest-timeout per test, seconds (default 120)
#   ZOOKEEPER_PORT_OFFSET      harness base port (default 24100 zookeeper, 24200 ferrokeeper;
#                              the single server uses offset..offset+4)
#   ZOOKEEPER_VERSION          version the harness is told (default 3.8.0 / 3.9.0)
#   KAZOO_UPSTREAM_CI=1        export CI=true like kazoo's own CI (then test_build compares the
#                              server's reported version with ZOOKEEPER_VERSION); default unset
#   KAZOO_UPSTREAM_NO_INSTALL=1  do not pip-install missing test dependencies
#   KAZOO_UPSTREAM_STRICT=1    exit with pytest's status (default: 0 once results were written)
#   KAZOO_UPSTREAM_FORCE=1     run the suite even if preflight.py could not reach the server
#   KAZOO_UPSTREAM_KEEP=1      keep the servers' working dirs ($KAZOO_UPSTREAM_OUT/tmp)
#   KAZOO_UPSTREAM_CLUSTER_SIZE  servers in the harness's cluster (default 1: standalone;
#                              3 is kazoo's own default, an ensemble); results then go to
#                              results-<target>-<size>.txt
# Exit status: 0 results written, 2 setup problem, 3 server failed the preflight.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TARGET="${1:-zookeeper}"
[ $# -gt 0 ] && shift
case "$TARGET" in
    zookeeper|ferrokeeper) ;;
    *) echo "usage: $0 [zookeeper|ferrokeeper] [pytest args...]" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3}"

# --- Python side: kazoo plus the test extras kazoo declares (pyproject "test" group)
need=()
# pyOpenSSL >= 26.2 dropped X509.add_extensions, which kazoo's harness calls to make
# its test certificates (kazoo itself pins pyOpenSSL<26.2.0).
while IFS='|' read -r check pkg; do
    "$PY" -c "$check" >/dev/null 2>&1 || need+=("$pkg")
done <<'DEPS'
import kazoo|kazoo
import pytest|pytest
import pytest_timeout|pytest-timeout
import OpenSSL.crypto as c; assert hasattr(c.X509, "add_extensions")|pyopenssl<26.2
import jks|pyjks
import objgraph|objgraph
import puresasl|pure-sasl
import gevent|gevent
import eventlet|eventlet
DEPS
if [ ${#need[@]} -gt 0 ]; then
    if [ "${KAZOO_UPSTREAM_NO_INSTALL:-0}" = 1 ]; then
        echo "kazoo-upstream: missing python packages: ${need[*]}" >&2; exit 2
    fi
    echo "kazoo-upstream: pip installing ${need[*]}"
    "$PY" -m pip install --quiet "${need[@]}" || { echo "pip install failed" >&2; exit 2; }
fi
KAZOO_DIR="$("$PY" -c 'import kazoo, os; print(os.path.dirname(kazoo.__file__))')"
SITE="$(dirname "$KAZOO_DIR")"
KAZOO_VERSION="$("$PY" -c 'import kazoo.version as v; print(v.__version__)' 2>/dev/null || echo '?')"

# --- Server side
REAL_JAVA="$(PATH="$(echo "$PATH" | tr ':' '\n' | grep -vxF "$HERE/shim" | paste -sd:)" command -v java || true)"
if [ -z "$REAL_JAVA" ]; then REAL_JAVA=/usr/bin/java; fi
J=/usr/share/java
if [ "$TARGET" = zookeeper ]; then
    if [ ! -f "$J/zookeeper.jar" ] || [ ! -x "$REAL_JAVA" ]; then
        echo "kazoo-upstream: need java and Debian's zookeeper jars in $J" >&2; exit 2
    fi
    # The harness's zoo.cfg selects NettyServerCnxnFactory, so netty must be on the
    # classpath (Debian's netty-all.jar is an empty aggregator). slf4j-log4j12 +
    # log4j 1.2 make ZooKeeper honour the log4j.properties the harness writes, so its
    # get_logs() (printed by kazoo's conftest on failures) finds zookeeper.log.
    cp=""
    for jar in zookeeper zookeeper-jute slf4j-api slf4j-log4j12 log4j-1.2 commons-cli \
               metrics-core snappy-java netty-buffer netty-codec netty-common netty-handler \
               netty-resolver netty-transport netty-transport-native-epoll \
               netty-transport-native-unix-common; do
        [ -f "$J/$jar.jar" ] && cp="$cp${cp:+:}$J/$jar.jar"
    done
    export ZOOKEEPER_CLASSPATH="${ZOOKEEPER_CLASSPATH:-$cp}"
    export ZOOKEEPER_VERSION="${ZOOKEEPER_VERSION:-3.8.0}"
    export ZOOKEEPER_PORT_OFFSET="${ZOOKEEPER_PORT_OFFSET:-24100}"
else
    export FERROKEEPER_BIN="${FERROKEEPER_BIN:-$REPO/target/debug/ferrokeeper}"
    if [ ! -x "$FERROKEEPER_BIN" ]; then
        echo "kazoo-upstream: $FERROKEEPER_BIN missing: run 'cargo build' at $REPO first" >&2; exit 2
    fi
    # Only passed to the shim, which ignores it; the harness needs one of
    # ZOOKEEPER_PATH / ZOOKEEPER_CLASSPATH set, nothing has to exist there.
    export ZOOKEEPER_CLASSPATH="ferrokeeper-shim-ignores-the-classpath"
    export ZOOKEEPER_VERSION="${ZOOKEEPER_VERSION:-3.9.0}"
    export ZOOKEEPER_PORT_OFFSET="${ZOOKEEPER_PORT_OFFSET:-24200}"
fi
SIZE="${KAZOO_UPSTREAM_CLUSTER_SIZE:-1}"
export ZOOKEEPER_CLUSTER_SIZE="$SIZE"
SUFFIX=""
[ "$SIZE" != 1 ] && SUFFIX="-$SIZE"
unset ZOOKEEPER_PATH ZOOKEEPER_JAAS_AUTH ZOOKEEPER_LOCAL_SESSION_RO ZOOKEEPER_OBSERVER_START_ID
if [ "${KAZOO_UPSTREAM_CI:-0}" = 1 ]; then export CI=true; else unset CI; fi

# the servers' ports must be free (each: client, election, leader, admin, secure; 10 apart)
if ! "$PY" - "$ZOOKEEPER_PORT_OFFSET" "$SIZE" <<'PYEOF'
import socket, sys
base, size = int(sys.argv[1]), int(sys.argv[2])
busy = []
for p in [base + 10 * i + k for i in range(size) for k in range(5)]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        busy.append(p)
    finally:
        s.close()
if busy:
    sys.exit("kazoo-upstream: ports %s busy; set ZOOKEEPER_PORT_OFFSET" % busy)
PYEOF
then exit 2; fi

OUT="${KAZOO_UPSTREAM_OUT:-$(mktemp -d "/tmp/kazoo-upstream-$TARGET.XXXXXX")}"
mkdir -p "$OUT/tmp" "$OUT/state"
: >"$OUT/state/pids"
export TMPDIR="$OUT/tmp"            # the harness's server working dirs (tempfile.mkdtemp)
export KAZOO_SHIM_TARGET="$TARGET" KAZOO_SHIM_REAL_JAVA="$REAL_JAVA" KAZOO_SHIM_STATE="$OUT/state"
export PATH="$HERE/shim:$PATH"
export PYTHONDONTWRITEBYTECODE=1

TOTAL="${KAZOO_UPSTREAM_TOTAL:-900}"
PER_TEST="${KAZOO_UPSTREAM_PER_TEST:-120}"
echo "kazoo-upstream: kazoo $KAZOO_VERSION tests in $KAZOO_DIR/tests against $TARGET ($SIZE server(s))"
echo "  ports $ZOOKEEPER_PORT_OFFSET..$((ZOOKEEPER_PORT_OFFSET + 4)), per-test timeout ${PER_TEST}s, whole run ${TOTAL}s"
echo "  pytest log: $OUT/pytest.log"

cleanup() {
    # servers the shim recorded that are still alive (pytest cut short, or a server
    # that ignored SIGTERM); only pids whose command line is still a server
    while read -r pid _; do
        [ -n "$pid" ] || continue
        if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE 'QuorumPeerMain|ZooKeeperServerMain|ferrokeeper'; then
            kill -TERM "$pid" 2>/dev/null
            sleep 1
            kill -KILL "$pid" 2>/dev/null
        fi
    done <"$OUT/state/pids"
}
trap cleanup EXIT

if ! (cd "$OUT" && "$PY" "$HERE/preflight.py"); then
    if [ "${KAZOO_UPSTREAM_FORCE:-0}" != 1 ]; then
        echo "kazoo-upstream: $TARGET did not come up the way the harness starts it; not running"
        echo "  the suite (every server test would just time out). KAZOO_UPSTREAM_FORCE=1 runs it anyway."
        exit 3
    fi
fi

paths=(kazoo/tests)
for a in "$@"; do case "$a" in kazoo/*) paths=() ;; esac; done
cd "$SITE"   # so node ids read kazoo/tests/...; nothing is written here (no cache, no bytecode)
# SIGINT first: pytest then stops like on Ctrl-C, still writes the junit XML, and the
# harness's atexit hook stops the servers.
timeout -s INT -k 60 "$TOTAL" "$PY" -m pytest "${paths[@]}" \
    --rootdir="$SITE" -p no:cacheprovider -v -rfEs \
    --timeout="$PER_TEST" --timeout-method=signal \
    --junitxml="$OUT/junit.xml" "$@" >"$OUT/pytest.log" 2>&1
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "kazoo-upstream: whole run hit the ${TOTAL}s limit (status $rc); results are partial"
fi
grep -E '^=+ .* in [0-9.]+s' "$OUT/pytest.log" | tail -n 1
"$PY" "$HERE/summarize.py" "$TARGET" "$OUT/junit.xml" "$OUT/pytest.log" "$HERE/results-$TARGET$SUFFIX.txt"
srv=$?
if [ "${KAZOO_UPSTREAM_KEEP:-0}" != 1 ]; then
    rm -rf "$OUT/tmp"   # servers' data dirs; set KAZOO_UPSTREAM_KEEP=1 to keep them
fi
if [ "${KAZOO_UPSTREAM_STRICT:-0}" = 1 ]; then exit "$rc"; fi
exit "$srv"
