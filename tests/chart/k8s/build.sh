#!/usr/bin/env bash
# Builds a single-node Kubernetes from upstream Go modules (no registry, no release downloads),
# once per version set, into a cache; prints the output directory:
#   build.sh [oldest|newest]   the Kubernetes of versions.env's KUBERNETES_OLDEST_* or _NEWEST_*
#                              (default: $KUBERNETES, else newest)
#   bin/     kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl
#            etcd coredns crictl
#   images/  pause.tar coredns.tar (one-layer images for containerd, built with docker)
# etcd, crictl and CoreDNS are the same for both Kubernetes: built once (`build.sh common`, which
# the other two run first) and copied in.
# k8s.io/kubernetes replaces its k8s.io/* staging modules with local paths that its module zip
# lacks: a wrapper module maps each one to the published k8s.io/<name> v0.<minor>.<patch>.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
pin() { sed -n "s/^$1=//p" "$HERE/../../../versions.env"; }  # versions: versions.env
WHICH=${1:-${KUBERNETES:-newest}}
case $WHICH in oldest | newest | common) ;; *) echo "build.sh: oldest, newest or common, not '$WHICH'" >&2; exit 2 ;; esac
ETCD=$(pin ETCD_VERSION)
COREDNS=$(pin COREDNS_VERSION)
CRICTL=$(pin CRICTL_VERSION)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/omero-web-containers
SCRIPT=$(sha256sum "$0" | cut -c1-8)
if [ "$WHICH" = common ]; then
    OUT=$CACHE/k8s-common-etcd-$ETCD-coredns-$COREDNS-crictl-$CRICTL-$SCRIPT
else
    K8S=$(pin "KUBERNETES_${WHICH^^}_VERSION")
    # Old Kubernetes needs the Go of its day (the proxy serves it); etcd, CoreDNS and crictl this one.
    K8S_GO=$(pin "KUBERNETES_${WHICH^^}_GO")
    OUT=$CACHE/k8s-$K8S-etcd-$ETCD-coredns-$COREDNS-$SCRIPT
fi
mkdir -p "$CACHE"
exec 9>"$OUT.lock"
flock 9  # one build of a version at a time: another caller (.ci/run's, ahead) finishes it first
if [ -f "$OUT/.done" ]; then echo "$OUT"; exit 0; fi
[ "$WHICH" = common ] || COMMON=$("$0" common)

GO_CACHES=$OUT.go  # GBs, only needed to build
# No DWARF from the compiler: the binaries are stripped (-s -w) anyway; 13 % less CPU (helm, measured).
export GOPATH=$GO_CACHES/gopath GOCACHE=$GO_CACHES/gocache GOFLAGS="-mod=mod -gcflags=all=-dwarf=false" GOTOOLCHAIN=local
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; chmod -R u+w "$GO_CACHES" 2>/dev/null; rm -rf "$GO_CACHES"' EXIT
mkdir -p "$OUT/bin" "$OUT/images"
log() { echo "k8s build: $*" >&2; }

build_kubernetes() {
log "Kubernetes $K8S with Go $K8S_GO (about 9 minutes on 2 cores, once)"
mkdir "$WORK/kubernetes" && cd "$WORK/kubernetes"
go mod init omero-web-tests/kubernetes >/dev/null 2>&1
go mod download -json "k8s.io/kubernetes@$K8S" >/dev/null
kubernetes_mod=$GOPATH/pkg/mod/cache/download/k8s.io/kubernetes/@v/$K8S.mod
go mod edit -go="$(sed -n 's/^go //p' "$kubernetes_mod")"  # what $K8S_GO accepts
staging_version=v0.${K8S#v1.}
{
    echo "require k8s.io/kubernetes $K8S"
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' \
        "$kubernetes_mod"
} >> go.mod
commands="kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet"
{
    echo "//go:build tools"
    echo "package tools"
    echo "import ("
    for command in $commands; do echo "    _ \"k8s.io/kubernetes/cmd/$command\""; done
    echo ")"
} > tools.go
GOTOOLCHAIN=$K8S_GO go mod tidy >&2
minor=${K8S#v1.}; minor=${minor%%.*}
version_flags=""
for package in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    version_flags+=" -X $package.gitVersion=$K8S -X $package.gitMajor=1 -X $package.gitMinor=$minor"
    version_flags+=" -X $package.gitTreeState=clean -X $package.buildDate=1970-01-01T00:00:00Z"
done
# One invocation for all six commands, static (CGO off, kubelet included): each package compiles
# once for all of them and the links run in parallel.
packages=""
for command in $commands; do packages+=" k8s.io/kubernetes/cmd/$command"; done
# shellcheck disable=SC2086
CGO_ENABLED=0 GOTOOLCHAIN=$K8S_GO go build -trimpath -ldflags "-s -w $version_flags" -o "$OUT/bin/" $packages >&2
pause_c=$GOPATH/pkg/mod/k8s.io/kubernetes@$K8S/build/pause/linux/pause.c

# The pause image, from this Kubernetes' pause.c: one static binary.
log "pause image"
mkdir "$WORK/pause" && cd "$WORK/pause"
gcc -Os -static -o pause "$pause_c" && strip pause
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > Dockerfile
docker build -q -t registry.k8s.io/pause:owk8s . >/dev/null
docker save registry.k8s.io/pause:owk8s -o "$OUT/images/pause.tar"
docker rmi registry.k8s.io/pause:owk8s >/dev/null
cp "$COMMON"/bin/* "$OUT/bin/"
cp "$COMMON"/images/* "$OUT/images/"
}

build_common() {
# --- etcd: a two-line main on top of its server module (sibling modules at the same version) ---
log "etcd $ETCD"
mkdir "$WORK/etcd" && cd "$WORK/etcd"
go mod init omero-web-tests/etcd >/dev/null 2>&1
cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
etcd_version=${ETCD#v}
for module in api/v3 client/pkg/v3 client/v3 pkg/v3 server/v3; do
    echo "replace go.etcd.io/etcd/$module => go.etcd.io/etcd/$module v$etcd_version" >> go.mod
done
echo "require go.etcd.io/etcd/server/v3 v$etcd_version" >> go.mod
go mod tidy >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/bin/etcd" . >&2

# --- crictl, CoreDNS ---------------------------------------------------------------------------------
build_main() {  # name module version package
    log "$1 $3"
    mkdir "$WORK/$1" && cd "$WORK/$1"
    go mod init "omero-web-tests/$1" >/dev/null 2>&1
    go get "$2@$3" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/bin/$1" "$4" >&2
}
build_main crictl sigs.k8s.io/cri-tools "$CRICTL" sigs.k8s.io/cri-tools/cmd/crictl

# CoreDNS with only the plugins cluster.sh's Corefile names: its own main imports every plugin,
# with their cloud SDKs (a third of its binary).
log "coredns $COREDNS"
mkdir "$WORK/coredns" && cd "$WORK/coredns"
go mod init omero-web-tests/coredns >/dev/null 2>&1
{
    echo "package main"
    echo "import ("
    echo "    \"github.com/coredns/coredns/coremain\""
    for plugin in cache errors health kubernetes loop ready reload; do
        echo "    _ \"github.com/coredns/coredns/plugin/$plugin\""
    done
    echo ")"
    echo "func main() { coremain.Run() }"
} > main.go
echo "require github.com/coredns/coredns $COREDNS" >> go.mod
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/bin/coredns" . >&2

# --- the CoreDNS image: its one static binary ------------------------------------------------------
log "coredns image"
mkdir "$WORK/coredns-image" && cd "$WORK/coredns-image"
cp "$OUT/bin/coredns" .
printf 'FROM scratch\nCOPY coredns /coredns\nUSER 65532:65532\nENTRYPOINT ["/coredns"]\n' > Dockerfile
docker build -q -t registry.k8s.io/coredns/coredns:owk8s . >/dev/null
docker save registry.k8s.io/coredns/coredns:owk8s -o "$OUT/images/coredns.tar"
docker rmi registry.k8s.io/coredns/coredns:owk8s >/dev/null
}

if [ "$WHICH" = common ]; then build_common; else build_kubernetes; fi
touch "$OUT/.done"
log "done: $OUT"
echo "$OUT"
