#!/bin/sh
# Build the zeroc-ice wheel from its hash-checked PyPI sdist with the patches in docker/ice/.
# Used by docker/web.Dockerfile and by `make venv` (host unit tests), so both get the same Ice.
# usage: build-ice-wheel.sh LOCK PATCH_DIR OUT_DIR [PYTHON]
set -eu
python=${4:-python3}
mkdir -p "$3"
# Absolute paths: the build runs inside the extracted sources. (The interpreter's own symlink
# is kept: resolving a virtualenv's python would leave the virtualenv.)
lock=$(realpath "$1") patches=$(realpath "$2") out=$(realpath "$3") here=$(dirname "$(realpath "$0")")
case $python in */*) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk -v pkg=zeroc-ice -f "$here/split-lock.awk" "$lock" > "$work/ice.txt"
"$python" -m pip download --quiet --no-deps --no-binary :all: --require-hashes -r "$work/ice.txt" -d "$work/sdist"
tar -xzf "$work"/sdist/zeroc-ice-*.tar.gz -C "$work"
cd "$work"/zeroc-ice-*/
for p in "$patches"/*.patch; do patch --quiet -p1 --forward < "$p"; done
# Python's own compiler flags without debug information (they say -g): the image strips it from IcePy
# anyway, and it is a large part of compiling Ice's C++. ICE_EXTRA_CFLAGS come last (the host's
# build for the unit tests: -O0). Given whole, as setuptools replaces its flags with CFLAGS/CXXFLAGS.
flags="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS"))') -g0 ${ICE_EXTRA_CFLAGS:-}"
CFLAGS=$flags CXXFLAGS=$flags "$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$out" .
