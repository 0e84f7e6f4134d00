import pytest

from docker_helpers import NGINX_IMAGE, STANDALONE_IMAGE, STANDIN_IMAGE, WEB_IMAGE, Stack, docker


@pytest.fixture(scope="session", autouse=True)
def images():
    for image in (WEB_IMAGE, NGINX_IMAGE, STANDALONE_IMAGE, STANDIN_IMAGE):
        made_by = "make standin-image" if image == STANDIN_IMAGE else "make build"
        assert docker("image", "inspect", image, check=False).returncode == 0, f"build {image} first ({made_by})"


@pytest.fixture(scope="module")
def stack():
    """The default stack, exactly as `docker compose up -d` gives it (no .env)."""
    running = Stack("default").up()
    yield running
    running.down()
