#!/usr/bin/env python3
"""Turn one pytest run of Kazoo's upstream tests into results-<target>.txt.

Usage: summarize.py TARGET JUNIT_XML PYTEST_LOG OUT_TXT

Reads the junit XML when pytest managed to write it; otherwise (run cut short)
falls back to the `-v` lines of the pytest log, so a partial run still gives a
partial result. Prints the closing line "N passed, N failed, N skipped".

Result file format (one test a line, tab separated, sorted by test id):
    STATUS<TAB>test id<TAB>first line of the failure/error/skip message
STATUS is PASSED, FAILED, ERROR (setup/teardown error) or SKIPPED; the test id is
the dotted form kazoo.tests.test_x.Class.test_name. Lines starting with '#' are
comments; one line starts with 'SUMMARY'.
"""
import datetime
import os
import platform
import re
import sys
import xml.etree.ElementTree as ET

ORDER = {"FAILED": 3, "ERROR": 2, "SKIPPED": 1, "PASSED": 0}


def first_line(text, limit=240):
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:limit]
    return ""


def from_junit(path):
    results = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        tid = "%s.%s" % (case.get("classname", ""), case.get("name", ""))
        status, msg = "PASSED", ""
        for child in case:
            tag = child.tag
            if tag == "failure":
                st = "FAILED"
            elif tag == "error":
                st = "ERROR"
            elif tag == "skipped":
                st = "SKIPPED"
            else:
                continue
            text = child.get("message") or child.text or ""
            if ORDER[st] > ORDER[status]:
                status, msg = st, first_line(text)
        prev = results.get(tid)
        if prev is None or ORDER[status] > ORDER[prev[0]]:
            results[tid] = (status, msg)
    return results


LINE = re.compile(r"^(\S+\.py)::(\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b(.*)$")


def nodeid_to_dotted(path, rest):
    i = path.find("kazoo/tests/")
    if i > 0:
        path = path[i:]
    mod = path[:-3].replace("/", ".")
    return mod + "." + rest.replace("::", ".")


def from_log(path):
    results = {}
    with open(path, errors="replace") as fh:
        for line in fh:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            tid = nodeid_to_dotted(m.group(1), m.group(2))
            status = {"XFAIL": "SKIPPED", "XPASS": "PASSED"}.get(m.group(3), m.group(3))
            msg = re.sub(r"\s*\[\s*\d+%\]\s*$", "", m.group(4)).strip(" ()")
            prev = results.get(tid)
            if prev is None or ORDER[status] > ORDER[prev[0]]:
                results[tid] = (status, msg[:240])
    # pull the short failure reasons from the -r summary ("FAILED nodeid - msg")
    short = re.compile(r"^(FAILED|ERROR) (\S+\.py)::(\S+) - (.*)$")
    with open(path, errors="replace") as fh:
        for line in fh:
            m = short.match(line.rstrip("\n"))
            if m:
                tid = nodeid_to_dotted(m.group(2), m.group(3))
                if tid in results and not results[tid][1]:
                    results[tid] = (results[tid][0], m.group(4)[:240])
    return results


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    target, junit, log, out = sys.argv[1:]
    source = "junit"
    results = {}
    if os.path.exists(junit) and os.path.getsize(junit) > 0:
        try:
            results = from_junit(junit)
        except ET.ParseError:
            results = {}
    if not results:
        source = "pytest -v log (junit XML missing: run was cut short?)"
        results = from_log(log) if os.path.exists(log) else {}
    counts = {k: 0 for k in ORDER}
    for status, _ in results.values():
        counts[status] += 1
    try:
        import kazoo
        kz = kazoo.version.__version__ if hasattr(kazoo, "version") else "?"
    except Exception:
        kz = "?"
    with open(out, "w") as fh:
        fh.write("# Kazoo upstream test suite (installed kazoo/tests) against %s\n" % target)
        fh.write("# kazoo %s, python %s, generated %s, source: %s\n"
                 % (kz, platform.python_version(),
                    datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), source))
        fh.write("SUMMARY target=%s passed=%d failed=%d errors=%d skipped=%d total=%d\n"
                 % (target, counts["PASSED"], counts["FAILED"], counts["ERROR"],
                    counts["SKIPPED"], len(results)))
        for tid in sorted(results):
            status, msg = results[tid]
            fh.write("%s\t%s\t%s\n" % (status, tid, msg.replace("\t", " ")))
    print("kazoo-upstream %s: results in %s (from %s)" % (target, out, source))
    for tid in sorted(results):
        status, msg = results[tid]
        if status in ("FAILED", "ERROR"):
            print("  %-6s %s: %s" % (status, tid, msg[:160]))
    # the plain closing line
    print("%d passed, %d failed, %d skipped" % (
        counts["PASSED"], counts["FAILED"] + counts["ERROR"], counts["SKIPPED"]))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
