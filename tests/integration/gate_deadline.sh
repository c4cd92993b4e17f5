#!/usr/bin/env bash
# The admission gate's deadlines and its reach across processes
# (docs/gate.md), under `memfence run` in a real memory cgroup, with every
# request needing 60% of the budget (--gate-need) so that two never fit:
#  deadline   a gRPC call arrives while another holds the gate; with a 600 ms
#             deadline it gets RESOURCE_EXHAUSTED (with grpc-retry-pushback-ms)
#             after about half of it, not DEADLINE_EXCEEDED after all of it;
#             once the holder is done, a call goes through;
#  processes  two processes of the program (a fork: pre-fork workers) share
#             one gate: while one holds it the other waits and times out,
#             and is admitted once the first leaves.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mf_need_cgroup gate-deadline $((512 << 20))
RUN=("$MEMFENCE" run --http off --gate-need 60% --report-dir "$MF_TMP/reports" --)

# -- deadline
port=$(mf_free_port)
ready=$MF_TMP/ready
PYTHONPATH=$MF_BUILD/python mf_cgroup_run "$MF_CG" env -u PYTHONPATH "${RUN[@]}" "$PY" \
	"$HERE/gate_server.py" "$port" "$ready" >"$MF_TMP/server.log" 2>&1 &
MF_PIDS+=($!)
for i in $(seq 1 100); do [ -s "$ready" ] && break; sleep 0.2; done
[ -s "$ready" ] || { cat "$MF_TMP/server.log"; fail "the server did not start"; }
out=$(PYTHONPATH= timeout 60 "$PY" - "$port" <<'PY'
import sys, threading, time
import grpc
ch = grpc.insecure_channel("127.0.0.1:%s" % sys.argv[1])
grpc.channel_ready_future(ch).result(timeout=20)
hold = ch.unary_unary("/gate.Test/Hold")
holder = threading.Thread(target=lambda: hold(b"2.0", timeout=30))
holder.start()
time.sleep(0.5)                      # the holder is admitted
t0 = time.monotonic()
try:
    hold(b"0", timeout=0.6)
    print("second call: OK (not held)")
except grpc.RpcError as e:
    md = dict(e.trailing_metadata() or ())
    print("second call: %s after %.3f s, pushback %s" % (e.code().name, time.monotonic() - t0,
          md.get("grpc-retry-pushback-ms")))
holder.join()
hold(b"0", timeout=5)
print("after the holder: OK")
PY
) || fail "the client failed: $out"
echo "$out"
line=$(echo "$out" | grep "second call")
expect_match "deadline: refused" "RESOURCE_EXHAUSTED after 0\.[2-5][0-9]* s, pushback [0-9]+" "$line"
expect_match "after the holder" "OK" "$(echo "$out" | tail -1)"
kill %1 2>/dev/null

# -- two processes, one gate
out=$(PYTHONPATH=$MF_BUILD/python mf_cgroup_run "$MF_CG" env -u PYTHONPATH "${RUN[@]}" "$PY" - <<'PY'
import os, sys, time
import memfence.gate as g
assert g.enabled(), "the gate is off"
r, w = os.pipe()
r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    os.read(r, 1)                    # the parent holds the gate
    try:
        with g.admit("work", timeout=0.3):
            print("child: admitted while the parent held it", flush=True)
    except g.GateTimeout as e:
        print("child: timed out while the parent held it", flush=True)
    os.write(w2, b"x")
    t0 = time.monotonic()
    with g.admit("work", timeout=10):
        print("child: admitted after %.2f s" % (time.monotonic() - t0), flush=True)
    os._exit(0)
with g.admit("work"):
    os.write(w, b"x")
    os.read(r2, 1)
    time.sleep(0.3)
os.waitpid(pid, 0)
print("parent: done", flush=True)
PY
) || fail "the two processes failed: $out"
echo "$out"
expect_match "cross-process wait" "child: timed out while the parent held it" "$out"
expect_match "cross-process admission" "child: admitted after 0\.[0-9]+ s" "$out"
