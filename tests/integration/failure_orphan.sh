#!/usr/bin/env bash
# The supervisor killed with SIGKILL (not PID 1): its program is told to end
# (SIGTERM, PR_SET_PDEATHSIG) instead of living on unsupervised; one that
# will not end is still running at the next start, which then records no
# quarantine death for its requests and does not call it killed
# (docs/failure.md).
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"

SD=$MF_TMP/state
"$MEMFENCE" run --http off --state-dir "$SD" -- sleep 300 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do [ -f "$SD/journal.json" ] && pgrep -P "$SUP" sleep >/dev/null && break; sleep 0.1; done
child=$(pgrep -P "$SUP" sleep) || fail "the program did not start: $(cat "$MF_TMP/err")"
MF_PIDS+=("$child")
kill -KILL "$SUP"
wait "$SUP" 2>/dev/null
for i in $(seq 30); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
kill -0 "$child" 2>/dev/null && fail "the program outlived its supervisor by 3 s"
"$MEMFENCE" run --http off --no-account --state-dir "$SD" -- true 2>"$MF_TMP/err2"
rm -rf "$SD/reports"

# A program that ignores SIGTERM, with a task in flight.
cat >"$MF_TMP/req.py" <<'PY'
import ctypes, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
lib = ctypes.CDLL(None)
lib.memfence_scope_begin(b"task long", b"t-still-running", ctypes.c_size_t(0))
x = b"\x01" * (4 << 20)
open(sys.argv[1], "w").close()
time.sleep(120)
PY
"$MEMFENCE" run --http off --state-dir "$SD" -- $PY "$MF_TMP/req.py" "$MF_TMP/inside" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do [ -f "$MF_TMP/inside" ] && break; sleep 0.1; done
[ -f "$MF_TMP/inside" ] || fail "the program did not start: $(cat "$MF_TMP/err")"
sleep 1.2   # the journal is rewritten once a second
child=$(pgrep -P "$SUP") || fail "no program"
MF_PIDS+=("$child")
kill -KILL "$SUP"
wait "$SUP" 2>/dev/null
sleep 0.5
kill -0 "$child" 2>/dev/null || fail "the program that ignores SIGTERM is gone"

"$MEMFENCE" run --http off --no-account --state-dir "$SD" -- true 2>"$MF_TMP/err2"
expect_eq "next start ($(cat "$MF_TMP/err2"))" 0 $?
rep=$(ls "$SD"/reports/memfence-report-*.json | head -n1)
[ -f "$rep" ] || fail "no report of the lost run: $(cat "$MF_TMP/err2")"
$PY - "$rep" "$child" <<'PY' || fail "lost report: $(cat "$rep")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cause"] == "lost", r["cause"]
assert "still runs" in r["detail"] and sys.argv[2] in r["detail"], r["detail"]
PY
"$MEMFENCE" quarantine --state-dir "$SD" list >"$MF_TMP/q" 2>&1 || fail "quarantine list: $(cat "$MF_TMP/q")"
grep -q "t-still-running" "$MF_TMP/q" && fail "a death was recorded for a task still running: $(cat "$MF_TMP/q")"

exit 0
