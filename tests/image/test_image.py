"""The omero-web image on its own: contents, user, start, restart, stop, bad input."""

import os
import re
import time

import pytest
import requests

from contract import CONTRACT, WEB_PORT, pinned
from docker_helpers import MACHINE_ARCHS, docker, image_arch, scaled

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.arch
def test_runs_as_non_root_omero_web(web):
    host = web.host
    assert host.user().name == "omero-web"
    assert host.user().uid == 999
    uids = host.check_output("cat /proc/[0-9]*/status | sed -n 's/^Uid:[[:space:]]*\\([0-9]*\\).*/\\1/p' | sort -u")
    assert uids.split() == ["999"]
    assert "gunicorn" in host.check_output("cat /proc/[0-9]*/cmdline | tr '\\0' ' '")


@pytest.mark.arch
def test_no_compiler_or_build_leftovers(web):
    host = web.host
    for tool in ("gcc", "cc", "g++", "c++", "make", "patch"):
        assert not host.exists(tool), tool
    assert not host.file("/usr/include/python3.13").exists
    # Debian's CA certificates only: the build's extra CAs (EXTRA_CA_BUNDLE) are not trusted here.
    assert not host.file("/usr/local/share/ca-certificates/extra").exists
    debian = int(host.check_output("ls /usr/share/ca-certificates/mozilla | wc -l"))
    trusted = host.file("/etc/ssl/certs/ca-certificates.crt").content_string.count("BEGIN CERTIFICATE")
    assert trusted == debian > 100
    assert not host.file("/build").exists


@pytest.mark.arch
def test_python_packages_import(web):
    result = web.host.run("python -c 'import Ice, omero, omeroweb, gunicorn, django_redis, whitenoise'")
    assert result.rc == 0, result.stderr
    assert web.host.check_output("python -c 'import sys; print(sys.version_info[:2])'") == "(3, 13)"


ELF_MACHINES = {0x3E: "amd64", 0xB7: "arm64"}  # e_machine of an ELF header


@pytest.mark.arch
def test_every_binary_is_the_architecture_the_image_says(web):
    """The image's config (what `docker pull --platform` and Kubernetes go by) names the
    architecture its binaries are built for: the kernel's view, Python, and the Ice extension
    (cross-compiled for another architecture, never the build machine's by mistake)."""
    said = image_arch()
    assert MACHINE_ARCHS[web.host.check_output("uname -m")] == said
    probe = "import IcePy; f = open(IcePy.__file__, 'rb'); f.seek(18); print(int.from_bytes(f.read(2), 'little'))"
    assert ELF_MACHINES[int(web.host.check_output(f'python -c "{probe}"'))] == said


def test_omero_version(web):
    assert web.host.check_output("omero version") == pinned("omero-py")


@pytest.mark.arch
def test_ice_round_trip_and_omero_client(web):
    with open(os.path.join(HERE, "ice_roundtrip.py")) as script:
        result = web.exec("python", "-", stdin=script.read())
    assert result.returncode == 0, result.stderr
    assert "round trip: OMERO" in result.stdout
    assert "omero.client: BaseClient 127.0.0.1 4064" in result.stdout
    assert "Error" not in result.stderr


@pytest.mark.arch
def test_login_page_and_static_files(web):
    page = requests.get(web.url + "/webclient/login/", timeout=scaled(10))
    assert page.status_code == 200
    assert "OMERO.web - Login" in page.text
    assert "facility-omero" in page.text
    assert f"OMERO.web {pinned('omero-web')}" in page.text
    css = requests.get(web.url + "/static/webclient/css/layout.css", timeout=scaled(10))
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]


def test_views_imported_once_before_the_workers_fork(web):
    """gunicorn.conf.py's on_starting imports the URL configuration in the master: the webclient
    views (which log an INIT line when imported) are imported there once, never in a worker's
    first request."""
    for _ in range(20):
        assert requests.get(web.url + "/webclient/login/", timeout=scaled(10)).status_code == 200
    log = web.logs()
    master = re.search(r"\[(\d+)\] \[INFO\] Starting gunicorn", log).group(1)
    workers = re.findall(r"Booting worker with pid: (\d+)", log)
    assert len(workers) == 5, log
    assert re.findall(r"\[omeroweb\.webclient\.views\] \(proc\.(\d+)\) INIT", log) == [master], log


def test_healthcheck_command(web, web_image):
    assert web.exec("entrypoint.py", "healthcheck").returncode == 0
    # Same config, but no gunicorn running: the probe must fail.
    idle = docker("run", "--rm", web_image, "bash", "-c", "entrypoint.py healthcheck", check=False)
    assert idle.returncode == 1
    assert "unhealthy" in idle.stderr


@pytest.mark.arch
def test_image_metadata(web_image):
    fmt = "{{.Config.User}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{json .Config.Entrypoint}}"
    user, ports, volumes, entry = docker("image", "inspect", "-f", fmt, web_image).stdout.strip().split("|")
    assert user == "omero-web"
    assert f"{WEB_PORT}/tcp" in ports
    assert "/opt/omero/web/OMERO.web/var" in volumes
    assert entry.startswith('["/usr/bin/tini"')
    labels = docker("image", "inspect", "-f", "{{json .Config.Labels}}", web_image).stdout
    assert f'"org.opencontainers.image.version":"{pinned("omero-web")}"' in labels
    assert "org.opencontainers.image.revision" in labels
    health = docker("image", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", web_image).stdout
    assert "healthcheck" in health


def test_prefix(run_web):
    web = run_web(env={"OMERO_WEB_PREFIX": "/omero/"})
    page = web.wait_http("/omero/webclient/login/")
    assert "OMERO.web - Login" in page.text
    assert 'href="/omero/static/' in page.text
    assert requests.get(web.url + "/omero/static/webclient/css/layout.css", timeout=scaled(10)).status_code == 200
    assert web.exec("entrypoint.py", "healthcheck").returncode == 0


def test_restarts_keep_identical_config(run_web):
    web = run_web(
        env={"CONFIG_omero_web_server__list": '[["omero.example.org", 4064, "x"]]', "CONFIG_omero_web_debug": "true"}
    )
    web.wait_http()
    first = web.exec("omero", "config", "get").stdout
    assert "omero.web.debug=true" in first
    assert first.count("WhiteNoiseMiddleware") == 1
    for _ in range(3):
        docker("restart", web.id)
        web.wait_http()
        assert web.exec("omero", "config", "get").stdout == first


@pytest.mark.arch
def test_sigterm_exits_cleanly_and_restarts(run_web):
    web = run_web()
    web.wait_http()
    started = time.monotonic()
    docker("kill", "--signal", "TERM", web.id)
    assert docker("wait", web.id, timeout=30).stdout.strip() == "0"
    assert time.monotonic() - started < scaled(10)
    assert "Shutting down: Master" in web.logs()
    docker("start", web.id)
    web.wait_http()
    assert web.exec("test", "-e", "/opt/omero/web/OMERO.web/var/django.pid").returncode != 0


def test_invalid_variable_starts_nothing(web_image):
    result = docker("run", "--rm", "-e", "CONFIG_omero_web_debug=yes", web_image, check=False)
    assert result.returncode == 2
    assert "CONFIG_omero_web_debug" in result.stderr
    assert "true or false" in result.stderr
    assert "Booting worker" not in result.stdout + result.stderr
    assert "Listening at" not in result.stdout + result.stderr


def test_a_misspelled_variable_is_pointed_out_and_changes_nothing(web_image):
    """The image reads the environment contract it was built with (omeroweb/environment.toml)."""
    baked = docker("run", "--rm", web_image, "cat", "/opt/omero/web/defaults/environment.toml").stdout
    assert baked == open(os.path.join(HERE, "..", "..", "omeroweb", "environment.toml")).read()
    result = docker("run", "--rm", "-e", "OMERO_WEB_PLUGIN=figure", web_image, "check", check=False)
    assert result.returncode == 0, result.stderr
    assert "WARNING: OMERO_WEB_PLUGIN is not a variable of these images, so it changes nothing. " in result.stderr
    assert "Did you mean OMERO_WEB_PLUGINS?" in result.stderr
    assert "omero_figure" not in result.stdout
    quiet = docker("run", "--rm", "-e", "OMEROHOST=omero.example.org", "-e", "OMERO_WEB_PORT=8080", web_image, "check")
    assert "WARNING" not in quiet.stderr and "OMERO_WEB_PORT" in CONTRACT["compose"]  # compose's own, via .env


def test_check_command_redacts_secrets(web_image):
    result = docker("run", "--rm", "-e", "CONFIG_omero_web_secret__key=do-not-show-me", web_image, "check", check=False)
    assert result.returncode == 0, result.stderr
    assert "omero.web.secret_key=********" in result.stdout
    assert "do-not-show-me" not in result.stdout + result.stderr


@pytest.mark.arch
def test_any_other_command_runs(web_image):
    result = docker("run", "--rm", web_image, "bash", "-c", "id -un", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "omero-web"


def test_clearsessions_removes_expired_sessions(run_web):
    web = run_web(args=("bash", "-c", "sleep infinity"))  # config written, nothing serving
    make = (
        "import django; django.setup()\n"
        "from django.contrib.sessions.backends.file import SessionStore\n"
        "for age in (-60, 3600):\n"
        "    s = SessionStore(); s['probe'] = age; s.set_expiry(age); s.save(); print(s.session_key)\n"
    )
    expired, live = web.exec("python", "-c", make).stdout.split()
    result = web.exec("entrypoint.py", "clearsessions")
    assert result.returncode == 0, result.stderr
    assert web.exec("test", "-e", f"/tmp/sessionid{expired}").returncode != 0
    assert web.exec("test", "-e", f"/tmp/sessionid{live}").returncode == 0
