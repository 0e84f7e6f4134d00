"""What `main` does before exec: rebuild config.xml from scratch, secret key, pid file, gunicorn."""

import json
import os
import stat

import pytest
from omero.config import ConfigXml

import entrypoint
from contract import WEB_PORT


def written(omerodir):
    xml = ConfigXml(str(omerodir / "etc" / "grid" / "config.xml"), read_only=True)
    try:
        return xml.as_map()
    finally:
        xml.close()


@pytest.fixture
def start(layout, monkeypatch):
    """Run `entrypoint.py web ...` up to the exec; return (argv, environment) given to gunicorn."""
    calls = []
    monkeypatch.setattr(entrypoint.os, "execvpe", lambda cmd, argv, env: calls.append((argv, env)))

    def run(*extra, **variables):
        calls.clear()
        assert entrypoint.main(["entrypoint.py", "web", *extra], {**layout[2], **variables}) == 0
        return calls[0]

    return run


def test_restarts_rebuild_the_same_config(layout, start):
    omerodir, config_dir, _ = layout
    (config_dir / "apps.omero").write_text("config append -- omero.web.apps '\"omeroweb.webgateway\"'\n")
    env = {"CONFIG_omero_web_debug": "true"}
    start(**env)
    first = written(omerodir)
    for _ in range(3):
        start(**env)
    assert written(omerodir) == first
    assert json.loads(first["omero.web.apps"]) == ["omeroweb.webgateway"]
    assert len(json.loads(first["omero.web.middleware"])) == 7


def test_removed_variable_disappears_from_config(layout, start):
    omerodir = layout[0]
    start(CONFIG_omero_web_page__size="10")
    assert written(omerodir)["omero.web.page_size"] == "10"
    start()
    assert "omero.web.page_size" not in written(omerodir)


def test_config_file_is_private(layout, start):
    start(CONFIG_omero_web_secret__key="k" * 50)
    mode = stat.S_IMODE(os.stat(layout[0] / "etc" / "grid" / "config.xml").st_mode)
    assert mode & 0o077 == 0


def test_secret_key_generated_once_and_kept(layout, start):
    omerodir = layout[0]
    start()
    path = omerodir / "var" / "django_secret_key"
    key = path.read_text()
    assert len(key) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    start()
    assert path.read_text() == key


def test_explicit_secret_key_skips_the_file(layout, start):
    start(CONFIG_omero_web_secret__key="x" * 50)
    assert not (layout[0] / "var" / "django_secret_key").exists()
    assert written(layout[0])["omero.web.secret_key"] == "x" * 50


def test_stale_pid_file_is_removed(layout, start):
    pid = layout[0] / "var" / "django.pid"
    pid.parent.mkdir(parents=True)
    pid.write_text("6")
    start()
    assert not pid.exists()


def test_gunicorn_defaults_match_omero_web_start(start):
    argv, env = start()
    assert argv[0] == "gunicorn"
    assert argv[argv.index("--bind") + 1] == f"0.0.0.0:{WEB_PORT}"
    assert argv[argv.index("--workers") + 1] == "5"
    assert argv[argv.index("--worker-class") + 1] == "gthread"  # keeps nginx's connections alive
    assert argv[argv.index("--threads") + 1] == "4"  # baked default (upstream: 1)
    assert argv[argv.index("--timeout") + 1] == "60"
    assert argv[argv.index("--max-requests") + 1] == "0"
    assert argv[argv.index("--config") + 1] == entrypoint.GUNICORN_CONFIG
    assert argv[-1] == "omeroweb.wsgi:application"
    assert "SCRIPT_NAME" not in env


def test_gunicorn_follows_config(start):
    argv, env = start(
        "--log-level",
        "debug",
        CONFIG_omero_web_wsgi__workers="3",
        CONFIG_omero_web_wsgi__threads="2",
        CONFIG_omero_web_wsgi__timeout="120",
        CONFIG_omero_web_application__server_port="4090",
        CONFIG_omero_web_wsgi__args="--keep-alive 10 --log-level info",
        OMERO_WEB_PREFIX="/omero/",
        SCRIPT_NAME="/stale",
    )
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:4090"
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--threads") + 1] == "2"
    assert argv[argv.index("--timeout") + 1] == "120"
    assert argv[-5:] == ["--log-level", "info", "--log-level", "debug", "omeroweb.wsgi:application"]
    assert "--keep-alive" in argv
    assert env["SCRIPT_NAME"] == "/omero"


def test_health_url_follows_prefix_and_port(layout, start):
    omerodir = layout[0]
    start()
    assert entrypoint.health_url(entrypoint.read_written_config(omerodir)) == f"http://127.0.0.1:{WEB_PORT}/webgateway/"
    start(OMERO_WEB_PREFIX="/omero", CONFIG_omero_web_application__server_port="4090")
    url = entrypoint.health_url(entrypoint.read_written_config(omerodir))
    assert url == "http://127.0.0.1:4090/omero/webgateway/"


def test_healthcheck_fails_without_server(layout, start):
    start(CONFIG_omero_web_application__server_port="1")
    assert entrypoint.healthcheck(str(layout[0]), timeout=1) == 1


def test_unwritable_config_directory_is_a_clear_error(layout, capsys):
    omerodir = layout[0]
    (omerodir / "etc").mkdir(parents=True)
    (omerodir / "etc" / "grid").write_text("not a directory")
    assert entrypoint.main(["entrypoint.py", "web"], layout[2]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "etc/grid" in err and "tmpfs" in err
    assert "Traceback" not in err
