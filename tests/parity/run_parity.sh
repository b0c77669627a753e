#!/bin/sh
# run_parity.sh: `attngan parity` on every reference dump in $ATTNGAN_DUMPS (default build/dumps),
# as one entry of tests/run_tests.sh. Skips visibly when there are no dumps (make_dumps.sh needs
# Debian's python3-torch). $PARITY_ONLY (a grep pattern) limits the dumps replayed.
BIN=${ATTNGAN:-build/release/attngan}
DIR=${ATTNGAN_DUMPS:-build/dumps}
pass=0; fail=0; skip=0
dumps=$(ls "$DIR"/*.safetensors 2>/dev/null | grep -v '/trunk.safetensors$' | grep -E "${PARITY_ONLY:-.}")
if [ -z "$dumps" ]; then
    echo "SKIP parity: no reference dumps in $DIR (run tests/parity/make_dumps.sh; needs python3-torch)"
    skip=1
fi
for d in $dumps; do
    log=$(mktemp)
    start=$(date +%s)
    if "$BIN" parity "$d" >"$log" 2>&1; then
        echo "PASS parity $(basename "$d"): $(tail -1 "$log") ($(( $(date +%s) - start )) s)"
        pass=$((pass + 1))
    else
        echo "FAIL parity $(basename "$d"):"
        grep -E "OVER|MISSING|MISMATCH|error|rror:" "$log" | head -40
        tail -1 "$log"
        fail=$((fail + 1))
    fi
    rm -f "$log"
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
