#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Attacks on the control server (issue 7, and the helper threads and
batched output of jobs.c / session.c). Each attack starts its own
build/attack_server (tests/attack/build.sh), is bounded in count and time,
and stops the server by its PID.

    python3 tests/attack/attack.py [NAME ...]      (no name: all)

Prints one line per attack: PASS/FAIL and its figures (server RSS in KiB,
threads, latency of a concurrent num-running).
"""
import json, os, resource, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.environ.get("ATTACK_SERVER") or os.path.join(ROOT, "build", "attack_server")
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))


class Server:
    def __init__(self, *opts, unix=None):
        args = [SERVER] + (["unix", unix] if unix else ["tcp", "127.0.0.1", "0"])
        self.p = subprocess.Popen(args + list(opts) + ["limit=90"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        first = self.p.stdout.readline().decode().split()
        self.unix = unix
        self.port = int(first[1]) if first and first[0] == "port" else None

    def connect(self):
        if self.unix:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.unix)
            return s
        return socket.create_connection(("127.0.0.1", self.port))

    def status(self):
        d = {}
        with open("/proc/%d/status" % self.p.pid) as f:
            for l in f:
                k, v = l.split(":", 1)
                d[k] = (v.split() or [""])[0]
        return int(d["VmRSS"]), int(d["Threads"])

    def names(self):
        out = {}
        d = "/proc/%d/task" % self.p.pid
        for t in os.listdir(d):
            try:
                n = open(d + "/" + t + "/comm").read().strip()
            except OSError:
                continue
            out[n] = out.get(n, 0) + 1
        return out

    def helpers(self):
        return self.names().get("tp-ctl-job", 0)

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.p.pid))

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return "hung"


class Client:
    def __init__(self, srv, token=None, fmt="json"):
        self.s = srv.connect()
        self.s.settimeout(10)
        self.f = self.s.makefile("rb")
        hello = {"format": fmt}
        if token:
            hello["token"] = token
        self.s.sendall(json.dumps(hello).encode() + b"\n")
        self.hello = self.f.readline()

    def ask(self, line):
        t = time.monotonic()
        self.s.sendall(line.encode() + b"\n")
        r = self.f.readline()
        return json.loads(r) if r else None, time.monotonic() - t

    def close(self):
        self.f.close()
        self.s.close()


def latency(c):
    r, dt = c.ask("num-running")
    assert r and r.get("ok"), r
    return dt * 1000


results = []


def report(name, ok, fmt, *a):
    line = "%s %-14s %s" % ("PASS" if ok else "FAIL", name, fmt % a)
    print(line, flush=True)
    results.append(ok)


def a_bigline():
    srv = Server()
    op = Client(srv)
    c = Client(srv)
    chunk = b"x" * (1 << 20)
    worst = 0
    for i in range(100):
        c.s.sendall(chunk)
        if i % 10 == 0:
            worst = max(worst, latency(op))
    c.s.sendall(b"\nnum-running\n")
    e = json.loads(c.f.readline())
    r = json.loads(c.f.readline())
    rss, thr = srv.status()
    ok = (not e["ok"]) and r["ok"] and rss < 20000
    report("bigline", ok, "100 MB line -> %s, next ok=%s; rss=%d KiB threads=%d "
           "op latency max %.1f ms", e.get("error"), r["ok"], rss, thr, worst)
    srv.stop()


def a_junk():
    srv = Server()
    c = Client(srv)
    op = Client(srv)
    import random
    rnd = random.Random(7)
    lines = []
    for i in range(20000):
        b = bytes(rnd.choice([0, 0xff, 0xc3, 0x80, 0xed, 0xa0, 65, 32, 0xf8])
                  for _ in range(rnd.randint(1, 40)))
        lines.append(b"z" + b.replace(b"\n", b"") + b"\n")
    t = time.monotonic()
    n = 0
    for i in range(0, 20000, 500):
        c.s.sendall(b"".join(lines[i:i + 500]))
        for _ in range(500):
            if c.f.readline():
                n += 1
    dt = time.monotonic() - t
    lat = latency(op)
    rss, thr = srv.status()
    report("junk", n == 20000 and srv.alive(), "20,000 junk lines: %d answers in "
           "%.2f s; rss=%d threads=%d num-running %.1f ms", n, dt, rss, thr, lat)
    srv.stop()


def a_conn1000():
    srv = Server()
    op = Client(srv)
    socks = []
    t = time.monotonic()
    for i in range(1000):
        try:
            socks.append(srv.connect())
        except OSError:
            break
    lat = latency(op)
    rss, thr = srv.status()
    fds = srv.fds()
    for s in socks:
        s.close()
    time.sleep(0.5)
    lat2 = latency(op)
    c = Client(srv)
    ok = c.hello and json.loads(c.hello)["ok"]
    report("conn1000", ok and len(socks) == 1000, "%d connections; during: rss=%d "
           "threads=%d fds=%d num-running %.1f ms; after: %.1f ms, new client "
           "ok=%s", len(socks), rss, thr, fds, lat, lat2, ok)
    srv.stop()


def a_json():
    srv = Server()
    bad = [b"{", b"[]", b"null", b'{"terminal_width":"x"}', b'{"format":1}',
           b'{"token":5}', b"{}junk", b"\xff\xfe", b"[" * 30000,
           b'{"a":' * 10000 + b"1" + b"}" * 10000, b"[" * 100000]
    answers = []
    for h in bad:
        s = srv.connect()
        s.settimeout(5)
        s.sendall(h + b"\n")
        f = s.makefile("rb")
        answers.append(f.readline()[:60])
        s.close()
    op = Client(srv)
    # 999-deep JSON through the helper threads (map is offloaded).
    deep = "[" * 998 + "1" + "]" * 998
    r1, _ = op.ask("map f [%s]" % deep)
    r2, _ = op.ask("apply f -a [%s]" % deep)
    r3, _ = op.ask("map f [%s]" % ("[" * 1100 + "]" * 1100))
    lat = latency(op)
    rss, thr = srv.status()
    ok = all(a.startswith(b"error:") for a in answers) and srv.alive()
    report("json", ok, "11 malformed handshakes (incl. 100,000-deep) all "
           "refused; 998-deep map ok=%s apply ok=%s, 1100-deep ok=%s; alive; "
           "rss=%d threads=%d %.1f ms", r1.get("ok"), r2.get("ok"), r3.get("ok"),
           rss, thr, lat)
    srv.stop()


def a_absurd():
    srv = Server()
    c = Client(srv)
    cmds = ["apply f -n -1", "apply f -n 99999999999999999999999",
            "apply f -n 1000001", "pool-size -5", "pool-size 1e30",
            "pool-size 18446744073709551616", "cancel " + " ".join(
                str(i) for i in range(10000)), "cancel -1", "stop 9223372036854775807",
            "start 9223372036854775807", "map f [] -n 0",
            "apply f -a " + "[" + ",".join(["1"] * 20000) + "]",
            "help " + "x" * 1000, "get-group-ids " + " ".join(
                "g%d" % i for i in range(5000)), "cancel-group " + "g" * 5000,
            "apply " + "f" * 300]
    worst = 0
    errs = 0
    for cmd in cmds:
        r, dt = c.ask(cmd)
        worst = max(worst, dt)
        errs += not r["ok"]
    op = Client(srv)
    lat = latency(op)
    rss, thr = srv.status()
    report("absurd", srv.alive() and worst < 1, "%d absurd commands, %d errors, "
           "slowest %.1f ms; rss=%d threads=%d", len(cmds), errs, worst * 1000,
           rss, thr)
    srv.stop()


def a_noread():
    srv = Server()
    op = Client(srv)
    cs = []
    for i in range(8):
        c = Client(srv)
        c.s.setblocking(False)
        sent = 0
        t = time.monotonic()
        while time.monotonic() - t < 2:
            try:
                sent += c.s.send(b"help\n-h\n" * 4096)
            except BlockingIOError:
                break
        cs.append((c, sent))
    lat = latency(op)
    rss, thr = srv.status()
    # Now read one of them fully and check every line was answered in order.
    c, sent = cs[0]
    c.s.setblocking(True)
    c.s.shutdown(socket.SHUT_WR)
    n = 0
    while True:
        l = c.f.readline()
        if not l:
            break
        n += 1
    expect = 2 * (sent // 8) + (sent % 8 >= 5)
    ok = rss < 40000 and srv.alive() and n == expect
    report("noread", ok, "8 clients pipelining help/-h, not reading: rss=%d "
           "threads=%d num-running %.1f ms; one half-closed then read: %d "
           "answers for %d lines", rss, thr, lat, n, expect)
    srv.stop()


def a_order():
    srv = Server()
    c = Client(srv)
    lines = []
    for i in range(3000):
        lines.append("help" if i % 3 == 0 else ("num-running" if i % 3 == 1
                                                  else "nonsense%d" % i))
    c.s.sendall(("\n".join(lines) + "\n").encode())
    c.s.shutdown(socket.SHUT_WR)
    bad = 0
    n = 0
    for i, l in enumerate(lines):
        r = c.f.readline()
        if not r:
            break
        n += 1
        r = json.loads(r)
        if i % 3 == 0:
            bad += not (r["ok"] and "usage" in r["result"])
        elif i % 3 == 1:
            bad += not (r["ok"] and r["result"] == 0)
        else:
            bad += r["ok"]
    tail = c.f.readline()
    report("order", n == 3000 and bad == 0 and tail == b"", "3000 pipelined "
           "lines then FIN: %d answers, %d out of order/wrong, closed=%s", n, bad,
           tail == b"")
    srv.stop()


def a_vanish():
    srv = Server()
    op = Client(srv)
    base_fds = srv.fds()
    import struct
    for i in range(300):
        c = Client(srv)
        c.s.sendall(b"apply f -n 1" if i % 3 else b"help")
        if i % 2:
            c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                           struct.pack("ii", 1, 0))  # RST
        c.close()
    time.sleep(0.5)
    lat = latency(op)
    rss, thr = srv.status()
    fds = srv.fds()
    report("vanish", fds <= base_fds and srv.alive(), "300 clients gone "
           "mid-line (half RST): fds %d -> %d, rss=%d threads=%d %.1f ms",
           base_fds, fds, rss, thr, lat)
    srv.stop()


def a_unix():
    d = tempfile.mkdtemp(prefix="a4u")
    path = d + "/ctl.sock"
    srv = Server(unix=path)
    mode = oct(os.stat(path).st_mode & 0o777)
    c = Client(srv)
    ok1 = json.loads(c.hello)["ok"]
    # A second server on the live socket must refuse.
    p2 = subprocess.run([SERVER, "unix", path, "limit=1"], capture_output=True)
    c.close()
    srv.stop()
    gone = not os.path.exists(path)
    # Stale socket file: bind one, leave it.
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    srv = Server(unix=path)
    c = Client(srv)
    ok2 = json.loads(c.hello)["ok"]
    c.close()
    srv.stop()
    # A regular file is not replaced.
    open(path, "w").write("keep")
    p3 = subprocess.run([SERVER, "unix", path, "limit=1"], capture_output=True)
    kept = open(path).read() == "keep"
    os.unlink(path)
    os.rmdir(d)
    ok = mode == "0o600" and ok1 and p2.returncode != 0 and gone and ok2 and \
        p3.returncode != 0 and kept
    report("unix", ok, "mode %s; live socket -> rc %d; removed on stop=%s; "
           "stale replaced=%s; regular file -> rc %d, kept=%s", mode,
           p2.returncode, gone, ok2, p3.returncode, kept)


def a_fin_until_closed():
    srv = Server()
    op = Client(srv)
    _, thr0 = srv.status()
    worst = 0
    refused = 0
    peak = 0
    for i in range(200):
        c = Client(srv)
        if not c.hello.startswith(b'{"ok":true'):
            refused += 1  # places still held by jobs noticing the FIN
            c.close()
            continue
        c.s.sendall(b"until-closed\n")
        if i % 20 == 0:
            worst = max(worst, latency(op))
            peak = max(peak, srv.helpers())
        c.s.shutdown(socket.SHUT_WR) if i % 2 else None
        c.close()
    t = time.monotonic()
    while srv.helpers() > 4 and time.monotonic() - t < 5:
        time.sleep(0.05)
    rss, thr = srv.status()
    c = Client(srv)
    ok_new = json.loads(c.hello)["ok"]
    srv.stop()
    srv = Server("max_clients=2")
    op = Client(srv)
    _, t0 = srv.status()
    c = Client(srv)
    c.s.sendall(b"until-closed\n")
    time.sleep(0.2)
    _, t1 = srv.status()
    c.close()
    time.sleep(0.3)
    _, t2 = srv.status()
    c = Client(srv)
    ok2 = json.loads(c.hello)["ok"]
    report("fin-until", ok_new and ok2 and thr <= thr0 + 4 and t2 <= t1,
           "200 FIN/close during until-closed (%d refused at handshake, helpers "
           "peak %d): threads %d -> %d, new client ok=%s, num-running max "
           "%.1f ms; max_clients=2: threads %d/%d/%d, next client ok=%s",
           refused, peak, thr0, thr, ok_new, worst, t0, t1, t2, ok2)
    srv.stop()


def a_huge_n():
    srv = Server()
    c = Client(srv)
    op = Client(srv)
    r0, _ = c.ask("pool-size 0")
    r1, dt1 = c.ask("apply f -n 9223372036854775807")
    r2, dt2 = c.ask("apply f -n 1000000")
    t = time.monotonic()
    c.s.sendall(b"cancel-all\n")
    lat = latency(op)
    r3 = json.loads(c.f.readline())
    dt3 = time.monotonic() - t
    rc = srv.stop()
    report("huge-n", (not r1["ok"]) and r3["ok"] and rc == 0, "apply -n 2^63-1 "
           "-> %s (%.1f ms); -n 1e6 ok=%s (%.1f ms); cancel-all %.1f ms, "
           "concurrent num-running %.1f ms; SIGTERM rc=%s", r1.get("error"),
           dt1 * 1000, r2["ok"], dt2 * 1000, dt3 * 1000, lat, rc)


def a_trickle():
    srv = Server("token=sesame", "idle=2")
    socks = []
    for i in range(64):
        try:
            s = srv.connect()
            s.setblocking(False)
            socks.append(s)
        except OSError:
            break
    t = time.monotonic()
    got = []
    while time.monotonic() - t < 8:
        for s in socks:
            try:
                s.send(b'{')
            except OSError:
                pass
        c = Client(srv, token="sesame")
        r = json.loads(c.hello) if c.hello else {"ok": False}
        got.append(r["ok"])
        c.close()
        time.sleep(1)
    rss, thr = srv.status()
    report("trickle", all(got), "64 trickling handshakes + operator each "
           "second for 8 s: operator admitted %d/%d; rss=%d threads=%d",
           sum(got), len(got), rss, thr)
    for s in socks:
        s.close()
    srv.stop()


def a_longpath():
    d = "/tmp/" + "d" * 92
    p = subprocess.run([SERVER, "unix", d + "/s", "limit=1"], capture_output=True)
    p91 = subprocess.run([SERVER, "unix", "/tmp/" + "e" * 86 + "/s", "limit=1"],
                         capture_output=True)
    report("longpath", p.returncode != 0 and b"new" not in p.stdout,
           "dir of 97 bytes -> rc %d (%s)", p.returncode,
           p.stderr.decode().strip()[:60])


def a_port():
    p = subprocess.run([SERVER, "tcp", "127.0.0.1", "99999", "limit=1"],
                       capture_output=True)
    report("port99999", p.returncode != 0, "rc %d (%s)", p.returncode,
           p.stderr.decode().strip()[:60])


def a_tokens():
    srv = Server("token=sesame")
    op = Client(srv, token="sesame")
    import selectors
    sel = selectors.DefaultSelector()
    t = time.monotonic()
    done = 0
    started = 0
    live = 0
    wrong = 0
    while done < 2000 and time.monotonic() - t < 25:
        while live < 32 and started < 2000:
            s = srv.connect()
            s.sendall(json.dumps({"token": "guess%d" % started}).encode() + b"\n")
            sel.register(s, selectors.EVENT_READ)
            started += 1
            live += 1
        for key, _ in sel.select(1):
            s = key.fileobj
            data = s.recv(200)
            if b"wrong token" in data:
                wrong += 1
            sel.unregister(s)
            s.close()
            live -= 1
            done += 1
    dt = time.monotonic() - t
    lat = latency(op)
    rss, thr = srv.status()
    rate = done / dt
    # Each refused connection waits 0.5 s, and at most 4 x max_handshakes
    # (64) wait at once: 32 connections guess at most 64 times a second.
    report("tokens", rate < 1.1 * min(32, 64) / 0.5 and srv.alive(),
           "%d wrong-token attempts in "
           "%.1f s (%.1f/s, %d said 'wrong token'); operator num-running %.1f "
           "ms; rss=%d threads=%d", done, dt, rate, wrong, lat, rss, thr)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    srv.stop()


def a_helpers():
    """More sessions than idle helpers run blocking commands at once, in
    rounds; helper threads (tp-ctl-job) must stay at most the number of
    busy sessions and come back to at most four idle."""
    srv = Server()
    op = Client(srv)
    peaks, afters, lats = [], [], []
    for rnd in range(5):
        cs = [Client(srv) for _ in range(20)]
        for c in cs:
            c.s.sendall(b"until-closed\n")
        t = time.monotonic()
        while srv.helpers() < 20 and time.monotonic() - t < 5:
            time.sleep(0.05)
        peaks.append(srv.helpers())
        lats.append(latency(op))
        for i, c in enumerate(cs):
            if i % 2:
                c.s.shutdown(socket.SHUT_WR)  # FIN: reply still written
            else:
                c.close()
        got = 0
        for i, c in enumerate(cs):
            if i % 2:
                got += bool(c.f.readline())
                c.close()
        t = time.monotonic()
        while srv.helpers() > 4 and time.monotonic() - t < 5:
            time.sleep(0.05)
        afters.append(srv.helpers())
    ok = peaks == [20] * 5 and max(afters) <= 4 and got == 10
    report("helpers", ok, "5 rounds of 20 concurrent until-closed, then "
           "FIN/close: helpers peak %s, after %s (FIN'd replies %d/10); "
           "num-running during max %.1f ms; threads now %s", peaks, afters,
           got, max(lats), srv.names())
    srv.stop()


def a_tokenflood():
    """Wrong-token clients that reconnect as soon as they are refused: how
    long does an operator with the right token wait to get in? (Refused
    connections used to hold handshake places during their delay: 6 s.)"""
    srv = Server("token=sesame")
    import selectors
    sel = selectors.DefaultSelector()
    live = 0
    CONC = int(os.environ.get("FLOOD", "200"))

    def top_up():
        nonlocal live
        while live < CONC:
            s = srv.connect()
            s.setblocking(False)
            try:
                s.send(b'{"token":"guess"}\n')
            except OSError:
                pass
            sel.register(s, selectors.EVENT_READ)
            live += 1

    def pump(secs):
        nonlocal live
        end = time.monotonic() + secs
        while time.monotonic() < end:
            top_up()
            for key, _ in sel.select(0.05):
                try:
                    key.fileobj.recv(200)
                except OSError:
                    pass
                sel.unregister(key.fileobj)
                key.fileobj.close()
                live -= 1
    pump(2)
    waits = []
    for k in range(3):
        t = time.monotonic()
        op = srv.connect()
        op.setblocking(False)
        op.send(b'{"token":"sesame","format":"json"}\n')
        got = b""
        while time.monotonic() - t < 15 and b"\n" not in got:
            pump(0.05)
            try:
                got += op.recv(200)
            except BlockingIOError:
                pass
            except OSError:
                break
        waits.append((time.monotonic() - t, got[:40]))
        op.close()
    rss, thr = srv.status()
    ok = all(g.startswith(b'{"ok":true') and w < 5 for w, g in waits)
    report("tokenflood", ok, "%d wrong-token clients reconnecting: operator "
           "waits %s; rss=%d threads=%d", CONC,
           ["%.2f s %s" % (w, g) for w, g in waits], rss, thr)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    srv.stop()


PROBE = """
import json, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
s.sendall(b'{"format":"json"}\\n')
f.readline()
t0 = time.monotonic()
while time.monotonic() - t0 < 8:
    t = time.monotonic()
    s.sendall(b"num-running\\n")
    f.readline()
    print("%.3f" % ((time.monotonic() - t) * 1000))
    time.sleep(0.02)
"""


def a_pipeflood():
    """Two clients pipeline `help`/-h lines as fast as they can and read at
    full speed: the latency of another client's num-running (the control
    thread answers a whole read's lines, up to max_line bytes, at once)."""
    import threading
    srv = Server()
    op = Client(srv)
    stop = []
    counts = []
    BIG = os.environ.get("PIPEFLOOD_BIG") == "1"

    def flood(line):
        c = Client(srv)
        # A small send buffer bounds what waits in the kernel (each 3-byte
        # "-h" asks for 2.3 KB), so the answers drain soon after the stop.
        # PIPEFLOOD_BIG=1: the kernel's own buffers (megabytes of lines
        # waiting, so that each read of the server fills max_line), and a
        # reset at the end instead of reading every answer.
        if not BIG:
            c.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        blob = line * (65536 // len(line))

        def rd():
            n = 0
            while True:
                try:
                    d = c.s.recv(1 << 20)
                except OSError:
                    break  # reset (PIPEFLOOD_BIG)
                if not d:
                    break
                n += d.count(b"\n")
            counts.append(n)
        r = threading.Thread(target=rd, daemon=True)
        r.start()
        sent = 0
        while not stop:
            c.s.sendall(blob)
            sent += blob.count(b"\n")
        if BIG:
            import struct
            c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                           struct.pack("ii", 1, 0))
            c.s.close()
            return
        c.s.shutdown(socket.SHUT_WR)
        r.join()
        counts.append(-sent)
    kinds = os.environ.get("PIPEFLOOD_LINES", "-h,help").split(",")
    ts = [threading.Thread(target=flood, args=(l.encode() + b"\n",),
                           daemon=True) for l in kinds]
    for t in ts:
        t.start()
    time.sleep(0.5)
    # The operator runs in its own process, so that this one's GIL does
    # not add to its latency.
    probe = subprocess.run([sys.executable, "-c", PROBE, str(srv.port)],
                           capture_output=True, timeout=30)
    lats = [float(x) for x in probe.stdout.split()]
    stop.append(1)
    for t in ts:
        t.join(30)
    rss, thr = srv.status()
    lats.sort()
    answered = sum(c for c in counts if c > 0)
    sent = -sum(c for c in counts if c < 0)
    report("pipeflood", (BIG or answered == sent) and lats[-1] < 100, "2 clients "
           "flooding -h/help for 8 s: %d lines sent, %d answered; concurrent "
           "num-running median %.1f ms, p99 %.1f ms, max %.1f ms (%d samples); "
           "rss=%d", sent, answered, lats[len(lats) // 2],
           lats[len(lats) * 99 // 100], lats[-1], len(lats), rss)
    srv.stop()


ATTACKS = {n[2:]: f for n, f in list(globals().items()) if n.startswith("a_")}

if __name__ == "__main__":
    names = sys.argv[1:] or list(ATTACKS)
    for n in names:
        try:
            ATTACKS[n]()
        except Exception as e:  # an attack that crashes is a failure
            import traceback; traceback.print_exc()
            report(n, False, "exception %r", e)
    sys.exit(0 if all(results) else 1)
