#!/bin/sh
# run_parity.sh: `attngan parity` on every reference dump in $ATTNGAN_DUMPS (default build/dumps)
# and on the committed sample-mode fixtures in tests/fixtures/parity, as one entry of
# tests/run_tests.sh. Skips visibly when there are no dumps (make_dumps.sh needs
# Debian's python3-torch). $PARITY_ONLY (a grep pattern) limits the dumps replayed.
# Every dump is replayed on each device of $PARITY_DEVICES (default: cpu and hostdev, plus cuda when
# the binary is a CUDA build on a GPU): hostdev is the device path (uploads, the device's tapes,
# downloads for the comparison) on the CPU's kernels, under the same tolerances. Its convolutions
# run NCHW where the CPU's default is oneDNN's blocked trunk; the difference is far inside the
# tolerances (no tensor's error to the reference moves by more than 0.1 of its tolerance: the most,
# gan_b2_small_cm's out.zsl_pred, 3.7e-5 -> 4.7e-5 of 1e-4), so no ATTNGAN_CONV=im2col here; with it
# both sides print the same errors.
BIN=${ATTNGAN:-build/release/attngan}
if [ -z "$PARITY_DEVICES" ]; then
    PARITY_DEVICES="cpu hostdev"
    "$BIN" version 2>/dev/null | grep -q "cuda ready" && PARITY_DEVICES="$PARITY_DEVICES cuda"
fi
DIR=${ATTNGAN_DUMPS:-build/dumps}
# the committed sample-mode fixtures (tests/parity/make_sample_fixtures.sh) run in any clone
FIX=${ATTNGAN_PARITY_FIXTURES:-tests/fixtures/parity}
pass=0; fail=0; skip=0
dumps=$( (ls "$FIX"/*.safetensors; ls "$DIR"/*.safetensors) 2>/dev/null | grep -v '/trunk.safetensors$' | grep -E "${PARITY_ONLY:-.}")
if ! ls "$DIR"/*.safetensors >/dev/null 2>&1; then
    echo "SKIP parity of the training steps and the larger sample dumps: no reference dumps in $DIR (they are written by"
    echo "     tests/parity/make_dumps.sh from ../shared/reference/ref_attngan.py with Debian's python3-torch; README, Parity)"
    skip=1
fi
for dev in $PARITY_DEVICES; do
    for d in $dumps; do
        log=$(mktemp)
        start=$(date +%s)
        if "$BIN" parity "$d" --device "$dev" >"$log" 2>&1; then
            echo "PASS parity $(basename "$d") on $dev: $(tail -1 "$log") ($(( $(date +%s) - start )) s)"
            pass=$((pass + 1))
        else
            echo "FAIL parity $(basename "$d") on $dev:"
            grep -E "OVER|MISSING|MISMATCH|error|rror:|hostdev:|is host memory" "$log" | head -40
            tail -1 "$log"
            fail=$((fail + 1))
        fi
        rm -f "$log"
    done
done
# the comparison must be able to fail: an impossible tolerance on the first dump
first=$(echo "$dumps" | head -1)
if [ -n "$first" ]; then
    if "$BIN" parity "$first" --tol-fwd 1e-12 --tol-grad 1e-12 >/dev/null 2>&1; then
        echo "FAIL parity $(basename "$first") passed with tolerance 1e-12: the comparison cannot fail"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
    if "$BIN" parity "$first" --tol-fwd nonsense >/dev/null 2>&1; then
        echo "FAIL parity accepted '--tol-fwd nonsense'"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
fi
echo "run_parity: $pass passed, $fail failed, $skip skipped"
echo "RESULT run_parity passed=$pass failed=$fail skipped=$skip"
[ "$fail" -eq 0 ]
