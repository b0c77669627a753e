#!/bin/sh
# test_serve.sh: `attngan serve` end to end: starts the server on a free port of 127.0.0.1 with the
# bundled model, waits for /healthz, runs the HTTP checks of tests/serve_checks.py (good PNG and
# JSON replies, every 4xx, oversized bodies, methods, paths, concurrency, SIGTERM with requests in
# flight), then checks that the server exited 0 and logged one line per request.
# Skips without the model directory (models/bird64, or $ATTNGAN_SERVE_MODEL).
BIN=${ATTNGAN:-build/release/attngan}
MODEL=${ATTNGAN_SERVE_MODEL:-models/bird64}
PY=/usr/bin/python3
MAX_CAPTION=4096
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
finish() {
    echo "test_serve: $pass passed, $fail failed, $skip skipped"
    echo "RESULT test_serve passed=$pass failed=$fail skipped=$skip"
    [ $fail -eq 0 ]
    exit $?
}
if [ ! -f "$MODEL/model.json" ] && [ ! -f "$MODEL/config.json" ]; then
    echo "SKIP test_serve: no model directory $MODEL (set ATTNGAN_SERVE_MODEL)"
    skip=1; finish
fi
if [ ! -x "$PY" ]; then
    echo "SKIP test_serve: no $PY"
    skip=1; finish
fi
T=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT

"$BIN" serve --help >"$T/help.txt" 2>&1 && grep -q "413" "$T/help.txt" && ok "serve --help documents the statuses" || ko "serve --help: $(head -3 "$T/help.txt")"
if "$BIN" serve --model "$T/none" --port 0 >"$T/bad.log" 2>&1; then ko "a missing model directory is accepted"
elif grep -q "$T/none" "$T/bad.log"; then ok "a missing model directory is an error naming it"; else ko "missing model message: $(cat "$T/bad.log")"; fi
if "$BIN" serve --port 70000 >"$T/bad.log" 2>&1; then ko "--port 70000 accepted"
elif grep -q -- "--port" "$T/bad.log"; then ok "a bad --port is an error naming it"; else ko "bad --port message: $(cat "$T/bad.log")"; fi

# --threads 1: the machine may be busy; --port 0: the kernel picks a free port, the log names it
: >"$T/serve.log"
"$BIN" serve --model "$MODEL" --host 127.0.0.1 --port 0 --threads 1 --max-caption $MAX_CAPTION >"$T/out.log" 2>"$T/serve.log" &
PID=$!
PORT=""
i=0
while [ $i -lt 600 ]; do    # up to 60 s (ASan builds load slowly)
    PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$T/serve.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
if [ -z "$PORT" ]; then
    ko "server did not start: $(cat "$T/serve.log")"
    finish
fi
BASE="http://127.0.0.1:$PORT"
healthy=""
i=0
while [ $i -lt 100 ]; do
    if "$PY" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('$BASE/healthz', timeout=5).status == 200 else 1)" 2>/dev/null; then
        healthy=1; break
    fi
    sleep 0.1; i=$((i + 1))
done
[ -n "$healthy" ] && ok "server up on port $PORT, /healthz answers" || ko "/healthz does not answer"

"$PY" tests/serve_checks.py "$BASE" "$PID" $MAX_CAPTION >"$T/checks.txt" 2>&1
cat "$T/checks.txt"
p=$(grep -c '^PASS ' "$T/checks.txt"); f=$(grep -c '^FAIL ' "$T/checks.txt")
pass=$((pass + p)); fail=$((fail + f))
if ! grep -q 'SIGTERM with requests in flight' "$T/checks.txt"; then
    ko "serve_checks.py stopped early: $(tail -5 "$T/checks.txt")"
    kill -TERM "$PID" 2>/dev/null
fi

# the checks end with SIGTERM: the server must exit by itself, with status 0
i=0
while kill -0 "$PID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$PID" 2>/dev/null; then
    ko "server still running 60 s after SIGTERM"
else
    wait "$PID"; rc=$?
    PID=""
    [ $rc -eq 0 ] && ok "SIGTERM: clean exit 0" || { ko "SIGTERM: exit status $rc"; tail -30 "$T/serve.log"; }
fi
grep -q 'attngan serve: stopped' "$T/serve.log" && ok "shutdown logged" || ko "no 'stopped' line in the log"
grep -q ' GET /healthz 200 ' "$T/serve.log" && grep -q ' POST /api/v1.0/bird 400 ' "$T/serve.log" && grep -q ' GET /api/v1.0/bird 405 ' "$T/serve.log" \
    && grep -q ' POST /api/v1.0/bird 413 ' "$T/serve.log" && ok "one log line per request with method, path, status" || ko "request log lines missing"
if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/serve.log"; then
    ko "sanitizer report in the server log"; grep -A20 -E 'ERROR: |runtime error:' "$T/serve.log" | head -60
else
    ok "no sanitizer report"
fi
finish
