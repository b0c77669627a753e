#!/bin/sh
# test_layers.sh: the pipeline reads top-down (README, Architecture): a layer includes only the
# layers below it. Allowed, per directory of src/:
#   core: -            ops: core          io: core          data: core io
#   nn: core ops io    gen: core ops io data nn
#   eval: core ops io data nn gen         train: core ops io data nn gen
#   app: everything
# and two named exceptions: core's device layer reaches the CUDA runtime's handles
# (src/ops/cuda/cuda_rt.h, in device.c and dist.c), and the CUDA optimizer kernels implement
# src/train/optim_cuda.h. Any other include of a layer above fails, naming the file and line.
# usage: test_layers.sh [ROOT]   (ROOT: the tree holding src/; default the working directory)
ROOT=${1:-.}
pass=0; fail=0
allowed() {
    case "$1" in
        core) echo "" ;; ops) echo "core" ;; io) echo "core" ;; data) echo "core io" ;;
        nn) echo "core ops io" ;; gen) echo "core ops io data nn" ;;
        eval|train) echo "core ops io data nn gen" ;; app) echo "core ops io data nn gen eval train" ;;
    esac
}
cd "$ROOT" || exit 2
for dir in core ops io data nn gen eval train app; do
    bad=$(grep -n '#include "\.\./[a-z]*/' src/$dir/*.c src/$dir/*.h 2>/dev/null | while IFS= read -r line; do
        to=$(echo "$line" | sed 's|.*#include "\.\./\([a-z]*\)/.*|\1|')
        ok=0
        for a in $(allowed $dir); do [ "$a" = "$to" ] && ok=1; done
        case "$line" in src/core/device.c:*'"../ops/cuda/cuda_rt.h"'*|src/core/dist.c:*'"../ops/cuda/cuda_rt.h"'*) ok=1 ;; esac
        [ $ok -eq 1 ] || echo "$line"
    done)
    if [ -z "$bad" ]; then echo "PASS src/$dir includes only the layers below it ($(allowed $dir | sed 's/^$/none/'))"; pass=$((pass + 1))
    else echo "FAIL src/$dir includes a layer above it:"; echo "$bad" | sed 's/^/    /'; fail=$((fail + 1)); fi
done
bad=$(grep -n '#include "\.\./\.\./[a-z]*/' src/ops/cuda/* 2>/dev/null | grep -v '"\.\./\.\./core/' | grep -v '^src/ops/cuda/optim.cu:.*"\.\./\.\./train/optim_cuda.h"')
if [ -z "$bad" ]; then echo "PASS src/ops/cuda includes core (and optim.cu its header in train)"; pass=$((pass + 1))
else echo "FAIL src/ops/cuda includes a layer above it:"; echo "$bad" | sed 's/^/    /'; fail=$((fail + 1)); fi
# the check must be able to fail: in a tree whose src/nn includes src/train, this script fails
if [ -z "$1" ]; then
    tmp=$(mktemp -d); mkdir -p "$tmp/src/nn"; printf '#include "../train/run.h"\n' > "$tmp/src/nn/x.c"
    if sh "$0" "$tmp" 2>&1 | grep -q 'FAIL src/nn includes a layer above it'; then
        echo "PASS an upward include (src/nn -> src/train) is caught"; pass=$((pass + 1))
    else echo "FAIL the scan misses an upward include"; fail=$((fail + 1)); fi
    rm -rf "$tmp"
fi
echo "test_layers: $pass passed, $fail failed, 0 skipped"
echo "RESULT test_layers passed=$pass failed=$fail skipped=0"
[ $fail -eq 0 ]
