#!/usr/bin/env bash
# memfence report FILE: one front door for every file memfence writes. A
# post-mortem, the journal of a state directory, a profile and a stats
# segment are each told by their contents (not their names) and printed as
# their own command prints them; a file of no known kind is a one-line
# error; options of the wrong kind are refused.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
[ -x "$PY" ] || skip "$PY is not installed"
S=$MF_TMP/state
R=$MF_TMP/r

# A post-mortem: the program dies of a signal memfence did not pass on.
"$MEMFENCE" run --http off --report-dir "$R" -- sh -c 'kill -USR1 $$' 2>"$MF_TMP/err"
expect_eq "status of the killed program" 138 $?
pm=$(ls "$R"/memfence-report-*.json 2>/dev/null | head -n1)
[ -n "$pm" ] || fail "no post-mortem written: $(cat "$MF_TMP/err")"
cp "$pm" "$MF_TMP/postmortem.data"

# The journal and the segment of a running program, copied while it runs.
"$MEMFENCE" run --http off --state-dir "$S" -- sleep 3 2>"$MF_TMP/err2" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do [ -s "$S/journal.json" ] && [ -s "$S/segment.seg" ] && break; sleep 0.05; done
cp "$S/journal.json" "$MF_TMP/journal.data" || fail "no journal: $(cat "$MF_TMP/err2")"
cp "$S/segment.seg" "$MF_TMP/segment.data" || fail "no segment: $(cat "$MF_TMP/err2")"

# A profile.
"$MEMFENCE" profile -o "$MF_TMP/profile.data" -- $PY -c 'x = [bytearray(1 << 20) for _ in range(16)]' \
	2>"$MF_TMP/err3" || fail "profile: $(cat "$MF_TMP/err3")"

# Post-mortem: the same as before the front door took other kinds.
out=$("$MEMFENCE" report "$MF_TMP/postmortem.data") || fail "report of a post-mortem failed"
expect_match "post-mortem" "cause: signal" "$out"
expect_match "post-mortem" "killed by SIGUSR1" "$out"
"$MEMFENCE" report --json "$MF_TMP/postmortem.data" | $PY -c '
import json, sys; r = json.load(sys.stdin); assert r["cause"] == "signal", r' ||
	fail "report --json of a post-mortem"
"$MEMFENCE" report --format json "$MF_TMP/postmortem.data" | $PY -c '
import json, sys; r = json.load(sys.stdin); assert r["memfence_report"] == 1, r' ||
	fail "report --format json of a post-mortem"

# Journal: the same document, cause "running".
out=$("$MEMFENCE" report "$MF_TMP/journal.data") || fail "report of a journal failed"
expect_match "journal" "cause: running" "$out"
expect_match "journal" "the program is running" "$out"

# Profile: what `memfence profile report` prints, options passed on.
a=$("$MEMFENCE" report "$MF_TMP/profile.data" --top 5) || fail "report of a profile failed"
b=$("$MEMFENCE" profile report "$MF_TMP/profile.data" --top 5)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "report and profile report differ: $a // $b"
a=$("$MEMFENCE" report --json "$MF_TMP/profile.data")
b=$("$MEMFENCE" profile report --format json "$MF_TMP/profile.data")
[ "$a" = "$b" ] || fail "report --json and profile report --format json differ"
echo "$a" | $PY -c 'import json, sys; json.load(sys.stdin)' || fail "profile JSON does not parse"
"$MEMFENCE" report -f collapsed -o "$MF_TMP/c.txt" "$MF_TMP/profile.data" &&
	[ -s "$MF_TMP/c.txt" ] || fail "report --format collapsed -o"

# Segment: what `memfence stat` prints.
out=$("$MEMFENCE" report "$MF_TMP/segment.data") || fail "report of a segment failed"
expect_match "segment" "sleep" "$out"
"$MEMFENCE" report --json "$MF_TMP/segment.data" | $PY -c '
import json, sys
a = json.load(sys.stdin)
import subprocess
b = json.loads(subprocess.run([sys.argv[1], "stat", "--json", sys.argv[2]], stdout=subprocess.PIPE,
                              check=True).stdout)
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
' "$MEMFENCE" "$MF_TMP/segment.data" || fail "report --json of a segment is not stat --json"
wait "$SUP"

# Files of no known kind, and options of another kind: one line each.
printf 'hello\n' >"$MF_TMP/text"
: >"$MF_TMP/empty"
echo '{"cause": "oom-kill"}' >"$MF_TMP/other.json"
for f in text empty other.json missing; do
	"$MEMFENCE" report "$MF_TMP/$f" >/dev/null 2>"$MF_TMP/e"
	expect_eq "status for $f" 1 $?
	expect_eq "error lines for $f" 1 "$(wc -l <"$MF_TMP/e")"
done
"$MEMFENCE" report "$MF_TMP/text" 2>"$MF_TMP/e"
expect_match "text" "is not a file memfence writes" "$(cat "$MF_TMP/e")"
"$MEMFENCE" report --format svg "$MF_TMP/postmortem.data" >/dev/null 2>"$MF_TMP/e"
expect_eq "svg of a post-mortem" 2 $?
expect_match "svg of a post-mortem" "applies to profiles" "$(cat "$MF_TMP/e")"
"$MEMFENCE" report --view live "$MF_TMP/segment.data" >/dev/null 2>"$MF_TMP/e"
expect_eq "--view of a segment" 2 $?
"$MEMFENCE" report --json --format svg "$MF_TMP/profile.data" >/dev/null 2>"$MF_TMP/e"
expect_eq "--json with --format svg" 2 $?
"$MEMFENCE" report >/dev/null 2>&1
expect_eq "no file" 2 $?
"$MEMFENCE" report --help | grep -q "stats segment" || fail "--help does not name the kinds"
echo "ok"
