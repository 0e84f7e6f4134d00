"""Sessions in Redis, tested on the store itself with Django's session API inside the running
web containers (no OMERO.server can run here, and OMERO.web saves nothing before a login)."""

import json
import time

import pytest
import requests

from docker_helpers import Stack

# Runs inside a web container with its real settings: save or load one session.
SESSION_SCRIPT = """
import json, sys, django
django.setup()
from importlib import import_module
from django.conf import settings
store = import_module(settings.SESSION_ENGINE).SessionStore
if sys.argv[1] == "save":
    session = store()
    session["probe"] = sys.argv[2]
    session.save()
    print(json.dumps({"key": session.session_key}))
else:
    print(json.dumps(dict(store(session_key=sys.argv[2]).load())))
"""


@pytest.fixture(scope="module")
def replicas():
    stack = Stack("sessions", scale_web=2).up()
    yield stack
    stack.down()


def session(stack, container, *args):
    result = stack.exec(container, "python", "-c", SESSION_SCRIPT, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def redis_cli(stack, *args):
    result = stack.exec(stack.ids("redis")[0], "redis-cli", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_two_replicas_share_sessions_through_redis(replicas):
    first, second = replicas.ids("web")
    key = session(replicas, first, "save", "from-first")["key"]
    assert session(replicas, second, "load", key) == {"probe": "from-first"}
    redis_key = f":1:django.contrib.sessions.cache{key}"
    assert redis_cli(replicas, "EXISTS", redis_key) == "1"
    ttl = int(redis_cli(replicas, "TTL", redis_key))
    assert 86400 - 60 < ttl <= 86400  # omero.web.session_cookie_age


def test_sessions_survive_a_restart_of_web(replicas):
    key = session(replicas, replicas.ids("web")[0], "save", "before-restart")["key"]
    replicas.compose("restart", "web")
    replicas.compose("up", "-d", "--no-build", "--wait", "--scale", "web=2")
    for container in replicas.ids("web"):
        assert session(replicas, container, "load", key) == {"probe": "before-restart"}


def test_redis_outage_degrades_and_recovers_without_restart(replicas):
    web = replicas.ids("web")[0]
    started = replicas.exec(web, "cat", "/proc/1/stat").stdout.split()[21]
    replicas.compose("stop", "redis")
    try:
        page = requests.get(replicas.url + "/webclient/login/", timeout=30)
        assert page.status_code == 200 and "OMERO.web - Login" in page.text
        to_login = requests.get(replicas.url + "/webclient/", timeout=30, allow_redirects=False)
        assert to_login.status_code == 302 and "/webclient/login/" in to_login.headers["Location"]
        failed = replicas.exec(web, "python", "-c", SESSION_SCRIPT, "save", "while-down")
        assert failed.returncode != 0 and "redis:6379" in failed.stderr  # a login could not be kept
        wait_for_log(replicas, "Redis at redis:6379 is unreachable")
    finally:
        replicas.compose("start", "redis")
    wait_for_log(replicas, "Redis at redis:6379 is reachable again")
    key = session(replicas, web, "save", "after-outage")["key"]
    assert session(replicas, replicas.ids("web")[1], "load", key) == {"probe": "after-outage"}
    assert replicas.exec(web, "cat", "/proc/1/stat").stdout.split()[21] == started  # web never restarted


def wait_for_log(stack, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.logs("web").count(text) >= stack.scale_web:  # every replica says it
            return
        time.sleep(0.5)
    raise AssertionError(f"'{text}' not logged by every web replica:\n{stack.logs('web')[-3000:]}")
