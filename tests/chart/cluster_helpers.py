"""The single-node test cluster (tests/chart/k8s/cluster.sh) and the chart on it, shared by
test_cluster.py and tests/bench/cluster.py: up and down, kubectl and helm in it, a release of our
images with a NodePort on 127.0.0.1. Not pytest-specific; a failure raises AssertionError."""

import json
import os
import re
import subprocess
import time

import requests

from contract import VERSIONS
from docker_helpers import NGINX_IMAGE, STANDIN_IMAGE, WEB_IMAGE

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "helm", "omero-web")
CLUSTER = os.path.join(HERE, "k8s", "cluster.sh")
TOOLS = os.path.join(HERE, "tools.sh")
# `or`: an empty REDIS_IMAGE means unset.
REDIS_IMAGE = os.environ.get("REDIS_IMAGE") or VERSIONS["REDIS_IMAGE"]
NAMESPACE = "omero"


def build_tools():
    """Directory with helm, kubeconform and kube-score, built from the Go module proxy (cached)."""
    result = subprocess.run([TOOLS], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def cluster_up(tools):
    """`cluster.sh up` (root) with our images loaded; returns the environment for kubectl and helm
    (`tools`: the directory holding helm). A failed start is taken down again before raising."""
    images = [WEB_IMAGE, NGINX_IMAGE, REDIS_IMAGE, STANDIN_IMAGE]
    up = subprocess.run([CLUSTER, "up", *images], capture_output=True, text=True, timeout=2400)
    if up.returncode != 0:
        cluster_down()
        raise AssertionError(f"cluster up failed:\n{up.stderr[-5000:]}")
    line = subprocess.run([CLUSTER, "env"], capture_output=True, text=True, check=True).stdout
    kubeconfig = re.search(r"KUBECONFIG=(\S+)", line).group(1)
    bin_dir = re.search(r"PATH=([^:]+):", line).group(1)
    return dict(os.environ, KUBECONFIG=kubeconfig, PATH=f"{tools}:{bin_dir}:{os.environ['PATH']}")


def cluster_down():
    """`cluster.sh down`: the completed process (the caller checks its return code)."""
    return subprocess.run([CLUSTER, "down"], capture_output=True, text=True, timeout=300)


def split(image):
    repository, _, tag = image.rpartition(":")
    return repository, tag


def image_values():
    """Our images as built here (no registry): their local names and tags."""
    args = []
    for key, image in (("image.web", WEB_IMAGE), ("image.nginx", NGINX_IMAGE), ("redis.image", REDIS_IMAGE)):
        repository, tag = split(image)
        args += ["--set", f"{key}.repository={repository}", "--set", f"{key}.tag={tag}"]
    return args


def run(env, *command, timeout=300, check=True, stdin=None):
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def kubectl(env, *args, **kwargs):
    return run(env, "kubectl", "--namespace", NAMESPACE, *args, **kwargs)


def helm(env, *args, **kwargs):
    return run(env, "helm", "--namespace", NAMESPACE, *args, **kwargs)


def install(env, release, node_port, *values):
    """`helm upgrade --install --wait` of the chart with our images, its Service a NodePort that
    kube-proxy binds to 127.0.0.1 only; returns the base URL."""
    helm(
        env, "upgrade", "--install", release, CHART, "--create-namespace", "--wait", "--timeout", "5m",
        *image_values(), "--set", "service.type=NodePort", "--set", f"service.nodePort={node_port}", *values,
        timeout=400,
    )  # fmt: skip
    return f"http://127.0.0.1:{node_port}"


def web_pods(env, release, terminating=False):
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=web"
    pods = json.loads(kubectl(env, "get", "pods", "-l", selector, "-o", "json").stdout)["items"]
    return [p["metadata"]["name"] for p in pods if terminating or "deletionTimestamp" not in p["metadata"]]


def wait_until(check, seconds, what):
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result is not None and result is not False:  # a Response is falsy for 4xx/5xx
                return result
        except requests.RequestException as error:
            last = error
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {seconds}s (last error: {last})")
