#!/usr/bin/env bash
# The supervisor's own memory stays fixed, and its probes stay fast, while
# the program sits at its memory limit and clients hammer every endpoint.
# Prints the figures docs/supervisor.md quotes; asserts only the memory
# bound (no timing assertions). MF_MEASURE_ROUNDS scales the run (default
# 300 rounds of scopes and requests; the documented figures used 20000).
. "$(dirname "$0")/../lib.sh"

[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
mf_need_cgroup measure $((256 << 20))
ROUNDS=${MF_MEASURE_ROUNDS:-300}
PORT=$(mf_free_port)
cat >"$MF_TMP/atlimit.py" <<'PY'
import ctypes, os, sys
lib = ctypes.CDLL(None)
d = sys.argv[1]
hog, i = [], 0
while not os.path.exists(d + "/done"):
    i += 1
    # Many names and ids over time: the supervisor's tables must not grow.
    lib.memfence_scope_begin(b"req-%d" % (i % 50), b"id-%d" % i, ctypes.c_size_t(0))
    try:
        hog.append(b"\x01" * (1 << 20))
    except MemoryError:
        if not os.path.exists(d + "/full"):
            open(d + "/full", "w").close()
        del hog[:4]                        # stay at the limit, churning
    lib.memfence_scope_end(None)
PY
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --reserve 16M \
	--report-dir "$MF_TMP/r" -- $PY "$MF_TMP/atlimit.py" "$MF_TMP" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 200); do [ -f "$MF_TMP/full" ] && break; sleep 0.1; done
[ -f "$MF_TMP/full" ] || fail "the program did not reach its limit: $(cat "$MF_TMP/err")"
sup=$(pgrep -f "memfence run --http 127.0.0.1:$PORT" | head -n1)
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$sup/status"; }

# Warm every endpoint once: the first connection loads the HTTP library.
for path in livez readyz metrics status; do
	curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$PORT/$path"
done
rss0=$(rss)
$PY - "$PORT" "$ROUNDS" <<'PY' >"$MF_TMP/lat" || fail "load client"
import sys, time, urllib.error, urllib.request
port, rounds = int(sys.argv[1]), int(sys.argv[2])
def get(path):
    # At its limit the program is soon not ready (and later not live):
    # 503 is an answer too.
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        assert e.code == 503, (path, e.code)
        return e.code
lat, codes = [], {}
for r in range(rounds):
    for path in ("/metrics", "/status", "/readyz"):
        get(path)
    t = time.perf_counter()
    c = get("/livez")
    lat.append(time.perf_counter() - t)
    codes[c] = codes.get(c, 0) + 1
lat.sort()
print("livez p50 %.2f ms p99 %.2f ms max %.2f ms over %d probes" % (
    1e3 * lat[len(lat) // 2], 1e3 * lat[int(len(lat) * 0.99) - 1 if len(lat) >= 100 else -1],
    1e3 * lat[-1], len(lat)), "answers:", codes)
PY
rss1=$(rss)
usage=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/status" | $PY -c 'import json,sys; m=json.load(sys.stdin)["memory"]; print("%d MiB of %d MiB" % (m["working_set"] >> 20, m["limit"] >> 20))')
ended=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" | awk '/^memfence_scopes_ended_total/ { print $2 }')
touch "$MF_TMP/done"
kill -TERM "$SUP"; wait "$SUP"
echo "supervisor RSS ${rss0} KiB after warm-up, ${rss1} KiB after $ROUNDS rounds of 4 requests; $ended scopes ended; working set $usage"
cat "$MF_TMP/lat"
# Fixed memory: nothing proportional to requests or scopes.
[ $((rss1 - rss0)) -le 1024 ] || fail "supervisor RSS grew by $((rss1 - rss0)) KiB"
