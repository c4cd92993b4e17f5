#!/usr/bin/env bash
# Memory pressure (cgroup v2 PSI) in readiness, /status and /metrics: while
# memory.pressure's full avg10 stays at or above --ready-pressure for
# --ready-grace, /readyz fails even though headroom is fine; it recovers when
# the average falls. On a fixture tree (MEMFENCE_ROOT) whose memory.pressure
# the test writes: the kernels of this project's machines give no per-cgroup
# PSI (cgroup v1 here, and Debian's user-mode Linux is built without PSI).
. "$(dirname "$0")/../lib.sh"
unset MEMFENCE_LIMIT MEMFENCE_RESERVE MEMFENCE_RLIMIT MEMFENCE_STACK MEMFENCE_READY_PRESSURE
FX=$MF_TMP/root
cp -r "$MF_ROOT_DIR/tests/fixtures/cgroup/v2-nested" "$FX"
P=$FX/sys/fs/cgroup/kubepods/pod1/c1/memory.pressure
psi() { # SOME_AVG10 FULL_AVG10
	printf 'some avg10=%s avg60=1.00 avg300=0.50 total=2500000\nfull avg10=%s avg60=0.80 avg300=0.40 total=1500000\n' "$1" "$2" >"$P.tmp"
	mv "$P.tmp" "$P"
}
psi 3.00 1.50
PORT=$(mf_free_port)
U=http://127.0.0.1:$PORT
MEMFENCE_ROOT=$FX "$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account --request-need 8M \
	--ready-grace 300ms --ready-pressure 30% --report-dir "$MF_TMP/r" -- sleep 60 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")

code() { curl -s -o "$MF_TMP/body" -w '%{http_code}' --max-time 2 "$U/$1"; }
wait_code() { # PATH CODE: poll up to 10 s
	for i in $(seq 100); do [ "$(code "$1")" = "$2" ] && return 0; sleep 0.1; done
	fail "/$1 did not answer $2 (last: $(code "$1") $(cat "$MF_TMP/body"); $(cat "$MF_TMP/err"))"
}
wait_code readyz 200
m=$(curl -s --max-time 2 "$U/metrics")
expect_eq "metrics" "memfence_memory_pressure_some_avg10_ratio 0.0300
memfence_memory_pressure_some_avg60_ratio 0.0100
memfence_memory_pressure_some_seconds_total 2.500000
memfence_memory_pressure_full_avg10_ratio 0.0150
memfence_memory_pressure_full_avg60_ratio 0.0080
memfence_memory_pressure_full_seconds_total 1.500000" "$(echo "$m" | grep '^memfence_memory_pressure')"
curl -s --max-time 2 "$U/status" >"$MF_TMP/status.json"
expect_eq "/status memory.pressure" "3.0 1.5 1500000" "$($PY -c 'import json, sys
p = json.load(open(sys.argv[1]))["memory"]["pressure"]
print(p["some"]["avg10"], p["full"]["avg10"], p["full"]["total_us"])' "$MF_TMP/status.json")"

# Thrashing: every task stalled 45% of the time, headroom unchanged.
psi 60.00 45.00
wait_code readyz 503
expect_match "reason" "memory pressure full avg10 45.00% at or above 30%" "$(cat "$MF_TMP/body")"
expect_eq "still live" 200 "$(code livez)"
psi 12.00 8.00
wait_code readyz 200
# Below the threshold, or not for long enough, changes nothing.
psi 40.00 29.99
sleep 0.6
expect_eq "below the threshold" 200 "$(code readyz)"
kill -TERM "$SUP"
wait "$SUP"

# off: pressure is shown, never used.
psi 60.00 45.00
MEMFENCE_ROOT=$FX MEMFENCE_READY_PRESSURE=off "$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account \
	--request-need 8M --ready-grace 300ms --report-dir "$MF_TMP/r" -- sleep 60 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
wait_code readyz 200
sleep 0.6
expect_eq "off: ready" 200 "$(code readyz)"
expect_match "off: metrics" "^memfence_memory_pressure_full_avg10_ratio 0.4500" "$(curl -s --max-time 2 "$U/metrics")"
kill -TERM "$SUP"
wait "$SUP"

# Bad values are refused.
"$MEMFENCE" run --ready-pressure 0 -- true 2>"$MF_TMP/err" && fail "--ready-pressure 0 accepted"
expect_match "bad value" "invalid --ready-pressure '0'" "$(cat "$MF_TMP/err")"
MEMFENCE_READY_PRESSURE=101% "$MEMFENCE" run -- true 2>"$MF_TMP/err" && fail "101% accepted"
expect_match "bad env" "invalid MEMFENCE_READY_PRESSURE" "$(cat "$MF_TMP/err")"

# inspect shows the same figures, text and JSON.
out=$("$MEMFENCE" inspect --root "$FX")
expect_match "inspect text" "memory.pressure +some 60.00% 1.00% 0.50% \(avg10 avg60 avg300\), 2.5s" "$out"
expect_match "inspect text full" "full 45.00% 0.80% 0.40% \(avg10 avg60 avg300\), 1.5s" "$out"
expect_eq "inspect json" "45.0 1500000" "$("$MEMFENCE" inspect --json --root "$FX" | $PY -c 'import json, sys
p = json.load(sys.stdin)["memory_pressure"]
print(p["full"]["avg10"], p["full"]["total_us"])')"
rm "$P"
expect_match "inspect without PSI" "memory.pressure +none \(this kernel has no PSI\)" \
	"$("$MEMFENCE" inspect --root "$FX")"
echo ok
