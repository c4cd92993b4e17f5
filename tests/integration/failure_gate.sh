#!/usr/bin/env bash
# The admission gate misused (docs/failure.md, "What memfence promises"):
#   - a fork inside an admitted request: the child inherits no admission,
#     the shared count stays true (it went negative: then requests ran one
#     at a time and timed out);
#   - gate.admit(timeout=1e10) waits as long as it can, no OverflowError;
#   - MEMFENCE_GATE takes every boolean word; --gate-need above the whole
#     budget is refused as a percentage above 100% is.
# (A handle entered twice: tests/unit/test_shim_gate.c.)
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built (make python)"
export MEMFENCE_PRESSURE=off
unset MEMFENCE_GATE MEMFENCE_GATE_NEED
cd "$MF_TMP" || fail "cannot enter $MF_TMP"

cat >fork.py <<'PY'
import json, os, sys, urllib.request
from memfence import gate

def status():
    with urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1], timeout=10) as r:
        return json.load(r)["gate"]["admitted_need_bytes"]

# Both processes leave the block: the child's copy holds nothing.
with gate.admit("forking", need="300M", timeout=5):
    pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:
    with gate.admit("in-child", need="100M", timeout=5):
        pass
    os._exit(0)
os.waitpid(pid, 0)
# Two at once fit: the count is neither negative nor left high.
with gate.admit("a", need="1M", timeout=5):
    with gate.admit("b", need="1M", timeout=1):
        pass
with gate.admit("long", need="1M", timeout=1e10):
    pass
with gate.admit("inf", need="1M", timeout=float("inf")):
    pass
# The supervisor publishes the sum at each sample: wait for one.
import time
for _ in range(50):
    n = status()
    if n == 0:
        break
    time.sleep(0.1)
print("admitted_need_bytes", n)
PY
port=$(mf_free_port)
PYTHONPATH=$MF_BUILD/python timeout 60 "$MEMFENCE" run --http "127.0.0.1:$port" -- "$PY" fork.py \
	"$port" >out 2>err
rc=$?
expect_eq "fork in an admitted request: status ($(cat err))" 0 "$rc"
expect_eq "fork in an admitted request" "admitted_need_bytes 0" "$(cat out)"

# MEMFENCE_GATE: every boolean word.
for v in 0 false OFF no 1 true On yes; do
	MEMFENCE_GATE=$v timeout 30 "$MEMFENCE" run --http off --no-account -- true >out 2>err
	rc=$?
	expect_eq "MEMFENCE_GATE=$v: status ($(cat err))" 0 "$rc"
done
MEMFENCE_GATE=maybe timeout 30 "$MEMFENCE" run --http off --no-account -- true >out 2>err
expect_eq "MEMFENCE_GATE=maybe: status" 2 "$?"
grep -q "invalid MEMFENCE_GATE 'maybe'" err || fail "MEMFENCE_GATE=maybe: $(cat err)"

# --gate-need above the whole budget: refused, as 150% is.
for v in 150% 100T; do
	timeout 30 "$MEMFENCE" run --http off --no-account --gate-need "$v" -- true >out 2>err
	rc=$?
	expect_eq "--gate-need $v: status ($(cat err))" 2 "$rc"
	grep -q "invalid --gate-need '$v'" err || fail "--gate-need $v: $(cat err)"
done
grep -q "above the whole budget" err || fail "--gate-need 100T: $(cat err)"
exit 0
