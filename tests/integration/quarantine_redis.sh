#!/usr/bin/env bash
# The Redis quarantine store against a real redis-server on a loopback port:
# two "machines" (separate state directories, so separate local copies)
# recording deaths of the same id in parallel share one count; Redis hung
# (SIGSTOP: commands time out) and Redis gone (killed, then a new one) ->
# every death is kept locally with a clear error, answers come from the
# local copy, and the deaths are sent exactly once on the next call that
# reaches Redis; a fleet-wide clear is refused while Redis is away.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
command -v redis-server >/dev/null || skip "redis-server is not installed"
command -v redis-cli >/dev/null || skip "redis-cli is not installed"
unset MEMFENCE_QUARANTINE MEMFENCE_STATE_DIR MEMFENCE_QUARANTINE_THRESHOLD
export MEMFENCE_REDIS_TIMEOUT=500

PORT=$(mf_free_port)
URL=redis://127.0.0.1:$PORT/2
REDIS_PID=

start_redis() {
	redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no >>"$MF_TMP/redis.log" 2>&1 &
	REDIS_PID=$!
	MF_PIDS+=("$REDIS_PID")
	for _ in $(seq 1 50); do
		redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.1
	done
	fail "redis-server did not start: $(tail -n 5 "$MF_TMP/redis.log")"
}
stop_redis() {
	kill -CONT "$REDIS_PID" 2>/dev/null
	kill "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
}
trap 'stop_redis; mf_cleanup' EXIT

# Machine A and machine B: same Redis, each its own local copy.
qa() { MEMFENCE_STATE_DIR=$MF_TMP/a "$MEMFENCE" quarantine --quarantine "$URL" "$@"; }
qb() { MEMFENCE_STATE_DIR=$MF_TMP/b "$MEMFENCE" quarantine --quarantine "$URL" "$@"; }
field() { $PY -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
rdeaths() { redis-cli -p "$PORT" -n 2 hget "memfence:q:r:$1" deaths; }

start_redis

# --- two machines, one count ------------------------------------------------
( for i in $(seq 1 20); do qa record poison --name tasks.explode --cause oom_kill --peak 900M >/dev/null || exit 1; done ) &
pa=$!
( for i in $(seq 1 20); do qb record poison --cause sigkill >/dev/null || exit 1; done ) &
pb=$!
wait $pa || fail "machine A could not record"
wait $pb || fail "machine B could not record"
expect_eq "deaths in Redis from 2 x 20 records" 40 "$(rdeaths poison)"
qa check poison >/dev/null; expect_eq "A: check" 3 $?
qb check poison >/dev/null; expect_eq "B: check" 3 $?
expect_eq "B sees A's name" tasks.explode "$(qb show poison --json | field 'd["record"]["name"]')"
expect_eq "keys are prefixed" "" "$(redis-cli -p "$PORT" -n 2 --scan | grep -v '^memfence:q:')"

# Ids are opaque text: spaces, quotes, % and non-ASCII go through unchanged.
odd='order 42 "%s" ü'
qa record "$odd" --cause oom_kill >/dev/null || fail "record of an odd id"
qb record "$odd" --cause oom_kill >/dev/null || fail "record of an odd id"
qa check "$odd" >/dev/null; expect_eq "check of an odd id" 3 $?
expect_eq "odd id listed as is" "$odd" \
	"$(qb list --json | $PY -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)["records"] if r["id"].startswith("order")][0])')"

# Threshold across machines: A records once, B once -> quarantined at 2.
qa record fresh --cause oom_kill >/dev/null
qb check fresh >/dev/null; expect_eq "B: one death recorded by A" 0 $?
qb record fresh --cause oom_kill >/dev/null
qa check fresh >/dev/null; expect_eq "A: two deaths across machines" 3 $?

# --- Redis hung: commands time out ------------------------------------------
kill -STOP "$REDIS_PID"
out=$(qa record hung --name tasks.slow --cause oom_kill --json 2>"$MF_TMP/err")
expect_eq "record while Redis hangs: status" 0 $?
expect_match "record while Redis hangs: error" "cannot reach $URL: .*kept in the local copy" "$(cat "$MF_TMP/err")"
expect_eq "record while Redis hangs: synced" False "$(echo "$out" | field 'd["synced"]')"
expect_eq "record while Redis hangs: unsynced" 1 "$(echo "$out" | field 'd["record"]["unsynced"]')"
qa record hung --cause oom_kill >/dev/null 2>&1
qa check hung >/dev/null 2>"$MF_TMP/err"
expect_eq "check from the local copy" 3 $?
expect_match "check says it used the local copy" "answering from the local copy" "$(cat "$MF_TMP/err")"
qa clear hung >/dev/null 2>"$MF_TMP/err"; expect_eq "clear while Redis hangs" 1 $?
expect_match "clear refused" "nothing cleared" "$(cat "$MF_TMP/err")"
kill -CONT "$REDIS_PID"
# The next call that reaches Redis sends both deaths, each exactly once
# (a command that timed out may still have run: its token makes the replay
# a no-op).
qa show hung >/dev/null 2>"$MF_TMP/err" || fail "show after Redis is back: $(cat "$MF_TMP/err")"
expect_match "sync reported" "sent 2 death\(s\) kept locally" "$(cat "$MF_TMP/err")"
expect_eq "deaths in Redis after the hang" 2 "$(rdeaths hung)"
expect_eq "name kept" tasks.slow "$(qb show hung --json | field 'd["record"]["name"]')"
expect_eq "nothing left unsynced" 0 "$(qa show hung --json | field 'd["record"]["unsynced"]')"
qa sync >/dev/null; expect_eq "deaths after an extra sync" 2 "$(rdeaths hung)"

# --- a death whose reply was lost is not counted twice -----------------------
# What a timeout after Redis ran the script leaves behind: the death's token
# already in Redis, and the same death still pending in the local copy.
qa record replayed --cause oom_kill >/dev/null
tok=0123456789abcdef0123456789abcdef
redis-cli -p "$PORT" -n 2 set "memfence:q:sync:$tok" 1 >/dev/null
redis-cli -p "$PORT" -n 2 set "memfence:q:sync:${tok}ff" 1 >/dev/null
$PY - "$MF_TMP/a/quarantine.db" "$tok" <<'EOF' || fail "cannot add a pending death"
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
for tok, id in ((sys.argv[2], "replayed"), (sys.argv[2] + "ff", "cleared-since")):
    db.execute("INSERT INTO pending (token, id, cause, at_ms, threshold) VALUES (?, ?, 'oom_kill', ?, 2)",
               (tok, id, int(time.time() * 1000)))
db.commit()
EOF
expect_match "replayed deaths are sent" "sent 2 death" "$(qa sync)"
expect_eq "a replayed death counts once" 1 "$(rdeaths replayed)"
expect_eq "a replayed death of a cleared id does not resurrect it" "" "$(rdeaths cleared-since)"
expect_eq "nothing pending after the replay" 0 \
	"$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from pending").fetchone()[0])' "$MF_TMP/a/quarantine.db")"

# --- Redis gone, then a new (empty) one -------------------------------------
stop_redis
qa record gone --cause oom_kill >/dev/null 2>"$MF_TMP/err"
expect_match "record while Redis is down" "Connection refused.*kept in the local copy" "$(cat "$MF_TMP/err")"
qb record gone --cause oom_kill >/dev/null 2>&1
qb record gone --cause oom_kill >/dev/null 2>&1
qa sync >/dev/null 2>"$MF_TMP/err"; expect_eq "sync while Redis is down" 1 $?
expect_match "sync says why" "cannot reach $URL" "$(cat "$MF_TMP/err")"
expect_match "list from the local copy" 'gone .*\(unsynced\)' "$(qb list 2>/dev/null)"
start_redis
expect_match "A syncs" "sent 1 death" "$(qa sync)"
expect_match "B syncs" "sent 2 death" "$(qb sync)"
expect_eq "deaths in the new Redis" 3 "$(rdeaths gone)"
qa check gone >/dev/null; expect_eq "quarantined fleet-wide after sync" 3 $?

# --- fleet-wide clear; bad database number -----------------------------------
qa clear --all >/dev/null || fail "clear --all"
qb check gone >/dev/null; expect_eq "B after A cleared all" 0 $?
expect_eq "no records left" 0 "$(redis-cli -p "$PORT" -n 2 --scan --pattern 'memfence:q:r:*' | wc -l)"
MEMFENCE_STATE_DIR=$MF_TMP/c "$MEMFENCE" quarantine --quarantine "redis://127.0.0.1:$PORT/999" \
	record x >/dev/null 2>"$MF_TMP/err"
expect_match "bad database number" "DB index is out of range" "$(cat "$MF_TMP/err")"
echo "quarantine redis: ok"
