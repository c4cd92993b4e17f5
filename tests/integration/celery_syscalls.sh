#!/usr/bin/env bash
# What the worker's main process does per Celery task. It hands every task
# to the pool, so its time per task is the worker's rate. Where it records
# the deaths of pool processes (the app's install() outside memfence run) it
# reads its cgroup's OOM-kill counter as each task is accepted, to tell an
# OOM kill from another death, and that read must not open the counter file
# each time: found once, opened once. Under memfence run the supervisor
# records the deaths, and the main process reads no counter at all. A
# prefork worker (-c 2, Redis broker on a loopback port,
# examples/celery_worker) runs 40 tasks under strace, once each way.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
[ -f "$MF_BUILD/python/memfence/celery.py" ] || fail "the Python package is not built (make python)"
command -v redis-server >/dev/null || skip "redis-server is not installed"
command -v strace >/dev/null || skip "strace is not installed"
$PY -c 'import celery, redis' 2>/dev/null || skip "python3-celery / python3-redis are not installed"
mf_need_cgroup celerys 512M

EX=$MF_ROOT_DIR/examples/celery_worker
export PYTHONPATH=$MF_BUILD/python:$EX
unset LD_PRELOAD MEMFENCE_QUARANTINE MEMFENCE_QUARANTINE_THRESHOLD MEMFENCE_QUARANTINE_RECORDER
PORT=$(mf_free_port)
mf_redis_start "$PORT"
export EXAMPLE_STARTS=$MF_TMP/starts CELERY_BROKER=redis://127.0.0.1:$PORT/1
export MEMFENCE_STATE_DIR=$MF_TMP/state
mkdir -p "$MEMFENCE_STATE_DIR"
: >"$EXAMPLE_STARTS"

N=40
# trace_worker NAME PREFIX...: the worker under strace, N tasks; sets $main
# to the trace of its main process (the one that executed the interpreter:
# the pool processes are its forks and execute nothing).
trace_worker() {
	local name=$1 out ok
	shift
	mkdir -p "$MF_TMP/trace-$name"
	mf_celery_spawn "$name" strace -f -ff -qq -e trace=execve,open,openat \
		-o "$MF_TMP/trace-$name/t" "$@"
	W=$MF_SPAWNED
	out=$(cd "$EX" && timeout 120 "$PY" send.py --normal $N --poison 0 --timeout 90)
	mf_cgroup_stop "$W" "$MF_CG"
	ok=$($PY -c 'import json,sys; print(len(json.loads(sys.argv[1])["ok"]))' "$out")
	[ "$ok" = $N ] || { tail -n 30 "$MF_TMP/$name.log" >&2; fail "$name: $ok of $N tasks succeeded"; }
	main=$(grep -l 'execve("[^"]*python3' "$MF_TMP/trace-$name"/t.* | head -n 1)
	[ -n "$main" ] || fail "$name: no trace of the worker's main process"
	grep -qE 'memfence/(__pycache__/)?celery\.' "$main" ||
		fail "$name: the main process did not load memfence.celery (test is void)"
}

counter_opens() {
	grep -cE '"[^"]*/memory\.(oom_control|events)"' "$1"
}

# The main process records the deaths itself.
trace_worker own "$MEMFENCE" exec --account --
opens=$(counter_opens "$main")
echo "recording in the main process: the OOM-kill counter file opened $opens time(s) for $N tasks" >&2
[ "$opens" -ge 1 ] || fail "the main process never read the OOM-kill counter (test is void)"
[ "$opens" -le 3 ] || fail "the OOM-kill counter file was opened $opens times for $N tasks (once per task?)"

# Under run: the supervisor records them.
trace_worker run "$MEMFENCE" run --http off --
runs=$(counter_opens "$main")
echo "under memfence run: the OOM-kill counter file opened $runs time(s) for $N tasks" >&2
[ "$runs" = 0 ] || fail "under memfence run the main process opened the OOM-kill counter $runs times; the supervisor records the deaths"
echo "ok: $opens opening(s) of the OOM-kill counter for $N tasks where the main process records deaths, none under run"
