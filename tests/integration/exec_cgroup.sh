#!/usr/bin/env bash
# The real thing: in a 256 MiB memory cgroup, Debian's python3 allocating past
# the limit is OOM-killed without memfence and catches MemoryError under
# `memfence exec`; under exec it can still start 50 threads; and
# `memfence inspect --json` inside the cgroup reports the limit.
. "$(dirname "$0")/../lib.sh"

LIMIT=$((256 * 1024 * 1024))
HOG=$MF_ROOT_DIR/tests/progs/hog.py
mf_need_cgroup exec $LIMIT

for mode in big small; do
	# Without memfence: the kernel kills it.
	before=$(mf_cgroup_oom_kills "$MF_CG")
	mf_cgroup_run "$MF_CG" $PY "$HOG" $mode >"$MF_TMP/out" 2>&1
	rc=$?
	after=$(mf_cgroup_oom_kills "$MF_CG")
	expect_eq "$mode without memfence: killed by SIGKILL" 137 $rc
	expect_eq "$mode without memfence: oom_kill counter" $((before + 1)) "$after"
	grep -q MemoryError "$MF_TMP/out" && fail "$mode without memfence caught MemoryError"

	# Under memfence exec: MemoryError in Python, clean exit, no OOM kill.
	mf_cgroup_run "$MF_CG" "$MEMFENCE" exec -- $PY "$HOG" $mode >"$MF_TMP/out" 2>&1
	rc=$?
	expect_eq "$mode under memfence exec: exit status ($(cat "$MF_TMP/out"))" 0 $rc
	expect_eq "$mode under memfence exec: oom_kill counter" "$after" "$(mf_cgroup_oom_kills "$MF_CG")"
	grep -q "MemoryError caught" "$MF_TMP/out" || fail "$mode: no MemoryError under memfence: $(cat "$MF_TMP/out")"
	echo "$mode: $(tail -n1 "$MF_TMP/out")"
done

# Threads: 50 start under the budget with 2 MiB stacks. With glibc's default
# of 8 MiB stacks the same budget cannot hold them: the stack setting is
# what makes RLIMIT_DATA usable for threaded servers.
mf_cgroup_run "$MF_CG" "$MEMFENCE" exec -- $PY "$HOG" threads 50 >"$MF_TMP/out" 2>&1 ||
	fail "50 threads under memfence exec: $(cat "$MF_TMP/out")"
expect_eq "threads" "started 50 threads" "$(tail -n1 "$MF_TMP/out")"
(ulimit -s 8192; mf_cgroup_run "$MF_CG" "$MEMFENCE" exec --stack 8M -- $PY "$HOG" threads 50) >"$MF_TMP/out" 2>&1
rc=$?
expect_eq "50 threads with 8 MiB stacks must not fit ($(tail -n1 "$MF_TMP/out"))" 3 $rc
grep -q "can't start new thread" "$MF_TMP/out" || fail "expected Python's thread-start error: $(cat "$MF_TMP/out")"

# inspect inside the cgroup sees its limit.
json=$(mf_cgroup_run "$MF_CG" "$MEMFENCE" inspect --json) || fail "inspect --json failed in the cgroup"
expect_eq "inspect limit_bytes" $LIMIT "$(echo "$json" | $PY -c 'import json,sys; print(json.load(sys.stdin)["limit_bytes"])')"
exit 0
