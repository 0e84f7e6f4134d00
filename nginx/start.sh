#!/bin/sh
# Start script of the omero-web-nginx image (and of nginx in omero-web-standalone).
# Validates a fixed allow-list of variables, renders the templates with envsubst, checks the result
# with `nginx -t`, then runs nginx in the foreground. `start.sh render` prints the rendered config.
set -eu

if [ "${1:-}" = healthcheck ]; then # for HEALTHCHECK / probes: nginx answers its own /healthz
    exec bash -c 'exec 3<>"/dev/tcp/127.0.0.1/${NGINX_LISTEN_PORT:-8080}" &&
        printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "'
fi

TEMPLATES=${NGINX_TEMPLATE_DIR:-/etc/omero-web-nginx}
OUT=/tmp/nginx

fail() {
    echo "ERROR: $1" >&2
    echo "nginx was not started." >&2
    exit 2
}

# matches VALUE REGEX: the whole value matches the extended regex (and has no newline).
matches() {
    [ "$(printf '%s' "$1" | wc -l)" -eq 0 ] && printf '%s\n' "$1" | grep -Eqx -- "$2"
}

check() { # check NAME REGEX EXAMPLE
    eval "value=\${$1}"
    matches "$value" "$2" || fail "$1='$value' is not valid; expected something like $3."
}

: "${OMERO_WEB_UPSTREAM:=web:4080}"
: "${OMERO_WEB_PREFIX:=}"
: "${NGINX_LISTEN_PORT:=8080}"
: "${NGINX_CLIENT_MAX_BODY_SIZE:=0}"
: "${NGINX_PROXY_READ_TIMEOUT:=120s}"
: "${NGINX_PROXY_SEND_TIMEOUT:=120s}"
if [ -z "${NGINX_RESOLVER:-}" ]; then
    NGINX_RESOLVER=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)
    case $NGINX_RESOLVER in *:*) NGINX_RESOLVER="[$NGINX_RESOLVER]" ;; esac
    : "${NGINX_RESOLVER:=127.0.0.1}"
fi

check OMERO_WEB_UPSTREAM '([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}' 'web:4080 or 127.0.0.1:4080'
check OMERO_WEB_PREFIX '(/[A-Za-z0-9._~-]+)*/?' '/omero (or empty for none)'
check NGINX_LISTEN_PORT '[0-9]{1,5}' '8080'
check NGINX_CLIENT_MAX_BODY_SIZE '[0-9]+[kKmMgG]?' '0 (unlimited), 512m or 2g'
check NGINX_PROXY_READ_TIMEOUT '[0-9]+(ms|s|m|h)?' '120s or 5m'
check NGINX_PROXY_SEND_TIMEOUT '[0-9]+(ms|s|m|h)?' '120s or 5m'
check NGINX_RESOLVER '([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])' '127.0.0.11'
[ "$NGINX_LISTEN_PORT" -ge 1 ] && [ "$NGINX_LISTEN_PORT" -le 65535 ] ||
    fail "NGINX_LISTEN_PORT='$NGINX_LISTEN_PORT' is not a port number (1-65535)."

# The prefix as OMERO.web uses it: no trailing slash, "" for none.
OMERO_WEB_PREFIX=${OMERO_WEB_PREFIX%/}
OMERO_WEB_APP_LOCATION=$OMERO_WEB_PREFIX/
OMERO_WEB_STATIC_LOCATION=$OMERO_WEB_PREFIX/static/
export OMERO_WEB_UPSTREAM OMERO_WEB_PREFIX OMERO_WEB_APP_LOCATION OMERO_WEB_STATIC_LOCATION \
    NGINX_LISTEN_PORT NGINX_CLIENT_MAX_BODY_SIZE NGINX_PROXY_READ_TIMEOUT NGINX_PROXY_SEND_TIMEOUT NGINX_RESOLVER
ALLOWED='${OMERO_WEB_UPSTREAM} ${OMERO_WEB_PREFIX} ${OMERO_WEB_APP_LOCATION} ${OMERO_WEB_STATIC_LOCATION}
${NGINX_LISTEN_PORT} ${NGINX_CLIENT_MAX_BODY_SIZE} ${NGINX_PROXY_READ_TIMEOUT} ${NGINX_PROXY_SEND_TIMEOUT}
${NGINX_RESOLVER}'

mkdir -p "$OUT/server.d"
rm -f "$OUT"/server.d/*.conf
envsubst "$ALLOWED" < "$TEMPLATES/nginx.conf.template" > "$OUT/nginx.conf"
if [ -n "$OMERO_WEB_PREFIX" ]; then
    envsubst "$ALLOWED" < "$TEMPLATES/prefix-redirect.conf.template" > "$OUT/server.d/prefix-redirect.conf"
fi

if [ "${1:-}" = render ]; then
    cat "$OUT/nginx.conf"
    for f in "$OUT"/server.d/*.conf; do [ -e "$f" ] && { echo "# --- $f (included in server {})"; cat "$f"; }; done
    exit 0
fi
nginx -t -q -c "$OUT/nginx.conf" || fail "the rendered configuration was rejected by nginx -t (see above)."
[ $# -gt 0 ] && exec "$@"
exec nginx -c "$OUT/nginx.conf" -g 'daemon off;'
