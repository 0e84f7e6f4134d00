"""The client's address (NGINX_TRUSTED_PROXIES) and login throttling (NGINX_LOGIN_RATE/BURST) at the
nginx sidecar, through the compose stack and the OMERO.server stand-in, which logs the address
OMERO.web reports when it joins a session (omero.ip: the last X-Forwarded-For entry nginx sends)."""

import re

import pytest
import requests

from docker_helpers import Stack, WebUser, assert_logged_in

USER_ADDRESS = "203.0.113.7"  # what a proxy in front reports as the user's address
SPOOFED = "198.51.100.1"  # what the user's own client put in front of it


def login_from_behind_a_proxy(stack):
    user = WebUser(stack.url, headers={"X-Forwarded-For": f"{SPOOFED}, {USER_ADDRESS}"})
    assert user.login().status_code == 302
    # OMERO.web reports the address when it joins the session for a logged-in request (its login
    # view reports none).
    assert user.get("/webclient/keepalive_ping/").text == "OK"
    login_lines = [line for line in stack.logs("nginx").splitlines() if '"POST /webclient/login/' in line]
    session_lines = [line for line in stack.logs("omero").splitlines() if re.search(r" for root from [0-9]", line)]
    assert login_lines and session_lines
    # "nginx-1  | 172.18.0.1 - - [...] "POST ..." and "... session 1a2b3c4d for root from 172.18.0.1"
    logged = login_lines[-1].split("|", 1)[1].split()[0]
    told_omero = session_lines[-1].rsplit(" from ", 1)[1].strip()
    return logged, told_omero


def test_without_trusted_proxies_the_connecting_address_is_the_users():
    stack = Stack("xff", standin=True).up()
    try:
        logged, told_omero = login_from_behind_a_proxy(stack)
        assert logged == told_omero  # the connecting address (the Docker host's side of the network)
        assert re.fullmatch(r"[0-9.]+", logged) and logged not in (USER_ADDRESS, SPOOFED)
        assert USER_ADDRESS not in stack.logs("omero") and SPOOFED not in stack.logs("omero")
    finally:
        stack.down()


def test_a_trusted_proxys_forwarded_address_is_logged_and_passed_on():
    # Tests reach nginx from the Docker host, through one of these private ranges.
    trusted = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    stack = Stack("xfftrusted", env={"NGINX_TRUSTED_PROXIES": trusted}, standin=True).up()
    try:
        logged, told_omero = login_from_behind_a_proxy(stack)
        # The last untrusted address of the chain: what the proxy saw, not what the client wrote.
        assert logged == told_omero == USER_ADDRESS
        assert SPOOFED not in stack.logs("omero")
    finally:
        stack.down()


@pytest.fixture(scope="module")
def throttled():
    """A limit a test can reach quickly: 3 at once, then one every 10 s."""
    stack = Stack("throttle", env={"NGINX_LOGIN_RATE": "6r/m", "NGINX_LOGIN_BURST": "3"}, standin=True).up()
    yield stack
    stack.down()


def test_password_guessing_gets_429_while_logged_in_users_carry_on(throttled):
    member = WebUser(throttled.url)
    assert member.login().status_code == 302  # one of the address's login POSTs
    guesser = WebUser(throttled.url)
    statuses, pages = [], []
    for attempt in range(8):
        statuses.append(guesser.login(password=f"guess-{attempt}").status_code)
        pages += [member.get(path).status_code for path in ("/webclient/keepalive_ping/", "/api/v0/m/projects/")]
        pages.append(requests.get(throttled.url + "/static/webclient/css/layout.css", timeout=10).status_code)
    # A wrong password shows the form again (200) until the burst is spent; then 429, every time.
    first_429 = statuses.index(429)
    assert set(statuses[:first_429]) == {200} and set(statuses[first_429:]) == {429}, statuses
    assert 1 <= first_429 <= 3, statuses  # the burst (3) less the member's own login, give or take a refill
    assert set(pages) == {200}, pages  # logged-in pages and static files untouched
    assert guesser.get("/webclient/login/").status_code == 200  # GETs untouched
    assert_logged_in(member)


def test_the_429_says_what_happened_and_when_to_retry(throttled):
    guesser = WebUser(throttled.url)
    for _ in range(6):
        answer = guesser.login(password="wrong")
    assert answer.status_code == 429
    assert "Too many login attempts" in answer.text and answer.headers["Retry-After"] == "10"
    assert answer.headers["Content-Type"].startswith("text/html")
    api = requests.post(throttled.url + "/api/v0/login/", data={"username": "root", "password": "x", "server": 1},
                        timeout=10)  # fmt: skip
    assert api.status_code == 429  # the JSON API's login too
    assert "limiting requests" in throttled.logs("nginx")
