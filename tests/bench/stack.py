"""`make bench`, stack part: nginx sidecar figures. Reports only; nothing here is a pass/fail test.

(d) static file requests/s: nginx sidecar vs. WhiteNoise in gunicorn, same file, same run
(e) time from stopping `web` to the first 503 maintenance page
(f) 60 s at 50 connections on the login page through nginx: requests/s, p99 latency, errors
The load generator is wrk (Debian package `wrk`); it shares the machine's CPUs with the containers.
Published ports go through Docker's userland proxy unless dockerd runs with --userland-proxy=false
(as .ci/run starts it); the proxy then costs more CPU than nginx and caps (d).
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from docker_helpers import WEB_IMAGE, Container, Stack  # noqa: E402

STATIC_FILE = "/static/webgateway/js/ome.viewport.js"  # 42 KB script
LOGIN = "/webclient/login/"


def wrk(url, connections, seconds):
    """Run wrk; return (requests/s, p99 latency in ms, errors)."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, p99_ms, errors + (int(non2xx.group(1)) if non2xx else 0)


def bench_static(stack):
    whitenoise = Container(WEB_IMAGE)
    try:
        whitenoise.wait_http(STATIC_FILE)
        nginx_rate, _, _ = wrk(stack.url + STATIC_FILE, 50, 10)
        gunicorn_rate, _, _ = wrk(whitenoise.url + STATIC_FILE, 50, 10)
    finally:
        whitenoise.remove()
    print(
        f"(d) static {STATIC_FILE}: nginx {nginx_rate:,.0f} req/s, WhiteNoise in gunicorn {gunicorn_rate:,.0f} req/s "
        f"-> {nginx_rate / gunicorn_rate:.1f}x (goal >= 10x)"
    )


def bench_maintenance(stack):
    first_503 = []

    def poll():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(stack.url + LOGIN, timeout=2).status_code == 503:
                    first_503.append(time.monotonic())
                    return
            except requests.RequestException:
                pass

    watcher = threading.Thread(target=poll)
    stopped = time.monotonic()
    watcher.start()
    stack.compose("stop", "web")
    watcher.join()
    stack.compose("start", "web")
    stack.wait_status(LOGIN, 200, timeout=90)
    shown = f"{first_503[0] - stopped:.2f} s" if first_503 else "not seen within 30 s"
    print(f"(e) `docker compose stop web` -> first 503 maintenance page: {shown} (goal < 1 s)")


def bench_load(stack):
    rate, p99, errors = wrk(stack.url + LOGIN, 50, 60)
    print(f"(f) login page through nginx, 50 connections, 60 s: {rate:,.0f} req/s, p99 {p99:.0f} ms, {errors} errors")
    print("    (goal: 0 errors)")


if __name__ == "__main__":
    if not shutil.which("wrk"):
        sys.exit("stack benchmarks need wrk: apt-get install wrk")
    stack = Stack("bench").up()
    try:
        bench_static(stack)
        bench_maintenance(stack)
        bench_load(stack)
    finally:
        stack.down()
