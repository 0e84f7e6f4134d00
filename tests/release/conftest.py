import os
import sys

import pytest

# The test clusters' helpers (tests/chart/cluster_helpers.py) run the release on Kubernetes too.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chart"))

from cluster_helpers import build_tools  # noqa: E402


@pytest.fixture(scope="session")
def tools():
    """Directory with crane and helm (tests/chart/tools.sh: the Go module proxy, cached)."""
    return build_tools()
