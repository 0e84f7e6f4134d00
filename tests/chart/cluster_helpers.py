"""The single-node test clusters (tests/chart/k8s/cluster.sh: the oldest and the newest Kubernetes
the chart supports, one at a time) and the chart on them, shared by test_cluster.py and
tests/bench/cluster.py: up and down, kubectl and helm in it, a release of our images with a NodePort
on 127.0.0.1, the release's pods, a change (upgrade, rollback) rolled under load. Not
pytest-specific; a failure raises AssertionError."""

import contextlib
import json
import os
import re
import socket
import subprocess
import time

import requests

from contract import VERSIONS
from docker_helpers import NGINX_IMAGE, STANDIN_IMAGE, WEB_IMAGE, docker, run_tool
from load import Loop

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "helm", "omero-web")
CLUSTER = os.path.join(HERE, "k8s", "cluster.sh")
TOOLS = os.path.join(HERE, "tools.sh")
# `or`: an empty REDIS_IMAGE means unset.
REDIS_IMAGE = os.environ.get("REDIS_IMAGE") or VERSIONS["REDIS_IMAGE"]
NAMESPACE = "omero"
# Which Helm runs the chart on which cluster: each major installs, upgrades, rolls back and tests.
CLUSTERS = {"oldest": "helm3", "newest": "helm4"}


def build_tools():
    """Directory with helm, kubeconform and kube-score, built from the Go module proxy (cached)."""
    result = subprocess.run([TOOLS], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def cluster_up(tools, which="newest", images=None, registry=""):
    """`cluster.sh up` (root) of the oldest or newest test Kubernetes with `images` loaded (default:
    ours, Redis and the stand-in) and containerd pulling from `registry` (127.0.0.1:PORT, plain
    HTTP), if given; returns the environment for kubectl and helm (`tools`: the directory holding
    helm3 and helm4; OWK8S_HELM names the one `helm()` runs, CLUSTERS[which]). A failed start is
    taken down again before raising."""
    images = [WEB_IMAGE, NGINX_IMAGE, REDIS_IMAGE, STANDIN_IMAGE] if images is None else images
    env = dict(os.environ, KUBERNETES=which, OWK8S_REGISTRY=registry)
    up = subprocess.run([CLUSTER, "up", *images], capture_output=True, text=True, timeout=2400, env=env)
    if up.returncode != 0:
        cluster_down()
        raise AssertionError(f"cluster up ({which}) failed:\n{up.stderr[-5000:]}")
    line = run_tool([CLUSTER, "env"], timeout=60).stdout
    kubeconfig = re.search(r"KUBECONFIG=(\S+)", line).group(1)
    bin_dir = re.search(r"PATH=([^:]+):", line).group(1)
    path = f"{tools}:{bin_dir}:{os.environ['PATH']}"
    return dict(env, KUBECONFIG=kubeconfig, PATH=path, OWK8S_HELM=CLUSTERS[which])


def cluster_down():
    """`cluster.sh down`: the completed process (the caller checks its return code)."""
    return subprocess.run([CLUSTER, "down"], capture_output=True, text=True, timeout=300)


def sysctls():
    names = ["vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops", "net.ipv4.conf.all.route_localnet"]
    return subprocess.run(["sysctl", *names], capture_output=True, text=True).stdout


@contextlib.contextmanager
def restricted_cluster(tools, which, **up):
    """A test cluster (cluster_up(tools, which, **up)) with the namespace NAMESPACE enforcing the
    `restricted` Pod Security Standard; afterwards taken down, and the machine checked to be as it
    was: Docker still runs containers, no sysctl, interface or iptables chain of the cluster left."""
    sysctls_before = sysctls()
    env = cluster_up(tools, which, **up)
    try:
        kubectl(env, "create", "namespace", NAMESPACE)
        for mode in ("enforce", "warn"):
            kubectl(env, "label", "namespace", NAMESPACE, f"pod-security.kubernetes.io/{mode}=restricted")
        yield env
    finally:
        down = cluster_down()
        assert down.returncode == 0, down.stderr[-3000:]
        # The machine as it was: Docker still runs containers and publishes ports.
        assert docker("run", "--rm", WEB_IMAGE, "check", check=False).returncode == 0
        assert sysctls() == sysctls_before  # kubelet and kube-proxy set some; put back
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        assert "owk8s" not in links, links
        for tables in ("iptables-save", "ip6tables-save"):
            assert "KUBE-" not in subprocess.run([tables], capture_output=True, text=True).stdout, tables


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
    return run(env, env["OWK8S_HELM"], "--namespace", NAMESPACE, *args, **kwargs)


def install(env, release, node_port, *values, chart=CHART):
    """`helm upgrade --install --wait` of the chart with our images, its Service a NodePort that
    kube-proxy binds to 127.0.0.1 only; returns the base URL once that port accepts connections
    (kube-proxy programs a new NodePort after the pods are Ready: on a busy machine, seconds later)."""
    helm(
        env, "upgrade", "--install", release, chart, "--create-namespace", "--wait", "--timeout", "5m",
        *image_values(), "--set", "service.type=NodePort", "--set", f"service.nodePort={node_port}", *values,
        timeout=400,
    )  # fmt: skip
    wait_until(lambda: accepts(node_port), 30, f"kube-proxy serving NodePort {node_port}")
    forget_refused(node_port)
    return f"http://127.0.0.1:{node_port}"


def forget_refused(node_port):
    """Deletes the conntrack entries of connections to 127.0.0.1:node_port that were not forwarded
    to a pod. While a Service has no ready endpoint, kube-proxy (1.30 measured) rejects a connection
    with an ICMP error, which leaves its entry in SYN_SENT, un-NATed, for 120 s: a later connection
    from the same loopback port (the kernel reuses them quickly under a request loop) matches it,
    skips the DNAT and is refused by the host (3-9 of ~9,000 requests in a rolling upgrade after a
    polled install). Clients on other machines almost never reuse a port that soon; the test's own
    polling made those entries, so they go, as kube-proxy itself does for UDP."""
    unforwarded = ["--orig-dst", "127.0.0.1", "--dport", str(node_port), "--reply-src", "127.0.0.1"]
    deleted = subprocess.run(["conntrack", "-D", "-p", "tcp", *unforwarded], capture_output=True, text=True, timeout=30)
    # conntrack exits 1 when nothing matched ("0 flow entries have been deleted").
    said = deleted.stdout + deleted.stderr
    assert deleted.returncode == 0 or "0 flow entries" in said, said


def accepts(port):
    """Whether 127.0.0.1:port accepts a TCP connection (1 s deadline)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def pods(env, release):
    """``{name: (uid, start time)}`` of the release's web and Redis pods: what a restart changes."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component in (web,redis)"
    listed = json.loads(kubectl(env, "get", "pods", "-l", selector, "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: (p["metadata"]["uid"], p["status"].get("startTime")) for p in listed}


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


def rolled(env, release, url, change, settle=1.0):
    """Runs `change` (an upgrade, a rollback) while 4 loops request the login page (a 5 s deadline
    each): `settle` s against the settled pods first, then until the rollout is complete and the
    old web pods have stopped (preStop, then nginx and gunicorn finishing), then `settle` s more.
    Returns the Loop with every answer and the seconds from the change's start (`started`, on
    time.monotonic's clock, as each answer's `sent`) until it returned (`changed`), the rollout was
    complete (`rolled`) and the old pods were gone (`gone`)."""
    with Loop(url + "/webclient/login/", workers=4, deadline=5.0) as loop:
        time.sleep(settle)
        started = time.monotonic()
        change()
        times = {"started": started, "changed": time.monotonic() - started}
        kubectl(env, "rollout", "status", f"deployment/{release}-omero-web", timeout=300)
        times["rolled"] = time.monotonic() - started
        settled = lambda: set(web_pods(env, release, terminating=True)) == set(web_pods(env, release))  # noqa: E731
        wait_until(settled, 120, "old pods gone")
        times["gone"] = time.monotonic() - started
        time.sleep(settle)
    return loop, times
