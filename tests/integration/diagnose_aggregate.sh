#!/usr/bin/env bash
# memfence diagnose on aggregate load: ordinary calls of 20-24 MiB that hold
# their memory 300 ms, sixteen at a time, in a 256 MiB container (budget
# 192 MiB: about 8 fit). Verdict "aggregate" (not oversized, not a leak),
# with several scopes in flight at the peak and the concurrency that fits;
# live by the supervisor's PID and after the run.
. "$(dirname "$0")/diagnose_lib.bash"
diag_start aggregate 256
diag_load --calls 400 --concurrency 16 --mib 20-24 --hold-ms 300 --duration 20
sleep 2.5
check() {
	diag_expect "$1" aggregate oversized leak outside-heap
	[ "$(diag_get 'd["evidence"]["aggregate"]["peak"]["in_flight"]')" -ge 3 ] ||
		fail "$1: fewer than 3 scopes in flight at the peak"
	[ "$(diag_get 'd["evidence"]["aggregate"]["refused_ordinary"]')" -ge 1 ] ||
		fail "$1: no ordinary scope refused"
	local fit
	fit=$(diag_get 'd["evidence"]["aggregate"]["fit"]')
	[ "$fit" -ge 4 ] && [ "$fit" -le 12 ] || fail "$1: $fit calls of 24 MiB fit in 192 MiB?"
}
diag_json "$SUP"
check "live, supervisor pid"
diag_stop
diag_json "$STATE"
check "after the run"
diag_text_html "$STATE"
echo "ok"
