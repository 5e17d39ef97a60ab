#!/usr/bin/env bash
# zkServer.sh for Ferrokeeper: the commands, arguments, environment, output
# and exit codes of Apache ZooKeeper's bin/zkServer.sh, running the
# ferrokeeper binary instead of a JVM.
#
#   zkServer.sh [--config <conf-dir>] {start|start-foreground|stop|restart|status|print-cmd|version} [<zoo.cfg>]
#
# The optional last argument names the configuration file: a bare name is
# looked up in the configuration directory, anything with a '/' is a path.
#
# Environment (as ZooKeeper's scripts read it):
#   ZOOCFGDIR         configuration directory (default: conf/ in this repository);
#                     zookeeper-env.sh and java.env there are sourced
#   ZOOCFG            configuration file name in ZOOCFGDIR (default zoo.cfg), or
#                     an absolute path
#   ZOO_LOG_DIR       log directory (default: logs/ in this repository)
#   ZOO_LOG_FILE      log file name (default zookeeper-$USER-server-$HOSTNAME.log)
#   ZOO_LOG4J_PROP    log level and appenders, e.g. INFO,ROLLINGFILE or DEBUG,CONSOLE
#                     (start: the log file; start-foreground: the console, when unset)
#   ZOOPIDFILE        pid file (default: zookeeper_server.pid in dataDir)
#   ZOO_DATADIR_AUTOCREATE_DISABLE
#                     when set, refuse to start if dataDir or dataLogDir is missing
#   SERVER_JVMFLAGS, JVMFLAGS
#                     their -Dkey=value words are passed on as system properties
#                     (other JVM options are reported and ignored by the server)
#   ZOO_NOEXEC        start-foreground: run the server as a child, not with exec
#   FERROKEEPER_BIN   the server binary (default: target/release/ferrokeeper in this
#                     repository, then target/debug/ferrokeeper, then PATH)
#   ZOO_STOP_TIMEOUT  seconds `stop` waits for the server to exit (default 30)
#
# Differences from ZooKeeper's script: `stop` waits for the process to exit
# (the server finishes in-flight writes first), so `restart` does not race
# the old process for the port; `status` talks to the server with bash's
# /dev/tcp instead of a Java client; an unknown command exits with status 1.

SCRIPT="$(readlink -f "${BASH_SOURCE[0]:-$0}")"
REPO="$(cd "$(dirname "$SCRIPT")/.." && pwd)"

if [ $# -gt 1 ] && [ "$1" = "--config" ]; then
    shift
    ZOOCFGDIR="$1"
    shift
fi
ZOOCFGDIR="${ZOOCFGDIR:-$REPO/conf}"
export ZOOCFGDIR

if [ -f "$ZOOCFGDIR/zookeeper-env.sh" ]; then
    # shellcheck source=/dev/null
    . "$ZOOCFGDIR/zookeeper-env.sh"
fi
if [ -f "$ZOOCFGDIR/java.env" ]; then
    # shellcheck source=/dev/null
    . "$ZOOCFGDIR/java.env"
fi

cfg_name="${ZOOCFG:-zoo.cfg}"
case "$cfg_name" in
    /*) ZOOCFG="$cfg_name" ;;
    *) ZOOCFG="$ZOOCFGDIR/$cfg_name" ;;
esac
if [ -n "${2:-}" ]; then
    case "$2" in
        */*) ZOOCFG="$2" ;;
        *) ZOOCFG="$ZOOCFGDIR/$2" ;;
    esac
fi

USER="${USER:-$(id -un 2>/dev/null || echo unknown)}"
HOSTNAME="${HOSTNAME:-$(hostname 2>/dev/null || echo localhost)}"
ZOO_LOG_DIR="${ZOO_LOG_DIR:-$REPO/logs}"
ZOO_LOG_FILE="${ZOO_LOG_FILE:-zookeeper-$USER-server-$HOSTNAME.log}"
_ZOO_DAEMON_OUT="$ZOO_LOG_DIR/zookeeper-$USER-server-$HOSTNAME.out"

usage() {
    echo "Usage: $0 [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd}" >&2
}

case "${1:-}" in
    start | start-foreground | stop | restart | status | print-cmd | version) ;;
    *)
        usage
        exit 1
        ;;
esac

# The server binary.
find_binary() {
    if [ -n "${FERROKEEPER_BIN:-}" ]; then
        echo "$FERROKEEPER_BIN"
    elif [ -x "$REPO/target/release/ferrokeeper" ]; then
        echo "$REPO/target/release/ferrokeeper"
    elif [ -x "$REPO/target/debug/ferrokeeper" ]; then
        echo "$REPO/target/debug/ferrokeeper"
    else
        command -v ferrokeeper
    fi
}
BIN="$(find_binary)"
need_binary() {
    if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
        echo "ferrokeeper binary not found${BIN:+ at $BIN}: build it (cargo build --release) or set FERROKEEPER_BIN" >&2
        exit 1
    fi
}

if [ "$1" = version ]; then
    need_binary
    "$BIN" version 2>/dev/null
    exit $?
fi

echo "Using config: $ZOOCFG" >&2

# The last value of a zoo.cfg key (key=value or key: value), trimmed.
cfg_value() {
    [ -r "$ZOOCFG" ] || return 0
    grep -E "^[[:space:]]*$1[[:space:]]*[=:]" "$ZOOCFG" 2>/dev/null | tail -n 1 |
        sed -e "s/^[[:space:]]*$1[[:space:]]*[=:][[:space:]]*//" -e 's/[[:space:]]*$//'
}

ZOO_DATADIR="$(cfg_value dataDir)"
ZOO_DATALOGDIR="$(cfg_value dataLogDir)"

need_config() {
    if [ ! -r "$ZOOCFG" ]; then
        echo "cannot read the configuration file $ZOOCFG" >&2
        exit 1
    fi
}

# Server properties: where to log, and the -D words of the JVM flags.
JVMFLAGS="${SERVER_JVMFLAGS:-} ${JVMFLAGS:-}"
PROPS=()
JVM_OTHER=()
for word in $JVMFLAGS; do
    case "$word" in
        -D?*) PROPS+=("$word") ;;
        *) JVM_OTHER+=("$word") ;;
    esac
done
if [ -n "${ZOO_DATADIR_AUTOCREATE_DISABLE:-}" ]; then
    PROPS=("-Dzookeeper.datadir.autocreate=false" "${PROPS[@]}")
fi
LOG_PROPS=("-Dzookeeper.log.dir=$ZOO_LOG_DIR" "-Dzookeeper.log.file=$ZOO_LOG_FILE")
if [ -n "${ZOO_LOG4J_PROP:-}" ]; then
    LOG_PROPS+=("-Dzookeeper.root.logger=$ZOO_LOG4J_PROP")
elif [ "$1" = start-foreground ]; then
    LOG_PROPS+=("-Dzookeeper.root.logger=INFO,CONSOLE")
fi

# The server sees only the JVM options it cannot use (it reports them);
# the -D words are on its command line. (A command, not a shell function:
# `$!` must be the server's pid.)
SERVER_ENV=(env -u SERVER_JVMFLAGS "JVMFLAGS=${JVM_OTHER[*]}")

if [ -z "${ZOOPIDFILE:-}" ]; then
    if [ -n "$ZOO_DATADIR" ] && [ ! -d "$ZOO_DATADIR" ] && [ -z "${ZOO_DATADIR_AUTOCREATE_DISABLE:-}" ]; then
        mkdir -p "$ZOO_DATADIR"
    fi
    ZOOPIDFILE="$ZOO_DATADIR/zookeeper_server.pid"
else
    mkdir -p "$(dirname "$ZOOPIDFILE")"
fi

# Alive, and not a zombie waiting for a parent that never reaps it.
alive() {
    local state
    [ -n "$1" ] || return 1
    kill -0 "$1" 2>/dev/null || return 1
    state="$(ps -o stat= -p "$1" 2>/dev/null)"
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

check_dirs() {
    if [ -n "${ZOO_DATADIR_AUTOCREATE_DISABLE:-}" ]; then
        if [ ! -d "$ZOO_DATADIR" ]; then
            echo "ZooKeeper data directory is missing at $ZOO_DATADIR fix the path or run initialize"
            exit 1
        fi
        if [ -n "$ZOO_DATALOGDIR" ] && [ ! -d "$ZOO_DATALOGDIR" ]; then
            echo "ZooKeeper txnlog directory is missing at $ZOO_DATALOGDIR fix the path or run initialize"
            exit 1
        fi
    fi
}

# Sends a four-letter word; prints the answer.
four_letter() {
    local t=()
    if command -v timeout >/dev/null 2>&1; then
        t=(timeout 5)
    fi
    "${t[@]}" bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1; printf %s "$3" >&3; cat <&3' _ "$1" "$2" "$3" 2>/dev/null
}

case "$1" in
start)
    need_binary
    need_config
    check_dirs
    if [ ! -w "$ZOO_LOG_DIR" ]; then
        mkdir -p "$ZOO_LOG_DIR"
    fi
    echo -n "Starting zookeeper ... "
    if [ -f "$ZOOPIDFILE" ] && alive "$(cat "$ZOOPIDFILE")"; then
        echo "already running as process $(cat "$ZOOPIDFILE")."
        exit 1
    fi
    "${SERVER_ENV[@]}" nohup "$BIN" "${LOG_PROPS[@]}" "${PROPS[@]}" "$ZOOCFG" >"$_ZOO_DAEMON_OUT" 2>&1 </dev/null &
    pid=$!
    if ! echo -n "$pid" >"$ZOOPIDFILE"; then
        echo FAILED TO WRITE PID
        exit 1
    fi
    sleep 1
    if alive "$pid"; then
        echo STARTED
    else
        echo FAILED TO START
        rm -f "$ZOOPIDFILE"
        echo "see $_ZOO_DAEMON_OUT" >&2
        exit 1
    fi
    ;;
start-foreground)
    need_binary
    need_config
    check_dirs
    if [ -n "${ZOO_NOEXEC:-}" ]; then
        "${SERVER_ENV[@]}" "$BIN" "${LOG_PROPS[@]}" "${PROPS[@]}" "$ZOOCFG"
    else
        exec "${SERVER_ENV[@]}" "$BIN" "${LOG_PROPS[@]}" "${PROPS[@]}" "$ZOOCFG"
    fi
    ;;
print-cmd)
    printf '"%s"' "$BIN"
    for word in "${LOG_PROPS[@]}" "${PROPS[@]}"; do
        printf ' "%s"' "$word"
    done
    printf ' "%s" > "%s" 2>&1 < /dev/null\n' "$ZOOCFG" "$_ZOO_DAEMON_OUT"
    ;;
stop)
    echo -n "Stopping zookeeper ... "
    if [ ! -f "$ZOOPIDFILE" ]; then
        echo "no zookeeper to stop (could not find file $ZOOPIDFILE)"
    else
        pid="$(cat "$ZOOPIDFILE")"
        kill "$pid"
        rm "$ZOOPIDFILE"
        waited=0
        limit=$((${ZOO_STOP_TIMEOUT:-30} * 10))
        while alive "$pid" && [ "$waited" -lt "$limit" ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if alive "$pid"; then
            echo "(process $pid is still running after ${ZOO_STOP_TIMEOUT:-30}s)" >&2
        fi
        echo STOPPED
    fi
    exit 0
    ;;
restart)
    "$SCRIPT" stop "${@:2}"
    "$SCRIPT" start "${@:2}"
    ;;
status)
    need_config
    isSSL=false
    clientPortAddress="$(cfg_value clientPortAddress)"
    if [ -z "$clientPortAddress" ]; then
        clientPortAddress=localhost
    fi
    clientPort="$(cfg_value clientPort)"
    if ! [[ "$clientPort" =~ ^[0-9]+$ ]]; then
        myid="$(head -n 1 "$ZOO_DATADIR/myid" 2>/dev/null | tr -d '[:space:]')"
        if ! [[ "$myid" =~ ^[0-9]+$ ]]; then
            echo "myid could not be determined, will not able to locate clientPort in the server configs."
        else
            line="$(cfg_value "server\\.$myid")"
            if [[ "$line" != *";"* ]]; then
                echo "Client port not found in static config file. Looking in dynamic config file."
                dynamic="$(cfg_value dynamicConfigFile)"
                line="$(grep -E "^[[:space:]]*server\\.$myid[[:space:]]*=" "$dynamic" 2>/dev/null | tail -n 1 | sed -e 's/^[^=]*=//')"
            fi
            if [[ "$line" != *";"* ]]; then
                echo "Client port not found in the server configs"
            else
                client="${line##*;}"
                client="${client//[[:space:]]/}"
                if [[ "$client" =~ ^\[(.*)\]:([0-9]+)$ ]]; then
                    clientPortAddress="${BASH_REMATCH[1]}"
                    clientPort="${BASH_REMATCH[2]}"
                elif [[ "$client" =~ ^(.*):([0-9]+)$ ]]; then
                    clientPortAddress="${BASH_REMATCH[1]}"
                    clientPort="${BASH_REMATCH[2]}"
                else
                    clientPort="$client"
                fi
            fi
        fi
    fi
    if [ -z "$clientPort" ]; then
        echo "Client port not found. Looking for secureClientPort in the static config."
        secureClientPort="$(cfg_value secureClientPort)"
        if [ -n "$secureClientPort" ]; then
            isSSL=true
            clientPort="$secureClientPort"
            clientPortAddress="$(cfg_value secureClientPortAddress)"
            clientPortAddress="${clientPortAddress:-localhost}"
        else
            echo "Unable to find either secure or unsecure client port in any configs. Terminating."
            exit 1
        fi
    fi
    echo "Client port found: $clientPort. Client address: $clientPortAddress. Client SSL: $isSSL."
    STAT=""
    if [ "$isSSL" = false ]; then
        STAT="$(four_letter "$clientPortAddress" "$clientPort" srvr | grep Mode)"
    fi
    if [ -z "$STAT" ]; then
        if [ "$isSSL" = true ]; then
            echo "Note: Ferrokeeper does not support TLS yet; status cannot use secureClientPort ($secureClientPort)."
        fi
        echo "Error contacting service. It is probably not running."
        exit 1
    fi
    echo "$STAT"
    exit 0
    ;;
esac
