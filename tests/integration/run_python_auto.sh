#!/usr/bin/env bash
# memfence run puts the Python bootstrap first on PYTHONPATH of a Python
# program (the interpreter itself, or a script whose #! names python), and
# only then; --no-auto-python and MEMFENCE_AUTO_PYTHON=0 turn it off.
. "$(dirname "$0")/../lib.sh"

[ -f "$MF_BUILD/python/memfence/_bootstrap/sitecustomize.py" ] || fail "the Python package is not built"
run() { "$MEMFENCE" run --http off --no-account "$@" 2>"$MF_TMP/err"; }
probe='import sys; print(any(type(f).__name__ == "MemfenceFinder" for f in sys.meta_path))'

expect_eq "interpreter" True "$(run -- $PY -c "$probe")"
printf '#!%s\n%s\n' "$PY" "$probe" >"$MF_TMP/script"
chmod +x "$MF_TMP/script"
expect_eq "python script" True "$(run -- "$MF_TMP/script")"
expect_eq "--no-auto-python" False "$(run --no-auto-python -- $PY -c "$probe")"
expect_eq "MEMFENCE_AUTO_PYTHON=0" False "$(MEMFENCE_AUTO_PYTHON=0 run -- "$MF_TMP/script")"
# The bootstrap loads memfence only when the program imports a module it
# patches: start-up stays what it was.
expect_eq "memfence not loaded at start" "[]" \
	"$(run -- $PY -c 'import sys; print(sorted(m for m in sys.modules if m.startswith("memfence")))')"
# The user's PYTHONPATH is kept, after the bootstrap; not a Python program:
# nothing is added.
out=$(PYTHONPATH=/opt/app run -- $PY -c 'import os; print(os.environ["PYTHONPATH"])')
expect_match "PYTHONPATH" '^/.*/memfence/_bootstrap:/opt/app$' "$out"
expect_eq "PYTHONPATH of a shell" "" "$(run -- sh -c 'echo "${PYTHONPATH:-}"')"
# A gRPC server made with grpc.server() gets the interceptor.
if $PY -c 'import grpc' 2>/dev/null; then
	out=$(run -- $PY -c '
import grpc
from concurrent import futures
s = grpc.server(futures.ThreadPoolExecutor(1))
print(any(getattr(i, "memfence_interceptor", False) for i in s._state.interceptor_pipeline.interceptors))
')
	expect_eq "interceptor added to grpc.server()" True "$out"
else
	fail "python3-grpcio is not installed"
fi
echo ok
