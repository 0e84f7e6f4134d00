"""The nginx sidecar refuses invalid or dangerous values instead of writing them into its config."""

import pytest

from docker_helpers import NGINX_IMAGE, docker


@pytest.mark.parametrize(
    "name, value",
    [
        ("NGINX_CLIENT_MAX_BODY_SIZE", "1m; root /etc"),
        ("NGINX_CLIENT_MAX_BODY_SIZE", "10m\nserver { listen 9999; }"),
        ("NGINX_CLIENT_MAX_BODY_SIZE", "lots"),
        ("OMERO_WEB_PREFIX", "omero"),
        ("OMERO_WEB_PREFIX", "/om ero"),
        ("OMERO_WEB_PREFIX", "/omero;return 200"),
        ("OMERO_WEB_UPSTREAM", "web:4080; include /etc/passwd"),
        ("OMERO_WEB_UPSTREAM", "web"),
        ("NGINX_LISTEN_PORT", "70000"),
        ("NGINX_LISTEN_PORT", "80 default_server"),
        ("NGINX_PROXY_READ_TIMEOUT", "60s;"),
        ("NGINX_PROXY_SEND_TIMEOUT", "${HOME}"),
    ],
)
def test_refused(name, value):
    result = docker("run", "--rm", "-e", f"{name}={value}", NGINX_IMAGE, "render", check=False)
    assert result.returncode == 2
    assert name in result.stderr
    assert "nginx was not started" in result.stderr
    assert result.stdout == ""  # nothing rendered


def test_render_prints_the_effective_config():
    env = [
        "-e",
        "OMERO_WEB_PREFIX=/omero/",
        "-e",
        "NGINX_CLIENT_MAX_BODY_SIZE=2g",
        "-e",
        "OMERO_WEB_UPSTREAM=10.0.0.5:4080",
    ]
    result = docker("run", "--rm", *env, NGINX_IMAGE, "render")
    assert result.returncode == 0, result.stderr
    config = result.stdout
    assert "client_max_body_size 2g;" in config
    assert "proxy_pass http://omero_web;" in config
    assert "\nserver 10.0.0.5:4080;\n" in config  # an address: no DNS to follow
    assert "location /omero/static/ {" in config
    assert "location /omero/ {" in config
    assert "return 302 /omero$request_uri;" in config
    assert "${" not in config


def test_nginx_checks_the_rendered_config():
    # Well-formed for the allow-list, but beyond what nginx accepts as a size.
    result = docker("run", "--rm", "-e", "NGINX_CLIENT_MAX_BODY_SIZE=99999999999999999999g", NGINX_IMAGE, check=False)
    assert result.returncode == 2
    assert "nginx -t" in result.stderr
