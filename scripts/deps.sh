#!/bin/sh
# deps.sh: installs the Debian packages the build and the tests need, if any are missing.
# Usage: scripts/deps.sh [--with-torch]   (--with-torch: also the test-only packages, below)
# libdnnl-dev: oneDNN 2.6 (the convolutions); libmicrohttpd-dev: `attngan serve`; libzip-dev: PyTorch zip checkpoints (`attngan import`). --with-torch adds what only the tests use: PyTorch for the
# reference dumps and fixtures, chromium for tests/test_browser.sh (headless), Open MPI for tests/test_dist.sh
# (the build finds it and links it: data-parallel training, docs/DISTRIBUTED.md).
set -e
PKGS="build-essential libopenblas-openmp-dev libdnnl-dev libcjson-dev libjpeg62-turbo-dev libpng-dev libyaml-dev libfreetype-dev fonts-dejavu-core libmicrohttpd-dev libzip-dev"
[ "$1" = "--with-torch" ] && PKGS="$PKGS python3-torch python3-numpy python3-pil chromium openmpi-bin libopenmpi-dev"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
