#!/usr/bin/env bash
# `memfence run` with no capability at all, as in a Pod Security
# "restricted" pod: uid and gid 65534, no supplementary group, every
# capability dropped from the bounding and inheritable sets, no_new_privs,
# RLIMIT_MEMLOCK 0 (a container runtime's default is small), and, where a
# mount namespace can be made, the root filesystem read-only but for the
# state directory (readOnlyRootFilesystem with an emptyDir; a write
# anywhere else fails with EROFS) and the supervisor PID 1 of its own PID
# namespace, as a container's entrypoint. The memory cgroup is made by root and
# handed to that uid as a delegation does (chown).
#
# Everything that needs no capability must work: the limit found in the
# cgroup, a too-big allocation refused as MemoryError with no OOM kill,
# /livez /readyz /metrics /status, `memfence stat` on the segment, the
# profiler's snapshot, and after a real OOM kill the post-mortem and the
# quarantine death in the state directory. What needs one (oom_score_adj -1000: CAP_SYS_RESOURCE;
# mlockall: CAP_IPC_LOCK) is told in one warning line, and the run goes on.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
[ -f "$MF_BUILD/python/memfence/__init__.py" ] || fail "the Python package is not built (make python)"
mf_need_setpriv
command -v curl >/dev/null || skip "no curl"
mf_need_cgroup unpriv $((256 << 20))
chown -R 65534:65534 "$MF_CG"
chmod 755 "$MF_TMP"
# As the kubelet makes an emptyDir: root's, writable by all.
SD=$MF_TMP/state
mkdir -m 0777 "$SD"
export PYTHONPATH=$MF_BUILD/python MEMFENCE_PRESSURE=off
unset MEMFENCE_QUARANTINE MEMFENCE_STATE_DIR MEMFENCE_QUARANTINE_RECORDER MEMFENCE_REPORT_DIR

# Is a read-only view possible here (a mount namespace needs CAP_SYS_ADMIN)?
RO=0
if command -v unshare >/dev/null &&
	unshare -m --propagation private sh -c \
		'mount --bind "$0" "$0" && mount -o remount,bind,ro / && ! touch "$1" 2>/dev/null && touch "$0/probe"' \
		"$SD" "$MF_TMP/probe" 2>/dev/null; then
	RO=1
	rm -f "$SD/probe"
else
	echo "note: no read-only root here (no mount namespace, or $MF_TMP not on /): writes outside the state directory are not caught" >&2
fi

# unpriv [--pid1] CMD...: CMD in the cgroup, as above; with --pid1 (where
# namespaces can be made) as PID 1 of a PID namespace of its own, as a
# container's entrypoint is.
unpriv() {
	local drop='echo $$ >"$1/cgroup.procs" && ulimit -l 0 && shift &&
		exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
			--bounding-set=-all --no-new-privs "$@"' pidns=()
	[ "$1" = --pid1 ] && { shift; pidns=(-p -f --kill-child --mount-proc); }
	if [ "$RO" = 1 ]; then
		unshare -m --propagation private "${pidns[@]}" bash -c \
			'mount --bind "$0" "$0" && mount -o remount,bind,ro / && '"$drop" "$SD" "$MF_CG" "$@"
	else
		bash -c "$drop" "$SD" "$MF_CG" "$@"
	fi
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# --- 1. a server that refuses one request and serves on -------------------
cat >"$MF_TMP/app.py" <<'PY'
import os, sys, time
import memfence

with memfence.scope("POST /big", id="big-1"):
    try:
        x = bytearray(1 << 30)
        print("allocated 1 GiB", flush=True)
    except MemoryError:
        print("MemoryError", flush=True)
with memfence.scope("GET /small", id="small-1"):
    y = bytearray(4 << 20)
with memfence.scope("tasks.wait", id="wait-1"):
    keep = bytearray(8 << 20)
    print("waiting", flush=True)
    for _ in range(600):
        if os.path.exists(sys.argv[1]):
            break
        time.sleep(0.1)
PY
oom_before=$(mf_cgroup_oom_kills "$MF_CG")
PORT=$(mf_free_port)
H=127.0.0.1:$PORT
unpriv --pid1 "$MEMFENCE" run --http "$H" --state-dir "$SD" --profile -- $PY "$MF_TMP/app.py" "$MF_TMP/go" \
	>"$MF_TMP/app.out" 2>"$MF_TMP/app.err" &
SUP=$!
MF_PIDS+=("$SUP")
for _ in $(seq 300); do
	grep -q waiting "$MF_TMP/app.out" && break
	kill -0 "$SUP" 2>/dev/null || break
	sleep 0.1
done
grep -q waiting "$MF_TMP/app.out" || fail "the program did not start: $(cat "$MF_TMP/app.out" "$MF_TMP/app.err")"
expect_eq "the too-big allocation" MemoryError "$(head -n1 "$MF_TMP/app.out")"
for p in livez readyz; do
	code=$(curl -s -o "$MF_TMP/$p" -w '%{http_code}' --max-time 10 "http://$H/$p")
	expect_eq "/$p ($(cat "$MF_TMP/$p"))" 200 "$code"
done
expect_eq "memfence_limit_bytes" $((256 << 20)) "$(mf_metric "$H" memfence_limit_bytes)"
expect_eq "memfence_supervisor_oom_protected" 0 "$(mf_metric "$H" memfence_supervisor_oom_protected)"
[ "$(mf_metric_sum "$H" memfence_allocation_failures_total)" -ge 1 ] || fail "no refusal counted in /metrics"
curl -s --max-time 10 "http://$H/status" >"$MF_TMP/status.json" || fail "/status"
expect_eq "/status: held, locked, PID 1, in flight" "False False $([ "$RO" = 1 ] && echo True || echo False) ['wait-1']" \
	"$(jget "$MF_TMP/status.json" 'd["supervisor"]["oom_score_adj_held"], d["supervisor"]["memory_locked"], d["supervisor"]["pid1"], [s["id"] for s in d["in_flight"]]' | tr -d '(),')"
unpriv "$MEMFENCE" stat --json "$SD/segment.seg" >"$MF_TMP/stat.json" 2>"$MF_TMP/stat.err" ||
	fail "memfence stat as uid 65534: $(cat "$MF_TMP/stat.err")"
grep -q '"wait-1"' "$MF_TMP/stat.json" || fail "memfence stat does not show the scope in flight: $(cat "$MF_TMP/stat.json")"
touch "$MF_TMP/go"
for _ in $(seq 300); do kill -0 "$SUP" 2>/dev/null || break; sleep 0.1; done
wait "$SUP"
expect_eq "exit status ($(cat "$MF_TMP/app.err"))" 0 $?
expect_eq "OOM kills" "$oom_before" "$(mf_cgroup_oom_kills "$MF_CG")"
prof=$(ls "$SD"/reports/memfence-*.prof 2>/dev/null | head -n1)
[ -f "$prof" ] || fail "no profile snapshot in $SD/reports: $(ls "$SD"/reports 2>&1)"
unpriv "$MEMFENCE" profile report "$prof" >"$MF_TMP/prof.txt" 2>&1 ||
	fail "memfence profile report as uid 65534: $(cat "$MF_TMP/prof.txt")"
# One line says what is off, naming both capabilities; nothing else warns
# (a write outside the state directory would).
expect_eq "lines on stderr ($(cat "$MF_TMP/app.err"))" 1 "$(wc -l <"$MF_TMP/app.err")"
expect_match "what is off" \
	'^memfence: warning: oom_score_adj -1000 refused .*CAP_SYS_RESOURCE.*; memory not locked .*CAP_IPC_LOCK.*RLIMIT_MEMLOCK.*it is 0 B.*; the rest needs no capability$' \
	"$(cat "$MF_TMP/app.err")"

# --- 2. a real OOM kill: post-mortem and quarantine in the state directory --
cat >"$MF_TMP/eat.py" <<'PY'
import memfence
with memfence.scope("tasks.explode", id="task-1"):
    hog = []
    while True:
        hog.append(b"\x01" * (4 << 20))
PY
unpriv timeout 120 "$MEMFENCE" run --http off --state-dir "$SD" --rlimit none \
	--container-check off -- $PY "$MF_TMP/eat.py" >"$MF_TMP/out" 2>"$MF_TMP/err"
rc=$?
[ "$rc" = 124 ] && fail "the OOM-killed run still ran after 120 s: $(cat "$MF_TMP/err")"
expect_eq "status of the OOM-killed program ($(cat "$MF_TMP/err"))" 137 "$rc"
[ "$(mf_cgroup_oom_kills "$MF_CG")" -gt "$oom_before" ] || fail "no OOM kill in the cgroup: the test proves nothing"
grep -q "OOM-killed by the kernel" "$MF_TMP/err" || fail "no OOM summary: $(cat "$MF_TMP/err")"
rep=$(ls "$SD"/reports/memfence-report-*.json 2>/dev/null | head -n1)
[ -f "$rep" ] || fail "no post-mortem in $SD/reports: $(cat "$MF_TMP/err")"
expect_eq "post-mortem" "oom-kill task-1" "$(jget "$rep" 'd["cause"] + " " + " ".join(s["id"] for s in d["in_flight"])')"
unpriv "$MEMFENCE" report "$rep" >"$MF_TMP/report.txt" 2>&1 || fail "memfence report as uid 65534: $(cat "$MF_TMP/report.txt")"
grep -q "cause: oom-kill" "$MF_TMP/report.txt" || fail "memfence report: $(cat "$MF_TMP/report.txt")"
unpriv "$MEMFENCE" quarantine show task-1 --json --state-dir "$SD" >"$MF_TMP/q.json" 2>&1 ||
	fail "task-1 not in the quarantine: $(cat "$MF_TMP/q.json") $(cat "$MF_TMP/err")"
expect_eq "quarantine death" "1 oom_kill" "$(jget "$MF_TMP/q.json" '(lambda r: "%s %s" % (r["deaths"], r["cause"]))(d.get("record", d))')"

# Everything the runs wrote is in the state directory, and theirs.
others=$(find "$SD" -mindepth 1 ! -uid 65534)
expect_eq "files of another owner in the state directory" "" "$others"
echo "ok: read-only root $RO, refused as MemoryError, probes, stat, profile, post-mortem, quarantine without capabilities"
