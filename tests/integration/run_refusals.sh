#!/usr/bin/env bash
# A leaking server without scopes (stdlib ThreadingHTTPServer: no WSGI, no
# gRPC, nothing names its requests), keeping 2 MiB per call in a real 256 MiB
# memory cgroup, under `memfence run` with its defaults. A client calls it 10
# times a second and asks /readyz after every answer:
#   - /readyz already fails when the first refused call is answered (it fails
#     as the process reaches its budget, before the refusals);
#   - /livez fails within 15 s of that first refused call, while the calls go
#     on being refused, and says why in one line;
#   - no OOM kill: the server is still there.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
mf_need_cgroup refusals $((256 << 20))
PORT=$(mf_free_port)
APP=$(mf_free_port)
cat >"$MF_TMP/client.py" <<'PY'
"""Call the server 10 times a second for at most 60 s; after every answer,
ask /readyz and /livez. Print one JSON line."""
import json, sys, time
from httpget import get  # tests/integration/httpget.py
app, sup = sys.argv[1], sys.argv[2]

out = {"calls": 0, "first_refused": None, "ready_after_first_refused": None,
       "first_unready": None, "ready_reason": None, "live_fail_s": None, "live_reason": None}
t_refused = None
end = time.monotonic() + 60
while time.monotonic() < end:
    t0 = time.monotonic()
    code, _ = get("http://127.0.0.1:%s/" % app)
    out["calls"] += 1
    rcode, rbody = get("http://%s/readyz" % sup, 2)
    if rcode != 200 and out["first_unready"] is None:
        out["first_unready"] = out["calls"]
        out["ready_reason"] = rbody.strip()
    if code != 200 and t_refused is None:
        t_refused = time.monotonic()
        out["first_refused"] = out["calls"]
        out["ready_after_first_refused"] = rcode
    if t_refused is not None:
        lcode, lbody = get("http://%s/livez" % sup, 2)
        if lcode == 503:
            out["live_fail_s"] = round(time.monotonic() - t_refused, 1)
            out["live_reason"] = lbody.strip()
            break
    time.sleep(max(0, 0.1 - (time.monotonic() - t0)))
print(json.dumps(out))
PY
mf_cgroup_spawn "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --report-dir "$MF_TMP/r" \
	-- $PY "$MF_ROOT_DIR/tests/integration/leaky_http.py" "$APP" 2>"$MF_TMP/err"
SUP=$MF_SPAWNED
for _ in $(seq 100); do curl -s --max-time 1 "http://127.0.0.1:$APP/" >/dev/null && break; sleep 0.1; done
expect_eq "/readyz at the start" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/readyz")"

out=$(PYTHONPATH="$MF_ROOT_DIR/tests/integration" $PY "$MF_TMP/client.py" "$APP" "127.0.0.1:$PORT")
echo "$out"
field() { $PY -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$out"; }
[ "$(field first_refused)" != None ] || fail "no call was refused in 60 s: $out"
expect_eq "/readyz when the first refused call was answered" 503 "$(field ready_after_first_refused)"
[ "$(field first_unready)" -le "$(field first_refused)" ] ||
	fail "/readyz failed only after call $(field first_unready), the first refused was $(field first_refused)"
expect_match "readiness reason" "^not ready: process [0-9]+ at its budget: .* used, less than a request's need .* left" \
	"$(field ready_reason)"
[ "$(field live_fail_s)" != None ] || fail "/livez never failed: $out"
$PY -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 15 else 1)' "$(field live_fail_s)" ||
	fail "/livez failed $(field live_fail_s) s after the first refused call (more than 15 s)"
expect_match "liveness reason" "^not live: allocations refused for [0-9.]+s with process [0-9]+ at its budget" \
	"$(field live_reason)"
expect_eq "OOM kills" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
kill -0 "$SUP" 2>/dev/null || fail "the supervisor is gone: $(cat "$MF_TMP/err")"
kill -TERM "$SUP"
wait "$SUP"
echo "ok"
