#!/usr/bin/env bash
# No stuck state, pre-fork: a gunicorn sync server with 2 workers, without
# scopes (--no-auto-python; --ready-tcp for serving), one of which leaks
# fast (the first to serve a request keeps 2 MiB of each of its requests;
# its pid in a file), in a real 512 MiB memory cgroup, under `memfence run
# --restart always --reserve 256M --container-check off` (each process's
# budget, 256 MiB, is then what stops the leak, not the container's check,
# which in a pre-fork server counts the other processes too), behind a
# client that calls about 10 times a second, only while /readyz answers 200. The leaking worker reaches its budget before any leak
# forecast (which needs a minute of history), readiness fails, the client
# stops, the heap stops growing:
#   - only that worker is recycled, for being stuck (SIGTERM to it;
#     gunicorn's arbiter starts a new one): the arbiter is the same process,
#     the program was never restarted, /readyz is ready again after;
#   - no call sent while ready failed, no allocation refused, no OOM kill.
# Two runs in a row, both must pass.
. "$(dirname "$0")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
$PY -c 'import gunicorn' 2>/dev/null || skip "gunicorn is not installed"

cat >"$MF_TMP/client.py" <<'PY'
"""About 10 calls a second, each only when /readyz answered 200 just
before, until the file stop exists or 90 s passed. Print JSON."""
import json, os, sys, threading, time, urllib.request, urllib.error
port, sup, stop = sys.argv[1], sys.argv[2], sys.argv[3]
out = {"ok": 0, "failed": [], "pids": {}, "unready_polls": 0}
lock = threading.Lock()
end = time.monotonic() + 90

def ready():
    try:
        with urllib.request.urlopen("http://%s/readyz" % sup, timeout=5) as r:
            return r.status == 200
    except Exception:
        return False

def worker():
    while time.monotonic() < end and not os.path.exists(stop):
        t0 = time.monotonic()
        if not ready():
            with lock:
                out["unready_polls"] += 1
        else:
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

worker()
out["failed"] = out["failed"][:10]
print(json.dumps(out))
PY

metric() { mf_metric "127.0.0.1:$HP" "$1"; }

one_run() {
	local run=$1 port sup prog i leaker out failures
	mf_need_cgroup "stuckgunicorn$run" $((512 << 20))
	port=$(mf_free_port)
	HP=$(mf_free_port)
	rm -f "$MF_TMP/leaker" "$MF_TMP/stop"
	LEAK_MIB=2 LEAKER_FILE=$MF_TMP/leaker mf_cgroup_spawn "$MF_CG" env -u PYTHONPATH "$MEMFENCE" run \
		--http "127.0.0.1:$HP" --report-dir "$MF_TMP/r$run" --restart always \
		--no-auto-python --ready-tcp "$port" --reserve 256M --container-check off \
		-- "$PY" -m gunicorn -w 2 --chdir "$MF_ROOT_DIR/tests/integration" -b "127.0.0.1:$port" leaky_wsgi:app \
		2>"$MF_TMP/err$run"
	sup=$MF_SPAWNED
	for i in $(seq 1 150); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HP/readyz")" = 200 ] && break
		sleep 0.2
	done
	prog=$(pgrep -P "$sup" | head -n1)
	"$PY" "$MF_TMP/client.py" "$port" "127.0.0.1:$HP" "$MF_TMP/stop" >"$MF_TMP/out$run" &
	local client=$!
	MF_PIDS+=("$client")
	for i in $(seq 1 100); do [ -s "$MF_TMP/leaker" ] && break; sleep 0.1; done
	[ -s "$MF_TMP/leaker" ] || fail "run $run: no worker took the leak"
	leaker=$(cat "$MF_TMP/leaker")
	mf_wait_gone "$leaker" 750
	# Served on for 5 s more by the new worker and the other one.
	sleep 5
	touch "$MF_TMP/stop"
	wait "$client"
	out=$(cat "$MF_TMP/out$run")
	echo "run $run: leaker $leaker: $out"
	grep -q "memfence: recycling process $leaker (stuck: not ready for" "$MF_TMP/err$run" ||
		fail "run $run: the stuck worker $leaker was not recycled: $(cat "$MF_TMP/err$run")"
	[ "$(metric 'memfence_recycles_total{reason="stuck"}')" -ge 1 ] || fail "run $run: recycles not counted"
	expect_eq "run $run: the program restarted" 0 "$(metric memfence_restarts_total)"
	expect_eq "run $run: the arbiter" "$prog" "$(pgrep -P "$sup" | head -n1)"
	expect_eq "run $run: workers after" 2 "$(pgrep -P "$prog" | wc -l)"
	expect_eq "run $run: /readyz after" 200 \
		"$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HP/readyz")"
	"$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if not d["failed"] and d["ok"] > 50 else 1)' "$out" ||
		fail "run $run: calls failed or too few: $out"
	failures=$(mf_metric_sum "127.0.0.1:$HP" memfence_allocation_failures_total)
	expect_eq "run $run: allocations refused" 0 "$failures"
	expect_eq "run $run: OOM kills" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
	mf_cgroup_stop "$sup" "$MF_CG"
}

for run in ${MF_RUNS:-1 2}; do one_run "$run"; done
echo "ok"
