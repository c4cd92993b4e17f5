#!/usr/bin/env bash
# The admission gate under aggregate load (docs/gate.md): the model server
# (examples/model_server, 8 worker threads) under `memfence run` in real
# memory cgroups, 300 calls at concurrency 16 with five oversized ones,
# with the gate on and off, and in a container large enough to need no gate
# (the latency reference). Prints, per case, the counts of the load
# generator and p50/p99 of the successful ordinary calls. Needs root (it
# makes memory cgroups) and a build (make all).
#
#   bench/gate.sh                 the cases of docs/gate.md
#   CASES="512:5-80" bench/gate.sh
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
