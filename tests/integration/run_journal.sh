#!/usr/bin/env bash
# When the supervisor dies with the program (as in a kernel OOM kill of a
# whole container), the journal under --state-dir survives, and the next
# start writes that run's post-mortem first.
. "$(dirname "$0")/../lib.sh"

SD=$MF_TMP/state
"$MEMFENCE" run --http off --no-account --state-dir "$SD" -- sleep 120 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do [ -f "$SD/journal.json" ] && pgrep -P "$SUP" sleep >/dev/null && break; sleep 0.1; done
[ -f "$SD/journal.json" ] || fail "no journal in $SD: $(cat "$MF_TMP/err")"
child=$(pgrep -P "$SUP" sleep)
sleep 1.2   # a second journal entry with a timeline point
kill -KILL "$SUP" "$child"
wait "$SUP" 2>/dev/null

# Nothing was reported by the dead supervisor.
[ -d "$SD/reports" ] && fail "a report exists before the restart"
"$MEMFENCE" run --http off --no-account --state-dir "$SD" -- true 2>"$MF_TMP/err2"
expect_eq "status" 0 $?
grep -q "ended without a report" "$MF_TMP/err2" || fail "no word of the lost run: $(cat "$MF_TMP/err2")"
rep=$(ls "$SD"/reports/memfence-report-*.json | head -n1)
[ -f "$rep" ] || fail "no post-mortem of the lost run"
$PY - "$rep" "$SUP" "$child" <<'PY' || fail "report content: $(cat "$rep")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cause"] == "lost", r["cause"]
assert r["supervisor"]["pid"] == int(sys.argv[2]), r["supervisor"]
assert r["child"]["pid"] == int(sys.argv[3]), r["child"]
assert r["child"]["command"] == ["sleep", "120"]
assert len(r["timeline"]) >= 1
PY
# A clean end leaves no journal, so the next start reports nothing.
[ -f "$SD/journal.json" ] && fail "journal left after a clean end"
"$MEMFENCE" run --http off --no-account --state-dir "$SD" -- true 2>"$MF_TMP/err3"
grep -q "ended without a report" "$MF_TMP/err3" && fail "a clean run was reported as lost"
expect_eq "reports" 1 "$(ls "$SD"/reports | wc -l)"

# With accounting, the lost run's report names the request in flight.
if [ -f "$MF_BUILD/libmemfence.so" ]; then
	cat >"$MF_TMP/req.py" <<'PY'
import ctypes, sys, time
lib = ctypes.CDLL(None)
lib.memfence_scope_begin(b"task process_video", b"t-7", ctypes.c_size_t(0))
x = b"\x01" * (8 << 20)
open(sys.argv[1], "w").close()
time.sleep(120)
PY
	"$MEMFENCE" run --http off --state-dir "$SD" -- $PY "$MF_TMP/req.py" "$MF_TMP/inside" 2>"$MF_TMP/err" &
	SUP=$!
	MF_PIDS+=("$SUP")
	for i in $(seq 100); do [ -f "$MF_TMP/inside" ] && break; sleep 0.1; done
	sleep 1.2   # the journal is rewritten once a second
	child=$(pgrep -P "$SUP")
	kill -KILL "$SUP" $child
	wait "$SUP" 2>/dev/null
	rm -rf "$SD/reports"
	"$MEMFENCE" run --http off --no-account --state-dir "$SD" -- true 2>"$MF_TMP/err2"
	rep=$(ls "$SD"/reports/memfence-report-*.json | head -n1)
	$PY - "$rep" <<'PY' || fail "lost report with scopes: $(cat "$rep")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cause"] == "lost", r["cause"]
inf = [s for s in r["in_flight"] if s["name"] == "task process_video"]
assert len(inf) == 1 and inf[0]["id"] == "t-7", r["in_flight"]
assert inf[0]["net"] >= 8 << 20, inf
# Taken from the stats segment the lost run left in the state directory.
assert r.get("in_flight_from") == "segment", r.get("in_flight_from")
PY
else
	fail "libmemfence.so is not built"
fi
echo ok
