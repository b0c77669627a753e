#!/usr/bin/python3
"""load_serve.py: a load test of `attngan serve` (a tool, not part of `make test`; docs/SERVE.md).

N concurrent clients (threads, each with its own keep-alive connection) send M requests each to
POST /api/v1.0/bird (PNG replies, captions from a fixed list, a seed per request), then it prints
failures, latency percentiles, requests per second, and the server's resident memory (VmRSS)
and thread count sampled from /proc/<pid>/status during the run: at the start, after the first
5% of the requests, the maximum, and at the end, to show that memory stays flat.

  # start a server itself (port picked by the kernel), then load it
  /usr/bin/python3 tests/load_serve.py --start build/release/attngan --model models/bird64
  # or load a running server
  /usr/bin/python3 tests/load_serve.py --url http://127.0.0.1:8080 --pid $(pidof attngan)

Options: --clients 64 --requests 50 (per client) --n 1 (images per request) --format png|json,
--serve-arg ARG (repeatable, passed to `attngan serve` with --start, e.g. --serve-arg=--workers=2).
Exit status 1 when any request failed. Standard library only.
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

CAPTIONS = [
    "this bird has a red crown, a short pointed beak and black wings with white bars",
    "a small yellow bird with a black head and a grey beak",
    "this bird is white with a long orange bill and grey wings",
    "a medium sized bird with a brown back, a spotted breast and a long tail",
    "this small bird has a blue head, a white belly and short brown wings",
    "The blue jay is a passerine bird. It has a bright blue crest and back, a white face and a black collar. It lives in forests.",
]


def proc_status(pid):
    """(VmRSS in MiB, Threads) of pid, or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rss = re.search(r"^VmRSS:\s+(\d+) kB", s, re.M)
    thr = re.search(r"^Threads:\s+(\d+)", s, re.M)
    return (int(rss.group(1)) / 1024.0 if rss else 0.0, int(thr.group(1)) if thr else 0)


def percentile(sorted_xs, p):
    if not sorted_xs:
        return float("nan")
    k = min(len(sorted_xs) - 1, max(0, int(round(p / 100.0 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


def start_server(binary, model, extra):
    log = tempfile.NamedTemporaryFile(prefix="load_serve_", suffix=".log", delete=False)
    cmd = [binary, "serve", "--model", model, "--port", "0", "--quiet"] + extra
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    t0 = time.time()
    while time.time() - t0 < 120:
        with open(log.name) as f:
            m = re.search(r"listening on (http://\S+?)/? ", f.read())
        if m:
            return p, m.group(1), log.name
        if p.poll() is not None:
            break
        time.sleep(0.1)
    with open(log.name) as f:
        sys.exit("the server did not start: %s\n%s" % (" ".join(cmd), f.read()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="base URL of a running server")
    ap.add_argument("--pid", type=int, help="its process id (for the memory samples)")
    ap.add_argument("--start", metavar="ATTNGAN", help="start `ATTNGAN serve` on a free port and stop it at the end")
    ap.add_argument("--model", default="models/bird64")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra argument for attngan serve (repeatable)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=50, help="per client")
    ap.add_argument("--n", type=int, default=1, help="images per request")
    ap.add_argument("--format", default="png", choices=["png", "json"])
    a = ap.parse_args()
    proc = None
    if a.start:
        proc, a.url, logname = start_server(a.start, a.model, a.serve_arg)
        a.pid = proc.pid
        print("server: %s serve --model %s %s (pid %d, log %s)" % (a.start, a.model, " ".join(a.serve_arg), a.pid, logname))
    if not a.url:
        ap.error("give --url (and --pid) or --start")
    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port or 80

    total = a.clients * a.requests
    lat, fails = [], {}
    lock = threading.Lock()
    done = [0]
    warm = {"rss": None}
    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            st = proc_status(a.pid) if a.pid else None
            if st:
                samples.append(st)
                with lock:
                    if warm["rss"] is None and done[0] >= total // 20:
                        warm["rss"] = st[0]
            time.sleep(0.2)

    def client(ci):
        conn = None
        for k in range(a.requests):
            body = json.dumps({"caption": CAPTIONS[(ci + k) % len(CAPTIONS)], "seed": ci * 1000 + k, "n": a.n,
                               "format": a.format}).encode()
            t0 = time.time()
            err = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=600)
                conn.request("POST", "/api/v1.0/bird", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    err = "HTTP %d" % r.status
                elif a.format == "png" and data[:8] != b"\x89PNG\r\n\x1a\n":
                    err = "not a PNG"
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                err = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            dt = time.time() - t0
            with lock:
                done[0] += 1
                if err:
                    fails[err] = fails.get(err, 0) + 1
                else:
                    lat.append(dt)
        if conn is not None:
            conn.close()

    st0 = proc_status(a.pid) if a.pid else None
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    t_start = time.time()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    for c in clients:
        c.start()
    last = time.time()
    while any(c.is_alive() for c in clients):
        time.sleep(0.5)
        if time.time() - last > 15:
            last = time.time()
            with lock:
                print("  %d/%d requests, %d failed, %.0f s" % (done[0], total, sum(fails.values()), last - t_start), flush=True)
    wall = time.time() - t_start
    time.sleep(1.0)  # let the server settle, then the end sample
    stop.set()
    th.join()
    st1 = proc_status(a.pid) if a.pid else None

    lat.sort()
    n_fail = sum(fails.values())
    print("requests: %d (%d clients x %d), n=%d, format %s" % (total, a.clients, a.requests, a.n, a.format))
    print("failures: %d%s" % (n_fail, " " + json.dumps(fails) if fails else ""))
    print("latency (s): p50 %.3f  p95 %.3f  p99 %.3f  max %.3f" % (percentile(lat, 50), percentile(lat, 95), percentile(lat, 99),
                                                                   lat[-1] if lat else float("nan")))
    print("throughput: %.2f requests/s over %.1f s" % (total / wall, wall))
    if st0 and samples:
        print("server RSS (MiB): start %.1f  after 5%% %.1f  max %.1f  end %.1f   threads: start %d  max %d  end %d" % (
            st0[0], warm["rss"] if warm["rss"] is not None else float("nan"), max(s[0] for s in samples),
            st1[0] if st1 else float("nan"), st0[1], max(s[1] for s in samples), st1[1] if st1 else -1))
    if proc is not None:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed after 120 s"
        print("server exit status after SIGTERM: %s" % rc)
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
