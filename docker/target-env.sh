# Sourced (`. target-env.sh`) by the build stages of docker/web.Dockerfile, which run on the build
# machine's architecture. TARGET_ARCH (a Debian architecture name: amd64, arm64; empty = the build
# machine's) is the architecture of the image being built. When the two differ, this sets what makes
# the build machine's tools build for the target: the cross compilers and Python's target platform,
# which pip also uses to choose wheels. It sets CROSS_PACKAGES (the Debian packages that needs) and
# STRIP in every case.
build_arch=$(dpkg --print-architecture)
TARGET_ARCH=${TARGET_ARCH:-$build_arch}
CROSS_PACKAGES=""
STRIP=strip
if [ "$TARGET_ARCH" != "$build_arch" ]; then
    case $TARGET_ARCH in
        amd64) triplet=x86_64-linux-gnu ;;
        arm64) triplet=aarch64-linux-gnu ;;
        *) echo "target-env.sh: cannot build for TARGET_ARCH=$TARGET_ARCH on $build_arch (amd64 or arm64)" >&2
           exit 1 ;;
    esac
    python_version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    CROSS_PACKAGES="crossbuild-essential-$TARGET_ARCH libpython$python_version-dev:$TARGET_ARCH
        libssl-dev:$TARGET_ARCH libbz2-dev:$TARGET_ARCH"
    STRIP=$triplet-strip
    export CC=$triplet-gcc CXX=$triplet-g++ LDSHARED="$triplet-gcc -shared" \
        _PYTHON_HOST_PLATFORM=linux-${triplet%%-*} _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__$triplet
fi
