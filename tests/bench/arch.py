"""`make bench`, architectures: the amd64 and the arm64 images on this machine, in the same run.
Reports only. The arm64 images run under emulation (qemu-user-static): these are figures of
emulation on this machine, NOT of arm64 hardware, which would run them natively.

(h) `docker run` -> first 200 on the login page (web alone), 3 runs per architecture
(i) login page through nginx (the compose stack of that architecture's images), 20 connections for
    30 s, twice in a row: requests/s, p50/p99, errors (socket errors, wrk's 5 s per-request
    deadline, non-2xx/3xx)
(j) image sizes per architecture
(k) `make release` to a registry on 127.0.0.1 (Debian's docker-registry, with a password): the
    first push of a release (3 images x 2 architectures, indexes, chart), then the next release of
    the same images (nothing new to upload)
Each architecture is measured in a process of its own whose WEB_IMAGE, NGINX_IMAGE,
STANDALONE_IMAGE and IMAGE_TAG name that architecture's images, so the test helpers scale their
deadlines for emulation as the tests do (tests/docker_helpers.py).
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "release"))
import web  # noqa: E402  (reads the images from the environment: each architecture's process its own)

from contract import pinned  # noqa: E402
from docker_helpers import HOST_ARCH, Stack  # noqa: E402
from load import wrk  # noqa: E402
from release_registry import Registry  # noqa: E402

ARCHS = ("amd64", "arm64")
IMAGES = {"WEB_IMAGE": "omero-web", "NGINX_IMAGE": "omero-web-nginx", "STANDALONE_IMAGE": "omero-web-standalone"}
LOGIN = "/webclient/login/"


def measure_this_architecture(arch):
    label = f"[{arch}{', emulated' if web.scaled(1) > 1 else ''}]"
    web.bench_start("none", runs=3, label=f"(h) {label}", goal="")
    stack = Stack("bench-arch").up()
    try:
        for run in (1, 2):
            result = wrk(stack.url + LOGIN, 20, seconds=30)
            print(f"(i) {label} login page through nginx, 20 connections, 30 s, run {run}: {result.line()}")
    finally:
        stack.down()
    web.bench_size(label=f"(j) {label}", web_goal="")


def measure_release():
    version = pinned("omero-web")
    source_tag = os.environ.get("WEB_IMAGE", "omero-web:latest").rpartition(":")[2]
    with tempfile.TemporaryDirectory() as work, Registry(work) as registry:
        for build, what in ((1, "first release"), (2, "next release, same images")):
            result, seconds = registry.release(f"{version}-bench.{build}", source_tag)
            status = "ok" if result.returncode == 0 else f"FAILED ({result.stderr[-500:]})"
            print(f"(k) make release to {registry.host}, {what}: {seconds:.1f} s, {status}")


def main():
    tag = os.environ.get("IMAGE_TAG", "latest")
    print(f"Architectures on {os.cpu_count()} CPUs, {HOST_ARCH} (report only; arm64 here is emulated, not hardware)")
    for arch in ARCHS:
        arch_tag = tag if arch == HOST_ARCH else f"{tag}-{arch}"
        env = dict(os.environ, IMAGE_TAG=arch_tag, **{key: f"{name}:{arch_tag}" for key, name in IMAGES.items()})
        child = subprocess.run([sys.executable, __file__, arch], env=env, timeout=3600)
        if child.returncode != 0:
            print(f"({arch}: the measurement failed, exit {child.returncode})")
    measure_release()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        measure_this_architecture(sys.argv[1])
    else:
        main()
