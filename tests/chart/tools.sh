#!/usr/bin/env bash
# Builds the chart (and test) tools from the Go module proxy into a cache (once per version), and prints the
# directory holding them: helm3 and helm4 (and helm, Helm 3), kubeconform, kube-score, the
# release's crane and actionlint, and Pebble (the HTTPS tests' ACME server). Each tool is built in a
# throw-away wrapper module (`go install pkg@version` fails for some modules). Needs Go; nothing is
# downloaded but modules.
#   PATH="$(tests/chart/tools.sh):$PATH"     every tool
#   tests/chart/tools.sh pebble              only the ones named (the stack tests need Pebble only)
# Builds of the same tool wait for each other (flock): .ci/run builds them ahead, the tests may ask.
set -euo pipefail
WANTED=" ${*:-helm3 helm4 kubeconform kube-score crane actionlint pebble} "

pin() { sed -n "s/^$1=//p" "$(dirname "$0")/../../versions.env"; }  # versions: versions.env
HELM3_VERSION=$(pin HELM3_VERSION)
HELM4_VERSION=$(pin HELM4_VERSION)
KUBECONFORM_VERSION=$(pin KUBECONFORM_VERSION)
KUBE_SCORE_VERSION=$(pin KUBE_SCORE_VERSION)  # the linter (kube-linter's modules are refused by the proxy here)
CRANE_VERSION=$(pin CRANE_VERSION)
ACTIONLINT_VERSION=$(pin ACTIONLINT_VERSION)
PEBBLE_VERSION=$(pin PEBBLE_VERSION)  # the ACME server of the HTTPS tests
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/omero-web-containers/tools
BIN=$CACHE/bin-helm-$HELM3_VERSION-$HELM4_VERSION-kubeconform-$KUBECONFORM_VERSION-kube-score-$KUBE_SCORE_VERSION-crane-$CRANE_VERSION-actionlint-$ACTIONLINT_VERSION

# This run's Go caches (GBs, only needed to build; another run may be building beside it): removed at exit.
mkdir -p "$CACHE"
GO_CACHES=$(mktemp -d "$CACHE/go.XXXXXX")
trap 'chmod -R u+w "$GO_CACHES" 2>/dev/null; rm -rf "$GO_CACHES"' EXIT

build() {  # name module package version [module directory to keep beside it, as name-files]
    local name=$1 module=$2 package=$3 version=$4 work lock
    case $WANTED in *" ${name%%-v[0-9]*} "*) ;; *) return ;; esac
    exec {lock}>"$CACHE/$name.lock"
    flock "$lock"
    if [ -x "$BIN/$name" ]; then exec {lock}>&-; return; fi
    echo "Building $name $version from the Go module proxy (once; cached in $CACHE)" >&2
    work=$(mktemp -d)
    (
        cd "$work"
        # No DWARF from the compiler (the binaries are stripped): 13 % less CPU for helm, measured.
        export GOFLAGS="-mod=mod -gcflags=all=-dwarf=false" GOPATH="$GO_CACHES/gopath" GOCACHE="$GO_CACHES/gocache" \
            CGO_ENABLED=0
        go mod init omero-web-tools/"$name" >/dev/null 2>&1
        go get "$module@$version" >&2
        go build -trimpath -ldflags "-s -w" -o "$work/$name" "$package" >&2
        [ -z "${5:-}" ] || cp -R "$(go list -m -f '{{.Dir}}' "$module")/$5" "$BIN/$name-files"
        mv "$work/$name" "$BIN/$name"  # last: a binary in BIN is a finished build
    )
    rm -rf "$work"
    exec {lock}>&-
}

mkdir -p "$BIN"
build helm3 helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$HELM3_VERSION"
build helm4 helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm "$HELM4_VERSION"
ln -sf helm3 "$BIN/helm"
build kubeconform github.com/yannh/kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
build kube-score github.com/zegl/kube-score github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION"
build crane github.com/google/go-containerregistry github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
build actionlint github.com/rhysd/actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
# Pebble with its test certificates (the ACME API's TLS key and CA): its version in the name, so the
# directory of the other tools stays valid.
build "pebble-$PEBBLE_VERSION" github.com/letsencrypt/pebble/v2 github.com/letsencrypt/pebble/v2/cmd/pebble \
    "$PEBBLE_VERSION" test
ln -sfn "pebble-$PEBBLE_VERSION" "$BIN/pebble"
ln -sfn "pebble-$PEBBLE_VERSION-files" "$BIN/pebble-files"
echo "$BIN"
