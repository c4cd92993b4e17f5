"""Hostile clients against memfence run's HTTP server, and /livez probes
among them (tests/integration/failure_probes.sh; docs/failure.md).

    failure_probes.py PORT ATTACK SECONDS

ATTACK is one of:
  none     nobody else
  idle     16 connections from the prober's own address (127.0.0.1) that
           send nothing
  trickle  64 connections from 127.0.0.2 to 127.0.0.5 (16 each) that send a
           request line, then one header line every 3 s, never ending it
  limit    the trickle attack, then 16 more connections from 127.0.0.6 that
           stay idle: a connection past the limit must be answered or
           refused at once, never left hanging

While the attack holds, /livez is probed from 127.0.0.1 every 100 ms on a
new connection each time (as the kubelet does). Prints one JSON line:
probes, answered (200), refused (reset or closed at once), slow (no answer
within 1 s), and p50/p99/max of the answered probes in ms.
"""
import json
import select
import socket
import sys
import threading
import time

port, attack, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
stop = threading.Event()
socks = []


def connect(src, timeout=2.0):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


reconnects = [0]


def opened(src, trickle):
    try:
        s = connect(src)
        if trickle:
            s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
        return s
    except OSError:
        return None


def hold(src, n, trickle):
    """Keep n connections from src open, opening a new one for each that the
    server closes (an attacker does), trickling a header line every 3 s."""
    mine = [opened(src, trickle) for _ in range(n)]
    socks.extend(s for s in mine if s)
    k, next_line = 0, time.monotonic() + 3.0
    while not stop.wait(0.1):
        line = trickle and time.monotonic() >= next_line
        if line:
            k += 1
            next_line += 3.0
        for i, s in enumerate(mine):
            gone = s is None
            if not gone:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    try:
                        gone = s.recv(4096) == b""
                    except OSError:
                        gone = True
            if not gone and line:
                try:
                    s.sendall(b"X-Slow-%d: %d\r\n" % (k, k))
                except OSError:
                    gone = True
            if gone and not stop.is_set():
                if s:
                    s.close()
                mine[i] = opened(src, trickle)
                reconnects[0] += 1
                if mine[i]:
                    socks.append(mine[i])


def probe():
    t0 = time.monotonic()
    try:
        s = connect("127.0.0.1", timeout=1.0)
        s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = s.recv(4096)
        s.close()
    except socket.timeout:
        return "slow", None
    except OSError:
        return "refused", None
    if not data:
        return "refused", None
    ms = (time.monotonic() - t0) * 1000.0
    return ("answered" if data.startswith(b"HTTP/1.1 200") else "other"), ms


threads = []
if attack == "none":
    pass
elif attack == "idle":
    threads.append(threading.Thread(target=hold, args=("127.0.0.1", 16, False)))
elif attack in ("trickle", "limit"):
    for a in range(2, 6):
        threads.append(threading.Thread(target=hold, args=("127.0.0.%d" % a, 16, True)))
else:
    sys.exit("unknown attack " + attack)
for t in threads:
    t.daemon = True
    t.start()
time.sleep(1.0)
extra = {"beyond": None}
if attack == "limit":
    # Past the limit: answered or refused within 1 s, not hanging.
    t0 = time.monotonic()
    hung = refused = answered = 0
    for i in range(16):
        try:
            s = connect("127.0.0.6", timeout=1.0)
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            d = s.recv(4096)
            if d:
                answered += 1
            else:
                refused += 1
            s.close()
        except socket.timeout:
            hung += 1
        except OSError:
            refused += 1
    extra["beyond"] = {"answered": answered, "refused": refused, "hung": hung}

counts = {"answered": 0, "refused": 0, "slow": 0, "other": 0}
lat = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    what, ms = probe()
    counts[what] += 1
    if ms is not None:
        lat.append(ms)
    time.sleep(0.1)
stop.set()
for s in socks:
    s.close()
lat.sort()


def pct(p):
    return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None


out = dict(attack=attack, probes=sum(counts.values()), **counts,
           p50_ms=pct(0.5), p99_ms=pct(0.99), max_ms=round(lat[-1], 2) if lat else None,
           reconnects=reconnects[0], **extra)
print(json.dumps(out))
