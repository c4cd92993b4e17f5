#!/usr/bin/env bash
# memfence diagnose on a leaking service: every call keeps 128 KiB of what it
# allocates (2-6 MiB), two at a time, for 20 s in a 512 MiB container (about
# 150 MiB kept: no refusal yet). Verdict "leak", naming the method with its
# retained bytes per call and the floor's rise; live by the supervisor's PID
# and after the run.
. "$(dirname "$0")/diagnose_lib.bash"
diag_start leak 512
diag_load --calls 100000 --concurrency 2 --mib 2-6 --hold-ms 20 --keep-kib 128 --duration 20
sleep 2.5
check() {
	diag_expect "$1" leak oversized outside-heap
	expect_eq "$1: retaining name" /diagtest.Work/Do "$(diag_get 'd["evidence"]["leak"]["names"][0]["name"]')"
	local r
	r=$(diag_get 'd["evidence"]["leak"]["names"][0]["median_retained"]')
	[ "$r" -ge $((100 << 10)) ] && [ "$r" -le $((200 << 10)) ] ||
		fail "$1: median retained per call $r, expected about 128 KiB"
	expect_eq "$1: floor rising" True "$(diag_get 'd["evidence"]["leak"]["floor"]["rising"]')"
	[ "$(diag_get 'd["evidence"]["leak"]["floor"]["forecast_s"]')" -gt 0 ] || fail "$1: no forecast"
}
diag_json "$SUP"
check "live, supervisor pid"
diag_stop
diag_json "$STATE"
check "after the run"
diag_text_html "$STATE"
echo "ok"
