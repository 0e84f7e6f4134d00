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
# `render` prints what would be written, without touching a running nginx's files.
[ "${1:-}" = render ] && OUT=$(mktemp -d)

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
: "${NGINX_PROXY_CONNECT_TIMEOUT:=500ms}"

check OMERO_WEB_UPSTREAM '([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}' 'web:4080 or 127.0.0.1:4080'
check OMERO_WEB_PREFIX '(/[A-Za-z0-9._~-]+)*/?' '/omero (or empty for none)'
check NGINX_LISTEN_PORT '[0-9]{1,5}' '8080'
check NGINX_CLIENT_MAX_BODY_SIZE '[0-9]+[kKmMgG]?' '0 (unlimited), 512m or 2g'
check NGINX_PROXY_READ_TIMEOUT '[0-9]+(ms|s|m|h)?' '120s or 5m'
check NGINX_PROXY_SEND_TIMEOUT '[0-9]+(ms|s|m|h)?' '120s or 5m'
check NGINX_PROXY_CONNECT_TIMEOUT '[0-9]+(ms|s)?' '500ms or 2s'
[ "$NGINX_LISTEN_PORT" -ge 1 ] && [ "$NGINX_LISTEN_PORT" -le 65535 ] ||
    fail "NGINX_LISTEN_PORT='$NGINX_LISTEN_PORT' is not a port number (1-65535)."

# The prefix as OMERO.web uses it: no trailing slash, "" for none.
OMERO_WEB_PREFIX=${OMERO_WEB_PREFIX%/}
OMERO_WEB_APP_LOCATION=$OMERO_WEB_PREFIX/
OMERO_WEB_STATIC_LOCATION=$OMERO_WEB_PREFIX/static/
export OMERO_WEB_UPSTREAM OMERO_WEB_PREFIX OMERO_WEB_APP_LOCATION OMERO_WEB_STATIC_LOCATION \
    NGINX_LISTEN_PORT NGINX_CLIENT_MAX_BODY_SIZE NGINX_PROXY_READ_TIMEOUT NGINX_PROXY_SEND_TIMEOUT NGINX_PROXY_CONNECT_TIMEOUT
ALLOWED='${OMERO_WEB_UPSTREAM} ${OMERO_WEB_PREFIX} ${OMERO_WEB_APP_LOCATION} ${OMERO_WEB_STATIC_LOCATION}
${NGINX_LISTEN_PORT} ${NGINX_CLIENT_MAX_BODY_SIZE} ${NGINX_PROXY_READ_TIMEOUT} ${NGINX_PROXY_SEND_TIMEOUT}
${NGINX_PROXY_CONNECT_TIMEOUT}'

UPSTREAM_HOST=${OMERO_WEB_UPSTREAM%:*}
UPSTREAM_PORT=${OMERO_WEB_UPSTREAM##*:}

is_address() { matches "$1" '[0-9]+(\.[0-9]+){3}|\[[0-9A-Fa-f:.]+\]'; }

# The server lines of `upstream omero_web` (nginx 1.26 resolves upstream names only when it
# loads its configuration): the upstream's address, or every address its name resolves to now.
# max_fails=0: a replica that failed once is not set aside, so nginx never answers "no live
# upstreams" while one replica is stopping and another had a passing error; a request goes to
# the next replica at once when its connection is refused (500 ms at most for a vanished address).
upstream_servers() {
    if is_address "$UPSTREAM_HOST"; then
        echo "server $OMERO_WEB_UPSTREAM;"
        return
    fi
    addresses=$(getent ahosts "$UPSTREAM_HOST" | awk '$2 == "STREAM" { print $1 }' | sort -u)
    if [ -z "$addresses" ]; then # no replica running: answer the maintenance page at once
        echo "server 127.0.0.1:$UPSTREAM_PORT down;  # $UPSTREAM_HOST resolves to no address"
        return
    fi
    for address in $addresses; do
        case $address in *:*) address="[$address]" ;; esac
        echo "server $address:$UPSTREAM_PORT max_fails=0;"
    done
}

# Beside nginx, for an upstream given by name: look the name up every half second and reload
# nginx (graceful: requests in flight finish) when the set of addresses changes, e.g. when a
# replica stops, is recreated with a new address, or is added by `--scale`. A name that stops
# resolving must do so twice in a row, so one lost DNS answer cannot show the maintenance page.
follow_upstream() {
    while [ ! -s "$OUT/nginx.pid" ]; do sleep 0.1; done
    nginx_pid=$(cat "$OUT/nginx.pid")
    current=$(cat "$OUT/upstream.conf")
    unresolved=0
    while kill -0 "$nginx_pid" 2>/dev/null; do
        sleep 0.5
        next=$(upstream_servers)
        case $next in *" down;"*) unresolved=$((unresolved + 1)) ;; *) unresolved=0 ;; esac
        [ "$next" = "$current" ] || [ "$unresolved" = 1 ] && continue
        printf '%s\n' "$next" > "$OUT/upstream.conf"
        case $next in
            *" down;"*) echo "omero-web-nginx: $UPSTREAM_HOST resolves to no address (maintenance page); reloading nginx" >&2 ;;
            *) echo "omero-web-nginx: $UPSTREAM_HOST now at $(echo "$next" | awk '{ printf "%s%s", sep, $2; sep = " " }'); reloading nginx" >&2 ;;
        esac
        kill -HUP "$nginx_pid"
        current=$next
    done
}

mkdir -p "$OUT/server.d"
rm -f "$OUT"/server.d/*.conf "$OUT/nginx.pid"
envsubst "$ALLOWED" < "$TEMPLATES/nginx.conf.template" > "$OUT/nginx.conf"
if [ -n "$OMERO_WEB_PREFIX" ]; then
    envsubst "$ALLOWED" < "$TEMPLATES/prefix-redirect.conf.template" > "$OUT/server.d/prefix-redirect.conf"
fi

upstream_servers > "$OUT/upstream.conf"

if [ "${1:-}" = render ]; then
    cat "$OUT/nginx.conf"
    echo "# --- /tmp/nginx/upstream.conf (included in upstream omero_web {})"
    cat "$OUT/upstream.conf"
    for f in "$OUT"/server.d/*.conf; do
        [ -e "$f" ] && { echo "# --- /tmp/nginx/server.d/${f##*/} (included in server {})"; cat "$f"; }
    done
    rm -rf "$OUT"
    exit 0
fi
nginx -t -q -c "$OUT/nginx.conf" || fail "the rendered configuration was rejected by nginx -t (see above)."
[ $# -gt 0 ] && exec "$@"
is_address "$UPSTREAM_HOST" || follow_upstream &
exec nginx -c "$OUT/nginx.conf" -g 'daemon off;'
