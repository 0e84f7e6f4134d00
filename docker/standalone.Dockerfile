# omero-web-standalone: one container, supervisor runs gunicorn and nginx (port 8080).
# Same environment contract as omero-web + omero-web-nginx. Build after the web image:
#   docker build -f docker/standalone.Dockerfile -t omero-web-standalone .    (or `make build`)
ARG WEB_IMAGE=omero-web:latest
FROM ${WEB_IMAGE}
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx gettext-base openssl acme-tiny ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
           /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /etc/nginx/sites-enabled/* \
 && install -d -o omero-web -g omero-web -m 0700 /var/lib/omero-web-nginx/tls /var/cache/omero-web-nginx
COPY nginx/*.conf.template /etc/omero-web-nginx/
COPY nginx/maintenance.html nginx/too-many-logins.html /usr/share/omero-web-nginx/
COPY nginx/start.sh /usr/local/bin/omero-web-nginx
COPY omeroweb/standalone/01-standalone.omero omeroweb/standalone/supervisord.conf /opt/omero/web/defaults/
# The plugins the official omero-web-standalone image enables (fpbioimage and gallery are installed
# too): used unless OMERO_WEB_PLUGINS is set or a site mounts its own 01-default-webapps.omero.
ENV OMERO_WEB_UPSTREAM=127.0.0.1:4080 \
    OMERO_WEB_DEFAULT_PLUGINS=figure,iviewer,mapr,parade,autotag,tagsearch
USER omero-web
# 8443: HTTPS when NGINX_HTTPS is on (certificate in /var/lib/omero-web-nginx/tls: mount a volume).
EXPOSE 8080 8443
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/entrypoint.py", "healthcheck"]
CMD ["standalone"]
# Labels last: a new commit (REVISION) changes only the image's metadata, no layer.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="omero-web-standalone" \
      org.opencontainers.image.description="OMERO.web with nginx in one container (supervisor)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later AND BSD-2-Clause"
