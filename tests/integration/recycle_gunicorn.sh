#!/usr/bin/env bash
# A gunicorn sync server with 2 workers, one of which leaks (the first to
# serve a request keeps 1 MiB of each of its requests; its pid in a file),
# in a real 384 MiB memory cgroup, under `memfence run --restart always`. A
# client calls it about 20 times a second:
#   - only the leaking worker is recycled (SIGTERM to it; gunicorn's arbiter
#     starts a new one): the arbiter and the other worker are the same
#     processes, the program was never restarted, /readyz is ready after;
#   - no call failed, no allocation refused, no OOM kill;
#   - /metrics counts the recycle (reason "leak"), the log names the worker.
# Three runs in a row, all must pass.
. "$(dirname "$0")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
$PY -c 'import gunicorn' 2>/dev/null || skip "gunicorn is not installed"

cat >"$MF_TMP/client.py" <<'PY'
"""About 20 calls a second, two at a time, until the file stop exists or
50 s passed. Print one JSON line."""
import json, os, sys, threading, time, urllib.request
port, stop = sys.argv[1], sys.argv[2]
out = {"ok": 0, "failed": [], "pids": {}}
lock = threading.Lock()
end = time.monotonic() + 50

def worker():
    while time.monotonic() < end and not os.path.exists(stop):
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen("http://127.0.0.1:%s/" % port, timeout=10) as r:
                pid = r.read().split()[0].decode()
            with lock:
                out["ok"] += 1
                out["pids"][pid] = out["pids"].get(pid, 0) + 1
        except Exception as e:
            with lock:
                out["failed"].append("%s: %s" % (type(e).__name__, e))
        time.sleep(max(0, 0.1 - (time.monotonic() - t0)))

ts = [threading.Thread(target=worker) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
out["failed"] = out["failed"][:10]
print(json.dumps(out))
PY

metric() { mf_metric "127.0.0.1:$HP" "$1"; }

one_run() {
	local run=$1 port sup prog i leaker others out failures workers
	mf_need_cgroup "gunicorn$run" $((384 << 20))
	port=$(mf_free_port)
	HP=$(mf_free_port)
	rm -f "$MF_TMP/leaker" "$MF_TMP/stop"
	LEAKER_FILE=$MF_TMP/leaker mf_cgroup_spawn "$MF_CG" env -u PYTHONPATH "$MEMFENCE" run \
		--http "127.0.0.1:$HP" --report-dir "$MF_TMP/r$run" --restart always --model-window 1s \
		-- "$PY" -m gunicorn -w 2 --chdir "$MF_ROOT_DIR/tests/integration" -b "127.0.0.1:$port" leaky_wsgi:app \
		2>"$MF_TMP/err$run"
	sup=$MF_SPAWNED
	for i in $(seq 1 150); do
		curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/" && break
		sleep 0.2
	done
	prog=$(pgrep -P "$sup" | head -n1)
	for i in $(seq 1 100); do [ "$(pgrep -P "$prog" | wc -l)" -ge 2 ] && break; sleep 0.1; done
	[ -s "$MF_TMP/leaker" ] || fail "run $run: no worker took the leak"
	leaker=$(cat "$MF_TMP/leaker")
	others=$(pgrep -P "$prog" | grep -vx "$leaker" | sort | tr '\n' ' ')
	[ -n "$others" ] || fail "run $run: only one worker"
	"$PY" "$MF_TMP/client.py" "$port" "$MF_TMP/stop" >"$MF_TMP/out$run" &
	local client=$!
	MF_PIDS+=("$client")
	mf_wait_gone "$leaker" 450
	# Served on for 3 s more by the new worker and the other one.
	sleep 3
	touch "$MF_TMP/stop"
	wait "$client"
	out=$(cat "$MF_TMP/out$run")
	echo "run $run: leaker $leaker, others $others: $out"
	grep -q "memfence: recycling process $leaker (leak: heap floor" "$MF_TMP/err$run" ||
		fail "run $run: the leaking worker $leaker was not recycled: $(cat "$MF_TMP/err$run")"
	[ "$(metric 'memfence_recycles_total{reason="leak"}')" -ge 1 ] || fail "run $run: recycles not counted"
	expect_eq "run $run: the program restarted" 0 "$(metric memfence_restarts_total)"
	expect_eq "run $run: the arbiter" "$prog" "$(pgrep -P "$sup" | head -n1)"
	for i in $others; do kill -0 "$i" 2>/dev/null || fail "run $run: the other worker $i is gone"; done
	workers=$(pgrep -P "$prog" | wc -l)
	expect_eq "run $run: workers after" 2 "$workers"
	! grep -q "not ready" <(curl -s "http://127.0.0.1:$HP/readyz") || fail "run $run: not ready"
	"$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if not d["failed"] and d["ok"] > 50 else 1)' "$out" ||
		fail "run $run: calls failed or too few: $out"
	failures=$(mf_metric_sum "127.0.0.1:$HP" memfence_allocation_failures_total)
	expect_eq "run $run: allocations refused" 0 "$failures"
	expect_eq "run $run: OOM kills" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
	kill -TERM "$sup"
	wait "$sup"
}

for run in ${MF_RUNS:-1 2 3}; do one_run "$run"; done
echo "ok"
