"""OMERO_WEB_PREFIX=/omero: one variable, read by both the web and the nginx containers."""

import re
from urllib.parse import urljoin

import pytest
import requests

from docker_helpers import Stack, assert_login_and_logout


@pytest.fixture(scope="module")
def prefixed():
    running = Stack("prefix", env=dict(OMERO_WEB_PREFIX="/omero"), standin=True).up()
    yield running
    running.down()


def test_login_page_and_every_static_url_under_the_prefix(prefixed):
    page = requests.get(prefixed.url + "/omero/webclient/login/", timeout=10)
    assert page.status_code == 200 and "OMERO.web - Login" in page.text
    urls = set(re.findall(r'(?:href|src)="(/[^"]+)"', page.text))
    static = {u for u in urls if "/static/" in u}
    assert len(static) >= 5
    for url in urls:
        assert url.startswith("/omero/"), url
    for url in static:
        answer = requests.get(urljoin(prefixed.url, url), timeout=10)
        assert answer.status_code == 200, url
        assert answer.headers["Server"] == "nginx"


def test_outside_the_prefix_redirects_into_it(prefixed):
    root = requests.get(prefixed.url + "/", timeout=10, allow_redirects=False)
    assert root.status_code == 302 and root.headers["Location"].endswith("/omero/")
    bare = requests.get(prefixed.url + "/omero", timeout=10, allow_redirects=False)
    assert bare.status_code == 302 and bare.headers["Location"].endswith("/omero/")
    final = requests.get(prefixed.url + "/", timeout=10)
    assert final.status_code == 200 and final.url.endswith("/omero/webclient/login/?url=%2Fomero%2Fwebclient%2F")


def test_redirects_keep_the_prefix(prefixed):
    answer = requests.get(prefixed.url + "/omero/webclient/", timeout=10, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/omero/webclient/login/")
    assert requests.get(prefixed.url + "/omero/webgateway/", timeout=10).text == "Welcome to webgateway"


def test_login_logged_in_pages_and_logout_under_the_prefix(prefixed):
    assert_login_and_logout(prefixed.url, prefix="/omero")


def test_maintenance_page_under_the_prefix(prefixed):
    prefixed.compose("stop", "web")
    try:
        page = prefixed.wait_status("/omero/webclient/login/", 503, timeout=30)
        assert "OMERO.web is under maintenance" in page.text
        assert page.headers["Retry-After"] == "30"
    finally:
        prefixed.compose("start", "web")
    prefixed.wait_status("/omero/webclient/login/", 200, timeout=90)
