#!/usr/bin/env bash
# The model server in a real 512 MiB memory cgroup under ~300 calls at
# concurrency 16 (5-40 MiB each, five of 3000 MiB allocating progressively):
# no process death, no OOM kill, every oversized call answered with
# RESOURCE_EXHAUSTED, no other error. Three ways:
#   exec      memfence exec (RLIMIT_DATA) + the interceptor, no shim
#   account   memfence exec --account (shim) + the interceptor
#   auto      memfence run and no code change: the server is started
#             without --memfence and without PYTHONPATH; the supervisor puts
#             the Python bootstrap there, which adds the interceptor
#   plain     no memfence at all: the contrast, and the proof that the load
#             generator sees a death: the kernel OOM-kills the server
# This script runs exec; python_model_account.sh account; python_model_auto.sh
# auto and plain. The HTTP apps on gunicorn and uvicorn: tests/http_servers.sh.
# Under the rlimit alone some normal calls may fail too (the seed's result):
# reported, not asserted. Under the shim (account, auto) there must be none:
# the shim refuses the largest in-flight scope first (MF_ZERO_COLLATERAL=0
# turns that assertion off, to look at a run).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
EX=$MF_ROOT_DIR/examples/model_server
CALLS=${MF_MODEL_CALLS:-300}

# run_mode MODE
run_mode() {
	local mode=$1 app=grpc port ready pid i out json rc srv_args=(--memfence) pre=()
	local server=$EX/server.py lg_args=()
	mf_need_cgroup "model-$mode-$app" $((512 << 20))
	port=$(mf_free_port)
	ready=$MF_TMP/ready-$mode-$app
	json=$MF_TMP/summary-$mode-$app.json
	case $mode in
	plain) srv_args=() ;;
	exec) pre=("$MEMFENCE" exec --) ;;
	account) pre=("$MEMFENCE" exec --account --) ;;
	auto)
		srv_args=()
		# Nothing on PYTHONPATH: the supervisor puts the bootstrap there.
		pre=(env -u PYTHONPATH "$MEMFENCE" run --http off --report-dir "$MF_TMP/reports" --) ;;
	esac
	PYTHONPATH=$MF_BUILD/python mf_cgroup_run "$MF_CG" "${pre[@]}" "$PY" "$server" \
		--port "$port" --ready-file "$ready" "${srv_args[@]}" >"$MF_TMP/server-$mode-$app.log" 2>&1 &
	MF_PIDS+=($!)
	for i in $(seq 1 100); do [ -s "$ready" ] && break; sleep 0.2; done
	[ -s "$ready" ] || { cat "$MF_TMP/server-$mode-$app.log"; fail "$mode: the server did not start"; }
	pid=$(cat "$ready")
	out=$(PYTHONPATH= timeout "$MF_LOADGEN_TIMEOUT" "$PY" "$EX/loadgen.py" "${lg_args[@]}" --target "127.0.0.1:$port" --calls "$CALLS" \
		--concurrency 16 --oversized 5 --oversized-mib 3000 --server-pid "$pid" --json "$json")
	rc=$?
	[ "$mode" != plain ] && mf_soak_record "grpc-$mode" "$json" "$MF_CG"
	mf_loadgen_check $rc "$mode"
	echo "== $mode $app"
	echo "$out"
	field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$json" "$1"; }
	if [ "$mode" = plain ]; then
		expect_eq "plain: server alive" False "$(field server_alive)"
		[ "$(field lost_to_death)" -gt 0 ] || fail "plain: no call was lost to the death"
		[ "$(mf_cgroup_oom_kills "$MF_CG")" -gt 0 ] || fail "plain: the server died without an OOM kill"
		wait 2>/dev/null
		return
	fi
	expect_eq "$mode: server alive" True "$(field server_alive)"
	expect_eq "$mode: calls lost to a death" 0 "$(field lost_to_death)"
	expect_eq "$mode: other errors" 0 "$(field other_errors)"
	expect_eq "$mode: oversized calls failed" 5 "$(field oversized_failed)"
	expect_eq "$mode: RESOURCE_EXHAUSTED/503 answers" $((5 + $(field normal_failed))) "$(field resource_exhausted)"
	expect_eq "$mode: OOM kills in the cgroup" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
	if [ "$mode" != exec ] && [ "${MF_ZERO_COLLATERAL:-1}" = 1 ]; then
		expect_eq "$mode: normal calls failed" 0 "$(field normal_failed)"
	fi
	kill "$pid" 2>/dev/null
	wait 2>/dev/null
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
for m in ${@:-exec}; do run_mode "$m"; done
