# OMERO.web container distribution. `make help` lists the targets.
SHELL := /bin/bash

# Ports and pinned versions: versions.env, their one definition (your environment or command line wins).
pin = $(shell sed -n 's/^$(1)=//p' versions.env)
# The architecture to build for (Debian names: amd64, arm64), default the machine's. Another one
# (`make build ARCH=arm64` on amd64) cross-compiles Ice and runs the rest under emulation
# (qemu-user-static); its images are tagged IMAGE_TAG-ARCH.
HOST_ARCH := $(shell uname -m | sed 's/^x86_64$$/amd64/; s/^aarch64$$/arm64/')
ARCH ?= $(HOST_ARCH)
FOREIGN_ARCH := $(filter-out $(HOST_ARCH),$(ARCH))
# Image names: $(REGISTRY)omero-web:$(IMAGE_TAG), e.g. REGISTRY=ghcr.io/my-org/ IMAGE_TAG=5.33.2-1
REGISTRY ?=
IMAGE_TAG ?= latest
ARCH_TAG := $(IMAGE_TAG)$(if $(FOREIGN_ARCH),-$(ARCH))
WEB_IMAGE := $(REGISTRY)omero-web:$(ARCH_TAG)
NGINX_IMAGE := $(REGISTRY)omero-web-nginx:$(ARCH_TAG)
STANDALONE_IMAGE := $(REGISTRY)omero-web-standalone:$(ARCH_TAG)
# Redis of the compose stack and the test cluster; without a registry, `make redis-image` builds LOCAL_REDIS_IMAGE.
REDIS_IMAGE ?= $(call pin,REDIS_IMAGE)
LOCAL_REDIS_IMAGE := $(call pin,LOCAL_REDIS_IMAGE)
# Base image of every Dockerfile, for ARCH (another architecture's: Docker Hub's per-architecture
# copy, e.g. arm64v8/debian). Without a registry, `make base-image [ARCH=…]` builds LOCAL_BASE_IMAGE.
# BUILD_BASE_IMAGE: the machine's own, for the compiling stages of the web image.
DOCKER_HUB_ARCH := $(if $(filter arm64,$(ARCH)),arm64v8,$(ARCH))
BASE_IMAGE ?= $(if $(FOREIGN_ARCH),$(DOCKER_HUB_ARCH)/)$(call pin,BASE_IMAGE)
BUILD_BASE_IMAGE ?= $(if $(FOREIGN_ARCH),$(call pin,BASE_IMAGE),$(BASE_IMAGE))
LOCAL_BASE_IMAGE := $(call pin,LOCAL_BASE_IMAGE)$(if $(FOREIGN_ARCH),-$(ARCH))
DEBIAN_SUITE := $(call pin,DEBIAN_SUITE)
DEBIAN_MIRROR ?= http://deb.debian.org/debian
# Optional PEM bundle trusted by the builder stages (corporate TLS proxies), e.g. /etc/ssl/certs/ca-certificates.crt
EXTRA_CA_BUNDLE ?=

PYTHON ?= python3
VENV := .venv
ICE_CACHE ?= $(HOME)/.cache/omero-web-containers/ice
OMERO_WEB_VERSION := $(shell sed -n 's/^omero-web==\([^ ]*\).*/\1/p' omeroweb/requirements.lock)
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The images' org.opencontainers.image.source: the repository's https URL (CI: SOURCE=https://github.com/...).
SOURCE ?= $(shell git remote get-url origin 2>/dev/null | grep -E '^https?://')
PYTEST := $(VENV)/bin/pytest
export WEB_IMAGE NGINX_IMAGE STANDALONE_IMAGE REDIS_IMAGE BASE_IMAGE REGISTRY IMAGE_TAG EXTRA_CA_BUNDLE
BUILD_ARGS = --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg WEB_IMAGE=$(WEB_IMAGE) \
	--build-arg BUILD_BASE_IMAGE=$(BUILD_BASE_IMAGE) --build-arg TARGET_ARCH=$(ARCH) \
	--build-arg VERSION=$(OMERO_WEB_VERSION) --build-arg REVISION=$(REVISION) \
	--build-arg SOURCE="$(SOURCE)"

# The stand-in (tests only) is always the machine's architecture, built from that omero-web.
STANDIN_IMAGE := $(REGISTRY)omero-web-standin:$(IMAGE_TAG)
HOST_WEB_IMAGE := $(REGISTRY)omero-web:$(IMAGE_TAG)
export STANDIN_IMAGE

# Release (`make release`): where it goes comes from REGISTRY and IMAGE_TAG above; see docker/release.sh.
SOURCE_TAG ?= latest
export SOURCE_TAG HOST_ARCH

.PHONY: help build release test-release docs standin-image test test-unit test-image test-stack test-arch test-chart chart-tools k8s-up k8s-down e2e-k8s lint base-image redis-image up down bench clean lock venv

help:
	@echo "make build       build omero-web, omero-web-nginx, omero-web-standalone (BASE_IMAGE=$(BASE_IMAGE)); ARCH=arm64 for arm64"
	@echo "make release REGISTRY=ghcr.io/my-org/ IMAGE_TAG=$(OMERO_WEB_VERSION)-1  push both architectures, their indexes and the chart (OCI)"
	@echo "make up / down   build, then start / stop the compose stack (nginx + web + redis) on http://localhost:8080"
	@echo "make test        lint, unit tests, build, image and stack tests (what CI runs)"
	@echo "make test-unit   unit tests of entrypoint.py, no Docker needed"
	@echo "make test-image  tests against the built omero-web image (needs Docker)"
	@echo "make test-stack  compose stack and standalone tests: nginx, maintenance, prefix, CORS, sessions"
	@echo "make test-arch ARCH=arm64  image and stack smoke tests of another architecture's images (emulated)"
	@echo "make test-release  make release to a local registry, pull each architecture, install the chart from it on a test cluster"
	@echo "make test-chart  the Helm chart: lint, schemas, rendered objects (builds helm once; needs Go)"
	@echo "make chart-tools build Helm 3 and 4, kubeconform, kube-score and both test Kubernetes from the Go module proxy (cached)"
	@echo "make k8s-up / k8s-down  a single-node Kubernetes (root) with the images loaded, and its removal (KUBERNETES=oldest|newest)"
	@echo "make e2e-k8s     install the chart on your own cluster (kubectl context) with REGISTRY/IMAGE_TAG images, helm test"
	@echo "make lint        ruff and shell syntax checks"
	@echo "make base-image  build $(LOCAL_BASE_IMAGE) from the Debian archive (no registry needed; ARCH=arm64 too)"
	@echo "make standin-image build the OMERO.server stand-in for login tests ($(STANDIN_IMAGE))"
	@echo "make redis-image build $(LOCAL_REDIS_IMAGE) from the Debian archive (then REDIS_IMAGE=$(LOCAL_REDIS_IMAGE))"
	@echo "make bench       print start-up, config, size, static-file, load, architecture, release and Kubernetes figures (report only)"
	@echo "make docs        regenerate the generated tables of docs/configuration.md and the chart README"
	@echo "make lock        regenerate the hash-pinned locks from the *.in files"
	@echo "make clean       remove the images and the test virtualenv"

# The extra CA is left in docker/certs/ (ignored by git) while EXTRA_CA_BUNDLE is given, and
# replaced only when it changed: builds of both architectures side by side (.ci/run puts it in
# place before it starts them) see the same build context.
# DOCKER_BUILD_FLAGS: more `docker build` options, e.g. --cpu-shares=2 for a build in the background.
DOCKER_BUILD_FLAGS ?=
build:
	@if [ -z "$(EXTRA_CA_BUNDLE)" ]; then rm -f docker/certs/build-extra-ca.crt; \
	elif ! cmp -s "$(EXTRA_CA_BUNDLE)" docker/certs/build-extra-ca.crt; then \
		cp "$(EXTRA_CA_BUNDLE)" docker/certs/build-extra-ca.crt; fi
	docker build $(DOCKER_BUILD_FLAGS) -f docker/web.Dockerfile -t $(WEB_IMAGE) $(BUILD_ARGS) .
	docker build $(DOCKER_BUILD_FLAGS) -f docker/nginx.Dockerfile -t $(NGINX_IMAGE) $(BUILD_ARGS) .
	docker build $(DOCKER_BUILD_FLAGS) -f docker/standalone.Dockerfile -t $(STANDALONE_IMAGE) $(BUILD_ARGS) .

# Publish what `make build` and `make build ARCH=arm64` made (local tag SOURCE_TAG): each image per
# architecture, one multi-arch index per image (IMAGE_TAG, plus the moving tags), the chart as an
# OCI artifact (REGISTRY/charts/omero-web). Credentials: REGISTRY_USERNAME/REGISTRY_PASSWORD or the
# docker config. crane and helm from tests/chart/tools.sh, skopeo from the distribution.
release:
	PATH="$$(tests/chart/tools.sh):$$PATH" docker/release.sh

# The OMERO.server stand-in the login tests use (tests/standin/, compose.test.yaml); tests only.
standin-image:
	docker build -f tests/standin/Dockerfile -t $(STANDIN_IMAGE) --build-arg WEB_IMAGE=$(HOST_WEB_IMAGE) .

redis-image:
	docker build -f docker/redis.Dockerfile -t $(LOCAL_REDIS_IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) .

up: build
	docker compose up -d --wait

down:
	docker compose down

test: lint test-unit build test-image test-stack test-chart

test-unit: venv
	$(PYTEST) tests/unit

test-image: venv
	$(PYTEST) --durations=10 tests/image

test-stack: venv standin-image
	$(PYTEST) --durations=10 tests/stack

# The images of another architecture (`make build ARCH=arm64` on amd64), under emulation: the tests
# marked `arch` (pyproject.toml): what only that architecture's binaries can prove (they are that
# architecture's, Python imports Ice and talks to it, the processes start, stop on SIGTERM and serve
# the login page and static files through gunicorn and nginx, a real login against the stand-in,
# which stays the machine's), deadlines scaled for emulation. The rest is the same Python and nginx
# configuration on every architecture, tested by `make test`.
test-arch: venv standin-image
	@if [ -z "$(FOREIGN_ARCH)" ]; then echo "test-arch: set ARCH to another architecture than $(HOST_ARCH)" >&2; exit 2; fi
	IMAGE_TAG=$(ARCH_TAG) $(PYTEST) -m arch --durations=10 tests/image tests/stack/test_stack.py tests/stack/test_login.py

# `make release` to a registry of its own on 127.0.0.1 (Debian's docker-registry, with a password),
# then pulls of each architecture and the chart installed from it on the newest test cluster, whose
# containerd pulls the images from that registry. Needs both architectures built.
test-release: venv
	$(PYTEST) --durations=10 tests/release

# The Helm chart: lint (Helm 3 and 4), kubeconform (every supported Kubernetes minor), rendered-object
# checks, then installs on real single-node Kubernetes, the oldest and the newest supported (root;
# tests/chart/k8s/). Builds helm, kubeconform and both Kubernetes
# from the Go module proxy once (needs Go), cached in ~/.cache.
test-chart: venv standin-image
	$(PYTEST) --durations=10 tests/chart

# What test-chart builds on first use, built ahead: .ci/run runs it beside the image builds.
chart-tools:
	tests/chart/tools.sh >/dev/null
	tests/chart/k8s/build.sh oldest >/dev/null
	tests/chart/k8s/build.sh newest >/dev/null

# A single-node Kubernetes with the images loaded (root), for trying the chart by hand;
# `eval "$$(tests/chart/k8s/cluster.sh env)"` then gives kubectl and KUBECONFIG.
KUBERNETES ?= newest
k8s-up:
	KUBERNETES=$(KUBERNETES) tests/chart/k8s/cluster.sh up $(WEB_IMAGE) $(NGINX_IMAGE) $(REDIS_IMAGE)

k8s-down:
	tests/chart/k8s/cluster.sh down

# The chart on your own cluster (kind, k3d, a real one: kubectl's current context), with the images
# named by REGISTRY and IMAGE_TAG: install, wait for Ready, `helm test`. E2E_VALUES adds helm flags.
E2E_RELEASE ?= omero-web-e2e
E2E_NAMESPACE ?= omero-web-e2e
E2E_VALUES ?=
HELM ?= helm
e2e-k8s:
	$(HELM) upgrade --install $(E2E_RELEASE) helm/omero-web --namespace $(E2E_NAMESPACE) --create-namespace \
		--wait --timeout 10m --set image.web.repository=$(REGISTRY)omero-web --set image.web.tag=$(IMAGE_TAG) \
		--set image.nginx.repository=$(REGISTRY)omero-web-nginx --set image.nginx.tag=$(IMAGE_TAG) $(E2E_VALUES)
	$(HELM) test $(E2E_RELEASE) --namespace $(E2E_NAMESPACE) --logs

lint: venv
	$(VENV)/bin/ruff check entrypoint.py omeroweb tests helm/omero-web/files docker .ci
	$(VENV)/bin/ruff format --check entrypoint.py omeroweb tests helm/omero-web/files docker .ci
	for f in .ci/run docker/*.sh; do bash -n "$$f"; done
	sh -n nginx/start.sh
	docker compose config --quiet
	docker compose -f compose.yaml -f compose.test.yaml config --quiet

base-image:
	docker/base-image.sh $(DEBIAN_SUITE) $(DEBIAN_MIRROR) $(LOCAL_BASE_IMAGE) $(ARCH)

# Report only. The Kubernetes part (tests/bench/cluster.py) brings each test cluster up and down
# (root; skipped otherwise; builds helm and Kubernetes once, like test-chart).
bench: venv standin-image
	$(VENV)/bin/python tests/bench/web.py
	$(VENV)/bin/python tests/bench/stack.py
	$(VENV)/bin/python tests/bench/https.py
	$(VENV)/bin/python tests/bench/public.py
	$(VENV)/bin/python tests/bench/arch.py
	$(VENV)/bin/python tests/bench/cluster.py

# The host virtualenv for tests: the application's lock (same pins as the image) plus test tools,
# and the same patched Ice as the image (built once per patch set, cached in ICE_CACHE).
venv: $(VENV)/.done
$(VENV)/.done: tests/requirements.lock docker/ice/*.patch docker/build-ice-wheel.sh
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	awk -v pkg=zeroc-ice -v invert=1 -f docker/split-lock.awk tests/requirements.lock > $(VENV)/requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps --require-hashes --only-binary :all: -r $(VENV)/requirements.txt
	set -e; \
	key=$$(cat docker/ice/*.patch docker/build-ice-wheel.sh | sha256sum | cut -c1-16)-$$($(VENV)/bin/python -c 'import sys; print("py%d%d" % sys.version_info[:2])'); \
	if ! ls $(ICE_CACHE)/$$key/zeroc_ice-*.whl >/dev/null 2>&1; then \
		echo "Building zeroc-ice for the host Python (unoptimised: the unit tests only read configuration; about 2.5 minutes, once)"; \
		ICE_EXTRA_CFLAGS=-O0 docker/build-ice-wheel.sh omeroweb/requirements.lock docker/ice $(ICE_CACHE)/$$key $(VENV)/bin/python; \
	fi; \
	$(VENV)/bin/pip install --quiet --no-deps $(ICE_CACHE)/$$key/zeroc_ice-*.whl
	$(VENV)/bin/pip check
	touch $@

# The generated tables: docs/configuration.md's variables (omeroweb/environment.toml) and the chart
# README's values (values.yaml's comments); `make test-unit` fails when they are out of date.
docs:
	$(PYTHON) tests/contract.py --write
	$(PYTHON) tests/chart/values_doc.py --write

lock:
	uv pip compile --universal --python-version 3.11 --generate-hashes --no-header \
		omeroweb/requirements.in -o omeroweb/requirements.lock
	uv pip compile --universal --python-version 3.11 --generate-hashes --no-header \
		tests/requirements.in -c omeroweb/requirements.lock -o tests/requirements.lock

clean:
	-docker rmi $(STANDALONE_IMAGE) $(NGINX_IMAGE) $(WEB_IMAGE)
	rm -rf $(VENV)
