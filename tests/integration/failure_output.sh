#!/usr/bin/env bash
# What memfence prints from files others may write carries no terminal
# escapes (report, quarantine list, profile report, stat), and the shim's
# warnings are whole lines: one write() each, so many processes warning at
# once do not interleave (docs/failure.md).
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
ESC=$(printf '\033')
C1=$(printf '\302\233')   # U+009B, CSI in one character

no_escape() {   # WHAT FILE
	if grep -q "$ESC" "$2" || grep -q "$C1" "$2"; then
		fail "$1 prints a terminal escape: $(cat -v "$2")"
	fi
}

# A post-mortem with escapes in its strings.
R=$MF_TMP/r
"$MEMFENCE" run --http off --report-dir "$R" -- sh -c 'kill -USR1 $$' 2>/dev/null
pm=$(ls "$R"/memfence-report-*.json | head -n1)
[ -f "$pm" ] || fail "no post-mortem"
$PY - "$pm" "$MF_TMP/hostile.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["detail"] = "\x1b]0;owned\x07\x1b[2J killed \u009b31m"
r["child"]["command"] = ["\x1b[31mred"]
r["in_flight"] = [{"pid": 1, "tid": 1, "name": "\x1b[5mblink", "id": "x\x1b[0m", "allocated": 1,
                   "freed": 0, "net": 1, "peak": 1, "budget": 0, "failed": 0, "age_s": 1.0}]
json.dump(r, open(sys.argv[2], "w"))
PY
"$MEMFENCE" report "$MF_TMP/hostile.json" >"$MF_TMP/out" 2>&1 || fail "report: $(cat -v "$MF_TMP/out")"
grep -q "killed" "$MF_TMP/out" || fail "report lost the text around the escapes: $(cat -v "$MF_TMP/out")"
no_escape "report" "$MF_TMP/out"

# A quarantine store written by someone else: escapes in a record's id,
# name and host (the command refuses them; the file does not).
Q=$MF_TMP/q.db
"$MEMFENCE" quarantine --quarantine "$Q" record task-1 >/dev/null 2>&1 || fail "quarantine record"
$PY - "$Q" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE quarantine SET id = ?, name = ?, host = ?",
           ("task\x1b[31m-1", "na\x1b]0;owned\x07me", "h\u009b2Jost"))
db.commit()
PY
"$MEMFENCE" quarantine --quarantine "$Q" list >"$MF_TMP/out" 2>&1 || fail "quarantine list: $(cat -v "$MF_TMP/out")"
grep -q "task" "$MF_TMP/out" || fail "quarantine list lost the record: $(cat -v "$MF_TMP/out")"
no_escape "quarantine list" "$MF_TMP/out"
"$MEMFENCE" quarantine --quarantine "$Q" export >"$MF_TMP/out" 2>&1
no_escape "quarantine export" "$MF_TMP/out"

# A profile whose scope and code names carry escapes.
printf 'memfence-profile 1\npid 1\nrate 65536\nS 1\tsc%s[2Jope\nc 0\tfu%s]0;x\anc\tfi%sle.py\t1\ns 1 1 10 1 10 1 10 1 0 0\tp0:3\nend\n' \
	"$ESC" "$ESC" "$ESC" >"$MF_TMP/hostile.prof"
"$MEMFENCE" profile report "$MF_TMP/hostile.prof" >"$MF_TMP/out" 2>&1 || fail "profile report: $(cat -v "$MF_TMP/out")"
no_escape "profile report" "$MF_TMP/out"
"$MEMFENCE" report "$MF_TMP/hostile.prof" >"$MF_TMP/out" 2>&1
no_escape "report of a profile" "$MF_TMP/out"
# Errors that quote the file are cleaned too.
printf 'memfence-profile 1\nbad %s[2J line\n' "$ESC" >"$MF_TMP/bad.prof"
"$MEMFENCE" profile report "$MF_TMP/bad.prof" >"$MF_TMP/out" 2>&1
no_escape "profile report's error" "$MF_TMP/out"

# A shim warning is one write() (strace counts them).
if command -v strace >/dev/null; then
	MEMFENCE_ACCOUNT=1 MEMFENCE_HEAP_LIMIT=garbage LD_PRELOAD="$MF_BUILD/libmemfence.so" \
		strace -f -e trace=write -o "$MF_TMP/trace" true 2>/dev/null
	n=$(grep -c 'write(2, ".*memfence' "$MF_TMP/trace")
	parts=$(grep -c '^[0-9]* *write(2,' "$MF_TMP/trace")
	expect_eq "write() calls for one shim warning ($(cat "$MF_TMP/trace"))" 1 "$parts"
	expect_eq "writes naming memfence" 1 "$n"
else
	skip "strace is not installed"
fi

# 80 processes, 64 slots: the warnings are whole lines. Each lives 5 s, so
# that on a loaded host the first are still alive when the 65th starts
# (with 1 s, starting 80 took longer than that at a load of 20).
"$MEMFENCE" run --http off -- sh -c 'for i in $(seq 80); do sleep 5 & done; wait' 2>"$MF_TMP/err"
grep -c "no free slot" "$MF_TMP/err" >/dev/null || fail "no warning from 80 processes: $(cat "$MF_TMP/err")"
bad=$(grep "no free slot" "$MF_TMP/err" | grep -vc '^memfence: the stats segment has no free slot: counting in private memory$')
expect_eq "interleaved warning lines ($(grep -m3 'memfence: .*memfence' "$MF_TMP/err"))" 0 "$bad"
exit 0
