"""Damaged transaction logs.

A torn tail (a record that was being written when the machine stopped) or
garbage after the last record is not acknowledged data: Ferrokeeper must
start, keep everything acknowledged, accept new writes and keep those across
another restart. Damage to a record that valid records follow is corruption
of acknowledged data: Ferrokeeper must refuse to start, naming the file and
the offset, and must leave the file as it was, so that restoring the file
brings everything back.
"""
import os
import random
import re
import time
import zlib

import pytest

from dhelpers import (connect, dump_tree, encode_record, parse_segment, run_tool, tree_diff,
                      with_zxid, write_workload)

pytestmark = pytest.mark.timeout(120)

TAIL_PROPS = {"zookeeper.snapCount": "150", "zookeeper.preAllocSize": "64"}


def last_segment(srv):
    segs = srv.segments()
    assert segs, "no log segment"
    return segs[-1][1]


def written_end(path):
    """The end of the written data, by walking the records; cross-checked
    against the last non-zero byte."""
    seg = parse_segment(path)
    assert seg.bad is None, f"{path}: bad record at {seg.bad} before any damage"
    assert seg.records, f"{path}: no records"
    assert seg.end >= seg.last_nonzero + 1, \
        f"{path}: non-zero bytes at {seg.last_nonzero} after the last record (ends at {seg.end})"
    return seg


def names_offset(out, offset):
    return re.search(rf"offset\D{{0,4}}{offset}\b", out) is not None


def patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def check_restart_keeps(srv, before, what):
    after = dump_tree(srv.port)
    diff = tree_diff(before, after)
    assert not diff, f"{what}: the recovered tree differs from the acknowledged one: {diff}"
    return after


def prepare(make_server, seed):
    srv = make_server(props=TAIL_PROPS)
    write_workload(srv.port, 400, seed=seed)
    before = dump_tree(srv.port)
    srv.kill()
    seg = written_end(last_segment(srv))
    return srv, before, seg


def tail_bytes(kind, seg, rng):
    """Bytes a crash could leave after the last complete record."""
    last = seg.records[-1]
    nxt = encode_record(with_zxid(last.payload, last.zxid + 1))
    if kind == "half_record":
        return nxt[:8 + (len(nxt) - 8) // 2]
    if kind == "header_only":
        return nxt[:8]
    if kind == "partial_header":
        return nxt[:6]
    if kind == "bad_crc":
        return nxt[:4] + bytes([nxt[4] ^ 0xFF]) + nxt[5:]
    if kind == "random_small":
        return bytes([rng.randrange(1, 256)]) + rng.randbytes(36)
    if kind == "random_4k":
        return bytes([rng.randrange(1, 256)]) + rng.randbytes(4095)
    if kind == "stale_copy":
        # An intact record from earlier (a stale zxid) where the next was due.
        return encode_record(seg.records[len(seg.records) // 2].payload)
    raise AssertionError(kind)


def damaged_tail_roundtrip(make_server, kind, seed):
    rng = random.Random(seed)
    srv, before, seg = prepare(make_server, seed)
    junk = tail_bytes(kind, seg, rng)
    patch(seg.path, seg.end, junk)
    assert parse_segment(seg.path).bad == seg.end

    srv.start()
    check_restart_keeps(srv, before, f"{kind} tail")
    # The damage is gone from the file: the data ends cleanly after the
    # last good record (or the records written since).
    fixed = parse_segment(last_segment(srv))
    assert fixed.bad is None, f"{kind}: bad record at {fixed.bad} still in {fixed.path} after recovery"
    rc, out, err = run_tool(["log", "dump", last_segment(srv)])
    assert rc == 0 and "bad record" not in out, (rc, out[-500:], err[-500:])

    # New writes work and survive another (hard) restart.
    c = connect(srv.port)
    for i in range(50):
        r = c.call("create", f"/after-{kind}-{i}", f"new {i}".encode())
        assert r.err == 0, r
    r = c.call("setData", "/wl/last", b"changed after recovery", 0)
    assert r.err == 0, r
    c.close_session()
    expected = dump_tree(srv.port)
    srv.restart("kill")
    check_restart_keeps(srv, expected, f"{kind} tail, second restart")
    seg2 = parse_segment(last_segment(srv))
    assert seg2.bad is None
    assert seg2.records[-1].zxid >= seg.records[-1].zxid + 50


@pytest.mark.parametrize("kind", ["half_record", "header_only", "partial_header", "bad_crc"])
def test_torn_tail(make_server, kind):
    damaged_tail_roundtrip(make_server, kind, seed=zlib.crc32(kind.encode()))


@pytest.mark.parametrize("kind", ["random_small", "random_4k", "stale_copy"])
def test_garbage_tail(make_server, kind):
    damaged_tail_roundtrip(make_server, kind, seed=zlib.crc32(kind.encode()))


# ------------------------------------------------------------------ corruption


def corrupt(kind, b, rec):
    b = bytearray(b)
    if kind == "payload_byte":
        off = rec.offset + 8 + 8 + (rec.length - 8) // 2     # inside the payload, after the zxid
    elif kind == "crc_byte":
        off = rec.offset + 5
    elif kind == "zxid_byte":
        off = rec.offset + 8 + 7
    elif kind == "length_low":
        off = rec.offset + 3
    elif kind == "length_high":
        off = rec.offset + 1
    else:
        raise AssertionError(kind)
    b[off] ^= 0x01 if kind.startswith("length") else 0x5A
    return bytes(b)


def refused_then_restored(make_server, damage, what):
    srv = make_server()       # default snapCount: the whole history is in the log
    write_workload(srv.port, 300, seed=7)
    before = dump_tree(srv.port)
    srv.kill()
    path = last_segment(srv)
    seg = written_end(path)
    assert len(seg.records) > 100
    rec = seg.records[len(seg.records) // 2]
    with open(path, "rb") as f:
        original = f.read()
    damaged = damage(original, rec)
    with open(path, "wb") as f:
        f.write(damaged)
    t0 = time.monotonic()
    rc, out = srv.start_expect_exit(timeout=15)
    took = time.monotonic() - t0
    if rc is None:
        srv.start()
        lost = tree_diff(before, dump_tree(srv.port), limit=8)
        raise AssertionError(f"{what}: the server started and served on a corrupt log (record at offset "
                             f"{rec.offset} of {os.path.basename(path)}, zxid 0x{rec.zxid:x}, of "
                             f"{len(seg.records)} records); acknowledged state lost: {lost}\n{out[-1500:]}")
    assert rc != 0, f"{what}: the server exited 0:\n{out[-2000:]}"
    assert took < 10, f"{what}: refusing took {took:.1f}s"
    name = os.path.basename(path)
    assert name in out, f"{what}: the output does not name {name}:\n{out[-2000:]}"
    assert names_offset(out, rec.offset), f"{what}: the output does not name offset {rec.offset}:\n{out[-2000:]}"
    with open(path, "rb") as f:
        assert f.read() == damaged, f"{what}: the refused start changed {name}"
    # Restored, it starts and has everything.
    with open(path, "wb") as f:
        f.write(original)
    srv.start()
    check_restart_keeps(srv, before, f"{what}, restored")
    return out


@pytest.mark.parametrize("kind", ["payload_byte", "crc_byte", "zxid_byte", "length_low", "length_high"])
def test_corruption_refused(make_server, kind):
    refused_then_restored(make_server, lambda b, rec: corrupt(kind, b, rec), f"flipped {kind}")


def test_zeroed_record_refused(make_server):
    """A record in the middle whose header reads as zeros (the end-of-data
    marker) while valid records follow is damage too, not the end of the
    log: starting would silently drop every later acknowledged txn."""
    def zero_header(b, rec):
        return b[:rec.offset] + b"\x00" * 8 + b[rec.offset + 8:]
    refused_then_restored(make_server, zero_header, "zeroed record header")


def test_corrupt_older_segment_refused(make_server):
    """Corruption in a segment that is not the last one is never a torn
    tail, even at that segment's end."""
    srv = make_server(props={"zookeeper.preAllocSize": "64"})
    c = connect(srv.port)
    big = os.urandom(1000 * 1000)
    r = c.call("create", "/big", b"")
    assert r.err == 0, r
    for i in range(70):                      # > 64 MiB: the log rolls once
        r = c.call("setData", "/big", big[i:] + big[:i], i)
        assert r.err == 0, r
    for i in range(20):
        assert c.call("create", f"/small{i}", b"x").err == 0
    c.close_session()
    before = dump_tree(srv.port)
    srv.kill()
    segs = srv.segments()
    assert len(segs) >= 2, f"expected a roll past 64 MiB, segments: {segs}"
    path = segs[0][1]
    seg = parse_segment(path, verify_crc=False)
    rec = seg.records[-1]                    # the last record of the older segment
    with open(path, "rb") as f:
        original = f.read()
    damaged = corrupt("payload_byte", original, rec)
    with open(path, "wb") as f:
        f.write(damaged)
    rc, out = srv.start_expect_exit(timeout=20)
    assert rc not in (None, 0), f"started on a corrupt older segment (rc {rc}):\n{out[-2000:]}"
    assert os.path.basename(path) in out and names_offset(out, rec.offset), out[-2000:]
    with open(path, "wb") as f:
        f.write(original)
    srv.start()
    check_restart_keeps(srv, before, "older segment restored")


@pytest.mark.parametrize("kind", ["empty", "partial_header", "header_unallocated", "header_only"])
def test_crash_during_segment_roll(make_server, kind):
    """A crash while a new segment is being created leaves it empty, with a
    partial header, or with a header and no records. It can hold nothing
    acknowledged (a segment is created, written and synced before any record
    goes into it), so this is a torn tail too: the server must start with
    everything acknowledged and keep working."""
    srv = make_server(props=TAIL_PROPS)
    write_workload(srv.port, 200, seed=3)
    before = dump_tree(srv.port)
    srv.kill()
    seg = written_end(last_segment(srv))
    nxt = seg.records[-1].zxid + 1
    header = b"FKLG" + (1).to_bytes(4, "big") + nxt.to_bytes(8, "big")
    content = {"empty": b"", "partial_header": header[:7], "header_unallocated": header,
               "header_only": header + b"\x00" * (64 * 1024 - 16)}[kind]
    new_path = os.path.join(srv.log_dir, f"log.{nxt:016x}")
    with open(new_path, "wb") as f:
        f.write(content)
    rc, out = srv.start_expect_exit(timeout=15)
    assert rc is None, (f"{kind}: the server refused to start (rc {rc}) because of a segment that a crash during "
                        f"its creation left {len(content)} bytes long:\n{out[-1500:]}")
    srv.start()
    check_restart_keeps(srv, before, f"{kind} new segment")
    c = connect(srv.port)
    for i in range(20):
        assert c.call("create", f"/after-roll-{i}", b"x").err == 0
    c.close_session()
    expected = dump_tree(srv.port)
    srv.restart("kill")
    check_restart_keeps(srv, expected, f"{kind} new segment, second restart")
