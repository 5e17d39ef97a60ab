"""Named operation sequences for the differential oracle.

Each scenario is a function of a Trace (see oraclelib) and works under its
own root path t.root = "/<scenario name>". Every session is closed before the
scenario ends (oraclelib cleans up what a scenario leaves behind), so that no
session expires later and disturbs another scenario's zxids.

Kept out on purpose (behaviour that changed between 3.8 and 3.9 and that the
3.8 oracle therefore cannot judge): checkWatches/removeWatches with watcher
types 4/5 and with Data/Children on persistent watches (ZOOKEEPER-4471/4472),
standard and persistent watches of one session on the same path
(ZOOKEEPER-4466), watch events on nodes the watcher cannot read (3.9 filters
them by READ ACL), addWatch on a node without READ (ZOOKEEPER-4799).
"""
import zkraw as z
from zkraw import multi_op as mop

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


# scenarios for servers with the default settings (no extended types)
DEFAULT_SCENARIOS = {}


def default_scenario(fn):
    DEFAULT_SCENARIOS[fn.__name__] = fn
    return fn


ALICE = z.digest("alice", "secret")
BOB = z.digest("bob", "hunter2")
ALL = z.PERM_ALL
R, W, C, D, A = z.PERM_READ, z.PERM_WRITE, z.PERM_CREATE, z.PERM_DELETE, z.PERM_ADMIN


def world(perms):
    return [(perms, "world", "anyone")]


def setup(t, name="A"):
    a = t.session(name)
    a.op("create", t.root, b"root")
    return a


# ---------------------------------------------------------------- sessions

@scenario
def connect_handshake(t):
    a = t.session("A")                              # with the readOnly byte
    b = t.session("B", read_only=None)              # old client: no readOnly byte
    c = t.session("C", timeout_ms=1)                # below minSessionTimeout
    d = t.session("D", timeout_ms=10 ** 7)          # above maxSessionTimeout
    e = t.session("E", timeout_ms=5000, read_only=True)
    a.op("exists", "/zookeeper")
    b.op("exists", "/zookeeper")
    t.note("resume A's session on a new connection")
    a2 = t.reconnect("A", "A2")
    a.expect_closed("old connection of A after A2 resumed the session")
    a2.op("exists", "/zookeeper")
    a3 = t.reconnect("A", "A3", read_only=None)
    a2.expect_closed("A2 after A3 resumed the session")
    a3.op("ping")
    a3.close()
    t.note("resume a closed session: zero ConnectResponse, then close")
    x = t.reconnect("A", "X")
    x.expect_closed("connection that tried to resume a closed session")
    for s in (b, c, d, e):
        s.close()


@scenario
def ping_and_pipeline(t):
    a = setup(t)
    a.op("ping")
    a.pipeline([
        ("create", (t.p("n1"), b"1"), {}),
        ("getData", (t.p("n1"),), {}),
        ("ping", (), {}),
        ("setData", (t.p("n1"), b"2", 0), {}),
        ("exists", (t.p("n1"),), {"watch": True}),
        ("setData", (t.p("n1"), b"3", 0), {}),
        ("getData", (t.p("n1"),), {}),
        ("create", (t.p("n1", "c"), b""), {"flags": z.PERSISTENT_SEQUENTIAL}),
        ("getChildren", (t.p("n1"),), {}),
        ("delete", (t.p("n1"),), {}),
        ("sync", (t.root,), {}),
    ])
    a.op("getData", t.p("n1"), xid=0, label="getData with xid 0")
    a.op("getData", t.p("n1"), xid=-77, label="getData with xid -77")
    a.op("getData", t.p("n1"), xid=2 ** 31 - 1, label="getData with xid 2^31-1")
    a.close()


@scenario
def close_session(t):
    a = setup(t)
    b = t.session("B")
    a.op("create", t.p("eph"), b"e", flags=z.EPHEMERAL)
    a.op("create", t.p("eph2"), b"e", flags=z.EPHEMERAL_SEQUENTIAL)
    b.op("exists", t.p("eph"), watch=True)
    b.op("getChildren", t.root, watch=True)
    a.close()
    b.barrier(unordered=True)     # ephemerals are deleted in hash-set order
    b.op("exists", t.p("eph"))
    b.op("getChildren2", t.root)
    t.note("requests on a closed session's new connection")
    x = t.reconnect("A", "X")
    x.expect_closed("resume after closeSession")
    b.close()


# ---------------------------------------------------------------- create

@scenario
def create_basic(t):
    a = setup(t)
    a.op("create", t.p("a"), b"hello")
    a.op("create2", t.p("b"), b"")
    a.op("create2", t.p("c"), None)
    a.op("create", t.p("a"), b"again")
    a.op("create2", t.p("a"), b"again")
    a.op("create", t.p("missing", "x"), b"")
    a.op("create2", t.p("missing", "x"), b"")
    a.op("getData", t.p("a"))
    a.op("getData", t.p("b"))
    a.op("getData", t.p("c"))
    a.op("create", t.p("d"), b"x" * 1000)
    a.op("create", t.p("bin"), bytes(range(256)))
    a.op("getData", t.p("bin"))
    a.op("create", "/", b"", label="create '/'")
    a.op("create", "/zookeeper", b"", label="create '/zookeeper'")
    a.op("create", t.p("flags7"), b"", flags=7)
    a.op("create", t.p("flags-1"), b"", flags=-1)
    a.op("create", t.p("flags99"), b"", flags=99)
    a.op("getChildren2", t.root)
    a.op("getAllChildrenNumber", t.root)
    a.close()


@scenario
def create_acl_validation(t):
    a = setup(t)
    cases = [
        ("empty", []),
        ("world-someone", [(ALL, "world", "someone")]),
        ("world-perms0", [(0, "world", "anyone")]),
        ("world-perms-high", [(0xff, "world", "anyone")]),
        ("unknown-scheme", [(ALL, "nosuch", "x")]),
        ("auth-unauthenticated", [(ALL, "auth", "")]),
        ("digest-ok", [(ALL, "digest", ALICE)]),
        ("digest-nocolon", [(ALL, "digest", "alice")]),
        ("ip-ok", [(ALL, "ip", "127.0.0.1")]),
        ("ip-cidr", [(ALL, "ip", "10.0.0.0/8")]),
        ("ip-bad", [(ALL, "ip", "999.1.1.1")]),
        ("ip-badmask", [(ALL, "ip", "10.0.0.0/99")]),
        ("mixed-valid-invalid", [(ALL, "world", "anyone"), (ALL, "nosuch", "x")]),
        ("duplicate", [(ALL, "world", "anyone"), (ALL, "world", "anyone")]),
    ]
    for name, acl in cases:
        a.op("create", t.p(name), b"", acl, label=f"create acl={name}")
        a.op("getACL", t.p(name), label=f"getACL {name}")
    t.note("null ACL vector")
    body = z.Writer().ustring(t.p("nullacl")).buffer(b"").int(-1).int(0).bytes()
    a.raw(z.OPS["create"], body, "create acl=null-vector")
    a.op("exists", t.p("nullacl"))
    a.close()


@scenario
def create_error_order(t):
    """Which error wins when a create has several problems."""
    a = setup(t)
    a.op("create", t.p("eph"), b"", flags=z.EPHEMERAL)
    a.op("create", t.p("noc"), b"", world(R | W | D | A))      # no CREATE
    a.op("create", t.p("exists"), b"")
    bad_acl = []
    cases = [
        ("missing parent + empty ACL", t.p("nope", "x"), bad_acl, 0),
        ("missing parent + bad flags", t.p("nope", "x"), None, 42),
        ("missing parent + trailing slash", t.p("nope", "x") + "/", None, 0),
        ("missing parent + bad ACL scheme", t.p("nope", "x"), [(ALL, "nosuch", "x")], 0),
        ("existing node + empty ACL", t.p("exists"), bad_acl, 0),
        ("existing node + bad flags", t.p("exists"), None, 42),
        ("ephemeral parent + empty ACL", t.p("eph", "x"), bad_acl, 0),
        ("ephemeral parent", t.p("eph", "x"), None, 0),
        ("ephemeral parent + sequential", t.p("eph", "x"), None, z.PERSISTENT_SEQUENTIAL),
        ("no CREATE on parent + empty ACL", t.p("noc", "x"), bad_acl, 0),
        ("no CREATE on parent", t.p("noc", "x"), None, 0),
        ("no CREATE on parent + missing grandparent", t.p("noc", "y", "x"), None, 0),
        ("no CREATE on parent + bad flags", t.p("noc", "x"), None, 42),
        ("invalid path + empty ACL", t.root + "//x", bad_acl, 0),
        ("invalid path + bad flags", t.root + "//x", None, 42),
        ("TTL flag on plain create", t.p("ttlflag"), None, z.PERSISTENT_WITH_TTL),
        ("container flag on plain create", t.p("cflag"), None, z.CONTAINER),
    ]
    for label, path, acl, flags in cases:
        a.op("create", path, b"", acl, flags, label="create: " + label)
    a.op("getChildren2", t.root)
    a.op("exists", t.p("cflag"))
    a.close()


@scenario
def sequential_nodes(t):
    a = setup(t)
    a.op("create", t.p("s"), b"")
    for i in range(3):
        a.op("create", t.p("s", "n-"), b"", flags=z.PERSISTENT_SEQUENTIAL)
    a.op("create", t.p("s", "e-"), b"", flags=z.EPHEMERAL_SEQUENTIAL)
    a.op("delete", t.p("s", "n-0000000001"))
    a.op("create2", t.p("s", "n-"), b"", flags=z.PERSISTENT_SEQUENTIAL)
    a.op("delete", t.p("s", "n-0000000004"))
    a.op("delete", t.p("s", "n-0000000002"))
    a.op("create", t.p("s", "n-"), b"", flags=z.PERSISTENT_SEQUENTIAL)
    t.note("sequential with an empty last component (path ends with '/')")
    a.op("create", t.p("s") + "/", b"", flags=z.PERSISTENT_SEQUENTIAL)
    t.note("a sequential name that already exists")
    a.op("create", t.p("s", "x0000000009"), b"")
    a.op("getChildren2", t.p("s"))
    a.op("create", t.p("s", "x"), b"", flags=z.PERSISTENT_SEQUENTIAL)
    a.op("create", t.p("s", "x"), b"", flags=z.PERSISTENT_SEQUENTIAL)
    a.op("getChildren2", t.p("s"))
    t.note("a fresh parent numbers from 0 again; sequential under a missing parent")
    a.op("create", t.p("s2"), b"")
    a.op("create", t.p("s2", "q"), b"", flags=z.EPHEMERAL_SEQUENTIAL)
    a.op("create", t.p("nope", "q"), b"", flags=z.PERSISTENT_SEQUENTIAL)
    a.close()


@scenario
def ephemeral_nodes(t):
    a = setup(t)
    b = t.session("B")
    a.op("create2", t.p("e"), b"eph", flags=z.EPHEMERAL)
    b.op("exists", t.p("e"))
    b.op("getData", t.p("e"), watch=True)
    a.op("create", t.p("e", "child"), b"")
    a.op("create", t.p("e", "child"), b"", flags=z.EPHEMERAL)
    b.op("delete", t.p("e"))
    b.barrier()
    b.op("create", t.p("e"), b"by B", flags=z.EPHEMERAL)
    a.op("exists", t.p("e"), watch=True)
    b.close()
    a.barrier()
    a.op("exists", t.p("e"))
    a.close()


@scenario
def container_and_ttl(t):
    a = setup(t)
    a.op("createContainer", t.p("c"), b"cont")
    a.op("exists", t.p("c"))
    a.op("create", t.p("c", "kid"), b"")
    a.op("delete", t.p("c", "kid"))
    a.op("getData", t.p("c"))
    a.op("createContainer", t.p("c"), b"")
    a.op("createContainer", t.p("c0"), b"", None, 0, label="createContainer with flags 0")
    a.op("exists", t.p("c0"))
    a.op("createContainer", t.p("cseq"), b"", None, z.PERSISTENT_SEQUENTIAL,
         label="createContainer with sequential flags")
    a.op("createContainer", t.p("nope", "c"), b"")
    a.op("createContainer", t.p("ce"), b"", [], z.CONTAINER, label="createContainer empty ACL")
    t.note("TTL nodes (zookeeper.extendedTypesEnabled=true)")
    a.op("createTTL", t.p("t1"), b"ttl", None, z.PERSISTENT_WITH_TTL, 3600000)
    a.op("exists", t.p("t1"))
    a.op("createTTL", t.p("ts-"), b"", None, z.PERSISTENT_SEQUENTIAL_WITH_TTL, 3600000)
    a.op("createTTL", t.p("t0"), b"", None, z.PERSISTENT_WITH_TTL, 0, label="createTTL ttl=0")
    a.op("createTTL", t.p("tneg"), b"", None, z.PERSISTENT_WITH_TTL, -5, label="createTTL ttl<0")
    a.op("createTTL", t.p("tbig"), b"", None, z.PERSISTENT_WITH_TTL, 1 << 41,
         label="createTTL ttl=2^41")
    a.op("createTTL", t.p("tplain"), b"", None, z.PERSISTENT, 1000,
         label="createTTL with PERSISTENT flags")
    a.op("createTTL", t.p("teph"), b"", None, z.EPHEMERAL, 1000,
         label="createTTL with EPHEMERAL flags")
    a.op("createTTL", t.p("nope", "t"), b"", None, z.PERSISTENT_WITH_TTL, 1000)
    a.op("createTTL", t.p("t1"), b"", None, z.PERSISTENT_WITH_TTL, 1000)
    a.op("getChildren2", t.root)
    t.note("cleanup: delete the TTL/container nodes so the container manager never acts")
    for n in ("c", "c0", "cseq0000000002", "t1", "ts-0000000004"):
        a.op("delete", t.p(n))
    a.op("getChildren2", t.root)
    a.close()


# ---------------------------------------------------------------- delete

@scenario
def delete_errors(t):
    a = setup(t)
    a.op("create", t.p("leaf"), b"")
    a.op("create", t.p("full"), b"")
    a.op("create", t.p("full", "kid"), b"")
    a.op("create", t.p("nodel"), b"", world(R | W | C | A))     # no DELETE
    a.op("create", t.p("nodel", "kid"), b"")
    a.op("delete", t.p("missing"))
    a.op("delete", t.p("missing"), 5, label="delete missing with version 5")
    a.op("delete", t.p("leaf"), 3, label="delete leaf with wrong version")
    a.op("delete", t.p("full"), label="delete non-empty")
    a.op("delete", t.p("full"), 7, label="delete non-empty with wrong version")
    a.op("delete", t.p("nodel", "kid"), label="delete child of a node without DELETE")
    a.op("delete", t.p("nodel", "kid"), 9, label="delete (no DELETE on parent) + wrong version")
    a.op("delete", t.p("nodel", "ghost"), label="delete missing child (no DELETE on parent)")
    a.op("delete", t.p("leaf"), 0, label="delete leaf with version 0")
    a.op("delete", t.p("leaf"), label="delete again")
    a.op("delete", t.p("full", "kid"), -1)
    a.op("delete", t.p("full"), -1)
    a.op("delete", "/", label="delete '/'")
    a.op("delete", "/zookeeper", label="delete '/zookeeper'")
    a.op("delete", "relative", label="delete 'relative'")
    a.op("delete", t.p("nodel") + "/", label="delete with trailing slash")
    a.op("getChildren2", t.root)
    a.op("setACL", t.p("nodel"), world(ALL))
    a.op("delete", t.p("nodel", "kid"))
    a.op("delete", t.p("nodel"))
    a.close()


# ---------------------------------------------------------------- data

@scenario
def get_set_data(t):
    a = setup(t)
    a.op("create", t.p("n"), b"v0")
    a.op("getData", t.p("n"))
    a.op("setData", t.p("n"), b"v1", 0)
    a.op("setData", t.p("n"), b"v2", 0, label="setData stale version")
    a.op("setData", t.p("n"), b"v2", 1)
    a.op("setData", t.p("n"), b"v3", -1)
    a.op("setData", t.p("n"), b"v3", -2, label="setData version -2")
    a.op("setData", t.p("n"), b"v4", 1000, label="setData version 1000")
    a.op("getData", t.p("n"))
    a.op("setData", t.p("missing"), b"x")
    a.op("setData", t.p("missing"), b"x", 3, label="setData missing + bad version")
    a.op("getData", t.p("missing"))
    a.op("exists", t.p("missing"))
    a.op("setData", t.p("n"), b"\x00\xff\x00", -1)
    a.op("getData", t.p("n"))
    a.op("setData", t.p("n"), b"y" * 5000, -1)
    a.op("exists", t.p("n"))
    a.op("setData", t.root, b"new root data")
    a.op("getData", t.root)
    a.close()


@scenario
def data_null_vs_empty(t):
    a = setup(t)
    a.op("create", t.p("null"), None)
    a.op("create", t.p("empty"), b"")
    a.op("getData", t.p("null"))
    a.op("getData", t.p("empty"))
    a.op("setData", t.p("empty"), None)
    a.op("getData", t.p("empty"))
    a.op("setData", t.p("null"), b"")
    a.op("getData", t.p("null"))
    a.op("setData", t.p("null"), b"x")
    a.op("setData", t.p("null"), None)
    a.op("getData", t.p("null"))
    a.op("multi", [mop("create", t.p("mnull"), None), mop("setData", t.p("empty"), b"")])
    a.op("multiRead", [mop("getData", t.p("mnull")), mop("getData", t.p("empty"))])
    a.close()


@scenario
def stat_fields(t):
    a = setup(t)
    b = t.session("B")
    a.op("create2", t.p("P"), b"parent")
    a.op("exists", t.p("P"))
    a.op("create2", t.p("P", "c1"), b"child")
    a.op("exists", t.p("P"))
    a.op("setData", t.p("P", "c1"), b"child2")
    a.op("exists", t.p("P"))
    a.op("exists", t.p("P", "c1"))
    a.op("setACL", t.p("P"), world(ALL), 0)
    a.op("setACL", t.p("P"), world(ALL), 0, label="setACL stale aversion")
    a.op("getACL", t.p("P"))
    a.op("setACL", t.p("P", "c1"), world(ALL), -1)
    a.op("exists", t.p("P", "c1"))
    a.op("exists", t.p("P"))
    b.op("create2", t.p("P", "e"), b"", flags=z.EPHEMERAL)
    a.op("getChildren2", t.p("P"))
    a.op("delete", t.p("P", "c1"))
    a.op("getChildren2", t.p("P"))
    a.op("create2", t.p("P", "c2"), b"")
    a.op("delete", t.p("P", "c2"))
    a.op("exists", t.p("P"))
    b.close()
    a.op("getChildren2", t.p("P"))
    a.op("setData", t.p("P"), b"p2", 0)
    a.op("getData", t.p("P"))
    a.op("getChildren2", t.root)
    a.close()


@scenario
def zookeeper_node(t):
    a = t.session("A")
    a.op("getData", "/zookeeper")
    a.op("getChildren2", "/zookeeper")
    a.op("getACL", "/zookeeper")
    a.op("getData", "/zookeeper/quota")
    a.op("getChildren2", "/zookeeper/quota")
    a.op("getACL", "/zookeeper/quota")
    a.op("getData", "/zookeeper/config")
    a.op("getACL", "/zookeeper/config")
    a.op("getAllChildrenNumber", "/zookeeper")
    a.op("exists", "/zookeeper/nothing")
    a.close()


@scenario
def unicode_paths(t):
    a = setup(t)
    names = ["\u00fc", "\u65e5\u672c\u8a9e", "emoji \U0001F600", "sp ace", "tab\tname",
             "dots.and-dash_", "a" * 200, "nb\u00a0sp", "\uf900", "\u2028"]
    for n in names:
        a.op("create2", t.p(n), n.encode())
    a.op("getChildren2", t.root)
    a.op("getData", t.p("\U0001F600"))
    a.op("getData", t.p("emoji \U0001F600"))
    a.op("create", t.p("\u00fc", "\u00df-"), b"", flags=z.PERSISTENT_SEQUENTIAL)
    a.op("getChildren", t.p("\u00fc"))
    a.op("setData", t.p("\u65e5\u672c\u8a9e"), "\u00e9t\u00e9".encode())
    a.op("getData", t.p("\u65e5\u672c\u8a9e"))
    b = t.session("B")
    b.op("exists", t.p("\u00fc"), watch=True)
    a.op("setData", t.p("\u00fc"), b"x")
    b.barrier()
    a.op("getEphemerals", t.root)
    a.close()
    b.close()


PATH_OPS = [
    ("create", lambda p: (p, b"")), ("delete", lambda p: (p,)), ("setData", lambda p: (p, b"")),
    ("getData", lambda p: (p,)), ("exists", lambda p: (p,)), ("getChildren", lambda p: (p,)),
    ("getChildren2", lambda p: (p,)), ("getACL", lambda p: (p,)),
    ("setACL", lambda p: (p, world(ALL))), ("check", lambda p: (p, 0)), ("sync", lambda p: (p,)),
    ("getAllChildrenNumber", lambda p: (p,)),
]


def path_matrix(t, a, paths, ops=None):
    for p in paths:
        lab = repr(p)
        for opname, args in PATH_OPS:
            if ops is None or opname in ops:
                a.op(opname, *args(p), label=f"{opname} {lab}")
        if ops is None or "multi" in ops:
            a.op("multi", [mop("create", p, b"")], label=f"multi[create {lab}]")
        if ops is None or "multiRead" in ops:
            a.op("multiRead", [mop("getData", p)], label=f"multiRead[getData {lab}]")


@scenario
def invalid_paths(t):
    a = setup(t)
    a.op("create", t.p("ok"), b"")
    bad = ["noslash", t.p("ok") + "/", t.root + "//ok", t.root + "/./x", t.root + "/../x",
           t.root + "/.", t.root + "/..", t.p("a\x00b"), t.p("a\x01b"), t.p("a\x7fb"),
           t.p("a\u0085b"), t.p("a\ue000b"), t.p("a\ufff5b"), t.p("a\ud7ffb")]
    path_matrix(t, a, bad)
    a.op("getChildren2", t.root)
    a.close()


@scenario
def empty_path(t):
    # ZooKeeper resolves "" to the root node for reads; only operations whose
    # answer does not depend on what other scenarios left under "/" are used.
    a = t.session("A")
    path_matrix(t, a, [""], ops={"create", "delete", "setData", "setACL", "check", "sync",
                                 "multi"})
    a.close()


@scenario
def null_paths(t):
    # a null ustring (-1 length) where a path is expected
    a = setup(t)
    path_matrix(t, a, [None])
    a.op("exists", t.root)
    a.close(mask="zxid-gap")


# ---------------------------------------------------------------- ACL / auth

@scenario
def acl_permissions(t):
    a = setup(t)
    a.op("create", t.p("r"), b"read-only", world(R))
    a.op("create", t.p("none"), b"nothing", world(0))
    a.op("create", t.p("w"), b"write-only", world(W))
    a.op("create", t.p("cd"), b"", world(C | D))
    a.op("create", t.p("admin"), b"", world(A))
    for n in ("r", "none", "w", "cd", "admin"):
        p = t.p(n)
        a.op("getData", p, label=f"getData {n}")
        a.op("setData", p, b"x", label=f"setData {n}")
        a.op("getChildren", p, label=f"getChildren {n}")
        a.op("getChildren2", p, label=f"getChildren2 {n}")
        a.op("getACL", p, label=f"getACL {n}")
        a.op("getAllChildrenNumber", p, label=f"getAllChildrenNumber {n}")
        a.op("create", p + "/kid", b"", label=f"create under {n}")
        if n != "r":
            # a successful top-level check gets no reply from ZooKeeper (see
            # check_top_level_success); only the failing ones are compared here
            a.op("check", p, 0, label=f"check {n} (version 0)")
        a.op("sync", p, label=f"sync {n}")
        a.op("multiRead", [mop("getData", p), mop("getChildren", p)], label=f"multiRead {n}")
        a.op("multi", [mop("setData", p, b"m")], label=f"multi[setData {n}]")
    a.op("setData", t.p("r"), b"x", 5, label="setData r (no WRITE) + bad version")
    a.op("setData", t.p("r") + "/", b"x", label="setData r/ (no WRITE) + invalid path")
    a.op("delete", t.p("cd", "kid"), label="delete child of cd")
    a.op("setACL", t.p("admin"), world(ALL))
    a.op("setACL", t.p("r"), world(ALL), label="setACL r (no ADMIN)")
    a.op("setACL", t.p("r"), world(ALL), 5, label="setACL r (no ADMIN) + bad version")
    a.op("setACL", t.p("missing"), world(ALL))
    a.op("setACL", t.p("admin"), world(ALL), 7, label="setACL bad version")
    a.op("setACL", t.p("admin"), [], label="setACL empty ACL")
    a.op("setACL", t.p("admin"), [], 7, label="setACL empty ACL + bad version")
    a.op("setACL", t.p("r"), [], label="setACL empty ACL on node without ADMIN")
    a.op("setACL", t.p("admin"), [(ALL, "nosuch", "x")], label="setACL unknown scheme")
    a.op("getACL", t.p("missing"))
    a.op("create", t.p("ip"), b"", [(R, "ip", "127.0.0.1")])
    a.op("getData", t.p("ip"))
    a.op("create", t.p("ipnet"), b"", [(R, "ip", "127.0.0.0/8")])
    a.op("getData", t.p("ipnet"))
    a.op("create", t.p("ipother"), b"", [(R, "ip", "10.1.2.3")])
    a.op("getData", t.p("ipother"))
    a.close()


@scenario
def acl_digest_and_masking(t):
    a = setup(t)
    b = t.session("B")
    b.auth("digest", "alice:secret")
    c = t.session("C")
    c.auth("digest", "bob:hunter2")
    b.op("create", t.p("alice-only"), b"a", [(ALL, "digest", ALICE)])
    b.op("create", t.p("alice-world-read"), b"a", [(ALL, "digest", ALICE), (R, "world", "anyone")])
    b.op("create", t.p("alice-auth"), b"a", [(ALL, "auth", "")])
    b.op("create", t.p("alice-auth-ignored-id"), b"a", [(R | W, "auth", "whatever")])
    b.op("create", t.p("two-users"), b"a", [(ALL, "digest", ALICE), (R, "digest", BOB)])
    for who in (a, b, c):
        for n in ("alice-only", "alice-world-read", "alice-auth", "alice-auth-ignored-id",
                  "two-users"):
            who.op("getACL", t.p(n), label=f"getACL {n}")
            who.op("getData", t.p(n), label=f"getData {n}")
    c.op("setData", t.p("two-users"), b"bob")
    b.op("setData", t.p("two-users"), b"alice")
    c.op("setACL", t.p("two-users"), world(ALL))
    a.op("create", t.p("auth-unauth"), b"", [(ALL, "auth", "")])
    t.note("auth scheme when the session has two identities")
    c.auth("digest", "alice:secret")
    c.op("create", t.p("two-ids"), b"", [(ALL, "auth", "")])
    # the "auth" scheme expands to every identity of the connection; ZooKeeper
    # keeps them in a hash set, so the order of the ACL entries is unspecified
    c.op("getACL", t.p("two-ids"), mask="unordered")
    a.op("getACL", t.p("two-ids"))
    t.note("wrong password gives a different identity, not an error")
    d = t.session("D")
    d.auth("digest", "alice:wrong")
    d.op("getData", t.p("alice-only"))
    d.op("whoAmI")
    for s in (a, b, c, d):
        s.close()


@scenario
def exists_without_read(t):
    a = setup(t)
    a.op("create", t.p("wo"), b"", world(W | A))
    # MASK(exists-noread): 3.8 returns the Stat, 3.9 NOAUTH.
    a.op("exists", t.p("wo"), mask="exists-noread")
    a.op("getData", t.p("wo"))
    a.op("exists", t.p("missing"))
    a.op("setACL", t.p("wo"), world(ALL))
    a.op("exists", t.p("wo"))
    a.close()


@scenario
def auth_schemes(t):
    a = t.session("A")
    a.auth("digest", "alice:secret")
    a.auth("digest", "alice:secret", label="auth digest (same again)")
    a.op("whoAmI")
    a.auth("digest", "nocolon", label="auth digest without colon")
    a.op("whoAmI")
    a.auth("digest", "", label="auth digest empty")
    a.op("whoAmI")
    a.auth("ip", "1.2.3.4", label="auth ip")
    a.op("whoAmI")
    a.op("exists", "/zookeeper")
    a.close()
    for scheme in ("nosuch", "world", "super", "sasl", ""):
        s = t.session("U-" + (scheme or "empty"))
        s.auth(scheme, "x:y", label=f"auth scheme {scheme!r}")
        s.expect_closed(f"after auth with scheme {scheme!r}")
        s2 = t.reconnect(s.name, s.name + "'")
        s2.op("exists", "/zookeeper", label="session still usable after AUTHFAILED")
        s2.close()


@scenario
def who_am_i(t):
    a = t.session("A")
    a.op("whoAmI")
    a.auth("digest", "alice:secret")
    a.op("whoAmI")
    a.auth("digest", "bob:hunter2")
    a.op("whoAmI")
    t.note("auth identities belong to the connection, not the session")
    a2 = t.reconnect("A", "A2")
    a2.op("whoAmI")
    a2.close()


# ---------------------------------------------------------------- watches

@scenario
def watch_exists(t):
    a = setup(t)
    b = t.session("B")
    a.op("exists", t.p("x"), watch=True)
    b.op("create", t.p("x"), b"1")
    a.barrier()
    a.op("exists", t.p("x"))
    b.op("setData", t.p("x"), b"2")
    a.barrier()
    a.op("exists", t.p("x"), watch=True)
    a.op("exists", t.p("x"), watch=True)
    b.op("setData", t.p("x"), b"3")
    a.barrier()
    a.op("exists", t.p("x"), watch=True)
    b.op("setData", t.p("x"), b"4", 99)
    a.barrier()
    b.op("delete", t.p("x"))
    a.barrier()
    t.note("own writes: the event comes before the reply")
    a.op("exists", t.p("y"), watch=True)
    a.op("create", t.p("y"), b"")
    a.op("exists", t.p("y"), watch=True)
    a.op("delete", t.p("y"))
    t.note("exists watch on a missing node fires on create of the child? no: only the node")
    a.op("exists", t.p("z"), watch=True)
    b.op("create", t.p("zz"), b"")
    b.op("create", t.p("z"), b"")
    a.barrier()
    a.close()
    b.close()


@scenario
def watch_data_and_children(t):
    a = setup(t)
    b = t.session("B")
    b.op("create", t.p("d"), b"0")
    a.op("getData", t.p("d"), watch=True)
    b.op("setData", t.p("d"), b"1")
    b.op("setData", t.p("d"), b"2")
    a.barrier()
    a.op("getData", t.p("d"), watch=True)
    b.op("delete", t.p("d"))
    a.barrier()
    b.op("create", t.p("P"), b"")
    a.op("getChildren", t.p("P"), watch=True)
    b.op("create", t.p("P", "c1"), b"")
    b.op("create", t.p("P", "c2"), b"")
    a.barrier()
    a.op("getChildren2", t.p("P"), watch=True)
    b.op("setData", t.p("P"), b"data change is not a child change")
    b.op("create", t.p("P", "c1", "grandchild"), b"")
    a.barrier()
    b.op("delete", t.p("P", "c1", "grandchild"))
    b.op("delete", t.p("P", "c1"))
    a.barrier()
    t.note("child watch + data watch on the same node, then the node is deleted")
    a.op("getChildren", t.p("P"), watch=True)
    a.op("getData", t.p("P"), watch=True)
    b.op("delete", t.p("P", "c2"))
    a.barrier()
    a.op("getChildren", t.p("P"), watch=True)
    b.op("delete", t.p("P"))
    a.barrier()
    t.note("child watch only, parent deleted")
    b.op("create", t.p("Q"), b"")
    a.op("getChildren", t.p("Q"), watch=True)
    b.op("delete", t.p("Q"))
    a.barrier()
    t.note("watch not triggered by a failed write")
    b.op("create", t.p("R"), b"")
    a.op("getData", t.p("R"), watch=True)
    a.op("getChildren", t.p("R"), watch=True)
    b.op("setData", t.p("R"), b"", 42)
    b.op("delete", t.p("R"), 42)
    b.op("create", t.p("R"), b"")
    a.barrier()
    t.note("one multi, several events for two sessions")
    c = t.session("C")
    c.op("exists", t.p("R"), watch=True)
    b.op("multi", [mop("setData", t.p("R"), b"m"), mop("create", t.p("R", "k"), b""),
                   mop("create", t.p("S"), b"")])
    a.barrier()
    c.barrier()
    for s in (a, b, c):
        s.close()


@scenario
def watch_event_order(t):
    a = setup(t)
    b = t.session("B")
    for i in range(5):
        b.op("create", t.p(f"n{i}"), b"")
        a.op("getData", t.p(f"n{i}"), watch=True)
    a.op("getChildren", t.root, watch=True)
    b.op("multi", [mop("setData", t.p("n3"), b""), mop("delete", t.p("n1")),
                   mop("setData", t.p("n4"), b""), mop("setData", t.p("n0"), b""),
                   mop("create", t.p("n5"), b"")])
    a.barrier()
    t.note("ephemerals of a closing session: events for each")
    b.op("create", t.p("E"), b"")
    for i in range(3):
        b.op("create", t.p("E", f"e{i}"), b"", flags=z.EPHEMERAL)
        a.op("exists", t.p("E", f"e{i}"), watch=True)
    a.op("getChildren", t.p("E"), watch=True)
    b.close()
    a.barrier(unordered=True)     # ephemerals are deleted in hash-set order
    a.op("getChildren2", t.p("E"))
    a.close()


@scenario
def watch_persistent(t):
    a = setup(t)
    b = t.session("B")
    a.op("addWatch", t.p("pw"), z.ADD_WATCH_PERSISTENT)
    b.op("create", t.p("pw"), b"")
    b.op("setData", t.p("pw"), b"1")
    b.op("setData", t.p("pw"), b"2")
    b.op("create", t.p("pw", "c"), b"")
    b.op("setData", t.p("pw", "c"), b"no event")
    b.op("create", t.p("pw", "c", "gc"), b"")
    b.op("delete", t.p("pw", "c", "gc"))
    b.op("delete", t.p("pw", "c"))
    b.op("delete", t.p("pw"))
    b.op("create", t.p("pw"), b"again")
    a.barrier()
    a.op("checkWatches", t.p("pw"), z.WT_ANY)
    a.op("removeWatches", t.p("pw"), z.WT_ANY)
    a.op("checkWatches", t.p("pw"), z.WT_ANY)
    a.op("removeWatches", t.p("pw"), z.WT_ANY)
    b.op("setData", t.p("pw"), b"after removal")
    a.barrier()
    t.note("addWatch twice, own writes, invalid mode")
    a.op("addWatch", t.p("pw"), z.ADD_WATCH_PERSISTENT)
    a.op("addWatch", t.p("pw"), z.ADD_WATCH_PERSISTENT)
    a.op("setData", t.p("pw"), b"own")
    a.op("addWatch", t.p("pw2"), 7, label="addWatch mode 7")
    a.op("addWatch", t.p("pw3"), -1, label="addWatch mode -1")
    b.op("create", t.p("pw2"), b"")
    b.op("create", t.p("pw3"), b"")
    a.barrier()
    a.close()
    b.close()


@scenario
def watch_persistent_recursive(t):
    a = setup(t)
    b = t.session("B")
    a.op("addWatch", t.p("rw"), z.ADD_WATCH_PERSISTENT_RECURSIVE)
    b.op("create", t.p("rw"), b"")
    b.op("create", t.p("rw", "a"), b"")
    b.op("create", t.p("rw", "a", "b"), b"")
    b.op("setData", t.p("rw", "a", "b"), b"x")
    b.op("setData", t.p("rw"), b"x")
    b.op("create", t.p("rwsibling"), b"not under rw")
    b.op("create", t.p("rw", "a", "s-"), b"", flags=z.EPHEMERAL_SEQUENTIAL)
    b.op("multi", [mop("delete", t.p("rw", "a", "b")), mop("create", t.p("rw", "m"), b"")])
    a.barrier()
    t.note("a second session with a one-shot watch inside the subtree")
    c = t.session("C")
    c.op("getData", t.p("rw", "m"), watch=True)
    b.op("setData", t.p("rw", "m"), b"y")
    a.barrier()
    c.barrier()
    a.op("checkWatches", t.p("rw"), z.WT_ANY)
    a.op("checkWatches", t.p("rw", "a"), z.WT_ANY, label="checkWatches below the recursive root")
    a.op("removeWatches", t.p("rw"), z.WT_ANY)
    b.op("setData", t.p("rw", "m"), b"z")
    a.barrier()
    t.note("recursive watch on a node that is deleted with its ephemeral child (session close)")
    a.op("addWatch", t.p("rw", "a"), z.ADD_WATCH_PERSISTENT_RECURSIVE)
    b.close()
    a.barrier()
    a.close()
    c.close()


@scenario
def watch_check_and_remove(t):
    a = setup(t)
    b = t.session("B")
    a.op("create", t.p("n"), b"")
    a.op("checkWatches", t.p("n"), z.WT_DATA)
    a.op("checkWatches", t.p("n"), z.WT_CHILDREN)
    a.op("checkWatches", t.p("n"), z.WT_ANY)
    a.op("removeWatches", t.p("n"), z.WT_ANY)
    a.op("removeWatches", t.p("missing"), z.WT_DATA)
    a.op("getData", t.p("n"), watch=True)
    a.op("checkWatches", t.p("n"), z.WT_DATA)
    a.op("checkWatches", t.p("n"), z.WT_CHILDREN)
    a.op("checkWatches", t.p("n"), z.WT_ANY)
    # (not compared: checkWatches by a session without a watch on a path that
    # another session watches; 3.8 answers OK, 3.9 NOWATCHER)
    a.op("removeWatches", t.p("n"), z.WT_CHILDREN)
    a.op("removeWatches", t.p("n"), z.WT_DATA)
    a.op("removeWatches", t.p("n"), z.WT_DATA)
    b.op("setData", t.p("n"), b"no event expected")
    a.barrier()
    a.op("getChildren", t.p("n"), watch=True)
    a.op("exists", t.p("n"), watch=True)
    a.op("removeWatches", t.p("n"), z.WT_ANY)
    a.op("checkWatches", t.p("n"), z.WT_ANY)
    b.op("create", t.p("n", "c"), b"")
    a.barrier()
    t.note("exists watch on a missing node is a data watch")
    a.op("exists", t.p("later"), watch=True)
    a.op("checkWatches", t.p("later"), z.WT_DATA)
    a.op("checkWatches", t.p("later"), z.WT_CHILDREN)
    a.op("removeWatches", t.p("later"), z.WT_DATA)
    b.op("create", t.p("later"), b"")
    a.barrier()
    t.note("watcher types outside 1..5")
    a.op("getData", t.p("n"), watch=True)
    a.op("checkWatches", t.p("n"), 0, label="checkWatches type 0")
    a.op("removeWatches", t.p("n"), 9, label="removeWatches type 9")
    a.op("checkWatches", t.p("n"), z.WT_DATA)
    a.close()
    b.close()


@scenario
def set_watches(t):
    a = setup(t)
    m = t.session("M")
    for n in ("d", "c", "x", "same", "samec"):
        m.op("create", t.p(n), b"")
    w = t.session("W")
    rel = w.op("exists", t.root).zxid
    w.op("getData", t.p("d"), watch=True)
    w.drop()
    m.op("setData", t.p("d"), b"changed")
    m.op("create", t.p("e"), b"created")
    m.op("create", t.p("c", "kid"), b"")
    m.op("delete", t.p("x"))
    w2 = t.reconnect("W", "W2")
    t.note("setWatches(101, xid -8) with a relativeZxid older than the changes")
    w2.op("setWatches", rel, [t.p("d"), t.p("x"), t.p("same"), t.p("gone")],
          [t.p("e"), t.p("m"), t.p("same")], [t.p("c"), t.p("samec"), t.p("gonec")],
          label="setWatches rel=before-changes")
    w2.barrier()
    m.op("create", t.p("m"), b"")
    m.op("setData", t.p("same"), b"")
    m.op("create", t.p("samec", "k"), b"")
    w2.barrier()
    t.note("relativeZxid equal to the current zxid: nothing fires at once")
    now = w2.op("exists", t.root).zxid
    w2.op("setWatches", now, [t.p("d")], [t.p("n2")], [t.p("c")],
          label="setWatches rel=current")
    w2.barrier()
    m.op("setData", t.p("d"), b"again")
    m.op("create", t.p("n2"), b"")
    m.op("delete", t.p("c", "kid"))
    w2.barrier()
    t.note("empty lists, and a null list")
    w2.op("setWatches", now, [], [], [], label="setWatches empty")
    body = z.Writer().long(now).int(-1).int(-1).int(-1).bytes()
    w2.raw(z.OPS["setWatches"], body, "setWatches null vectors", xid=z.XID_SET_WATCHES)
    w2.op("exists", t.root)
    w2.close()
    m.close()
    a.close()


@scenario
def set_watches2(t):
    a = setup(t)
    m = t.session("M")
    m.op("create", t.p("d"), b"")
    m.op("create", t.p("tree"), b"")
    w = t.session("W")
    rel = w.op("exists", t.root).zxid
    w.drop()
    m.op("setData", t.p("d"), b"1")
    m.op("create", t.p("tree", "a"), b"")
    w2 = t.reconnect("W", "W2")
    w2.op("setWatches2", rel, [t.p("d")], [t.p("e")], [], [t.p("p")], [t.p("tree")],
          label="setWatches2 rel=before-changes")
    w2.barrier()
    m.op("create", t.p("e"), b"")
    m.op("create", t.p("p"), b"")
    m.op("setData", t.p("p"), b"1")
    m.op("create", t.p("p", "k"), b"")
    m.op("create", t.p("tree", "a", "b"), b"")
    m.op("setData", t.p("tree"), b"x")
    m.op("delete", t.p("tree", "a", "b"))
    w2.barrier()
    w2.op("checkWatches", t.p("p"), z.WT_ANY)
    w2.op("checkWatches", t.p("tree"), z.WT_ANY)
    t.note("setWatches2 on the same connection, plain opcode xid")
    w2.op("setWatches2", rel, [], [], [], [], [t.p("d")], xid=5,
          label="setWatches2 with an ordinary xid")
    m.op("setData", t.p("d"), b"2")
    w2.barrier()
    w2.close()
    m.close()
    a.close()


# ---------------------------------------------------------------- multi

@scenario
def multi_ops(t):
    a = setup(t)
    b = t.session("B")
    a.op("create", t.p("v"), b"")
    t.note("all succeed")
    a.op("multi", [mop("create", t.p("m1"), b"1"), mop("create2", t.p("m2"), b"2"),
                   mop("setData", t.p("m1"), b"1b", 0), mop("check", t.p("m2"), 0),
                   mop("delete", t.p("m2"), 0), mop("create", t.p("s-"), b"",
                                                      flags=z.PERSISTENT_SEQUENTIAL),
                   mop("create", t.p("eph"), b"", flags=z.EPHEMERAL)])
    a.op("getChildren2", t.root)
    t.note("failure in the middle: earlier ops rolled back")
    a.op("multi", [mop("create", t.p("f1"), b""), mop("setData", t.p("v"), b"", 5),
                   mop("create", t.p("f2"), b""), mop("delete", t.p("nope"))])
    a.op("exists", t.p("f1"))
    t.note("failure first / last, two failures")
    a.op("multi", [mop("delete", t.p("nope")), mop("create", t.p("f3"), b"")])
    a.op("multi", [mop("create", t.p("f4"), b""), mop("check", t.p("v"), 3)])
    a.op("multi", [mop("create", t.p("f5"), b""), mop("create", t.p("f5"), b""),
                   mop("delete", t.p("nope"))])
    a.op("multi", [mop("check", t.p("nope"), 0)])
    a.op("multi", [mop("check", t.p("v"), -1)])
    a.op("multi", [])
    t.note("dependent ops inside one multi")
    a.op("multi", [mop("create", t.p("dep"), b""), mop("create", t.p("dep", "kid"), b""),
                   mop("delete", t.p("dep", "kid")), mop("delete", t.p("dep")),
                   mop("create", t.p("dep"), b"again")])
    a.op("getData", t.p("dep"))
    a.op("multi", [mop("delete", t.p("dep")), mop("check", t.p("dep"), -1)])
    t.note("create2, container and TTL inside multi")
    a.op("multi", [mop("create2", t.p("c2"), b"x")])
    a.op("multi", [mop("createContainer", t.p("cont"), b""),
                   mop("createTTL", t.p("ttl"), b"", None, z.PERSISTENT_WITH_TTL, 3600000)])
    a.op("multi", [mop("delete", t.p("cont")), mop("delete", t.p("ttl"))])
    t.note("errors inside multi: ACL, bad args, ephemeral parent, NOTEMPTY")
    a.op("create", t.p("ro"), b"", world(R))
    a.op("multi", [mop("setData", t.p("ro"), b"x")])
    a.op("multi", [mop("create", t.p("bad") + "/", b"")])
    a.op("multi", [mop("create", t.p("acl"), b"", [])])
    a.op("multi", [mop("create", t.p("eph", "k"), b"")])
    a.op("multi", [mop("delete", t.root)])
    t.note("read or unknown ops inside multi")
    a.op("multi", [mop("getData", t.p("v"))])
    a.op("multi", [mop("create", t.p("g1"), b""), mop("getChildren", t.p("v"))])
    a.op("multi", [(z.OPS["sync"], z.enc_path(t.p("v")))], label="multi[sync]")
    a.op("multi", [(77, b"")], label="multi[op 77]")
    a.op("exists", t.p("g1"))
    t.note("watches triggered by a multi, seen by another session")
    b.op("getData", t.p("v"), watch=True)
    b.op("exists", t.p("w1"), watch=True)
    a.op("multi", [mop("setData", t.p("v"), b"w"), mop("create", t.p("w1"), b"")])
    b.barrier()
    b.op("getData", t.p("v"), watch=True)
    a.op("multi", [mop("setData", t.p("v"), b"w"), mop("check", t.p("v"), 99)])
    b.barrier()
    a.op("getChildren2", t.root)
    a.close()
    b.close()


@scenario
def multi_read(t):
    a = setup(t)
    b = t.session("B")
    a.op("create", t.p("x"), b"xdata")
    a.op("create", t.p("x", "k1"), b"")
    a.op("create", t.p("x", "k2"), b"")
    a.op("create", t.p("secret"), b"s", world(W))
    a.op("multiRead", [mop("getData", t.p("x")), mop("getData", t.p("missing")),
                       mop("getChildren", t.p("x")), mop("getChildren", t.p("missing")),
                       mop("getData", t.p("secret")), mop("getChildren", t.p("secret")),
                       mop("getData", t.p("x", "k1"))])
    a.op("multiRead", [])
    a.op("multiRead", [mop("create", t.p("w"), b"")])
    a.op("multiRead", [mop("getData", t.p("x")), mop("exists", t.p("x"))])
    a.op("multiRead", [mop("getChildren2", t.p("x"))])
    a.op("exists", t.p("w"))
    t.note("watches set through multiRead")
    b.op("multiRead", [mop("getData", t.p("x"), True), mop("getChildren", t.p("x"), True)])
    a.op("setData", t.p("x"), b"changed")
    a.op("create", t.p("x", "k3"), b"")
    b.barrier()
    a.close()
    b.close()


@scenario
def check_top_level(t):
    a = setup(t)
    a.op("create", t.p("n"), b"")
    a.op("create", t.p("noread"), b"", world(W))
    a.op("check", t.p("missing"), 0)
    a.op("check", t.p("n"), 5, label="check wrong version")
    a.op("check", t.p("noread"), 0, label="check without READ")
    a.op("check", t.p("noread"), 5, label="check without READ + wrong version")
    a.op("check", t.p("missing") + "/", 0, label="check invalid path")
    a.op("exists", t.p("n"))
    a.close()


@scenario
def check_top_level_success(t):
    a = setup(t)
    a.op("create", t.p("n"), b"")
    # ZooKeeper (3.8 and 3.9) fails to serialise the reply of a successful
    # top-level check (null Stat) and sends nothing; the request still
    # consumes a zxid.
    a.op_maybe_unanswered("check", t.p("n"), 0, mask="check-success")
    a.op_maybe_unanswered("check", t.p("n"), -1, mask="check-success")
    a.op("exists", t.p("n"))
    a.close()


# ---------------------------------------------------------------- misc ops

@scenario
def sync_op(t):
    a = setup(t)
    a.op("create", t.p("noread"), b"", world(0))
    a.op("sync", t.root)
    a.op("sync", "/")
    a.op("sync", t.p("missing"))
    a.op("sync", t.p("noread"))
    a.op("sync", "relative")
    a.op("sync", "")
    a.close()


@scenario
def get_ephemerals(t):
    a = setup(t)
    b = t.session("B")
    a.op("create", t.p("sub"), b"")
    a.op("create", t.p("e1"), b"", flags=z.EPHEMERAL)
    a.op("create", t.p("e2"), b"", flags=z.EPHEMERAL)
    a.op("create", t.p("sub", "e3"), b"", flags=z.EPHEMERAL)
    a.op("create", t.p("q-"), b"", flags=z.EPHEMERAL_SEQUENTIAL)
    b.op("create", t.p("b1"), b"", flags=z.EPHEMERAL)
    for prefix in ("/", t.root, t.p("e"), t.p("sub"), t.p("sub") + "/", t.p("e1"), "",
                   "   ", "nosuch", t.p("zzz")):
        a.op("getEphemerals", prefix)
    b.op("getEphemerals", "/")
    a.op("delete", t.p("e1"))
    a.op("getEphemerals", t.root)
    b.close()
    a.op("getEphemerals", t.root)
    a.close()
    c = t.session("C")
    c.op("getEphemerals", "/")
    c.close()


@scenario
def get_all_children_number(t):
    a = setup(t)
    a.op("getAllChildrenNumber", t.root)
    a.op("create", t.p("a"), b"")
    a.op("create", t.p("a", "b"), b"")
    a.op("create", t.p("a", "b", "c"), b"")
    a.op("create", t.p("a", "b2"), b"")
    a.op("create", t.p("ab"), b"")
    a.op("create", t.p("locked"), b"", world(W | C))
    a.op("create", t.p("locked", "k"), b"")
    for p in (t.root, t.p("a"), t.p("a", "b"), t.p("a", "b", "c"), t.p("missing"),
              t.p("locked"), "/zookeeper"):
        a.op("getAllChildrenNumber", p)
    a.close()


@scenario
def reconfig_standalone(t):
    a = t.session("A")
    a.op("reconfig", None, None, None, -1)
    a.op("reconfig", "server.5=127.0.0.1:1234:1235;2181", None, None, -1,
         label="reconfig joining")
    a.op("reconfig", None, "1", None, -1, label="reconfig leaving")
    a.op("reconfig", None, None, "server.1=127.0.0.1:1234:1235;2181", 0,
         label="reconfig newMembers")
    a.auth("digest", "alice:secret")
    a.op("reconfig", None, None, None, -1, label="reconfig after auth")
    a.op("getData", "/zookeeper/config")
    a.close()


@scenario
def unknown_opcode(t):
    # MASK(unknown-opcode): 3.8 answers UNIMPLEMENTED (or nothing) and closes
    # the connection; Ferrokeeper answers UNIMPLEMENTED and keeps it open.
    # What follows on such a connection is not compared; the session itself
    # must survive in both.
    cases = [("A", 999, "opcode 999"), ("B", 10, "opcode 10 (unassigned)"),
             ("C", -100, "opcode -100"), ("D", 0, "opcode 0 (notification)"),
             ("E", -1, "opcode -1 (error)"), ("F", 2 ** 31 - 1, "opcode 2^31-1")]
    for name, code, label in cases:
        s = t.session(name)
        s.op("exists", "/zookeeper")
        s.raw(code, b"\x00\x00\x00\x01", label, mask="unknown-opcode")
        s.expect_closed("after " + label, mask="unknown-opcode", timeout=1.0)
        s.state = "closed"
    t.note("opcodes that ZooKeeper knows but a client should not send")
    # (deleteContainer (20) is left out: 3.8 reads its body as raw path bytes,
    # 3.9 as a jute record, so the 3.8 oracle cannot judge it)
    k = t.session("K")
    k.raw(z.OPS["createSession"], b"", "createSession on an open session")
    k.op("exists", "/zookeeper")
    k.close()
    for name, _, _ in cases:
        s = t.reconnect(name, name + "'")
        s.op("exists", "/zookeeper", label="session usable after the unknown opcode")
        s.close()


# ---------------------------------------------------------------- default settings

@default_scenario
def ttl_disabled(t):
    """zookeeper.extendedTypesEnabled not set: TTL nodes are refused."""
    a = setup(t)
    a.op("createTTL", t.p("t"), b"", None, z.PERSISTENT_WITH_TTL, 60000)
    a.op("createTTL", t.p("ts"), b"", None, z.PERSISTENT_SEQUENTIAL_WITH_TTL, 60000)
    a.op("createTTL", t.p("t0"), b"", None, z.PERSISTENT_WITH_TTL, 0, label="createTTL ttl=0")
    a.op("createTTL", t.p("nope", "t"), b"", None, z.PERSISTENT_WITH_TTL, 60000,
         label="createTTL under a missing parent")
    a.op("create", t.p("tflag"), b"", flags=z.PERSISTENT_WITH_TTL)
    a.op("multi", [mop("createTTL", t.p("mt"), b"", None, z.PERSISTENT_WITH_TTL, 60000)])
    a.op("createContainer", t.p("c"), b"")
    a.op("delete", t.p("c"))
    a.op("getChildren2", t.root)
    a.close()


@default_scenario
def defaults_smoke(t):
    """A few basics on a server with default settings."""
    a = setup(t)
    b = t.session("B")
    a.op("create2", t.p("n"), b"x", flags=z.EPHEMERAL_SEQUENTIAL)
    b.op("getChildren", t.root, watch=True)
    a.op("create", t.p("m"), b"")
    b.barrier()
    a.op("whoAmI")
    a.op("reconfig", None, None, None, -1)
    a.close()
    b.close()
