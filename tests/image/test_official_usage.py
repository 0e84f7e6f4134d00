"""The official openmicroscopy/omero-web README usage, unchanged."""

import time

import requests

from contract import WEB_PORT
from docker_helpers import docker, scaled


def test_documented_docker_run(web_image):
    name = "omero-web-official-usage"
    docker("rm", "-f", name, check=False)
    docker(
        "run", "-d", "--name", name,
        "-e", 'CONFIG_omero_web_server__list=[["omero.example.org", 4064, "test-omero"]]',
        "-e", "CONFIG_omero_web_debug=true",
        "-p", f"127.0.0.1:{WEB_PORT}:{WEB_PORT}",
        web_image,
    )  # fmt: skip
    try:
        deadline, page = time.monotonic() + scaled(60), None
        while time.monotonic() < deadline:
            try:
                page = requests.get(f"http://127.0.0.1:{WEB_PORT}/", timeout=scaled(5))  # follows redirects
                if page.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        assert page is not None and page.status_code == 200
        assert page.url.endswith("/webclient/login/?url=%2Fwebclient%2F")
        assert "test-omero" in page.text
    finally:
        docker("rm", "-f", name, check=False)
