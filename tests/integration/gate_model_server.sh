#!/usr/bin/env bash
# The admission gate under aggregate load (docs/gate.md): the model server
# (8 worker threads) under `memfence run` in a real memory cgroup, 300
# calls at concurrency 16 of which five are oversized (3000 MiB):
#   512M  ordinary calls of 5-80 MiB (8 at once can need 640 MiB)
#   384M  ordinary calls of 5-40 MiB
# With the gate no ordinary call fails (without it, some do: reported, not
# asserted), the five oversized calls still get RESOURCE_EXHAUSTED, nothing
# dies. Each case prints the counts and p50/p99 latency of successful calls.
# MF_GATE_CASES="512:5-80 384:5-40" chooses the cases; MF_GATE_MODES="on off"
# the modes (off: --gate off, for contrast).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
EX=$MF_ROOT_DIR/examples/model_server
CALLS=${MF_MODEL_CALLS:-300}

# gate_case MODE LIMIT_MIB SIZES [OVERSIZED]
gate_case() {
	local mode=$1 mib=$2 sizes=$3 over=${4:-5} port ready pid i json out
	mf_need_cgroup "gate-$mode-$mib-$sizes" $((mib << 20))
	port=$(mf_free_port)
	ready=$MF_TMP/ready-$mode-$mib-$sizes
	json=$MF_TMP/summary-$mode-$mib-$sizes.json
	PYTHONPATH=$MF_BUILD/python mf_cgroup_run "$MF_CG" env -u PYTHONPATH "$MEMFENCE" run \
		--http off --gate "$mode" --report-dir "$MF_TMP/reports" -- "$PY" "$EX/server.py" \
		--port "$port" --ready-file "$ready" >"$MF_TMP/server-$mode-$mib.log" 2>&1 &
	MF_PIDS+=($!)
	for i in $(seq 1 100); do [ -s "$ready" ] && break; sleep 0.2; done
	[ -s "$ready" ] || { cat "$MF_TMP/server-$mode-$mib.log"; fail "$mode $mib: the server did not start"; }
	pid=$(cat "$ready")
	out=$(PYTHONPATH= timeout 300 "$PY" "$EX/loadgen.py" --target "127.0.0.1:$port" --calls "$CALLS" \
		--concurrency 16 --sizes "$sizes" --oversized "$over" --oversized-mib 3000 \
		--server-pid "$pid" --json "$json")
	echo "== gate $mode, ${mib} MiB, ordinary calls of $sizes MiB"
	echo "$out" | head -8
	"$PY" - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = sorted(r["seconds"] for r in d["results"] if r["status"] == "OK" and not r["oversized"])
q = lambda p: ok[min(len(ok) - 1, int(p * len(ok)))] if ok else float("nan")
for r in d["results"]:
    if r["status"] != "OK" and not r["oversized"]:
        print("  failed ordinary %s (%d MiB) after %.3f s: %s %s" % (r["id"], r["mib"], r["seconds"], r["status"], r["details"][:150]))
print("  latency of successful ordinary calls: p50 %.3f s, p99 %.3f s (%d calls)" % (q(0.5), q(0.99), len(ok)))
PY
	field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$json" "$1"; }
	expect_eq "$mode $mib: server alive" True "$(field server_alive)"
	expect_eq "$mode $mib: other errors" 0 "$(field other_errors)"
	expect_eq "$mode $mib: oversized calls failed" "$over" "$(field oversized_failed)"
	expect_eq "$mode $mib: OOM kills" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
	[ "$mode" = on ] && expect_eq "$mode $mib: ordinary calls failed" 0 "$(field normal_failed)"
	kill "$pid" 2>/dev/null
	wait 2>/dev/null
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
for c in ${MF_GATE_CASES:-512:5-80 384:5-40}; do
	for m in ${MF_GATE_MODES:-on}; do gate_case "$m" "${c%%:*}" "${c#*:}"; done
done
