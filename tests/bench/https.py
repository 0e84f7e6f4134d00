"""`make bench`, HTTPS part (docs/https.md). Reports only; nothing here is a pass/fail test.

(h) the login page (gunicorn) and a static file (nginx alone) through the same nginx image: plain HTTP
    (NGINX_HTTPS=off) vs HTTPS with HTTP/1.1 (wrk) and with HTTP/2 (h2load), 20 connections, 20 s each,
    twice in a row: requests/s, p99, errors (socket errors, timeouts, anything but 200). Goal: HTTPS
    >= 0.8x plain, 0 errors.
(i) new TLS connections per second from one client (Python's ssl, 10 s, one request each), full
    handshakes vs resumed sessions (nginx's session cache; no session tickets), TLS 1.2 and 1.3, twice.
    (`openssl s_time -reuse` cannot resume TLS 1.3: it reuses the session before the ticket arrives.)
Load generators: wrk and h2load (Debian `wrk`, `nghttp2-client`), sharing the machine's CPUs with nginx
and gunicorn; both stacks are up for the whole run, so both pay for the other's idle containers.
"""

import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stack"))
from test_https import free_port  # noqa: E402

from docker_helpers import Stack  # noqa: E402
from load import wrk  # noqa: E402

CONNECTIONS, SECONDS = 20, 20
REQUESTS = CONNECTIONS * 900  # h2load: per connection below nginx's keepalive_requests (1,000)
PAGES = {"login page": "/webclient/login/", "static file": "/static/webgateway/js/ome.viewport.js"}


def h2load(url, protocol):
    """h2load, REQUESTS in all: (req/s, p99 ms, errors, protocol); errors = failed + errored + timed out
    (5 s without a byte) + non-2xx. -n, not -D: nginx ends a connection after 1,000 requests
    (keepalive_requests; browsers reconnect, h2load does not)."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        command = ["h2load", f"-c{CONNECTIONS}", "-t2", "-m1", f"-n{REQUESTS}", "-N5s", "--log-file", log.name, url]
        if protocol == "http/1.1":
            command.insert(1, "--h1")
        out = subprocess.run(command, capture_output=True, text=True, timeout=600).stdout
        times = sorted(int(line.split()[2]) / 1000 for line in log if line.strip())
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
                     r"(\d+) timeout", out)  # fmt: skip
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    negotiated = re.search(r"Application protocol: (\S+)", out).group(1)
    errors = sum(int(n) for n in done.groups()[2:]) + sum(int(n) for n in statuses.groups()[1:])
    errors += REQUESTS - int(done.group(1))
    p99 = times[int(len(times) * 0.99) - 1] if times else float("nan")
    return rate, p99, errors, negotiated


def handshakes(port, version, resume, seconds=10):
    """New TLS connections per second from one client, each with one request (GET /healthz, nginx's
    own answer), for `seconds`: (rate, share resumed, errors). Resumed: each connection offers the
    session of the one before (TLS 1.3 tickets are single-use)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the rate is measured, not the trust
    context.minimum_version = context.maximum_version = version
    session, done, reused, errors = None, 0, 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                # No Nagle: a resumed handshake's last flight and the request are small writes that
                # would otherwise wait for a delayed ACK (40 ms), measuring TCP instead of TLS.
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := tls.recv(4096):
                        answer += chunk
                    if not answer.startswith(b"HTTP/1.1 200"):
                        raise ValueError(answer[:40])
                    done, reused = done + 1, reused + tls.session_reused
                    session = tls.session if resume else None
        except (OSError, ValueError):
            errors += 1
    return done / seconds, reused / max(done, 1), errors


def main():
    port = free_port()
    public = f"https://localhost:{port}"
    plain = Stack("benchplain").up()
    tls = Stack("benchtls", env={"NGINX_HTTPS": "self-signed", "OMERO_WEB_PUBLIC_URL": public,
                                 "OMERO_WEB_HTTPS_PORT": str(port)}).up()  # fmt: skip
    over = f"https://127.0.0.1:{port}"  # wrk and h2load verify nothing; 127.0.0.1: no IPv6 attempt
    try:
        for label, path in PAGES.items():
            for run in (1, 2):
                base = wrk(plain.url + path, CONNECTIONS, seconds=SECONDS)
                over_tls = wrk(over + path, CONNECTIONS, seconds=SECONDS)
                h2 = h2load(over + path, "h2")
                print(f"(h) {label} run {run}: plain HTTP {base.rate:,.0f} req/s p99 {base.p99_ms:.0f} ms "
                      f"errors {base.errors}; HTTPS HTTP/1.1 {over_tls.rate:,.0f} req/s "
                      f"p99 {over_tls.p99_ms:.0f} ms errors {over_tls.errors} ({over_tls.rate / base.rate:.2f}x); "
                      f"HTTPS {h2[3]} {h2[0]:,.0f} req/s p99 {h2[1]:.0f} ms errors {h2[2]} "
                      f"({h2[0] / base.rate:.2f}x) (goal >= 0.8x, 0 errors)")  # fmt: skip
        for name, version in (("TLS 1.2", ssl.TLSVersion.TLSv1_2), ("TLS 1.3", ssl.TLSVersion.TLSv1_3)):
            for run in (1, 2):
                full, _, full_errors = handshakes(port, version, resume=False)
                resumed, share, resumed_errors = handshakes(port, version, resume=True)
                print(f"(i) {name} run {run}, new connections/s from one client, one request each: "
                      f"full handshake {full:,.0f}, resumed {resumed:,.0f} ({resumed / full:.1f}x; "
                      f"{share:.0%} resumed), errors {full_errors + resumed_errors}")  # fmt: skip
    finally:
        plain.down()
        tls.down()


if __name__ == "__main__":
    main()
