"""`make bench`, Kubernetes part: the chart on each single-node test cluster (tests/chart/k8s/, root;
the oldest and the newest Kubernetes, each with its Helm major as in test_cluster.py; brought up
with our images, one after the other, always taken down at the end). Reports only; nothing here
is a pass/fail test.

(h) `helm install` of a zero-values release (only our image names and a NodePort on 127.0.0.1):
    seconds until every pod of the release is Ready (polled), until `helm install --wait` returns,
    and until the login page answers 200 through the NodePort
(k) a no-op `helm upgrade --reuse-values --wait` right after the install: seconds, and whether any
    pod of the release was replaced or restarted (goal: none)
(i) newest cluster only: login page requests/s through the cluster's Service (NodePort, 1 replica)
    vs. through the compose stack (nginx + 1 web), same machine, same run, alternately: wrk, 20 connections, 20 s, twice
    each: requests/s, p50/p99, errors (socket errors, wrk's 5 s timeout, non-2xx/3xx)
(j) `helm upgrade` to replicaCount=2, then a rolling upgrade of those 2 pods triggered by a changed
    config value (omero.web.page_size, as test_cluster.py's upgrade test), while 4 loops send
    requests to the login page through the NodePort, each with a 5 s deadline: seconds until the new
    pods are Ready and the old ones gone, and every request that timed out, failed or did not
    answer 200 (counted, never retried)
wrk and the cluster share the machine's CPUs with the pods and the containers. The compose stack's
published port goes through Docker's userland proxy unless dockerd runs with --userland-proxy=false
(as .ci/run starts it), which then costs (i) CPU on the compose side only.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "chart"))
from cluster_helpers import (  # noqa: E402
    CHART,
    CLUSTERS,
    build_tools,
    cluster_down,
    cluster_up,
    forget_refused,
    helm,
    install,
    kubectl,
    pods,
    rolled,
    wait_until,
)
from contract import KUBERNETES_CLUSTERS  # noqa: E402
from docker_helpers import NGINX_IMAGE, WEB_IMAGE, Stack  # noqa: E402
from load import failures, summary, when, wrk  # noqa: E402

RELEASE = "bench"
NODE_PORT = 30090
LOGIN = "/webclient/login/"
UPGRADE = ["--set", "config.omero\\.web\\.page_size=100"]  # as test_cluster.py's upgrade test
CONNECTIONS, SECONDS, RUNS = 20, 20, 2
STATE = "/var/lib/owk8s"  # cluster.sh's state: there while a cluster is up


def machine():
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, {total_kb / 2**20:.1f} GiB memory, load average {load[0]:.2f} at the start"


def release_ready(env):
    """time.monotonic() once the release's Deployments (web, Redis) exist and exactly their pods are
    there, all Ready; None before."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component in (web,redis)"
    listed = kubectl(env, "get", "deployments,pods", "-l", selector, "-o", "json", check=False)
    if listed.returncode != 0:  # the namespace may not exist yet
        return None
    items = json.loads(listed.stdout)["items"]
    wanted = sum(i["spec"]["replicas"] for i in items if i["kind"] == "Deployment")
    pods = [i for i in items if i["kind"] == "Pod"]
    ready = [p for p in pods if "deletionTimestamp" not in p["metadata"] and pod_ready(p)]
    deployments = sum(1 for i in items if i["kind"] == "Deployment")
    if deployments >= 2 and len(ready) == len(pods) == wanted:
        return time.monotonic()
    return None


def pod_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def login_page(url):
    return requests.get(url + LOGIN, timeout=5, allow_redirects=False).status_code == 200


def bench_install(env):
    """Pods and the NodePort polled (about every 0.5 s) while `helm install --wait` runs beside."""
    url, seen = f"http://127.0.0.1:{NODE_PORT}", {}

    def installed():
        install(env, RELEASE, NODE_PORT)
        return time.monotonic()

    def ready_and_served():
        if helm_install.done() and helm_install.exception():
            raise helm_install.exception()
        if "ready" not in seen and (ready := release_ready(env)):
            seen["ready"] = ready
        try:
            if "served" not in seen and login_page(url):
                seen["served"] = time.monotonic()
        except requests.RequestException:  # nothing behind the NodePort yet
            pass
        return len(seen) == 2

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        helm_install = pool.submit(installed)
        wait_until(ready_and_served, 420, "every pod of the release Ready and the login page served")
        helm_done = helm_install.result()
    forget_refused(NODE_PORT)  # the polls' refused connections (see forget_refused)
    count = len(pods(env, RELEASE))
    print(
        f"(h) helm install, zero values: all {count} pods Ready after {seen['ready'] - started:.1f} s, "
        f"first 200 on {LOGIN} through the NodePort after {seen['served'] - started:.1f} s, "
        f"`helm install --wait` returned after {helm_done - started:.1f} s"
    )
    return url


def bench_noop_upgrade(env):
    before = pods(env, RELEASE)
    started = time.monotonic()
    helm(env, "upgrade", RELEASE, CHART, "--reuse-values", "--wait", "--timeout", "5m", timeout=400)
    took = time.monotonic() - started
    after = pods(env, RELEASE)
    gone = sorted(name for name in before if after.get(name) != before[name])  # replaced, or restarted
    new = sorted(name for name in after if name not in before)
    print(f"(k) no-op helm upgrade after install (--reuse-values --wait): {took:.1f} s")
    print(f"    pods replaced or restarted: {', '.join(gone) or 'none'} (goal: none)")
    print(f"    new pods: {', '.join(new) or 'none'} (goal: none)")


def bench_upgrade(env, url):
    started = time.monotonic()
    install(env, RELEASE, NODE_PORT, "--set", "replicaCount=2")
    print(f"(j) helm upgrade to replicaCount=2 (--wait): {time.monotonic() - started:.1f} s")
    upgrade = lambda: install(env, RELEASE, NODE_PORT, "--set", "replicaCount=2", *UPGRADE)  # noqa: E731
    loop, times = rolled(env, RELEASE, url, upgrade, settle=2.0)
    failed = failures(loop)
    print(
        f"(j) rolling upgrade of 2 pods (config.omero.web.page_size changed): old pods gone after "
        f"{times['gone']:.1f} s (`helm upgrade --wait` returned after {times['changed']:.1f} s, "
        f"rollout complete after {times['rolled']:.1f} s)"
    )
    print(f"    requests during it (4 loops, 5 s deadline each): {summary(loop.answers)}")
    sent = "; ".join(when(failed[:10], times["started"]))
    print(f"    failed: {len(failed)} (goal 0){', sent at ' + sent if failed else ''}")


def bench_rate(cluster_url):
    stack = Stack("bench-k8s").up()
    try:
        stack_url = stack.url
        wait_until(lambda: login_page(stack_url), 120, "login page through the compose stack")
        rows, names = [], ("cluster Service (NodePort)", "compose stack (nginx)")
        for run in range(1, RUNS + 1):
            for name, url in zip(names, (cluster_url, stack_url), strict=True):
                rows.append((name, run, wrk(url + LOGIN, CONNECTIONS, seconds=SECONDS)))
    finally:
        stack.down()
    print(f"(i) login page, wrk {CONNECTIONS} connections {SECONDS} s, alternately:")
    print(f"    {'through':<28}{'run':>4}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, run, result in rows:
        print(f"    {name:<28}{run:>4}{result.rate:>9,.0f}{result.p50_ms:>9.1f}{result.p99_ms:>9.1f}{result.errors:>8}")
    cluster_best, stack_best = (max(r.rate for n, _, r in rows if n == name) for name in names)
    print(f"    best runs: cluster/compose {cluster_best / stack_best:.2f}")


def cluster_left_over():
    """What `cluster.sh down` should have removed and did not (interfaces, iptables chains)."""
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout.splitlines()
    left = [line for line in links if "owk8s" in line]
    for tables in ("iptables-save", "ip6tables-save"):
        if "KUBE-" in subprocess.run([tables], capture_output=True, text=True).stdout:
            left.append(f"KUBE- chains in {tables}")
    return left


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    print(f"Kubernetes benchmarks of {WEB_IMAGE} + {NGINX_IMAGE} on {machine()} (report only)")
    if os.geteuid() != 0:
        print("(h)-(k) skipped: the test clusters need root (tests/chart/k8s/cluster.sh)")
        sys.exit(0)
    if not shutil.which("wrk"):
        sys.exit("cluster benchmarks need wrk: apt-get install wrk")
    if os.path.exists(STATE):
        sys.exit(f"{STATE} exists: a test cluster is up (or left over); `make k8s-down` first")
    tools = build_tools()
    failed = False
    for which in CLUSTERS:
        print(f"\n{which} test cluster (Kubernetes {KUBERNETES_CLUSTERS[which]}, {CLUSTERS[which]}):")
        try:
            started = time.monotonic()
            env = cluster_up(tools, which)  # taken down again by itself if it fails
            print(f"    (test cluster up in {time.monotonic() - started:.0f} s, images loaded)")
            url = bench_install(env)
            bench_noop_upgrade(env)
            if which == "newest":
                bench_rate(url)
            bench_upgrade(env, url)
        finally:
            down = cluster_down()
            left = cluster_left_over()
            if down.returncode != 0 or left:
                print(f"cluster down failed ({down.returncode}), left: {left}\n{down.stderr[-3000:]}", file=sys.stderr)
                failed = True
    if failed:
        sys.exit(1)
