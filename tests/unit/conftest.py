import os

import pytest

import entrypoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BAKED_DEFAULTS = os.path.join(REPO, "omeroweb")


@pytest.fixture(scope="session")
def schema():
    """omero-web's real settings definitions, as the image loads them."""
    return entrypoint.load_schema()


@pytest.fixture
def layout(tmp_path):
    """An OMERODIR, an empty user config dir and the repository's baked defaults."""
    omerodir = tmp_path / "OMERO.web"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    environ = {
        "OMERODIR": str(omerodir),
        "OMERO_WEB_DEFAULTS_DIR": BAKED_DEFAULTS,
        "OMERO_WEB_CONFIG_DIR": str(config_dir),
    }
    return omerodir, config_dir, environ


@pytest.fixture
def check(layout, capsys):
    """Run `entrypoint.py check` with extra variables; return (status, stdout, stderr)."""
    omerodir, _, base = layout

    def run(**variables):
        status = entrypoint.main(["entrypoint.py", "check"], {**base, **variables})
        out, err = capsys.readouterr()
        return status, out, err

    return run
