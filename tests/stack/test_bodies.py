"""Large bodies through the nginx sidecar, at its default settings: a 1 GiB upload and a 2 GiB
download pass without being spooled to /tmp (a tmpfs: memory) and without a timeout. The
upstream is a small streaming server (upstreams/bodies.py), so nginx's buffering is what is
measured."""

import os
import threading
import time

import pytest
import requests

from contract import NGINX_PORT, WEB_PORT
from docker_helpers import NGINX_IMAGE, WEB_IMAGE, Container, docker

GIB = 1 << 30
HERE = os.path.dirname(os.path.abspath(__file__))


class Zeros:
    """A request body of `size` zero bytes, read in chunks (requests sends Content-Length)."""

    def __init__(self, size):
        self.left = size
        self.block = bytes(1 << 20)

    def __len__(self):
        return self.left

    def read(self, n=-1):
        n = min(self.left, len(self.block) if n is None or n < 0 else n)
        self.left -= n
        return self.block[:n]


class TmpUsage:
    """Samples how much the container holds in /tmp (its tmpfs) while the block runs."""

    def __init__(self, container):
        self.container, self.peak_kib = container, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            out = self.container.exec("du", "-sk", "/tmp").stdout.split()
            if out:
                self.peak_kib = max(self.peak_kib, int(out[0]))
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def sidecar():
    network = f"owtest-bodies-{os.getpid()}"
    docker("network", "create", network)
    upstream = Container(
        WEB_IMAGE,
        docker_args=["--network", network, "--network-alias", "bodies", "--entrypoint", "python3",
                     "-v", f"{HERE}/upstreams/bodies.py:/srv/bodies.py:ro"],
        args=["/srv/bodies.py", str(WEB_PORT)],
    )  # fmt: skip
    nginx = Container(
        NGINX_IMAGE,
        env={"OMERO_WEB_UPSTREAM": f"bodies:{WEB_PORT}"},
        port=NGINX_PORT,
        docker_args=["--network", network, "--read-only", "--tmpfs", "/tmp", "--memory", "512m"],
    )
    try:
        upstream.wait_log(f"bodies upstream listening on {WEB_PORT}")
        nginx.wait_http("/healthz")
        yield nginx
    finally:
        nginx.remove()
        upstream.remove()
        docker("network", "rm", network, check=False)


def test_one_gib_upload_is_streamed(sidecar):
    with TmpUsage(sidecar) as tmp:
        started = time.monotonic()
        answer = requests.post(sidecar.url + "/upload", data=Zeros(GIB), timeout=(5, 120))
        seconds = time.monotonic() - started
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json() == {"received": GIB}
    print(f"\n1 GiB upload through nginx: {seconds:.1f} s, nginx /tmp peak {tmp.peak_kib} KiB")
    assert tmp.peak_kib < 16 * 1024  # not spooled: nginx's client_body temp files would be 1 GiB


def test_two_gib_download_is_streamed(sidecar):
    received = 0
    with TmpUsage(sidecar) as tmp:
        started = time.monotonic()
        with requests.get(sidecar.url + f"/download?bytes={2 * GIB}", stream=True, timeout=(5, 60)) as answer:
            assert answer.status_code == 200
            time.sleep(3)  # a slow client: nginx's default would spool the response to /tmp meanwhile
            for chunk in answer.iter_content(1 << 20):
                received += len(chunk)
        seconds = time.monotonic() - started
    assert received == 2 * GIB
    print(f"\n2 GiB download through nginx: {seconds:.1f} s, nginx /tmp peak {tmp.peak_kib} KiB")
    assert tmp.peak_kib < 16 * 1024  # not spooled: proxy temp files would grow to 1 GiB
    assert sidecar.state()["OOMKilled"] is False
