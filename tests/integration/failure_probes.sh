#!/usr/bin/env bash
# Probes are answered whatever other clients do (docs/failure.md): 16 idle
# connections from the prober's own address, 64 connections from four
# other loopback addresses trickling a header line every 3 s, and
# connections past the limit. Every /livez probe (a new connection each,
# every 100 ms) must be answered within 1 s, and no connection past the
# limit may hang. failure_probes.py does the attacks and prints the
# latencies; before the server made room at its limits, the first attack
# had every probe refused and the second every probe waiting.
. "$(dirname "$0")/../lib.sh"
PORT=$(mf_free_port)
"$MEMFENCE" run --http 127.0.0.1:$PORT --no-account -- sleep 60 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 50); do
	curl -s --max-time 1 "http://127.0.0.1:$PORT/livez" >/dev/null 2>&1 && break
	sleep 0.1
done
# The four attacker addresses must be usable (127.0.0.0/8 is loopback).
$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.5", 0))' 2>/dev/null ||
	skip "cannot bind 127.0.0.5"
for attack in idle trickle limit; do
	out=$(timeout 20 $PY "$(dirname "$0")/failure_probes.py" $PORT $attack 6) ||
		fail "$attack: the attack did not run: $out"
	echo "$out"
	$PY - "$out" <<'PY' || fail "$attack: probes not answered: $out ($(cat "$MF_TMP/err"))"
import json, sys
r = json.loads(sys.argv[1])
assert r["answered"] >= 10 and r["answered"] == r["probes"], r
assert r["max_ms"] < 1000, r
b = r["beyond"]
assert b is None or b["hung"] == 0, b
PY
done
kill -0 "$SUP" || fail "the supervisor is gone: $(cat "$MF_TMP/err")"
exit 0
