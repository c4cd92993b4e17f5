#!/usr/bin/env bash
# A real OOM kill in a memory cgroup (--rlimit none, so nothing stops the
# program first): memfence tells it from other SIGKILLs by the cgroup's
# oom_kill counter, writes a post-mortem, and --restart on-oom restarts.
. "$(dirname "$0")/../lib.sh"

mf_need_cgroup oom $((128 << 20))
R=$MF_TMP/r
cat >"$MF_TMP/eat.py" <<'PY'
import os, sys
mark = sys.argv[1]
if os.path.exists(mark):
    sys.exit(0)            # the second start behaves
open(mark, "w").close()
hog = []
while True:
    hog.append(bytearray(8 << 20))
PY
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --no-account --rlimit none --restart on-oom \
	--restart-delay 100ms --report-dir "$R" -- $PY "$MF_TMP/eat.py" "$MF_TMP/mark" 2>"$MF_TMP/err"
rc=$?
expect_eq "status of the restarted program" 0 "$rc"
[ "$(mf_cgroup_oom_kills "$MF_CG")" -ge 1 ] || fail "the kernel did not OOM-kill (test is void)"
grep -q "OOM-killed by the kernel" "$MF_TMP/err" || fail "no OOM summary: $(cat "$MF_TMP/err")"
grep -q "restarting the program" "$MF_TMP/err" || fail "on-oom did not restart"
rep=$(ls "$R"/memfence-report-*.json | head -n1)
[ -f "$rep" ] || fail "no report"
$PY - "$rep" <<'PY' || fail "report content: $(cat "$rep")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cause"] == "oom-kill", r["cause"]
assert r["child"]["signal"] == 9
m = r["memory"]
assert m["oom_kills_after"] > m["oom_kills_before"], m
assert m["limit"] == 128 << 20, m
assert len(r["timeline"]) >= 1
PY
"$MEMFENCE" report "$rep" | grep -q "cause: oom-kill" || fail "memfence report"

# Without a restart policy: 137 and the same classification.
rm -f "$MF_TMP/mark"
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --no-account --rlimit none \
	--report-dir "$R" -- $PY "$MF_TMP/eat.py" "$MF_TMP/mark" 2>"$MF_TMP/err"
expect_eq "status of an OOM-killed program" 137 $?
grep -q "OOM-killed by the kernel" "$MF_TMP/err" || fail "no OOM summary: $(cat "$MF_TMP/err")"

# With accounting on (the default) the segment's reader also watches the
# program's slot, which can be seen dead before the program is reaped: the
# program's own OOM kill must still be an OOM kill (restarted by on-oom),
# not "a process of the program ... the main process lives on". The window
# is a race this test does not force; three rounds give it a chance.
for round in 1 2 3; do
	rm -f "$MF_TMP/mark"
	mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --rlimit none --container-check off \
		--restart on-oom --restart-delay 100ms --report-dir "$MF_TMP/ra$round" \
		-- $PY "$MF_TMP/eat.py" "$MF_TMP/mark" 2>"$MF_TMP/err"
	expect_eq "round $round, accounting on: status of the restarted program ($(cat "$MF_TMP/err"))" 0 $?
	grep -q "restarting the program" "$MF_TMP/err" || fail "round $round: on-oom did not restart: $(cat "$MF_TMP/err")"
	grep -q "lives on" "$MF_TMP/err" && fail "round $round: the program's own OOM kill was taken for a worker's: $(cat "$MF_TMP/err")"
done
echo ok
