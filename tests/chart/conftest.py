import os
import subprocess

import pytest
import yaml

from cluster_helpers import build_tools
from contract import KUBERNETES_VERSION

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "helm", "omero-web")


@pytest.fixture(scope="session")
def tools():
    """Directory with helm, kubeconform and kube-score, built from the Go module proxy (cached)."""
    return build_tools()


def helm_runner(tools, binary):
    def run(*args, check=True):
        result = subprocess.run(
            [os.path.join(tools, binary), *args], capture_output=True, text=True, timeout=120, cwd=REPO
        )
        if check:
            assert result.returncode == 0, f"{binary} {' '.join(args)}:\n{result.stderr}"
        return result

    return run


@pytest.fixture(scope="session")
def helm(tools):
    """Helm 3 (tests/chart/tools.sh), run in the repository."""
    return helm_runner(tools, "helm3")


@pytest.fixture(scope="session")
def helm4(tools):
    """Helm 4, the same way."""
    return helm_runner(tools, "helm4")


@pytest.fixture(scope="session")
def render(helm):
    """Rendered objects of the chart: render("values-file-or-None", "--set", ..., release="r")."""

    def run(values=None, *args, release="omero-web", namespace="omero"):
        command = ["template", release, CHART, "--namespace", namespace, "--kube-version", KUBERNETES_VERSION]
        if values:
            command += ["-f", os.path.join(CHART, "ci", values)]
        out = helm(*command, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    return run
