#!/usr/bin/env bash
# The leak model in /status and /metrics, on a gRPC service with scopes
# (tests/integration/diagnose_server.py, one scope per call named after its
# method) in a real memory cgroup, under `memfence run`:
#   - leak (defaults: nothing recycles it): every call keeps 256 KiB. /status names the method with its
#     retained bytes per call, the floor's slope and a forecast; /metrics
#     has the same figures;
#   - cache (--restart always, so recycling is on): the first 40 calls keep 1 MiB each (a cache filling), the
#     next 20 s keep nothing (its plateau). Never called a leak, never
#     recycled; the method is not called leaking once it plateaued.
# Three runs in a row, all must pass.
. "$(dirname "$0")/diagnose_lib.bash"

status() { curl -s --max-time 10 --retry 2 --retry-all-errors "http://127.0.0.1:$HP/status"; }
sget() { status | "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
metric() { mf_metric "127.0.0.1:$HP" "$1"; }

leak_run() {
	local run=$1 r slope
	HP=$(mf_free_port)
	diag_start "leak$run" 512 --http "127.0.0.1:$HP"
	PYTHONPATH= timeout 60 "$PY" "$DIAG_HERE/diagnose_load.py" --target "127.0.0.1:$PORT" \
		--calls 100000 --concurrency 2 --mib 1-2 --hold-ms 20 --keep-kib 256 --duration 30 >/dev/null &
	local load=$! i
	MF_PIDS+=("$load")
	# Checked while it leaks: the verdict is about the floor rising now.
	# For as long as the load runs (a loaded machine serves fewer calls a
	# second, so the windows that show the rise come later).
	for i in $(seq 1 110); do
		[ "$(sget 'd["model"]["leaking"]')" = True ] && break
		kill -0 "$load" 2>/dev/null || break
		sleep 0.5
	done
	expect_eq "run $run: first name" /diagtest.Work/Do "$(sget 'd["model"]["retained"][0]["name"]')"
	[ "$(sget 'd["model"]["retained"][0]["leaking"]')" = True ] || fail "run $run: the method is not called leaking: $(status)"
	r=$(sget 'd["model"]["retained"][0]["retained_per_call"]')
	[ "$r" -ge $((200 << 10)) ] && [ "$r" -le $((320 << 10)) ] ||
		fail "run $run: retained per call $r, expected about 256 KiB"
	[ "$(sget 'd["model"]["retained"][0]["calls"]')" -ge 50 ] || fail "run $run: too few calls: $(status)"
	expect_eq "run $run: floor rising" True "$(sget 'd["model"]["leaking"]')"
	[ "$(sget 'd["model"]["forecast_s"]')" -ge 0 ] || fail "run $run: no forecast: $(status)"
	r=$(metric 'memfence_scope_retained_per_call_bytes{name="/diagtest.Work/Do"}')
	[ "${r:-0}" -ge $((200 << 10)) ] || fail "run $run: /metrics retained per call: '$r'"
	expect_eq "run $run: /metrics leaking name" 1 "$(metric 'memfence_scope_leaking{name="/diagtest.Work/Do"}')"
	expect_eq "run $run: /metrics leak detected" 1 "$(metric memfence_leak_detected)"
	slope=$(metric memfence_leak_floor_slope_bytes_per_second)
	"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$slope" ||
		fail "run $run: floor slope $slope"
	[ "$(metric memfence_leak_forecast_seconds)" -ge 0 ] || fail "run $run: /metrics forecast"
	kill "$load" 2>/dev/null
	wait "$load" 2>/dev/null
	diag_stop
}

cache_run() {
	local run=$1 i leaking=0
	HP=$(mf_free_port)
	diag_start "cache$run" 512 --http "127.0.0.1:$HP" --restart always
	diag_load --calls 40 --concurrency 2 --mib 1-2 --keep-kib 1024 --duration 20 >/dev/null
	PYTHONPATH= timeout 60 "$PY" "$DIAG_HERE/diagnose_load.py" --target "127.0.0.1:$PORT" \
		--calls 100000 --concurrency 2 --mib 1-2 --hold-ms 20 --duration 20 >/dev/null &
	local load=$!
	MF_PIDS+=("$load")
	for i in $(seq 1 40); do
		[ "$(sget 'd["model"]["leaking"]')" = False ] || leaking=$((leaking + 1))
		sleep 0.5
	done
	wait "$load" || fail "run $run: the load generator failed"
	expect_eq "run $run: polls that called the plateau a leak" 0 "$leaking"
	expect_eq "run $run: recycles" 0 "$(sget 'sum(d["recycle"]["total"].values())')"
	[ "$(sget 'd["model"]["windows"]')" -ge 10 ] || fail "run $run: too few windows: $(status)"
	expect_eq "run $run: the cache's name leaking" False "$(sget 'd["model"]["retained"][0]["leaking"]')"
	expect_eq "run $run: /metrics leak detected" 0 "$(metric memfence_leak_detected)"
	# No leak, no forecast series (a sentinel would set off alerts).
	expect_eq "run $run: /metrics forecast" "" "$(metric memfence_leak_forecast_seconds)"
	diag_stop
}

for run in ${MF_RUNS:-1 2 3}; do
	leak_run "$run"
	cache_run "$run"
done
echo "ok"
