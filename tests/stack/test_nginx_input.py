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
        ("NGINX_HTTPS", "on"),
        ("NGINX_HTTPS_LISTEN_PORT", "8080"),
        ("NGINX_TLS_DIR", "/etc/ssl; include x"),
        ("NGINX_HSTS_MAX_AGE", "1y"),
        ("NGINX_TRUSTED_PROXIES", "10.0.0.0/8; allow all"),
        ("NGINX_LOGIN_RATE", "5"),
        ("NGINX_LOGIN_BURST", "-1"),
        ("OMERO_WEB_PUBLIC_URL", "https://omero.example.org; return 200"),
        ("NGINX_ACME_DIRECTORY", "http://acme.example.org/directory"),  # the ACME API is https only
        ("NGINX_ACME_DIRECTORY", "https://acme.example.org/dir --ca x"),
        ("NGINX_ACME_EMAIL", "admin@example.org --contact x"),
        ("NGINX_ACME_RENEW_DAYS", "0"),
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


@pytest.mark.parametrize("public_url", ["", "http://omero.example.org"])
def test_https_needs_an_https_public_url(public_url):
    env = ["-e", "NGINX_HTTPS=self-signed", "-e", f"OMERO_WEB_PUBLIC_URL={public_url}"]
    result = docker("run", "--rm", *env, NGINX_IMAGE, check=False)
    assert result.returncode == 2
    assert "NGINX_HTTPS=self-signed needs OMERO_WEB_PUBLIC_URL=https://" in result.stderr


def test_acme_needs_a_host_name():
    env = ["-e", "NGINX_HTTPS=acme", "-e", "OMERO_WEB_PUBLIC_URL=https://192.0.2.10"]
    result = docker("run", "--rm", *env, NGINX_IMAGE, check=False)
    assert result.returncode == 2
    assert "NGINX_HTTPS=acme needs a host name in OMERO_WEB_PUBLIC_URL (now '192.0.2.10')" in result.stderr


def test_acme_renew_outside_acme_mode_says_so():
    result = docker("run", "--rm", NGINX_IMAGE, "acme-renew", check=False)
    assert result.returncode == 2 and "acme-renew: NGINX_HTTPS is 'off', not acme." in result.stderr


def test_render_acme_serves_challenges_on_the_plain_port():
    env = ["-e", "NGINX_HTTPS=acme", "-e", "OMERO_WEB_PUBLIC_URL=https://omero.example.org"]
    config = docker("run", "--rm", *env, NGINX_IMAGE, "render").stdout
    assert "location ^~ /.well-known/acme-challenge/ {" in config and "root /tmp/nginx/acme-challenge;" in config
    assert "return 301 https://omero.example.org$request_uri;" in config


def test_files_mode_names_the_missing_files():
    result = docker("run", "--rm", "-e", "NGINX_HTTPS=files", "-e", "OMERO_WEB_PUBLIC_URL=https://omero.example.org",
                    NGINX_IMAGE, check=False)  # fmt: skip
    assert result.returncode == 2
    assert "/var/lib/omero-web-nginx/tls/tls.crt" in result.stderr and "tls.key" in result.stderr


def test_render_with_https_trusted_proxies_and_login_limit():
    env = {
        "NGINX_HTTPS": "self-signed",
        "OMERO_WEB_PUBLIC_URL": "https://omero.example.org/",
        "NGINX_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.5",
        "NGINX_LOGIN_RATE": "12r/m",
        "NGINX_HSTS_MAX_AGE": "600",
        "OMERO_WEB_PREFIX": "/omero",
    }
    result = docker("run", "--rm", *[f"-e{k}={v}" for k, v in env.items()], NGINX_IMAGE, "render")
    config = result.stdout
    assert "listen 8443 ssl;" in config and "http2 on;" in config
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in config
    assert "return 301 https://omero.example.org$request_uri;" in config
    assert 'add_header Strict-Transport-Security "max-age=600" always;' in config
    assert "set_real_ip_from 10.0.0.0/8;" in config and "set_real_ip_from 192.168.1.5;" in config
    assert "map $scheme $omero_forwarded_proto { default $scheme; }" in config  # the edge: its own scheme
    assert '"~^POST:/omero/(webclient|webadmin)/login/$" $binary_remote_addr;' in config
    assert "rate=12r/m;" in config and "add_header Retry-After 5 always;" in config
    off = docker("run", "--rm", "-e", "NGINX_LOGIN_RATE=off", NGINX_IMAGE, "render").stdout
    assert "limit_req" not in off and "Strict-Transport-Security" not in off and "listen 8080;" in off
