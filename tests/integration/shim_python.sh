#!/usr/bin/env bash
# Debian's python3 under the shim, serving "requests" on 8 threads, each in
# a scope with a budget: the one oversized request gets MemoryError, the
# others finish with figures that match what they allocated.
. "$(dirname "$0")/../lib.sh"

SHIM=$MF_BUILD/libmemfence.so
[ -x "$PY" ] || skip "$PY is not installed"

cat >"$MF_TMP/serve.py" <<'PYEOF'
import ctypes, queue, sys, threading

lib = ctypes.CDLL(None)  # the preloaded shim's symbols
if not lib.memfence_active():
    sys.exit("accounting is not active")

class Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("allocated", "freed")] + [
        ("net", ctypes.c_int64)] + [
        (n, ctypes.c_uint64) for n in ("peak", "failed", "calls", "duration_ns")]

lib.memfence_scope_begin.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
lib.memfence_scope_end.argtypes = [ctypes.POINTER(Stats)]

MiB = 1 << 20
BUDGET = 64 * MiB

def handle(size):
    # The work of a request: a buffer of `size` bytes and some objects.
    buf = bytearray(size)
    words = [str(i) * 3 for i in range(2000)]
    return len(buf) + len(words)

requests = queue.Queue()
for i in range(40):
    requests.put(("req-%d" % i, 4 * MiB if i != 17 else 512 * MiB))
results, lock = {}, threading.Lock()

def worker():
    while True:
        try:
            rid, size = requests.get_nowait()
        except queue.Empty:
            return
        assert lib.memfence_scope_begin(b"handle", rid.encode(), BUDGET) == 0
        try:
            handle(size)
            outcome = "ok"
        except MemoryError:
            outcome = "MemoryError"
        st = Stats()
        assert lib.memfence_scope_end(ctypes.byref(st)) == 0
        with lock:
            results[rid] = (size, outcome, st.allocated, st.freed, st.net, st.peak, st.failed)

threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()

bad = 0
for rid, (size, outcome, a, f, net, peak, failed) in sorted(results.items()):
    print(rid, size, outcome, a, f, net, peak, failed)
    if size > BUDGET:
        ok = outcome == "MemoryError" and failed >= 1 and peak <= BUDGET
    else:
        # the buffer was allocated and given back inside the request
        ok = (outcome == "ok" and failed == 0 and a >= size and f >= size
              and peak >= size and peak <= BUDGET and abs(net) < 4 * MiB)
    if not ok:
        print("unexpected figures for", rid, file=sys.stderr)
        bad += 1
print("requests", len(results), "bad", bad)
sys.exit(1 if bad or len(results) != 40 else 0)
PYEOF

out=$(LD_PRELOAD=$SHIM timeout 60 "$PY" "$MF_TMP/serve.py" 2>&1) || { echo "$out"; fail "python requests under the shim"; }
echo "$out" | tail -n 3
expect_match "the oversized request" '^req-17 536870912 MemoryError' "$(echo "$out" | grep '^req-17 ')"
expect_eq "requests that failed" 1 "$(echo "$out" | grep -c MemoryError)"
