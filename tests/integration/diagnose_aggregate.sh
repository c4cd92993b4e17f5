#!/usr/bin/env bash
# memfence diagnose on aggregate load: ordinary calls of 20-24 MiB that hold
# their memory 300 ms, sixteen at a time, in a 256 MiB container (budget
# 192 MiB: about 8 fit). Verdict "aggregate" (not oversized, not a leak),
# with several scopes in flight at the peak and the concurrency that fits;
# live by the supervisor's PID and after the run. Twice:
#   gate on   (the default) the calls wait at the admission gate instead of
#             failing: the evidence is the waits (how many, p50/p99) and how
#             many calls were admitted at once while others waited;
#   gate off  the calls are refused: the evidence is the refusals.
. "$(dirname "$0")/diagnose_lib.bash"

# check WHAT GATE
check() {
	local fit
	diag_expect "$1" aggregate oversized leak outside-heap
	[ "$(diag_get 'd["evidence"]["aggregate"]["peak"]["in_flight"]')" -ge 3 ] ||
		fail "$1: fewer than 3 scopes in flight at the peak"
	fit=$(diag_get 'd["evidence"]["aggregate"]["fit"]')
	[ "$fit" -ge 4 ] && [ "$fit" -le 12 ] || fail "$1: $fit calls of 24 MiB fit in 192 MiB?"
	if [ "$2" = on ]; then
		[ "$(diag_get 'd["evidence"]["aggregate"]["gate"]["waited"]')" -ge 10 ] ||
			fail "$1: fewer than 10 calls waited at the gate: $(diag_get 'd["evidence"]["aggregate"]["gate"]')"
		[ "$(diag_get 'd["evidence"]["aggregate"]["gate"]["wait_p99_ms"] or 0')" -ge 1 ] ||
			fail "$1: no p99 of the waits"
		local n
		n=$(diag_get 'd["evidence"]["aggregate"]["gate"]["concurrency"]')
		[ "$n" -ge 1 ] && [ "$n" -le 12 ] || fail "$1: $n calls admitted at once while others waited?"
		diag_get '"\n".join(d["evidence"]["aggregate"]["summary"])' | grep -q "waited at the admission gate" ||
			fail "$1: the summary does not say the calls waited"
	else
		[ "$(diag_get 'd["evidence"]["aggregate"]["refused_ordinary"]')" -ge 1 ] ||
			fail "$1: no ordinary scope refused"
		expect_eq "$1: waits at the gate" 0 "$(diag_get 'd["evidence"]["aggregate"]["gate"]["waited"]')"
	fi
}

# variant on|off
variant() {
	diag_start "aggregate-$1" 256 --gate "$1"
	diag_load --calls 400 --concurrency 16 --mib 20-24 --hold-ms 300 --duration 20
	sleep 2.5
	diag_json "$SUP"
	check "gate $1, live, supervisor pid" "$1"
	diag_stop
	diag_json "$STATE"
	check "gate $1, after the run" "$1"
	diag_text_html "$STATE"
}

variant on
variant off
echo "ok"
