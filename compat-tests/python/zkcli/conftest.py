"""Fixtures of the zkCli scenario test (test_zkcli.py).

Environment:
  ZKCLI_TARGETS         candidates compared with the reference ZooKeeper 3.8
                        (default "zookeeper,ferrokeeper"; "zookeeper" is a second,
                        separate ZooKeeper: ZK vs ZK proves the normaliser stable)
  FERROKEEPER_REQUIRED  1: fail (not skip) when the ferrokeeper binary is missing
                        or does not start
  ZKCLI_DUMP            directory: write raw and normalised transcripts there
  ZKCLI_CLASSPATH       classpath of zkCli (default: Debian's jars, see zkcli_runner)
  FERROKEEPER_BIN       see zkharness.py
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from zkcli_suite import References  # noqa: E402


@pytest.fixture(scope="session")
def references():
    return References()
