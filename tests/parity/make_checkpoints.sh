#!/bin/sh
# make_checkpoints.sh [OUTDIR] [--no-image-encoder] [--keep-pth] [--seed N]: official-style
# AttnGAN / DAMSM checkpoints (.pth, legacy and zip formats) with random weights from the PyTorch
# reference, converted by tools/pth2safetensors.py (without torch) into OUTDIR (default
# build/checkpoints, which tests/test_checkpoints reads; $ATTNGAN_CHECKPOINTS elsewhere), plus
# config.json and reference.safetensors (inputs and forward outputs). Needs Debian's
# python3-torch ($PYTHON, default /usr/bin/python3) and the reference in ../shared/reference (or
# $ATTNGAN_REFERENCE); without torch it says so and exits 0. See make_checkpoints.py.
set -e
OUT=build/checkpoints
case "$1" in -*|"") ;; *) OUT=$1; shift ;; esac
HERE=$(dirname "$0")
PY=${PYTHON:-/usr/bin/python3}
REF=${ATTNGAN_REFERENCE:-$HERE/../../../shared/reference}
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "make_checkpoints: $PY has no torch (Debian python3-torch); no checkpoints written, tests/test_checkpoints will skip"
    exit 0
fi
[ -f "$REF/ref_attngan.py" ] || { echo "SKIP make_checkpoints: no ref_attngan.py in $REF (set ATTNGAN_REFERENCE); the checkpoint tests will skip"; exit 0; }
ATTNGAN_REFERENCE=$REF exec "$PY" "$HERE/make_checkpoints.py" "$OUT" "$@"
