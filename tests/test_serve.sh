#!/bin/sh
# test_serve.sh: `attngan serve` end to end: starts the server on a free port of 127.0.0.1 with the
# bundled model, waits for /healthz, runs the HTTP checks of tests/serve_checks.py (good PNG and
# JSON replies, every 4xx, oversized bodies, methods, paths, concurrency, SIGTERM with requests in
# flight), then checks that the server exited 0 and logged one line per request. Then the server
# under abuse (tests/serve_abuse.py, docs/RELIABILITY.md): slow clients against --request-timeout,
# 1,000 idle connections, pipelined requests, duplicate keys and NUL in captions, on a second
# server; --max-connections-per-ip and --max-connections on two more. Then the seed's API
# (--seed-api, tests/seed_client.py: the seed README's steps, expiry, eviction; 1 and 3 stages).
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
missing=""
for f in --max-connections --max-connections-per-ip --request-timeout --idle-timeout; do
    grep -q -- "^  $f .*(default" "$T/help.txt" || missing="$missing $f"
done
[ -z "$missing" ] && ok "serve --help documents the connection limits and timeouts with defaults" || ko "serve --help lacks$missing"
if "$BIN" serve --request-timeout 0 >"$T/bad.log" 2>&1; then ko "--request-timeout 0 accepted"
elif grep -q -- "--request-timeout" "$T/bad.log"; then ok "a bad --request-timeout is an error naming it"; else ko "bad --request-timeout message: $(cat "$T/bad.log")"; fi
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

# ---- the server under abuse. start LOG ARGS...: a server on a free port; sets PID and PORT
start() {
    log=$1; shift
    : >"$log"
    "$BIN" serve --model "$MODEL" --host 127.0.0.1 --port 0 --threads 1 "$@" >/dev/null 2>"$log" &
    PID=$!
    PORT=""
    i=0
    while [ $i -lt 600 ]; do
        PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1; i=$((i + 1))
    done
    ko "server $* did not start: $(tail -5 "$log")"
    return 1
}
# stop NAME LOG: SIGTERM, exit 0 and no sanitizer report
stop() {
    kill -TERM "$PID" 2>/dev/null
    i=0
    while kill -0 "$PID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$PID" 2>/dev/null; then ko "$1: server still running 60 s after SIGTERM"; kill -KILL "$PID"; PID=""; return; fi
    wait "$PID"; rc=$?
    PID=""
    if [ $rc -ne 0 ]; then ko "$1: exit status $rc"; tail -20 "$2"
    elif grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$2"; then
        ko "$1: sanitizer report"; grep -A20 -E 'ERROR: |runtime error:' "$2" | head -60
    else ok "$1: clean exit 0, no sanitizer report"; fi
}
run_py() {   # the checks' lines count as this script's
    "$PY" tests/serve_abuse.py "$@" >"$T/abuse.txt" 2>&1
    cat "$T/abuse.txt"
    p=$(grep -c '^PASS ' "$T/abuse.txt"); f=$(grep -c '^FAIL ' "$T/abuse.txt"); k=$(grep -c '^SKIP ' "$T/abuse.txt")
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + k))
    if [ $((p + f)) -eq 0 ]; then ko "serve_abuse.py $1 ran no check: $(tail -5 "$T/abuse.txt")"; fi
}
REQ_TIMEOUT=4
if start "$T/abuse.log" --request-timeout $REQ_TIMEOUT; then
    run_py abuse "http://127.0.0.1:$PORT" "$PID" $REQ_TIMEOUT
    grep -q ' POST /api/v1.0/bird 408 .*--request-timeout' "$T/abuse.log" && ok "the slow body's 408 is logged" || ko "no 408 line in the log"
    stop "abuse server" "$T/abuse.log"
fi
if start "$T/ip.log" --max-connections-per-ip 3; then
    run_py limit "http://127.0.0.1:$PORT" "$PID" 3
    stop "--max-connections-per-ip server" "$T/ip.log"
fi
if start "$T/conn.log" --max-connections 3; then
    run_py limit "http://127.0.0.1:$PORT" "$PID" 3
    stop "--max-connections server" "$T/conn.log"
fi

# ---- the seed's API (--seed-api): tests/seed_client.py does what the seed's README says
run_seed() {
    "$PY" tests/seed_client.py "$@" >"$T/seed.txt" 2>&1
    cat "$T/seed.txt"
    p=$(grep -c '^PASS ' "$T/seed.txt"); f=$(grep -c '^FAIL ' "$T/seed.txt")
    pass=$((pass + p)); fail=$((fail + f))
    if [ $((p + f)) -eq 0 ]; then ko "seed_client.py $3 ran no check: $(tail -5 "$T/seed.txt")"; fi
}
if "$BIN" serve --image-ttl 5 >"$T/bad.log" 2>&1; then ko "--image-ttl without --seed-api accepted"
elif grep -q -- "belong to --seed-api" "$T/bad.log"; then ok "--image-ttl without --seed-api is an error naming it"; else ko "message: $(cat "$T/bad.log")"; fi
if start "$T/seed.log" --seed-api; then
    run_seed "http://127.0.0.1:$PORT" 1 full
    grep -q ' POST /api/v1.0/birds 201 ' "$T/seed.log" && grep -q ' GET /api/v1.0/images/[0-9a-f]*/bird_g0.png 200 ' "$T/seed.log" &&
        ok "--seed-api: the requests are logged" || ko "--seed-api log lines missing"
    stop "--seed-api server" "$T/seed.log"
fi
if start "$T/ttl.log" --seed-api --image-ttl 2; then
    run_seed "http://127.0.0.1:$PORT" 1 expiry
    stop "--seed-api --image-ttl 2 server" "$T/ttl.log"
fi
if start "$T/evict.log" --seed-api --image-cache-mb 1; then
    run_seed "http://127.0.0.1:$PORT" 1 evict
    stop "--seed-api --image-cache-mb 1 server" "$T/evict.log"
fi
# a 3-stage model (AttnGAN's own, imported from tests/parity/make_checkpoints.sh's tiny files):
# every size and both attention maps
CK=${ATTNGAN_CHECKPOINTS:-build/checkpoints}
if [ -f "$CK/attngan_netG.safetensors" ] && "$BIN" import --netG "$CK/attngan_netG.safetensors" \
       --text-encoder "$CK/attngan_text_encoder.safetensors" --captions "$CK/captions.pickle" --cfg "$CK/attngan_tiny.yml" \
       --out "$T/imported" >"$T/import.log" 2>&1; then
    SAVED_MODEL=$MODEL; MODEL=$T/imported
    if start "$T/seed3.log" --seed-api; then
        run_seed "http://127.0.0.1:$PORT" 3 full
        stop "--seed-api server, 3 stages" "$T/seed3.log"
    fi
    MODEL=$SAVED_MODEL
else
    echo "SKIP --seed-api with 3 stages: no $CK/attngan_netG.safetensors (tests/parity/make_checkpoints.sh) $(tail -2 "$T/import.log" 2>/dev/null)"
    skip=$((skip + 1))
fi
finish
