#!/usr/bin/env bash
# `memfence quarantine` on the embedded SQLite store: the record/check
# contract the integrations use (exit 0 may run, 3 quarantined), list, show,
# export (CSV and JSON) and import, clear, writers in parallel processes, and
# bad input of every kind: one clear line on stderr and the documented
# non-zero status, never a crash.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
export MEMFENCE_STATE_DIR=$MF_TMP/state
unset MEMFENCE_QUARANTINE MEMFENCE_QUARANTINE_THRESHOLD MEMFENCE_REDIS_TIMEOUT
q() { "$MEMFENCE" quarantine "$@"; }

# --- the record/check contract -------------------------------------------
q check task-1 >/dev/null; expect_eq "check of an unknown id" 0 $?
out=$(q record task-1 --name tasks.resize --cause oom_kill --peak 300M --allocated 1G --net 280M --json)
expect_eq "record status" 0 $?
expect_eq "deaths after one" 1 "$(echo "$out" | $PY -c 'import json,sys; print(json.load(sys.stdin)["record"]["deaths"])')"
q check task-1 >/dev/null; expect_eq "check after one death" 0 $?
q record task-1 --cause sigkill >/dev/null || fail "second record failed"
q check task-1 >/dev/null; expect_eq "check after two deaths (default threshold 2)" 3 $?
q check task-1 --threshold 3 >/dev/null; expect_eq "check with a higher threshold" 0 $?
MEMFENCE_QUARANTINE_THRESHOLD=3 q check task-1 >/dev/null
expect_eq "threshold from the environment" 0 $?

out=$(q show task-1 --json)
$PY - "$out" <<'EOF' || fail "show --json: $out"
import json, sys
r = json.loads(sys.argv[1])["record"]
assert r["id"] == "task-1" and r["name"] == "tasks.resize", r
assert r["deaths"] == 2 and r["state"] == "quarantined" and r["quarantined"] is True, r
assert r["cause"] == "sigkill", r            # the last death's
assert r["peak"] == 300 << 20 and r["allocated"] == 1 << 30, r
assert r["first_death_ms"] <= r["last_death_ms"], r
EOF
expect_match "human show" 'state: +quarantined \(2 of 2 deaths\)' "$(q show task-1)"
expect_match "list" 'task-1 +tasks.resize +2 quarantined' "$(q list)"

# --- parallel writers share one count ------------------------------------
for w in 1 2 3; do
	( for i in $(seq 1 15); do q record shared --cause oom_kill >/dev/null || exit 1; done ) &
	MF_PIDS+=($!)
done
for p in "${MF_PIDS[@]}"; do wait "$p" || fail "a parallel writer failed"; done
MF_PIDS=()
expect_eq "deaths from 3 writers x 15" 45 \
	"$(q show shared --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["record"]["deaths"])')"

# --- export, import, clear ------------------------------------------------
csv=$(q export)
expect_match "CSV header" '^id,name,host,deaths,threshold,state,' "$csv"
expect_match "CSV row" '^task-1,tasks.resize,[^,]*,2,2,quarantined,' "$(echo "$csv" | grep '^task-1,')"
q export --json >"$MF_TMP/export.json" || fail "export --json"
q --quarantine "sqlite:$MF_TMP/copy.db" import "$MF_TMP/export.json" >/dev/null || fail "import"
diff <(q export --json | $PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["records"], sort_keys=True))') \
     <(q --quarantine "$MF_TMP/copy.db" export --json | $PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["records"], sort_keys=True))') \
	|| fail "export -> import -> export changed the records"
q clear task-1 >/dev/null; expect_eq "clear" 0 $?
q show task-1 >/dev/null 2>"$MF_TMP/err"; expect_eq "show after clear" 1 $?
expect_match "show after clear says why" "no quarantine record for id 'task-1'" "$(cat "$MF_TMP/err")"
q check task-1 >/dev/null; expect_eq "check after clear" 0 $?
q clear task-1 >/dev/null 2>&1; expect_eq "clear of a missing id" 1 $?
expect_match "clear --all" 'cleared 1 record' "$(q clear --all)"
expect_match "empty list" '^no records' "$(q list)"

# --- bad input: status and one clear line ----------------------------------
long=$(printf 'x%.0s' $(seq 1 256))
printf 'garbage that is not a database\n%.0s' $(seq 1 200) >"$MF_TMP/garbage.db"
$PY -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit()' \
	"$MF_TMP/foreign.db"
echo '{"records": [{"id": "a", "deaths": "two"}]}' >"$MF_TMP/bad.json"
echo 'not json' >"$MF_TMP/notjson.json"
#  status | stderr pattern                  | arguments
cases=$(cat <<EOF
2|unknown quarantine verb 'frobnicate'|frobnicate
2|usage: memfence quarantine show ID|show
2|takes no argument|list extra
2|invalid id: id too long: 256 bytes|check $long
2|invalid id: empty id|record ''
2|invalid --cause 'bored'|record t --cause bored
2|invalid --peak '12Q'|record t --peak 12Q
2|invalid --threshold '0'|check t --threshold 0
2|invalid --threshold 'x'|record t --threshold x
2|--name does not apply|check t --name n
2|invalid --redis-timeout|list --redis-timeout 0
2|invalid Redis URL 'redis://127.0.0.1:notaport/0'|list --quarantine redis://127.0.0.1:notaport/0
2|invalid Redis URL 'redis://:6379'|list --quarantine redis://:6379
2|invalid Redis URL 'redis://h:70000'|list --quarantine redis://h:70000
2|invalid Redis URL 'redis://h/zero'|list --quarantine redis://h/zero
2|TLS is not supported|list --quarantine rediss://h
2|use a file path, sqlite:PATH or redis|list --quarantine mysql://h/db
2|no file after sqlite:|list --quarantine sqlite:
1|is corrupt or not a database|list --quarantine $MF_TMP/garbage.db
1|another program|check t --quarantine $MF_TMP/foreign.db
2|record 1: "deaths" must be an integer|import $MF_TMP/bad.json
2|cannot read .*notjson.json|import $MF_TMP/notjson.json
2|cannot read .*missing.json|import $MF_TMP/missing.json
2|usage: memfence quarantine clear ID|clear
1|cannot create the directory of /proc/memfence-nope/quarantine.db|list --state-dir /proc/memfence-nope
EOF
)
while IFS='|' read -r want pattern args; do
	eval "set -- $args"
	"$MEMFENCE" quarantine "$@" >"$MF_TMP/out" 2>"$MF_TMP/err"
	rc=$?
	[ "$rc" = "$want" ] || fail "quarantine $args: exit $rc, expected $want ($(cat "$MF_TMP/err"))"
	expect_eq "quarantine $args: stderr lines" 1 "$(wc -l <"$MF_TMP/err")"
	grep -Eq -- "$pattern" "$MF_TMP/err" || fail "quarantine $args: stderr '$(cat "$MF_TMP/err")' lacks /$pattern/"
	grep -q '^memfence: ' "$MF_TMP/err" || fail "quarantine $args: error not prefixed"
done <<<"$cases"

# The garbage file was left alone, not "repaired" into an empty store.
grep -q 'garbage that is not a database' "$MF_TMP/garbage.db" || fail "garbage file was rewritten"
echo "quarantine cli: ok"
