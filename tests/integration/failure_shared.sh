#!/usr/bin/env bash
# What two supervisors must not share: a state directory (the second is
# refused, and the first one's segment and journal stay), and an HTTP port
# (the second exits 1 instead of answering every other probe).
. "$(dirname "$0")/../lib.sh"

SD=$MF_TMP/state
PORT=$(mf_free_port)
"$MEMFENCE" run --http "127.0.0.1:$PORT" --state-dir "$SD" -- sleep 300 2>"$MF_TMP/err1" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do
	[ -f "$SD/journal.json" ] && [ -f "$SD/segment.seg" ] && pgrep -P "$SUP" sleep >/dev/null && break
	sleep 0.1
done
[ -f "$SD/journal.json" ] || fail "no journal in $SD: $(cat "$MF_TMP/err1")"
[ -f "$SD/segment.seg" ] || fail "no segment in $SD: $(cat "$MF_TMP/err1")"

timeout 20 "$MEMFENCE" run --http off --state-dir "$SD" -- echo second >"$MF_TMP/out" 2>"$MF_TMP/err2"
rc=$?
expect_eq "second run on the same state directory: status ($(cat "$MF_TMP/err2"))" 1 "$rc"
expect_eq "second run: lines on stderr ($(cat "$MF_TMP/err2"))" 1 "$(wc -l <"$MF_TMP/err2")"
expect_match "second run: message" "in use by another memfence run \\(pid $SUP\\)" "$(cat "$MF_TMP/err2")"
[ -s "$MF_TMP/out" ] && fail "the second run ran its program"
[ -f "$SD/segment.seg" ] || fail "the second run removed the first one's segment"
[ -f "$SD/journal.json" ] || fail "the second run removed the first one's journal"
[ -d "$SD/reports" ] && fail "the second run reported the first one as lost: $(ls "$SD/reports")"

# The same port: refused, exit 1, one line.
timeout 20 "$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account -- echo second \
	>"$MF_TMP/out" 2>"$MF_TMP/err3"
rc=$?
expect_eq "second run on the same port: status ($(cat "$MF_TMP/err3"))" 1 "$rc"
expect_eq "second run on the same port: lines on stderr ($(cat "$MF_TMP/err3"))" 1 \
	"$(wc -l <"$MF_TMP/err3")"
[ -s "$MF_TMP/out" ] && fail "the second run on the same port ran its program"

kill -TERM "$SUP"
wait "$SUP"
# Once the first has ended, the directory is free again.
timeout 20 "$MEMFENCE" run --http off --state-dir "$SD" -- echo third >"$MF_TMP/out" 2>"$MF_TMP/err4"
expect_eq "run after the first ended ($(cat "$MF_TMP/err4"))" 0 $?
expect_eq "output" third "$(cat "$MF_TMP/out")"
exit 0
