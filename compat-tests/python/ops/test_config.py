"""Configuration as operators give it: invalid values stop the start (exit
status 2, a message naming the key, the value and the reason), keys without
meaning for Ferrokeeper get one notice each, unknown keys a warning; ZOOCFGDIR,
ZOOCFG, ZOO_LOG_DIR, ZOO_LOG4J_PROP, SERVER_JVMFLAGS/JVMFLAGS and RUST_LOG."""
import os
import signal
import subprocess

import pytest

from opslib import Conf, answers, clean_env, log_file_name, run_binary, wait_for, zkharness

ENSEMBLE = {"initLimit": "5", "syncLimit": "2", "server.1": "127.0.0.1:2888:3888",
            "server.2": "127.0.0.2:2888:3888", "server.3": "127.0.0.3:2888:3888"}

# (name, zoo.cfg changes (None removes a key), -D properties, myid, expected words in the message)
BAD = [
    ("tickTime not a number", {"tickTime": "fast"}, {}, None, ["tickTime", '"fast"', "not an integer"]),
    ("tickTime zero", {"tickTime": "0"}, {}, None, ["tickTime", '"0"', "positive"]),
    ("clientPort out of range", {"clientPort": "70000"}, {}, None, ["clientPort", '"70000"', "port"]),
    ("clientPort missing", {"clientPort": None, "clientPortAddress": None}, {}, None,
     ["clientPort", "not set"]),
    ("clientPortAddress unresolvable", {"clientPortAddress": "no-such-host.invalid"}, {}, None,
     ["clientPortAddress", '"no-such-host.invalid"', "resolve"]),
    ("maxClientCnxns not a number", {"maxClientCnxns": "lots"}, {}, None, ["maxClientCnxns", '"lots"']),
    ("session timeouts inverted", {"minSessionTimeout": "9000", "maxSessionTimeout": "8000"}, {}, None,
     ["minSessionTimeout", '"9000"', "maxSessionTimeout"]),
    ("strict boolean", {"reconfigEnabled": "yes"}, {}, None, ["reconfigEnabled", '"yes"', "true or false"]),
    ("standaloneEnabled strict boolean", {"standaloneEnabled": "no"}, {}, None,
     ["standaloneEnabled", '"no"', "true or false"]),
    ("electionAlg", {"electionAlg": "1"}, {}, None, ["electionAlg", '"1"', "only 3"]),
    ("snapRetainCount", {"autopurge.snapRetainCount": "three"}, {}, None,
     ["autopurge.snapRetainCount", '"three"']),
    ("property from zoo.cfg", {"snapCount": "many"}, {}, None, ["zookeeper.snapCount", '"many"']),
    ("property from -D", {}, {"jute.maxbuffer": "-1"}, None, ["jute.maxbuffer", '"-1"', "positive"]),
    ("admin port", {"admin.serverPort": "http"}, {}, None, ["admin.serverPort", '"http"', "port"]),
    ("dataDir missing", {"dataDir": None}, {}, None, ["dataDir", "not set"]),
    ("dataDir is a file", {"dataDir": "@FILE@"}, {}, None, ["dataDir", "not a directory"]),
    ("dataDir cannot be created", {"dataDir": "@FILE@/sub"}, {}, None, ["dataDir", "cannot be created"]),
    ("dataDir autocreate off", {}, {"zookeeper.datadir.autocreate": "false"}, None,
     ["dataDir", "does not exist", "autocreate"]),
    ("server line malformed", {"server.1": "127.0.0.1:2888"}, {}, None,
     ["server.1", '"127.0.0.1:2888"', "host:quorumPort:electionPort"]),
    ("server id not a number", {"server.one": "h:2888:3888"}, {}, None, ["server.one", "server id"]),
    ("server ports equal", {"server.1": "h:2888:2888"}, {}, None, ["server.1", "must differ"]),
    ("myid missing", ENSEMBLE, {}, None, ["myid", "missing"]),
    ("myid not a number", ENSEMBLE, {}, "one", ["myid", '"one"', "number"]),
    ("myid not listed", ENSEMBLE, {}, "9", ["myid", '"9"', "no server.N line"]),
    ("initLimit missing", {k: v for k, v in ENSEMBLE.items() if k != "initLimit"}, {}, "1",
     ["initLimit", "not set"]),
    ("client authentication enforced", {"enforce.auth.enabled": "true"}, {}, None,
     ["zookeeper.enforce.auth.enabled", "refusing to start"]),
]


@pytest.mark.parametrize("name,changes,props,myid,words", BAD, ids=[b[0] for b in BAD])
def test_invalid_configuration_stops_start(tmp_path, binary, name, changes, props, myid, words):
    conf = Conf(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = dict(conf.cfg)
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v.replace("@FILE@", str(blocker))
    conf.write(cfg=cfg)
    if myid is not None:
        os.makedirs(conf.data_dir, exist_ok=True)
        with open(os.path.join(conf.data_dir, "myid"), "w") as f:
            f.write(myid + "\n")
    r = run_binary(["--config", conf.path] + [f"-D{k}={v}" for k, v in props.items()])
    assert r.returncode == 2, (r.returncode, r.stderr)
    error_lines = [line for line in r.stderr.splitlines() if "ERROR" in line]
    assert len(error_lines) == 1, r.stderr
    for w in words:
        assert w in error_lines[0], (w, error_lines[0])
    assert answers(conf.port) == ""


def test_missing_config_file(tmp_path, binary):
    r = run_binary(["--config", str(tmp_path / "nope.cfg")])
    assert r.returncode == 2
    assert "nope.cfg" in r.stderr and "No such file" in r.stderr


def test_bad_property_through_jvmflags(tmp_path, binary):
    conf = Conf(tmp_path)
    r = run_binary([conf.path], env=clean_env(JVMFLAGS="-Xmx1g -Dzookeeper.snapCount=x"))
    assert r.returncode == 2
    assert "zookeeper.snapCount" in r.stderr and '"x"' in r.stderr


IGNORED = {
    "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
    "initLimit": "5",
    "syncLimit": "2",
    "autopurge.purgeInterval": "1",
    "sslQuorum": "true",
    "jvm.pause.monitor": "true",
    "admin.forceHttps": "true",
    "metricsProvider.numWorkerThreads": "4",
    "nio.numWorkerThreads": "8",
    "maxResponseCacheSize": "100",
    "requestThrottleLimit": "1000",
    "ssl.keyStore.password": "hunter2",
}


def serve_and_stop(conf, env, args=None):
    """Runs the binary until it serves, stops it with SIGTERM; returns stderr."""
    p = subprocess.Popen([zkharness.ferrokeeper_bin()] + (args if args is not None else [conf.path]), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: p.poll() is not None or "Mode: standalone" in answers(conf.port), what="the server")
        assert p.poll() is None, p.communicate()[1]
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    return err


def test_ignored_and_unknown_keys_are_noticed(tmp_path, binary):
    extra = dict(IGNORED)
    extra.update({"tickTme": "2000", "frobnicate": "1", "jute.maxbuffer": "4000000"})
    extra.update({"4lw.commands.whitelist": "ruok,srvr", "snapCount": "1000", "admin.enableServer": "false",
                  "portUnification": "false", "quorumListenOnAllIPs": "false", "forceSync": "yes"})
    conf = Conf(tmp_path, extra=extra)
    err = serve_and_stop(conf, clean_env(SERVER_JVMFLAGS="-Xmx1g -Dzookeeper.nio.numSelectorThreads=2"))
    lines = err.splitlines()

    def mentioning(key):
        return [line for line in lines if f" {key}=" in line or f"-D{key}=" in line]

    for key in IGNORED:
        found = mentioning(key)
        assert len(found) == 1 and "INFO" in found[0] and "ignoring" in found[0], (key, found, err)
    assert "hunter2" not in err
    assert "ignoring property -Dzookeeper.nio.numSelectorThreads=2" in err
    assert "ignoring JVM options from SERVER_JVMFLAGS/JVMFLAGS: -Xmx1g" in err
    (typo,) = mentioning("tickTme")
    assert "WARN" in typo and "unknown" in typo and "did you mean tickTime?" in typo, typo
    (unknown,) = mentioning("frobnicate")
    assert "WARN" in unknown and "unknown" in unknown, unknown
    (sysprop,) = mentioning("jute.maxbuffer")
    assert "WARN" in sysprop and "-Djute.maxbuffer" in sysprop, sysprop
    # Keys that are used, or set to what Ferrokeeper does anyway: no notice.
    for key in ["tickTime", "dataDir", "clientPort", "clientPortAddress", "4lw.commands.whitelist", "snapCount",
                "admin.enableServer", "portUnification", "quorumListenOnAllIPs", "forceSync"]:
        assert mentioning(key) == [], (key, mentioning(key))
    # One line per significant start-up event, and the configuration summary.
    for event in ["starting Ferrokeeper", "configuration client=127.0.0.1:", "snap_count=1000", "recovered",
                  "serving clients", "shutting down", "shutdown complete"]:
        assert sum(event in line for line in lines) == 1, (event, err)


def test_zoocfgdir_and_zoocfg(tmp_path, binary):
    conf = Conf(tmp_path)
    err = serve_and_stop(conf, clean_env(ZOOCFGDIR=conf.conf_dir), args=[])
    assert f"config={conf.path}" in err and "ZOOCFGDIR" in err, err

    other = conf.write("other.cfg")
    err = serve_and_stop(conf, clean_env(ZOOCFGDIR=conf.conf_dir, ZOOCFG="other.cfg"), args=[])
    assert f"config={other}" in err, err
    err = serve_and_stop(conf, clean_env(ZOOCFG=other), args=[])
    assert f"config={other}" in err, err
    # An explicit argument wins over the environment.
    err = serve_and_stop(conf, clean_env(ZOOCFGDIR=str(tmp_path / "nowhere")), args=[conf.path])
    assert f"config={conf.path}" in err, err
    r = run_binary([], env=clean_env(ZOOCFGDIR=str(tmp_path / "nowhere")))
    assert r.returncode == 2 and "nowhere/zoo.cfg" in r.stderr, r.stderr


def test_zoo_log_dir_and_levels(tmp_path, binary):
    conf = Conf(tmp_path, extra={"frobnicate": "1"})
    log_dir = tmp_path / "logs"
    # ZOO_LOG_DIR: the log goes to zookeeper-<user>-server-<host>.log there.
    err = serve_and_stop(conf, clean_env(ZOO_LOG_DIR=log_dir))
    assert err == "", err
    log = (log_dir / log_file_name()).read_text()
    assert "starting Ferrokeeper" in log and "shutdown complete" in log and "frobnicate" in log
    # ZOO_LOG_FILE names it; appended, not truncated.
    serve_and_stop(conf, clean_env(ZOO_LOG_DIR=log_dir, ZOO_LOG_FILE="fk.log"))
    serve_and_stop(conf, clean_env(ZOO_LOG_DIR=log_dir, ZOO_LOG_FILE="fk.log"))
    assert (log_dir / "fk.log").read_text().count("starting Ferrokeeper") == 2
    # ZOO_LOG4J_PROP: level and appenders (log4j names).
    err = serve_and_stop(conf, clean_env(ZOO_LOG_DIR=log_dir, ZOO_LOG4J_PROP="WARN,CONSOLE"))
    assert "frobnicate" in err and " INFO " not in err, err
    err = serve_and_stop(conf, clean_env(ZOO_LOG4J_PROP="ERROR"))
    assert err == "", err
    # -Dzookeeper.root.logger wins over ZOO_LOG4J_PROP; RUST_LOG wins over both.
    err = serve_and_stop(conf, clean_env(ZOO_LOG4J_PROP="ERROR"), args=[conf.path, "-Dzookeeper.root.logger=INFO"])
    assert "starting Ferrokeeper" in err, err
    err = serve_and_stop(conf, clean_env(ZOO_LOG4J_PROP="ERROR,CONSOLE", RUST_LOG="info"))
    assert "starting Ferrokeeper" in err, err
    # A configuration error still reaches stderr when the log goes to a file.
    bad = Conf(tmp_path / "bad", extra={"tickTime": "fast"})
    r = run_binary([bad.path], env=clean_env(ZOO_LOG_DIR=log_dir))
    assert r.returncode == 2 and "tickTime" in r.stderr
    assert "tickTime" in (log_dir / log_file_name()).read_text()
