#!/usr/bin/env bash
# memfence diagnose on oversized requests: ordinary calls of 2-10 MiB, four
# at a time, in a 384 MiB container, and three calls (ids big-N) asking for
# 2000 MiB, refused by the shim. Verdict "oversized" naming exactly those
# three, far above the p95 of their method; not aggregate, not a leak; live
# by the program's PID and after the run.
. "$(dirname "$0")/diagnose_lib.bash"
diag_start oversized 384
out=$(diag_load --calls 300 --concurrency 4 --mib 2-10 --hold-ms 20 --big 3 --big-mib 2000 --big-after 60)
echo "$out"
sleep 2.5
check() {
	diag_expect "$1" oversized aggregate leak outside-heap
	expect_eq "$1: oversized ids" "big,big,big" \
		"$(diag_get '",".join(sorted(s["id"].split("-")[0] for s in d["evidence"]["oversized"]["scopes"]))')"
	expect_eq "$1: all refused" True "$(diag_get 'all(s["refused"] for s in d["evidence"]["oversized"]["scopes"])')"
	expect_eq "$1: all above 4x p95" True \
		"$(diag_get 'all(s["peak"] >= 4 * s["p95"] > 0 for s in d["evidence"]["oversized"]["scopes"])')"
	expect_eq "$1: ordinary ones refused" 0 "$(diag_get 'd["evidence"]["oversized"]["refused_ordinary"]')"
}
diag_json "$PROG"
check "live, program pid"
diag_stop
diag_json "$STATE"
check "after the run"
diag_text_html "$STATE"
echo "ok"
