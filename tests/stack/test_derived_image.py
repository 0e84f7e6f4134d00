"""docs/examples/derived-plugin: an image FROM omero-web that pip-installs one more plugin from PyPI
(OMERO.signup), enabled by OMERO_WEB_PLUGINS=signup, and its nginx sidecar built from it."""

import os
import shutil

import pytest
import requests

from contract import VERSIONS
from docker_helpers import REPO, WEB_IMAGE, Stack, docker

EXAMPLE = os.path.join(REPO, "docs", "examples", "derived-plugin")
TAG = f"test-{os.getpid()}"
REGISTRY = "owtest-derived/"  # compose.yaml names images ${REGISTRY}omero-web:${IMAGE_TAG}
SIGNUP = {
    "CONFIG_omero_web_signup_admin_user": "root",
    "CONFIG_omero_web_signup_admin_password": "omero",
    "CONFIG_omero_web_signup_group_name": "signups",
}


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    """Built as the example's comments say, with this machine's CA bundle in certs/ when the
    build needs one to reach PyPI (EXTRA_CA_BUNDLE, as for `make build`)."""
    context = tmp_path_factory.mktemp("derived") / "context"
    shutil.copytree(EXAMPLE, context)
    bundle = os.environ.get("EXTRA_CA_BUNDLE")
    if bundle:
        shutil.copy(bundle, context / "certs" / "build-ca.crt")
    web, nginx = f"{REGISTRY}omero-web:{TAG}", f"{REGISTRY}omero-web-nginx:{TAG}"
    try:
        build("-t", web, "--build-arg", f"WEB_IMAGE={WEB_IMAGE}", str(context))
        base = os.environ.get("BASE_IMAGE") or VERSIONS["BASE_IMAGE"]
        dockerfile = os.path.join(REPO, "docker", "nginx.Dockerfile")
        args = ["--build-arg", f"WEB_IMAGE={web}", "--build-arg", f"BASE_IMAGE={base}"]
        build("-f", dockerfile, "-t", nginx, *args, REPO)
        yield web
    finally:
        docker("rmi", "-f", web, nginx, check=False)


def build(*args):
    result = docker("build", *args, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_the_plugin_needs_its_settings(derived):
    refused = docker("run", "--rm", "-e", "OMERO_WEB_PLUGINS=signup", derived, "check", check=False)
    assert refused.returncode == 2
    for name in ("admin_user", "admin_password", "group_name"):
        assert f"set CONFIG_omero_web_signup_{name}" in refused.stderr, refused.stderr
    typo = docker("run", "--rm", "-e", "OMERO_WEB_PLUGINS=signup", *env_args(SIGNUP), "-e",
                  "CONFIG_omero_web_signup_helpmesage=Ask us", derived, "check", check=False)  # fmt: skip
    assert "Did you mean omero.web.signup.helpmessage" in typo.stderr
    checked = docker("run", "--rm", "-e", "OMERO_WEB_PLUGINS=signup,iviewer", *env_args(SIGNUP), derived, "check")
    assert 'omero.web.apps=["omero_signup", "omero_iviewer"]' in checked.stdout
    assert "omero.web.signup.admin.password=********" in checked.stdout  # a secret: never printed


def env_args(variables):
    return [arg for name, value in variables.items() for arg in ("-e", f"{name}={value}")]


def test_the_derived_stack_serves_the_plugin_and_its_static_files(derived):
    env = {"REGISTRY": REGISTRY, "IMAGE_TAG": TAG, "OMERO_WEB_PLUGINS": "signup", "OMERO_WEB_PREFIX": "/omero"}
    env.update(SIGNUP)
    stack = Stack("derived", env=env).up()
    try:
        page = requests.get(stack.url + "/omero/signup/", timeout=10, allow_redirects=False)
        assert page.status_code == 200 and 'name="firstname"' in page.text, page.text[:500]
        css = "/omero/static/signup/css/ome.signup.css"
        assert css in page.text
        before = stack.logs("web")
        answer = requests.get(stack.url + css, timeout=10)
        assert answer.status_code == 200 and "text/css" in answer.headers["Content-Type"]
        assert "ome.signup.css" not in stack.logs("web")[len(before) :]  # nginx answered
    finally:
        stack.down()
