#!/bin/sh
# run_py_tests.sh: the Python tests (tools/), as one entry of tests/run_tests.sh.
# Uses Debian's python3 (with python3-torch when installed, to make the test checkpoints).
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
out=$("$PY" -m unittest discover -s tests -p 'test_*.py' 2>&1); rc=$?
printf '%s\n' "$out" | tail -15
ran=$(printf '%s\n' "$out" | sed -n 's/^Ran \([0-9]*\) test.*/\1/p' | tail -1)
skipped=$(printf '%s\n' "$out" | sed -n 's/.*skipped=\([0-9]*\).*/\1/p' | tail -1)
failed=$(printf '%s\n' "$out" | sed -n 's/.*failures=\([0-9]*\).*/\1/p' | tail -1)
errors=$(printf '%s\n' "$out" | sed -n 's/.*errors=\([0-9]*\).*/\1/p' | tail -1)
ran=${ran:-0}; skipped=${skipped:-0}; failed=$(( ${failed:-0} + ${errors:-0} ))
[ $rc -ne 0 ] && [ $failed -eq 0 ] && failed=1
echo "RESULT python passed=$((ran - skipped - failed)) failed=$failed skipped=$skipped"
[ $rc -eq 0 ]
