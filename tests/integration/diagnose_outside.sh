#!/usr/bin/env bash
# memfence diagnose when memory outside the heap fills the container: one
# call maps 400 MiB of shared memory (memfd) in a 192 MiB container, which
# the heap accounting cannot see nor refuse, and the kernel OOM-kills the
# program (restarted). Verdict "outside-heap", never
# "leak"; live by the supervisor's PID after the kill, and after the run.
. "$(dirname "$0")/diagnose_lib.bash"
diag_start outside 192 --restart always --restart-delay 1s
diag_load --calls 100 --concurrency 2 --mib 1-4 --hold-ms 20 --big 1 --big-mib 400 --big-shm --big-after 40
kills=$(mf_cgroup_oom_kills "$MF_CG")
[ "$kills" -ge 1 ] || fail "the kernel killed nothing (oom_kill $kills)"
for i in $(seq 1 50); do ls "$STATE"/reports/memfence-report-*.json >/dev/null 2>&1 && break; sleep 0.2; done
sleep 2.5
check() {
	diag_expect "$1" outside-heap leak
	[ "$(diag_get 'd["context"]["oom_kills"]')" -ge 1 ] || fail "$1: the OOM kill is not seen"
	local o
	o=$(diag_get 'd["evidence"]["outside-heap"]["outside"]')
	[ "$o" -ge $((64 << 20)) ] || fail "$1: only $o bytes outside the heap"
}
diag_json "$SUP"
check "live, supervisor pid"
diag_stop
diag_json "$STATE"
check "after the run"
diag_text_html "$STATE"
echo "ok"
