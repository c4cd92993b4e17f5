# Helpers for test scripts running inside the v2 guest (tests/uml/run-in-v2),
# where the script runs as root in /sys/fs/cgroup/kubepods/pod1/ctr. Each
# check prints "ok: WHAT" or "FAIL: WHAT ..."; v2_done exits 1 after any
# failure, so one boot runs every check and reports them all.
set -u
CG=/sys/fs/cgroup
POD=$CG/kubepods/pod1
CTR=$POD/ctr
V2_FAILED=0

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; V2_FAILED=$((V2_FAILED + 1)); }
# expect_eq WHAT EXPECTED ACTUAL
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi; }
# expect_match WHAT REGEX TEXT
expect_match() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then ok "$1"; else bad "$1: '$3' does not match /$2/"; fi
}
v2_done() { [ "$V2_FAILED" = 0 ]; exit; }

# jget FILE EXPR: EXPR evaluated with d = the JSON document in FILE.
jget() {
	$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if not isinstance(v, str) else v)' "$1" "$2" 2>&1
}

# v2_container NAME MAX: a sibling of ctr in pod1 with memory.max MAX and no
# swap; prints its directory.
v2_container() {
	local dir=$POD/$1
	mkdir "$dir" && echo "$2" >"$dir/memory.max" && echo 0 >"$dir/memory.swap.max" && echo "$dir"
}

# v2_in DIR CMD...: run CMD in cgroup DIR.
v2_in() {
	local dir=$1
	shift
	bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$dir" "$@"
}

# v2_key FILE KEY: the value of KEY in a flat keyed file (memory.events).
v2_key() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}
