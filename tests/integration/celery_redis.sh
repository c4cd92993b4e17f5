#!/usr/bin/env bash
# Two Celery workers ("two machines": separate state directories, so
# separate local copies) share one Redis quarantine, in a real 384 MiB memory
# cgroup, under `memfence run --rlimit none --container-check off --gate off`
# with MEMFENCE_PRESSURE=off, so that the kernel really OOM-kills the pool
# process running the poison task (with the gate on, the poison task is
# refused as past its need, a MemoryError, before the kernel's limit).
#
#   1. One count across the fleet: the poison task runs twice in all (on
#      either worker), then both reject it; Redis holds one record, 2 deaths.
#   2. The quarantine's Redis stops mid-run: every worker says so clearly
#      (cannot reach redis://...), keeps going from its local copy, every
#      ordinary task still succeeds, and the poison task is still stopped
#      (each machine counts alone: at most threshold runs per machine). When Redis is back
#      (restarted from its dump), the deaths kept locally are sent: Redis
#      counts exactly one death per run of the poison task, nothing lost.
#
# The broker is a second redis-server, so that stopping the quarantine's
# does not stop the queue.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
[ -f "$MF_BUILD/python/memfence/celery.py" ] || fail "the Python package is not built (make python)"
command -v redis-server >/dev/null || skip "redis-server is not installed"
command -v redis-cli >/dev/null || skip "redis-cli is not installed"
$PY -c 'import celery, redis' 2>/dev/null || skip "python3-celery / python3-redis are not installed"
mf_need_cgroup celeryr 384M

EX=$MF_ROOT_DIR/examples/celery_worker
export PYTHONPATH=$MF_BUILD/python:$EX
export MEMFENCE_BIN=$MEMFENCE MEMFENCE_REDIS_TIMEOUT=500
unset LD_PRELOAD MEMFENCE_QUARANTINE_THRESHOLD MEMFENCE_QUARANTINE_RECORDER

BPORT=$(mf_free_port)
QPORT=$(mf_free_port)
while [ "$QPORT" = "$BPORT" ]; do QPORT=$(mf_free_port); done
export MEMFENCE_QUARANTINE=redis://127.0.0.1:$QPORT/0
export CELERY_BROKER=redis://127.0.0.1:$BPORT/0
mkdir -p "$MF_TMP/qredis"

QPID=
start_redis() { # PORT [args...]: prints the pid
	local port=$1
	shift
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no "$@" \
		>>"$MF_TMP/redis-$port.log" 2>&1 &
	local pid=$!
	MF_PIDS+=("$pid")
	for _ in $(seq 1 50); do
		redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && { echo "$pid"; return 0; }
		sleep 0.1
	done
	fail "redis-server on $port did not start: $(tail -n 5 "$MF_TMP/redis-$port.log")"
}
start_redis "$BPORT" >/dev/null
# The quarantine's Redis writes its dump only when told (shutdown save), so a
# restart finds what it held: the test is about memfence losing nothing.
QPID=$(start_redis "$QPORT" --dir "$MF_TMP/qredis" --dbfilename q.rdb)

WPIDS=()
start_worker() { # NAME
	local name=$1
	mkdir -p "$MF_TMP/state-$name"
	(cd "$EX" && MEMFENCE_STATE_DIR=$MF_TMP/state-$name EXAMPLE_STARTS=$MF_TMP/starts MEMFENCE_PRESSURE=off \
		mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --rlimit none --container-check off --gate off -- \
		"$PY" -m celery -A app worker --pool prefork -c 2 --loglevel INFO \
		--without-heartbeat --without-mingle --without-gossip -n "$name@%h") \
		>"$MF_TMP/$name.log" 2>&1 &
	WPIDS+=($!)
	MF_PIDS+=($!)
}
stop_workers() {
	local p
	for p in "${WPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${WPIDS[@]}"; do
		for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}
send() { (cd "$EX" && timeout 120 "$PY" send.py "$@"); }
jq_() { $PY -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
starts() { grep -c " $1 " "$MF_TMP/starts"; }
q() { MEMFENCE_STATE_DIR=$MF_TMP/state-$1 "$MEMFENCE" quarantine "${@:2}"; }
rdeaths() { redis-cli -p "$QPORT" hget "memfence:q:r:$1" deaths; }
# poison_end PHASE OUT: no ordinary task pending; the poison task rejected as
# quarantined (TaskQuarantined). With two workers on a Redis broker, Celery
# sometimes does not deliver a message requeued after a lost pool process
# again (the queue and the unacked set are both empty afterwards): then the
# poison task stays pending, which the start count below still bounds.
poison_end() {
	expect_eq "$1: ordinary tasks still pending" 0 \
		"$(echo "$2" | jq_ 'len([i for i in d["pending"] if i not in d["poison"]])')"
	local r
	r=$(echo "$2" | jq_ 'd["failed"].get(d["poison"][0], "pending" if d["poison"][0] in d["pending"] else "SUCCESS")')
	case "$r" in
	TaskQuarantined:*) ;;
	pending) echo "$1: note: the poison task's last requeue was not delivered again" ;;
	*) fail "$1: poison task's end: $r" ;;
	esac
}

: >"$MF_TMP/starts"
start_worker one
start_worker two

# --- 1. one count for the fleet ------------------------------------------------------
P1=poison-fleet-1
out=$(send --normal 20 --poison 1 --poison-id "$P1" --timeout 30) || fail "send.py: $out"
expect_eq "1: normal tasks that succeeded" 20 "$(echo "$out" | jq_ 'len(d["ok"])')"
poison_end 1 "$out"
expect_eq "1: poison task starts, both workers together" 2 "$(starts "$P1")"
expect_eq "1: deaths in Redis" 2 "$(rdeaths "$P1")"
q one check "$P1" >/dev/null; expect_eq "1: worker one's machine: check" 3 $?
q two check "$P1" >/dev/null; expect_eq "1: worker two's machine: check" 3 $?
grep -h 'rejected, not run' "$MF_TMP"/one.log "$MF_TMP"/two.log | head -n 1 | cut -c1-200

# --- 2. the quarantine's Redis stops mid-run ----------------------------------------
redis-cli -p "$QPORT" shutdown save >/dev/null 2>&1
wait "$QPID" 2>/dev/null
P2=poison-fleet-2
out=$(send --normal 20 --poison 1 --poison-id "$P2" --timeout 50) || fail "send.py: $out"
expect_eq "2: normal tasks that succeeded without Redis" 20 "$(echo "$out" | jq_ 'len(d["ok"])')"
poison_end 2 "$out"
runs=$(starts "$P2")
[ "$runs" -ge 2 ] && [ "$runs" -le 4 ] || fail "2: the poison task ran $runs times without Redis (2 machines, threshold 2: 2 to 4)"
grep -hq "cannot reach redis://127.0.0.1:$QPORT/0" "$MF_TMP"/one.log "$MF_TMP"/two.log ||
	fail "2: no worker said that Redis is unreachable: $(grep -h memfence "$MF_TMP"/one.log | tail -n 5)"
echo "2: $(grep -h "cannot reach redis" "$MF_TMP"/one.log "$MF_TMP"/two.log | head -n 1 | cut -c1-200)"
echo "2: without Redis the poison task ran $runs times"
stop_workers

QPID=$(start_redis "$QPORT" --dir "$MF_TMP/qredis" --dbfilename q.rdb)
expect_eq "2: phase 1's record survived the Redis restart" 2 "$(rdeaths "$P1")"
q one sync >/dev/null || fail "2: sync from worker one's machine failed"
q two sync >/dev/null || fail "2: sync from worker two's machine failed"
expect_eq "2: deaths in Redis after sync = runs of the poison task" "$runs" "$(rdeaths "$P2")"
q one sync >/dev/null
expect_eq "2: a second sync sends nothing twice" "$runs" "$(rdeaths "$P2")"
expect_eq "2: nothing left unsynced" 0 "$(q one show "$P2" --json | jq_ 'd["record"]["unsynced"]')"
q two check "$P2" >/dev/null; expect_eq "2: quarantined fleet-wide" 3 $?
echo ok
