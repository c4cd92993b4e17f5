#!/usr/bin/env bash
# The admission gate under aggregate load (docs/gate.md), with the gate on
# and off, in real memory cgroups:
#  - the gRPC model server (examples/model_server, 8 worker threads) under
#    `memfence run`, 300 calls at concurrency 16 with five oversized ones,
#    and in a container large enough to need no gate (the latency
#    reference);
#  - the HTTP example (examples/model_server/http_server.py) on gunicorn
#    gthread (2 workers x 8 threads) in 512 MiB, 200 calls of 5-40 MiB at
#    concurrency 16 with five oversized ones (tests/http_servers.sh).
# Prints, per case, the counts of the load generator and p50/p99 of the
# successful ordinary calls. Needs root (it makes memory cgroups) and a
# build (make all).
#
#   bench/gate.sh                 the cases of docs/gate.md
#   CASES="512:5-80" bench/gate.sh
#   HTTP_RUNS=3 bench/gate.sh     the HTTP case three times per mode (default 1)
set -u
cd "$(dirname "$0")/.."
CASES=${CASES:-"512:5-80 384:5-40"}
for c in $CASES; do
	MF_GATE_CASES=$c MF_GATE_MODES="on off" \
		tests/integration/gate_model_server.sh 2>&1 | grep -v Killed
done
# The reference: the same loads with room to spare, no gate.
for c in $CASES; do
	MF_GATE_CASES="2048:${c#*:}" MF_GATE_MODES=off tests/integration/gate_model_server.sh 2>&1 |
		grep -v Killed
done
# The HTTP example.
for mode in on off; do
	for _ in $(seq 1 "${HTTP_RUNS:-1}"); do
		MF_HTTP_GATE=$mode tests/integration/python_http_gunicorn_gthread.sh 2>&1 |
			grep -E '^==|^  (OK|503|normal|latency)|^memfence_gate_(waited|timed_out)'
	done
done
