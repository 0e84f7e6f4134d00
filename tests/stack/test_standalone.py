"""omero-web-standalone: supervisor runs gunicorn and nginx in one container."""

import os
import tempfile

import pytest
import requests

from contract import NGINX_HTTPS_PORT, NGINX_PORT, WEB_PORT
from docker_helpers import STANDALONE_IMAGE, USERS, Container, Standin, WebUser, assert_login_and_logout, docker

SUPERVISORCTL = ["supervisorctl", "-c", "/opt/omero/web/defaults/supervisord.conf"]


@pytest.fixture(params=["", "/omero"], ids=["root", "prefix"])
def standalone(request):
    env = {"CONFIG_omero_web_server__list": '[["omero.example.org", 4064, "standalone-omero"]]'}
    if request.param:
        env["OMERO_WEB_PREFIX"] = request.param
    container = Container(STANDALONE_IMAGE, env=env, port=NGINX_PORT)
    container.prefix = request.param
    yield container
    container.remove()


def test_login_static_and_maintenance(standalone):
    prefix = standalone.prefix
    page = standalone.wait_http(prefix + "/webclient/login/", timeout=90)
    assert "standalone-omero" in page.text
    assert page.headers["Server"] == "nginx"
    css = requests.get(f"{standalone.url}{prefix}/static/webclient/css/layout.css", timeout=10)
    assert css.status_code == 200 and css.headers["Server"] == "nginx"
    assert "max-age=31536000" in css.headers["Cache-Control"]

    stopped = standalone.exec(*SUPERVISORCTL, "stop", "web")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    down = requests.get(f"{standalone.url}{prefix}/webclient/login/", timeout=10)
    assert down.status_code == 503
    assert "OMERO.web is under maintenance" in down.text
    assert down.headers["Retry-After"] == "30"

    assert standalone.exec(*SUPERVISORCTL, "start", "web").returncode == 0
    standalone.wait_http(prefix + "/webclient/login/", timeout=90)


def test_gunicorn_only_on_loopback(standalone):
    standalone.wait_http(standalone.prefix + "/webclient/login/", timeout=90)
    tcp = standalone.exec("cat", "/proc/net/tcp").stdout
    assert f"0100007F:{WEB_PORT:04X} 00000000:0000 0A" in tcp  # gunicorn on 127.0.0.1, LISTEN
    assert f"00000000:{WEB_PORT:04X} 00000000:0000 0A" not in tcp  # not on 0.0.0.0
    assert f"00000000:{NGINX_PORT:04X} 00000000:0000 0A" in tcp  # nginx on 0.0.0.0


def test_invalid_config_starts_nothing():
    result = docker("run", "--rm", "-e", "CONFIG_omero_web_debug=maybe", STANDALONE_IMAGE, check=False)
    assert result.returncode == 2
    assert "CONFIG_omero_web_debug" in result.stderr
    assert "supervisord" not in result.stdout + result.stderr


@pytest.mark.parametrize("prefix", ["", "/omero"])
def test_login_against_the_standin(prefix):
    standin = Standin()
    try:
        env = {"OMEROHOST": "omero", "OMERO_WEB_PREFIX": prefix}
        standalone = Container(STANDALONE_IMAGE, env=env, port=NGINX_PORT, docker_args=standin.docker_args)
        try:
            standalone.wait_http(prefix + "/webclient/login/", timeout=90)
            assert_login_and_logout(standalone.url, prefix)
        finally:
            standalone.remove()
    finally:
        standin.remove()


def test_https_self_signed_with_a_volume():
    """docs/https.md's `docker run` of the standalone image: HTTPS on 8443 with a certificate made
    once in a volume (kept across a restart), a real login against the stand-in over it, 8080 redirecting."""
    from test_https import free_port, served_certificate

    port, volume, standin = free_port(), f"owtest-standalone-tls-{os.getpid()}", Standin()
    public = f"https://localhost:{port}"
    env = {"OMEROHOST": "omero", "NGINX_HTTPS": "self-signed", "OMERO_WEB_PUBLIC_URL": public}
    docker_args = (*standin.docker_args, "-p", f"127.0.0.1:{port}:{NGINX_HTTPS_PORT}",
                   "-v", f"{volume}:/var/lib/omero-web-nginx/tls")  # fmt: skip
    standalone = Container(STANDALONE_IMAGE, env=env, port=NGINX_PORT, docker_args=docker_args)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as certificate:
            certificate.write(standalone.wait_file("/var/lib/omero-web-nginx/tls/tls.crt"))
            certificate.flush()
            standalone.wait_http("/webclient/login/", timeout=90, base=public, verify=certificate.name)
            redirect = requests.get(standalone.url + "/webclient/login/", allow_redirects=False, timeout=10)
            assert (redirect.status_code, redirect.headers["Location"]) == (301, public + "/webclient/login/")
            assert_login_and_logout(public, verify=certificate.name)
            before = served_certificate(public)
            docker("restart", standalone.id, timeout=120)
            standalone.wait_http("/webclient/login/", timeout=90, base=public, verify=certificate.name)
            assert served_certificate(public) == before
    finally:
        standalone.remove()
        standin.remove()
        docker("volume", "rm", volume, check=False)


def test_a_public_site_with_the_cache(tmp_path):
    """docs/public-data.md in one container: the public user (password from a mounted file) and
    NGINX_CACHE=on, the cache in a volume: a visitor's thumbnail is stored, the next visitor's is a
    HIT; a logged-in user's is never stored."""
    password = tmp_path / "public-password"
    password.write_text(USERS["public"] + "\n")
    password.chmod(0o644)
    standin, volume = Standin(), f"owtest-standalone-cache-{os.getpid()}"
    env = {"OMEROHOST": "omero", "OMERO_WEB_PUBLIC_USER": "public", "NGINX_CACHE": "on",
           "OMERO_WEB_PUBLIC_PASSWORD_FILE": "/run/secrets/public-password"}  # fmt: skip
    docker_args = (*standin.docker_args, "-v", f"{volume}:/var/cache/omero-web-nginx",
                   "-v", f"{password}:/run/secrets/public-password:ro")  # fmt: skip
    standalone = Container(STANDALONE_IMAGE, env=env, port=NGINX_PORT, docker_args=docker_args)
    try:
        standalone.wait_http("/webclient/login/", timeout=90)
        first, second = WebUser(standalone.url), WebUser(standalone.url)
        answers = [user.get("/webgateway/render_thumbnail/1/") for user in (first, second)]
        statuses = [(answer.status_code, answer.headers.get("X-Cache-Status")) for answer in answers]
        assert statuses == [(200, "MISS"), (200, "HIT")]
        owner = WebUser(standalone.url)
        assert owner.login("user-1").status_code == 302
        owner.http.cookies.pop("omero_web_cache")
        mine = owner.get("/webgateway/render_thumbnail/3/")
        assert (mine.status_code, mine.headers.get("X-Cache-Status")) == (200, "MISS")
        other = first.get("/webgateway/render_thumbnail/3/")
        assert other.headers.get("X-Cache-Status") == "MISS" and other.content != mine.content
    finally:
        standalone.remove()
        standin.remove()
        docker("volume", "rm", volume, check=False)
