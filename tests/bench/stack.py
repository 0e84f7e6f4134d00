"""`make bench`, stack part: nginx sidecar figures. Reports only; nothing here is a pass/fail test.

(d) static file requests/s: nginx sidecar vs. WhiteNoise in gunicorn, same file, same run
(e) maintenance switch: `docker compose stop web` and `docker kill -s KILL` on web while 4 clients
    send requests; the slowest of the requests sent in the 5 s after (every one has a 5 s
    deadline; a timeout or an answer other than 200/503 maintenance counts as an error)
(f) 60,000 requests at 50 connections on the login page through nginx, twice in a row (past the
    old limit of ~28,000 new upstream connections a minute): requests/s, p50/p99, errors (socket
    errors, wrk's 5 s per-request timeout, non-2xx/3xx), TIME_WAIT sockets in nginx after each run
(g) logged-in load: 20 users, each logged in (its own session) and on its own connection, alternate
    /webclient/keepalive_ping/ and /api/v0/m/projects/ for 60 s, against the OMERO.server stand-in:
    through nginx (sessions in Redis, Redis commands per request) and through one omero-web
    container (file sessions), twice each. Errors: socket errors, timeouts (5 s), and any answer that
    is not the logged-in one.
The load generator is wrk (Debian package `wrk`); it shares the machine's CPUs with the containers.
Published ports go through Docker's userland proxy unless dockerd runs with --userland-proxy=false
(as .ci/run starts it); the proxy then costs more CPU than nginx and caps (d).
"""

import functools
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from docker_helpers import WEB_IMAGE, Container, Stack, Standin, WebUser  # noqa: E402
from load import around, time_wait_sockets, wrk, wrk_logged_in  # noqa: E402

USERS = 20
STATIC_FILE = "/static/webgateway/js/ome.viewport.js"  # 42 KB script
LOGIN = "/webclient/login/"


def bench_static(stack):
    whitenoise = Container(WEB_IMAGE)
    try:
        whitenoise.wait_http(STATIC_FILE)
        nginx_rate = wrk(stack.url + STATIC_FILE, 50, seconds=10).rate
        gunicorn_rate = wrk(whitenoise.url + STATIC_FILE, 50, seconds=10).rate
    finally:
        whitenoise.remove()
    print(
        f"(d) static {STATIC_FILE}: nginx {nginx_rate:,.0f} req/s, WhiteNoise in gunicorn {gunicorn_rate:,.0f} req/s "
        f"-> {nginx_rate / gunicorn_rate:.1f}x (goal >= 10x)"
    )


def bench_maintenance(stack):
    for how in ("stop", "kill"):
        answers = around(stack.url + LOGIN, functools.partial(stack.take_web_away, how)).during
        errors = [a for a in answers if a.error or a.status not in (200, 503)]
        slowest = max(a.seconds for a in answers)
        maintenance = sum(1 for a in answers if a.status == 503 and not a.error)
        print(
            f"(e) `{how}` web: slowest of {len(answers)} requests in the 5 s after: {slowest * 1000:.0f} ms "
            f"({maintenance} maintenance pages, {len(errors)} errors) (goal < 1 s, 0 errors)"
        )
        stack.compose("up", "-d", "--no-deps", "--wait", "web")
        stack.wait_status(LOGIN, 200, timeout=90)


def bench_load(stack):
    nginx = stack.ids("nginx")[0]
    for run in (1, 2):
        result = wrk(stack.url + LOGIN, 50, total=60_000)
        print(f"(f) login page through nginx, 50 connections, run {run}: {result.line()}")
        print(f"    TIME_WAIT sockets in nginx after the run: {time_wait_sockets(stack, nginx)} (goal: 0 errors)")


def log_in_users(base_url):
    session_ids = []
    for _ in range(USERS):
        user = WebUser(base_url)
        answer = user.login()
        if answer.status_code != 302:
            raise RuntimeError(f"login failed: {answer.status_code} {answer.text[:300]}")
        session_ids.append(user.session_id)
    return session_ids


def redis_commands(stack):
    info = stack.exec(stack.ids("redis")[0], "redis-cli", "INFO", "stats").stdout
    return int(re.search(r"total_commands_processed:(\d+)", info).group(1))


def bench_logged_in(stack):
    session_ids = log_in_users(stack.url)
    for run in (1, 2):
        before = redis_commands(stack)
        result = wrk_logged_in(stack.url, session_ids, seconds=60)
        per_request = (redis_commands(stack) - before) / max(result.requests, 1)
        print(f"(g) {USERS} logged-in users through nginx, run {run}: {result.line()}")
        print(f"    Redis commands per request: {per_request:.2f}")
    standin = Standin()
    try:
        single = Container(WEB_IMAGE, env={"OMEROHOST": "omero"}, docker_args=standin.docker_args)
        try:
            single.wait_http("/webclient/login/", timeout=90)
            session_ids = log_in_users(single.url)
            for run in (1, 2):
                result = wrk_logged_in(single.url, session_ids, seconds=60)
                print(f"(g) {USERS} logged-in users, single omero-web container, run {run}: {result.line()}")
        finally:
            single.remove()
    finally:
        standin.remove()


if __name__ == "__main__":
    if not shutil.which("wrk"):
        sys.exit("stack benchmarks need wrk: apt-get install wrk")
    stack = Stack("bench", standin=True).up()
    try:
        bench_static(stack)
        bench_maintenance(stack)
        bench_load(stack)
        bench_logged_in(stack)
    finally:
        stack.down()
