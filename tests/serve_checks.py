#!/usr/bin/python3
"""serve_checks.py: the HTTP checks of tests/test_serve.sh against a running `attngan serve`.

Usage: serve_checks.py BASE_URL SERVER_PID MAX_CAPTION
Prints one "PASS name" or "FAIL name: why" line per check; the last checks stop the server with
SIGTERM while requests are in flight (they must all complete). Standard library only (run with
Debian's /usr/bin/python3). Exit status 0 when every check passed.
"""
import base64
import http.client
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = sys.argv[1].rstrip("/")
PID = int(sys.argv[2])
MAX_CAPTION = int(sys.argv[3])
HOST = urllib.parse.urlsplit(BASE).hostname
PORT = urllib.parse.urlsplit(BASE).port
BIRD = BASE + "/api/v1.0/bird"
CAPTION = "this bird has a red crown, a short pointed beak and black wings with white bars"
TIMEOUT = 120  # generous: the server may run under ASan

n_fail = 0


def check(name, ok, why=""):
    global n_fail
    if ok:
        print("PASS " + name, flush=True)
    else:
        n_fail += 1
        print("FAIL %s: %s" % (name, why), flush=True)
    return ok


def request(url, data=None, method=None, headers=None):
    """(status, headers, body) of a request; HTTP errors are answers, not exceptions."""
    if isinstance(data, (dict, list)):
        data = json.dumps(data).encode()
    h = {"Content-Type": "application/json"} if data is not None else {}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def png_size(b):
    """(width, height) from a PNG's IHDR, or None when b is not a PNG."""
    if len(b) < 24 or b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", b[16:24])


def error_of(status, headers, body):
    """The "error" string of a JSON error reply, or None."""
    try:
        if not headers.get("Content-Type", "").startswith("application/json"):
            return None
        e = json.loads(body).get("error")
        return e if isinstance(e, str) and e else None
    except (ValueError, AttributeError):
        return None


def expect_error(name, status_want, resp, contains=None):
    status, headers, body = resp
    err = error_of(status, headers, body)
    ok = status == status_want and err is not None and (contains is None or contains in err)
    return check(name, ok, "got %s %r (want %s with a JSON error%s)" % (status, body[:200], status_want,
                                                                         " naming %r" % contains if contains else ""))


# ---- health and the page
status, headers, body = request(BASE + "/healthz")
health = {}
try:
    health = json.loads(body)
except ValueError:
    pass
check("GET /healthz is 200 JSON with status ok", status == 200 and health.get("status") == "ok"
      and isinstance(health.get("stages"), int) and isinstance(health.get("model"), str), "%s %r" % (status, body[:200]))
STAGES = health.get("stages", 1) or 1
SIZE = 64 << (STAGES - 1)

status, headers, body = request(BASE + "/")
check("GET / serves the page", status == 200 and headers.get("Content-Type", "").startswith("text/html")
      and b'id="draw"' in body and b"autotest" in body and b"/api/v1.0/bird" in body, "%s %s" % (status, headers.get("Content-Type")))

# ---- good requests
status, headers, body = request(BIRD, {"caption": CAPTION, "seed": 7})
check("POST caption -> 200 image/png", status == 200 and headers.get("Content-Type") == "image/png", "%s %r" % (status, body[:200]))
check("PNG signature and IHDR %dx%d" % (SIZE, SIZE), png_size(body) == (SIZE, SIZE), "size %s" % (png_size(body),))
check("X-Seed header echoes the seed", headers.get("X-Seed") == "7", "X-Seed %r" % headers.get("X-Seed"))
first_png = body
status, headers, body = request(BIRD, {"caption": CAPTION, "seed": 7})
check("same seed, same bird", status == 200 and body == first_png, "status %s, %d vs %d bytes" % (status, len(body), len(first_png)))
status, headers, body = request(BIRD, {"caption": CAPTION, "seed": 8})
check("another seed, another bird", status == 200 and body != first_png, "status %s" % status)
status, headers, body = request(BIRD, {"caption": CAPTION})
check("no seed: a random one, reported in X-Seed", status == 200 and (headers.get("X-Seed") or "").isdigit(), "%s %r" % (status, headers.get("X-Seed")))

status, headers, body = request(BIRD, {"caption": CAPTION + " zzqxw", "seed": 3, "n": 2, "format": "json"})
d = {}
try:
    d = json.loads(body)
except ValueError:
    pass
check("format json -> 200 application/json", status == 200 and headers.get("Content-Type") == "application/json", "%s %r" % (status, body[:200]))
want_keys = {"caption", "seed", "unknown_words", "words", "segments", "stages", "model", "ms"}
check("JSON has " + ", ".join(sorted(want_keys)), want_keys <= set(d), "keys %s" % sorted(d))
check("JSON echoes caption and seed", d.get("caption") == CAPTION + " zzqxw" and d.get("seed") == 3, "%r %r" % (d.get("caption"), d.get("seed")))
check("JSON lists the unknown word", d.get("unknown_words") == ["zzqxw"], "%r" % d.get("unknown_words"))
check("JSON: no changed words in an ASCII caption", d.get("changed_words") == [], "%r" % d.get("changed_words"))
status, headers, body = request(BIRD, {"caption": "a small bird with wei\u00dfen wings and a red beak", "format": "json", "seed": 1})
try:
    cw = json.loads(body).get("changed_words")
except ValueError:
    cw = None
check("JSON: a word losing letters outside ASCII is reported", status == 200 and cw == ["wei\u00dfen -> weien"], "%s %r" % (status, cw))
status, headers, body = request(BIRD, {"caption": "a small bird with wei\u00dfen wings and a red beak", "seed": 1})
check("PNG: X-Changed-Words, %XX-escaped", status == 200 and headers.get("X-Changed-Words") == "wei%C3%9Fen -> weien",
      "%s %r" % (status, headers.get("X-Changed-Words")))
check("JSON words are the known words", isinstance(d.get("words"), list) and "red" in d.get("words", []) and "zzqxw" not in d.get("words", []),
      "%r" % d.get("words"))
stages = d.get("stages") or []
ok = len(stages) == STAGES
why = "%d stages" % len(stages)
for k, st in enumerate(stages):
    imgs = st.get("images") or []
    if st.get("size") != 64 << k or len(imgs) != 2:
        ok, why = False, "stage %d: size %r, %d images" % (k, st.get("size"), len(imgs))
        break
    for b64 in imgs:
        try:
            sz = png_size(base64.b64decode(b64, validate=True))
        except ValueError as e:
            sz = str(e)
        if sz != (64 << k, 64 << k):
            ok, why = False, "stage %d: image %s" % (k, sz)
check("JSON stages: %d of 2 base64 PNGs each, 64 << stage px" % STAGES, ok, why)
if STAGES > 1:
    att = d.get("attention") or []
    check("JSON attention: one PNG per image", len(att) == 2 and all(png_size(base64.b64decode(a)) for a in att), "%d" % len(att))
else:
    check("JSON has no attention for a one-stage model", "attention" not in d, "%r" % list(d))
m = d.get("model") or {}
check("JSON model info", m.get("stages") == STAGES and "trained_on" in m and "steps" in m, "%r" % m)
check("JSON ms is a number", isinstance(d.get("ms"), (int, float)) and d.get("ms") >= 0, "%r" % d.get("ms"))

status, headers, body = request(BIRD, {"caption": CAPTION}, headers={"Accept": "application/json"})
check("Accept: application/json -> JSON", status == 200 and headers.get("Content-Type") == "application/json", "%s %s" % (status, headers.get("Content-Type")))
status, headers, body = request(BIRD, {"caption": CAPTION}, headers={"Accept": "image/png, application/json;q=0.5"})
check("Accept preferring image/png -> PNG", status == 200 and headers.get("Content-Type") == "image/png", "%s" % headers.get("Content-Type"))
status, headers, body = request(BIRD, {"caption": CAPTION, "stage": 1})
check("stage 1 -> a 64 px PNG", status == 200 and png_size(body) == (64, 64), "%s %s" % (status, png_size(body)))
status, headers, body = request(BIRD, {"caption": CAPTION, "n": 3, "seed": 1})
g = 3 * (SIZE + 2) + 2
check("n 3 PNG -> a grid %dx%d" % (g, SIZE + 4), status == 200 and png_size(body) == (g, SIZE + 4), "%s %s" % (status, png_size(body)))

long_text = ("The blue jay is a passerine bird of the family Corvidae, native to eastern North America. "
             "It lives in most of the eastern and central United States. "
             "This bird has a bright blue crest, a white breast and a black collar around its neck, with blue wings barred in black and white. "
             "Its diet includes nuts and seeds.")
status, headers, body = request(BIRD, {"caption": long_text, "format": "json", "seed": 1})
segs = []
try:
    segs = json.loads(body).get("segments", [])
except ValueError:
    pass
check("long text: several segments, some used, with relevance", status == 200 and len(segs) >= 2
      and any(s.get("used") for s in segs) and all(isinstance(s.get("relevance"), (int, float)) and isinstance(s.get("text"), str) for s in segs),
      "%s %r" % (status, segs[:3]))

# ---- bad requests: 400
expect_error("bad JSON -> 400", 400, request(BIRD, b'{"caption": "a bird",'))
expect_error("JSON with trailing text -> 400", 400, request(BIRD, b'{"caption": "a red bird"} x'), "JSON")
expect_error("empty body -> 400", 400, request(BIRD, b""))
expect_error("JSON array body -> 400", 400, request(BIRD, [CAPTION]))
expect_error("missing caption -> 400", 400, request(BIRD, {"seed": 1}), "caption")
expect_error("caption not a string -> 400", 400, request(BIRD, {"caption": 123}), "caption")
expect_error("caption null -> 400", 400, request(BIRD, {"caption": None}), "caption")
expect_error("empty caption -> 400", 400, request(BIRD, {"caption": ""}), "empty")
expect_error("blank caption -> 400", 400, request(BIRD, {"caption": " \n\t "}), "empty")
resp = request(BIRD, {"caption": "zzqxw qwxzz!"})
expect_error("only unknown words -> 400 naming them", 400, resp, "zzqxw")
try:
    check("only unknown words: unknown_words listed", json.loads(resp[2]).get("unknown_words") == ["zzqxw", "qwxzz"], "%r" % resp[2][:200])
except ValueError:
    check("only unknown words: unknown_words listed", False, "not JSON")
expect_error("invalid UTF-8 caption -> 400", 400, request(BIRD, b'{"caption": "a red bird \xff\xfe"}'), "UTF-8")
expect_error("seed a string -> 400", 400, request(BIRD, {"caption": CAPTION, "seed": "7"}), "seed")
expect_error("seed negative -> 400", 400, request(BIRD, {"caption": CAPTION, "seed": -1}), "seed")
expect_error("seed fractional -> 400", 400, request(BIRD, {"caption": CAPTION, "seed": 1.5}), "seed")
expect_error("seed 2^64 -> 400", 400, request(BIRD, {"caption": CAPTION, "seed": 2 ** 64}), "seed")
expect_error("n 0 -> 400", 400, request(BIRD, {"caption": CAPTION, "n": 0}), '"n"')
expect_error("n 9 -> 400", 400, request(BIRD, {"caption": CAPTION, "n": 9}), '"n"')
expect_error("n true -> 400", 400, request(BIRD, {"caption": CAPTION, "n": True}), '"n"')
expect_error("stage 0 -> 400", 400, request(BIRD, {"caption": CAPTION, "stage": 0}), "stage")
expect_error("stage past the last -> 400", 400, request(BIRD, {"caption": CAPTION, "stage": STAGES + 1}), "stage")
expect_error("format gif -> 400", 400, request(BIRD, {"caption": CAPTION, "format": "gif"}), "format")
expect_error("unknown field -> 400 naming it", 400, request(BIRD, {"caption": CAPTION, "sed": 1}), "sed")
expect_error("deeply nested JSON -> 400", 400, request(BIRD, b"[" * 5000 + b"]" * 5000))

# ---- sizes: 413
expect_error("caption over --max-caption -> 413", 413, request(BIRD, {"caption": "red " * (MAX_CAPTION // 4 + 1)}), "caption")
check("caption at --max-caption -> 200", request(BIRD, {"caption": ("red " * MAX_CAPTION)[:MAX_CAPTION]})[0] == 200)


def raw_post(n_body, expect_continue, send_body):
    """Sends a POST announcing n_body bytes; returns (status line, body, bytes of the body sent, seconds)."""
    s = socket.create_connection((HOST, PORT), timeout=30)
    t0 = time.time()
    hdr = "POST /api/v1.0/bird HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (HOST, n_body)
    if expect_continue:
        hdr += "Expect: 100-continue\r\n"
    s.sendall((hdr + "\r\n").encode())
    sent = 0
    if send_body:
        chunk = b"a" * 65536
        try:
            while sent < n_body:
                sent += s.send(chunk[:n_body - sent])
        except OSError:
            pass  # the server closed its side: it stopped reading, as it should
    data = b""
    try:
        while True:
            x = s.recv(65536)
            if not x:
                break
            data += x
    except OSError:
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode("latin-1"), body, sent, time.time() - t0


line, body, sent, secs = raw_post(10 << 20, True, False)
check("10 MB announced with Expect: 100-continue -> 413 before any body", " 413 " in line and b"error" in body and b"100 Continue" not in line.encode(),
      "%r %r" % (line, body[:200]))
line, body, sent, secs = raw_post(32 << 20, False, True)
check("32 MB body sent -> 413, most of it left unread", " 413 " in line and b"error" in body and sent < (32 << 20) and secs < 10,
      "%r, %d bytes taken in %.1f s" % (line, sent, secs))
status, headers, body = (0, {}, b"")
try:
    body = b'{"caption": "' + b"a" * (10 << 20) + b'"}'
    status, headers, body = request(BIRD, body)
except (urllib.error.URLError, ConnectionError, OSError):
    status = "closed"  # urllib sends the whole body before reading: it sees the server close instead
check("10 MB via urllib -> 413 or connection closed early", status in (413, "closed"), "%s" % status)


def chunked_post(total):
    c = http.client.HTTPConnection(HOST, PORT, timeout=30)

    def gen():
        for _ in range(total // 65536):
            yield b"a" * 65536
    try:
        c.request("POST", "/api/v1.0/bird", body=gen(), encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        return r.status
    except (ConnectionError, OSError, http.client.HTTPException):
        return "closed"
    finally:
        c.close()


st = chunked_post(10 << 20)
check("10 MB chunked upload -> 413 or connection closed", st in (413, "closed"), "%s" % st)
status, headers, body = request(BASE + "/healthz")
check("still healthy after the oversized bodies", status == 200, "%s" % status)

# ---- methods and paths
status, headers, body = request(BIRD)
expect_error("GET /api/v1.0/bird -> 405", 405, (status, headers, body))
check("405 has Allow: POST", headers.get("Allow") == "POST", "Allow %r" % headers.get("Allow"))
status, headers, body = request(BASE + "/", b"{}", method="POST")
expect_error("POST / -> 405", 405, (status, headers, body))
check("405 on / has Allow: GET, HEAD", "GET" in (headers.get("Allow") or ""), "Allow %r" % headers.get("Allow"))
expect_error("DELETE /healthz -> 405", 405, request(BASE + "/healthz", method="DELETE"))
expect_error("unknown path -> 404", 404, request(BASE + "/api/v1.0/cat", {"caption": CAPTION}))
expect_error("unknown path with odd bytes -> 404", 404, request(BASE + "/%00%ff%0a..%2f"))
expect_error("/api/v1.0/birds without --seed-api -> 404 naming the flag", 404, request(BASE + "/api/v1.0/birds", {"caption": CAPTION}), "--seed-api")
status, headers, body = request(BASE + "/healthz", method="HEAD")
check("HEAD /healthz -> 200 without a body", status == 200 and body == b"", "%s %r" % (status, body[:50]))

# ---- concurrency
results = []


def worker(i):
    results.append(request(BIRD, {"caption": CAPTION, "seed": i})[0])


threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check("8 concurrent requests -> all 200", results == [200] * 8, "%r" % results)

# ---- graceful shutdown: SIGTERM while requests wait and run; all of them complete
results = []
threads = [threading.Thread(target=lambda: results.append(request(BIRD, {"caption": CAPTION, "n": 8})[0])) for _ in range(4)]
for t in threads:
    t.start()
busy = False
for _ in range(1000):
    try:
        h = json.loads(request(BASE + "/healthz")[2])
        # every request has reached the server (or is done) and at least two are still waiting or running
        inside = h.get("running", 0) + h.get("queued", 0)
        if inside + len(results) == len(threads) and inside >= 2:
            busy = True
            break
    except (ValueError, OSError):
        pass
    time.sleep(0.01)
os.kill(PID, signal.SIGTERM)
for t in threads:
    t.join()
check("SIGTERM with requests in flight: all complete with 200", busy and results == [200] * 4, "busy %s, %r" % (busy, results))
time.sleep(0.5)
try:
    socket.create_connection((HOST, PORT), timeout=5).close()
    refused = False
except OSError:
    refused = True
check("after SIGTERM no new connection is accepted", refused)
sys.exit(1 if n_fail else 0)
