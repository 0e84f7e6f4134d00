"""omeroweb/public_cache.py with Django: the cases of public_cache_cases.py, each in a Python of its own."""

import os
import re
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "public_cache_cases.py")
with open(SCRIPT) as handle:  # not imported here: importing it sets up Django in this Python
    CASES = re.findall(r"^def (test_\w+)\(", handle.read(), re.M)


@pytest.mark.parametrize("case", CASES)
def test_public_cache_middleware(case):
    result = subprocess.run([sys.executable, SCRIPT, case], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
