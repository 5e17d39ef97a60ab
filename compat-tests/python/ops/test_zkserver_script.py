"""scripts/zkServer.sh: ZooKeeper's commands, arguments, environment, output
and exit codes, compared with Apache ZooKeeper's own script where practical."""
import os
import re
import signal
import subprocess
import time

import pytest

from opslib import (SCRIPT, ZK_SCRIPT, Conf, alive, answers, clean_env, log_file_name, run_script,
                    wait_for, zkharness)


def script_env(conf, **extra):
    return clean_env(ZOOCFGDIR=conf.conf_dir, ZOO_LOG_DIR=conf.log_dir, **extra)


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def test_start_status_stop(tmp_path, binary, reaper):
    conf = Conf(tmp_path)
    env = script_env(conf)
    reaper.pid_file(conf.pid_file())

    r = run_script(["start"], env)
    assert (r.returncode, r.stdout) == (0, "Starting zookeeper ... STARTED\n"), r
    assert f"Using config: {conf.path}" in r.stderr
    # ZooKeeper's pid file, in dataDir.
    pid = read_pid(conf.pid_file())
    assert alive(pid)
    wait_for(lambda: "Mode: standalone" in answers(conf.port), what="the server to answer srvr")

    r = run_script(["status"], env)
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == [
        f"Client port found: {conf.port}. Client address: 127.0.0.1. Client SSL: false.",
        "Mode: standalone",
    ]

    r = run_script(["start"], env)
    assert (r.returncode, r.stdout) == (1, f"Starting zookeeper ... already running as process {pid}.\n"), r

    r = run_script(["stop"], env)
    assert (r.returncode, r.stdout) == (0, "Stopping zookeeper ... STOPPED\n"), r
    assert not alive(pid)
    assert not os.path.exists(conf.pid_file())

    r = run_script(["stop"], env)
    assert r.returncode == 0
    assert r.stdout == f"Stopping zookeeper ... no zookeeper to stop (could not find file {conf.pid_file()})\n"

    r = run_script(["status"], env)
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "Error contacting service. It is probably not running."

    # `start` logs to ZOO_LOG_DIR/zookeeper-<user>-server-<host>.log.
    with open(os.path.join(conf.log_dir, log_file_name())) as f:
        log = f.read()
    for event in ["starting Ferrokeeper", "configuration", "recovered", "serving clients", "shutting down",
                  "shutdown complete"]:
        assert event in log, (event, log)
    assert os.path.exists(os.path.join(conf.log_dir, log_file_name()[:-len(".log")] + ".out"))


def test_config_file_argument_and_variables(tmp_path, binary, reaper):
    """The optional zoo.cfg argument (a name in ZOOCFGDIR, or a path),
    --config <dir>, and ZOOCFG, as ZooKeeper's scripts take them."""
    conf = Conf(tmp_path)
    other = Conf(tmp_path / "other")
    os.rename(other.path, os.path.join(conf.conf_dir, "other.cfg"))
    reaper.pid_file(conf.pid_file())
    reaper.pid_file(other.pid_file())
    cases = [
        (["start", "other.cfg"], script_env(conf), other),
        (["start", os.path.join(conf.conf_dir, "other.cfg")], script_env(conf), other),
        (["--config", conf.conf_dir, "start"], clean_env(ZOO_LOG_DIR=conf.log_dir), conf),
        (["start"], script_env(conf, ZOOCFG="other.cfg"), other),
        (["start"], clean_env(ZOOCFG=os.path.join(conf.conf_dir, "other.cfg"), ZOO_LOG_DIR=conf.log_dir), other),
    ]
    for args, env, target in cases:
        r = run_script(args, env)
        assert (r.returncode, r.stdout) == (0, "Starting zookeeper ... STARTED\n"), (args, r)
        wait_for(lambda: "Mode: standalone" in answers(target.port), what=f"{args} to serve")
        stop_args = [a if a != "start" else "stop" for a in args]
        r = run_script(stop_args, env)
        assert (r.returncode, r.stdout) == (0, "Stopping zookeeper ... STOPPED\n"), (stop_args, r)
        assert answers(target.port) == ""


def test_restart_pidfile_and_jvmflags(tmp_path, binary, reaper):
    conf = Conf(tmp_path)
    pid_file = str(tmp_path / "run" / "zk.pid")
    # -D words of SERVER_JVMFLAGS/JVMFLAGS reach the server; other JVM options
    # are reported and ignored.
    env = script_env(conf, ZOOPIDFILE=pid_file, SERVER_JVMFLAGS="-Xmx512m -Dzookeeper.4lw.commands.whitelist=ruok")
    reaper.pid_file(pid_file)
    r = run_script(["start"], env)
    assert r.returncode == 0, r
    first = read_pid(pid_file)
    wait_for(lambda: answers(conf.port, "ruok") == "imok", what="ruok (whitelisted through SERVER_JVMFLAGS)")
    r = run_script(["restart"], env)
    assert r.returncode == 0, r
    assert r.stdout == "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n"
    second = read_pid(pid_file)
    assert second != first and not alive(first) and alive(second)
    wait_for(lambda: answers(conf.port, "ruok") == "imok", what="the restarted server")
    assert run_script(["stop"], env).returncode == 0
    with open(os.path.join(conf.log_dir, log_file_name())) as f:
        log = f.read()
    assert "ignoring JVM options from SERVER_JVMFLAGS/JVMFLAGS: -Xmx512m" in log


def test_print_cmd_and_version(tmp_path, binary):
    conf = Conf(tmp_path)
    env = script_env(conf, JVMFLAGS="-Djute.maxbuffer=4194304")
    r = run_script(["print-cmd"], env)
    assert r.returncode == 0, r
    assert r.stdout.startswith(f'"{binary}" ')
    for part in [f'"-Dzookeeper.log.dir={conf.log_dir}"', '"-Djute.maxbuffer=4194304"', f'"{conf.path}"',
                 "2>&1 < /dev/null"]:
        assert part in r.stdout, (part, r.stdout)
    r = run_script(["version"], env)
    assert r.returncode == 0, r
    assert re.match(r"^Ferrokeeper, version 3\.9\.\d+-ferrokeeper-", r.stdout), r.stdout
    r = run_script(["bogus"], env)
    assert r.returncode == 1 and "Usage:" in r.stderr


def test_start_failure_is_reported(tmp_path, binary, reaper):
    conf = Conf(tmp_path, extra={"tickTime": "fast"})
    env = script_env(conf)
    reaper.pid_file(conf.pid_file())
    r = run_script(["start"], env)
    assert (r.returncode, r.stdout) == (1, "Starting zookeeper ... FAILED TO START\n"), r
    assert not os.path.exists(conf.pid_file())
    out = os.path.join(conf.log_dir, log_file_name()[:-len(".log")] + ".out")
    with open(out) as f:
        text = f.read()
    assert "tickTime" in text and '"fast"' in text, text


def test_datadir_autocreate_disable(tmp_path, binary):
    conf = Conf(tmp_path)
    env = script_env(conf, ZOO_DATADIR_AUTOCREATE_DISABLE="1")
    r = run_script(["start"], env)
    assert r.returncode == 1
    assert f"ZooKeeper data directory is missing at {conf.data_dir} fix the path or run initialize" in r.stdout
    assert not os.path.exists(conf.data_dir)


def test_start_foreground_logs_to_console_and_stops_on_sigterm(tmp_path, binary):
    conf = Conf(tmp_path)
    p = subprocess.Popen([SCRIPT, "start-foreground"], env=script_env(conf), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: "Mode: standalone" in answers(conf.port), what="start-foreground to serve")
        p.send_signal(signal.SIGTERM)  # exec'd: the signal reaches the server itself
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    assert "starting Ferrokeeper" in out and "shutdown complete" in out, out
    assert not os.path.exists(os.path.join(conf.log_dir, log_file_name()))


def normalise(text, port):
    return text.replace(str(port), "<port>").splitlines()


@pytest.mark.skipif(not zkharness.zookeeper_available() or not os.path.exists(ZK_SCRIPT),
                    reason="Apache ZooKeeper (Debian package) is not installed")
def test_status_output_matches_zookeepers_script(tmp_path, binary, reaper):
    """Our `status` and ZooKeeper's, each against Ferrokeeper and against a
    real ZooKeeper: the same stdout lines and exit codes."""
    conf = Conf(tmp_path)
    env = script_env(conf)
    reaper.pid_file(conf.pid_file())
    assert run_script(["start"], env).returncode == 0
    wait_for(lambda: "Mode: standalone" in answers(conf.port), what="ferrokeeper")

    zk = zkharness.Server(kind="zookeeper")
    try:
        zk.start()
        wait_for(lambda: "Mode: standalone" in answers(zk.port), timeout=30, what="ZooKeeper to serve")
        results = {}
        for server, cfg, port in [("ferrokeeper", conf.path, conf.port), ("zookeeper", zk.cfg_path, zk.port)]:
            for script in [SCRIPT, ZK_SCRIPT]:
                r = run_script(["status", cfg], clean_env(), script=script)
                results[(server, script)] = (r.returncode, normalise(r.stdout, port))
        expected = (0, ["Client port found: <port>. Client address: 127.0.0.1. Client SSL: false.",
                        "Mode: standalone"])
        assert all(v == expected for v in results.values()), results
    finally:
        zk.close()
    # Both scripts on a server that is not running.
    assert run_script(["stop"], env).returncode == 0
    ours = run_script(["status", conf.path], clean_env())
    theirs = run_script(["status", conf.path], clean_env(), script=ZK_SCRIPT)
    assert (ours.returncode, normalise(ours.stdout, conf.port)) == (theirs.returncode,
                                                                      normalise(theirs.stdout, conf.port))
    assert ours.returncode == 1

    # No clientPort: both scripts find it on this server's server.N line (myid).
    line = Conf(tmp_path / "line")
    cfg = {k: v for k, v in line.cfg.items() if not k.startswith("clientPort")}
    cfg["server.1"] = f"127.0.0.1:2888:3888;127.0.0.1:{line.port}"
    line.write(cfg=cfg)
    os.makedirs(line.data_dir)
    with open(os.path.join(line.data_dir, "myid"), "w") as f:
        f.write("1\n")
    reaper.pid_file(line.pid_file())
    assert run_script(["start"], script_env(line)).returncode == 0
    wait_for(lambda: "Mode: standalone" in answers(line.port), what="ferrokeeper (port from server.1)")
    ours = run_script(["status", line.path], clean_env())
    theirs = run_script(["status", line.path], clean_env(), script=ZK_SCRIPT)
    assert ours.returncode == theirs.returncode == 0, (ours, theirs)
    assert ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout)
    assert run_script(["stop"], script_env(line)).returncode == 0


def test_stop_waits_for_in_flight_work_and_status_of_stopped(tmp_path, binary, reaper):
    """stop returns once the process has exited (ZooKeeper's only sleeps 1s)."""
    conf = Conf(tmp_path)
    env = script_env(conf)
    reaper.pid_file(conf.pid_file())
    assert run_script(["start"], env).returncode == 0
    pid = read_pid(conf.pid_file())
    wait_for(lambda: "Mode" in answers(conf.port), what="the server")
    started = time.time()
    assert run_script(["stop"], env).returncode == 0
    assert not alive(pid)
    assert time.time() - started < 10
