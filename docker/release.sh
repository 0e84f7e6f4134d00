#!/usr/bin/env bash
# Publishes a release (`make release`): each image's per-architecture builds, one multi-arch OCI
# image index per image, and the chart as an OCI artifact whose appVersion and image defaults name
# that release.
#   REGISTRY=ghcr.io/my-org/ IMAGE_TAG=5.33.2-1 docker/release.sh
# Environment:
#   REGISTRY        where to push, with a trailing slash (ghcr.io/my-org/, 127.0.0.1:5000/)
#   IMAGE_TAG       the OMERO.web version plus a build suffix: 5.33.2-1 (immutable by convention)
#   MOVING_TAGS     tags moved to this release as well (default: the OMERO.web version, and latest)
#   SOURCE_TAG      tag of the local images `make build` made (default latest: omero-web:latest for
#                   the machine's architecture, omero-web:latest-arm64 for another one)
#   ARCHS           architectures to publish (default: amd64 arm64), HOST_ARCH the machine's
#   REGISTRY_USERNAME, REGISTRY_PASSWORD  credentials (else the docker config: `docker login`)
# Tools on PATH: skopeo (copies from the Docker engine), crane (indexes, tags), helm (the chart).
# A registry on 127.0.0.1 or localhost is spoken to over plain HTTP, as Docker does.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "release: $*" >&2; exit 1; }

REGISTRY=${REGISTRY:-}
IMAGE_TAG=${IMAGE_TAG:-}
IMAGES="omero-web omero-web-nginx omero-web-standalone"
ARCHS=${ARCHS:-amd64 arm64}
HOST_ARCH=${HOST_ARCH:-$(uname -m | sed 's/^x86_64$/amd64/; s/^aarch64$/arm64/')}
SOURCE_TAG=${SOURCE_TAG:-latest}
VERSION=$(sed -n 's/^omero-web==\([^ ]*\).*/\1/p' omeroweb/requirements.lock)
MOVING_TAGS=${MOVING_TAGS-$VERSION latest}
CHART=helm/omero-web
REVISION=$(git rev-parse --short HEAD)

case $REGISTRY in
    */) ;;
    "") die "set REGISTRY to where the release goes, with a trailing slash, e.g. REGISTRY=ghcr.io/my-org/" ;;
    *) die "REGISTRY=$REGISTRY needs a trailing slash (it prefixes image names): REGISTRY=$REGISTRY/" ;;
esac
[[ $IMAGE_TAG =~ ^${VERSION//./\\.}-[0-9A-Za-z][0-9A-Za-z.]*$ ]] ||
    die "IMAGE_TAG='$IMAGE_TAG' must be the OMERO.web version of the images plus a build suffix, e.g. IMAGE_TAG=$VERSION-1"
for tool in skopeo crane helm; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH (make release puts tests/chart/tools.sh's crane and helm there; skopeo: apt-get install skopeo)"
done
host=${REGISTRY%%/*}
skopeo_tls=() crane_tls=() helm_tls=()
case $host in
    127.0.0.1:* | localhost:* | 127.0.0.1 | localhost)
        skopeo_tls=(--dest-tls-verify=false) crane_tls=(--insecure) helm_tls=(--plain-http) ;;
esac

# Check every local image first: present, of its architecture, built from this commit.
source_image() {  # name arch
    if [ "$2" = "$HOST_ARCH" ]; then echo "$1:$SOURCE_TAG"; else echo "$1:$SOURCE_TAG-$2"; fi
}
for name in $IMAGES; do
    for arch in $ARCHS; do
        image=$(source_image "$name" "$arch")
        facts=$(docker image inspect --format \
            '{{.Architecture}} {{index .Config.Labels "org.opencontainers.image.revision"}} {{index .Config.Labels "org.opencontainers.image.version"}}' \
            "$image" 2>/dev/null) || die "no local image $image: build it first (make build$([ "$arch" = "$HOST_ARCH" ] || echo " ARCH=$arch"))"
        read -r image_arch image_revision image_version <<<"$facts"
        [ "$image_arch" = "$arch" ] || die "$image is $image_arch, not $arch"
        [ "$image_revision" = "$REVISION" ] || die "$image was built from commit $image_revision, this is $REVISION: build it again (make build)"
        [ "$image_version" = "$VERSION" ] || die "$image holds OMERO.web $image_version, the lock says $VERSION"
    done
done

# Credentials: from the environment into a private auth file, or the docker config as it is.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
if [ -n "${REGISTRY_USERNAME:-}" ]; then
    [ -n "${REGISTRY_PASSWORD:-}" ] || die "REGISTRY_USERNAME is set but REGISTRY_PASSWORD is empty"
    export DOCKER_CONFIG=$work/docker
    mkdir -m 700 "$DOCKER_CONFIG"
    printf '%s' "$REGISTRY_PASSWORD" | skopeo login --authfile "$DOCKER_CONFIG/config.json" \
        "${skopeo_tls[@]/dest-/}" --username "$REGISTRY_USERNAME" --password-stdin "$host" >/dev/null ||
        die "logging in to $host as $REGISTRY_USERNAME failed (REGISTRY_USERNAME, REGISTRY_PASSWORD)"
else
    export DOCKER_CONFIG=${DOCKER_CONFIG:-$HOME/.docker}
    [ -f "$DOCKER_CONFIG/config.json" ] || printf '{}\n' > "$work/empty.json"
fi
auth=$DOCKER_CONFIG/config.json
[ -f "$auth" ] || auth=$work/empty.json

# Images: each architecture under IMAGE_TAG-ARCH, then the index under IMAGE_TAG and the moving tags.
for name in $IMAGES; do
    target=$REGISTRY$name:$IMAGE_TAG
    manifests=()
    for arch in $ARCHS; do
        echo "release: $(source_image "$name" "$arch") -> $target-$arch" >&2
        skopeo copy --quiet --authfile "$auth" "${skopeo_tls[@]}" \
            "docker-daemon:$(source_image "$name" "$arch")" "docker://$target-$arch"
        manifests+=(-m "$target-$arch")
    done
    crane "${crane_tls[@]}" index append -t "$target" "${manifests[@]}" >/dev/null
    for tag in $MOVING_TAGS; do
        crane "${crane_tls[@]}" tag "$target" "$tag"
    done
    echo "release: $target ($ARCHS) $(crane "${crane_tls[@]}" digest "$target"), also tagged: ${MOVING_TAGS:-none}" >&2
done

# The chart: a copy whose image defaults are this release's (registry; the tag is appVersion).
mkdir "$work/chart"
cp -R "$CHART" "$work/chart/omero-web"
awk -v registry="${REGISTRY%/}" '
    /^[^ #]/ { top = $0 }
    top == "image:" && /^  [a-z]+:$/ { block = substr($0, 3, length($0) - 3) }
    top == "image:" && (block == "web" || block == "nginx") && /^    registry: ""$/ { $0 = "    registry: \"" registry "\"" }
    { print }
' "$CHART/values.yaml" > "$work/chart/omero-web/values.yaml"
helm package --app-version "$IMAGE_TAG" --destination "$work" "$work/chart/omero-web" >/dev/null
package=$(ls "$work"/omero-web-*.tgz)
kube=$(sed -n 's/^KUBERNETES_NEWEST_VERSION=//p' versions.env)  # helm template defaults to an old one
rendered=$(helm template release "$package" --kube-version "$kube" | sed -n 's/^ *image: "\(.*\)"$/\1/p' | sort -u)
for name in omero-web omero-web-nginx; do
    grep -qx "$REGISTRY$name:$IMAGE_TAG" <<<"$rendered" ||
        die "the packaged chart does not default to $REGISTRY$name:$IMAGE_TAG (values.yaml image.*.registry changed shape?): $rendered"
done
helm push "$package" "oci://${REGISTRY}charts" --registry-config "$auth" "${helm_tls[@]}" >&2
echo "release: chart oci://${REGISTRY}charts/omero-web $(sed -n 's/^version: //p' "$CHART/Chart.yaml") (appVersion $IMAGE_TAG)" >&2
