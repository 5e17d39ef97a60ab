"""A dataDir holding only ZooKeeper's files (version-2/...) is imported when
Ferrokeeper first starts on it; later starts use Ferrokeeper's own files."""
import os
import re

import pytest

import miglib
from miglib import diff_reads, full_read, super_client, zxid_of

OWN_FILE = re.compile(r"(snapshot|log)\.[0-9a-f]{16}$")


@pytest.mark.timeout(90)
def test_first_start_auto_import(zk_capture):
    cap = zk_capture
    fk = miglib.new_fk()
    clients = []
    try:
        miglib.copy_v2(cap.data_dir, fk.data_dir)
        v2 = os.path.join(fk.data_dir, "version-2")
        zk_files = miglib.files_digest(v2)

        # First start: imports, says so, serves ZooKeeper's tree.
        fk.start()
        log1 = miglib.server_log_since(fk, 0)
        lines = [ln for ln in log1.splitlines() if re.search(r"import", ln, re.I)]
        assert lines, f"no log line about the import:\n{log1}"
        assert any(re.search(r"zookeeper", ln, re.I) for ln in lines), lines
        assert any(f"0x{cap.last_zxid:x}" in ln for ln in lines), \
            f"no import line names the imported zxid 0x{cap.last_zxid:x}: {lines}"
        assert zxid_of(fk.port) == cap.last_zxid
        s = super_client(fk)
        clients.append(s)
        diffs = diff_reads(cap.read, full_read(s.kz), "ZooKeeper vs Ferrokeeper (auto import)")
        assert not diffs, "\n".join(diffs)

        # A change, then a restart.
        s.kz.create("/after-import", b"made after the import")
        s.kz.set("/app", b"changed after the import")
        s.kz.delete("/app/binary")
        changed = full_read(s.kz)
        s.close()
        last = zxid_of(fk.port)
        fk.stop()
        own = [n for n in os.listdir(fk.data_dir) if OWN_FILE.match(n)]
        assert own, f"no Ferrokeeper files in dataDir: {os.listdir(fk.data_dir)}"
        assert miglib.files_digest(v2) == zk_files, "ZooKeeper's files were modified"

        offset = miglib.log_size(fk)
        fk.start()
        log2 = miglib.server_log_since(fk, offset)
        again = [ln for ln in log2.splitlines() if re.search(r"import", ln, re.I)]
        assert not again, f"second start imported again: {again}"
        assert zxid_of(fk.port) == last
        s = super_client(fk)
        clients.append(s)
        diffs = diff_reads(changed, full_read(s.kz), "before vs after restart")
        assert not diffs, "the restart did not serve Ferrokeeper's own state:\n" + "\n".join(diffs)
        s.close()
        fk.stop()
        assert miglib.files_digest(v2) == zk_files, "ZooKeeper's files were modified"
    finally:
        for c in clients:
            c.close()
        fk.close()
