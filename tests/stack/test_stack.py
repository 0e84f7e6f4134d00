"""The default compose stack: nginx in front of gunicorn, Redis behind it."""

import re
import time

import pytest
import requests

from contract import NGINX_PORT, WEB_PORT
from docker_helpers import WebUser, docker, scaled


@pytest.mark.arch
def test_login_page_through_nginx(stack):
    page = requests.get(stack.url + "/webclient/login/", timeout=scaled(10))
    assert page.status_code == 200
    assert "OMERO.web - Login" in page.text
    assert page.headers["Server"] == "nginx"  # no version: server_tokens off
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"  # from OMERO.web


def test_root_redirects_to_webclient(stack):
    first = requests.get(stack.url + "/", timeout=scaled(10), allow_redirects=False)
    assert first.status_code == 301 and first.headers["Location"] == "/webclient/"
    assert requests.get(stack.url + "/", timeout=scaled(10)).url.endswith("/webclient/login/?url=%2Fwebclient%2F")


@pytest.mark.arch
def test_static_files_come_from_nginx_with_cache_headers(stack):
    answer = requests.get(
        stack.url + "/static/webclient/css/layout.css", timeout=scaled(10), headers={"Accept-Encoding": "gzip"}
    )
    assert answer.status_code == 200
    assert "text/css" in answer.headers["Content-Type"]
    assert "max-age=31536000" in answer.headers["Cache-Control"]
    assert "public" in answer.headers["Cache-Control"]
    assert answer.headers["Content-Encoding"] == "gzip"
    # Not gunicorn: the request never reaches the web container.
    before = stack.logs("web").count("layout.css")
    requests.get(stack.url + "/static/webclient/css/layout.css?again", timeout=scaled(10))
    assert stack.logs("web").count("layout.css") == before


def test_dotfiles_and_listings_refused(stack):
    for path in ("/.env", "/.git/config", "/static/.htaccess", "/static/webclient/.hidden", "/webclient/.x"):
        assert requests.get(stack.url + path, timeout=scaled(10)).status_code == 404, path
    listing = requests.get(stack.url + "/static/webclient/", timeout=scaled(10))
    assert listing.status_code in (403, 404)
    assert "Index of" not in listing.text


def test_health_endpoint_does_not_touch_gunicorn(stack):
    before = stack.logs("web")
    answer = requests.get(stack.url + "/healthz", timeout=scaled(10))
    assert answer.status_code == 200 and answer.text == "ok\n"
    assert stack.logs("web") == before


def test_login_post_reaches_omero_web(stack):
    answer = WebUser(stack.url).login()
    assert answer.status_code == 200
    assert "Server is not responding" in answer.text  # OMERO.web's own error, not a CSRF 403


def test_no_cors_by_default(stack):
    answer = requests.options(
        stack.url + "/api/",
        headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "GET"},
        timeout=scaled(10),
    )
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_maintenance_page_while_web_is_down(stack):
    nginx_id = stack.ids("nginx")[0]
    started_at = stack.exec(nginx_id, "cat", "/proc/1/stat").stdout.split()[21]
    stack.compose("stop", "web")
    try:
        page = stack.wait_status("/webclient/login/", 503, timeout=30)
        assert "OMERO.web is under maintenance" in page.text
        assert page.headers["Retry-After"] == "30"
        assert "no-store" in page.headers["Cache-Control"]
        assert "<link" not in page.text and "<script" not in page.text  # self-contained
        assert requests.get(stack.url + "/api/", timeout=scaled(10)).status_code == 503
        posted = requests.post(stack.url + "/webclient/login/", data={"a": "b"}, timeout=scaled(10))
        assert posted.status_code == 503 and "OMERO.web is under maintenance" in posted.text  # not 405
        assert (
            requests.get(stack.url + "/omero-web-maintenance.html", timeout=scaled(10)).status_code == 404
        )  # internal
        assert requests.get(stack.url + "/healthz", timeout=scaled(10)).status_code == 200
    finally:
        stack.compose("start", "web")
    stack.wait_status("/webclient/login/", 200, timeout=90)
    # Same nginx process all along: it found the restarted container by itself.
    assert stack.exec(nginx_id, "cat", "/proc/1/stat").stdout.split()[21] == started_at


def test_processes_and_rendered_config(stack):
    import testinfra

    nginx = testinfra.get_host("docker://" + stack.ids("nginx")[0])
    assert nginx.user().name == "nginx" and nginx.user().uid == 101
    uids = nginx.check_output("cat /proc/[0-9]*/status | sed -n 's/^Uid:[[:space:]]*\\([0-9]*\\).*/\\1/p' | sort -u")
    assert uids.split() == ["101"]
    # the port in hex (8080 = 0x1F90), state 0A = LISTEN
    assert f":{NGINX_PORT:04X} 00000000:0000 0A" in nginx.check_output("cat /proc/net/tcp")
    rendered = nginx.file("/tmp/nginx/nginx.conf").content_string
    assert f"listen {NGINX_PORT};" in rendered
    assert "include /tmp/nginx/proxy.conf;" in rendered
    assert "proxy_pass http://omero_web;" in nginx.file("/tmp/nginx/proxy.conf").content_string
    assert "client_max_body_size 0;" in rendered
    assert "${" not in rendered
    upstream = nginx.file("/tmp/nginx/upstream.conf").content_string
    assert re.fullmatch(rf"server [0-9.]+:{WEB_PORT} max_fails=0;\n", upstream), upstream
    written = nginx.file("/tmp/nginx/nginx.conf").mtime
    assert nginx.check_output("omero-web-nginx render").startswith(rendered + "# --- /tmp/nginx/upstream.conf")
    # `render` in a running container prints; it does not touch the live files.
    assert nginx.file("/tmp/nginx/nginx.conf").mtime == written
    web = testinfra.get_host("docker://" + stack.ids("web")[0])
    web_uids = web.check_output("cat /proc/[0-9]*/status | sed -n 's/^Uid:[[:space:]]*\\([0-9]*\\).*/\\1/p' | sort -u")
    assert web_uids.split() == ["999"]


def test_hardening(stack):
    stack.compose("up", "-d", "--no-build", "--wait")  # healthy again after the maintenance test
    for service in ("web", "nginx", "redis"):
        container = stack.ids(service)[0]
        fmt = "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} "
        fmt += "{{.State.Health.Status}}"
        info = docker("inspect", "-f", fmt, container).stdout
        assert info.startswith("true [ALL] [no-new-privileges:true] healthy"), (service, info)


def test_django_logs_reach_the_container_log(stack):
    deadline = time.monotonic() + 10
    while "omeroweb" not in stack.logs("web") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "omeroweb" in stack.logs("web")
