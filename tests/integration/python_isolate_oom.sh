#!/usr/bin/env bash
# isolate(): a child OOM-killed in a real memory cgroup becomes MemoryError
# in the parent, which survives.
. "$(dirname "$0")/../lib.sh"
export PYTHONPATH=$MF_BUILD/python
mf_need_cgroup isolate $((160 << 20))
before=$(mf_cgroup_oom_kills "$MF_CG")
out=$(mf_cgroup_run "$MF_CG" timeout 60 "$PY" "$MF_ROOT_DIR/tests/python/isolate_oom.py" 512 2>&1)
rc=$?
echo "$out"
expect_eq "exit status" 0 "$rc"
expect_match "error" '^MemoryError: isolated hog ran out of memory' "$out"
expect_match "second call" '^after: 8 (rss|shim)$' "$out"
after=$(mf_cgroup_oom_kills "$MF_CG")
[ "$after" -gt "$before" ] || fail "no OOM kill was counted in the cgroup ($before -> $after)"
