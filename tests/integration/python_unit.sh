#!/usr/bin/env bash
# The Python package's own tests (tests/python/test_*.py), with Debian's
# python3 and without the accounting shim: sizes (the cases of
# tests/data/sizes.tsv), is_allocation_failure, isolate(),
# scope figures from /proc, the gRPC interceptors on 127.0.0.1, the WSGI and
# ASGI middleware, the automatic bootstrap.
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built (make python)"
export PYTHONPATH=$MF_BUILD/python
unset LD_PRELOAD MEMFENCE_EXPECT_SHIM
for t in "$MF_ROOT_DIR"/tests/python/test_*.py; do
	echo "== $(basename "$t")"
	timeout --kill-after=5 60 "$PY" "$t" -v || fail "$(basename "$t")"
done
