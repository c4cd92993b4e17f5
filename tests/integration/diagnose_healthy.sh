#!/usr/bin/env bash
# memfence diagnose on a healthy service: ordinary calls of 2-10 MiB, four
# at a time, in a 384 MiB container. Verdict "healthy" (exit 0), live by the
# program's PID and after the run from the state directory.
. "$(dirname "$0")/diagnose_lib.bash"
diag_start healthy 384
diag_load --calls 300 --concurrency 4 --mib 2-10 --hold-ms 20
sleep 2.5    # a save of the model
diag_json "$PROG"
diag_expect "live, program pid" healthy leak aggregate oversized outside-heap
expect_eq "live: running" True "$(diag_get 'd["source"]["running"]')"
[ "$(diag_get 'd["context"]["scopes"]')" -ge 300 ] || fail "live: scopes not all seen"
diag_stop
diag_json "$STATE"
diag_expect "after the run" healthy leak aggregate oversized outside-heap
expect_eq "after: running" False "$(diag_get 'd["source"]["running"]')"
diag_text_html "$STATE"
echo "ok"
