#!/usr/bin/env bash
# memfence.scope under the accounting shim (memfence exec --account): exact
# figures, budgets that fail one request only, asyncio requests interleaved
# on one thread each charged with their own memory.
. "$(dirname "$0")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
export PYTHONPATH=$MF_BUILD/python MEMFENCE_EXPECT_SHIM=1
for t in test_scope.py test_isolate.py test_grpc.py test_http_middleware.py; do
	echo "== $t under the shim"
	timeout --kill-after=5 60 "$MEMFENCE" exec --account -- "$PY" "$MF_ROOT_DIR/tests/python/$t" -v ||
		fail "$t under the shim"
done

# Thread-start failures with the errno the shim recorded (fault injection):
# ENOMEM/EAGAIN count as allocation failures, EPERM (seccomp) does not.
for err in ENOMEM EAGAIN EPERM; do
	out=$(MEMFENCE_FAULT="thread=$err,scope=spawn*" timeout 60 "$MEMFENCE" exec --account -- "$PY" -c '
import threading, memfence
try:
    with memfence.scope("spawn-workers"):
        threading.Thread(target=lambda: None).start()
except RuntimeError as e:
    print(memfence.is_allocation_failure(e), memfence.describe_failure(e))
t = threading.Thread(target=lambda: None); t.start(); t.join(); print("outside ok")
' 2>&1)
	echo "$out"
	case $err in EPERM) want="False None" ;; *) want="True RuntimeError: can't start new thread (pthread_create: $err)" ;; esac
	expect_eq "thread=$err" "$want
outside ok" "$out"
done

# An inbound message too big for the memory left: grpc builds it inside its
# polling thread, and the MemoryError there would end that thread (a server
# that is up and answers nothing). The shim fails every allocation of 32 MiB
# or more in the server; the small call after it must still be served with
# the interceptor, and is not without it (the check can fail).
for mode in memfence plain; do
	MEMFENCE_FAULT='size>=32M' "$MEMFENCE" exec --account -- "$PY" \
		"$MF_ROOT_DIR/tests/python/inbound_server.py" "$mode" >"$MF_TMP/inb-$mode.port" 2>"$MF_TMP/inb-$mode.err" &
	spid=$!
	MF_PIDS+=("$spid")
	for i in $(seq 1 50); do [ -s "$MF_TMP/inb-$mode.port" ] && break; sleep 0.2; done
	[ -s "$MF_TMP/inb-$mode.port" ] || { cat "$MF_TMP/inb-$mode.err"; fail "inbound $mode: server did not start"; }
	out=$(PYTHONPATH= timeout 60 "$PY" "$MF_ROOT_DIR/tests/python/inbound_client.py" "$(cat "$MF_TMP/inb-$mode.port")")
	echo "inbound $mode: $(echo $out)"
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	case $mode in
	memfence) expect_eq "inbound with memfence" "DEADLINE_EXCEEDED 5" "$(echo $out)" ;;
	plain) expect_eq "inbound without memfence" "DEADLINE_EXCEEDED DEADLINE_EXCEEDED" "$(echo $out)" ;;
	esac
done
