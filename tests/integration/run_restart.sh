#!/usr/bin/env bash
# memfence run --restart: never, always (with exponential backoff and a
# cap, counted in /metrics), on-oom (a plain SIGKILL is not an OOM kill),
# and a stop signal while a restart is pending.
. "$(dirname "$0")/../lib.sh"

PORT=$(mf_free_port)
N=$MF_TMP/starts
R=$MF_TMP/r

# never (the default): one start.
"$MEMFENCE" run --http off --no-account --report-dir "$R" -- sh -c "echo x >> $N; exit 4" 2>/dev/null
expect_eq "status" 4 $?
expect_eq "starts with --restart never" 1 "$(wc -l <"$N")"

# always: the program fails 4 times, then the fifth start stays up.
: >"$N"
cat >"$MF_TMP/prog.sh" <<EOF2
#!/bin/sh
echo x >> $N
[ \$(wc -l < $N) -ge 5 ] && exec sleep 60
exit 1
EOF2
chmod +x "$MF_TMP/prog.sh"
"$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account --report-dir "$R" --restart always \
	--restart-delay 100ms --restart-max-delay 400ms -- "$MF_TMP/prog.sh" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do [ "$(wc -l <"$N")" -ge 5 ] && break; sleep 0.1; done
expect_eq "starts" 5 "$(wc -l <"$N")"
# The delays memfence chose: doubling from 100ms, capped at 400ms.
delays=$(grep -o 'restarting the program in [0-9.]*s' "$MF_TMP/err" | awk '{print $NF}' | tr '\n' ' ')
expect_eq "backoff delays" "0.1s 0.2s 0.4s 0.4s " "$delays"
for i in $(seq 50); do
	m=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics") && echo "$m" | grep -q '^memfence_child_up 1' && break
	sleep 0.1
done
expect_match "restarts counted" '^memfence_restarts_total 4$' "$(echo "$m" | grep restarts_total)"
expect_match "exits counted" 'memfence_child_exits_total\{cause="exit"\} 4' "$m"
kill -TERM "$SUP"; wait "$SUP"
expect_eq "status after SIGTERM" 143 $?

# on-oom: a SIGKILL that is not an OOM kill is final.
: >"$N"
"$MEMFENCE" run --http off --no-account --report-dir "$R" --restart on-oom --restart-delay 100ms \
	-- sh -c "echo x >> $N; kill -KILL \$\$" 2>"$MF_TMP/err"
expect_eq "status" 137 $?
expect_eq "starts with --restart on-oom after a plain SIGKILL" 1 "$(wc -l <"$N")"

# A stop signal while a restart is pending ends memfence at once.
: >"$N"
"$MEMFENCE" run --http off --no-account --report-dir "$R" --restart always --restart-delay 30s \
	-- sh -c "echo x >> $N; exit 5" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 50); do grep -q restarting "$MF_TMP/err" && break; sleep 0.1; done
kill -TERM "$SUP"
for i in $(seq 50); do kill -0 "$SUP" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SUP" 2>/dev/null && fail "memfence still waits to restart after SIGTERM"
wait "$SUP"
expect_eq "status: the last program's" 5 $?
expect_eq "starts" 1 "$(wc -l <"$N")"

# A crash loop keeps restarting, each crash reported, but the report
# directory keeps only the newest 100.
"$MEMFENCE" run --http off --no-account --report-dir "$MF_TMP/loop" --restart always \
	--restart-delay 10ms --restart-max-delay 10ms -- sh -c 'kill -SEGV $$' 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 300); do [ "$(grep -c restarting "$MF_TMP/err")" -ge 110 ] && break; sleep 0.1; done
kill -TERM "$SUP"; wait "$SUP"
[ "$(grep -c restarting "$MF_TMP/err")" -ge 110 ] || fail "the crash loop did not go on"
expect_eq "reports kept" 100 "$(ls "$MF_TMP/loop" | grep -c '^memfence-report-.*json$')"
echo ok
