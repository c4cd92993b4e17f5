#!/usr/bin/env bash
# What `memfence run` does at start-up and exit that a short program pays
# for: the command does not load libmicrohttpd (and GnuTLS behind it) unless
# its HTTP server is asked something, and then only at the first connection; it
# loads SQLite and hiredis, opens the quarantine store and starts its writer
# thread only when a death is recorded; the supervisor writes its files (the
# model, the journal) whole, not one JSON token per write(2); the program is
# started without a fork of the supervisor. Counted with strace; no timing.
. "$(dirname "$0")/../lib.sh"

command -v strace >/dev/null || skip "strace is not installed"
[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"

# trace ARGS...: the run under strace -f, its trace in $MF_TMP/trace.
trace() {
	strace -f -qq -e trace=openat,write -o "$MF_TMP/trace" \
		"$MEMFENCE" run --report-dir "$MF_TMP/reports" --state-dir "$MF_TMP/state" "$@" \
		-- true 2>"$MF_TMP/err" || fail "run $*: $(cat "$MF_TMP/err")"
}

trace --http off
if grep -q 'libmicrohttpd' "$MF_TMP/trace"; then
	fail "--http off: libmicrohttpd was loaded: $(grep -m1 libmicrohttpd "$MF_TMP/trace")"
fi
echo "ok --http off: libmicrohttpd not loaded"

# Every write(2) of the run (the supervisor's files; true writes nothing).
n=$(grep -c ' write(' "$MF_TMP/trace")
[ "$n" -le 20 ] || fail "--http off: $n write() calls for a run of true (at most 20 expected): \
$(grep ' write(' "$MF_TMP/trace" | head -n 5)"
$PY -c 'import json, sys; assert json.load(open(sys.argv[1]))["memfence_model"] == 1' \
	"$MF_TMP/state/model.json" || fail "the model file is not whole: $(ls -l "$MF_TMP/state")"
echo "ok $n write() calls for the run's files"

# Every system call of the run, each line starting with its pid.
trace_all() {
	strace -f -qq -o "$MF_TMP/all" \
		"$MEMFENCE" run --report-dir "$MF_TMP/reports" --state-dir "$MF_TMP/state" "$@" \
		-- true 2>"$MF_TMP/err" || fail "run $*: $(cat "$MF_TMP/err")"
	sup=$(awk 'NR == 1 { print $1 }' "$MF_TMP/all")
	# The supervisor's own calls, up to the fork of the program.
	awk -v p="$sup" '$1 == p { print } $1 == p && /clone3?\(/ && !/CLONE_THREAD/ { exit }' \
		"$MF_TMP/all" >"$MF_TMP/start"
}

# A run with no death: no store, no library of the store, no writer thread.
trace_all --http off
for lib in libsqlite3 libhiredis libmicrohttpd; do
	if grep -q "$lib" "$MF_TMP/all"; then
		fail "--http off, no death: $lib was loaded: $(grep -m1 "$lib" "$MF_TMP/all")"
	fi
done
if grep -q 'open.*quarantine\.db' "$MF_TMP/all"; then
	fail "no death: the quarantine store was opened: $(grep -m1 'open.*quarantine\.db' "$MF_TMP/all")"
fi
if grep -q 'CLONE_THREAD' "$MF_TMP/all"; then
	fail "--http off, no death: the supervisor started a thread: $(grep -m1 CLONE_THREAD "$MF_TMP/all")"
fi
echo "ok --http off, no death: no SQLite, hiredis, store opened or thread"
# What the supervisor does before the program may start: it was 342 system
# calls when it opened (and created) the store there.
n=$(wc -l <"$MF_TMP/start")
grep -q 'clone' "$MF_TMP/start" || fail "no fork of the program in the trace"
[ "$n" -le 220 ] || fail "--http off: $n system calls before the program's fork (at most 220 \
expected): $(awk '{ sub(/\(.*/, "", $2); print $2 }' "$MF_TMP/start" | sort | uniq -c | sort -rn | head -n 8 | xargs)"
echo "ok $n system calls before the program's fork"

# The program is started by a child that shares the supervisor's memory
# until its exec (clone with CLONE_VM and CLONE_VFORK, as posix_spawn does)
# instead of a fork that copies the supervisor's pages as either side
# writes them; the supervisor made its environment and resolved its limits
# before, so the child reads no file: it only sets signals, the parent-death
# signal and the rlimit, and execs. Before, a fork, and the child read
# /proc/meminfo, /proc/self/cgroup, /proc/self/mountinfo and the cgroup's
# files again (about 60 system calls).
start=$(tail -n 1 "$MF_TMP/start")
case $start in
*CLONE_VM*CLONE_VFORK*) ;;
*) fail "the program was not started by a vfork-style clone: $start" ;;
esac
prog=$(awk '/execve\("[^"]*\/true"/ { print $1; exit }' "$MF_TMP/all")
[ -n "$prog" ] || fail "no exec of the program in the trace"
awk -v p="$prog" '$1 == p && /execve\(/ { exit } $1 == p { print }' "$MF_TMP/all" >"$MF_TMP/child"
if grep -E 'open(at)?\(' "$MF_TMP/child" >"$MF_TMP/child-open"; then
	fail "the child opened files before its exec: $(head -n 3 "$MF_TMP/child-open")"
fi
n=$(wc -l <"$MF_TMP/child")
[ "$n" -le 25 ] || fail "$n system calls in the child before its exec (at most 25 expected): \
$(awk '{ sub(/\(.*/, "", $2); print $2 }' "$MF_TMP/child" | sort | uniq -c | sort -rn | head -n 8 | xargs)"
echo "ok the program started by a vfork-style clone, $n system calls and no file opened before its exec"

# With the server: the port is bound before the program starts (a port in
# use still stops the start); the library is loaded at the first connection,
# so a program nobody asks anything never loads it.
port=$(mf_free_port)
trace_all --http "127.0.0.1:$port"
grep -q "bind(.*htons($port)" "$MF_TMP/start" ||
	fail "--http on: the port was not bound before the program's fork"
if grep -q 'libmicrohttpd' "$MF_TMP/all"; then
	fail "--http on, no connection: libmicrohttpd was loaded: $(grep -m1 libmicrohttpd "$MF_TMP/all")"
fi
echo "ok --http 127.0.0.1:$port: bound before the program starts, libmicrohttpd not loaded without a connection"
# A probe: answered by the library loaded then, after the program started.
port=$(mf_free_port)
strace -f -qq -e trace=openat,execve -o "$MF_TMP/probe" \
	"$MEMFENCE" run --http "127.0.0.1:$port" --report-dir "$MF_TMP/reports" --state-dir "$MF_TMP/state" \
	-- sleep 30 2>"$MF_TMP/err" &
sup=$!
MF_PIDS+=("$sup")
r=
for _ in $(seq 100); do
	r=$(curl -s --max-time 5 "http://127.0.0.1:$port/livez") && [ -n "$r" ] && break
	sleep 0.1
done
expect_match "--http on: the first probe's answer" "^live" "$r"
# strace's child is the supervisor: a stop forwarded to the program.
kill -TERM $(pgrep -P "$sup") 2>/dev/null
wait "$sup" 2>/dev/null
grep -q 'libmicrohttpd' "$MF_TMP/probe" || fail "--http on, probed: libmicrohttpd was not loaded"
awk '/execve\(".*sleep"/ { prog = 1 } /libmicrohttpd/ { print prog + 0; exit }' "$MF_TMP/probe" | grep -qx 1 ||
	fail "--http on, probed: libmicrohttpd was loaded before the program's exec"
echo "ok --http on, probed: libmicrohttpd loaded at the first connection, after the program started"
$PY -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
import subprocess; r = subprocess.run([sys.argv[1], "run", "--http", "127.0.0.1:%d" % s.getsockname()[1],
    "--", "sh", "-c", "echo ran"], capture_output=True, text=True, timeout=60)
sys.exit(0 if r.returncode == 1 and r.stdout == "" and "in use" in r.stderr else
    "port in use: status %d, out %r, err %r" % (r.returncode, r.stdout, r.stderr))' "$MEMFENCE" ||
	fail "--http on a port in use: the program ran or the error was unclear"
echo "ok --http on a port in use: the run stops before the program starts"

# The segment's pages a short run touches (Rss of its mapping, counted, not
# timed): slots are claimed lowest first, so the supervisor reads and the
# shim scans only up to the first slot never claimed, and the shim does not
# zero a never-claimed slot's 15 KiB scope table that is zero already; the
# supervisor's scans of the gate's 512 entries (32 KiB) stop at the
# high-water mark the shims keep. Before, the program touched a page of
# every one of the 64 slots (264 KiB) and the supervisor about 300 KiB,
# then 60 with the gate's entries; now 4 and 16 to 28.
"$MEMFENCE" run --http off --report-dir "$MF_TMP/reports" -- "$PY" -c '
import os, sys
def rss(pid, path):
    kib, cur = 0, False
    for line in open("/proc/%d/smaps" % pid):
        f = line.split()
        if "-" in f[0] and len(f) >= 5:
            cur = f[-1] == path
        elif cur and f[0] == "Rss:":
            kib += int(f[1])
    return kib
seg = os.environ["MEMFENCE_SEGMENT"]
me, sup = rss(os.getpid(), seg), rss(os.getppid(), seg)
print("segment pages: program %d KiB, supervisor %d KiB" % (me, sup))
sys.exit(0 if me <= 64 and sup <= 44 else "at most 64 and 44 KiB expected")' \
	>"$MF_TMP/rss" 2>"$MF_TMP/err" || fail "the segment's pages: $(cat "$MF_TMP/rss" "$MF_TMP/err")"
echo "ok $(cat "$MF_TMP/rss")"
