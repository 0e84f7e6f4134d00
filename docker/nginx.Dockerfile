# omero-web-nginx: nginx in front of omero-web (static files, proxy, maintenance page).
# Build from the repository root after the web image:
#   docker build -f docker/nginx.Dockerfile -t omero-web-nginx .      (or `make build`)
ARG BASE_IMAGE=debian:trixie-slim
ARG WEB_IMAGE=omero-web:latest

# The static files of the very same omero-web build (same version, no shared volume needed): in
# that image they are links into its venv; copy the files themselves. WEB_IMAGE may be a derived
# image with more plugins (docs/plugins.md).
FROM ${WEB_IMAGE} AS web
RUN cp -RL /opt/omero/web/static /tmp/static-files

FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx gettext-base openssl acme-tiny ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
           /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* \
           /etc/nginx/sites-enabled/* \
 && groupadd --system --gid 101 nginx \
 && useradd --system --uid 101 --gid nginx --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nginx \
 && install -d -o nginx -g nginx -m 0700 /var/lib/omero-web-nginx/tls /var/cache/omero-web-nginx
COPY --from=web /tmp/static-files /opt/omero/web/static
COPY nginx/*.conf.template /etc/omero-web-nginx/
COPY nginx/maintenance.html nginx/too-many-logins.html /usr/share/omero-web-nginx/
COPY nginx/start.sh /usr/local/bin/omero-web-nginx
USER nginx
# 8443: HTTPS when NGINX_HTTPS is on. NGINX_HTTPS=self-signed keeps its certificate in
# /var/lib/omero-web-nginx/tls: mount a volume there (compose does).
EXPOSE 8080 8443
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/omero-web-nginx", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/omero-web-nginx"]
# Labels last: a new commit (REVISION) changes only the image's metadata, no layer.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="omero-web-nginx" \
      org.opencontainers.image.description="nginx for OMERO.web: static files, proxy, maintenance page" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later AND BSD-2-Clause"
