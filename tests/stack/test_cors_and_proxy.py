"""CORS switched on by one setting; CSRF and cookies behind a TLS-terminating proxy."""

import pytest
import requests

from docker_helpers import Stack, login

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
    stack = Stack("https", env=dict(OMERO_WEB_PUBLIC_URL="https://omero.example.org")).up()
    try:
        proxy = {"X-Forwarded-Proto": "https", "Host": "omero.example.org", "Origin": "https://omero.example.org"}
        page, answer = login(stack.url, headers=proxy)
        assert "csrftoken=" in page.headers["Set-Cookie"]
        assert "Secure" in page.headers["Set-Cookie"]
        assert answer.status_code == 200, answer.text[:300]
        assert "Server is not responding" in answer.text
        # Without the public URL's origin, the same POST is cross-origin for Django.
        hostile = {**proxy, "Origin": "https://elsewhere.example.org"}
        _, refused = login(stack.url, headers=hostile)
        assert refused.status_code == 403 and "CSRF" in refused.text
    finally:
        stack.down()
