#!/usr/bin/env bash
# A post-mortem shows the figures at the time of death, not after: a real
# OOM kill in a 192 MiB cgroup, the program holding most of it. The
# cgroup's usage and headroom are the last sample before the death (after
# it, the usage is a few MiB), and the heap's live bytes count the dead
# program's own, as its slot of the stats segment last said (docs/failure.md).
. "$(dirname "$0")/../lib.sh"
export MEMFENCE_PRESSURE=off

[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
LIMIT=$((192 << 20))
mf_need_cgroup pmfig $LIMIT
R=$MF_TMP/r
# Grow to about 120 MiB, hold it for a few samples, then take the rest in
# one go: the kernel kills it.
cat >"$MF_TMP/grow.py" <<'PY'
import ctypes, time
lib = ctypes.CDLL(None)
assert lib.memfence_active() == 1, "accounting is not active"
lib.memfence_scope_begin(b"POST /upload", b"req-7", ctypes.c_size_t(0))
hog = [b"\x01" * (4 << 20) for _ in range(30)]
time.sleep(1.5)
while True:
    hog.append(b"\x01" * (4 << 20))
PY
mf_cgroup_run "$MF_CG" "$MEMFENCE" run --http off --rlimit none --container-check off \
	--report-dir "$R" -- $PY "$MF_TMP/grow.py" 2>"$MF_TMP/err"
rc=$?
expect_eq "status ($(cat "$MF_TMP/err"))" 137 $rc
[ "$(mf_cgroup_oom_kills "$MF_CG")" -ge 1 ] || fail "no OOM kill happened (test is void): $(cat "$MF_TMP/err")"
rep=$(ls "$R"/memfence-report-*.json | head -n1)
[ -f "$rep" ] || fail "no report: $(cat "$MF_TMP/err")"
$PY - "$rep" $LIMIT <<'PY' || fail "figures after the death, not at it: $(cat "$MF_TMP/err")"
import json, sys
r = json.load(open(sys.argv[1]))
limit = int(sys.argv[2])
m, h = r["memory"], r["heap"]
assert r["cause"] == "oom-kill", r["cause"]
# At least the 120 MiB held for 1.5 s were in use when it died.
assert m["usage"] >= 100 << 20, ("usage", m)
assert m["working_set"] >= 100 << 20, ("working set", m)
assert m["headroom"] <= limit - (100 << 20), ("headroom", m)
assert h["live"] >= 100 << 20, ("heap live", h)
assert h["peak"] >= h["live"], h
PY
out=$("$MEMFENCE" report "$rep")
expect_match "summary" "heap: live [0-9.]+ MiB" "$out"
exit 0
