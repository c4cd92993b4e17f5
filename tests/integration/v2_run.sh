#!/usr/bin/env bash
# cgroup v2 in a real kernel (user-mode Linux, tests/uml): memfence exec
# (MemoryError instead of an OOM kill, threads start), memfence run with its
# probes and metrics on loopback, a post-mortem after a real OOM kill, and a
# group OOM kill (memory.oom.group=1, as the kubelet sets) that takes an
# unprivileged supervisor too: the next start's lost-run report names the
# request in flight, from the journal in --state-dir.
if [ -z "${MF_UML_SCRIPT:-}" ]; then
	. "$(dirname "$0")/../lib.sh"
	mf_v2_boot "$0"
	exit
fi
. "$MF_ROOT_DIR/tests/uml/guest.sh"
unset MEMFENCE_LIMIT MEMFENCE_RESERVE MEMFENCE_RLIMIT MEMFENCE_STACK MEMFENCE_ROOT
HOG=$MF_ROOT_DIR/tests/progs/hog.py
S=$MF_SCRATCH

# --- exec: the limit becomes MemoryError; threads still start -------------
out=$(v2_in "$CTR" "$MEMFENCE" exec -- $PY "$HOG" big 2>&1)
expect_eq "exec big: status" 0 $?
expect_match "exec big: MemoryError" "MemoryError caught" "$out"
out=$(v2_in "$CTR" "$MEMFENCE" exec -- $PY "$HOG" threads 50 2>&1)
expect_eq "exec threads: status ($out)" 0 $?
expect_eq "exec: no OOM kill" 0 "$(v2_key "$CTR/memory.events" oom_kill)"

# A program that opens a scope, then fills a file in /dev/shm (which
# RLIMIT_DATA does not see) until the kernel kills it.
cat >"$S/shm.py" <<'PY'
import ctypes, os, sys, time
lib = ctypes.CDLL(None)
lib.memfence_scope_begin(b"task process_video", b"t-7", ctypes.c_size_t(0))
x = b"\x01" * (8 << 20)
open(sys.argv[1], "w").close()
# Until the test has looked at the probes (argv[2] appears), at most 60 s:
# a loaded machine makes the guest slow, so no fixed delay is long enough.
for _ in range(1200):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
# Written, not mapped: the kernel allocates the pages without a page fault
# each, which user-mode Linux makes slow.
fd = os.open("/dev/shm/" + os.path.basename(sys.argv[1]), os.O_RDWR | os.O_CREAT, 0o600)
chunk = b"\x01" * (1 << 20)
for i in range(1024):
    os.write(fd, chunk)
print("not killed")
PY

echo "time: $SECONDS s"
# --- run: probes and metrics over loopback; then a real OOM kill ----------
c=$(v2_container run 200M)
v2_in "$c" "$MEMFENCE" run --http 127.0.0.1:9090 --report-dir "$S/reports" \
	-- $PY "$S/shm.py" "$S/run-in" "$S/run-go" >"$S/run.out" 2>"$S/run.err" &
SUP=$!
wait_for 20 test -f "$S/run-in" || bad "run: the program did not start ($(cat "$S/run.err"))"
wait_for 20 curl -sf -o /dev/null --max-time 1 http://127.0.0.1:9090/readyz || bad "run: /readyz"
expect_eq "run: /livez" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 --retry 3 --retry-all-errors http://127.0.0.1:9090/livez)"
m=$(curl -s --max-time 15 --retry 3 --retry-all-errors http://127.0.0.1:9090/metrics)
expect_match "run: metrics limit" "^memfence_limit_bytes $((200 << 20))\$" "$(echo "$m" | grep '^memfence_limit_bytes ')"
expect_match "run: metrics in flight" "^memfence_scopes_in_flight 1\$" "$(echo "$m" | grep '^memfence_scopes_in_flight ')"
curl -s --max-time 15 --retry 3 --retry-all-errors http://127.0.0.1:9090/status >"$S/status.json"
expect_eq "run: /status cgroup" "2 /kubepods/pod1/run" \
	"$(jget "$S/status.json" '"%d %s" % (d["memory"]["cgroup_version"], d["memory"]["cgroup"])')"
touch "$S/run-go"
wait "$SUP"
expect_eq "run: status of an OOM-killed program" 137 $?
expect_eq "run: the kernel killed it" 1 "$(v2_key "$c/memory.events" oom_kill)"
rep=$(ls "$S"/reports/memfence-report-*.json 2>/dev/null | head -n1)
expect_eq "run: post-mortem" "oom-kill task process_video t-7" \
	"$([ -f "$rep" ] && jget "$rep" '" ".join([d["cause"]] + [s["name"] + " " + s["id"] for s in d["in_flight"]])')"
rm -f /dev/shm/run-in

echo "time: $SECONDS s"
# --- group kill: an unprivileged supervisor dies with its program ---------
g=$(v2_container group 200M)
echo 1 >"$g/memory.oom.group"
# No capability at all (CAP_SYS_RESOURCE is what oom_score_adj -1000 needs),
# as in a container that does not add it.
v2_in "$g" setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all \
	"$MEMFENCE" run --http 127.0.0.1:9091 --state-dir "$S/state" \
	-- $PY "$S/shm.py" "$S/group-in" "$S/group-go" >"$S/group.out" 2>"$S/group.err" &
SUP=$!
wait_for 20 test -f "$S/group-in" || bad "group: the program did not start ($(cat "$S/group.err"))"
wait_for 20 curl -sf -o "$S/gstatus.json" --max-time 5 http://127.0.0.1:9091/status
expect_eq "group: oom_score_adj -1000 refused" false \
	"$(jget "$S/gstatus.json" 'd["supervisor"]["oom_score_adj_held"]')"
touch "$S/group-go"
wait "$SUP"
expect_eq "group: the supervisor was killed too" 137 $?
expect_eq "group: memory.events oom_group_kill" 1 "$(v2_key "$g/memory.events" oom_group_kill)"
expect_match "group: every process killed" "^[2-9]" "$(v2_key "$g/memory.events" oom_kill)"
expect_eq "group: nothing left in the cgroup" "" "$(cat "$g/cgroup.procs")"
[ -d "$S/state/reports" ] && bad "group: a report was written by a killed supervisor"
# The next start (the container restarted) reports the lost run.
v2_in "$g" "$MEMFENCE" run --http off --no-account --state-dir "$S/state" -- true 2>"$S/next.err"
expect_eq "group: next start" 0 $?
expect_match "group: the lost run is told" "ended without a report" "$(cat "$S/next.err")"
rep=$(ls "$S"/state/reports/memfence-report-*.json 2>/dev/null | head -n1)
expect_eq "group: lost-run report names the request" "lost task process_video t-7" \
	"$([ -f "$rep" ] && jget "$rep" '" ".join([d["cause"]] + [s["name"] + " " + s["id"] for s in d["in_flight"]])')"
rm -f /dev/shm/group-in
echo "time: $SECONDS s"
v2_done
