#!/usr/bin/env bash
# Readiness flips when headroom stays below a request's need and recovers
# (with hysteresis); liveness fails when readiness has failed too long. In a
# real memory cgroup.
. "$(dirname "$0")/../lib.sh"

mf_need_cgroup health $((256 << 20))
PORT=$(mf_free_port)
U=http://127.0.0.1:$PORT
cat >"$MF_TMP/hog.py" <<'PY'
import os, sys, time
d = sys.argv[1]
hog = None
open(d + "/started", "w").close()
while True:
    if os.path.exists(d + "/grow") and hog is None:
        hog = bytearray(180 << 20)          # zero-filled: every page touched
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        open(d + "/grown", "w").close()
    if os.path.exists(d + "/shrink") and hog is not None:
        hog = None
        open(d + "/shrunk", "w").close()
    time.sleep(0.05)
PY
# budget 256M - 32M = 224M; the hog leaves well under 64M usable.
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account \
	--reserve 32M --request-need 64M --ready-grace 300ms --ready-hysteresis 50% \
	--live-after 1s --report-dir "$MF_TMP/r" -- $PY "$MF_TMP/hog.py" "$MF_TMP" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")

code() { curl -s -o "$MF_TMP/body" -w '%{http_code}' --max-time 2 "$U/$1"; }
wait_code() { # PATH CODE: poll up to 10 s
	for i in $(seq 100); do [ "$(code "$1")" = "$2" ] && return 0; sleep 0.1; done
	fail "/$1 did not answer $2 (last: $(code "$1") $(cat "$MF_TMP/body"))"
}
for i in $(seq 100); do [ -f "$MF_TMP/started" ] && break; sleep 0.1; done
wait_code readyz 200
wait_code livez 200

touch "$MF_TMP/grow"
wait_code readyz 503
expect_match "readiness reason" "headroom .* below a request's need 64 MiB" "$(cat "$MF_TMP/body")"
wait_code livez 503
expect_match "liveness reason" "not ready for" "$(cat "$MF_TMP/body")"
m=$(curl -s --max-time 2 "$U/metrics")
expect_match "metrics" '^memfence_ready 0' "$(echo "$m" | grep '^memfence_ready ')"
expect_match "metrics" '^memfence_request_need_bytes 67108864' "$(echo "$m" | grep request_need)"

touch "$MF_TMP/shrink"
wait_code readyz 200
wait_code livez 200
expect_eq "OOM kills" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
kill -TERM "$SUP"; wait "$SUP"
echo ok
