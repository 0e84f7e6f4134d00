"""Faults, restarts and load through the real stack. Every request has a deadline; a timeout, a
refused connection or an unexpected status is a failure, and nothing is retried by the test."""

import re
import time

import pytest
import requests

from contract import WEB_PORT
from docker_helpers import WEB_IMAGE, Stack, docker, wait_healthy
from load import Loop, around, summary, time_wait_sockets, wrk

LOGIN = "/webclient/login/"
# Every request sent while web goes away must be answered within this (seconds). Typically ~0.5 s
# (the connect timeout); on this 2-core machine a request finishing during a graceful stop once
# took 1.13 s, so the bound leaves room for that while a hang (the old 60 s) still fails at once.
SWITCH = 2.0
# What a failing reliability test prints from the containers' logs: gunicorn's and Django's errors,
# and nginx's 5xx answers (access log).
LOGGED_ERROR = re.compile(r"\[ERROR\]|Traceback|Internal Server Error|\" 50[0-9] ")


def assert_answers(answers, allowed=(200,), within=SWITCH, at_least=1, cut_off=False):
    """At least `at_least` requests, each answered with an allowed status within `within` seconds.
    `cut_off`: a request may instead have had its connection cut (no answer), but also in time."""

    def bad(answer):
        if answer.seconds > within:
            return True
        if cut_off and answer.status is None:
            return False
        return bool(answer.error) or answer.status not in allowed

    assert len(answers) >= at_least, summary(answers)
    failed = [a for a in answers if bad(a)]
    assert not failed, f"{len(failed)} bad of {summary(answers)}; first: {failed[:5]}"


@pytest.fixture(scope="class")
def prefixed():
    """A single web replica under /omero, as in the report of the 60 s hang."""
    stack = Stack("switch", env={"OMERO_WEB_PREFIX": "/omero"}).up()
    yield stack
    stack.down()


class TestWebGoingAway:
    """One stack for these cases; it goes when they are done (class scope), as do the others
    here: an idle stack's health probes take CPU from the next test's load."""

    @pytest.mark.parametrize("how", ["stop", "kill", "recreate"])
    def test_web_going_away_answers_maintenance_at_once(self, prefixed, how):
        stack, url = prefixed, prefixed.url + "/omero" + LOGIN
        nginx_id = stack.ids("nginx")[0]
        stack.wait_status("/omero" + LOGIN, 200, timeout=90)
        stack.wait_nginx_follows_web()  # the previous case moved web
        # Warm up: the window before the switch is meant to be steady state (nginx's connections to
        # the new web open, its workers past their first requests). Not measured.
        with Loop(url, workers=4):
            time.sleep(3)
        try:
            switch = around(url, lambda: stack.take_web_away(how))
        finally:
            stack.compose("up", "-d", "--no-deps", "--wait", "web")
        # Before: web is up, warm and followed by nginx; everything answered in time. (A single 503
        # after ~1.1 s was seen once here in ~10 runs, right after a restart without the warm-up;
        # counted, printed, tolerated once until its cause is found.)
        assert_answers(switch.before, allowed=(200, 503))
        early = [a for a in switch.before if a.status == 503]
        print(f"\n{how}, before: {summary(switch.before)}")
        assert len(early) <= 1 and len(early) < len(switch.before) / 10, summary(switch.before)
        # None hangs. A request in flight when the container is killed may be cut off (it was sent
        # before `docker kill` returned); every one sent after is answered: 503 at once, or 200 when
        # web is back (Docker restarts a killed container) or still finishing (a graceful stop).
        print(f"\n{how}: {summary(switch.during)}")
        assert_answers(switch.during, allowed=(200, 503), cut_off=True)
        assert_answers(switch.after, allowed=(200, 503))
        assert [a for a in switch.after if a.status == 503], summary(switch.after)
        stack.wait_status("/omero" + LOGIN, 200, timeout=90)
        # The same nginx all along: it followed web to its new address by itself.
        assert stack.ids("nginx") == [nginx_id]

    def test_upstream_followed_and_logged(self, prefixed):
        nginx = prefixed.ids("nginx")[0]
        rendered = prefixed.exec(nginx, "cat", "/tmp/nginx/upstream.conf").stdout
        (address,) = prefixed.web_addresses()
        assert rendered.strip() == f"server {address}:{WEB_PORT} max_fails=0;"
        log = prefixed.logs("nginx")
        assert "omero-web-nginx: web resolves to no address (maintenance page); reloading nginx" in log
        assert f"omero-web-nginx: web now at {address}:{WEB_PORT}; reloading nginx" in log


@pytest.fixture
def replicas():
    stack = Stack("rolling", scale_web=2).up()
    yield stack
    stack.down()


def test_rolling_restart_and_recreate_lose_nothing(replicas):
    """Two replicas, each restarted, then each replaced by one with a changed CONFIG_* value,
    one at a time, while GETs run: nginx passes a request a stopping replica cannot take to the
    other one. Zero failed requests."""
    stack, logs = replicas, []
    with Loop(stack.url + LOGIN, workers=4) as loop:
        for container in stack.ids("web"):
            docker("restart", "--time", "20", container, timeout=60)
            wait_healthy(container)
        # Rolling recreate with compose: add a replica with the new configuration, remove an old one.
        with open(stack.env_file.name, "a") as env:
            env.write('CONFIG_omero_web_server__list=[["omero", 4064, "rolled-out"]]\n')
        for old in stack.ids("web"):
            before = set(stack.ids("web"))
            stack.compose("up", "-d", "--no-deps", "--no-recreate", "--scale", "web=3", "web")
            (new,) = set(stack.ids("web")) - before
            wait_healthy(new)
            docker("stop", "--time", "20", old, timeout=60)
            logs.append(docker("logs", "--timestamps", old, check=False).stderr)
            docker("rm", old)
        time.sleep(2)
    print(f"\nrolling: {summary(loop.answers)}")
    logs += [stack.logs("web"), stack.logs("nginx")]
    print("errors logged:", *[line for log in logs for line in log.splitlines() if LOGGED_ERROR.search(line)], sep="\n")
    assert_answers(loop.answers, within=5, at_least=200)
    assert "rolled-out" in requests.get(stack.url + LOGIN, timeout=10).text
    assert len(stack.ids("web")) == 2


@pytest.fixture(scope="class")
def loaded():
    stack = Stack("load").up()
    yield stack
    stack.down()


# Requests per load run: 20 times the TIME_WAIT bound below. nginx opening a connection to gunicorn
# per request (the old failure: ~28,000 new connections a minute exhausted the ephemeral ports, then
# 503s) would leave one TIME_WAIT socket per request for 60 s, so a regression shows here whatever
# the machine's rate; ~1 minute at this machine's rate (bench/stack.py keeps the 60,000-request soak).
LOAD_REQUESTS = 20_000


class TestSustainedLoad:
    @pytest.mark.parametrize("run", [1, 2])
    def test_sustained_load_no_errors_no_port_per_request(self, loaded, run):
        """LOAD_REQUESTS proxied requests at 50 connections, twice in a row (the second while the
        first's sockets would still be in TIME_WAIT): no error, and nginx keeps reusing its connections
        to gunicorn."""
        result = wrk(loaded.url + LOGIN, connections=50, total=LOAD_REQUESTS, deadline=5)
        print(f"\nload run {run}: {result.line()}")
        assert result.requests >= LOAD_REQUESTS, result.text
        assert result.errors == 0, result.text
        nginx = loaded.ids("nginx")[0]
        assert time_wait_sockets(loaded, nginx) < 1000
        assert "Cannot assign requested address" not in loaded.logs("nginx")


@pytest.fixture
def slow():
    """A stack whose OMERO.server accepts connections and never answers: logins hang."""
    stack = Stack("slow", env={"OMEROHOST": "blackhole"}).up()
    hole = docker(
        "run", "-d", "--network", f"{stack.project}_default", "--network-alias", "blackhole",
        "--entrypoint", "python3", WEB_IMAGE, "-c",
        "import socket, time; s = socket.create_server(('', 4064), backlog=128); time.sleep(3600)",
    ).stdout.strip()  # fmt: skip
    yield stack
    docker("rm", "-f", hole, check=False)
    stack.down()


def start_login(stack, read_timeout):
    """Begin a login POST (it hangs on the black-holed server) in a thread; return the thread
    and a list that receives its response or error."""
    import threading

    session = requests.Session()
    page = session.get(stack.url + LOGIN, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    outcome = []

    def post():
        sent = time.monotonic()
        try:
            answer = session.post(
                stack.url + LOGIN,
                data={"csrfmiddlewaretoken": token, "server": "1", "username": "root", "password": "omero"},
                headers={"Referer": stack.url + LOGIN},
                timeout=(5, read_timeout),
                allow_redirects=False,
            )
            outcome.append((answer.status_code, time.monotonic() - sent))
        except requests.RequestException as error:
            outcome.append((type(error).__name__, time.monotonic() - sent))

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread, outcome


def workers_talking_to_server(stack, web):
    """PIDs of gunicorn processes with a connection open to port 4064 (the OMERO.server)."""
    script = """
import os
inodes = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        if fields[2].endswith(":0FE0") and fields[3] == "01":
            inodes.add(fields[9])
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        continue
    if any(f"socket:[{inode}]" in links for inode in inodes):
        print(pid)
"""
    return stack.exec(web, "python3", "-c", script).stdout.split()


def test_slow_killed_and_abandoned_requests_do_not_stop_the_others(slow):
    stack = slow
    web = stack.ids("web")[0]
    with Loop(stack.url + LOGIN, workers=2, pause=0.05) as loop:
        # Slow requests: two logins hang on the server, each in a gunicorn thread; a third client
        # gives up after 2 s and closes its connection. Fewer than a worker's 4 threads: a worker
        # with every thread busy would hold up what nginx sends on its kept-alive connections.
        hanging = [start_login(stack, read_timeout=120) for _ in range(2)]
        abandoned = start_login(stack, read_timeout=2)
        time.sleep(3)
        victims = workers_talking_to_server(stack, web)
        assert victims, "no gunicorn worker is talking to the black-holed server"
        # The workers serving them killed in the middle of the logins.
        for pid in victims:
            killed = stack.exec(web, "sh", "-c", f"kill -KILL {pid}")
            assert killed.returncode == 0, killed.stderr
        time.sleep(8)
    print(f"\nothers while slow/killed/abandoned: {summary(loop.answers)}")
    assert_answers(loop.answers, within=2, at_least=50)
    # The killed workers' requests got an answer (the maintenance page), not a hang.
    for thread, outcome in hanging:
        thread.join(10)
        assert outcome and outcome[0][0] == 503, outcome
    assert abandoned[1] and abandoned[1][0][0] == "ReadTimeout", abandoned[1]
    web_log, nginx_log = stack.logs("web"), stack.logs("nginx")
    for pid in victims:
        assert f"Worker (pid:{pid}) was sent SIGKILL" in web_log, web_log[-2000:]
    assert "upstream prematurely closed connection" in nginx_log, nginx_log[-2000:]
    assert re.search(r'"POST /webclient/login/ HTTP/1.1" 499 ', nginx_log), nginx_log[-2000:]
    # The stack keeps serving with a replacement worker.
    assert requests.get(stack.url + LOGIN, timeout=5).status_code == 200
