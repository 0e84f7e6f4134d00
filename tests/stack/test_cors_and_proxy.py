"""CORS switched on by one setting; CSRF and cookies behind a TLS-terminating proxy."""

import pytest
import requests

from docker_helpers import Stack, WebUser, assert_login_and_logout

ALLOWED = "https://app.example.org"


def preflight(stack, origin):
    return requests.options(
        stack.url + "/api/v0/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-csrftoken",
        },
        timeout=10,
    )


@pytest.fixture(scope="module")
def cors_list():
    running = Stack("cors", env=dict(CONFIG_omero_web_cors__origin__whitelist=f'["{ALLOWED}"]')).up()
    yield running
    running.down()


def test_allowed_origin_preflight(cors_list):
    answer = preflight(cors_list, ALLOWED)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert "GET" in answer.headers["Access-Control-Allow-Methods"]
    assert "x-csrftoken" in answer.headers["Access-Control-Allow-Headers"]
    simple = requests.get(cors_list.url + "/api/", headers={"Origin": ALLOWED}, timeout=10)
    assert simple.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_other_origin_gets_no_cors_headers(cors_list):
    answer = preflight(cors_list, "https://evil.example.org")
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Methods" not in answer.headers


def test_allow_all():
    stack = Stack("corsall", env=dict(CONFIG_omero_web_cors__origin__allow__all="true")).up()
    try:
        for origin in ("https://one.example.org", "http://two.example.net:3000"):
            assert preflight(stack, origin).headers["Access-Control-Allow-Origin"] == origin
    finally:
        stack.down()


def test_behind_an_https_proxy():
    """A TLS proxy in front sends X-Forwarded-Proto and the browser's Origin: the login works, its
    cookies are Secure, and the same form from another origin is refused by Django's CSRF check."""
    public = "https://omero.example.org"
    stack = Stack("https", env=dict(OMERO_WEB_PUBLIC_URL=public), standin=True).up()
    try:
        proxy = {"X-Forwarded-Proto": "https", "Host": "omero.example.org", "Origin": public}
        user = assert_login_and_logout(stack.url, headers=proxy, public_url=public)
        given = [c for c in user.set_cookies if "Max-Age=0" not in c]  # not logout's deletions
        assert {c.split("=", 1)[0] for c in given} == {"csrftoken", "sessionid"}, user.set_cookies
        assert all("; Secure" in c for c in given), user.set_cookies
        hostile = WebUser(stack.url, headers={**proxy, "Origin": "https://elsewhere.example.org"}, public_url=public)
        refused = hostile.login()
        assert refused.status_code == 403 and "CSRF" in refused.text
    finally:
        stack.down()
