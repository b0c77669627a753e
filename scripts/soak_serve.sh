#!/bin/sh
# soak_serve.sh: `attngan serve` at full load for a while, with its memory and descriptors watched
# (issue 21; docs/RELIABILITY.md, "The server under abuse"). Not part of `make test`: the
# acceptance run takes 10 minutes.
#
#   scripts/soak_serve.sh                              # 600 s, 4 clients, build/release/attngan
#   scripts/soak_serve.sh --seconds 120                # a short run
#   make SANITIZE=1 && scripts/soak_serve.sh --bin build/san/attngan   # the ASan+UBSan build
#
# It starts a server (--threads 1, --request-timeout 5, a free port of 127.0.0.1), then for
# --seconds runs --clients client threads, each on its own keep-alive connection, sending without
# pause a mix of requests: birds as PNG (about half) and as JSON, /healthz, the page, 404s, bad
# bodies (duplicate keys, \u0000 and raw NUL in the caption, bad JSON, an unknown field: 400) and
# three requests pipelined in one write. One more thread abuses the server: every 10 s it holds 50
# idle connections for 3 s and trickles one request that the server must close (--request-timeout).
# Every --interval seconds it samples the server's resident memory (VmRSS), open descriptors
# (/proc/PID/fd) and threads. It fails (exit status 1) when
#   - any request got an unexpected status or no answer (a retry on a fresh connection is allowed
#     once, for a keep-alive connection that the server closed);
#   - the resident memory at the end (the median of the samples of the last 30 s) is more than
#     --rss-growth percent (default 10) above that after the warm-up (the median of the 30 s from
#     --warmup, default 60 s, at most half the run);
#   - at any sample the descriptors exceed the idle server's by more than clients + 51 (the abuse
#     thread's) + --fd-slack (default 16), or once the load has stopped they do not come back to
#     within 2 of the idle server's, or the threads do not come back within 2;
#   - the server does not exit 0 on SIGTERM, or its log holds a sanitizer report.
# Options: --seconds N (600) --clients N (4) --bin PATH ($ATTNGAN, else build/release/attngan)
# --model DIR (models/bird64) --threads N (1) --workers N (1) --interval S (5) --warmup S
# --rss-growth PCT (10) --fd-slack N (16) --out DIR (samples.csv, server.log; default a new
# directory under /tmp). An ASan build is recognised and run with ASAN_OPTIONS
# quarantine_size_mb=16 (a bounded quarantine, so that its memory levels off) unless ASAN_OPTIONS
# is set. Standard library python3 only.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" - "$@" <<'EOF'
import argparse, http.client, json, os, random, re, signal, socket, subprocess, sys, tempfile, threading, time

ap = argparse.ArgumentParser(prog="soak_serve.sh")
ap.add_argument("--seconds", type=int, default=600)
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--bin", default=os.environ.get("ATTNGAN", "build/release/attngan"))
ap.add_argument("--model", default="models/bird64")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--workers", type=int, default=1)
ap.add_argument("--interval", type=float, default=5)
ap.add_argument("--warmup", type=float, default=None)
ap.add_argument("--rss-growth", type=float, default=10)
ap.add_argument("--fd-slack", type=int, default=16)
ap.add_argument("--out", default=None)
a = ap.parse_args()
warmup = a.warmup if a.warmup is not None else min(60.0, a.seconds / 2)
out = a.out or tempfile.mkdtemp(prefix="soak_serve.")
os.makedirs(out, exist_ok=True)
REQ_TIMEOUT = 5
IDLE_BURST = 50

env = dict(os.environ)
with open(a.bin, "rb") as f:
    asan = b"__asan_init" in f.read()
if asan and "ASAN_OPTIONS" not in env:
    env["ASAN_OPTIONS"] = "quarantine_size_mb=16"
log_path = os.path.join(out, "server.log")
log = open(log_path, "w")
srv = subprocess.Popen([a.bin, "serve", "--model", a.model, "--host", "127.0.0.1", "--port", "0", "--threads", str(a.threads),
                        "--workers", str(a.workers), "--request-timeout", str(REQ_TIMEOUT), "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=log, env=env)
PID = srv.pid
port = None
for _ in range(1200):
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", open(log_path).read())
    if m:
        port = int(m.group(1))
        break
    if srv.poll() is not None:
        break
    time.sleep(0.1)
if not port:
    sys.exit("soak_serve: the server did not start:\n" + open(log_path).read()[-2000:])
print("soak_serve: %s (%s) pid %d on port %d; %d s, %d clients, threads %d, workers %d; out %s"
      % (a.bin, "ASan build, ASAN_OPTIONS=" + env.get("ASAN_OPTIONS", "") if asan else "release build", PID, port,
         a.seconds, a.clients, a.threads, a.workers, out), flush=True)

CAPTIONS = [
    "this bird has a red crown, a short pointed beak and black wings with white bars",
    "a small yellow bird with a black head and a grey beak",
    "this bird is white with a long orange bill and grey wings",
    "a medium sized bird with a brown back, a spotted breast and a long tail",
    "The blue jay is a passerine bird. It has a bright blue crest and back, a white face and a black collar. It lives in forests.",
]
BAD = [b'{"caption": "a red bird", "caption": "a blue bird"}', b'{"caption": "a red bird\\u0000 with wings"}',
       b'{"caption": "a red bird\x00 with wings"}', b'{"caption": "a red bird",', b'{"caption": "a red bird", "sede": 1}']


def proc():
    rss = threads = 0
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % PID)), threads


lock = threading.Lock()
counts = {}
errors = []
lat = []
stop = threading.Event()


def note(kind, ok, why=""):
    with lock:
        counts[kind] = counts.get(kind, 0) + 1
        if not ok:
            errors.append("%s: %s" % (kind, why))


def read_one(f):
    line = f.readline()
    if not line:
        return None
    st = int(line.split()[1])
    n = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    return st, f.read(n)


def pipelined():
    body = json.dumps({"caption": CAPTIONS[0], "seed": 1}).encode()
    raw = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /api/v1.0/bird HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body) + body + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", port), timeout=300)
    try:
        s.sendall(raw)
        f = s.makefile("rb")
        got = []
        while True:
            r = read_one(f)
            if r is None:
                break
            got.append(r[0])
        return got
    finally:
        s.close()


def client(k):
    rnd = random.Random(k)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    while not stop.is_set():
        x = rnd.random()
        if x < 0.05:
            try:
                got = pipelined()
                note("pipelined", got == [200, 200, 200], "%r" % got)
            except OSError as e:
                note("pipelined", False, repr(e))
            continue
        if x < 0.50:
            kind, method, path, body, want = "bird png", "POST", "/api/v1.0/bird", {"caption": rnd.choice(CAPTIONS), "seed": rnd.randrange(1 << 32)}, 200
        elif x < 0.60:
            kind, method, path, body, want = "bird json", "POST", "/api/v1.0/bird", {"caption": rnd.choice(CAPTIONS), "format": "json"}, 200
        elif x < 0.75:
            kind, method, path, body, want = "healthz", "GET", "/healthz", None, 200
        elif x < 0.80:
            kind, method, path, body, want = "page", "GET", "/", None, 200
        elif x < 0.85:
            kind, method, path, body, want = "404", "GET", "/nowhere", None, 404
        else:
            kind, method, path, body, want = "400", "POST", "/api/v1.0/bird", rnd.choice(BAD), 400
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        hdr = {"Content-Type": "application/json"} if data is not None else {}
        t0 = time.time()
        for attempt in (0, 1):
            try:
                conn.request(method, path, body=data, headers=hdr)
                r = conn.getresponse()
                payload = r.read()
                note(kind, r.status == want, "status %d %r" % (r.status, payload[:120]))
                if kind == "bird png" and r.status == 200:
                    with lock:
                        lat.append(time.time() - t0)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                break
            except (OSError, http.client.HTTPException) as e:
                conn.close()  # a kept-alive connection the server closed: one retry on a fresh one
                if attempt == 1:
                    note(kind, False, repr(e))
    conn.close()


def abuser():
    while not stop.is_set():
        held = []
        try:
            for _ in range(IDLE_BURST):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            slow = socket.create_connection(("127.0.0.1", port), timeout=10)
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            t0, closed = time.time(), False
            slow.settimeout(0.5)
            while time.time() - t0 < REQ_TIMEOUT + 3 and not closed:
                try:
                    slow.sendall(b"X-Slow: 1\r\n")
                    closed = slow.recv(100) == b""
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
            slow.close()
            note("slowloris closed", closed, "still open after %d s" % (REQ_TIMEOUT + 3))
        except OSError as e:
            note("idle burst", False, repr(e))
        for s in held:
            s.close()
        note("idle burst", True)
        stop.wait(10)


time.sleep(0.5)
rss0, fd0, th0 = proc()
print("idle server: VmRSS %d kB, %d fds, %d threads" % (rss0, fd0, th0), flush=True)
fd_bound = fd0 + a.clients + IDLE_BURST + 1 + a.fd_slack
csv = open(os.path.join(out, "samples.csv"), "w")
csv.write("t_s,rss_kb,fds,threads,requests,errors\n")
t_start = time.time()
workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(a.clients)]
workers.append(threading.Thread(target=abuser, daemon=True))
for t in workers:
    t.start()
samples = []
fail = []
while True:
    now = time.time() - t_start
    try:
        rss, fds, th = proc()
    except OSError:
        fail.append("the server died (status %s)" % srv.poll())
        break
    with lock:
        nreq, nerr = sum(counts.values()), len(errors)
    samples.append((now, rss, fds, th))
    csv.write("%.0f,%d,%d,%d,%d,%d\n" % (now, rss, fds, th, nreq, nerr))
    csv.flush()
    print("t %4.0f s  VmRSS %7d kB  fds %4d  threads %4d  requests %6d  errors %d" % (now, rss, fds, th, nreq, nerr), flush=True)
    if fds > fd_bound:
        fail.append("%d fds at %.0f s, over the bound %d" % (fds, now, fd_bound))
    if now >= a.seconds:
        break
    time.sleep(min(a.interval, max(0.0, a.seconds - now)))
stop.set()
for t in workers:
    t.join(timeout=REQ_TIMEOUT + 120)

# the load is off: connections close, descriptors and threads must come back
settled = None
for _ in range(100):
    try:
        rss1, fd1, th1 = proc()
    except OSError:
        break
    settled = (rss1, fd1, th1)
    if fd1 <= fd0 + 2 and th1 <= th0 + 2:
        break
    time.sleep(0.2)
# VmRSS after the warm-up and at the end: the median of the samples of a 30 s window (at least 3
# samples), so that one sample taken while the idle connections are held does not decide
def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
win = max(30.0, 2.5 * a.interval)
after = [s for s in samples if s[0] >= warmup]
warm = end = None
if after:
    warm = (after[0][0], median([s[1] for s in after if s[0] <= after[0][0] + win]))
    end = (samples[-1][0], median([s[1] for s in samples if s[0] >= samples[-1][0] - win]))
    growth = 100.0 * (end[1] - warm[1]) / warm[1]
    rss_max = max(s[1] for s in after)
    if growth > a.rss_growth:
        fail.append("VmRSS grew %.1f%% from %d kB (median of %.0f-%.0f s) to %d kB (median of the last %.0f s; bound %.0f%%)"
                    % (growth, warm[1], warm[0], warm[0] + win, end[1], win, a.rss_growth))
if settled and (settled[1] > fd0 + 2 or settled[2] > th0 + 2):
    fail.append("after the load: %d fds (idle %d), %d threads (idle %d)" % (settled[1], fd0, settled[2], th0))
with lock:
    if errors:
        fail.append("%d failed requests, e.g. %s" % (len(errors), "; ".join(errors[:3])))
srv.send_signal(signal.SIGTERM)
try:
    rc = srv.wait(timeout=120)
except subprocess.TimeoutExpired:
    srv.kill()
    rc = "killed after 120 s"
log.close()
text = open(log_path, errors="replace").read()
if rc != 0:
    fail.append("exit status %s after SIGTERM" % rc)
if re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:", text):
    fail.append("sanitizer report in %s" % log_path)

total = sum(counts.values())
lat.sort()
print("\nrequests: %d in %.0f s (%.1f/s): %s" % (total, a.seconds, total / max(a.seconds, 1),
                                              ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
if lat:
    print("bird png latency under load: p50 %.0f ms, p95 %.0f ms" % (1e3 * lat[len(lat) // 2], 1e3 * lat[int(len(lat) * 0.95)]))
if warm and end:
    print("VmRSS: idle %d kB; median of %.0f-%.0f s %d kB; median of the last %.0f s %d kB (%+.1f%%); max after %.0f s %d kB"
          % (rss0, warm[0], warm[0] + win, warm[1], win, end[1], growth, warm[0], rss_max))
    print("fds: idle %d, max under load %d (bound %d), after the load %d; threads: idle %d, max %d, after %d"
          % (fd0, max(s[2] for s in samples), fd_bound, settled[1] if settled else -1, th0, max(s[3] for s in samples),
             settled[2] if settled else -1))
print("samples: %s" % os.path.join(out, "samples.csv"))
if fail:
    print("soak_serve: FAIL: " + " | ".join(fail))
    sys.exit(1)
print("soak_serve: PASS")
EOF
