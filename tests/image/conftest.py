import pytest

from docker_helpers import WEB_IMAGE, Container, docker


@pytest.fixture(scope="session")
def web_image():
    assert docker("image", "inspect", WEB_IMAGE, check=False).returncode == 0, f"build {WEB_IMAGE} first (make build)"
    return WEB_IMAGE


@pytest.fixture
def run_web(web_image):
    """Start omero-web containers; all are removed after the test."""
    started = []

    def start(env=None, args=(), docker_args=()):
        container = Container(web_image, env=env, args=args, docker_args=docker_args)
        started.append(container)
        return container

    yield start
    for container in started:
        container.remove()


@pytest.fixture(scope="module")
def web(web_image):
    """One running omero-web with a server list, shared by the read-only checks."""
    container = Container(
        web_image, env={"CONFIG_omero_web_server__list": '[["omero.example.org", 4064, "facility-omero"]]'}
    )
    container.wait_http()
    yield container
    container.remove()
