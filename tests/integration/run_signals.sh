#!/usr/bin/env bash
# memfence run forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2
# and SIGWINCH to the program, and reaps an orphaned grandchild (it is a
# child subreaper when not PID 1).
. "$(dirname "$0")/../lib.sh"

LOG=$MF_TMP/got
cat >"$MF_TMP/child.py" <<'PY'
import os, signal, subprocess, sys, time
log = sys.argv[1]
def note(sig, frame):
    with open(log, "a") as f:
        f.write(signal.Signals(sig).name + "\n")
    if sig == signal.SIGTERM:
        sys.exit(0)
for s in ("SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTERM"):
    signal.signal(getattr(signal, s), note)
# An orphan: the shell exits at once, its sleeping child is reparented.
subprocess.run(["sh", "-c", "sleep 1.5 & echo $! > %s.orphan" % log])
with open(log + ".ready", "w") as f:
    f.write("%d\n" % os.getpid())
while True:
    time.sleep(0.05)
PY

"$MEMFENCE" run --http off --no-account --report-dir "$MF_TMP/r" -- $PY "$MF_TMP/child.py" "$LOG" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do [ -f "$LOG.ready" ] && break; sleep 0.1; done
[ -f "$LOG.ready" ] || fail "the program did not start: $(cat "$MF_TMP/err")"

# The orphan now belongs to the supervisor, which must reap it.
orphan=$(cat "$LOG.orphan")
ppid=$(awk '{print $4}' "/proc/$orphan/stat" 2>/dev/null)
[ -z "$ppid" ] || expect_eq "parent of the orphan" "$SUP" "$ppid"

sent=()
for s in INT HUP QUIT USR1 USR2 WINCH; do
	kill -s "$s" "$SUP"
	sent+=("SIG$s")
	# One at a time: the same signal pending twice would merge into one.
	for i in $(seq 50); do grep -qx "SIG$s" "$LOG" 2>/dev/null && break; sleep 0.1; done
done
for s in "${sent[@]}"; do grep -qx "$s" "$LOG" || fail "$s was not forwarded (got: $(tr '\n' ' ' <"$LOG"))"; done

# Let the orphan end: no zombie may stay under the supervisor.
for i in $(seq 50); do kill -0 "$orphan" 2>/dev/null || break; sleep 0.1; done
sleep 0.3
zombies=$(ps -o stat= --ppid "$SUP" | grep -c '^Z')
expect_eq "zombies left under the supervisor" 0 "$zombies"
kill -0 "$orphan" 2>/dev/null && fail "the orphan $orphan was not reaped"

kill -TERM "$SUP"
wait "$SUP"; rc=$?
grep -qx SIGTERM "$LOG" || fail "SIGTERM was not forwarded"
expect_eq "status after a forwarded SIGTERM the program handled" 0 "$rc"
[ -d "$MF_TMP/r" ] && fail "a requested stop wrote a report"

# A program that dies of the forwarded SIGTERM: 143, and no report.
"$MEMFENCE" run --http off --no-account --report-dir "$MF_TMP/r" -- sleep 30 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 50); do pgrep -P "$SUP" sleep >/dev/null && break; sleep 0.1; done
kill -TERM "$SUP"
wait "$SUP"; rc=$?
expect_eq "status after SIGTERM" 143 "$rc"
[ -d "$MF_TMP/r" ] && fail "a requested stop wrote a report: $(cat "$MF_TMP/err")"
echo ok
