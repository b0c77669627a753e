#!/bin/sh
# test_browser.sh: the page of `attngan serve` in headless Chromium. The page's test hook
# (/?autotest=<caption>) types the caption into the form and clicks "Draw" on load; when the
# bird's images have loaded it sets <body data-state="done" data-width="<px>"> and the title
# "done <px>". Chromium dumps the DOM after the page settles (its virtual time does not run while
# a request is pending) and the checks read it; a screenshot of the same page is kept at
# build/ci/browser.png (CI keeps it). A caption of unknown words must show the server's error.
# Skips without chromium or without the model directory (models/bird64, or $ATTNGAN_SERVE_MODEL).
BIN=${ATTNGAN:-build/release/attngan}
MODEL=${ATTNGAN_SERVE_MODEL:-models/bird64}
PY=/usr/bin/python3
SHOT=${ATTNGAN_BROWSER_SHOT:-build/ci/browser.png}
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
finish() {
    echo "test_browser: $pass passed, $fail failed, $skip skipped"
    echo "RESULT test_browser passed=$pass failed=$fail skipped=$skip"
    [ $fail -eq 0 ]
    exit $?
}
CHROMIUM=""
for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$(command -v "$c"); break; fi
done
if [ -z "$CHROMIUM" ]; then
    echo "SKIP test_browser: no chromium (Debian package chromium; scripts/deps.sh installs it)"
    skip=1; finish
fi
if [ ! -f "$MODEL/model.json" ] && [ ! -f "$MODEL/config.json" ]; then
    echo "SKIP test_browser: no model directory $MODEL (set ATTNGAN_SERVE_MODEL)"
    skip=1; finish
fi
T=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT

: >"$T/serve.log"
"$BIN" serve --model "$MODEL" --host 127.0.0.1 --port 0 --threads 1 >/dev/null 2>"$T/serve.log" &
PID=$!
PORT=""
i=0
while [ $i -lt 600 ]; do
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
SIZE=$("$PY" -c "
import json, urllib.request, time
for _ in range(100):
    try:
        h = json.load(urllib.request.urlopen('$BASE/healthz', timeout=5)); print(64 << (h['stages'] - 1)); break
    except OSError: time.sleep(0.1)
")
[ -n "$SIZE" ] && ok "server up, last stage $SIZE px" || { ko "/healthz does not answer"; finish; }

# --no-sandbox: Chromium's sandbox refuses to run as root (CI); the profile is a fresh temp dir
chrome() {
    HOME="$T" timeout -k 5 120 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --no-first-run --no-default-browser-check --disable-extensions --user-data-dir="$T/profile" \
        --hide-scrollbars --window-size=1200,1000 --virtual-time-budget=30000 "$@"
}
url() { "$PY" -c "import sys, urllib.parse; print('$BASE/?seed=1&autotest=' + urllib.parse.quote(sys.argv[1]))" "$1"; }

CAPTION="this bird has a red crown, a short pointed beak and black wings with white bars"
chrome --dump-dom "$(url "$CAPTION")" >"$T/dom.html" 2>"$T/chrome.log"; rc=$?
if [ $rc -ne 0 ]; then ko "chromium --dump-dom exited $rc"; tail -20 "$T/chrome.log"; fi
if grep -q "<body[^>]*data-state=\"done\"" "$T/dom.html"; then ok "the page drew a bird after the form's button was clicked"
else ko "page state: $(grep -o '<body[^>]*>' "$T/dom.html" | head -1) $(grep -o '<div id="error"[^<]*<' "$T/dom.html")"; fi
grep -q "<body[^>]*data-width=\"$SIZE\"" "$T/dom.html" && ok "the last stage's image loaded, $SIZE px wide" \
    || ko "image width: $(grep -o 'data-width="[^"]*"' "$T/dom.html")"
grep -q "<title>done $SIZE</title>" "$T/dom.html" && ok "title says done $SIZE" || ko "title: $(grep -o '<title>[^<]*' "$T/dom.html")"
grep -q 'class="gen" src="data:image/png;base64,' "$T/dom.html" && ok "the bird is an inline PNG in the page" || ko "no generated image in the DOM"
grep -q 'class="chips" id="words"><span>this</span>' "$T/dom.html" && grep -q '<span>crown</span>' "$T/dom.html" && ok "the words are listed" || ko "words not listed"

mkdir -p "$(dirname "$SHOT")"
rm -f "$SHOT"
chrome --screenshot="$SHOT" "$(url "$CAPTION")" >/dev/null 2>"$T/chrome2.log"
if [ -s "$SHOT" ] && [ "$(head -c 8 "$SHOT" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then ok "screenshot kept at $SHOT"
else ko "no screenshot at $SHOT"; tail -20 "$T/chrome2.log"; fi

chrome --dump-dom "$(url "zzqxw qwxzz")" >"$T/dom2.html" 2>>"$T/chrome.log"
if grep -q "<body[^>]*data-state=\"error\"" "$T/dom2.html" && grep -q 'id="error" class="error" role="alert">[^<]*vocabulary' "$T/dom2.html"; then
    ok "unknown words: the page shows the server's error"
else ko "unknown words: $(grep -o '<body[^>]*>' "$T/dom2.html" | head -1) $(grep -o '<div id="error"[^<]*<' "$T/dom2.html")"; fi

kill -TERM "$PID"
i=0
while kill -0 "$PID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$PID" 2>/dev/null; then ko "server still running 60 s after SIGTERM"
else
    wait "$PID"; rc=$?; PID=""
    [ $rc -eq 0 ] && ok "server exit 0 after SIGTERM" || { ko "server exit status $rc"; tail -30 "$T/serve.log"; }
fi
grep -q ' GET / 200 ' "$T/serve.log" && grep -q ' POST /api/v1.0/bird 200 ' "$T/serve.log" && ok "the page's requests reached the server" \
    || ko "server log lacks the page's requests"
finish
