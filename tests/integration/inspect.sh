#!/usr/bin/env bash
# memfence inspect: the limit on every fixture tree (through --root and
# MEMFENCE_ROOT), its options and errors, other processes (--pid), this
# machine, and a real 256 MiB memory cgroup.
source "$(dirname "$0")/../lib.sh"
FX=$MF_ROOT_DIR/tests/fixtures/cgroup
[ -x "$MEMFENCE" ] || fail "$MEMFENCE is not built"
# The test's own environment must not choose for inspect.
unset MEMFENCE_LIMIT MEMFENCE_RESERVE MEMFENCE_RLIMIT MEMFENCE_STACK MEMFENCE_ROOT

# jget FILE EXPR: EXPR evaluated with d = the JSON document in FILE.
jget() {
	$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if not isinstance(v, str) else v)' "$1" "$2" ||
		fail "cannot read '$2' from $(cat "$1")"
}

# inspect_json OUT ARGS...: run inspect --json, which must succeed.
inspect_json() {
	local out=$1
	shift
	"$MEMFENCE" inspect --json "$@" >"$out" 2>"$MF_TMP/err" ||
		fail "inspect --json $*: exit $? ($(cat "$MF_TMP/err"))"
}

# --- every fixture: limit, where it came from, cgroup version ------------
# (an underscore stands for the space in "cgroup v1")
while read -r name limit source version unreadable; do
	inspect_json "$MF_TMP/$name.json" --root "$FX/$name"
	# One interpreter per tree: limit, source, version, unreadable; and
	# the plan starts from the same limit, with budget = limit - reserve.
	expect_eq "$name: limit_bytes limit_source cgroup.version limit_unreadable plan" \
		"$limit ${source//_/ } $version $unreadable plan-ok" \
		"$(jget "$MF_TMP/$name.json" '" ".join([str(d["limit_bytes"]), d["limit_source"],
			str(d["cgroup"]["version"]), json.dumps(d["limit_unreadable"]),
			"plan-ok" if d["plan"]["limit_bytes"] == d["limit_bytes"] and
			d["plan"]["budget_bytes"] == d["plan"]["limit_bytes"] - d["plan"]["reserve_bytes"] > 0
			else "plan-wrong %r" % d["plan"]])')"
done <<'EOF'
v1                268435456  cgroup_v1 1 false
v1-unlimited      8589934592 MemTotal  1 false
v2-nested         536870912  cgroup_v2 2 false
v2-max            2147483648 MemTotal  2 false
v2-high           1073741824 cgroup_v2 2 false
v2-container      268435456  cgroup_v2 2 false
v2-above-memtotal 8589934592 MemTotal  2 false
hybrid            314572800  cgroup_v1 1 false
missing-files     536870912  cgroup_v1 1 false
truncated         4294967296 MemTotal  2 true
garbage           268435456  cgroup_v1 1 false
EOF

# Figures of one tree in detail, and null for what could not be read.
j=$MF_TMP/v1.json
expect_eq "v1 usage" 104857600 "$(jget "$j" 'd["usage_bytes"]')"
expect_eq "v1 working set" 100663296 "$(jget "$j" 'd["working_set_bytes"]')"
expect_eq "v1 headroom" 167772160 "$(jget "$j" 'd["headroom_bytes"]')"
expect_eq "v1 oom_kill" 2 "$(jget "$j" 'd["events"]["oom_kill"]')"
expect_eq "v1 failcnt" 3 "$(jget "$j" 'd["events"]["failcnt"]')"
expect_eq "v1 RLIMIT_DATA" 251658240 "$(jget "$j" 'd["rlimits"]["data"]["soft"]')"
expect_eq "v1 RLIMIT_AS" unlimited "$(jget "$j" 'd["rlimits"]["as"]["hard"]')"
expect_eq "v1 thread stack" 8388608 "$(jget "$j" 'd["thread_stack_bytes"]')"
expect_eq "v1 thread stack from" RLIMIT_STACK "$(jget "$j" 'd["thread_stack_source"]')"
expect_eq "v1 plan budget" 201326592 "$(jget "$j" 'd["plan"]["budget_bytes"]')"
expect_eq "v1 warnings" "[]" "$(jget "$j" 'd["warnings"]')"
expect_eq "v2-nested limit file" "$FX/v2-nested/sys/fs/cgroup/kubepods/memory.max" \
	"$(jget "$MF_TMP/v2-nested.json" 'd["limit_file"]')"
expect_eq "v2-high high" 805306368 "$(jget "$MF_TMP/v2-high.json" 'd["high_bytes"]')"
expect_eq "v2-high RLIMIT_STACK unlimited" 2097152 "$(jget "$MF_TMP/v2-high.json" 'd["thread_stack_bytes"]')"
expect_eq "v2-high ignore_rlimit_data" true "$(jget "$MF_TMP/v2-high.json" 'd["ignore_rlimit_data"]')"
expect_eq "truncated usage" null "$(jget "$MF_TMP/truncated.json" 'd["usage_bytes"]')"
expect_eq "truncated headroom" null "$(jget "$MF_TMP/truncated.json" 'd["headroom_bytes"]')"
expect_eq "hybrid limit key" hierarchical_memory_limit "$(jget "$MF_TMP/hybrid.json" 'd["limit_key"]')"
expect_eq "v2-max swap" unlimited "$(jget "$MF_TMP/v2-max.json" 'd["swap_max_bytes"]')"

# --- the warnings inspect must give --------------------------------------
warn_has() { # FILE NEEDLE
	jget "$1" 'd["warnings"]' | grep -qF -- "$2" || fail "$1: no warning with '$2': $(jget "$1" 'd["warnings"]')"
}
warn_has "$MF_TMP/v2-high.json" "ignore_rlimit_data=Y"
warn_has "$MF_TMP/v2-high.json" "memory.high (768 MiB) is below the limit"
warn_has "$MF_TMP/v1-unlimited.json" "swap present"
warn_has "$MF_TMP/v2-max.json" "swap present"
warn_has "$MF_TMP/truncated.json" "limit unreadable"
warn_has "$MF_TMP/truncated.json" "memory.max: truncated"
warn_has "$MF_TMP/garbage.json" "memory.limit_in_bytes: not a number ('12ab')"
warn_has "$MF_TMP/v2-above-memtotal.json" "above physical memory"
inspect_json "$MF_TMP/as.json" --root "$FX/v1" --rlimit as
warn_has "$MF_TMP/as.json" "RLIMIT_AS chosen"
expect_eq "--rlimit as" as "$(jget "$MF_TMP/as.json" 'd["plan"]["rlimit"]')"
inspect_json "$MF_TMP/small.json" --root "$FX/v1" --limit 96M --stack 4M
warn_has "$MF_TMP/small.json" "fewer than 16 threads of 4 MiB stack"

# The same warnings in the human table.
"$MEMFENCE" inspect --root "$FX/truncated" >"$MF_TMP/human" 2>&1 || fail "human output: exit $?"
grep -q '^Warnings' "$MF_TMP/human" || fail "no Warnings section: $(cat "$MF_TMP/human")"
grep -q 'limit unreadable' "$MF_TMP/human" || fail "human: no 'limit unreadable'"
grep -Eq '^  limit +4 GiB \(4294967296 bytes\)' "$MF_TMP/human" || fail "human: limit row: $(cat "$MF_TMP/human")"
"$MEMFENCE" inspect --root "$FX/v2-nested" >"$MF_TMP/human" 2>&1 || fail "human output: exit $?"
grep -Eq '^  cgroup +v2 /kubepods/pod1/c1$' "$MF_TMP/human" || fail "human: cgroup row: $(cat "$MF_TMP/human")"
grep -Eq '^  headroom +322 MiB$' "$MF_TMP/human" || fail "human: headroom row"
grep -q '^Warnings' "$MF_TMP/human" && fail "v2-nested has no warnings, yet: $(cat "$MF_TMP/human")"

# --- limit options and their MEMFENCE_* variables, as exec takes them -----
inspect_json "$MF_TMP/o.json" --root "$FX/v1" --limit 1G --reserve 25% --stack 1M
expect_eq "--limit" 1073741824 "$(jget "$MF_TMP/o.json" 'd["plan"]["limit_bytes"]')"
expect_eq "--limit source" "command line" "$(jget "$MF_TMP/o.json" 'd["plan"]["limit_source"]')"
expect_eq "--reserve 25%" 268435456 "$(jget "$MF_TMP/o.json" 'd["plan"]["reserve_bytes"]')"
expect_eq "--stack" 1048576 "$(jget "$MF_TMP/o.json" 'd["plan"]["stack_bytes"]')"
# the cgroup's own figure stays what it is
expect_eq "limit_bytes with --limit" 268435456 "$(jget "$MF_TMP/o.json" 'd["limit_bytes"]')"
MEMFENCE_LIMIT=50% MEMFENCE_RESERVE=16M MEMFENCE_RLIMIT=none \
	inspect_json "$MF_TMP/e.json" --root "$FX/v1"
expect_eq "MEMFENCE_LIMIT=50%" 134217728 "$(jget "$MF_TMP/e.json" 'd["plan"]["limit_bytes"]')"
expect_eq "MEMFENCE_RESERVE" 117440512 "$(jget "$MF_TMP/e.json" 'd["plan"]["budget_bytes"]')"
expect_eq "MEMFENCE_RLIMIT" none "$(jget "$MF_TMP/e.json" 'd["plan"]["rlimit"]')"
MEMFENCE_RESERVE=16M inspect_json "$MF_TMP/e.json" --root "$FX/v1" --reserve 32M
expect_eq "option over variable" 33554432 "$(jget "$MF_TMP/e.json" 'd["plan"]["reserve_bytes"]')"
MEMFENCE_ROOT=$FX/v2-container inspect_json "$MF_TMP/e.json"
expect_eq "MEMFENCE_ROOT" 268435456 "$(jget "$MF_TMP/e.json" 'd["limit_bytes"]')"

# --- errors: one clear line, exit 2 for bad options, 1 for a bad process --
expect_status() { # WHAT STATUS NEEDLE ARGS...
	local what=$1 want=$2 needle=$3 rc
	shift 3
	"$MEMFENCE" inspect "$@" >"$MF_TMP/out" 2>"$MF_TMP/err"
	rc=$?
	expect_eq "$what: exit status" "$want" "$rc"
	grep -qF -- "$needle" "$MF_TMP/err" || fail "$what: stderr lacks '$needle': $(cat "$MF_TMP/err")"
	[ "$(wc -l <"$MF_TMP/err")" -le 2 ] || fail "$what: more than a line of error: $(cat "$MF_TMP/err")"
	[ -s "$MF_TMP/out" ] && fail "$what: printed on stdout: $(cat "$MF_TMP/out")"
	return 0
}
expect_status "unknown option" 2 "unrecognized option" --bogus
expect_status "stray argument" 2 "unexpected argument 'extra'" extra
expect_status "--pid abc" 2 "invalid --pid 'abc'" --pid abc
expect_status "--pid 0" 2 "invalid --pid '0'" --pid 0
expect_status "--pid -1" 2 "invalid --pid '-1'" --pid -1
expect_status "--pid 99999999999" 2 "invalid --pid" --pid 99999999999
expect_status "--limit junk" 2 "invalid limit '12ab'" --root "$FX/v1" --limit 12ab
expect_status "--reserve too big" 2 "leaves no budget" --root "$FX/v1" --reserve 100%
expect_status "--rlimit junk" 2 "invalid rlimit 'rss'" --root "$FX/v1" --rlimit rss
expect_status "--stack too small" 2 "at least 256K" --root "$FX/v1" --stack 64K
MEMFENCE_LIMIT=lots expect_status "MEMFENCE_LIMIT junk" 2 "invalid limit 'lots' (--limit, MEMFENCE_LIMIT)" --root "$FX/v1"
expect_status "--root missing" 2 "invalid --root" --root "$MF_TMP/nowhere"
expect_status "no such process" 1 "no process 4242" --root "$FX/v1" --pid 4242
# pid_max is at most 2^22: this process cannot exist.
expect_status "no such process" 1 "no process 2147483647" --pid 2147483647
mkdir -p "$MF_TMP/empty/proc/self"
expect_status "nothing readable" 1 "no memory limit could be read" --root "$MF_TMP/empty"

"$MEMFENCE" inspect --help >"$MF_TMP/help" || fail "--help: exit $?"
grep -q 'Usage: memfence inspect' "$MF_TMP/help" || fail "--help: no usage line"
grep -q -- '--pid PID' "$MF_TMP/help" || fail "--help: no --pid"

# --- this machine ----------------------------------------------------------
inspect_json "$MF_TMP/here.json"
expect_eq "here: pid" null "$(jget "$MF_TMP/here.json" 'd["pid"]')"
expect_eq "here: limit is a number" true \
	"$(jget "$MF_TMP/here.json" 'isinstance(d["limit_bytes"], int) and d["limit_bytes"] > 0')"
expect_eq "here: thread stack source" pthread_getattr_default_np \
	"$(jget "$MF_TMP/here.json" 'd["thread_stack_source"]')"
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] &&
   ! grep -qw memory /sys/fs/cgroup/unified/cgroup.controllers &&
   grep -q ':memory:' /proc/self/cgroup; then
	# A hybrid host: memory is on v1 whatever the unified tree holds.
	expect_eq "here: cgroup version" 1 "$(jget "$MF_TMP/here.json" 'd["cgroup"]["version"]')"
fi
"$MEMFENCE" inspect >"$MF_TMP/human" || fail "inspect here: exit $?"
grep -Eq '^  limit +[0-9.]+ [KMGT]iB \([0-9]+ bytes\)$' "$MF_TMP/human" || fail "here: $(cat "$MF_TMP/human")"

# This process's thread stack follows RLIMIT_STACK, as glibc reads it at start.
(ulimit -s 4096 && exec "$MEMFENCE" inspect --json) >"$MF_TMP/s.json" || fail "ulimit -s 4096: exit $?"
expect_eq "self stack 4M" 4194304 "$(jget "$MF_TMP/s.json" 'd["thread_stack_bytes"]')"

# --- other processes (--pid) ----------------------------------------------
# started_sleep: after "cmd &", wait until $! has become sleep, so that its
# limits and environment are the ones it was started with.
started_sleep() {
	local pid=$! i
	MF_PIDS+=("$pid")
	for i in $(seq 100); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] && return 0
		sleep 0.05
	done
	fail "process $pid did not start sleep"
}
sleep 60 &
started_sleep
inspect_json "$MF_TMP/p.json" --pid "$!"
expect_eq "--pid pid" "$!" "$(jget "$MF_TMP/p.json" 'd["pid"]')"
expect_eq "--pid rlimits source" "/proc/$!/limits" "$(jget "$MF_TMP/p.json" 'd["rlimits_source"]')"
expect_eq "--pid same limit" "$(jget "$MF_TMP/here.json" 'd["limit_bytes"]')" \
	"$(jget "$MF_TMP/p.json" 'd["limit_bytes"]')"
(ulimit -s 4096 && exec sleep 60) &
started_sleep
inspect_json "$MF_TMP/p.json" --pid "$!"
expect_eq "--pid stack from RLIMIT_STACK" "4194304 RLIMIT_STACK" \
	"$(jget "$MF_TMP/p.json" 'd["thread_stack_bytes"]') $(jget "$MF_TMP/p.json" 'd["thread_stack_source"]')"
(ulimit -s unlimited && exec sleep 60) &
started_sleep
inspect_json "$MF_TMP/p.json" --pid "$!"
expect_eq "--pid stack unlimited" 2097152 "$(jget "$MF_TMP/p.json" 'd["thread_stack_bytes"]')"
expect_eq "--pid stack unlimited" "unlimited" "$(jget "$MF_TMP/p.json" 'd["rlimits"]["stack"]["soft"]')"
MEMFENCE_STACK=1M sleep 60 &
started_sleep
inspect_json "$MF_TMP/p.json" --pid "$!"
expect_eq "--pid MEMFENCE_STACK" "1048576 MEMFENCE_STACK" \
	"$(jget "$MF_TMP/p.json" 'd["thread_stack_bytes"]') $(jget "$MF_TMP/p.json" 'd["thread_stack_source"]')"

# --- a real 256 MiB memory cgroup -----------------------------------------
mf_need_cgroup inspect 268435456
mf_cgroup_run "$MF_CG" "$MEMFENCE" inspect --json >"$MF_TMP/cg.json" 2>"$MF_TMP/err" ||
	fail "inspect in the cgroup: exit $? ($(cat "$MF_TMP/err"))"
expect_eq "cgroup limit_bytes" 268435456 "$(jget "$MF_TMP/cg.json" 'd["limit_bytes"]')"
expect_match "cgroup limit_source" '^cgroup v[12]$' "$(jget "$MF_TMP/cg.json" 'd["limit_source"]')"
expect_eq "cgroup dir" "$MF_CG" "$(jget "$MF_TMP/cg.json" 'd["cgroup"]["dir"]')"
expect_eq "cgroup plan budget" $((268435456 - 67108864)) "$(jget "$MF_TMP/cg.json" 'd["plan"]["budget_bytes"]')"
expect_eq "cgroup headroom below limit" true \
	"$(jget "$MF_TMP/cg.json" '0 < d["headroom_bytes"] <= 268435456')"
# Another process in the cgroup, seen from outside it.
# (not through mf_cgroup_run: with & that is a subshell, and $! its PID)
bash -c 'echo $$ >"$0/cgroup.procs" && exec sleep 60' "$MF_CG" &
started_sleep
grep -qx "$!" "$MF_CG/cgroup.procs" || fail "sleep $! is not in $MF_CG"
inspect_json "$MF_TMP/cgp.json" --pid "$!"
expect_eq "cgroup --pid limit_bytes" 268435456 "$(jget "$MF_TMP/cgp.json" 'd["limit_bytes"]')"
# oom_score_adj of another process (raising it needs no privilege).
sleep 30 &
MF_PIDS+=($!)
echo 500 >/proc/$!/oom_score_adj || fail "cannot set oom_score_adj"
inspect_json "$MF_TMP/adj.json" --pid "$!"
expect_eq "oom_score_adj" 500 "$(jget "$MF_TMP/adj.json" 'd["oom_score_adj"]')"
expect_eq "oom_protected" false "$(jget "$MF_TMP/adj.json" 'd["oom_protected"]')"
"$MEMFENCE" inspect --pid "$!" | grep -Eq '^  oom_score_adj +500$' || fail "human output lacks oom_score_adj"

echo "inspect: all checks passed"
