"""HTTPS served by the nginx sidecar (NGINX_HTTPS): the compose stack with a self-signed certificate
and with a site's own certificate files, checked with curl, openssl, Python's TLS client and
Debian's chromium. The public name is `localhost` on a port chosen before the stack starts
(OMERO_WEB_PUBLIC_URL must name it, as a site's names its own)."""

import base64
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from test_plugins import CHROMIUM

from contract import REPO
from docker_helpers import Stack, WebUser, assert_logged_in, scaled
from tls_helpers import issue, make_ca


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def https_stack(name, mode, **env):
    port = free_port()
    public = f"https://localhost:{port}"
    env = {"NGINX_HTTPS": mode, "OMERO_WEB_PUBLIC_URL": public, "OMERO_WEB_HTTPS_PORT": str(port), **env}
    stack = Stack(name, env=env, standin=mode == "self-signed").up()
    stack.public = public
    return stack


def served_certificate(url):
    """The certificate the server at `url` presents (PEM), unverified: what is served, not what is trusted."""
    host, port = url.removeprefix("https://").split(":")
    return ssl.get_server_certificate(("127.0.0.1", int(port)), timeout=scaled(10))


def curl(*args):
    result = subprocess.run(["curl", "--silent", "--show-error", "--max-time", "10", *args],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def site():
    """A trial site: NGINX_HTTPS=self-signed, the stand-in as OMERO.server."""
    stack = https_stack("https", "self-signed")
    certificate = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    with certificate:
        certificate.write(stack.exec(stack.ids("nginx")[0], "cat", "/var/lib/omero-web-nginx/tls/tls.crt").stdout)
    stack.ca = certificate.name
    yield stack
    stack.down()
    os.unlink(certificate.name)


def test_http2_tls_versions_and_hsts(site):
    out = curl("--cacert", site.ca, "--include", "--output", "-", "--write-out", "\n%{http_version}",
               site.public + "/webclient/login/")  # fmt: skip
    head, _, version = out.rpartition("\n")
    assert version == "2"  # HTTP/2 negotiated (ALPN), the certificate verified for `localhost`
    assert head.startswith("HTTP/2 200")
    assert "strict-transport-security: max-age=63072000\n" in head.lower()
    assert "x-content-type-options: nosniff" in head.lower()
    assert "x-frame-options: sameorigin" in head.lower()  # OMERO.web's own (docs/https.md)
    port = site.public.rsplit(":", 1)[1]
    for version, refused in (("-tls1", True), ("-tls1_1", True), ("-tls1_2", False), ("-tls1_3", False)):
        # SECLEVEL=0: this client may offer old versions, so a refusal is the server's (alert 70).
        handshake = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", version,
             "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", site.ca, "-verify_return_error"],
            input="", capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if refused:
            assert handshake.returncode != 0 and "alert protocol version" in handshake.stderr, (version, handshake)
        else:
            assert handshake.returncode == 0 and "Verify return code: 0 (ok)" in handshake.stdout, (version, handshake)


def test_plain_http_redirects_to_the_public_https_address(site):
    answer = requests.get(site.url + "/webclient/login/?url=%2Fwebclient%2F", allow_redirects=False, timeout=10)
    assert answer.status_code == 301
    assert answer.headers["Location"] == site.public + "/webclient/login/?url=%2Fwebclient%2F"
    assert requests.get(site.url + "/healthz", timeout=10).text == "ok\n"  # the container's health check


def test_login_over_https_sets_and_uses_a_secure_cookie(site):
    user = WebUser(site.public, verify=site.ca)
    answer = user.login()
    assert answer.status_code == 302, answer.text[:300]
    session_cookie = [c for c in user.set_cookies if c.startswith("sessionid=")]
    assert session_cookie and "; Secure" in session_cookie[0], user.set_cookies
    assert assert_logged_in(user)["omeName"] == "root"


def spki_pin(pem_file):
    """Chromium's pin of a certificate's key (base64 SHA-256 of the SubjectPublicKeyInfo)."""
    key = subprocess.run(["openssl", "x509", "-in", pem_file, "-pubkey", "-noout"], capture_output=True, check=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=key.stdout, capture_output=True,
                         check=True)  # fmt: skip
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der.stdout, capture_output=True,
                            check=True)  # fmt: skip
    return base64.b64encode(digest.stdout).decode()


def test_a_real_browser_logs_in_over_https(site):
    """Debian's chromium trusts exactly this certificate's key (pinned, not "ignore errors"): it loads
    the login page over HTTP/2, logs in, and its Secure session cookie carries it into the webclient."""
    from playwright.sync_api import sync_playwright

    failed = []
    with sync_playwright() as playwright:
        pin = f"--ignore-certificate-errors-spki-list={spki_pin(site.ca)}"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", pin])
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("requestfailed", lambda r: failed.append(f"{r.method} {r.url}: {r.failure}"))
            page.route(lambda url: not url.startswith(site.public), lambda route: route.fulfill(json=[]))
            # Into the smallest logged-in page (the webclient's tree would ask the stand-in for
            # services it does not have): "OK" when logged in, "Connection Failed" when not.
            ping = site.public + "/webclient/keepalive_ping/"
            login = page.goto(f"{site.public}/webclient/login/?url={ping.removeprefix(site.public)}",
                              wait_until="networkidle")  # fmt: skip
            assert login.status == 200 and page.title() == "OMERO.web - Login"
            assert page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
            page.fill("#id_username", "root")
            page.fill("#id_password", "omero")
            page.click("input[type=submit]")
            page.wait_for_url(ping)
            assert page.inner_text("body") == "OK"
            cookies = {c["name"]: c for c in context.cookies()}
            assert cookies["sessionid"]["secure"] and cookies["csrftoken"]["secure"]
            assert page.goto(ping).status == 200 and page.inner_text("body") == "OK"  # the cookie is used
        finally:
            browser.close()
    assert failed == [], failed


def test_self_signed_certificate_is_kept_across_a_new_container(site):
    before = served_certificate(site.public)
    site.compose("up", "-d", "--no-deps", "--force-recreate", "--wait", "nginx", timeout=120)
    assert served_certificate(site.public) == before
    assert "serving the self-signed certificate kept in" in site.logs("nginx")


# --- NGINX_HTTPS=files: a site's own certificate, renewed on disk ----------------------------------


def install(directory, name, tls_dir):
    """Put a pair in place as a renewal tool does: written beside, then renamed over the old one."""
    for suffix in ("key", "crt"):
        os.replace(os.path.join(directory, f"{name}.{suffix}"), os.path.join(tls_dir, f"tls.{suffix}.new"))
    for suffix in ("key", "crt"):
        os.replace(os.path.join(tls_dir, f"tls.{suffix}.new"), os.path.join(tls_dir, f"tls.{suffix}"))


@pytest.fixture(scope="module")
def own_certificate():
    work = tempfile.mkdtemp(prefix="owtest-tls-")
    tls_dir = os.path.join(work, "tls")
    os.mkdir(tls_dir)
    os.chmod(tls_dir, 0o755)
    make_ca(work)
    issue(work, "first")
    install(work, "first", tls_dir)
    stack = https_stack("tlsfiles", "files", OMERO_WEB_TLS_DIR=tls_dir)
    stack.work, stack.tls_dir, stack.ca = work, tls_dir, os.path.join(work, "ca.crt")
    yield stack
    stack.down()
    subprocess.run(["rm", "-rf", work], check=True)


def wait_served(url, wanted, timeout=20):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if served_certificate(url) == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"the certificate in place was not served within {timeout}s")


def pem(path):
    with open(path) as handle:
        return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(handle.read()))


def test_a_renewed_certificate_is_served_without_a_restart_or_a_failed_request(own_certificate):
    """A request loop (HTTP/1.1, each request 5 s at most, verified against the test CA) runs while
    two renewals are put in place: no request fails, each new certificate is served within seconds,
    and nginx was never restarted. Each request on a new connection: a reload closes *idle*
    kept-alive connections (nginx's old workers leave), which HTTP/1.1 allows and browsers answer by
    reopening one (RFC 9112 9.3.1); a request already sent is always answered."""
    site = own_certificate
    nginx = site.ids("nginx")[0]
    started = site.exec(nginx, "sh", "-c", "cat /proc/1/stat").stdout.split()[21]
    outcomes, stop = {"ok": 0, "errors": []}, threading.Event()

    def load():
        with requests.Session() as http:
            http.verify, http.trust_env = site.ca, False  # (REQUESTS_CA_BUNDLE would win otherwise)
            while not stop.is_set():
                try:
                    answer = http.get(site.public + "/webclient/login/", timeout=5, headers={"Connection": "close"})
                    if answer.status_code == 200:
                        outcomes["ok"] += 1
                    else:
                        outcomes["errors"].append(answer.status_code)
                except requests.RequestException as error:
                    outcomes["errors"].append(repr(error))

    loop = threading.Thread(target=load)
    loop.start()
    try:
        for renewal in ("second", "third"):
            time.sleep(2)
            issue(site.work, renewal)
            wanted = pem(os.path.join(site.work, f"{renewal}.crt"))
            install(site.work, renewal, site.tls_dir)
            wait_served(site.public, wanted)
        time.sleep(2)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert outcomes["errors"] == [] and outcomes["ok"] > 20, outcomes
    assert site.exec(nginx, "sh", "-c", "cat /proc/1/stat").stdout.split()[21] == started  # same nginx master
    assert site.logs("nginx").count("new certificate in") >= 2


def test_a_key_that_does_not_match_is_refused_and_the_old_pair_kept(own_certificate):
    site = own_certificate
    before = served_certificate(site.public)
    issue(site.work, "stray")
    os.replace(os.path.join(site.work, "stray.crt"), os.path.join(site.tls_dir, "tls.crt"))  # new cert, old key
    deadline = time.monotonic() + scaled(20)
    while "was refused" not in site.logs("nginx") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "the new certificate or key in /var/lib/omero-web-nginx/tls was refused" in site.logs("nginx")
    assert served_certificate(site.public) == before
    assert requests.get(site.public + "/webclient/login/", verify=site.ca, timeout=10).status_code == 200


def compose_config(https_mode):
    """`docker compose config` of compose.yaml with NGINX_HTTPS alone set, as a site's .env would
    (the tests' own OMERO_WEB_* overrides removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMERO_WEB_", "NGINX_"))}
    return subprocess.run(["docker", "compose", "-f", os.path.join(REPO, "compose.yaml"), "config", "--format",
                           "json"], env=dict(env, NGINX_HTTPS=https_mode), cwd=REPO, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.mark.parametrize("mode", ["off", "files", "self-signed", "acme"])
def test_compose_publishes_the_ports_of_the_https_mode(mode):
    """One setting: with NGINX_HTTPS on, compose publishes 80 and 443 on every interface; off keeps
    127.0.0.1:8080 (and the HTTPS port on a free loopback port nothing listens behind)."""
    config = compose_config(mode)
    assert config.returncode == 0, config.stderr
    ports = json.loads(config.stdout)["services"]["nginx"]["ports"]
    published = {(p["host_ip"], p.get("published", ""), p["target"]) for p in ports}
    if mode == "off":
        assert published == {("127.0.0.1", "8080", 8080), ("127.0.0.1", "", 8443)}
    else:
        assert published == {("0.0.0.0", "80", 8080), ("0.0.0.0", "443", 8443)}


def test_compose_refuses_an_unknown_https_mode_by_its_file_name():
    config = compose_config("on")
    assert config.returncode != 0 and "compose/nginx-ports-on.yaml: no such file" in config.stderr, config.stderr
