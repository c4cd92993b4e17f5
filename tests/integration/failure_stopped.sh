#!/usr/bin/env bash
# A stopped program (SIGSTOP, a debugger, Ctrl-Z) is not live and not
# ready, and a stop asked of the supervisor reaches it anyway: the
# supervisor continues it after passing the signal on (docs/failure.md).
. "$(dirname "$0")/../lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

PORT=$(mf_free_port)
"$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account -- sleep 300 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do
	curl -fs "http://127.0.0.1:$PORT/livez" >/dev/null 2>&1 && pgrep -P "$SUP" sleep >/dev/null && break
	sleep 0.1
done
child=$(pgrep -P "$SUP" sleep) || fail "the program did not start: $(cat "$MF_TMP/err")"
expect_eq "/livez while running" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/livez")"

kill -STOP "$child"
for i in $(seq 50); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/livez")" = 503 ] && break
	sleep 0.1
done
expect_eq "/livez while stopped" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/livez")"
expect_match "/livez reason" "stopped" "$(curl -s "http://127.0.0.1:$PORT/livez")"
expect_eq "/readyz while stopped" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")"
expect_match "child_up while stopped" "^memfence_child_up 0" \
	"$(curl -s "http://127.0.0.1:$PORT/metrics" | grep '^memfence_child_up')"

# Continued: live again.
kill -CONT "$child"
for i in $(seq 50); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/livez")" = 200 ] && break
	sleep 0.1
done
expect_eq "/livez once continued" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/livez")"

# Stopped again, then SIGTERM to the supervisor: both end within seconds.
kill -STOP "$child"
sleep 0.3
kill -TERM "$SUP"
for i in $(seq 50); do kill -0 "$SUP" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SUP" 2>/dev/null; then
	kill -CONT "$child"
	fail "the supervisor still waits 5 s after SIGTERM with the program stopped"
fi
wait "$SUP"
expect_eq "status" 143 $?
kill -0 "$child" 2>/dev/null && fail "the program outlived the stop"
exit 0
