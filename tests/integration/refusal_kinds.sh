#!/usr/bin/env bash
# Permanent and transient refusals, told apart so that standard clients do
# not multiply an oversized request (tests/integration/refusal_kinds.py), in
# a real 256 MiB memory cgroup under `memfence run`:
#   - gRPC, with a client whose service config is the shipped
#     examples/model_server/retry_service_config.json (4 attempts on
#     RESOURCE_EXHAUSTED): a call asking for 1 GiB and one over its method's
#     budget end RESOURCE_EXHAUSTED with grpc-retry-pushback-ms -1 and ran
#     exactly once on the server; a call refused twice for memory held by
#     others is retried and succeeds on its third run;
#   - HTTP on gunicorn (gthread) and uvicorn: 503 without Retry-After for
#     the 1 GiB GET, 413 without Retry-After for the POST over its budget,
#     503 with Retry-After for the transient one.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
HERE=$MF_ROOT_DIR/tests/integration
field() { $PY -c 'import json, sys; d = json.loads(sys.argv[2]); print(eval(sys.argv[1]))' "$1" "$2"; }

# start KIND PORT CMD...: CMD under memfence run in a new cgroup; waits until
# PORT accepts connections (60 s).
start() {
	local kind=$1 port=$2
	shift 2
	mf_need_cgroup "refusal-$kind" $((256 << 20))
	mf_cgroup_spawn "$MF_CG" env -u PYTHONPATH "$MEMFENCE" run --report-dir "$MF_TMP/r-$kind" \
		-- "$@" 2>"$MF_TMP/$kind.err"
	SRV=$MF_SPAWNED
	for _ in $(seq 1 600); do
		$PY -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
			"$port" 2>/dev/null && return 0
		kill -0 "$SRV" 2>/dev/null || fail "$kind did not start: $(tail -n 20 "$MF_TMP/$kind.err")"
		sleep 0.1
	done
	fail "$kind did not listen on $port in 60 s: $(tail -n 20 "$MF_TMP/$kind.err")"
}

PORT=$(mf_free_port)
start grpc "$PORT" $PY "$HERE/refusal_kinds.py" grpc "$PORT"
out=$(timeout 120 $PY "$HERE/refusal_kinds_client.py" grpc "$PORT" \
	"$MF_ROOT_DIR/examples/model_server/retry_service_config.json") || fail "gRPC client: $out"
echo "grpc: $out"
for m in Huge Budgeted; do
	expect_eq "gRPC $m: status" RESOURCE_EXHAUSTED "$(field "d['$m']['code']" "$out")"
	expect_eq "gRPC $m: pushback" -1 "$(field "d['$m']['pushback']" "$out")"
done
expect_eq "gRPC Huge: runs on the server" 1 "$(field "d['runs']['huge']" "$out")"
expect_eq "gRPC Budgeted: runs on the server" 1 "$(field "d['runs']['budgeted']" "$out")"
expect_eq "gRPC Flaky: retried until it passed" OK "$(field "d['Flaky']['code']" "$out")"
expect_eq "gRPC Flaky: runs on the server" 3 "$(field "d['runs']['flaky']" "$out")"
mf_cgroup_stop "$SRV" "$MF_CG"

http_check() {
	local kind=$1 out
	out=$(timeout 120 $PY "$HERE/refusal_kinds_client.py" http "$PORT") || fail "$kind client: $out"
	echo "$kind: $out"
	expect_eq "$kind /huge: status" 503 "$(field "d['huge']['code']" "$out")"
	expect_eq "$kind /huge: Retry-After" None "$(field "d['huge']['retry_after']" "$out")"
	expect_eq "$kind /upload: status" 413 "$(field "d['upload']['code']" "$out")"
	expect_eq "$kind /upload: Retry-After" None "$(field "d['upload']['retry_after']" "$out")"
	expect_eq "$kind /flaky: status" 503 "$(field "d['flaky']['code']" "$out")"
	expect_eq "$kind /flaky: Retry-After" 1 "$(field "d['flaky']['retry_after']" "$out")"
	expect_eq "$kind: runs" "{'huge': 1, 'budgeted': 1, 'flaky': 1}" "$(field "d['runs']" "$out")"
}

PORT=$(mf_free_port)
start gunicorn "$PORT" $PY -m gunicorn -k gthread -w 1 --threads 4 --chdir "$HERE" \
	-b "127.0.0.1:$PORT" refusal_kinds:wsgi_app
http_check gunicorn
mf_cgroup_stop "$SRV" "$MF_CG"

PORT=$(mf_free_port)
start uvicorn "$PORT" $PY -m uvicorn --app-dir "$HERE" --host 127.0.0.1 --port "$PORT" \
	--no-access-log refusal_kinds:asgi_app
http_check uvicorn
mf_cgroup_stop "$SRV" "$MF_CG"
echo ok
