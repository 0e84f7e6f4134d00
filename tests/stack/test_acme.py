"""NGINX_HTTPS=acme against a real ACME server: Pebble (Let's Encrypt's test CA, tests/stack/acme.yaml)
on the compose project's network, the real HTTP-01 flow through nginx's port 8080, and a forced
renewal while a request loop runs. The public name is `omero.test` (nginx's alias on that network);
the test reaches it on 127.0.0.1 and checks the certificate for that name against Pebble's root."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from test_https import curl, free_port

from contract import NGINX_HTTPS_PORT, NGINX_PORT, REPO
from docker_helpers import STANDALONE_IMAGE, Container, Stack, run_tool, scaled

NAME = "omero.test"


def tools():
    """The directory holding Pebble (tests/chart/tools.sh builds it once from the Go module proxy)."""
    return run_tool([os.path.join(REPO, "tests", "chart", "tools.sh"), "pebble"], timeout=1800).stdout.strip()


def pebble_config(work):
    """Pebble's own test configuration, but one certificate profile (it picks one at random
    otherwise) and HTTP-01 checked on nginx's container port."""
    config = {
        "pebble": {
            "listenAddress": "0.0.0.0:14000",
            "managementListenAddress": "0.0.0.0:15000",
            "certificate": "/pebble-files/certs/localhost/cert.pem",
            "privateKey": "/pebble-files/certs/localhost/key.pem",
            "httpPort": 8080,
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "retryAfter": {"authz": 1, "order": 1},
            "keyAlgorithm": "ecdsa",
            "profiles": {"default": {"description": "90 days", "validityPeriod": 7776000}},
        }
    }
    path = os.path.join(work, "pebble-config.json")
    with open(path, "w") as handle:
        json.dump(config, handle)
    os.chmod(path, 0o644)
    return path


def served(port, ca=None, name=NAME):
    """The certificate (DER) served for `name` on 127.0.0.1:port; verified against `ca` if given."""
    context = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


def get(port, ca, path="/webclient/login/"):
    """One HTTP/1.1 request on a new verified connection (5 s deadline): the status line's code."""
    context = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {NAME}:{port}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def acme_site():
    bin_dir = tools()
    work = tempfile.mkdtemp(prefix="owtest-acme-")
    bundle = os.path.join(work, "ca-bundle.crt")  # the system's CAs and Pebble's API CA
    with open(bundle, "w") as out:
        for part in (
            "/etc/ssl/certs/ca-certificates.crt",
            os.path.join(bin_dir, "pebble-files/certs/pebble.minica.pem"),
        ):
            with open(part) as handle:
                out.write(handle.read())
    os.chmod(bundle, 0o644)
    port = free_port()
    env = {
        "NGINX_HTTPS": "acme",
        "OMERO_WEB_PUBLIC_URL": f"https://{NAME}:{port}",
        "OMERO_WEB_HTTPS_PORT": str(port),
        "NGINX_ACME_DIRECTORY": "https://pebble:14000/dir",
        "NGINX_ACME_EMAIL": "omero-admin@example.org",
        "PEBBLE_BIN": os.path.realpath(os.path.join(bin_dir, "pebble")),
        "PEBBLE_FILES": os.path.realpath(os.path.join(bin_dir, "pebble-files")),
        "PEBBLE_CONFIG": pebble_config(work),
        "ACME_CA_BUNDLE": bundle,
    }
    stack = Stack("acme", env=env, standin=True, overlays=["tests/stack/acme.yaml"]).up()
    stack.port = port
    management = stack.compose("port", "pebble", "15000").stdout.strip()
    minica = os.path.join(bin_dir, "pebble-files/certs/pebble.minica.pem")
    root = requests.get(f"https://{management}/roots/0", verify=minica, timeout=10)
    assert root.status_code == 200, root.text
    stack.root = os.path.join(work, "pebble-root.pem")  # issued certificates chain to it (new at each start)
    with open(stack.root, "w") as handle:
        handle.write(root.text)
    yield stack
    stack.down()
    shutil.rmtree(work)


def wait_issued(site, other_than=None, timeout=60, port=None, name=NAME, logs=None):
    """The certificate served for `name` on `port` (default the site's) once it verifies against
    Pebble's root (and differs from `other_than`); `logs()`: what to show otherwise (default nginx's)."""
    deadline, last = time.monotonic() + scaled(timeout), None
    while time.monotonic() < deadline:
        try:
            certificate = served(port or site.port, site.root, name)
            if certificate != other_than:
                return certificate
        except (ssl.SSLError, OSError) as error:
            last = error
        time.sleep(0.5)
    shown = logs() if logs else site.logs("nginx")
    raise AssertionError(f"no new certificate from Pebble within {timeout}s ({last})\n{shown}")


def test_a_certificate_is_obtained_over_http01_and_served(acme_site):
    site = acme_site
    wait_issued(site)
    logs = site.logs("nginx")
    assert "serving that temporary certificate until the first one" in logs  # served before the first arrived
    assert "ACME: a new account key in" in logs and "asking https://pebble:14000/dir for a certificate" in logs
    assert f"ACME: new certificate for {NAME}" in logs and "ERROR" not in logs, logs
    # curl verifies it for the name (Pebble's root), negotiates HTTP/2, and OMERO.web answers.
    resolve, url = f"{NAME}:{site.port}:127.0.0.1", f"https://{NAME}:{site.port}/webclient/login/"
    out = curl("--cacert", site.root, "--resolve", resolve, "--output", "/dev/null",
               "--write-out", "%{http_code} %{http_version}", url)  # fmt: skip
    assert out == "200 2"
    # Port 8080: challenges are answered there (an unknown token: 404), everything else redirects.
    assert (
        requests.get(site.url + "/.well-known/acme-challenge/none", timeout=10, allow_redirects=False).status_code
        == 404
    )
    moved = requests.get(site.url + "/webclient/", timeout=10, allow_redirects=False)
    assert moved.status_code == 301 and moved.headers["Location"] == f"https://{NAME}:{site.port}/webclient/"


def test_a_forced_renewal_is_served_without_a_restart_or_a_failed_request(acme_site):
    """A request loop (HTTP/1.1, a new verified connection each, 5 s deadline each) runs while
    `omero-web-nginx acme-renew` gets a new certificate from Pebble: no request fails and the new
    certificate is served by the same nginx master."""
    site = acme_site
    before = wait_issued(site)
    nginx = site.ids("nginx")[0]
    started = site.exec(nginx, "sh", "-c", "cat /proc/1/stat").stdout.split()[21]
    outcomes, stop = {"ok": 0, "errors": []}, threading.Event()

    def load():
        while not stop.is_set():
            try:
                status = get(site.port, site.root)
                if status == 200:
                    outcomes["ok"] += 1
                else:
                    outcomes["errors"].append(status)
            except (OSError, ValueError, IndexError) as error:
                outcomes["errors"].append(repr(error))

    loop = threading.Thread(target=load)
    loop.start()
    try:
        time.sleep(2)
        renewal = site.exec(nginx, "omero-web-nginx", "acme-renew", timeout=120)
        assert renewal.returncode == 0, renewal.stderr
        after = wait_issued(site, other_than=before, timeout=20)
        time.sleep(2)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert after != before
    print(f"forced ACME renewal under a request loop: {outcomes['ok']} answered 200, errors {outcomes['errors']}")
    assert outcomes["errors"] == [] and outcomes["ok"] > 20, outcomes
    assert site.exec(nginx, "sh", "-c", "cat /proc/1/stat").stdout.split()[21] == started  # same nginx master
    assert "reloading nginx" in renewal.stderr


def test_the_certificate_is_kept_across_a_new_container_and_not_asked_for_again(acme_site):
    site = acme_site
    before = wait_issued(site)
    site.compose("up", "-d", "--no-deps", "--force-recreate", "--wait", "nginx", timeout=120)
    assert served(site.port, site.root) == before  # from the volume, at once: no temporary certificate
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline and "is still current" not in site.logs("nginx"):  # the new container's
        time.sleep(0.5)
    logs = site.logs("nginx")
    assert f"ACME: the certificate for {NAME} is still current" in logs, logs  # its first round: nothing asked
    assert "temporary certificate" not in logs and "account key" not in logs and "new certificate" not in logs
    assert served(site.port, site.root) == before


def test_a_failed_renewal_says_why_and_keeps_serving_the_certificate(acme_site):
    """The CA unreachable (a directory URL nothing answers): an ERROR line that names it, a failing
    exit status, and the certificate served before is still served."""
    site = acme_site
    before = wait_issued(site)
    nginx = site.ids("nginx")[0]
    command = ["docker", "exec", "-e", "NGINX_ACME_DIRECTORY=https://pebble:14999/dir", nginx, "omero-web-nginx",
               "acme-renew"]  # fmt: skip
    renewal = subprocess.run(command, capture_output=True, text=True, timeout=scaled(120))
    assert renewal.returncode != 0
    assert "ERROR: ACME: no certificate for omero.test from https://pebble:14999/dir" in renewal.stderr, renewal.stderr
    assert "Connection refused" in renewal.stderr  # acme-tiny's own reason, passed on
    assert served(site.port, site.root) == before
    assert get(site.port, site.root) == 200


def test_the_standalone_image_obtains_its_certificate_the_same_way(acme_site):
    """docs/https.md's `docker run` of the standalone image with NGINX_HTTPS=acme, on the project's
    network beside Pebble and the stand-in as `standalone.test`: its own certificate through the
    real HTTP-01 flow (its port 8080), served over HTTP/2 in front of its OMERO.web."""
    site, name, port = acme_site, "standalone.test", free_port()
    env = {"OMEROHOST": "omero", "NGINX_HTTPS": "acme", "OMERO_WEB_PUBLIC_URL": f"https://{name}:{port}",
           "NGINX_ACME_DIRECTORY": "https://pebble:14000/dir"}  # fmt: skip
    docker_args = ["--network", f"{site.project}_default", "--network-alias", name,
                   "-p", f"127.0.0.1:{port}:{NGINX_HTTPS_PORT}",
                   "-v", f"{site.env['ACME_CA_BUNDLE']}:/etc/ssl/certs/ca-certificates.crt:ro"]  # fmt: skip
    standalone = Container(STANDALONE_IMAGE, env=env, port=NGINX_PORT, docker_args=docker_args)
    try:
        wait_issued(site, port=port, name=name, logs=standalone.logs)
        standalone.wait_http("/webclient/login/", timeout=90, base=f"https://127.0.0.1:{port}", verify=False)
        url = f"https://{name}:{port}/webclient/login/"
        out = curl("--cacert", site.root, "--resolve", f"{name}:{port}:127.0.0.1", "--output", "/dev/null",
                   "--write-out", "%{http_code} %{http_version}", url)  # fmt: skip
        assert out == "200 2"
        logs = standalone.logs()
        assert f"ACME: new certificate for {name}" in logs and "ERROR" not in logs, logs
    finally:
        standalone.remove()
