"""ACLs: world, digest, auth, ip, super user, masking, failures."""
import pytest
from kazoo.exceptions import AuthFailedError, InvalidACLError, KazooException, NoAuthError, NoNodeError
from kazoo.security import (
    ACL,
    ANYONE_ID_UNSAFE,
    OPEN_ACL_UNSAFE,
    Id,
    Permissions,
    make_digest_acl,
    make_digest_acl_credential,
)

P = Permissions


def acl_tuples(acls):
    return [(a.perms, a.id.scheme, a.id.id) for a in acls]


def no_auth(fn, *args, **kwargs):
    with pytest.raises(NoAuthError):
        fn(*args, **kwargs)


def test_default_acl_is_world_anyone(zk, base):
    zk.create(base + "/a")
    acl, stat = zk.get_acls(base + "/a")
    assert acl_tuples(acl) == [(31, "world", "anyone")]
    assert stat == zk.exists(base + "/a")


def test_digest_acl_owner_and_stranger(zk, base, client_factory):
    alice = client_factory(auth_data=[("digest", "alice:secret")])
    stranger = client_factory()
    node = base + "/n"
    alice.create(node, b"d", acl=[make_digest_acl("alice", "secret", all=True)])
    alice.create(node + "/child")

    acl, _ = alice.get_acls(node)
    assert acl_tuples(acl) == [(31, "digest", make_digest_acl_credential("alice", "secret"))]
    assert alice.get(node)[0] == b"d"
    alice.set(node, b"e")

    no_auth(stranger.get, node)
    no_auth(stranger.get_children, node)
    no_auth(stranger.set, node, b"x")
    no_auth(stranger.create, node + "/c2")
    no_auth(stranger.delete, node + "/child")        # DELETE is checked on the parent
    no_auth(stranger.get_acls, node)
    no_auth(stranger.set_acls, node, OPEN_ACL_UNSAFE)
    assert alice.get(node)[0] == b"e"

    # a late add_auth gives the stranger the same rights
    stranger.add_auth("digest", "alice:secret")
    assert stranger.get(node)[0] == b"e"
    stranger.delete(node + "/child")
    stranger.set_acls(node, OPEN_ACL_UNSAFE)
    alice.delete(node)


def test_wrong_digest_password_is_denied(zk, base, client_factory):
    alice = client_factory(auth_data=[("digest", "alice:secret")])
    alice.create(base + "/n", acl=[make_digest_acl("alice", "secret", all=True)])
    mallory = client_factory(auth_data=[("digest", "alice:wrong")])
    no_auth(mallory.get, base + "/n")
    alice.delete(base + "/n")


def test_delete_needs_parent_permission_only(zk, base):
    zk.create(base + "/p", acl=[ACL(P.READ | P.CREATE | P.ADMIN, ANYONE_ID_UNSAFE)])
    zk.create(base + "/p/c", acl=[ACL(P.ALL, ANYONE_ID_UNSAFE)])
    no_auth(zk.delete, base + "/p/c")
    zk.set_acls(base + "/p", [ACL(P.DELETE | P.ADMIN, ANYONE_ID_UNSAFE)])
    # the child itself grants nothing, yet it can be deleted
    zk.set_acls(base + "/p/c", [ACL(P.READ, Id("ip", "10.9.9.9"))])
    zk.delete(base + "/p/c")
    assert zk.exists(base + "/p/c") is None
    zk.set_acls(base + "/p", OPEN_ACL_UNSAFE)


def test_delete_checks_parent_acl_before_existence(zk, base):
    zk.create(base + "/far", acl=[ACL(P.ALL, Id("ip", "10.1.2.3"))])
    # the child does not exist, but the missing DELETE permission is reported first
    no_auth(zk.delete, base + "/far/none")
    zk.create(base + "/open")
    with pytest.raises(NoNodeError):
        zk.delete(base + "/open/none")


def test_single_permission_bits(zk, base):
    zk.create(base + "/r", b"r", acl=[ACL(P.READ, ANYONE_ID_UNSAFE)])
    assert zk.get(base + "/r")[0] == b"r"
    assert zk.get_children(base + "/r") == []
    no_auth(zk.set, base + "/r", b"x")
    no_auth(zk.create, base + "/r/c")
    no_auth(zk.set_acls, base + "/r", OPEN_ACL_UNSAFE)

    zk.create(base + "/w", b"w", acl=[ACL(P.WRITE, ANYONE_ID_UNSAFE)])
    zk.set(base + "/w", b"written")
    no_auth(zk.get, base + "/w")
    no_auth(zk.get_children, base + "/w")
    no_auth(zk.get_acls, base + "/w")       # needs READ or ADMIN

    zk.create(base + "/c", acl=[ACL(P.CREATE, ANYONE_ID_UNSAFE)])
    zk.create(base + "/c/kid")
    no_auth(zk.delete, base + "/c/kid")

    zk.create(base + "/adm", acl=[ACL(P.ADMIN, ANYONE_ID_UNSAFE)])
    acl, _ = zk.get_acls(base + "/adm")
    assert acl_tuples(acl) == [(P.ADMIN, "world", "anyone")]
    zk.set_acls(base + "/adm", OPEN_ACL_UNSAFE)
    assert zk.get(base + "/adm")[0] == b""


def test_auth_scheme_uses_creator_identity(zk, base, client_factory):
    alice = client_factory(auth_data=[("digest", "alice:pw")])
    alice.create(base + "/a", acl=[ACL(P.ALL, Id("auth", ""))])
    acl, _ = alice.get_acls(base + "/a")
    assert acl_tuples(acl) == [(31, "digest", make_digest_acl_credential("alice", "pw"))]
    no_auth(zk.get, base + "/a")
    # without any authenticated identity the auth scheme is invalid
    with pytest.raises(InvalidACLError):
        zk.create(base + "/b", acl=[ACL(P.ALL, Id("auth", ""))])
    assert zk.exists(base + "/b") is None
    alice.delete(base + "/a")


def test_auth_scheme_with_two_identities(zk, base, client_factory):
    both = client_factory(auth_data=[("digest", "u1:p1"), ("digest", "u2:p2")])
    both.create(base + "/a", acl=[ACL(P.READ | P.WRITE | P.DELETE | P.ADMIN, Id("auth", ""))])
    acl, _ = both.get_acls(base + "/a")
    assert sorted(acl_tuples(acl)) == sorted([
        (P.READ | P.WRITE | P.DELETE | P.ADMIN, "digest", make_digest_acl_credential("u1", "p1")),
        (P.READ | P.WRITE | P.DELETE | P.ADMIN, "digest", make_digest_acl_credential("u2", "p2")),
    ])
    u2 = client_factory(auth_data=[("digest", "u2:p2")])
    assert u2.get(base + "/a")[0] == b""
    both.delete(base + "/a")


def test_ip_acl(zk, base):
    zk.create(base + "/mine", b"1", acl=[ACL(P.ALL, Id("ip", "127.0.0.1"))])
    assert zk.get(base + "/mine")[0] == b"1"
    zk.create(base + "/net", b"2", acl=[ACL(P.ALL, Id("ip", "127.0.0.0/8"))])
    assert zk.get(base + "/net")[0] == b"2"
    zk.create(base + "/far", b"3", acl=[ACL(P.ALL, Id("ip", "10.1.2.3"))])
    no_auth(zk.get, base + "/far")
    zk.create(base + "/farnet", b"4", acl=[ACL(P.ALL, Id("ip", "10.0.0.0/8"))])
    no_auth(zk.get, base + "/farnet")


def test_get_acl_masks_digest_without_admin(zk, base, client_factory):
    alice = client_factory(auth_data=[("digest", "alice:pw")])
    alice.create(base + "/m", acl=[make_digest_acl("alice", "pw", all=True),
                                   ACL(P.READ, ANYONE_ID_UNSAFE)])
    acl, _ = zk.get_acls(base + "/m")
    assert acl_tuples(acl) == [(31, "digest", "alice:x"), (P.READ, "world", "anyone")]
    acl, _ = alice.get_acls(base + "/m")
    assert acl_tuples(acl) == [(31, "digest", make_digest_acl_credential("alice", "pw")),
                               (P.READ, "world", "anyone")]
    alice.delete(base + "/m")


def test_invalid_acls(zk, base):
    bad = [
        [ACL(P.ALL, Id("digest", "nocolon"))],
        [ACL(P.ALL, Id("ip", "not-an-ip"))],
        [ACL(P.ALL, Id("nosuchscheme", "x"))],
        [ACL(P.ALL, Id("world", "somebody"))],
        [ACL(P.ALL, Id("auth", ""))],  # no identity on this session
    ]
    for acl in bad:
        with pytest.raises(InvalidACLError):
            zk.create(base + "/bad", acl=acl)
    assert zk.exists(base + "/bad") is None
    zk.create(base + "/ok")
    for acl in bad:
        with pytest.raises(InvalidACLError):
            zk.set_acls(base + "/ok", acl)
    assert zk.exists(base + "/ok").aversion == 0


@pytest.mark.zk39("3.8 answers exists() without checking READ permission")
def test_exists_checks_read_acl(zk, base, client_factory):
    alice = client_factory(auth_data=[("digest", "alice:pw")])
    alice.create(base + "/secret", acl=[make_digest_acl("alice", "pw", all=True)])
    assert alice.exists(base + "/secret") is not None
    try:
        with pytest.raises(NoAuthError):
            zk.exists(base + "/secret")
        # a missing node is still just "no node"
        assert zk.exists(base + "/secret/missing") is None
    finally:
        alice.delete(base + "/secret")


def test_super_digest_user(server_factory, client_factory):
    srv = server_factory(props={
        "zookeeper.DigestAuthenticationProvider.superDigest":
            make_digest_acl_credential("super", "topsecret")})
    alice = client_factory(server=srv, auth_data=[("digest", "alice:pw")])
    alice.create("/private", b"mine", acl=[make_digest_acl("alice", "pw", all=True)])
    alice.create("/private/kid")

    nobody = client_factory(server=srv)
    no_auth(nobody.get, "/private")
    wrong = client_factory(server=srv, auth_data=[("digest", "super:guess")])
    no_auth(wrong.get, "/private")

    root = client_factory(server=srv, auth_data=[("digest", "super:topsecret")])
    assert root.get("/private")[0] == b"mine"
    acl, _ = root.get_acls("/private")
    assert acl_tuples(acl) == [(31, "digest", make_digest_acl_credential("alice", "pw"))]
    root.set("/private", b"seized")
    root.delete("/private/kid")
    root.set_acls("/private", OPEN_ACL_UNSAFE)
    assert nobody.get("/private")[0] == b"seized"


def test_add_auth_unknown_scheme_fails(zk, client_factory):
    c = client_factory()
    with pytest.raises(AuthFailedError):
        c.add_auth("nosuchscheme", "whatever")
    # the server closed the connection; the client can no longer work
    with pytest.raises(KazooException):
        c.exists("/")
    assert zk.exists("/") is not None


def test_auth_failure_closes_connection_raw(zk_server, zkx):
    raw = zkx.RawSession(zk_server.port)
    try:
        body = zkx.j_int(0) + zkx.j_string("nosuchscheme") + zkx.j_buffer(b"x")
        zxid, err, _, _ = raw.call(zkx.OP_AUTH, body, xid=-4)
        assert err == -115  # AUTHFAILED
        with pytest.raises((EOFError, ConnectionResetError)):
            raw._recv()
    finally:
        raw.drop()


def test_digest_auth_on_raw_connection_succeeds(zk_server, zkx):
    raw = zkx.RawSession(zk_server.port)
    try:
        body = zkx.j_int(0) + zkx.j_string("digest") + zkx.j_buffer(b"bob:pw")
        _, err, _, _ = raw.call(zkx.OP_AUTH, body, xid=-4)
        assert err == 0
        # the connection is still usable
        _, err, _, _ = raw.call(3, zkx.j_string("/") + b"\x00")
        assert err == 0
    finally:
        raw.close_session()
