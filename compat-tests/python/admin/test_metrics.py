"""/metrics (metricsProvider.className = ZooKeeper's PrometheusMetricsProvider):
the Prometheus text format, checked by a strict parser written here;
ZooKeeper's metric names; values that move under load."""
import math
import re
import urllib.request

import pytest
from kazoo.client import KazooClient

from adminlib import http_get

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})(\{{(.*)\}})? (\S+)( -?\d+)?$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
TYPES = {"counter", "gauge", "summary", "histogram", "untyped"}


class Family:
    def __init__(self, name):
        self.name, self.type, self.help, self.samples = name, None, None, []

    def value(self, suffix="", **labels):
        for n, ls, v in self.samples:
            if n == self.name + suffix and ls == labels:
                return v
        raise KeyError((self.name + suffix, labels))


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, f"bad label set {{{text}}} at {pos}"
        name, raw = m.group(1), m.group(2)
        assert name not in labels, f"duplicate label {name}"
        labels[name] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), raw)
        pos = m.end()
    return labels


def parse_value(text):
    if text in ("NaN", "+Inf", "-Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    assert re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text), f"bad value {text!r}"
    return float(text)


def parse(text):
    """Prometheus text exposition format 0.0.4 -> {family name: Family}."""
    assert text.endswith("\n"), "the last line must end with a newline"
    fams = {}
    for line in text[:-1].split("\n"):
        assert line == line.strip() or line.startswith("#"), f"stray blanks: {line!r}"
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            assert re.fullmatch(NAME, name), name
            f = fams.setdefault(name, Family(name))
            if kind == "TYPE":
                assert f.type is None, f"second TYPE for {name}"
                assert not f.samples, f"TYPE after samples of {name}"
                assert rest in TYPES, rest
                f.type = rest
            else:
                assert f.help is None, f"second HELP for {name}"
                f.help = rest
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"bad sample line {line!r}"
        name, labels, value = m.group(1), parse_labels(m.group(3) or ""), parse_value(m.group(4))
        fam = fams.get(name)
        if fam is None or fam.type is None:
            base = re.sub(r"_(count|sum|bucket)$", "", name)
            fam = fams.get(base)
            assert fam is not None and fam.type in ("summary", "histogram"), f"{name}: no TYPE line"
        fam.samples.append((name, labels, value))
    for f in fams.values():
        assert f.type is not None, f"{f.name}: HELP without TYPE"
        if f.type == "summary":
            names = {n for n, _, _ in f.samples}
            assert {f.name + "_count", f.name + "_sum"} <= names, f.name
            for n, ls, v in f.samples:
                if n == f.name:
                    assert set(ls) == {"quantile"} and 0 <= float(ls["quantile"]) <= 1, (n, ls)
    return fams


def scrape(srv):
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(r.read().decode())


ZK_GAUGES = ["avg_latency", "max_latency", "min_latency", "packets_received", "packets_sent",
             "num_alive_connections", "outstanding_requests", "uptime", "znode_count", "watch_count",
             "ephemerals_count", "approximate_data_size", "global_sessions", "local_sessions",
             "open_file_descriptor_count", "max_file_descriptor_count", "connection_drop_probability",
             "outstanding_tls_handshake", "auth_failed_count", "non_mtls_remote_conn_count",
             "non_mtls_local_conn_count"]
ZK_SUMMARIES = {"readlatency": ["0.5", "0.9", "0.99"], "updatelatency": ["0.5", "0.9", "0.99"],
                "fsynctime": ["0.5"], "snapshottime": ["0.5"], "dbinittime": ["0.5"],
                "startup_txns_loaded": ["0.5"]}


@pytest.fixture
def msrv(server_factory):
    return server_factory(metrics=True)


def test_parser_rejects_bad_text():
    for bad in ("x 1", "# TYPE x gauge\nx{a=\"1\" 1\n", "# TYPE x gauge\nx one\n", "# TYPE x nope\nx 1\n",
                "y 1\n", "# TYPE x gauge\n# TYPE x gauge\nx 1\n", "# TYPE s summary\ns{quantile=\"0.5\",} 1\n"):
        with pytest.raises(AssertionError):
            parse(bad)
    f = parse('# HELP s s\n# TYPE s summary\ns{quantile="0.5",} NaN\ns_count 0.0\ns_sum 0.0\n'
              '# TYPE g gauge\ng{a="x\\"y",b="2"} 1.0E7 123\n')
    assert math.isnan(f["s"].value(quantile="0.5"))
    assert f["g"].value(a='x"y', b="2") == 1e7


def test_zookeeper_metric_names(msrv):
    fams = scrape(msrv)
    for name in ZK_GAUGES:
        assert fams[name].type == "gauge", name
        assert fams[name].help == name  # as ZooKeeper's provider
    for name, qs in ZK_SUMMARIES.items():
        f = fams[name]
        assert f.type == "summary", name
        assert sorted(ls["quantile"] for n, ls, _ in f.samples if n == name) == qs
    for name in ("process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes",
                 "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes"):
        assert name in fams, name
    ours = [n for n in fams if not n.startswith("process_") and n not in ZK_GAUGES and n not in ZK_SUMMARIES]
    assert ours and all(n.startswith("ferrokeeper_") for n in ours), ours
    assert fams["ferrokeeper_ready"].value() == 1.0
    assert fams["dbinittime"].value("_count") == 1.0
    assert fams["znode_count"].value() >= 4


def test_names_are_zookeepers_own(captures):
    """Every ZooKeeper-named gauge and summary we export is a key of ZooKeeper's own mntr."""
    zk, _ = captures
    zkeys = {line.split("\t", 1)[0][3:] for line in zk.words["mntr"].splitlines() if "\t" in line}
    for name in ZK_GAUGES:
        assert name in zkeys, name
    for name in ZK_SUMMARIES:
        assert f"cnt_{name}" in zkeys, name


def test_values_move_under_load(msrv):
    before = scrape(msrv)
    c = KazooClient(hosts=msrv.hosts, timeout=10.0)
    c.start(timeout=15)
    try:
        c.create("/load")
        for r in [c.create_async(f"/load/n{i}", b"x" * i) for i in range(200)]:
            r.get(timeout=30)
        for r in [c.get_async(f"/load/n{i}") for i in range(200)]:
            r.get(timeout=30)
        c.create("/eph", ephemeral=True)
        c.get("/load", watch=lambda e: None)
        during = scrape(msrv)
    finally:
        c.stop()
        c.close()
    v = lambda fams, name, suffix="", **ls: fams[name].value(suffix, **ls)  # noqa: E731
    assert v(during, "packets_received") >= v(before, "packets_received") + 400
    assert v(during, "packets_sent") >= v(before, "packets_sent") + 400
    assert v(during, "znode_count") == v(before, "znode_count") + 202
    assert v(during, "ephemerals_count") == 1 and v(during, "watch_count") == 1
    assert v(during, "num_alive_connections") == 1 and v(during, "global_sessions") == 1
    assert v(during, "approximate_data_size") > v(before, "approximate_data_size") + 19000
    assert v(during, "ferrokeeper_last_zxid") >= v(before, "ferrokeeper_last_zxid") + 202
    n = "ferrokeeper_request_latency_ms"
    assert v(during, n, "_count") >= v(before, n, "_count") + 400
    assert v(during, n, "_sum") >= v(before, n, "_sum")
    for q in ("0.5", "0.9", "0.99"):
        assert not math.isnan(v(during, n, quantile=q))
    assert v(during, n, quantile="0.5") <= v(during, n, quantile="0.99")
    assert v(during, "max_latency") >= v(during, "min_latency")
    assert v(during, "uptime") > v(before, "uptime")
    assert v(during, "process_cpu_seconds_total") >= v(before, "process_cpu_seconds_total")
    assert v(during, "ferrokeeper_metrics_scrapes_total") == v(before, "ferrokeeper_metrics_scrapes_total") + 1


def test_read_and_update_latency_summaries(msrv):
    before = scrape(msrv)
    c = KazooClient(hosts=msrv.hosts, timeout=10.0)
    c.start(timeout=15)
    try:
        c.create("/rl", b"x")
        for _ in range(50):
            c.get("/rl")
    finally:
        c.stop()
        c.close()
    after = scrape(msrv)
    assert after["readlatency"].value("_count") >= before["readlatency"].value("_count") + 50
    assert after["updatelatency"].value("_count") >= before["updatelatency"].value("_count") + 1


def test_metrics_endpoint_only_serves_metrics(msrv):
    assert http_get(msrv.metrics_port, "/")[0] == 404
    assert http_get(msrv.metrics_port, "/commands/ruok")[0] == 404
