#!/usr/bin/env bash
# memfence run: exit statuses, option errors, reports of abnormal deaths,
# and `memfence report` on good and bad input.
. "$(dirname "$0")/../lib.sh"

R=$MF_TMP/reports
run() { "$MEMFENCE" run --http off --no-account --report-dir "$R" "$@"; }

# The program's exit status is memfence's.
run -- sh -c 'exit 3' 2>"$MF_TMP/err"; expect_eq "exit status" 3 $?
run -- true 2>"$MF_TMP/err"; expect_eq "exit status of true" 0 $?
[ -d "$R" ] && [ -n "$(ls "$R")" ] && fail "a normal exit wrote a report: $(ls "$R")"

# Death by signal N: 128+N, and a post-mortem.
run -- sh -c 'kill -SEGV $$' 2>"$MF_TMP/err"; expect_eq "status after SIGSEGV" 139 $?
grep -q "killed by SIGSEGV" "$MF_TMP/err" || fail "no summary on stderr: $(cat "$MF_TMP/err")"
rep=$(ls "$R"/memfence-report-*.json | head -n1)
[ -f "$rep" ] || fail "no report written in $R"
$PY - "$rep" <<'PY' || fail "report content"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["memfence_report"] == 1, r
assert r["cause"] == "signal", r["cause"]
assert r["child"]["signal"] == 11 and r["child"]["signal_name"] == "SIGSEGV", r["child"]
assert r["child"]["command"] == ["sh", "-c", "kill -SEGV $$"], r["child"]["command"]
assert r["memory"]["limit"] > 0 and isinstance(r["timeline"], list)
PY
out=$("$MEMFENCE" report "$rep") || fail "memfence report failed"
expect_match "report text" "killed by SIGSEGV" "$out"
expect_match "report text" "cause: signal" "$out"
"$MEMFENCE" report --json "$rep" | $PY -c 'import json,sys; assert json.load(sys.stdin)["cause"] == "signal"' ||
	fail "report --json is not the document"

# SIGKILL that is not an OOM kill is told apart.
run -- sh -c 'kill -KILL $$' 2>"$MF_TMP/err"; expect_eq "status after SIGKILL" 137 $?
grep -q "not by the OOM killer" "$MF_TMP/err" || fail "SIGKILL not classified: $(cat "$MF_TMP/err")"

# Bad input: one line naming the problem, status 2 (1 for unreadable files).
check_err() { # STATUS PATTERN CMD...
	local want=$1 pat=$2 rc
	shift 2
	"$@" >"$MF_TMP/out" 2>"$MF_TMP/err"; rc=$?
	expect_eq "status of $*" "$want" "$rc"
	expect_eq "error lines of $*" 1 "$(wc -l <"$MF_TMP/err")"
	grep -q -- "$pat" "$MF_TMP/err" || fail "$*: error '$(cat "$MF_TMP/err")' does not name $pat"
}
check_err 2 "restart" "$MEMFENCE" run --restart sometimes -- true
check_err 2 "ready-grace" "$MEMFENCE" run --ready-grace soon -- true
check_err 2 "fail-ratio" "$MEMFENCE" run --fail-ratio 150% -- true
check_err 2 "request-need" "$MEMFENCE" run --request-need lots -- true
check_err 2 "MEMFENCE_FAIL_MIN" env MEMFENCE_FAIL_MIN=x "$MEMFENCE" run -- true
check_err 2 "no program" "$MEMFENCE" run --http off
check_err 2 "http" "$MEMFENCE" run --no-account --http 127.0.0.1:99999 -- true
check_err 2 "expected one" "$MEMFENCE" report
check_err 1 "cannot read" "$MEMFENCE" report "$MF_TMP/nope.json"
echo '{"a": 1}' >"$MF_TMP/other.json"
check_err 1 "not a memfence report" "$MEMFENCE" report "$MF_TMP/other.json"
{ printf '\0'; head -c 300 /dev/urandom; } >"$MF_TMP/junk.json"
check_err 1 "not a file memfence writes" "$MEMFENCE" report "$MF_TMP/junk.json"
printf '{"memfence_report": 1, "cause": ' >"$MF_TMP/cut.json"
check_err 1 "cannot read" "$MEMFENCE" report "$MF_TMP/cut.json"

# The supervisor tries oom_score_adj -1000 for itself and says whether it
# held; the program keeps its own value either way.
run -- sh -c 'cat /proc/self/oom_score_adj' >"$MF_TMP/adj" 2>"$MF_TMP/err"
expect_eq "the program's oom_score_adj" "$(cat /proc/self/oom_score_adj)" "$(cat "$MF_TMP/adj")"
if [ $(( 0x$(awk '/^CapEff/ { print $2 }' /proc/self/status) >> 24 & 1 )) = 1 ]; then
	grep -q "oom_score_adj" "$MF_TMP/err" && fail "warned although CAP_SYS_RESOURCE is there: $(cat "$MF_TMP/err")"
else
	grep -q "oom_score_adj -1000 refused.*CAP_SYS_RESOURCE" "$MF_TMP/err" ||
		fail "no warning that the OOM protection did not hold: $(cat "$MF_TMP/err")"
fi

# The segment of a supervisor killed with SIGKILL is swept by the next one,
# and so are the files beside it: the serving file (the program writes it
# here), the recycle directory (--restart always makes it), the drain file
# and a temporary one (a supervisor killed while it drained leaves them).
# A link of that name is not memfence's: left alone.
"$MEMFENCE" run --http off --restart always -- sh -c 'echo "$$ serving test" >"$MEMFENCE_SERVING_FILE"; exec sleep 60' 2>/dev/null &
SUP=$!
MF_PIDS+=("$SUP")
seg=/dev/shm/memfence-run-$SUP.seg
for i in $(seq 50); do [ -f "$seg" ] && [ -s "$seg.serving" ] && break; sleep 0.1; done
[ -f "$seg" ] || fail "no segment for the supervisor $SUP"
[ -s "$seg.serving" ] || fail "the program did not write its serving file $seg.serving"
[ -d "$seg.recycle" ] || fail "no recycle directory $seg.recycle"
child=$(pgrep -P "$SUP")
kill -KILL "$SUP" $child
wait "$SUP" 2>/dev/null
echo "recycling 30000 leak: test" >"$seg.drain"
echo "unready test" >"$seg.drain.tmp"
ln -s "$MF_TMP/target" "$seg.serving.1.tmp"
# Any supervisor starting on this machine sweeps (another test's, in a
# parallel run): the check is that no memfence start leaves them, whichever.
[ -f "$seg" ] || echo "note: the killed supervisor's segment was swept by another supervisor already"
"$MEMFENCE" run --http off -- true 2>/dev/null
left=$(ls /dev/shm | grep "^memfence-run-$SUP\.")
rm -f "$seg.serving.1.tmp"
expect_eq "files of a dead supervisor left after the next run" "memfence-run-$SUP.seg.serving.1.tmp" "$left"

# A program that cannot be run: 127, as a shell would say.
run -- "$MF_TMP/does-not-exist" 2>"$MF_TMP/err"; expect_eq "status of a missing program" 127 $?
echo ok
