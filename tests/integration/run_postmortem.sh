#!/usr/bin/env bash
# A real OOM kill in a memory cgroup, with the accounting library on: the
# post-mortem names the request that was in flight, with its memory.
# --rlimit none, --container-check off and MEMFENCE_PRESSURE=off let the
# kernel act first (with the defaults memfence refuses the allocation).
. "$(dirname "$0")/../lib.sh"
export MEMFENCE_PRESSURE=off

[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
mf_need_cgroup pm $((160 << 20))
R=$MF_TMP/r
cat >"$MF_TMP/upload.py" <<'PY'
import ctypes
lib = ctypes.CDLL(None)
assert lib.memfence_active() == 1, "accounting is not active"
lib.memfence_scope_begin(b"GET /health", b"h-1", ctypes.c_size_t(0))
lib.memfence_scope_end(None)
lib.memfence_scope_begin(b"POST /upload", b"req-42", ctypes.c_size_t(0))
hog = []
while True:
    hog.append(b"\x01" * (4 << 20))
PY
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --rlimit none --container-check off \
	--report-dir "$R" -- $PY "$MF_TMP/upload.py" 2>"$MF_TMP/err"
expect_eq "status" 137 $?
[ "$(mf_cgroup_oom_kills "$MF_CG")" -ge 1 ] || fail "no OOM kill happened (test is void): $(cat "$MF_TMP/err")"
grep -q "POST /upload id req-42" "$MF_TMP/err" || fail "the summary does not name the request: $(cat "$MF_TMP/err")"
rep=$(ls "$R"/memfence-report-*.json | head -n1)
$PY - "$rep" <<'PY' || fail "report content: $(cat "$rep")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cause"] == "oom-kill", r["cause"]
inf = r["in_flight"]
assert len(inf) == 1, inf
s = inf[0]
assert s["name"] == "POST /upload" and s["id"] == "req-42", s
assert s["pid"] == r["child"]["pid"], (s, r["child"])
# It held most of the cgroup when it died.
assert s["net"] > 64 << 20, s
assert r["heap"]["accounting"] is True
PY
out=$("$MEMFENCE" report "$rep")
expect_match "report text" "POST /upload id req-42: allocated [0-9.]+ MiB" "$out"
echo ok
