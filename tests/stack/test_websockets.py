"""/omero-ws (NGINX_OMERO_WS_URL): OMERO.server's websocket transport through the nginx sidecar, to
a stand-in upstream (upstreams/websocket.py: echo on ws 4065 and wss 4066 with a test CA's
certificate for `omero-server`), with a real websocket client (Python `websockets`)."""

import os
import shutil
import ssl
import tempfile

import pytest
import requests
import websockets.exceptions
from test_https import curl
from websockets.sync.client import connect

from contract import NGINX_HTTPS_PORT, NGINX_PORT
from docker_helpers import NGINX_IMAGE, STANDALONE_IMAGE, WEB_IMAGE, Container, docker
from tls_helpers import issue, make_ca

HERE = os.path.dirname(__file__)
LIBRARY = os.path.dirname(os.path.dirname(websockets.__file__))  # the host venv's, pure Python in the container
CA_IN_NGINX = "/etc/omero-web/omero-server-ca.pem"


@pytest.fixture(scope="module")
def network():
    """A network with the websocket stand-in as `omero-server`, its certificate from the CA `server-ca`."""
    work = tempfile.mkdtemp(prefix="owtest-ws-")
    os.chmod(work, 0o755)
    make_ca(work, "server-ca")
    make_ca(work, "other-ca")  # trusted by nobody's server: the wrong CA
    issue(work, "server", ca="server-ca", host="omero-server")
    name = f"owtest-ws-{os.getpid()}"
    docker("network", "create", name)
    upstream = Container(
        WEB_IMAGE,
        env={"PYTHONPATH": "/opt/websockets-library"},
        docker_args=["--network", name, "--network-alias", "omero-server", "--entrypoint", "python3",
                     "-v", f"{HERE}/upstreams/websocket.py:/srv/websocket.py:ro",
                     "-v", f"{LIBRARY}/websockets:/opt/websockets-library/websockets:ro",
                     "-v", f"{work}:/srv/tls:ro"],
        args=["/srv/websocket.py", "/srv/tls/server.crt", "/srv/tls/server.key"],
    )  # fmt: skip
    try:
        upstream.wait_log("websocket stand-in listening on 4065 (ws) and 4066 (wss)")
        yield name, work
    finally:
        upstream.remove()
        docker("network", "rm", name, check=False)
        shutil.rmtree(work)


def sidecar(network, env, ca="server-ca", port=NGINX_PORT, docker_args=()):
    name, work = network
    nginx = Container(
        NGINX_IMAGE,
        env={"OMERO_WEB_UPSTREAM": "omero-server:4080", "NGINX_OMERO_WS_CA": CA_IN_NGINX, **env},
        port=port,
        docker_args=["--network", name, "--read-only", "--tmpfs", "/tmp",
                     "-v", f"{work}/{ca}.crt:{CA_IN_NGINX}:ro", *docker_args],
    )  # fmt: skip
    nginx.address = docker("port", nginx.id, str(port)).stdout.split()[0]
    return nginx


def exchange(uri, **client):
    with connect(uri, open_timeout=10, close_timeout=5, **client) as connection:
        connection.send("hello OMERO")
        echoed = connection.recv(timeout=10)
        connection.send("whoami")
        seen = connection.recv(timeout=10)
    return echoed, seen


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_messages_go_through_omero_ws(network, scheme):
    port = 4065 if scheme == "ws" else 4066
    nginx = sidecar(network, {"NGINX_OMERO_WS_URL": f"{scheme}://omero-server:{port}"})
    try:
        nginx.wait_http("/healthz")
        echoed, seen = exchange(f"ws://{nginx.address}/omero-ws")
        assert echoed == "hello OMERO"
        assert '"path": "/omero-ws"' in seen and '"x-forwarded-for": "' in seen  # the user's address, one entry
        # Anything but a websocket upgrade is answered by nginx itself.
        plain = requests.get(f"http://{nginx.address}/omero-ws", timeout=10)
        assert plain.status_code == 426 and "websocket connections only" in plain.text
    finally:
        nginx.remove()


def test_a_server_certificate_from_another_ca_is_refused(network):
    nginx = sidecar(network, {"NGINX_OMERO_WS_URL": "wss://omero-server:4066"}, ca="other-ca")
    try:
        nginx.wait_http("/healthz")
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            exchange(f"ws://{nginx.address}/omero-ws")
        assert refused.value.response.status_code == 502
        assert b"did not answer, or its certificate was refused" in refused.value.response.body
        assert "upstream SSL certificate verify error" in nginx.logs()
        assert "while SSL handshaking to upstream" in nginx.logs()
    finally:
        nginx.remove()


def test_wss_through_an_https_site_over_http2_and_http1(network):
    """The whole path a remote OMERO client takes: wss:// to nginx (NGINX_HTTPS), then wss:// to the
    server. A plain GET over HTTP/2 gets nginx's 426, which HTTP/2 clients can read."""
    nginx = sidecar(network, {"NGINX_OMERO_WS_URL": "wss://omero-server:4066", "NGINX_HTTPS": "self-signed",
                              "OMERO_WEB_PUBLIC_URL": "https://localhost"}, port=NGINX_HTTPS_PORT,
                    docker_args=["--tmpfs", "/var/lib/omero-web-nginx/tls:uid=101,gid=101,mode=0700"])  # fmt: skip
    try:
        site = f"https://localhost:{nginx.address.rsplit(':', 1)[1]}"
        certificate = os.path.join(network[1], "site.crt")
        with open(certificate, "w") as handle:
            handle.write(nginx.wait_file("/var/lib/omero-web-nginx/tls/tls.crt"))
        nginx.wait_http("/webclient/login/", base=site, verify=certificate, status=503)  # no OMERO.web here
        out = curl("--cacert", certificate, "--output", "-", "--write-out", "\n%{http_code} %{http_version}",
                   site + "/omero-ws")  # fmt: skip
        assert out.endswith("\n426 2") and "websocket connections only" in out
        client_tls = ssl.create_default_context(cafile=certificate)
        echoed, _ = exchange(f"wss://{site.removeprefix('https://')}/omero-ws", ssl=client_tls)
        assert echoed == "hello OMERO"
    finally:
        nginx.remove()


def test_the_standalone_image_serves_omero_ws_beside_its_omero_web(network):
    """The standalone image runs the same start script: /omero-ws (wss, the CA mounted) next to
    its own OMERO.web's login page."""
    name, work = network
    env = {"NGINX_OMERO_WS_URL": "wss://omero-server:4066", "NGINX_OMERO_WS_CA": CA_IN_NGINX}
    docker_args = ["--network", name, "-v", f"{work}/server-ca.crt:{CA_IN_NGINX}:ro"]
    standalone = Container(STANDALONE_IMAGE, env=env, port=NGINX_PORT, docker_args=docker_args)
    try:
        standalone.wait_http("/webclient/login/", timeout=90)
        echoed, seen = exchange(standalone.url.replace("http://", "ws://") + "/omero-ws")
        assert echoed == "hello OMERO" and '"path": "/omero-ws"' in seen
    finally:
        standalone.remove()
