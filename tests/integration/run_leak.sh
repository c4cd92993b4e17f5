#!/usr/bin/env bash
# A Python HTTP server that leaks memory on every request, in a real memory
# cgroup with nothing else to stop it (--rlimit none): /livez must report
# the failure before the kernel kills the server.
. "$(dirname "$0")/../lib.sh"

mf_need_cgroup leak $((256 << 20))
PORT=$(mf_free_port)
APP=$(mf_free_port)
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$PORT" --no-account --rlimit none \
	--reserve 32M --request-need 48M --ready-grace 200ms --live-after 500ms \
	--report-dir "$MF_TMP/r" -- $PY "$MF_ROOT_DIR/tests/integration/leaky_http.py" "$APP" 6 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do curl -s --max-time 1 "http://127.0.0.1:$APP/" >/dev/null && break; sleep 0.1; done

live=200
for n in $(seq 120); do
	curl -s --max-time 5 "http://127.0.0.1:$APP/" >/dev/null || fail "the server stopped answering after $n requests, /livez never failed: $(cat "$MF_TMP/err")"
	sleep 0.1
	live=$(curl -s -o "$MF_TMP/body" -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/livez")
	[ "$live" = 503 ] && break
done
expect_eq "/livez after $n leaking requests" 503 "$live"
expect_match "reason" "not live: not ready for" "$(cat "$MF_TMP/body")"
expect_eq "OOM kills before /livez failed" 0 "$(mf_cgroup_oom_kills "$MF_CG")"
curl -s --max-time 5 "http://127.0.0.1:$APP/" >/dev/null || fail "the server was dead when /livez failed"
kill -TERM "$SUP"; wait "$SUP"
echo "ok: /livez failed after $n requests, server alive"
