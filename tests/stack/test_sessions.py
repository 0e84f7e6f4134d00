"""Sessions in Redis, shared by two web replicas, with real logins against the OMERO.server
stand-in: any replica serves a logged-in user, restarts and recreates of web keep them logged in,
and losing Redis logs them out cleanly."""

import json
import time

import pytest
import requests

from docker_helpers import GET_ON_THIS_WEB, Stack, WebUser, assert_logged_in, docker


@pytest.fixture(scope="module")
def replicas():
    stack = Stack("sessions", scale_web=2, standin=True).up()
    yield stack
    stack.down()


def logged_in(stack):
    user = WebUser(stack.url)
    answer = user.login()
    assert answer.status_code == 302, answer.text[:500]
    return user


def started_at(container):
    return json.loads(docker("inspect", container).stdout)[0]["State"]["StartedAt"]


def test_logged_in_through_nginx_served_by_each_replica(replicas):
    user = logged_in(replicas)
    for container in replicas.ids("web"):
        ping = ("/webclient/keepalive_ping/", user.session_id)
        result = replicas.exec(container, "python", "-c", GET_ON_THIS_WEB, *ping)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "200 OK", container[:12]


def test_restart_and_recreate_of_web_keep_the_user_logged_in(replicas):
    user = logged_in(replicas)
    replicas.compose("restart", "web")
    replicas.compose("up", "-d", "--no-build", "--wait", "--scale", "web=2")
    assert_logged_in(user)
    # A changed CONFIG_* value recreates both replicas (new containers, new secrets in memory).
    before = set(replicas.ids("web"))
    with open(replicas.env_file.name, "a") as env:
        env.write('CONFIG_omero_web_server__list=[["omero", 4064, "recreated"]]\n')
    replicas.compose("up", "-d", "--no-build", "--wait", "--scale", "web=2")
    assert not before & set(replicas.ids("web"))
    assert "recreated" in requests.get(replicas.url + "/webclient/login/", timeout=10).text
    assert_logged_in(user)


def test_redis_restart_logs_users_out_cleanly(replicas):
    user = logged_in(replicas)
    web_started = {c: started_at(c) for c in replicas.ids("web")}
    replicas.compose("restart", "redis")
    ping = user.get("/webclient/keepalive_ping/")
    assert (ping.status_code, ping.text) == (200, "Connection Failed")
    home = user.get("/webclient/")
    assert home.status_code == 302 and home.headers["Location"].startswith("/webclient/login/")
    again = user.login()
    assert again.status_code == 302, again.text[:500]
    assert_logged_in(user)
    assert {c: started_at(c) for c in replicas.ids("web")} == web_started  # web never restarted


def test_redis_outage_degrades_and_recovers_without_restart(replicas):
    user = logged_in(replicas)
    web = replicas.ids("web")[0]
    web_started = started_at(web)
    replicas.compose("stop", "redis")
    try:
        page = requests.get(replicas.url + "/webclient/login/", timeout=30)
        assert page.status_code == 200 and "OMERO.web - Login" in page.text
        home = user.get("/webclient/")
        assert home.status_code == 302 and "/webclient/login/" in home.headers["Location"]
        wait_for_log(replicas, "Redis at redis:6379 is unreachable")
    finally:
        replicas.compose("start", "redis")
    wait_for_log(replicas, "Redis at redis:6379 is reachable again")
    assert user.login().status_code == 302
    assert_logged_in(user)
    assert started_at(web) == web_started


def wait_for_log(stack, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.logs("web").count(text) >= stack.scale_web:  # every replica says it
            return
        time.sleep(0.5)
    raise AssertionError(f"'{text}' not logged by every web replica:\n{stack.logs('web')[-3000:]}")
