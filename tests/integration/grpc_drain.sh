#!/usr/bin/env bash
# gRPC drain. Two replicas of a gRPC server that serves grpc.health.v1 (no
# memfence code in it: `memfence run` patches grpc), each under `memfence run
# --restart always` in its own real memory cgroup, on two loopback ports. A
# client with ONE long-lived channel over both addresses (round_robin and
# client-side health checking, as docs/python.md asks; no retry policy)
# calls them without pause; meanwhile replica A asks to be recycled
# (memfence.recovery.request_recycle, as after an unclean failure).
#   - every call succeeds: A says NOT_SERVING, the client moves to B, then
#     A's server stops gracefully (GOAWAY), and the client comes back to A
#     once it serves again;
#   - A was recycled once (reason "unclean") and its new process answers;
#   - A's /readyz failed while it was replaced and is 200 again after.
# Run twice in a row (MF_RUNS="1 2 ..." for more), every run must pass.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
$PY -c 'import grpc' 2>/dev/null || skip "python3-grpcio is not installed"

cat >"$MF_TMP/server.py" <<'PY'
import os, sys, threading, time
from concurrent import futures
import grpc

class Health:
    """grpc.health.v1 as grpc_health's servicer serves it (set(), Check,
    Watch), by hand: Debian's grpcio comes without grpc_health. Messages:
    HealthCheckRequest {string service = 1}, HealthCheckResponse
    {ServingStatus status = 1}."""
    def __init__(self):
        self._server_status = {"": 1}
        self.cond = threading.Condition()

    def set(self, service, status):
        with self.cond:
            self._server_status[service] = status
            self.cond.notify_all()

    def status(self, request):
        service = request[2:].decode() if request[:1] == b"\n" else ""
        return self._server_status.get(service, 3)

    def Check(self, request, context):
        return bytes([8, self.status(request)])

    def Watch(self, request, context):
        said = None
        while context.is_active():
            with self.cond:
                now = self.status(request)
                if now == said:
                    self.cond.wait(0.5)
                    continue
            said = now
            yield bytes([8, now])

def do(request, context):
    time.sleep(0.01)
    return b"%d" % os.getpid()

def recycle(request, context):
    import memfence.recovery
    return b"%d" % memfence.recovery.request_recycle("asked by the test")

health = Health()
handlers = {"Do": grpc.unary_unary_rpc_method_handler(do),
            "Recycle": grpc.unary_unary_rpc_method_handler(recycle)}
server = grpc.server(futures.ThreadPoolExecutor(8))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("draintest.Work", handlers),
                                 grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
                                     "Check": grpc.unary_unary_rpc_method_handler(health.Check),
                                     "Watch": grpc.unary_stream_rpc_method_handler(health.Watch)})))
server.add_insecure_port("127.0.0.1:%s" % sys.argv[1])
server.start()
server.wait_for_termination()
PY
cat >"$MF_TMP/client.py" <<'PY'
"""One channel over both replicas, calls one after another for SECONDS; at
RECYCLE_AT s ask replica A (its own channel) to be recycled. Print JSON."""
import json, sys, time
import grpc
a, b, seconds, recycle_at = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
cfg = {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}
ch = grpc.insecure_channel("ipv4:127.0.0.1:%s,127.0.0.1:%s" % (a, b),
                           options=[("grpc.service_config", json.dumps(cfg))])
do = ch.unary_unary("/draintest.Work/Do")
grpc.channel_ready_future(ch).result(timeout=30)
out = {"calls": 0, "failed": [], "pids": {}, "asked": None}
start = time.monotonic()
while time.monotonic() - start < seconds:
    t = time.monotonic() - start
    if out["asked"] is None and t >= recycle_at:
        with grpc.insecure_channel("127.0.0.1:%s" % a) as ca:
            out["asked"] = ca.unary_unary("/draintest.Work/Recycle")(b"", timeout=10).decode()
    try:
        pid = do(b"", timeout=10).decode()
        out["calls"] += 1
        out["pids"].setdefault(pid, [round(t, 1), 0])[1] += 1
    except grpc.RpcError as e:
        out["failed"].append([round(t, 2), str(e.code()), e.details()])
ch.close()
print(json.dumps(out))
PY

readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/readyz"; }
metric() { curl -s --max-time 10 --retry 2 --retry-all-errors "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
start_replica() { # NAME APP_PORT HTTP_PORT: the server under memfence run in its own cgroup
	mf_need_cgroup "drain$1" $((512 << 20))
	mf_cgroup_spawn "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$3" --restart always \
		--report-dir "$MF_TMP/r$1" -- $PY "$MF_TMP/server.py" "$2" 2>"$MF_TMP/err$1"
}

for run in ${MF_RUNS:-1 2}; do
	PA=$(mf_free_port) PB=$(mf_free_port) HA=$(mf_free_port) HB=$(mf_free_port)
	start_replica "a$run" "$PA" "$HA"
	SUPA=$MF_SPAWNED CGA=$MF_CG
	start_replica "b$run" "$PB" "$HB"
	SUPB=$MF_SPAWNED CGB=$MF_CG
	for _ in $(seq 300); do
		ra=$(readyz "$HA") rb=$(readyz "$HB")
		[ "$ra $rb" = "200 200" ] && break
		sleep 0.1
	done
	[ "$ra $rb" = "200 200" ] || fail "run $run: replicas not ready: $ra $rb: $(cat "$MF_TMP/erra$run" "$MF_TMP/errb$run")"
	# A's /readyz while the client runs: it must fail during the recycle.
	(for _ in $(seq 400); do readyz "$HA"; echo; sleep 0.05; done) >"$MF_TMP/readyz$run" &
	poller=$!
	MF_PIDS+=("$poller")
	out=$($PY "$MF_TMP/client.py" "$PA" "$PB" 20 3) || fail "run $run: the client failed: $out"
	echo "run $run: $out"
	wait "$poller"
	field() { $PY -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$out" "$1"; }
	expect_eq "run $run: A asked to be recycled" 1 "$(field 'd["asked"]')"
	expect_eq "run $run: failed calls" "[]" "$(field 'd["failed"]')"
	expect_eq "run $run: A recycled" 1 "$(metric "$HA" 'memfence_recycles_total{reason="unclean"}')"
	expect_eq "run $run: B not recycled" 0 "$(metric "$HB" 'memfence_recycles_total{reason="unclean"}')"
	# Three processes answered: B, A before and A after its recycle.
	expect_eq "run $run: processes that answered" 3 "$(field 'len(d["pids"])')"
	grep -q "memfence: recycling the program [0-9]* (unclean: asked by the test)" "$MF_TMP/erra$run" ||
		fail "run $run: the recycle is not logged: $(cat "$MF_TMP/erra$run")"
	grep -q "the gRPC server stops, calls in flight get" "$MF_TMP/erra$run" ||
		fail "run $run: the server was not stopped on the drain: $(cat "$MF_TMP/erra$run")"
	grep -q 503 "$MF_TMP/readyz$run" || fail "run $run: A's /readyz never failed"
	expect_eq "run $run: A ready at the end" 200 "$(readyz "$HA")"
	expect_eq "run $run: OOM kills" 0 "$(($(mf_cgroup_oom_kills "$CGA") + $(mf_cgroup_oom_kills "$CGB")))"
	mf_cgroup_stop "$SUPA" "$CGA"
	mf_cgroup_stop "$SUPB" "$CGB"
done
echo "ok"
