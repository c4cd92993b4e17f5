#!/usr/bin/env bash
# The example HTTP model server (a plain WSGI/ASGI app, no memfence code) on
# Debian's gunicorn and uvicorn, in a real 512 MiB memory cgroup, under
# `memfence run` with no code change: the bootstrap wraps the app gunicorn
# or uvicorn loads. 200 calls at concurrency 16 (5-40 MiB of mixed Python
# objects each, five of 3000 MiB): no process killed (no OOM kill, the same
# server processes before and after), every oversized call 503 with
# Retry-After, no ordinary call failed, and each route's figures in
# `memfence stat` and /metrics.
#
# Sourced by python_http_{gunicorn_sync,gunicorn_gthread,gunicorn_uvicorn,
# uvicorn,uvicorn_workers}.sh, each of which calls run_server KIND [account]:
#   gunicorn-sync      4 sync workers
#   gunicorn-gthread   2 gthread workers x 8 threads (account: 1 x 8)
#   gunicorn-uvicorn   2 uvicorn.workers.UvicornWorker
#   uvicorn            uvicorn alone, one process
#   uvicorn-workers    uvicorn --workers 2
# "account": memfence exec --account and the middleware added in code
# (http_server:wsgi_with_middleware / asgi_with_middleware), no supervisor.
# Under `memfence run` the requests wait at the admission gate (docs/gate.md)
# instead of failing under the aggregate load (16 requests of up to 40 MiB
# in 512 MiB). MF_HTTP_GATE=off runs with --gate off, for contrast: the
# counts of failed ordinary calls are then reported, not asserted. Each run
# prints p50/p99 latency of the successful ordinary calls (bench/gate.sh).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
EX=$MF_ROOT_DIR/examples/model_server
CALLS=${MF_HTTP_CALLS:-200}
GATE=${MF_HTTP_GATE:-on}

# The processes of the server: the program and its children (workers).
server_pids() {
	local top=$1
	{ echo "$top"; pgrep -P "$top"; } | sort -n | tr '\n' ' '
}

# run_server KIND [account]
run_server() {
	local kind=$1 mode=${2:-auto} port hport app pre=() cmd=() sup prog pids i out json rc
	mf_need_cgroup "http-$kind-$mode" $((512 << 20))
	port=$(mf_free_port)
	hport=$(mf_free_port)
	json=$MF_TMP/summary.json
	case $kind in
	gunicorn-*|uvicorn|uvicorn-workers) ;;
	*) fail "unknown server kind $kind" ;;
	esac
	case $kind in
	gunicorn-uvicorn|uvicorn*) app=asgi_app ;;
	*) app=wsgi_app ;;
	esac
	if [ "$mode" = account ]; then
		app=${app%_app}_with_middleware
		pre=("$MEMFENCE" exec --account --)
	else
		# Nothing on PYTHONPATH: the supervisor puts the bootstrap there.
		pre=(env -u PYTHONPATH "$MEMFENCE" run --http "127.0.0.1:$hport" --gate "$GATE"
			--segment "$MF_TMP/segment" --state-dir "$MF_TMP/state" --report-dir "$MF_TMP/reports" --)
	fi
	case $kind in
	gunicorn-sync) cmd=(-m gunicorn -w 4) ;;
	gunicorn-gthread) cmd=(-m gunicorn -k gthread -w 2 --threads 8) ;;
	esac
	# Without the supervisor nothing spans processes, and there is no
	# admission gate to make aggregate load wait: one worker of 8 threads,
	# as many requests at once as the budget holds (8 x 40 MiB), so that
	# what this mode shows is the oversized request failing alone.
	[ "$mode" = account ] && [ "$kind" = gunicorn-gthread ] && cmd=(-m gunicorn -k gthread -w 1 --threads 8)
	case $kind in
	gunicorn-uvicorn) cmd=(-m gunicorn -k uvicorn.workers.UvicornWorker -w 2) ;;
	uvicorn*) cmd=(-m uvicorn --app-dir "$EX" --host 127.0.0.1 --port "$port" --no-access-log) ;;
	esac
	[ "$kind" = uvicorn-workers ] && cmd+=(--workers 2)
	[ "${kind#uvicorn}" = "$kind" ] && cmd+=(--chdir "$EX" -b "127.0.0.1:$port" --timeout 60)
	local pp=
	[ "$mode" = account ] && pp=$MF_BUILD/python
	PYTHONPATH=$pp mf_cgroup_run "$MF_CG" "${pre[@]}" "$PY" "${cmd[@]}" "http_server:$app" \
		>"$MF_TMP/server.log" 2>&1 &
	sup=$!
	MF_PIDS+=("$sup")
	for i in $(seq 1 150); do
		curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/features?customer=probe&history_mib=1" && break
		kill -0 "$sup" 2>/dev/null || break
		sleep 0.2
	done
	curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/features?customer=probe&history_mib=1" ||
		{ cat "$MF_TMP/server.log"; fail "$kind: the server did not start"; }
	# The program: memfence's child under run, memfence itself under exec.
	prog=$sup
	[ "$mode" = auto ] && prog=$(pgrep -P "$sup" | head -n1)
	# gunicorn boots its workers one after the other: wait for all.
	local want=1
	case $kind in gunicorn-sync) want=5 ;; gunicorn-*|uvicorn-workers) want=3 ;; esac
	for i in $(seq 1 100); do
		[ "$(server_pids "$prog" | wc -w)" -ge "$want" ] && break
		sleep 0.1
	done
	pids=$(server_pids "$prog")
	out=$(PYTHONPATH= timeout "$MF_LOADGEN_TIMEOUT" "$PY" "$EX/loadgen.py" --protocol http \
		--target "127.0.0.1:$port" --calls "$CALLS" --concurrency 16 --oversized 5 \
		--oversized-mib 3000 --server-pid "$prog" --json "$json")
	rc=$?
	mf_soak_record "$kind" "$json" "$MF_CG"
	mf_loadgen_check $rc "$kind"
	echo "== $kind $mode, gate $GATE"
	echo "$out"
	"$PY" - "$json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
ok = sorted(r["seconds"] for r in d["results"] if r["status"] == "OK" and not r["oversized"])
q = lambda p: ok[min(len(ok) - 1, int(p * len(ok)))] if ok else float("nan")
print("  latency of successful ordinary calls: p50 %.3f s, p99 %.3f s (%d calls)"
      % (q(0.5), q(0.99), len(ok)))
PYEOF
	field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$json" "$1"; }
	local failed_ok=$(field normal_failed)
	if [ "$failed_ok" != 0 ]; then
		echo "-- server log (tail)"
		tail -n 40 "$MF_TMP/server.log"
	fi
	if [ "$mode" = auto ]; then
		echo "-- the gate"
		curl -s --max-time 5 "http://127.0.0.1:$hport/metrics" |
			grep -E '^memfence_gate_(admitted|waited|timed_out)_total' || true
	fi
	expect_eq "$kind: server alive" True "$(field server_alive)"
	expect_eq "$kind: OOM kills in the cgroup" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
	expect_eq "$kind: server processes (none killed or replaced)" "$pids" "$(server_pids "$prog")"
	expect_eq "$kind: calls lost to a death" 0 "$(field lost_to_death)"
	expect_eq "$kind: other errors" 0 "$(field other_errors)"
	expect_eq "$kind: oversized calls failed" 5 "$(field oversized_failed)"
	if [ "$GATE" != off ] || [ "$mode" = account ]; then
		expect_eq "$kind: 503 answers" 5 "$(field resource_exhausted)"
		expect_eq "$kind: ordinary calls failed" 0 "$failed_ok"
	fi
	"$PY" - "$json" <<'PYEOF' || fail "$kind: an oversized call was not 503 with Retry-After"
import json, sys
s = json.load(open(sys.argv[1]))
for r in s["oversized"]:
    assert r["status"] == "HTTP 503" and "Retry-After: 1" in r["details"], r
    assert "out of memory while serving GET /features request req-" in r["details"], r
PYEOF
	if [ "$mode" = auto ]; then
		check_figures
		[ "$kind" = gunicorn-sync ] && check_postmortem
	fi
	kill "$prog" 2>/dev/null
	wait "$sup" 2>/dev/null
	return 0
}

# The route's figures, from the segment and from the supervisor.
check_figures() {
	local m n st
	m=$(curl -s --max-time 5 "http://127.0.0.1:$hport/metrics")
	n=$(echo "$m" | awk '/^memfence_scope_allocated_bytes_count\{name="GET \/features"\}/ { print $NF }')
	[ -n "$n" ] && [ "$n" -ge "$((CALLS - 5))" ] ||
		fail "$kind: /metrics counts '$n' scopes of GET /features, expected >= $((CALLS - 5)): $(echo "$m" | grep scope_allocated_bytes_count)"
	n=$(echo "$m" | awk '/^memfence_allocation_failures_total/ { s += $2 } END { print s + 0 }')
	[ "$n" -ge 5 ] || fail "$kind: /metrics counts $n refused allocations, expected >= 5"
	st=$("$MEMFENCE" stat --json --last 50 "$MF_TMP/segment") || fail "$kind: memfence stat failed"
	echo "$st" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
done = [s for s in d["finished"] if s["name"] == "GET /features"]
assert done, "no finished GET /features scope in memfence stat"
assert any(s["allocated"] >= 5 << 20 for s in done), done[:3]
' || fail "$kind: memfence stat: $(echo "$st" | head -c 600)"
}

# With memfence's limits off (a limit far above the cgroup's), the kernel
# OOM-kills the worker that serves
# an oversized request: the post-mortem names the request and its route.
check_postmortem() {
	local port2 sup2 rep= i
	port2=$(mf_free_port)
	PYTHONPATH= mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --limit 64G --rlimit none \
		--container-check off --state-dir "$MF_TMP/state-oom" --report-dir "$MF_TMP/reports-oom" -- \
		"$PY" -m gunicorn -w 2 --chdir "$EX" -b "127.0.0.1:$port2" http_server:wsgi_app \
		>"$MF_TMP/server-oom.log" 2>&1 &
	sup2=$!
	MF_PIDS+=("$sup2")
	for i in $(seq 1 150); do
		curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port2/features?history_mib=1" && break
		sleep 0.2
	done
	curl -s --max-time 60 -o /dev/null -H 'X-Request-Id: req-victim' \
		"http://127.0.0.1:$port2/features?customer=victim&history_mib=3000"
	for i in $(seq 1 100); do
		rep=$(grep -l req-victim "$MF_TMP"/reports-oom/*.json 2>/dev/null | head -n1)
		[ -n "$rep" ] && break
		sleep 0.1
	done
	[ -n "$rep" ] || fail "$kind: no post-mortem names req-victim: $(ls "$MF_TMP/reports-oom" 2>&1); $(tail -n 20 "$MF_TMP/server-oom.log")"
	grep -q '"GET /features"' "$rep" || fail "$kind: the post-mortem does not name the route: $(head -c 800 "$rep")"
	grep -q '"oom-kill"' "$rep" || fail "$kind: the post-mortem does not say OOM kill: $(head -c 800 "$rep")"
	kill "$sup2"
	wait "$sup2" 2>/dev/null
}
