#!/usr/bin/env bash
# A leaking server without scopes (stdlib ThreadingHTTPServer) keeping 1 MiB
# of every call, in a real 256 MiB memory cgroup, under `memfence run
# --restart always` (so --recycle auto recycles). A client calls it about 10
# times a second, but only while /readyz answers 200, for 45 s:
#   - the leak is forecast and the program recycled before it fills: no
#     allocation is ever refused, no OOM kill;
#   - no call sent while ready fails (a refused connection right after a
#     restart, before the server listens, reached nobody: counted apart);
#   - it keeps serving: calls succeed after the recycles;
#   - /metrics counts the recycles (reason "leak"), the log says why.
# Three runs in a row, all must pass.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
cat >"$MF_TMP/client.py" <<'PY'
"""Call the server about 10 times a second for 45 s, each call only when
/readyz answered 200 just before. Print one JSON line."""
import json, sys, time
from httpget import get  # tests/integration/httpget.py
app, sup = sys.argv[1], sys.argv[2]

out = {"sent": 0, "ok": 0, "failed": [], "not_listening": 0, "unready_polls": 0,
       "reasons": [], "max_len": 0, "ok_after_first_recycle": 0}
recycled = False
end = time.monotonic() + 45
while time.monotonic() < end:
    t0 = time.monotonic()
    rcode, rbody = get("http://%s/readyz" % sup, 2)
    if rcode != 200:
        out["unready_polls"] += 1
        r = rbody.strip()
        if r.startswith("not ready: recycling"):
            recycled = True
        if r not in out["reasons"] and len(out["reasons"]) < 10:
            out["reasons"].append(r)
    else:
        code, body = get("http://127.0.0.1:%s/" % app)
        out["sent"] += 1
        if code == 200:
            out["ok"] += 1
            out["max_len"] = max(out["max_len"], int(body))
            if recycled:
                out["ok_after_first_recycle"] += 1
        elif code == "refused":
            out["not_listening"] += 1
        else:
            out["failed"].append([round(time.monotonic() - end + 45, 1), code, body[:200]])
    time.sleep(max(0, 0.1 - (time.monotonic() - t0)))
print(json.dumps(out))
PY

metric() { mf_metric "127.0.0.1:$PORT" "$1"; }

one_run() {
	local run=$1 out field failures
	mf_need_cgroup "recycle$run" $((256 << 20))
	PORT=$(mf_free_port)
	APP=$(mf_free_port)
	mf_cgroup_spawn "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --report-dir "$MF_TMP/r$run" \
		--restart always --model-window 1s --recycle-min-interval 10s \
		-- $PY "$MF_ROOT_DIR/tests/integration/leaky_http.py" "$APP" 1 2>"$MF_TMP/err$run"
	SUP=$MF_SPAWNED
	for _ in $(seq 100); do curl -s --max-time 1 "http://127.0.0.1:$APP/" >/dev/null && break; sleep 0.1; done
	out=$(PYTHONPATH="$MF_ROOT_DIR/tests/integration" $PY "$MF_TMP/client.py" "$APP" "127.0.0.1:$PORT")
	echo "run $run: $out"
	field() { $PY -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$out"; }
	expect_eq "calls failed while ready (run $run)" "[]" "$(field failed)"
	[ "$(metric 'memfence_recycles_total{reason="leak"}')" -ge 1 ] ||
		fail "run $run: no recycle for the leak: $(cat "$MF_TMP/err$run")"
	failures=$(mf_metric_sum "127.0.0.1:$PORT" memfence_allocation_failures_total)
	expect_eq "allocations refused (run $run)" 0 "$failures"
	expect_eq "OOM kills (run $run)" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
	[ "$(field ok_after_first_recycle)" -ge 20 ] ||
		fail "run $run: it did not keep serving after the recycle: $out"
	expect_match "readiness while recycling (run $run)" \
		"not ready: recycling: leak: heap floor .* rising .*/s, reaches .* in [0-9]+s" "$(field reasons)"
	grep -q "memfence: recycling the program [0-9]* (leak: heap floor" "$MF_TMP/err$run" ||
		fail "run $run: the recycle is not logged: $(cat "$MF_TMP/err$run")"
	! ls "$MF_TMP/r$run"/*.json >/dev/null 2>&1 || fail "run $run: a post-mortem was written for a recycle"
	kill -TERM "$SUP"
	wait "$SUP"
}

for run in ${MF_RUNS:-1 2 3}; do one_run "$run"; done
echo "ok"
