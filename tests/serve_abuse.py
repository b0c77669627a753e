#!/usr/bin/python3
"""serve_abuse.py: `attngan serve` under abuse, for tests/test_serve.sh (docs/RELIABILITY.md).

Usage:
  serve_abuse.py abuse BASE_URL SERVER_PID REQUEST_TIMEOUT
      slow clients (headers and body trickled: closed within --request-timeout, the body one with
      408), /healthz answered within 1 s and a bird drawn meanwhile, 1,000 idle connections (still
      answered; all closed by the timeout; descriptors, threads and connections back to where they
      were), pipelined requests, duplicate JSON keys, a NUL in the caption (escaped and raw)
  serve_abuse.py limit BASE_URL SERVER_PID N
      a server started with a connection limit of N (--max-connections or --max-connections-per-ip):
      N idle connections are held, one more is closed unanswered, and after one closes a request
      is answered again
Prints one "PASS name" or "FAIL name: why" line per check; exit status 1 when a check failed.
Standard library only.
"""
import json
import os
import resource
import socket
import sys
import threading
import time
import urllib.parse

MODE, BASE, PID, ARG = sys.argv[1], sys.argv[2].rstrip("/"), int(sys.argv[3]), int(sys.argv[4])
HOST = urllib.parse.urlsplit(BASE).hostname
PORT = urllib.parse.urlsplit(BASE).port
CAPTION = "this bird has a red crown, a short pointed beak and black wings with white bars"
n_fail = 0


def check(name, ok, why=""):
    global n_fail
    if ok:
        print("PASS " + name, flush=True)
    else:
        n_fail += 1
        print("FAIL %s: %s" % (name, why), flush=True)
    return ok


def read_response(f):
    """(status, headers dict with lower-case names, body) of one HTTP/1.1 response read from the
    file f (a socket's makefile), by its Content-Length; None at the end of the stream."""
    line = f.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


def post_bytes(body, extra=b""):
    return (b"POST /api/v1.0/bird HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
            % (extra, len(body)) + body)


def exchange(raw, timeout=120):
    """Sends raw bytes on a fresh connection (the last request should say Connection: close) and
    reads every response until the server closes; (list of responses, error or None)."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    out, err = [], None
    try:
        s.sendall(raw)
        f = s.makefile("rb")
        while True:
            r = read_response(f)
            if r is None:
                break
            out.append(r)
    except (OSError, ValueError, IndexError) as e:
        err = repr(e)
    finally:
        s.close()
    return out, err


def request(method, path, body=None, timeout=120):
    """(status, headers, body) of one request on its own connection; (None, {}, error) on failure."""
    raw = (b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method.encode(), path.encode()))
    if body is not None:
        raw += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    raw += b"\r\n" + (body or b"")
    rs, err = exchange(raw, timeout)
    return rs[0] if rs else (None, {}, (err or "no response").encode())


def error_of(resp):
    try:
        return json.loads(resp[2]).get("error") or ""
    except (ValueError, AttributeError):
        return ""


def health_ms():
    t = time.time()
    st, _, body = request("GET", "/healthz", timeout=5)
    ms = (time.time() - t) * 1e3
    try:
        h = json.loads(body)
    except ValueError:
        h = {}
    return st, ms, h


def proc_counts():
    """(open descriptors, threads) of the server, from /proc."""
    fds = len(os.listdir("/proc/%d/fd" % PID))
    threads = 0
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
    return fds, threads


def closed_by_server(s):
    """Whether the server has closed s (EOF or reset), without blocking."""
    try:
        s.setblocking(False)
        x = s.recv(4096)
        return x == b"" or x.startswith(b"HTTP/1.1 408")
    except BlockingIOError:
        return False
    except OSError:
        return True


def wait_settled(want_conns, secs):
    """Polls /healthz until it reports at most want_conns connections (itself included)."""
    end = time.time() + secs
    h = {}
    while time.time() < end:
        st, _, h = health_ms()
        if st == 200 and h.get("connections", 1 << 30) <= want_conns:
            return h
        time.sleep(0.2)
    return h


def trickle(kind, result, T):
    """A slow client: trickles header lines (kind "headers") or a body (kind "body") one piece
    every 0.3 s; result gets (seconds until the server closed, bytes the server sent)."""
    s = socket.create_connection((HOST, PORT), timeout=5)
    t0 = time.time()
    if kind == "headers":
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    else:
        s.sendall(b"POST /api/v1.0/bird HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"caption\": \"")
    got = b""
    closed = None
    s.settimeout(0.3)
    while time.time() - t0 < T + 15:
        try:
            s.sendall(b"X-Slow: 1\r\n" if kind == "headers" else b"a")
        except OSError:
            closed = time.time() - t0
            break
        try:
            x = s.recv(4096)
            if not x:
                closed = time.time() - t0
                break
            got += x
        except socket.timeout:
            pass
        except OSError:
            closed = time.time() - t0
            break
    s.close()
    result[kind] = (closed, got)


def abuse(T):
    # ---- slow clients: both trickles at once, while /healthz and a bird are served
    fd0, th0 = proc_counts()
    res = {}
    slow = [threading.Thread(target=trickle, args=(k, res, T)) for k in ("headers", "body")]
    for t in slow:
        t.start()
    worst = 0.0
    bad = []
    bird = None
    t0 = time.time()
    while any(t.is_alive() for t in slow):
        st, ms, _ = health_ms()
        worst = max(worst, ms)
        if st != 200:
            bad.append(st)
        if bird is None and time.time() - t0 > 1:
            bird = request("POST", "/api/v1.0/bird", json.dumps({"caption": CAPTION, "seed": 1}).encode())
        time.sleep(0.25)
    for t in slow:
        t.join()
    hc, hgot = res["headers"]
    check("slowloris (headers trickled): closed within --request-timeout %d s" % T,
          hc is not None and T - 0.5 <= hc <= T + 2 and not hgot, "closed after %s s, got %r" % (hc, hgot[:80]))
    bc, bgot = res["body"]
    check("slow body (trickled): 408 naming --request-timeout, closed within %d s" % T,
          bc is not None and bc <= T + 2 and b" 408 " in bgot.split(b"\r\n")[0] and b"--request-timeout" in bgot,
          "closed after %s s, got %r" % (bc, bgot[:200]))
    check("during the slow clients /healthz answered every time within 1 s", not bad and worst < 1000,
          "statuses %r, slowest %.0f ms" % (bad, worst))
    check("during the slow clients a bird is drawn (200 PNG)", bird is not None and bird[0] == 200
          and bird[2][:8] == b"\x89PNG\r\n\x1a\n", "%r" % (bird[:2] if bird else None,))
    h = wait_settled(1, 5)
    check("/healthz counts the slow connections closed", h.get("closed_slow", 0) >= 2, "%r" % h)

    # ---- 1,000 idle connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1100 and (hard == resource.RLIM_INFINITY or hard >= 1100):
        resource.setrlimit(resource.RLIMIT_NOFILE, (1100, hard))
    idle = []
    t_open = time.time()
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1100:
        print("SKIP 1000 idle connections: the open-file limit is %d (ulimit -n; 1100 needed)" % hard, flush=True)
    else:
        try:
            for _ in range(1000):
                idle.append(socket.create_connection((HOST, PORT), timeout=10))
        except OSError as e:
            check("1000 idle connections opened", False, "%d opened: %r" % (len(idle), e))
    opened_s = time.time() - t_open
    if len(idle) == 1000:
        # until the server has taken them all (it starts a thread for each), then /healthz is timed
        end = time.time() + 30
        first_ms = None
        while time.time() < end:
            st, ms, h = health_ms()
            first_ms = ms if first_ms is None else first_ms
            if h.get("connections", 0) >= 1001:
                break
            time.sleep(0.1)
        taken_s = time.time() - t_open
        worst, bad, seen, fds, threads = 0.0, [], 0, 0, 0
        for _ in range(6):
            st, ms, h = health_ms()
            worst = max(worst, ms)
            seen = max(seen, h.get("connections", 0))
            if st != 200:
                bad.append(st)
            fds, threads = max(fds, proc_counts()[0]), max(threads, proc_counts()[1])
            time.sleep(0.1)
        bird = request("POST", "/api/v1.0/bird", json.dumps({"caption": CAPTION, "seed": 2}).encode())
        still = sum(1 for s in idle if not closed_by_server(s))
        print("  1000 idle connections opened in %.2f s, all taken by the server after %.2f s (the first /healthz "
              "meanwhile: %.0f ms); then %d connections, %d fds, %d threads; /healthz slowest %.0f ms"
              % (opened_s, taken_s, first_ms, seen, fds, threads, worst), flush=True)
        check("1000 idle connections: the server holds them all", seen >= 1000 and still == 1000,
              "healthz says %d connections, %d of ours still open" % (seen, still))
        check("1000 idle connections: /healthz answered every time within 1 s", not bad and worst < 1000,
              "statuses %r, slowest %.0f ms" % (bad, worst))
        check("1000 idle connections: a bird is drawn (200)", bird[0] == 200, "%r" % (bird[:2],))
        # the request timeout closes every one of them; descriptors and threads come back
        end = time.time() + T + 10
        while time.time() < end and any(not closed_by_server(s) for s in idle):
            time.sleep(0.25)
        left = sum(1 for s in idle if not closed_by_server(s))
        check("1000 idle connections: all closed by --request-timeout", left == 0, "%d still open after %d s" % (left, T + 10))
    for s in idle:
        s.close()
    h = wait_settled(1, 10)
    time.sleep(0.5)
    fd1, th1 = proc_counts()
    check("after the idle connections: connections, descriptors and threads back where they were",
          h.get("connections") == 1 and fd1 <= fd0 + 2 and th1 <= th0 + 2,
          "connections %s, fds %d -> %d, threads %d -> %d" % (h.get("connections"), fd0, fd1, th0, th1))

    # ---- pipelining: four requests in one write on one keep-alive connection
    good = json.dumps({"caption": CAPTION, "seed": 5}).encode()
    dup = b'{"caption": "a red bird", "caption": "a blue bird"}'
    raw = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post_bytes(good) + post_bytes(dup)
           + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    rs, err = exchange(raw)
    alone = request("POST", "/api/v1.0/bird", good)
    st = [r[0] for r in rs]
    ok = (st == [200, 200, 400, 200] and rs[1][1].get("content-type") == "image/png" and rs[1][2] == alone[2]
          and "caption" in error_of(rs[2]) and json.loads(rs[3][2]).get("status") == "ok")
    check("pipelined requests (healthz, bird, bad bird, healthz in one write): each answered, in order",
          ok, "statuses %r (error %s); bird %s the one drawn alone" % (st, err, "is" if len(rs) > 1 and rs[1][2] == alone[2] else "is not"))
    rs, err = exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check("pipelined GETs: 4 answers on one connection", [r[0] for r in rs] == [200] * 4, "%r %s" % ([r[0] for r in rs], err))

    # ---- duplicate keys, NUL in the caption
    r = request("POST", "/api/v1.0/bird", dup)
    check("duplicate key \"caption\" -> 400 naming it", r[0] == 400 and '"caption"' in error_of(r), "%s %r" % (r[0], r[2][:200]))
    r = request("POST", "/api/v1.0/bird", b'{"caption": "a red bird", "seed": 1, "seed": 2}')
    check("duplicate key \"seed\" -> 400 naming it", r[0] == 400 and '"seed"' in error_of(r), "%s %r" % (r[0], r[2][:200]))
    r = request("POST", "/api/v1.0/bird", b'{"caption": "a red bird\\u0000 with black wings"}')
    check("caption with \\u0000 -> 400 saying NUL", r[0] == 400 and "NUL" in error_of(r), "%s %r" % (r[0], r[2][:200]))
    r = request("POST", "/api/v1.0/bird", b'{"caption": "a red bird\x00 with black wings"}')
    check("caption with a raw NUL byte -> 400 saying NUL", r[0] == 400 and "NUL" in error_of(r), "%s %r" % (r[0], r[2][:200]))
    r = request("POST", "/api/v1.0/bird", b'{"caption": "a red bird"}\x00')
    check("raw NUL after the JSON -> 400 saying NUL", r[0] == 400 and "NUL" in error_of(r), "%s %r" % (r[0], r[2][:200]))


def limit(n):
    held = [socket.create_connection((HOST, PORT), timeout=5) for _ in range(n)]
    time.sleep(0.3)
    r = request("GET", "/healthz", timeout=5)
    check("connection limit %d: one more connection is closed unanswered" % n, r[0] is None, "got %r" % (r[:2],))
    alive = sum(1 for s in held if not closed_by_server(s))
    check("connection limit %d: the %d held connections stay open" % (n, n), alive == n, "%d open" % alive)
    held.pop().close()
    time.sleep(0.3)
    r = request("GET", "/healthz", timeout=5)
    check("connection limit %d: after one closes, a request is answered" % n, r[0] == 200, "got %r" % (r[:2],))
    for s in held:
        s.close()


if MODE == "abuse":
    abuse(ARG)
elif MODE == "limit":
    limit(ARG)
else:
    sys.exit("serve_abuse.py: unknown mode %s" % MODE)
sys.exit(1 if n_fail else 0)
