#!/bin/sh
# Build a local equivalent of the official debian:<suite>-slim image from the Debian archive,
# for machines that cannot pull from a container registry (air-gapped sites, this project's CI).
# usage: base-image.sh SUITE MIRROR TAG [ARCH]   (`make base-image [ARCH=arm64]`: DEBIAN_SUITE and
# LOCAL_BASE_IMAGE of versions.env). ARCH is a Debian architecture, default the machine's; another
# one needs its emulator registered (qemu-user-static, binfmt_misc; .ci/run does it).
set -eu
suite=$1 mirror=$2 tag=$3 arch=${4:-$(dpkg --print-architecture)}
command -v debootstrap >/dev/null || { echo "base-image: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "base-image: debootstrap needs root" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --arch="$arch" --variant=minbase "$suite" "$root" "$mirror"
# What the official slim images leave out.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$tag"
# `docker import` records the machine's architecture whatever the files are: say what they are.
"$(dirname "$0")/set-image-arch.py" "$tag" "$arch"
echo "base-image: built $tag ($arch, $(docker image inspect -f '{{.Size}}' "$tag") bytes)"
