"""Real logins through nginx, against the OMERO.server stand-in (tests/standin/): the login form,
the pages a logged-in user opens, a wrong password, logout, and where the session lives."""

import re

import pytest

from docker_helpers import WEB_IMAGE, Container, Stack, Standin, WebUser, assert_logged_in, assert_login_and_logout

WRONG_PASSWORD = "Connection not available, please check your user name and password."
SESSION_COOKIE_AGE = 86400  # omero.web.session_cookie_age, OMERO.web's default


@pytest.fixture(scope="module")
def stack():
    running = Stack("login", standin=True).up()
    yield running
    running.down()


@pytest.mark.arch
def test_login_pages_and_logout(stack):
    assert_login_and_logout(stack.url)


def test_a_normal_user_lands_in_their_group(stack):
    user = WebUser(stack.url)
    assert user.login("user-1").status_code == 302
    assert assert_logged_in(user)["omeName"] == "user-1"
    home = user.get("/webclient/")
    assert re.search(r"WEBCLIENT\.active_group_id = 3\b", home.text)  # the stand-in's "lab"


def test_wrong_password_shows_omero_webs_error(stack):
    user = WebUser(stack.url)
    answer = user.login("root", "not-the-password")
    assert answer.status_code == 200
    assert WRONG_PASSWORD in answer.text
    assert user.session_id is None or user.get("/webclient/keepalive_ping/").text == "Connection Failed"


def test_session_is_in_redis_with_the_cookie_age_and_nowhere_on_disk(stack):
    user = WebUser(stack.url)
    assert user.login().status_code == 302
    key = f":1:django.contrib.sessions.cache{user.session_id}"
    redis = stack.ids("redis")[0]
    assert stack.exec(redis, "redis-cli", "EXISTS", key).stdout.strip() == "1"
    ttl = int(stack.exec(redis, "redis-cli", "TTL", key).stdout)
    assert SESSION_COOKIE_AGE - 60 < ttl <= SESSION_COOKIE_AGE
    # No file anywhere in web's writable places names or holds the session.
    web = stack.ids("web")[0]
    found = stack.exec(web, "grep", "-rl", user.session_id, "/tmp", "/opt/omero/web/OMERO.web/var")
    assert found.returncode == 1 and found.stdout == "", found.stdout + found.stderr


def test_the_single_web_container_logs_in_with_whitenoise():
    """One omero-web container, no nginx, no Redis: static files from WhiteNoise, file sessions."""
    standin = Standin()
    try:
        web = Container(WEB_IMAGE, env={"OMEROHOST": "omero"}, docker_args=standin.docker_args)
        try:
            web.wait_http("/webclient/login/", timeout=60)
            assert_login_and_logout(web.url)
            css = WebUser(web.url).get("/static/webclient/css/layout.css")
            assert css.status_code == 200 and css.headers.get("Server") != "nginx"  # gunicorn's WhiteNoise
        finally:
            web.remove()
    finally:
        standin.remove()
