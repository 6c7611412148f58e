#!/bin/sh
# Installs every Debian package dlc needs to build, test, benchmark and demo.
# Idempotent: asks apt only for what is missing. Run as root (or with sudo on PATH).
set -eu

PKGS="build-essential pkg-config git ca-certificates
libarchive-dev libjansson-dev libseccomp-dev libcap-dev libcurl4-openssl-dev
libopenblas-dev ocl-icd-opencl-dev opencl-headers libssl-dev libmicrohttpd-dev libzstd-dev zlib1g-dev
libcmocka-dev libgnutls28-dev libcrypt-dev
python3 python3-pytest python3-numpy
skopeo umoci oci-image-tool runc crun docker-registry apache2-utils
pocl-opencl-icd clinfo busybox-static zstd hyperfine wrk
clang-tidy clang-format cppcheck
iproute2 procps util-linux curl openssl"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "deps: all $(echo $PKGS | wc -w) packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "deps: missing:$missing; run 'make deps' as root" >&2
        exit 1
    fi
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
