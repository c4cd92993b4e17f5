#!/usr/bin/env bash
# Liveness fails under a burst of scopes that end with a refused allocation
# (here: over their budget), and recovers when the window has passed; the
# refusals are counted in /metrics by cause.
. "$(dirname "$0")/../lib.sh"

[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
PORT=$(mf_free_port)
U=http://127.0.0.1:$PORT
cat >"$MF_TMP/burst.py" <<'PY'
import ctypes, os, sys, time
lib = ctypes.CDLL(None)
assert lib.memfence_active() == 1
d = sys.argv[1]
def request(i, size, budget):
    lib.memfence_scope_begin(b"POST /jobs", b"w-%d" % i, ctypes.c_size_t(budget))
    try:
        x = b"\x01" * size
    except MemoryError:
        pass
    lib.memfence_scope_end(None)
for i in range(5):
    request(i, 64 << 10, 0)
open(d + "/phase1", "w").close()
while not os.path.exists(d + "/burst"):
    time.sleep(0.05)
for i in range(20):            # every one over its 1 MiB budget
    request(100 + i, 8 << 20, 1 << 20)
open(d + "/phase2", "w").close()
while not os.path.exists(d + "/calm"):
    time.sleep(0.05)
for i in range(20):
    request(200 + i, 64 << 10, 1 << 20)
open(d + "/phase3", "w").close()
while True:
    time.sleep(1)
PY
"$MEMFENCE" run --http "127.0.0.1:$PORT" --fail-ratio 50% --fail-min 10 --fail-window 2s \
	--report-dir "$MF_TMP/r" -- $PY "$MF_TMP/burst.py" "$MF_TMP" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
waitfile() { for i in $(seq 100); do [ -f "$1" ] && return 0; sleep 0.1; done; fail "no $1: $(cat "$MF_TMP/err")"; }
code() { curl -s -o "$MF_TMP/body" -w '%{http_code}' --max-time 2 "$U/$1"; }
wait_code() {
	for i in $(seq 100); do [ "$(code "$1")" = "$2" ] && return 0; sleep 0.1; done
	fail "/$1 did not answer $2 (last: $(code "$1") $(cat "$MF_TMP/body"))"
}
waitfile "$MF_TMP/phase1"
wait_code livez 200
touch "$MF_TMP/burst"
waitfile "$MF_TMP/phase2"
wait_code livez 503
expect_match "reason" "not live: 2[0-9] of 2[0-9] scopes failed on allocation" "$(cat "$MF_TMP/body")"
m=$(curl -s --max-time 2 "$U/metrics")
expect_match "budget refusals" 'cause="budget"\} (2[0-9])$' "$(echo "$m" | grep 'failures_total{cause="budget"}')"
expect_match "failed scopes counted" 'memfence_scope_allocated_bytes_count\{name="POST /jobs"\} 25' "$m"
# Healthy requests after the window: live again.
touch "$MF_TMP/calm"
waitfile "$MF_TMP/phase3"
wait_code livez 200
kill -TERM "$SUP"; wait "$SUP"
echo ok
