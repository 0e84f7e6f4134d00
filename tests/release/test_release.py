"""`make release` through a real registry: Debian's docker-registry on 127.0.0.1 with a password
(htpasswd), the release pushed to it by `make release` as a site would run it, then what users do
with a release: `docker pull --platform` of each architecture, `helm show`/`helm install oci://`
of the chart, on the newest test cluster, whose containerd pulls our images from that registry
(nothing of ours imported). Needs both architectures built (`make build`, `make build ARCH=arm64`)
from this commit. Every command and request has a deadline."""

import json
import os
import subprocess
import time

import pytest
import requests
import yaml

from cluster_helpers import CHART, REDIS_IMAGE, REPO, helm, kubectl, restricted_cluster, split
from contract import pinned
from docker_helpers import HOST_ARCH, MACHINE_ARCHS, NGINX_IMAGE, STANDALONE_IMAGE, WEB_IMAGE, docker
from release_registry import Registry

ARCHS = ("amd64", "arm64")
IMAGES = {"omero-web": WEB_IMAGE, "omero-web-nginx": NGINX_IMAGE, "omero-web-standalone": STANDALONE_IMAGE}
VERSION = pinned("omero-web")
IMAGE_TAG = f"{VERSION}-test.1"
MOVING_TAGS = (VERSION, "latest")
CHART_VERSION = yaml.safe_load(open(os.path.join(CHART, "Chart.yaml")))["version"]
REVISION = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
REVISION = REVISION.stdout.strip()
SOURCE_TAG = WEB_IMAGE.rpartition(":")[2]
NODE_PORT = 30090


def source_image(name, arch):
    """The local image `make build [ARCH=arm64]` made for `arch` (what `make release` publishes)."""
    return IMAGES[name] if arch == HOST_ARCH else f"{IMAGES[name]}-{arch}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry of our own on 127.0.0.1 that wants a password (release_registry.py)."""
    with Registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry


@pytest.fixture(scope="module")
def released(registry):
    """`make release` to the registry, credentials from the environment; its output and seconds."""
    release, seconds = registry.release(IMAGE_TAG, SOURCE_TAG)
    assert release.returncode == 0, release.stdout[-3000:] + release.stderr[-5000:]
    print(f"make release: {seconds:.0f} s")
    return {"output": release.stdout + release.stderr, "seconds": seconds}


def crane(tools, registry, *args, config=None):
    """crane against the registry, logged in (its docker config) unless `config` names another."""
    env = dict(os.environ, DOCKER_CONFIG=config or registry.auth)
    return subprocess.run([os.path.join(tools, "crane"), "--insecure", *args], capture_output=True, text=True,
                          timeout=60, env=env)  # fmt: skip


def test_release_refuses_a_tag_that_is_not_the_version_plus_a_build_suffix(registry):
    release, _ = registry.release("latest", SOURCE_TAG, timeout=300)
    assert release.returncode != 0
    expected = "IMAGE_TAG='latest' must be the OMERO.web version of the images plus a build suffix"
    expected += f", e.g. IMAGE_TAG={VERSION}-1"
    assert expected in release.stderr, release.stderr


def test_credentials_are_never_printed_and_the_registry_wants_them(tools, registry, released):
    assert registry.password not in released["output"]
    nobody = registry.auth + "-none"  # a docker config directory that does not exist: no credentials
    anonymous = crane(tools, registry, "manifest", f"{registry.host}/omero-web:{IMAGE_TAG}", config=nobody)
    assert anonymous.returncode != 0 and "UNAUTHORIZED" in anonymous.stderr, anonymous.stderr


@pytest.mark.parametrize("name", IMAGES)
def test_each_image_is_one_index_of_both_architectures_under_every_tag(tools, registry, released, name):
    reference = f"{registry.host}/{name}:{IMAGE_TAG}"
    manifest = crane(tools, registry, "manifest", reference)
    assert manifest.returncode == 0, manifest.stderr
    index = json.loads(manifest.stdout)
    assert index["mediaType"] in ("application/vnd.oci.image.index.v1+json",
                                  "application/vnd.docker.distribution.manifest.list.v2+json")  # fmt: skip
    platforms = sorted((m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"])
    assert platforms == [("linux", arch) for arch in ARCHS]
    digest = crane(tools, registry, "digest", reference).stdout.strip()
    assert digest.startswith("sha256:")
    assert digest in released["output"]  # `make release` says what it published
    for tag in MOVING_TAGS:
        assert crane(tools, registry, "digest", f"{registry.host}/{name}:{tag}").stdout.strip() == digest, tag


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", IMAGES)
def test_docker_pull_platform_gives_that_architecture_with_its_labels(registry, released, name, arch):
    reference = f"{registry.host}/{name}:{IMAGE_TAG}"
    config = ["--config", registry.auth]
    try:
        pulled = subprocess.run(["docker", *config, "pull", "--quiet", "--platform", f"linux/{arch}", reference],
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
        inspect = json.loads(docker("image", "inspect", reference).stdout)[0]
        local = json.loads(docker("image", "inspect", source_image(name, arch)).stdout)[0]
        assert inspect["Id"] == local["Id"]  # exactly what was built, nothing rebuilt or converted
        assert inspect["Architecture"] == arch and inspect["Os"] == "linux"
        labels = inspect["Config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == name
        assert labels["org.opencontainers.image.version"] == VERSION
        assert labels["org.opencontainers.image.revision"] == REVISION
        assert labels["org.opencontainers.image.licenses"].startswith("AGPL-3.0-or-later")
        assert "org.opencontainers.image.source" in labels
        machine = docker("run", "--rm", "--platform", f"linux/{arch}", "--entrypoint", "uname", reference, "-m",
                         timeout=120).stdout.strip()  # fmt: skip
        assert MACHINE_ARCHS[machine] == arch
    finally:
        docker("rmi", reference, check=False)


def test_the_chart_is_an_oci_artifact_whose_app_version_is_the_release(tools, registry, released):
    shown = subprocess.run(
        [os.path.join(tools, "helm4"), "show", "chart", f"oci://{registry.host}/charts/omero-web", "--version",
         CHART_VERSION, "--plain-http", "--registry-config", os.path.join(registry.auth, "config.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    chart = yaml.safe_load(shown.stdout)
    assert (chart["name"], chart["version"], chart["appVersion"]) == ("omero-web", CHART_VERSION, IMAGE_TAG)


@pytest.fixture(scope="module")
def cluster(tools, registry, released):
    """The newest test cluster, only Redis imported: our images come from the registry. Helm 3 runs
    the chart here (Helm 4 does in tests/chart on this Kubernetes), so each Helm major meets it."""
    with restricted_cluster(tools, "newest", images=[REDIS_IMAGE], registry=registry.host) as env:
        yield dict(env, OWK8S_HELM="helm3")


def test_helm_install_oci_runs_the_release_from_the_registry(cluster, registry):
    env = cluster
    # The pull secret from the docker config `docker login` wrote (no password on a command line).
    kubectl(env, "create", "secret", "generic", "release-registry", "--type=kubernetes.io/dockerconfigjson",
            f"--from-file=.dockerconfigjson={os.path.join(registry.auth, 'config.json')}")  # fmt: skip
    redis_repository, redis_tag = split(REDIS_IMAGE)
    started = time.monotonic()
    helm(
        env, "install", "pulled", f"oci://{registry.host}/charts/omero-web", "--version", CHART_VERSION,
        "--plain-http", "--registry-config", os.path.join(registry.auth, "config.json"),
        "--set", "imagePullSecrets[0].name=release-registry",
        "--set", f"redis.image.repository={redis_repository}", "--set", f"redis.image.tag={redis_tag}",
        "--set", "service.type=NodePort", "--set", f"service.nodePort={NODE_PORT}",
        "--wait", "--timeout", "5m", timeout=400,
    )  # fmt: skip
    print(f"helm install oci:// -> Ready: {time.monotonic() - started:.0f} s")
    page = requests.get(f"http://127.0.0.1:{NODE_PORT}/webclient/login/", timeout=10)
    assert page.status_code == 200 and "OMERO.web - Login" in page.text
    test = helm(env, "test", "pulled", "--logs", timeout=300)
    assert "login page, static file from nginx, /healthz: OK" in test.stdout, test.stdout
    # Every container of ours runs the pushed image, pulled by containerd from the registry.
    listed = json.loads(kubectl(env, "get", "pods", "-l", "app.kubernetes.io/instance=pulled", "-o", "json").stdout)
    ours = {}
    for pod in listed["items"]:
        for status in pod["status"].get("containerStatuses", []) + pod["status"].get("initContainerStatuses", []):
            if status["image"] not in (REDIS_IMAGE, f"docker.io/{REDIS_IMAGE}"):  # Redis: imported, not ours
                ours[status["image"]] = status["imageID"]
    host = registry.host
    assert set(ours) >= {f"{host}/omero-web:{IMAGE_TAG}", f"{host}/omero-web-nginx:{IMAGE_TAG}"}, ours
    for image, image_id in ours.items():
        assert image.startswith(host + "/") and image_id.startswith(host + "/"), (image, image_id)
