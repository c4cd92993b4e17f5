#!/usr/bin/env bash
# What the worker's main process does per Celery task under memfence run:
# it reads its cgroup's OOM-kill counter as each task is accepted (so that a
# pool process's death can be told an OOM kill), and that read must not open
# the counter file each time. A prefork worker (-c 2, Redis broker on a
# loopback port, examples/celery_worker) runs 40 tasks under strace; the
# main process may open the counter file a bounded number of times (found
# once, opened once), not once per task.
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
mkdir -p "$MEMFENCE_STATE_DIR" "$MF_TMP/trace"
: >"$EXAMPLE_STARTS"

N=40
mf_celery_spawn w strace -f -ff -qq -e trace=execve,open,openat -o "$MF_TMP/trace/t" \
	"$MEMFENCE" run --http off --
W=$MF_SPAWNED
OUT=$(cd "$EX" && timeout 120 "$PY" send.py --normal $N --poison 0 --timeout 90)
mf_cgroup_stop "$W" "$MF_CG"
ok=$($PY -c 'import json,sys; print(len(json.loads(sys.argv[1])["ok"]))' "$OUT")
[ "$ok" = $N ] || { tail -n 30 "$MF_TMP/w.log" >&2; fail "$ok of $N tasks succeeded"; }

# The worker's main process: the one that executed the interpreter (the
# pool processes are its forks and execute nothing).
main=$(grep -l 'execve("[^"]*python3' "$MF_TMP"/trace/t.* | head -n 1)
[ -n "$main" ] || fail "no trace of the worker's main process"
grep -qE 'memfence/(__pycache__/)?celery\.' "$main" || fail "the main process did not load memfence.celery (test is void)"
opens=$(grep -cE '"[^"]*/memory\.(oom_control|events)"' "$main")
echo "the main process opened the OOM-kill counter file $opens time(s) for $N tasks" >&2
[ "$opens" -ge 1 ] || fail "the main process never read the OOM-kill counter (test is void)"
[ "$opens" -le 3 ] || fail "the OOM-kill counter file was opened $opens times for $N tasks (once per task?)"
echo "ok: $opens opening(s) of the OOM-kill counter for $N tasks"
