#!/bin/sh
# run_tests.sh BIN...: runs each unit-test binary and sums their RESULT lines.
# Prints the total as "N passed, N failed, N skipped" and exits non-zero on any failure or crash.
pass=0; fail=0; skip=0; crashed=""
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^RESULT '
    line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -1)
    if [ -z "$line" ] || { [ $rc -ne 0 ] && ! printf '%s' "$line" | grep -q 'failed=[1-9]'; }; then
        echo "CRASH $bin (exit $rc)"; crashed="$crashed $bin"; fail=$((fail + 1)); continue
    fi
    p=$(printf '%s' "$line" | sed 's/.*passed=\([0-9]*\).*/\1/')
    f=$(printf '%s' "$line" | sed 's/.*failed=\([0-9]*\).*/\1/')
    s=$(printf '%s' "$line" | sed 's/.*skipped=\([0-9]*\).*/\1/')
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
