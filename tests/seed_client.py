#!/usr/bin/python3
"""seed_client.py: a client of the seed's API (AttnGAN's eval server: eval/main.py and its
README), run by tests/test_serve.sh against `attngan serve --seed-api`.

Usage: seed_client.py BASE_URL STAGES MODE
  MODE full    the README's steps: POST {"caption": ...} to /api/v1.0/bird with
               Content-Type: application/json, expect 201 and {"bird": {small, medium, large,
               map1, map2, caption, elapsed}}, then fetch every image URL (PNGs of 64/128/256 px
               as the model has stages; a 1-stage model repeats its image, its maps are null);
               /api/v1.0/birds gives bird1..bird6, six different birds; unknown fields are ignored
               as the seed ignored them; a missing caption is 400, GET /api/v1.0/bird 405, an
               unknown image 404
  MODE expiry  (server run with --image-ttl 2) an image is there at once and 404 after 3 s
  MODE evict   (server run with --image-cache-mb 1) the first request's images are evicted after
               enough others, and /healthz counts them
Prints "PASS name" / "FAIL name: why" lines; exit 0 when all passed. Standard library only.
"""
import json
import struct
import sys
import time
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/")
STAGES = int(sys.argv[2])
MODE = sys.argv[3]
CAPTION = "the bird has a yellow crown and a black eyering that is round"  # the seed README's
n_fail = 0


def check(name, ok, why=""):
    global n_fail
    if not ok:
        n_fail += 1
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)), flush=True)
    return ok


def call(url, body=None, method=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def png_size(b):
    if len(b) < 24 or b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", b[16:24])


def bird(caption=CAPTION, path="/api/v1.0/bird"):
    st, _, body = call(BASE + path, {"caption": caption})
    try:
        return st, json.loads(body)
    except ValueError:
        return st, None


def fetch(url):
    st, h, body = call(url)
    return st, h.get("Content-Type", ""), body


def full():
    st, o = bird()
    if not check("POST /api/v1.0/bird (the README's curl): 201 with {\"bird\": ...}", st == 201 and isinstance(o, dict) and "bird" in o,
                 "status %s, %r" % (st, o)):
        return
    b = o["bird"]
    keys = {"small", "medium", "large", "map1", "map2", "caption", "elapsed"}
    check("the bird's fields are the seed's", set(b) == keys, "got %s" % sorted(b))
    check("caption echoed, elapsed in seconds", b.get("caption") == CAPTION and isinstance(b.get("elapsed"), (int, float))
          and 0 <= b["elapsed"] < 600, "%r" % {k: b.get(k) for k in ("caption", "elapsed")})
    sizes = {"small": 64, "medium": 64 << min(1, STAGES - 1), "large": 64 << (STAGES - 1)}
    for k, want in sizes.items():
        url = b.get(k)
        ok = isinstance(url, str) and url.startswith(BASE + "/api/v1.0/images/")
        if check("%s is an image URL of this server" % k, ok, "%r" % url):
            s, ct, png = fetch(url)
            check("GET %s: a %d px PNG" % (k, want), s == 200 and ct == "image/png" and png_size(png) == (want, want),
                  "status %s, %s, size %s" % (s, ct, png_size(png)))
    for k in ("map1", "map2"):
        stage = 2 if k == "map1" else 3
        if STAGES >= stage:
            s, ct, png = fetch(b.get(k) or BASE + "/none")
            check("GET %s: the attention figure of stage %d" % (k, stage), s == 200 and png_size(png) is not None and
                  png_size(png)[0] >= 64 << (stage - 1), "status %s, size %s" % (s, png_size(png)))
        else:
            check("%s is null: the model has no stage %d" % (k, stage), b.get(k) is None, "%r" % b.get(k))
    st, o = bird(path="/api/v1.0/birds")
    if check("POST /api/v1.0/birds: 201 with six birds", st == 201 and isinstance(o, dict) and
             set(o.get("bird", {})) == {"bird%d" % i for i in range(1, 7)} | {"caption", "elapsed"}, "status %s, %r" % (st, o)):
        pngs = []
        for i in range(1, 7):
            one = o["bird"]["bird%d" % i]
            ok = set(one) == {"small", "medium", "large"}
            s, ct, png = fetch(one.get("large", BASE + "/none"))
            check("bird%d: small, medium, large; the large one a %d px PNG" % (i, 64 << (STAGES - 1)),
                  ok and s == 200 and png_size(png) == (64 << (STAGES - 1),) * 2, "%r, status %s" % (sorted(one), s))
            pngs.append(png)
        check("the six birds differ (six noises)", len(set(pngs)) == 6, "%d distinct" % len(set(pngs)))
    st, _, body = call(BASE + "/api/v1.0/bird", {"caption": "a small red bird", "tags": ["x"], "n": "ignored"})
    check("fields other than caption are ignored, as by the seed", st == 201, "status %s: %s" % (st, body[:200]))
    st, _, body = call(BASE + "/api/v1.0/bird", {"text": "a small red bird"})
    check("no caption: 400 naming it", st == 400 and b"caption" in body, "status %s: %s" % (st, body[:200]))
    st, _, _ = call(BASE + "/api/v1.0/bird", method="GET")
    check("GET /api/v1.0/bird: 405", st == 405, "status %s" % st)
    s, _, body = fetch(BASE + "/api/v1.0/images/00000000000000000000000000000000/bird_g0.png")
    check("an unknown image: 404", s == 404 and b"--image-ttl" in body, "status %s" % s)


def expiry():
    st, o = bird()
    url = (o or {}).get("bird", {}).get("small")
    if not check("a bird to expire", st == 201 and url, "status %s" % st):
        return
    s, _, _ = fetch(url)
    check("its image is there at once", s == 200, "status %s" % s)
    time.sleep(3.0)
    s, _, body = fetch(url)
    check("after --image-ttl 2 and 3 s: 404", s == 404, "status %s" % s)


def evict():
    st, o = bird()
    first = (o or {}).get("bird", {}).get("small")
    if not check("a first bird", st == 201 and first, "status %s" % st):
        return
    gone = False
    for k in range(200):  # each /birds keeps 6+ PNGs; 1 MiB holds a few hundred 64 px ones at most
        bird(caption="a small bird number %d with red wings" % k, path="/api/v1.0/birds")
        if fetch(first)[0] == 404:
            gone = True
            break
    check("the oldest images go first past --image-cache-mb 1 (after %d more requests)" % (k + 1), gone)
    st, _, body = call(BASE + "/healthz")
    h = json.loads(body) if st == 200 else {}
    im = h.get("images", {})
    check("/healthz counts the kept and the evicted images, within 1 MiB", im.get("evicted", 0) > 0 and 0 < im.get("bytes", 0) <= 1 << 20,
          "%r" % im)


{"full": full, "expiry": expiry, "evict": evict}[MODE]()
sys.exit(1 if n_fail else 0)
