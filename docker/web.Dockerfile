# omero-web: OMERO.web (from PyPI) served by gunicorn, configured by entrypoint.py.
# Build from the repository root:  docker build -f docker/web.Dockerfile -t omero-web .
# (or `make build`). Classic builder compatible: no BuildKit-only syntax.
#
# Another architecture (`make build ARCH=arm64` on an amd64 machine): BASE_IMAGE is that
# architecture's base, BUILD_BASE_IMAGE the build machine's, TARGET_ARCH the Debian name of the
# target. The compiling stages then run natively and build for the target (docker/target-env.sh: Ice
# cross-compiled, the target's wheels); only the base, static and final stages run the target's
# binaries (under emulation: qemu-user-static).

ARG BASE_IMAGE=debian:trixie-slim
ARG BUILD_BASE_IMAGE=${BASE_IMAGE}

# --- base: what the final image needs at run time (target architecture) ---------------------
FROM ${BASE_IMAGE} AS base
ENV LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive
# python3 is 3.13 on trixie; IcePy links libssl, libbz2 and libstdc++. CA certificates: Python's
# and pip's default trust store, so a derived image can pip-install a plugin (docs/plugins.md) and
# OMERO.web can reach https services.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libssl3t64 libbz2-1.0 libstdc++6 tini ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
           /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*

# --- build-base: compilers and TLS trust for downloads, on the build machine's architecture, plus
# a cross toolchain when TARGET_ARCH is another (never reaches the final image) -----------------
FROM ${BUILD_BASE_IMAGE} AS build-base
ARG TARGET_ARCH=
ENV LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive \
    TARGET_ARCH=${TARGET_ARCH}
COPY docker/target-env.sh /usr/local/lib/target-env.sh
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates g++ make patch binutils \
        python3-dev python3-venv python3-pip python3-setuptools python3-wheel libssl-dev libbz2-dev \
 && . /usr/local/lib/target-env.sh \
 && if [ -n "$CROSS_PACKAGES" ]; then \
        dpkg --add-architecture "$TARGET_ARCH" && apt-get update \
        && apt-get install -y --no-install-recommends $CROSS_PACKAGES; \
    fi \
 && rm -rf /var/lib/apt/lists/*
# Optional extra CA certificates (docker/certs/*.crt), e.g. a corporate proxy's.
COPY docker/certs/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# --- ice: zeroc-ice 3.6.5 from its hash-checked sdist, patched for Python 3.13 / gcc 14 ---------
# Only the zeroc-ice pin reaches the ice stage, so editing any other pin keeps its build cached.
FROM ${BUILD_BASE_IMAGE} AS ice-pin
COPY omeroweb/requirements.lock docker/split-lock.awk /build/
RUN awk -v pkg=zeroc-ice -f /build/split-lock.awk /build/requirements.lock > /build/ice.lock

FROM build-base AS ice
COPY --from=ice-pin /build/ice.lock /build/
COPY docker/split-lock.awk docker/build-ice-wheel.sh /build/
COPY docker/ice/*.patch /build/patches/
RUN . /usr/local/lib/target-env.sh && /build/build-ice-wheel.sh /build/ice.lock /build/patches /build/wheels

# --- venv: the application, from the hash-pinned lock (the target's wheels) ------------------
# The virtualenv is built with the build machine's Python (the same Debian Python as the target's)
# and moved as is: its .pyc files do not depend on the architecture.
FROM build-base AS venv
ENV VIRTUAL_ENV=/opt/omero/web/venv \
    OMERODIR=/opt/omero/web/OMERO.web
COPY omeroweb/requirements.lock docker/split-lock.awk /build/
RUN awk -v pkg=zeroc-ice -v invert=1 -f /build/split-lock.awk /build/requirements.lock > /build/rest.txt \
 && python3 -m venv $VIRTUAL_ENV \
 && . /usr/local/lib/target-env.sh \
 && $VIRTUAL_ENV/bin/pip install --no-deps --require-hashes --only-binary :all: -r /build/rest.txt
COPY --from=ice /build/wheels/ /build/wheels/
RUN . /usr/local/lib/target-env.sh \
 && $VIRTUAL_ENV/bin/pip install --no-deps /build/wheels/zeroc_ice-*.whl \
 && $STRIP --strip-unneeded $VIRTUAL_ENV/lib/python3*/site-packages/IcePy*.so \
 && $VIRTUAL_ENV/bin/pip check \
 && rm -rf /build
# Size: test suites, numpy's f2py build tool, type stubs, the plugins' JavaScript source maps (only
# a browser's developer tools ask for them), and Django translations OMERO.web never activates (it has
# no LocaleMiddleware; LANGUAGE_CODE is en-gb).
RUN cd $VIRTUAL_ENV/lib/python3*/site-packages \
 && find . -depth -type d -name tests -exec rm -rf {} + \
 && find . \( -name '*.map' -o -name '*.pyi' \) -type f -delete \
 && rm -rf numpy/f2py \
 && find django/conf/locale -mindepth 1 -maxdepth 1 -type d ! -name 'en' ! -name 'en_GB' -exec rm -rf {} +
COPY omeroweb/00-defaults.omero omeroweb/environment.toml omeroweb/public.toml omeroweb/gunicorn.conf.py omeroweb/redis_watch.py \
     /opt/omero/web/defaults/
COPY omeroweb/plugins/ /opt/omero/web/defaults/plugins/
# Modules of this image that OMERO.web imports (the public site's cache middleware), on the venv's path.
COPY omeroweb/public_cache.py /opt/omero/web/defaults/python/
RUN echo /opt/omero/web/defaults/python > $(echo $VIRTUAL_ENV/lib/python3*/site-packages)/omero-web-image.pth
COPY entrypoint.py /usr/local/bin/entrypoint.py

# --- static: the static files of OMERO.web and every plugin, as links into the venv (static_root
# comes from the baked defaults). The nginx image copies the files they point to. On the target
# architecture: collecting them imports OMERO.web, Ice and numpy. --------------------------------
FROM base AS static
ENV VIRTUAL_ENV=/opt/omero/web/venv \
    OMERODIR=/opt/omero/web/OMERO.web
COPY --from=venv /opt/omero/web/venv /opt/omero/web/venv
COPY --from=venv /opt/omero/web/defaults /opt/omero/web/defaults
COPY --from=venv /usr/local/bin/entrypoint.py /usr/local/bin/entrypoint.py
RUN PATH=$VIRTUAL_ENV/bin:$PATH $VIRTUAL_ENV/bin/python /usr/local/bin/entrypoint.py collectstatic >/dev/null \
 && test -f /opt/omero/web/static/webclient/css/layout.css \
 && test -f /opt/omero/web/static/omero_iviewer/openwith.js

# --- final image ----------------------------------------------------------------------------
FROM base

# Same user name, uid, paths, port and volume as the official openmicroscopy/omero-web image.
RUN groupadd --system --gid 999 omero-web \
 && useradd --system --uid 999 --gid omero-web --home-dir /opt/omero/web --no-create-home \
        --shell /usr/sbin/nologin omero-web \
 && mkdir -p /opt/omero/web/config /opt/omero/web/OMERO.web/etc/grid /opt/omero/web/OMERO.web/var \
 && chown -R omero-web:omero-web /opt/omero/web/OMERO.web
COPY --from=venv /opt/omero/web/venv /opt/omero/web/venv
COPY --from=static /opt/omero/web/static /opt/omero/web/static
COPY --from=venv /opt/omero/web/defaults /opt/omero/web/defaults
COPY --from=venv /usr/local/bin/entrypoint.py /usr/local/bin/entrypoint.py

ENV OMERODIR=/opt/omero/web/OMERO.web \
    PATH=/opt/omero/web/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=omeroweb.settings \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER omero-web
WORKDIR /opt/omero/web
VOLUME ["/opt/omero/web/OMERO.web/var"]
EXPOSE 4080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/entrypoint.py", "healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/entrypoint.py"]
CMD ["web"]
# Labels last: a new commit (REVISION) changes only the image's metadata, no layer.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="omero-web" \
      org.opencontainers.image.description="OMERO.web served by gunicorn, configured with environment variables" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
