#!/usr/bin/env bash
# cgroup v2 in a real kernel (user-mode Linux, tests/uml): Celery's poison
# quarantine across group OOM kills. A prefork worker (examples/celery_worker,
# task_acks_late and task_reject_on_worker_lost) runs under an unprivileged
# `memfence run --state-dir` with memfence's limits off, in a cgroup with
# memory.oom.group=1, as the kubelet sets it; redis-server runs outside that
# cgroup, as a broker does on Kubernetes. The poison task makes the kernel
# kill the whole group, supervisor included, twice: each next start counts
# the death from what the state directory kept, and the third delivery is
# rejected without running while every ordinary task succeeds.
#
# Ordinary tasks run before the poison task is sent, and are sent while the
# worker is down: a message that Redis hands out (BRPOP) at the moment of a
# kill would be lost, since Kombu's Redis transport takes it off the queue
# before it records it as unacknowledged (docs/celery.md, "Limits").
#
# Every task start appends a line to a file: that is what is counted.
if [ -z "${MF_UML_SCRIPT:-}" ]; then
	. "$(dirname "$0")/../lib.sh"
	[ -f "$MF_BUILD/python/memfence/celery.py" ] || fail "the Python package is not built (make python)"
	command -v redis-server >/dev/null || skip "redis-server is not installed"
	$PY -c 'import celery, redis' 2>/dev/null || skip "python3-celery / python3-redis are not installed"
	# Three worker runs with kernel kills and redeliveries inside an emulated
	# kernel: 140 to 240 s on a shared 2-core machine, more than the default
	# boot time.
	MF_UML_TIMEOUT=${MF_UML_TIMEOUT:-300} mf_v2_boot "$0"
	exit
fi
. "$MF_ROOT_DIR/tests/uml/guest.sh"
unset MEMFENCE_LIMIT MEMFENCE_RESERVE MEMFENCE_RLIMIT MEMFENCE_STACK MEMFENCE_ROOT \
	MEMFENCE_QUARANTINE MEMFENCE_QUARANTINE_THRESHOLD MEMFENCE_QUARANTINE_RECORDER \
	MEMFENCE_STATE_DIR
S=$MF_SCRATCH
EX=$MF_ROOT_DIR/examples/celery_worker
STATE=$S/state
export PYTHONPATH=$MF_BUILD/python:$EX:$S MEMFENCE_BIN=$MEMFENCE
export CELERY_BROKER=redis://127.0.0.1:6379/0 EXAMPLE_STARTS=$S/starts
: >"$EXAMPLE_STARTS"
starts() { grep -c "^$1 " "$EXAMPLE_STARTS"; }

# The broker in the root cgroup, outside the container's: the group kill
# must not take it.
bash -c 'echo $$ >"$0/cgroup.procs" && exec redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no' \
	"$CG" >"$S/redis.log" 2>&1 &
wait_for 10 redis-cli -p 6379 ping >/dev/null 2>&1 || bad "redis-server did not start ($(cat "$S/redis.log"))"
expect_eq "redis-server outside the container" "0::/" "$(cat /proc/$!/cgroup)"

# The Redis transport gives an unacknowledged message back only once its
# visibility timeout has passed (1 h by default), when a worker starts or
# every 100 s after: a short one, so that the restarted worker gets the
# tasks lost with the group at once.
cat >"$S/v2app.py" <<'PY'
from app import app
app.conf.broker_transport_options = {"visibility_timeout": 2}
PY
# waitfor SECONDS ID...: the tasks' outcomes, as send.py prints them.
cat >"$S/waitfor.py" <<'PY'
import json, sys, time
from v2app import app
deadline = time.monotonic() + float(sys.argv[1])
todo, ok, failed = sys.argv[2:], [], {}
while todo and time.monotonic() < deadline:
    rest = []
    for i in todo:
        r = app.AsyncResult(i)
        if r.state == "SUCCESS":
            ok.append(i)
        elif r.state == "FAILURE":
            failed[i] = "%s: %s" % (type(r.result).__name__, r.result)
        else:
            rest.append(i)
    todo = rest
    if todo:
        time.sleep(0.2)
print(json.dumps({"ok": ok, "failed": failed, "pending": todo}))
PY

W=$(v2_container worker 128M)
echo 1 >"$W/memory.oom.group"
SUP=
# start_worker N: the supervisor and its worker in W, without any
# capability (CAP_SYS_RESOURCE is what oom_score_adj -1000 needs), with
# every memfence protection off so that the kernel's OOM killer acts. SUP is
# the supervisor's pid; its exit status goes to w$N.rc.
start_worker() {
	(bash -c 'echo $$ >"$0/cgroup.procs" && echo $$ >"$1" && shift && exec "$@"' "$W" "$S/w$1.pid" \
		setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all \
		env MEMFENCE_PRESSURE=off "$MEMFENCE" run --http off --state-dir "$STATE" \
		--rlimit none --container-check off --gate off -- \
		$PY -m celery -A v2app worker --pool prefork -c 2 --loglevel INFO \
		--without-heartbeat --without-mingle --without-gossip -n "w$1@%h" \
		>"$S/w$1.log" 2>&1 </dev/null
	echo $? >"$S/w$1.rc") 2>/dev/null &
	wait_for 10 test -s "$S/w$1.pid" || bad "run $1: the supervisor did not start"
	SUP=$(cat "$S/w$1.pid")
}
# group_killed N: wait (bounded) for run N's supervisor to die with its group.
group_killed() {
	if ! wait_for 40 test -s "$S/w$1.rc"; then
		bad "run $1: not killed in 40 s ($(tail -n 5 "$S/w$1.log" | tr '\n' ' '))"
		echo 1 >"$W/cgroup.kill"
		wait_for 10 test -s "$S/w$1.rc"
	fi
	expect_eq "run $1: the supervisor was killed with the group" 137 "$(cat "$S/w$1.rc")"
	expect_eq "run $1: memory.events oom_group_kill" "$1" "$(v2_key "$W/memory.events" oom_group_kill)"
	expect_eq "run $1: nothing left in the cgroup" "" "$(cat "$W/cgroup.procs")"
}
qfield() { jget "$S/q.json" "$1"; }

echo "time: $SECONDS s"
# --- run 1: the poison task kills the group --------------------------------
start_worker 1
(cd "$EX" && timeout 60 $PY send.py --normal 10 --poison 0 --timeout 40) \
	>"$S/out1.json" 2>"$S/send.err" || bad "send.py: $(cat "$S/send.err")"
expect_eq "run 1: ordinary tasks that succeeded" 10 "$(jget "$S/out1.json" 'len(d["ok"])')"
(cd "$EX" && timeout 60 $PY send.py --normal 0 --poison 1 --poison-id poison-1 --no-wait) \
	>/dev/null 2>"$S/send.err" || bad "send.py: $(cat "$S/send.err")"
group_killed 1
expect_eq "run 1: poison task starts" 1 "$(starts tasks.explode)"
"$MEMFENCE" quarantine show poison-1 --state-dir "$STATE" >/dev/null 2>&1 &&
	bad "run 1: a death was recorded with nobody alive to record it"

echo "time: $SECONDS s"
# --- run 2: the next start counts death 1; the task comes back and kills again
start_worker 2
group_killed 2
expect_match "run 2: the lost run is told" "ended without a report" "$(cat "$S/w2.log")"
expect_match "run 2: death 1 counted at start" \
	"memfence: quarantine: poison-1 \(tasks.explode\) died .*death 1 of 2" "$(cat "$S/w2.log")"
expect_eq "run 2: poison task starts" 2 "$(starts tasks.explode)"
"$MEMFENCE" quarantine show poison-1 --json --state-dir "$STATE" >"$S/q.json" 2>&1
expect_eq "run 2: record" "1 counting" "$(qfield '"%d %s" % (d["record"]["deaths"], d["record"]["state"])')"

echo "time: $SECONDS s"
# --- run 3: death 2 quarantines it; it is rejected, not run ----------------
# Sent while no worker runs, as during a container restart.
(cd "$EX" && timeout 60 $PY send.py --normal 10 --poison 0 --no-wait) \
	>"$S/sent3.json" 2>"$S/send.err" || bad "send.py: $(cat "$S/send.err")"
start_worker 3
ids="poison-1 $(jget "$S/sent3.json" '" ".join(d["sent"])')"
timeout 60 $PY "$S/waitfor.py" 40 $ids >"$S/out.json" 2>"$S/wait.err" || bad "waitfor: $(cat "$S/wait.err")"
echo "run 3: $(cut -c1-300 "$S/out.json")"
expect_eq "ordinary tasks that succeeded" 10 "$(jget "$S/out.json" 'len(d["ok"])')"
expect_eq "tasks still pending" 0 "$(jget "$S/out.json" 'len(d["pending"])')"
expect_match "poison task rejected" "^TaskQuarantined: .*quarantined after 2 death" \
	"$(jget "$S/out.json" 'd["failed"].get("poison-1", "")')"
expect_eq "poison task starts in all (the threshold)" 2 "$(starts tasks.explode)"
expect_match "the worker logged the rejection" "rejected, not run: task tasks.explode" "$(cat "$S/w3.log")"
expect_eq "run 3: no further group kill" 2 "$(v2_key "$W/memory.events" oom_group_kill)"
[ -s "$S/w3.rc" ] && bad "run 3: the supervisor died ($(tail -n 5 "$S/w3.log" | tr '\n' ' '))"

"$MEMFENCE" quarantine list --json --state-dir "$STATE" >"$S/q.json" 2>&1
echo "quarantine: $(tr -d '\n ' <"$S/q.json" | cut -c1-400)"
# Cause unknown: the supervisor that could have told was killed too; the
# next start knows only that the run was lost.
expect_eq "quarantine record" "tasks.explode 2 quarantined unknown" \
	"$(qfield '" ".join(str(r[k]) for r in d["records"] if r["id"] == "poison-1" for k in ("name", "deaths", "state", "cause"))')"
# Its memory at death, from the stats segment the killed run left behind.
peak=$(qfield '[r["peak"] or 0 for r in d["records"] if r["id"] == "poison-1"][0]')
[ "$peak" -ge $((32 << 20)) ] 2>/dev/null && ok "quarantine peak ($((peak >> 20)) MiB)" ||
	bad "quarantine peak: $peak"
expect_eq "no other record" "poison-1" "$(qfield '" ".join(r["id"] for r in d["records"])')"

kill -TERM "$SUP"
wait_for 20 test -s "$S/w3.rc" || { bad "run 3: the worker did not stop"; echo 1 >"$W/cgroup.kill"; }
expect_eq "run 3: stopped" 0 "$(cat "$S/w3.rc")"
echo "time: $SECONDS s"
v2_done
