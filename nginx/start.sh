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
: "${NGINX_HTTPS:=off}"
: "${NGINX_HTTPS_LISTEN_PORT:=8443}"
: "${NGINX_TLS_DIR:=/var/lib/omero-web-nginx/tls}"
: "${NGINX_HSTS_MAX_AGE:=63072000}"
: "${NGINX_ACME_DIRECTORY:=https://acme-v02.api.letsencrypt.org/directory}"
: "${NGINX_ACME_EMAIL:=}"
: "${NGINX_ACME_RENEW_DAYS:=30}"
: "${OMERO_WEB_PUBLIC_URL:=}"
: "${NGINX_TRUSTED_PROXIES:=}"
: "${NGINX_LOGIN_RATE:=30r/m}"
: "${NGINX_LOGIN_BURST:=60}"
: "${NGINX_OMERO_WS_URL:=}"
: "${NGINX_OMERO_WS_CA:=/etc/ssl/certs/ca-certificates.crt}"
: "${NGINX_OMERO_WS_TLS_NAME:=}"
: "${NGINX_CACHE:=off}"
: "${NGINX_CACHE_MAX_SIZE:=1g}"
: "${NGINX_CACHE_VALID:=1h}"
: "${OMERO_WEB_PUBLIC_USER:=}"

check OMERO_WEB_UPSTREAM '([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}' 'web:4080 or 127.0.0.1:4080'
check OMERO_WEB_PREFIX '(/[A-Za-z0-9._~-]+)*/?' '/omero (or empty for none)'
check NGINX_LISTEN_PORT '[0-9]{1,5}' '8080'
check NGINX_CLIENT_MAX_BODY_SIZE '[0-9]+[kKmMgG]?' '0 (unlimited), 512m or 2g'
check NGINX_PROXY_READ_TIMEOUT '[0-9]+(ms|s|m|h)?' '120s or 5m'
check NGINX_PROXY_SEND_TIMEOUT '[0-9]+(ms|s|m|h)?' '120s or 5m'
check NGINX_PROXY_CONNECT_TIMEOUT '[0-9]+(ms|s)?' '500ms or 2s'
check NGINX_HTTPS 'off|files|self-signed|acme' 'off, files, self-signed or acme'
check NGINX_HTTPS_LISTEN_PORT '[0-9]{1,5}' '8443'
check NGINX_TLS_DIR '(/[A-Za-z0-9._-]+)+' '/var/lib/omero-web-nginx/tls'
check NGINX_HSTS_MAX_AGE '[0-9]{1,10}' '63072000 (two years) or 0 (no HSTS header)'
check NGINX_ACME_DIRECTORY 'https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?' 'https://acme-v02.api.letsencrypt.org/directory'
check NGINX_ACME_EMAIL '([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+)?' 'omero-admin@example.org (or empty: no contact address)'
check NGINX_ACME_RENEW_DAYS '[1-9][0-9]?' '30 (renew when fewer days remain)'
check OMERO_WEB_PUBLIC_URL '(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?)?' 'https://omero.example.org'
check NGINX_TRUSTED_PROXIES '([0-9A-Fa-f.:/]+([ ,]+[0-9A-Fa-f.:/]+)*)?' '10.0.0.0/8,192.168.1.5 (empty: none)'
check NGINX_LOGIN_RATE 'off|[1-9][0-9]*r/[sm]' '30r/m (per client address), 1r/s, or off'
check NGINX_LOGIN_BURST '[0-9]{1,6}' '60'
check NGINX_OMERO_WS_URL '(wss?://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5})?' 'wss://omero.example.org:4066 or ws://omero:4065 (empty: no /omero-ws)'
check NGINX_OMERO_WS_CA '(/[A-Za-z0-9._-]+)+' '/etc/omero-web/omero-server-ca.pem'
check NGINX_OMERO_WS_TLS_NAME '([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)?' 'omero.example.org (the name in OMERO.server'"'"'s certificate)'
check OMERO_WEB_PUBLIC_USER '[^[:cntrl:]]*' 'public (the same as the web container'"'"'s; empty: none)'
check NGINX_CACHE 'off|on' 'off, or on (a public data site: OMERO_WEB_PUBLIC_USER)'
check NGINX_CACHE_MAX_SIZE '[0-9]+[mMgG]' '1g or 500m (at least 10m)'
check NGINX_CACHE_VALID '[1-9][0-9]*(s|m|h|d)' '1h, 10m or 1d'
for port in NGINX_LISTEN_PORT NGINX_HTTPS_LISTEN_PORT; do
    eval "value=\${$port}"
    [ "$value" -ge 1 ] && [ "$value" -le 65535 ] || fail "$port='$value' is not a port number (1-65535)."
done
[ "$NGINX_HTTPS_LISTEN_PORT" != "$NGINX_LISTEN_PORT" ] ||
    fail "NGINX_HTTPS_LISTEN_PORT and NGINX_LISTEN_PORT are both $NGINX_LISTEN_PORT; give them different ports."

if [ "$NGINX_CACHE" = on ] && [ -z "$OMERO_WEB_PUBLIC_USER" ]; then
    fail "NGINX_CACHE=on caches the images of a public data site, which needs OMERO_WEB_PUBLIC_USER (the same value as the web container's) given to nginx too; leave NGINX_CACHE off on a site without a public user."
fi
case $NGINX_CACHE_MAX_SIZE in
    *[gG]) CACHE_MB=$((${NGINX_CACHE_MAX_SIZE%?} * 1024)) ;;
    *) CACHE_MB=${NGINX_CACHE_MAX_SIZE%?} ;;
esac
[ "$CACHE_MB" -ge 10 ] || fail "NGINX_CACHE_MAX_SIZE='$NGINX_CACHE_MAX_SIZE' is too small for the four cache zones; give at least 10m."

# The public address: its host names the certificate; with HTTPS on it must be https:// (the web
# container reads the same variable to mark cookies Secure and trust the https Origin).
PUBLIC_ORIGIN=$(printf '%s' "$OMERO_WEB_PUBLIC_URL" | sed -E 's#^(https?://[^/]+).*#\1#')
PUBLIC_HOST=$(printf '%s' "$PUBLIC_ORIGIN" | sed -E 's#^https?://##; s#:[0-9]+$##')
if [ "$NGINX_HTTPS" != off ]; then
    case $OMERO_WEB_PUBLIC_URL in
        https://*) ;;
        *) fail "NGINX_HTTPS=$NGINX_HTTPS needs OMERO_WEB_PUBLIC_URL=https://<the host name users type> (now '$OMERO_WEB_PUBLIC_URL'): nginx redirects to it and names its certificate after it, and the web container marks cookies Secure and trusts that origin." ;;
    esac
fi
if [ "$NGINX_HTTPS" = acme ]; then
    matches "$PUBLIC_HOST" '([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*' ||
        fail "NGINX_HTTPS=acme needs a host name in OMERO_WEB_PUBLIC_URL (now '$PUBLIC_HOST'): ACME certificates name a DNS name that resolves to this host, and the CA checks it on port 80."
fi

# The prefix as OMERO.web uses it: no trailing slash, "" for none.
OMERO_WEB_PREFIX=${OMERO_WEB_PREFIX%/}
OMERO_WEB_APP_LOCATION=$OMERO_WEB_PREFIX/
OMERO_WEB_STATIC_LOCATION=$OMERO_WEB_PREFIX/static/
# HTTPS on: the app is served on the TLS port; the plain port only redirects (and answers /healthz).
if [ "$NGINX_HTTPS" = off ]; then NGINX_APP_LISTEN=$NGINX_LISTEN_PORT; else NGINX_APP_LISTEN="$NGINX_HTTPS_LISTEN_PORT ssl"; fi
export OMERO_WEB_UPSTREAM OMERO_WEB_PREFIX OMERO_WEB_APP_LOCATION OMERO_WEB_STATIC_LOCATION NGINX_APP_LISTEN \
    NGINX_LISTEN_PORT NGINX_CLIENT_MAX_BODY_SIZE NGINX_PROXY_READ_TIMEOUT NGINX_PROXY_SEND_TIMEOUT NGINX_PROXY_CONNECT_TIMEOUT \
    NGINX_TLS_DIR PUBLIC_ORIGIN
ALLOWED='${OMERO_WEB_UPSTREAM} ${OMERO_WEB_PREFIX} ${OMERO_WEB_APP_LOCATION} ${OMERO_WEB_STATIC_LOCATION}
${NGINX_APP_LISTEN} ${NGINX_LISTEN_PORT} ${NGINX_CLIENT_MAX_BODY_SIZE} ${NGINX_PROXY_READ_TIMEOUT}
${NGINX_PROXY_SEND_TIMEOUT} ${NGINX_PROXY_CONNECT_TIMEOUT} ${NGINX_TLS_DIR} ${PUBLIC_ORIGIN}'

UPSTREAM_HOST=${OMERO_WEB_UPSTREAM%:*}
UPSTREAM_PORT=${OMERO_WEB_UPSTREAM##*:}

is_address() { matches "$1" '[0-9]+(\.[0-9]+){3}|\[[0-9A-Fa-f:.]+\]'; }

# The server lines of `upstream omero_web` (nginx 1.26 resolves upstream names only when it
# loads its configuration): the upstream's address, or every address its name resolves to now.
# max_fails=0: a replica that failed once is not set aside, so nginx never answers "no live
# upstreams" while one replica is stopping and another had a passing error; a request goes to
# the next replica at once when its connection is refused (500 ms at most for a vanished address).
upstream_servers() { # [HOST PORT]: OMERO_WEB_UPSTREAM's by default
    host=${1:-$UPSTREAM_HOST} port=${2:-$UPSTREAM_PORT}
    if is_address "$host"; then
        echo "server $host:$port;"
        return
    fi
    addresses=$(getent ahosts "$host" | awk '$2 == "STREAM" { print $1 }' | sort -u)
    if [ -z "$addresses" ]; then # no replica running: answer the maintenance page at once
        echo "server 127.0.0.1:$port down;  # $host resolves to no address"
        return
    fi
    for address in $addresses; do
        case $address in *:*) address="[$address]" ;; esac
        echo "server $address:$port max_fails=0;"
    done
}

# The pid of the nginx master (the watchers below start beside it and wait for its pid file).
nginx_master_pid() {
    while [ ! -s "$OUT/nginx.pid" ]; do sleep 0.1; done
    cat "$OUT/nginx.pid"
}

# Beside nginx, for an upstream given by name: look the name up every half second and reload
# nginx (graceful: requests in flight finish) when the set of addresses changes, e.g. when a
# replica stops, is recreated with a new address, or is added by `--scale`. A name that stops
# resolving must do so twice in a row, so one lost DNS answer cannot show the maintenance page.
follow_upstream() {
    nginx_pid=$(nginx_master_pid)
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

# NGINX_HTTPS=self-signed: a certificate for the public host name, made once and kept (NGINX_TLS_DIR is
# a volume), so browsers that were told to accept it keep accepting it after a restart.
self_signed_certificate() {
    if [ -s "$NGINX_TLS_DIR/tls.crt" ] && [ -s "$NGINX_TLS_DIR/tls.key" ]; then
        echo "omero-web-nginx: serving the self-signed certificate kept in $NGINX_TLS_DIR (remove tls.crt to make a new one)" >&2
        return
    fi
    [ -w "$NGINX_TLS_DIR" ] ||
        fail "NGINX_HTTPS=self-signed: $NGINX_TLS_DIR is not writable by uid $(id -u); mount a volume there (compose and the standalone image do)."
    case $PUBLIC_HOST in *[!0-9.]*) name="DNS:$PUBLIC_HOST" ;; *) name="IP:$PUBLIC_HOST" ;; esac
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -subj "/CN=$PUBLIC_HOST" -addext "subjectAltName=$name" \
        -keyout "$NGINX_TLS_DIR/tls.key.new" -out "$NGINX_TLS_DIR/tls.crt.new" 2>"$OUT/openssl.log") ||
        { cat "$OUT/openssl.log" >&2; fail "NGINX_HTTPS=self-signed: openssl could not make a certificate in $NGINX_TLS_DIR (above)."; }
    mv "$NGINX_TLS_DIR/tls.key.new" "$NGINX_TLS_DIR/tls.key"
    mv "$NGINX_TLS_DIR/tls.crt.new" "$NGINX_TLS_DIR/tls.crt"
    echo "omero-web-nginx: made a self-signed certificate for $PUBLIC_HOST in $NGINX_TLS_DIR (valid 825 days)" >&2
}

# HTTPS on: look at the certificate and key every 2 s; when they change (a renewal, written by
# rename), reload nginx gracefully if the new pair passes `nginx -t`, else keep serving the old one.
certificate_stamp() { cat "$NGINX_TLS_DIR/tls.crt" "$NGINX_TLS_DIR/tls.key" 2>/dev/null | cksum; }
watch_certificate() {
    nginx_pid=$(nginx_master_pid)
    current=$(certificate_stamp)
    while kill -0 "$nginx_pid" 2>/dev/null; do
        sleep 2
        next=$(certificate_stamp)
        [ "$next" = "$current" ] && continue
        current=$next
        reload_certificate "$nginx_pid" || true
    done
}
reload_certificate() { # reload_certificate NGINX_PID: serve the pair now in NGINX_TLS_DIR if nginx accepts it
    if nginx -t -q -c "$OUT/nginx.conf" 2>"$OUT/tls-check.log"; then
        echo "omero-web-nginx: new certificate in $NGINX_TLS_DIR; reloading nginx" >&2
        kill -HUP "$1"
    else
        cat "$OUT/tls-check.log" >&2
        echo "omero-web-nginx: ERROR: the new certificate or key in $NGINX_TLS_DIR was refused (above); still serving the previous pair" >&2
        return 1
    fi
}

# NGINX_HTTPS=acme: Debian's acme-tiny obtains and renews the certificate over HTTP-01; nginx serves
# its challenges on the plain port from ACME_WEBROOT. The account key is kept in NGINX_TLS_DIR/acme
# (a volume) beside the served pair. (uacme, smaller, was tried: it gives up on an authorization
# that offers a challenge type without a token, such as dns-persist-01, before reaching http-01.)
ACME_DIR=$NGINX_TLS_DIR/acme
ACME_WEBROOT=$OUT/acme-challenge
ACME_CHECK_INTERVAL=43200 # seconds: twice a day, like certbot's timer

# One round: a certificate when none from the CA is served for PUBLIC_HOST yet, when fewer than
# NGINX_ACME_RENEW_DAYS days remain, or at once with -f; a new key each time. Status 0: served or current.
acme_round() {
    force=${1:-}
    mkdir -p "$ACME_WEBROOT/.well-known/acme-challenge"
    (
        flock 9
        if [ -z "$force" ] && [ "$(cat "$ACME_DIR/host" 2>/dev/null)" = "$PUBLIC_HOST" ] &&
            openssl x509 -in "$NGINX_TLS_DIR/tls.crt" -noout -checkend $((NGINX_ACME_RENEW_DAYS * 86400)) >/dev/null; then
            echo "omero-web-nginx: ACME: the certificate for $PUBLIC_HOST is still current ($(openssl x509 -in "$NGINX_TLS_DIR/tls.crt" -noout -enddate); renewed when fewer than $NGINX_ACME_RENEW_DAYS days remain)" >&2
            exit 0
        fi
        if [ ! -s "$ACME_DIR/account.key" ]; then
            (umask 077 && openssl genrsa -out "$ACME_DIR/account.key.new" 4096 2>/dev/null) &&
                mv "$ACME_DIR/account.key.new" "$ACME_DIR/account.key" || exit 2
            echo "omero-web-nginx: ACME: a new account key in $ACME_DIR/account.key (keep it with the volume)" >&2
        fi
        (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$PUBLIC_HOST" \
            -addext "subjectAltName=DNS:$PUBLIC_HOST" -keyout "$ACME_DIR/tls.key.new" -out "$ACME_DIR/tls.csr" 2>/dev/null) ||
            exit 2
        echo "omero-web-nginx: ACME: asking $NGINX_ACME_DIRECTORY for a certificate for $PUBLIC_HOST (accepting its terms of service)" >&2
        if ! acme-tiny --account-key "$ACME_DIR/account.key" --csr "$ACME_DIR/tls.csr" --disable-check \
            --acme-dir "$ACME_WEBROOT/.well-known/acme-challenge" --directory-url "$NGINX_ACME_DIRECTORY" \
            ${NGINX_ACME_EMAIL:+--contact "mailto:$NGINX_ACME_EMAIL"} >"$ACME_DIR/tls.crt.new" 2>"$OUT/acme.log"; then
            sed 's/^/acme-tiny: /' "$OUT/acme.log" >&2
            echo "omero-web-nginx: ERROR: ACME: no certificate for $PUBLIC_HOST from $NGINX_ACME_DIRECTORY (above); still serving the previous one" >&2
            exit 2
        fi
        mv "$ACME_DIR/tls.key.new" "$NGINX_TLS_DIR/tls.key" && mv "$ACME_DIR/tls.crt.new" "$NGINX_TLS_DIR/tls.crt" || exit 2
        echo "$PUBLIC_HOST" > "$ACME_DIR/host"
        echo "omero-web-nginx: ACME: new certificate for $PUBLIC_HOST ($(openssl x509 -in "$NGINX_TLS_DIR/tls.crt" -noout -enddate))" >&2
        reload_certificate "$(nginx_master_pid)"
    ) 9>"$OUT/acme.lock"
}

# Beside nginx: a round at once (the temporary self-signed certificate is served until the first
# one arrives), then twice a day; after a failure again in 5 minutes, doubling up to twice a day.
renew_certificate() {
    nginx_pid=$(nginx_master_pid)
    retry=300
    while kill -0 "$nginx_pid" 2>/dev/null; do
        if acme_round; then
            wait=$ACME_CHECK_INTERVAL retry=300
        else
            wait=$retry retry=$((retry * 2 > ACME_CHECK_INTERVAL ? ACME_CHECK_INTERVAL : retry * 2))
            echo "omero-web-nginx: ACME: next attempt in $wait s" >&2
        fi
        sleep "$wait"
    done
}

# Headers of every answer (repeated in each location that adds its own: nginx does not merge them).
security_headers() {
    echo 'add_header X-Content-Type-Options "nosniff" always;'
    echo 'add_header Referrer-Policy "strict-origin-when-cross-origin" always;'
    if [ "$NGINX_HTTPS" != off ] && [ "$NGINX_HSTS_MAX_AGE" != 0 ]; then
        echo "add_header Strict-Transport-Security \"max-age=$NGINX_HSTS_MAX_AGE\" always;"
    fi
}

# The scheme passed to OMERO.web as X-Forwarded-Proto. HTTPS on: nginx is the edge, its own scheme.
# Off with trusted proxies: their header, no one else's. Off without: an outer proxy's header (as
# before: nginx is meant to sit behind an ingress or TLS proxy then), else nginx's own scheme.
forwarded_proto() {
    if [ "$NGINX_HTTPS" != off ]; then
        echo 'map $scheme $omero_forwarded_proto { default $scheme; }'
    elif [ -n "$TRUSTED" ]; then
        echo 'geo $realip_remote_addr $omero_trusted_peer {'
        echo '    default 0;'
        for proxy in $TRUSTED; do echo "    $proxy 1;"; done
        echo '}'
        echo 'map "$omero_trusted_peer:$http_x_forwarded_proto" $omero_forwarded_proto {'
        echo '    default $scheme;'
        echo '    "1:https" https;'
        echo '    "1:http" http;'
        echo '}'
    else
        echo 'map $http_x_forwarded_proto $omero_forwarded_proto {'
        echo '    default $http_x_forwarded_proto;'
        echo '    "" $scheme;'
        echo '}'
    fi
}

# The user's address from the X-Forwarded-For of the trusted proxies only (realip module): logged,
# limited and passed on as $remote_addr.
real_ip() {
    for proxy in $TRUSTED; do echo "set_real_ip_from $proxy;"; done
    echo 'real_ip_header X-Forwarded-For;'
    echo 'real_ip_recursive on;'
}

# Login POSTs (the webclient's, webadmin's and the JSON API's form) limited per client address;
# every other request has an empty key, which limit_req does not count.
login_limit_zone() {
    prefix_re=$(printf '%s' "$OMERO_WEB_PREFIX" | sed 's/[.~]/\\&/g')
    echo 'map "$request_method:$uri" $omero_login_client {'
    echo '    default "";'
    echo "    \"~^POST:$prefix_re/(webclient|webadmin)/login/\$\" \$binary_remote_addr;"
    echo "    \"~^POST:$prefix_re/api/v[0-9.]+/login/\$\" \$binary_remote_addr;"
    echo '}'
    echo "limit_req_zone \$omero_login_client zone=omero_login:10m rate=$NGINX_LOGIN_RATE;"
    echo 'limit_req_status 429;'
}

# NGINX_OMERO_WS_URL: /omero-ws, OMERO.server's websocket transport for OMERO clients (omero-py, Insight)
# through the site's address. Upgrade requests only (anything else: 426, answered here: over HTTP/2 the
# server's own 426 would carry an Upgrade header, which HTTP/2 clients refuse); wss:// is verified
# against NGINX_OMERO_WS_CA for NGINX_OMERO_WS_TLS_NAME. The name is resolved at start.
WS_SCHEME=${NGINX_OMERO_WS_URL%%://*}
WS_AUTHORITY=${NGINX_OMERO_WS_URL#*://}
WS_HOST=${WS_AUTHORITY%:*}
omero_ws() {
    echo 'upstream omero_ws {'
    upstream_servers "$WS_HOST" "${WS_AUTHORITY##*:}" | sed 's/^/    /'
    echo '}'
}
omero_ws_location() {
    echo 'location = /omero-ws {'
    echo '    if ($http_upgrade !~* "^websocket$") {'
    printf '%s\n' '        return 426 "/omero-ws is OMERO.server'"'"'s websocket endpoint: websocket connections only\n";'
    echo '    }'
    if [ "$WS_SCHEME" = wss ]; then
        echo '    proxy_pass https://omero_ws;'
        echo '    proxy_ssl_verify on;'
        echo "    proxy_ssl_trusted_certificate $NGINX_OMERO_WS_CA;"
        echo '    proxy_ssl_verify_depth 4;'
        echo '    proxy_ssl_server_name on;'
        echo "    proxy_ssl_name ${NGINX_OMERO_WS_TLS_NAME:-$WS_HOST};"
        echo '    proxy_ssl_protocols TLSv1.2 TLSv1.3;'
    else
        echo '    proxy_pass http://omero_ws;'
    fi
    echo '    proxy_http_version 1.1;'
    echo '    proxy_set_header Upgrade $http_upgrade;'
    echo '    proxy_set_header Connection "upgrade";'
    echo '    proxy_set_header X-Forwarded-For $remote_addr;'
    echo '    proxy_set_header X-Real-IP $remote_addr;'
    echo '    proxy_connect_timeout 5s;'
    echo '    proxy_read_timeout 1d;  # an idle OMERO session stays open'
    echo '    proxy_send_timeout 1d;'
    echo '    error_page 502 504 = @omero_ws_unreachable;  # not the maintenance page: OMERO.web is fine'
    echo '}'
    echo 'location @omero_ws_unreachable {'
    printf '%s\n' "    return 502 \"OMERO.server's websocket endpoint ($NGINX_OMERO_WS_URL) did not answer, or its certificate was refused: see nginx's log\\n\";"
    echo '}'
}

# NGINX_CACHE=on: a cache of the public user's images for a public data site, in four zones under
# CACHE_DIR (a volume or emptyDir: the root filesystem is read-only), NGINX_CACHE_MAX_SIZE shared
# between them. Safety: nginx stores only answers that OMERO.web marked as made for the public user
# (X-OMERO-Web-Public, omeroweb/public_cache.py), never one made for a logged-in user; requests of
# logged-in users (the cookie omero_web_cache, set by the same middleware) and requests that log in
# through the URL (bsession, username) are always answered by OMERO.web.
CACHE_DIR=/var/cache/omero-web-nginx
CACHE_ZONES="thumbnails:20 images:60 metadata:10 api:10"  # zone:percent of NGINX_CACHE_MAX_SIZE
CACHE_INACTIVE=7d  # unused this long: removed (until then it can still be served stale)
cache_zones() {
    echo '# The key: the scheme and host OMERO.web builds its links with, the path, and the query'
    echo '# without the browser'"'"'s cache-buster (_=, added by jQuery to every request).'
    echo 'map $args $omero_cache_args {'
    echo '    default $args;'
    echo '    "~^(?<omero_args_head>(.*&)?)_=[^&]*&?(?<omero_args_tail>.*)$" "$omero_args_head$omero_args_tail";'
    echo '}'
    echo '# Stored only when OMERO.web made the answer for the public user.'
    echo 'map $upstream_http_x_omero_web_public $omero_cache_not_public {'
    echo '    "1" "";'
    echo '    default 1;'
    echo '}'
    for zone in $CACHE_ZONES; do
        name=${zone%:*} mb=$((CACHE_MB * ${zone#*:} / 100))
        [ "$mb" -ge 1 ] || mb=1
        # ~8,000 keys per MB of keys_zone; entries of ~4 KB (thumbnails, JSON), ~32 KB (planes, tiles).
        case $name in images) keys=$((mb / 256)) ;; *) keys=$((mb / 32)) ;; esac
        [ "$keys" -ge 1 ] || keys=1
        echo "proxy_cache_path $CACHE_DIR/$name levels=1:2 keys_zone=omero_$name:${keys}m max_size=${mb}m inactive=$CACHE_INACTIVE use_temp_path=off;"
    done
}
cache_locations() {
    prefix_re=$(printf '%s' "$OMERO_WEB_PREFIX" | sed 's/[.~]/\\&/g')
    cache_location thumbnails "^$prefix_re/web(gateway|client)/(render_thumbnail|get_thumbnails?|render_birds_eye_view)/"
    cache_location images "^$prefix_re/web(gateway|client)/render_(image|image_region|image_rdef|image_region_rdef|split_channel|row_plot|col_plot)/"
    cache_location metadata "^$prefix_re/(web(gateway|client)/imgData|iviewer/image_data)/"
    cache_location api "^$prefix_re/api/v0/m/"
}
cache_location() { # cache_location ZONE PATH_REGEX
    echo "location ~ $2 {"
    echo '    include /tmp/nginx/proxy.conf;'
    echo "    proxy_cache omero_$1;"
    echo '    proxy_cache_key "$omero_forwarded_proto://$http_host$uri?$omero_cache_args";'
    echo "    proxy_cache_valid 200 $NGINX_CACHE_VALID;  # only successful answers"
    echo '    proxy_cache_bypass $cookie_omero_web_cache $arg_bsession $arg_username;'
    echo '    proxy_no_cache $omero_cache_not_public $cookie_omero_web_cache $arg_bsession $arg_username;'
    echo '    proxy_cache_lock on;  # one request fills an entry, the others wait for it'
    echo '    proxy_cache_lock_timeout 10s;'
    echo '    proxy_cache_lock_age 10s;'
    echo '    proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;'
    echo '    proxy_cache_background_update on;'
    echo '    # Django says Vary: Cookie, and sets the session cookie on a visitor'"'"'s first request: the'
    echo '    # answer is the same for every visitor, and no cookie is ever stored or replayed.'
    echo '    proxy_ignore_headers Set-Cookie Vary Expires Cache-Control X-Accel-Expires;'
    echo '    proxy_hide_header Set-Cookie;'
    echo '    add_header X-Cache-Status $upstream_cache_status always;'
    echo '    include /tmp/nginx/headers.conf;'
    echo '}'
}

# `omero-web-nginx cache-purge [REGEX]`: remove the cached answers whose key (scheme://host/path?query)
# matches REGEX (grep -E), or all of them; the next request for each is answered by OMERO.web.
cache_purge() {
    [ -d "$CACHE_DIR" ] || { echo "ERROR: cache-purge: no cache in $CACHE_DIR." >&2; exit 2; }
    if [ -z "${1:-}" ]; then
        count=$(find "$CACHE_DIR" -type f | wc -l)
        find "$CACHE_DIR" -type f -delete
    else
        count=0
        for file in $(grep -rlaE "^KEY: .*($1)" "$CACHE_DIR" || true); do
            rm -f "$file" && count=$((count + 1))
        done
    fi
    echo "omero-web-nginx: removed $count cached answers from $CACHE_DIR" >&2
}

# Retry-After of the 429 page: the time one more login POST is allowed again.
case $NGINX_LOGIN_RATE in
    *r/m) LOGIN_RETRY_AFTER=$(((60 + ${NGINX_LOGIN_RATE%r/m} - 1) / ${NGINX_LOGIN_RATE%r/m})) ;;
    *) LOGIN_RETRY_AFTER=1 ;;
esac
TRUSTED=$(printf '%s' "$NGINX_TRUSTED_PROXIES" | tr ',' ' ')

# `docker compose exec nginx omero-web-nginx acme-renew`: renew now (the running nginx serves the
# challenge and is reloaded), e.g. after a key compromise or to test the path.
if [ "${1:-}" = acme-renew ]; then
    [ "$NGINX_HTTPS" = acme ] || { echo "ERROR: acme-renew: NGINX_HTTPS is '$NGINX_HTTPS', not acme." >&2; exit 2; }
    [ -s "$OUT/nginx.pid" ] || { echo "ERROR: acme-renew: nginx is not running in this container." >&2; exit 2; }
    acme_round -f
    exit
fi

if [ "${1:-}" = cache-purge ]; then
    cache_purge "${2:-}"
    exit
fi

mkdir -p "$OUT/server.d" "$OUT/http.d" "$OUT/app.d"
rm -f "$OUT"/server.d/*.conf "$OUT"/http.d/*.conf "$OUT"/app.d/*.conf "$OUT/nginx.pid"
envsubst "$ALLOWED" < "$TEMPLATES/nginx.conf.template" > "$OUT/nginx.conf"
envsubst "$ALLOWED" < "$TEMPLATES/proxy.conf.template" > "$OUT/proxy.conf"
if [ -n "$OMERO_WEB_PREFIX" ]; then
    envsubst "$ALLOWED" < "$TEMPLATES/prefix-redirect.conf.template" > "$OUT/server.d/prefix-redirect.conf"
fi
security_headers > "$OUT/headers.conf"
forwarded_proto > "$OUT/http.d/forwarded-proto.conf"
[ -z "$TRUSTED" ] || real_ip > "$OUT/http.d/real-ip.conf"
if [ "$NGINX_LOGIN_RATE" != off ]; then
    login_limit_zone > "$OUT/http.d/login-limit.conf"
    echo "limit_req zone=omero_login burst=$NGINX_LOGIN_BURST nodelay;" > "$OUT/app.d/login-limit.conf"
fi
echo "add_header Retry-After $LOGIN_RETRY_AFTER always;" > "$OUT/login-retry-after.conf"
if [ "$NGINX_HTTPS" != off ]; then
    envsubst "$ALLOWED" < "$TEMPLATES/https.conf.template" > "$OUT/server.d/https.conf"
    envsubst "$ALLOWED" < "$TEMPLATES/https-redirect.conf.template" > "$OUT/http.d/https-redirect.conf"
fi

if [ -n "$NGINX_OMERO_WS_URL" ]; then
    case $NGINX_OMERO_WS_URL in
        wss://*) [ -r "$NGINX_OMERO_WS_CA" ] || [ "${1:-}" = render ] ||
            fail "NGINX_OMERO_WS_URL=$NGINX_OMERO_WS_URL: the CA bundle NGINX_OMERO_WS_CA=$NGINX_OMERO_WS_CA is not readable by uid $(id -u); mount OMERO.server's CA (or its self-signed certificate) there." ;;
    esac
    omero_ws > "$OUT/http.d/omero-ws.conf"
    omero_ws_location > "$OUT/server.d/omero-ws.conf"
fi
if [ "$NGINX_CACHE" = on ]; then
    [ -w "$CACHE_DIR" ] || [ "${1:-}" = render ] ||
        fail "NGINX_CACHE=on: $CACHE_DIR is not writable by uid $(id -u); mount a volume (compose) or an emptyDir (the chart) there."
    cache_zones > "$OUT/http.d/cache.conf"
    cache_locations > "$OUT/server.d/cache.conf"
fi
upstream_servers > "$OUT/upstream.conf"

if [ "${1:-}" = render ]; then
    cat "$OUT/nginx.conf"
    echo "# --- /tmp/nginx/upstream.conf (included in upstream omero_web {})"
    cat "$OUT/upstream.conf"
    for f in "$OUT"/http.d/*.conf "$OUT"/server.d/*.conf "$OUT"/app.d/*.conf "$OUT"/*.conf; do
        [ -e "$f" ] && [ "$f" != "$OUT/nginx.conf" ] && [ "$f" != "$OUT/upstream.conf" ] &&
            { echo "# --- ${f#"$OUT"/}"; cat "$f"; }
    done
    rm -rf "$OUT"
    exit 0
fi
case $NGINX_HTTPS in
    self-signed) self_signed_certificate ;;
    acme) if [ ! -s "$NGINX_TLS_DIR/tls.crt" ]; then
            self_signed_certificate
            echo "omero-web-nginx: ACME: serving that temporary certificate until the first one from $NGINX_ACME_DIRECTORY arrives" >&2
        fi
        mkdir -p "$ACME_DIR" ;;
    files) [ -r "$NGINX_TLS_DIR/tls.crt" ] && [ -r "$NGINX_TLS_DIR/tls.key" ] ||
        fail "NGINX_HTTPS=files needs the certificate (with its chain) in $NGINX_TLS_DIR/tls.crt and its key in $NGINX_TLS_DIR/tls.key, readable by uid $(id -u) (NGINX_TLS_DIR; compose: OMERO_WEB_TLS_DIR)." ;;
esac
nginx -t -q -c "$OUT/nginx.conf" || fail "the rendered configuration was rejected by nginx -t (see above)."
[ $# -gt 0 ] && exec "$@"
is_address "$UPSTREAM_HOST" || follow_upstream &
case $NGINX_HTTPS in
    files | self-signed) watch_certificate & ;;
    acme) renew_certificate & ;;
esac
exec nginx -c "$OUT/nginx.conf" -g 'daemon off;'
