#!/usr/bin/env bash
# No stuck state. A leaking server without scopes (stdlib ThreadingHTTPServer)
# keeping 2 MiB of every call, in a real 256 MiB memory cgroup, behind a
# client that sends only while /readyz answers 200. It fills up in seconds:
# readiness fails at its budget, the client stops, the heap stops growing and
# no leak forecast can come.
#   1. `--restart always --ready-tcp APP` for 125 s: the stuck program is
#      recycled (reason stuck) again and again; no call sent while ready fails
#      or finds the new program not yet listening; it serves many more calls
#      after it first filled up; no allocation refused, no OOM kill.
#   2. `--restart never`: nothing recycles, so /livez fails ("stuck"), and
#      the program is left running for the orchestrator to replace.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
cat >"$MF_TMP/client.py" <<'PY'
"""Call the server about 10 times a second for SECONDS, each call only when
/readyz answered 200 just before; stop at the first unready answer when
asked to (phase 2). Print one JSON line."""
import json, sys, time
from httpget import get  # tests/integration/httpget.py
app, sup, seconds, stop_unready = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"

out = {"sent": 0, "ok": 0, "failed": [], "not_listening": 0, "reasons": [],
       "ok_before_first_stall": 0, "ok_after_first_stall": 0, "stalls": []}
start = time.monotonic()
end = start + seconds
stall_at = None
while time.monotonic() < end:
    t0 = time.monotonic()
    rcode, rbody = get("http://%s/readyz" % sup, 2)
    if rcode != 200:
        if stall_at is None:
            stall_at = t0
            if stop_unready:
                out["reasons"].append(rbody.strip())
                break
        r = rbody.strip()
        if r.startswith("not ready: recycling: stuck") and "stuck" not in out["reasons"]:
            out["reasons"].append("stuck")
            out["recycling_reason"] = r
    else:
        if stall_at is not None:
            out["stalls"].append(round(t0 - stall_at, 1))
            stall_at = None
        code, body = get("http://127.0.0.1:%s/" % app)
        out["sent"] += 1
        if code == 200:
            out["ok"] += 1
            out["ok_after_first_stall" if out["stalls"] else "ok_before_first_stall"] += 1
        elif code == "refused":
            out["not_listening"] += 1
        else:
            out["failed"].append([round(t0 - start, 1), code, body[:200]])
    time.sleep(max(0, 0.1 - (time.monotonic() - t0)))
print(json.dumps(out))
PY

metric() { mf_metric "127.0.0.1:$PORT" "$1"; }
start_server() { # RUN ARGS...: the server under memfence run in a fresh 256 MiB cgroup
	local run=$1
	shift
	mf_need_cgroup "stuck$run" $((256 << 20))
	mf_cgroup_spawn "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --report-dir "$MF_TMP/r$run" \
		"$@" -- $PY "$MF_ROOT_DIR/tests/integration/leaky_http.py" "$APP" 2>"$MF_TMP/err$run"
	SUP=$MF_SPAWNED
	for _ in $(seq 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/readyz")" = 200 ] && break
		sleep 0.1
	done
}
field() { $PY -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$out"; }

# 1. Recycled when stuck, over and over, for 125 s.
PORT=$(mf_free_port)
APP=$(mf_free_port)
start_server 1 --restart always --ready-tcp "$APP"
out=$(PYTHONPATH="$MF_ROOT_DIR/tests/integration" $PY "$MF_TMP/client.py" "$APP" "127.0.0.1:$PORT" "${MF_STUCK_SECONDS:-125}" 0)
echo "phase 1: $out"
echo "phase 1: stall lengths (s): $(field stalls)"
expect_eq "calls failed while ready" "[]" "$(field failed)"
expect_eq "calls that found the program not listening while ready" 0 "$(field not_listening)"
stuck=$(metric 'memfence_recycles_total{reason="stuck"}')
[ "${stuck:-0}" -ge 3 ] || fail "recycled for being stuck ${stuck:-0} times, expected 3 or more: $(cat "$MF_TMP/err1")"
n_stalls=$($PY -c 'import json,sys; print(len(json.loads(sys.argv[1])["stalls"]))' "$out")
[ "$n_stalls" -ge 3 ] || fail "served again after $n_stalls stalls, expected 3 or more: $out"
[ "$(field ok_after_first_stall)" -ge $((2 * $(field ok_before_first_stall))) ] ||
	fail "it did not serve many more calls after it first filled up: $out"
expect_match "readiness while recycling" \
	"^not ready: recycling: stuck: not ready for [0-9.]+s, 0 scopes in flight, process [0-9]+ at its budget" \
	"$(field recycling_reason)"
grep -q "memfence: recycling the program [0-9]* (stuck: not ready for" "$MF_TMP/err1" ||
	fail "the recycle is not logged: $(cat "$MF_TMP/err1")"
grep -q "memfence: the program serves after" "$MF_TMP/err1" || fail "serving not logged: $(cat "$MF_TMP/err1")"
failures=$(mf_metric_sum "127.0.0.1:$PORT" memfence_allocation_failures_total)
expect_eq "allocations refused" 0 "$failures"
expect_eq "OOM kills" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
! ls "$MF_TMP/r1"/*.json >/dev/null 2>&1 || fail "a post-mortem was written for a recycle"
kill -TERM "$SUP"
wait "$SUP"

# 2. No restarts: stuck fails liveness instead, and nothing is recycled.
PORT=$(mf_free_port)
APP=$(mf_free_port)
start_server 2 --restart never
out=$(PYTHONPATH="$MF_ROOT_DIR/tests/integration" $PY "$MF_TMP/client.py" "$APP" "127.0.0.1:$PORT" 60 1)
echo "phase 2: $out"
expect_match "readiness at the budget" "not ready: process [0-9]+ at its budget" "$(field reasons)"
live=
for _ in $(seq 600); do
	live=$(curl -s -w ' %{http_code}' --max-time 2 "http://127.0.0.1:$PORT/livez" | tr -d '\n')
	case $live in *" 503") break ;; esac
	sleep 0.1
done
expect_match "liveness of a stuck program" \
	"^not live: stuck: not ready for [0-9.]+s, 0 scopes in flight, process [0-9]+ at its budget .* 503$" "$live"
expect_eq "recycles without restarts" 0 "$(metric 'memfence_recycles_total{reason="stuck"}')"
kill -0 "$SUP" 2>/dev/null || fail "the supervisor is gone: $(cat "$MF_TMP/err2")"
expect_eq "OOM kills" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
kill -TERM "$SUP"
wait "$SUP"
echo "ok"
