"""`make bench`, HTTPS part (docs/https.md). Reports only; nothing here is a pass/fail test.

(h) the login page (gunicorn) and a static file (nginx alone) through the same nginx image: plain HTTP
    (NGINX_HTTPS=off) vs HTTPS with HTTP/1.1 (wrk) and with HTTP/2 (h2load), 20 connections, 20 s each,
    twice in a row: requests/s, p99, errors (socket errors, timeouts, anything but 200). Goal: HTTPS
    >= 0.8x plain, 0 errors.
(i) TLS handshakes per second from one client (`openssl s_time`, 10 s): full handshakes vs resumed
    sessions, TLS 1.2 and 1.3.
Load generators: wrk and h2load (Debian `wrk`, `nghttp2-client`), sharing the machine's CPUs with nginx
and gunicorn; both stacks are up for the whole run, so both pay for the other's idle containers.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stack"))
from test_https import free_port  # noqa: E402

from docker_helpers import Stack  # noqa: E402
from load import wrk  # noqa: E402

CONNECTIONS, SECONDS = 20, 20
PAGES = {"login page": "/webclient/login/", "static file": "/static/webgateway/js/ome.viewport.js"}


def h2load(url, protocol):
    """h2load for SECONDS; (req/s, p99 ms, errors): errors = failed + errored + timed out + non-200."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        command = ["h2load", f"-c{CONNECTIONS}", "-t2", "-m1", f"-D{SECONDS}", "-N5s", "--log-file", log.name, url]
        if protocol == "http/1.1":
            command.insert(1, "--h1")
        out = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 120).stdout
        times = sorted(int(line.split()[2]) / 1000 for line in log if line.strip())
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
                     r"(\d+) timeout", out)  # fmt: skip
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    negotiated = re.search(r"Application protocol: (\S+)", out).group(1)
    errors = sum(int(n) for n in done.groups()[2:]) + sum(int(n) for n in statuses.groups()[1:])
    p99 = times[int(len(times) * 0.99) - 1] if times else float("nan")
    return rate, p99, errors, negotiated


def s_time(port, version, reuse):
    command = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", version, "-time", "10"]
    out = subprocess.run([*command, "-reuse" if reuse else "-new"], capture_output=True, text=True, timeout=60).stdout
    found = re.findall(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", out)
    connections, seconds, _ = found[-1]
    return int(connections) / float(seconds)


def main():
    port = free_port()
    public = f"https://localhost:{port}"
    plain = Stack("benchplain").up()
    tls = Stack("benchtls", env={"NGINX_HTTPS": "self-signed", "OMERO_WEB_PUBLIC_URL": public,
                                 "OMERO_WEB_HTTPS_PORT": str(port)}).up()  # fmt: skip
    try:
        for label, path in PAGES.items():
            for run in (1, 2):
                base = wrk(plain.url + path, CONNECTIONS, seconds=SECONDS)
                over_tls = wrk(f"https://127.0.0.1:{port}" + path, CONNECTIONS, seconds=SECONDS)
                h2 = h2load(f"https://127.0.0.1:{port}" + path, "h2")
                print(f"(h) {label} run {run}: plain HTTP {base.rate:,.0f} req/s p99 {base.p99_ms:.0f} ms "
                      f"errors {base.errors}; HTTPS HTTP/1.1 {over_tls.rate:,.0f} req/s "
                      f"p99 {over_tls.p99_ms:.0f} ms errors {over_tls.errors} ({over_tls.rate / base.rate:.2f}x); "
                      f"HTTPS {h2[3]} {h2[0]:,.0f} req/s p99 {h2[1]:.0f} ms errors {h2[2]} "
                      f"({h2[0] / base.rate:.2f}x) (goal >= 0.8x, 0 errors)")  # fmt: skip
        for version in ("-tls1_2", "-tls1_3"):
            new = statistics.median(s_time(port, version, reuse=False) for _ in range(2))
            resumed = statistics.median(s_time(port, version, reuse=True) for _ in range(2))
            print(
                f"(i) {version[1:].replace('_', '.')} handshakes/s from one client: full {new:,.0f}, "
                f"resumed {resumed:,.0f} ({resumed / new:.1f}x)"
            )
    finally:
        plain.down()
        tls.down()


if __name__ == "__main__":
    main()
