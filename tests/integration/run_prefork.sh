#!/usr/bin/env bash
# A pre-fork program whose workers together exceed the memory cgroup, each
# under its own rlimit: memfence publishes the container's working set and
# the library refuses large allocations that would carry it past
# limit - reserve, so no worker is OOM-killed and the refusals are counted.
# Run twice: plain (the kernel must OOM-kill, or the test proves nothing)
# and under memfence run.
. "$(dirname "$0")/../lib.sh"

[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
mf_need_cgroup prefork $((300 << 20))
PORT=$(mf_free_port)
cat >"$MF_TMP/prefork.py" <<'PY'
import os, sys, time
d, nworkers = sys.argv[1], 3
pids = []
for w in range(nworkers):
    pid = os.fork()
    if pid == 0:
        hog, refused = [], 0
        while len(hog) * 4 < 150:            # each wants 150 MiB: 450 MiB in all
            try:
                hog.append(b"\x01" * (4 << 20))
            except MemoryError:
                refused += 1
                if refused >= 3:
                    break
            time.sleep(0.05)
        with open("%s/worker-%d" % (d, w), "w") as f:
            f.write("%d %d\n" % (len(hog) * 4, refused))
        while not os.path.exists(d + "/done"):
            time.sleep(0.05)
        os._exit(0)
    pids.append(pid)
killed = 0
for pid in pids:
    _, st = os.waitpid(pid, 0)
    killed += os.WIFSIGNALED(st)
print("workers killed:", killed)
sys.exit(3 if killed else 0)
PY

# Plain, in the same cgroup: the kernel kills a worker.
touch "$MF_TMP/done"
before=$(mf_cgroup_oom_kills "$MF_CG")
mf_cgroup_run "$MF_CG" $PY "$MF_TMP/prefork.py" "$MF_TMP" >"$MF_TMP/plain" 2>&1
[ "$(mf_cgroup_oom_kills "$MF_CG")" -gt "$before" ] ||
	fail "without memfence no worker was OOM-killed: the test proves nothing ($(cat "$MF_TMP/plain"))"
rm -f "$MF_TMP/done" "$MF_TMP"/worker-*

before=$(mf_cgroup_oom_kills "$MF_CG")
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --report-dir "$MF_TMP/r" \
	-- $PY "$MF_TMP/prefork.py" "$MF_TMP" >"$MF_TMP/out" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 200); do [ "$(ls "$MF_TMP"/worker-* 2>/dev/null | wc -l)" = 3 ] && break; sleep 0.1; done
[ "$(ls "$MF_TMP"/worker-* 2>/dev/null | wc -l)" = 3 ] || fail "workers did not finish: $(cat "$MF_TMP/err")"
refused=$(cat "$MF_TMP"/worker-* | awk '{ s += $2 } END { print s }')
[ "$refused" -ge 1 ] || fail "no allocation was refused: $(cat "$MF_TMP"/worker-*)"
# The supervisor samples the segment every 100 ms: the workers' last
# refusals reach /metrics at the next sample, not at once.
for i in $(seq 30); do
	m=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics")
	n=$(echo "$m" | awk -F' ' '/^memfence_allocation_failures_total\{cause="container"\}/ { print $2 }')
	[ -n "$n" ] && [ "$n" -ge "$refused" ] && break
	sleep 0.1
done
[ -n "$n" ] && [ "$n" -ge "$refused" ] || fail "container refusals in /metrics: '$n', workers saw $refused"
touch "$MF_TMP/done"
wait "$SUP"
expect_eq "status (no worker killed)" 0 $?
expect_eq "OOM kills under memfence" "$before" "$(mf_cgroup_oom_kills "$MF_CG")"

# With the container check off and no rlimit, the kernel kills a worker:
# memfence reports it while the main program lives on.
rm -f "$MF_TMP"/worker-*
touch "$MF_TMP/done"
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --container-check off --rlimit none \
	--report-dir "$MF_TMP/r2" -- $PY "$MF_TMP/prefork.py" "$MF_TMP" >"$MF_TMP/out" 2>"$MF_TMP/err"
expect_eq "status (a worker killed)" 3 $?
grep -q "a process of the program was OOM-killed" "$MF_TMP/err" || fail "worker OOM kill not reported: $(cat "$MF_TMP/err")"
rep=$(ls "$MF_TMP"/r2/memfence-report-*.json | head -n1)
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["cause"] == "oom-kill"; assert any(not p["alive"] for p in r["processes"]), r["processes"]' "$rep" ||
	fail "worker report: $(cat "$rep")"
echo "ok: $refused allocations refused under memfence"
