#!/usr/bin/env bash
# The supervisor's HTTP side under malformed, oversized and slow
# (slowloris) requests: each gets an error status or is dropped, and /livez
# keeps answering from the same process.
. "$(dirname "$0")/../lib.sh"

PORT=$(mf_free_port)
"$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account --report-dir "$MF_TMP/r" -- sleep 120 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do curl -s --max-time 1 "http://127.0.0.1:$PORT/livez" >/dev/null && break; sleep 0.1; done

$PY - "$PORT" <<'PY' || fail "HTTP abuse checks"
import socket, sys, time, urllib.request
port = int(sys.argv[1])

def raw(data, src="127.0.0.1", wait=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait, source_address=(src, 0))
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()

def status(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.") else None

def livez():
    # "Fast" means within the client's timeout while the abuse goes on.
    with urllib.request.urlopen("http://127.0.0.1:%d/livez" % port, timeout=2) as r:
        assert r.status == 200, r.status

# Malformed request line, bad version, non-HTTP bytes.
for req in (b"GARBAGE\r\n\r\n", b"GET /livez HTTP/9.9\r\n\r\n", b"\x00\x01\x02\xff\r\n\r\n",
            b"GET /livez\r\nHost: x\r\n\r\n"):
    st = status(raw(req))
    assert st is None or st in (400, 505), (req, st)
    livez()
# Oversized headers: 431 (or 413/414), never a crash.
st = status(raw(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n"))
assert st in (None, 413, 414, 431), st
st = status(raw(b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
assert st in (None, 413, 414, 431), st
livez()
# A huge body announced: refused before it is read.
st = status(raw(b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n" + b"a" * 1000))
assert st in (None, 405, 413), st
livez()

# Slowloris: many connections trickling headers, from another loopback
# address (as from another pod) and from the prober's own address.
slow = []
for src, n in (("127.0.0.2", 80), ("127.0.0.1", 8)):
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(src, 0))
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        except OSError:
            pass            # refused or reset: the limit at work
for rnd in range(4):
    for s in slow:
        try:
            s.sendall(b"X-a: b\r\n")
        except OSError:
            pass
    for k in range(5):
        livez()
    time.sleep(0.3)
# Every endpoint still answers.
for path in ("/readyz", "/metrics", "/status"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
        assert r.status == 200, (path, r.status)
for s in slow:
    s.close()
print("abuse handled")
PY
kill -0 "$SUP" || fail "memfence died"
kill -TERM "$SUP"; wait "$SUP"
expect_eq "status" 143 $?
echo ok
