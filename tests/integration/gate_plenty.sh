#!/usr/bin/env bash
# The admission gate costs nothing when memory is plentiful (docs/gate.md):
# under `memfence run` in a real 4 GiB memory cgroup, 8 threads run requests
# of 4 MiB each, 8 at a time, 6 rounds (the kind is learned after the first
# 10). The budget holds hundreds of them, so no request may wait at the
# gate, the first ones after the start included (before the kind is learned
# they ask for the default need), as /status counts them.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
mf_need_cgroup gate-plenty $((4 << 30))
port=$(mf_free_port)

out=$(PYTHONPATH=$MF_BUILD/python mf_cgroup_run "$MF_CG" env -u PYTHONPATH "$MEMFENCE" run \
	--http "127.0.0.1:$port" --report-dir "$MF_TMP/reports" -- "$PY" - "$port" <<'PY'
import json, sys, threading, time, urllib.request
import memfence
import memfence.gate as g

assert g.enabled(), "the gate is off"
start = threading.Barrier(8)


def worker():
    for _ in range(6):
        start.wait(timeout=30)  # 8 requests arrive at once
        with memfence.scope("work"):
            with g.admit("work", timeout=10):
                b = bytearray(4 << 20)
                b[::4096] = b"x" * len(b[::4096])
                time.sleep(0.2)


threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=60)
# The supervisor reads the segment at its next sample.
for _ in range(50):
    with urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1], timeout=5) as r:
        gate = json.load(r)["gate"]
    work = [n for n in gate["names"] if n["name"] == "work"]
    if work and work[0]["admitted"] >= 48:
        break
    time.sleep(0.1)
print("gate:", json.dumps(work))
w = work[0]
print("admitted %d waited %d timed_out %d need %d" % (w["admitted"], w["waited"], w["timed_out"],
                                                      w["need_bytes"]))
PY
) || fail "the program failed: $out"
echo "$out"
line=$(echo "$out" | grep '^admitted')
expect_match "every request admitted" "^admitted 48 " "$line"
expect_match "no request waited" " waited 0 timed_out 0 " "$line"
echo ok
