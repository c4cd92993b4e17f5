#!/usr/bin/env bash
# memfence diagnose on a healthy service: ordinary calls of 2-10 MiB, four
# at a time, in a 384 MiB container. Verdict "healthy" (exit 0), live by the
# program's PID and after the run from the state directory.
# Live by PID at once (no wait for a save of the model), and with a
# post-mortem of another run in the report directory that must not count.
. "$(dirname "$0")/diagnose_lib.bash"
diag_start healthy 384
diag_load --calls 300 --concurrency 4 --mib 2-10 --hold-ms 20
# A post-mortem another run left in the report directory (another
# supervisor, an hour ago): not a death of this run.
mkdir -p "$STATE/reports"
then=$(( $(date +%s) - 3600 ))
cat >"$STATE/reports/memfence-report-$then-1.json" <<EOF
{"memfence_report": 1, "time_unix": $then, "cause": "oom-kill",
 "supervisor": {"pid": 1}, "memory": {"limit": 402653184, "usage": 402000000,
 "working_set": 401000000}, "in_flight": []}
EOF
# At once, without waiting for a save of the model (every 2 s): the scopes
# that ended since are read from the segment.
diag_json "$PROG"
diag_expect "live, program pid" healthy leak aggregate oversized outside-heap
expect_eq "live: running" True "$(diag_get 'd["source"]["running"]')"
[ "$(diag_get 'd["context"]["scopes"]')" -ge 300 ] ||
	fail "live: scopes not all seen ($(diag_get 'd["context"]["scopes"]'), $(diag_get 'd["source"]'))"
expect_eq "live: post-mortems of this run" 0 "$(diag_get 'd["source"]["post_mortems"]')"
expect_eq "live: post-mortems of another run" 1 "$(diag_get 'd["source"]["other_runs"]')"
diag_stop
diag_json "$STATE"
diag_expect "after the run" healthy leak aggregate oversized outside-heap
expect_eq "after: post-mortems of another run" 1 "$(diag_get 'd["source"]["other_runs"]')"
expect_eq "after: running" False "$(diag_get 'd["source"]["running"]')"
diag_text_html "$STATE"
echo "ok"
