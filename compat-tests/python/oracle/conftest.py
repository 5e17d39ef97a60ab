"""pytest fixtures of the differential oracle; see oracleservers.py."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from oracleservers import Servers  # noqa: E402


@pytest.fixture(scope="module")
def servers():
    s = Servers()
    yield s
    s.close()
