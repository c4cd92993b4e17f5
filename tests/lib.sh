# Helpers sourced by the integration tests.
#
# Real memory cgroups: tests make a child memory cgroup under the cgroup this
# test process is in (cgroup v1 memory controller, or cgroup v2 where the
# memory controller is enabled), run programs in it, and remove it on exit.
set -u
MF_ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MF_BUILD=${MF_BUILD:-$MF_ROOT_DIR/build}
MEMFENCE=$MF_BUILD/memfence
PY=/usr/bin/python3   # Debian's interpreter, with Debian's packages
MF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/memfence-test.XXXXXX")
MF_CGROUPS=()
MF_PIDS=()

mf_cleanup() {
	local cg p
	for p in "${MF_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for cg in "${MF_CGROUPS[@]}"; do mf_cgroup_remove "$cg"; done
	rm -rf "$MF_TMP"
}
trap mf_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# skip REASON: exit 77, or fail when skips are not allowed (CI).
skip() {
	if [ "${MEMFENCE_TEST_STRICT:-0}" = 1 ]; then
		echo "FAIL: cannot run, and skipping is not allowed here: $*" >&2
		exit 1
	fi
	echo "skipped: $*" >&2
	exit 77
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }
# mf_bounded SECONDS WHAT CMD...: CMD with its output in $MF_TMP/out and
# $MF_TMP/err, its status in $rc; fails when it still runs after SECONDS
# (a hang is the defect, not a slow machine: keep SECONDS generous).
mf_bounded() {
	local secs=$1 what=$2
	shift 2
	timeout "$secs" "$@" >"$MF_TMP/out" 2>"$MF_TMP/err"
	rc=$?
	[ "$rc" = 124 ] && fail "$what: still running after $secs s ($(cat "$MF_TMP/err"))"
	return 0
}
# expect_match WHAT REGEX TEXT
expect_match() { echo "$3" | grep -Eq -- "$2" || fail "$1: '$3' does not match /$2/"; }

# Directory of this process's memory cgroup, or empty (reason on stderr).
mf_cgroup_self_dir() {
	local line path
	if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] ||
	   [ -d /sys/fs/cgroup/memory ] && grep -q ':memory:' /proc/self/cgroup; then
		path=$(grep ':memory:' /proc/self/cgroup | head -n1 | cut -d: -f3-)
		echo "/sys/fs/cgroup/memory$path"
		return 0
	fi
	for mnt in /sys/fs/cgroup /sys/fs/cgroup/unified; do
		if [ -f "$mnt/cgroup.controllers" ] && grep -qw memory "$mnt/cgroup.controllers"; then
			path=$(grep '^0::' /proc/self/cgroup | cut -d: -f3-)
			echo "$mnt$path"
			return 0
		fi
	done
	echo "no memory cgroup controller is mounted" >&2
	return 1
}

# mf_cgroup_create NAME LIMIT_BYTES: prints the new cgroup's directory.
mf_cgroup_create() {
	local self dir
	[ "$(id -u)" = 0 ] || { echo "creating a memory cgroup needs root" >&2; return 1; }
	self=$(mf_cgroup_self_dir) || return 1
	dir="$self/memfence-test-$$-$1"
	mkdir "$dir" 2>/dev/null || { echo "cannot create $dir" >&2; return 1; }
	if [ -f "$dir/memory.limit_in_bytes" ]; then
		echo "$2" >"$dir/memory.limit_in_bytes" || { rmdir "$dir"; return 1; }
		# No swap: the limit must mean what it says.
		[ -f "$dir/memory.memsw.limit_in_bytes" ] && echo "$2" >"$dir/memory.memsw.limit_in_bytes" 2>/dev/null
		[ -f "$dir/memory.swappiness" ] && echo 0 >"$dir/memory.swappiness" 2>/dev/null
	else
		echo "$2" >"$dir/memory.max" || { rmdir "$dir"; return 1; }
		[ -f "$dir/memory.swap.max" ] && echo 0 >"$dir/memory.swap.max"
	fi
	echo "$dir"
}

# Create or skip; sets MF_CG. Usage: mf_need_cgroup NAME LIMIT_BYTES
mf_need_cgroup() {
	local why
	MF_CG=$(mf_cgroup_create "$1" "$2" 2>"$MF_TMP/cg.err") ||
		skip "no memory cgroup can be made here: $(cat "$MF_TMP/cg.err")"
	MF_CGROUPS+=("$MF_CG")
}

# mf_cgroup_run DIR CMD...: run CMD inside the cgroup, return its status.
mf_cgroup_run() {
	local dir=$1
	shift
	bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$dir" "$@"
}

# mf_cgroup_spawn DIR CMD...: start CMD inside the cgroup in the background.
# MF_SPAWNED is the pid of CMD itself (not of a subshell around it), so that
# a signal sent to it reaches the program; a background function call or
# ( ... ) & would give the subshell's pid, and the program would outlive it.
mf_cgroup_spawn() {
	local dir=$1
	shift
	bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$dir" "$@" &
	MF_SPAWNED=$!
	MF_PIDS+=("$MF_SPAWNED")
}

# mf_cgroup_stop PID DIR: SIGTERM to PID (as a container runtime stops its
# entrypoint), SIGKILL after 10 s, then whatever is left in the cgroup, so
# that nothing of one variant of a test lives on into the next.
mf_cgroup_stop() {
	local pid=$1 dir=$2 p
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		[ -s "$dir/cgroup.procs" ] || break
		for p in $(cat "$dir/cgroup.procs"); do kill -KILL "$p" 2>/dev/null; done
		sleep 0.1
	done
}

# mf_celery_spawn NAME [PREFIX...]: the example Celery worker
# (examples/celery_worker, prefork, 2 processes) in the cgroup $MF_CG,
# started through PREFIX (e.g. memfence run --), named NAME, its log in
# $MF_TMP/NAME.log; MF_SPAWNED is PREFIX's pid (or the worker's).
mf_celery_spawn() {
	local name=$1
	shift
	cd "$MF_ROOT_DIR/examples/celery_worker" || fail "cd examples/celery_worker"
	mf_cgroup_spawn "$MF_CG" "$@" "$PY" -m celery -A app worker --pool prefork -c 2 \
		--loglevel INFO --without-heartbeat --without-mingle --without-gossip \
		-n "$name@%h" >"$MF_TMP/$name.log" 2>&1
	cd - >/dev/null || true
}

# OOM kills counted in the cgroup so far.
mf_cgroup_oom_kills() {
	if [ -f "$1/memory.oom_control" ]; then
		awk '$1 == "oom_kill" { print $2 }' "$1/memory.oom_control"
	else
		awk '$1 == "oom_kill" { print $2 }' "$1/memory.events"
	fi
}

# mf_soak_record KIND SUMMARY_JSON CGROUP: for `make soak` (tests/soak), which
# sets MF_SOAK_RESULT, append one line "KIND ordinary-failed gate-timeouts
# oversized-refused oom-kills" from a load generator's summary ("-" for the
# counts when it wrote none), before the test asserts on it, so that a
# failing run is counted too. gate-timeouts: the ordinary calls that failed
# because their wait at the admission gate ran out (a host too slow for the
# load), not on an allocation. Nothing without MF_SOAK_RESULT.
mf_soak_record() {
	local counts="- - -"
	[ -n "${MF_SOAK_RESULT:-}" ] || return 0
	[ -s "$2" ] && counts=$("$PY" - "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
gate = sum(1 for r in d["results"] if not r["oversized"] and r["status"] != "OK"
           and ("GateTimeout" in r["details"] or "admission gate" in r["details"]))
print(d["normal_failed"], gate, d["oversized_failed"])
PY
)
	echo "$1 $counts $(mf_cgroup_oom_kills "$3")" >>"$MF_SOAK_RESULT"
}

# The longest a load generator's run (examples/model_server/loadgen.py) may
# take, in seconds: its scenarios take 20 to 60 s on a quiet host, several
# times that on a loaded one.
MF_LOADGEN_TIMEOUT=${MF_LOADGEN_TIMEOUT:-300}

# mf_loadgen_check STATUS WHAT: fail, saying so, when a load generator run
# under `timeout $MF_LOADGEN_TIMEOUT` ran out of time (STATUS 124), rather
# than on the summary it could not write.
mf_loadgen_check() {
	[ "$1" -ne 124 ] || fail "$2: the load generator did not finish within ${MF_LOADGEN_TIMEOUT}s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
}

mf_cgroup_remove() {
	local dir=$1 i p
	[ -d "$dir" ] || return 0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		for p in $(cat "$dir/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		rmdir "$dir" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "warning: could not remove $dir" >&2
}

# mf_redis_start PORT: a redis-server of the test's own on a loopback port,
# no persistence, stopped with the test; returns once it answers (5 s).
mf_redis_start() {
	redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no >>"$MF_TMP/redis.log" 2>&1 &
	MF_PIDS+=($!)
	for _ in $(seq 1 50); do
		$PY -c 'import redis,sys; redis.Redis(port=int(sys.argv[1])).ping()' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "redis-server did not start: $(tail -n 5 "$MF_TMP/redis.log")"
}

# mf_need_setpriv: skip unless programs can be run here as uid 65534 with
# setpriv (root, util-linux, and that uid can read the build).
mf_need_setpriv() {
	[ "$(id -u)" = 0 ] || skip "running a program as another uid needs root"
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$MF_BUILD/libmemfence.so" ||
		skip "uid 65534 cannot read $MF_BUILD/libmemfence.so"
}

# A free loopback TCP port.
mf_free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# mf_metric HOST:PORT NAME: the value of the series NAME (labels included,
# exactly as printed) on the supervisor's /metrics; nothing if absent.
mf_metric() {
	curl -s --max-time 10 --retry 2 --retry-all-errors "http://$1/metrics" |
		awk -v m="$2" '$1 == m { print $2 }'
}

# mf_metric_sum HOST:PORT NAME: the sum of every series of NAME, whatever
# its labels (0 if none).
mf_metric_sum() {
	curl -s --max-time 10 --retry 2 --retry-all-errors "http://$1/metrics" |
		awk -v m="$2" 'index($1, m) == 1 { n += $2 } END { print n + 0 }'
}

# mf_wait_gone PID TENTHS: wait up to TENTHS tenths of a second for PID to
# end (gone, or a zombie not yet reaped by its parent).
mf_wait_gone() {
	local _
	for _ in $(seq 1 "$2"); do
		[ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null || return 0
		sleep 0.1
	done
}

# mf_v2_boot SCRIPT: run SCRIPT inside a real cgroup v2 kernel (user-mode
# Linux, tests/uml/run-in-v2), print what it printed, and fail on any of its
# "FAIL:" lines or a non-zero status; skip where user-mode Linux cannot run.
mf_v2_boot() {
	local rc
	"$MF_ROOT_DIR/tests/uml/run-in-v2" "$1" >"$MF_TMP/v2.out" 2>"$MF_TMP/v2.err"
	rc=$?
	cat "$MF_TMP/v2.out"
	case $rc in
	127) skip "no cgroup v2 kernel here: $(cat "$MF_TMP/v2.err")" ;;
	125) cat "$MF_TMP/v2.err" >&2; fail "the v2 guest did not run $1" ;;
	esac
	grep -q '^FAIL' "$MF_TMP/v2.out" && fail "$(grep -c '^FAIL' "$MF_TMP/v2.out") check(s) failed in the v2 guest"
	[ "$rc" = 0 ] || fail "$1 exited $rc in the v2 guest ($(cat "$MF_TMP/v2.err"))"
	grep -q '^ok' "$MF_TMP/v2.out" || fail "no check ran in the v2 guest"
}
