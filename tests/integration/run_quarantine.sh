#!/usr/bin/env bash
# The supervisor records quarantine deaths. Under `memfence run`, in a real
# 200 MiB memory cgroup with every limit off (--rlimit none,
# --container-check off, MEMFENCE_PRESSURE=off) so that the kernel really
# kills: the program forks a worker (not the supervisor's own child), the
# worker opens a scope with id "task-1" and allocates until it is
# OOM-killed. The supervisor sees the worker's slot dead with the scope in
# flight and records one death (cause oom_kill, the scope's peak); a second
# run makes task-1 quarantined. A program that exits normally with a scope
# still open records nothing; --no-quarantine records nothing; the child
# gets the store and MEMFENCE_QUARANTINE_RECORDER=supervisor.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
[ -f "$MF_BUILD/python/memfence/__init__.py" ] || fail "the Python package is not built (make python)"
mf_need_cgroup runq $((200 << 20))
export PYTHONPATH=$MF_BUILD/python MEMFENCE_PRESSURE=off
unset MEMFENCE_QUARANTINE MEMFENCE_STATE_DIR MEMFENCE_QUARANTINE_RECORDER MEMFENCE_QUARANTINE_THRESHOLD
S=$MF_TMP/state

cat >"$MF_TMP/worker.py" <<'PY'
import os, sys
import memfence

mode, ident = sys.argv[1], sys.argv[2]
if mode == "exit":
    # A scope left open by a process that ends normally: no death.
    memfence.scope("tasks.leave", id=ident).__enter__()
    sys.exit(0)
pid = os.fork()
if pid == 0:
    with memfence.scope("tasks.explode", id=ident):
        hog = []
        while True:
            hog.append(b"\x01" * (4 << 20))
    os._exit(0)
_, st = os.waitpid(pid, 0)
print("worker killed by signal", os.WTERMSIG(st) if os.WIFSIGNALED(st) else 0)
sys.stdout.flush()
if len(sys.argv) > 3:
    # Stay up until the test has read /metrics.
    import time
    for _ in range(300):
        if os.path.exists(sys.argv[3]):
            break
        time.sleep(0.1)
PY

show() {
	"$MEMFENCE" quarantine show "$1" --json --state-dir "$S"
}
field() {
	$PY -c 'import json,sys; r=json.load(sys.stdin); r=r.get("record", r); print(r[sys.argv[1]])' "$1"
}

run_worker() {
	mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --rlimit none --container-check off \
		--state-dir "$S" "$@" >"$MF_TMP/out" 2>"$MF_TMP/err"
}

before=$(mf_cgroup_oom_kills "$MF_CG")
run_worker -- $PY "$MF_TMP/worker.py" kill task-1
expect_eq "status" 0 $?
grep -q "worker killed by signal 9" "$MF_TMP/out" || fail "the worker was not killed: $(cat "$MF_TMP/out" "$MF_TMP/err")"
[ "$(mf_cgroup_oom_kills "$MF_CG")" -gt "$before" ] || fail "no OOM kill in the cgroup: the test proves nothing"
grep -q "memfence: quarantine: task-1 (tasks.explode) died .*oom_kill.*death 1 of 2" "$MF_TMP/err" ||
	fail "no log line for the death: $(cat "$MF_TMP/err")"
j=$(show task-1) || fail "task-1 not recorded: $(cat "$MF_TMP/err")"
expect_eq "deaths" 1 "$(echo "$j" | field deaths)"
expect_eq "cause" oom_kill "$(echo "$j" | field cause)"
expect_eq "name" tasks.explode "$(echo "$j" | field name)"
expect_eq "state" counting "$(echo "$j" | field state)"
peak=$(echo "$j" | field peak)
[ "$peak" != None ] && [ "$peak" -ge $((40 << 20)) ] || fail "peak of the scope: '$peak' ($j)"

run_worker -- $PY "$MF_TMP/worker.py" kill task-1
j=$(show task-1)
expect_eq "deaths after the second run" 2 "$(echo "$j" | field deaths)"
expect_eq "state after the second run" quarantined "$(echo "$j" | field state)"
"$MEMFENCE" quarantine check task-1 --state-dir "$S" >/dev/null 2>&1
expect_eq "check exit" 3 $?

# A normal exit with the scope open: nothing.
run_worker -- $PY "$MF_TMP/worker.py" exit task-2
expect_eq "status (exit)" 0 $?
show task-2 >/dev/null 2>&1 && fail "a normal exit was recorded: $(show task-2)"

# Opted out: the kill happens, nothing is recorded.
run_worker --no-quarantine -- $PY "$MF_TMP/worker.py" kill task-3
grep -q "worker killed by signal 9" "$MF_TMP/out" || fail "the worker was not killed (opt-out run)"
show task-3 >/dev/null 2>&1 && fail "--no-quarantine recorded a death"
MEMFENCE_QUARANTINE=off run_worker -- $PY "$MF_TMP/worker.py" kill task-3
show task-3 >/dev/null 2>&1 && fail "MEMFENCE_QUARANTINE=off recorded a death"

# What the program is told, and a store given by URL.
run_worker --quarantine "sqlite:$MF_TMP/other.db" -- sh -c \
	'echo "$MEMFENCE_QUARANTINE|$MEMFENCE_STATE_DIR|$MEMFENCE_QUARANTINE_RECORDER"'
expect_eq "child environment" "sqlite:$MF_TMP/other.db|$S|supervisor" "$(cat "$MF_TMP/out")"
run_worker -- sh -c 'echo "$MEMFENCE_QUARANTINE"'
expect_eq "default store" "sqlite:$S/quarantine.db" "$(cat "$MF_TMP/out")"
"$MEMFENCE" run --http off --quarantine redis://h:x/0 -- true 2>"$MF_TMP/err"
expect_eq "bad store status" 2 $?
expect_eq "bad store message lines" 1 "$(wc -l <"$MF_TMP/err")"

# /metrics counts the deaths the supervisor recorded.
PORT=$(mf_free_port)
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --rlimit none \
	--container-check off --state-dir "$S" -- $PY "$MF_TMP/worker.py" kill task-4 "$MF_TMP/go" \
	>"$MF_TMP/out" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
n=
for _ in $(seq 150); do
	n=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" |
		awk '/^memfence_quarantine_recorded_total / { print $2 }')
	[ "$n" = 1 ] && break
	sleep 0.1
done
st=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/status" |
	$PY -c 'import json,sys; q=json.load(sys.stdin)["quarantine"]; print(q["on"], q["recorded"])')
touch "$MF_TMP/go"
wait "$SUP"
expect_eq "memfence_quarantine_recorded_total" 1 "$n"
expect_eq "/status quarantine" "True 1" "$st"

# A run killed with its supervisor (as by a group OOM kill): the next start
# with the same --state-dir records the scope that was in flight.
S2=$MF_TMP/state2
cat >"$MF_TMP/inflight.py" <<'PY'
import sys, time
import memfence
with memfence.scope("tasks.stuck", id="lost-1"):
    x = b"\x01" * (8 << 20)
    open(sys.argv[1], "w").close()
    time.sleep(60)
PY
"$MEMFENCE" run --http off --state-dir "$S2" -- $PY "$MF_TMP/inflight.py" "$MF_TMP/inside" \
	>/dev/null 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for _ in $(seq 100); do [ -f "$MF_TMP/inside" ] && break; sleep 0.1; done
[ -f "$MF_TMP/inside" ] || fail "the program did not start: $(cat "$MF_TMP/err")"
sleep 1.2   # the journal is rewritten once a second
child=$(pgrep -P "$SUP")
kill -KILL "$SUP" $child
wait "$SUP" 2>/dev/null
"$MEMFENCE" run --http off --state-dir "$S2" -- true 2>"$MF_TMP/err"
expect_eq "status (after a lost run)" 0 $?
j=$("$MEMFENCE" quarantine show lost-1 --json --state-dir "$S2") ||
	fail "lost-1 not recorded: $(cat "$MF_TMP/err")"
expect_eq "lost run: deaths" 1 "$(echo "$j" | field deaths)"
expect_eq "lost run: cause" unknown "$(echo "$j" | field cause)"
expect_eq "lost run: name" tasks.stuck "$(echo "$j" | field name)"
"$MEMFENCE" run --http off --state-dir "$S2" -- true 2>"$MF_TMP/err"
expect_eq "lost run counted once" 1 "$("$MEMFENCE" quarantine show lost-1 --json --state-dir "$S2" | field deaths)"
echo "ok: peak $peak, 2 deaths, quarantined"
