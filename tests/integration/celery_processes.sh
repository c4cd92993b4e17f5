#!/usr/bin/env bash
# No process is started per Celery task, and --no-quarantine means what it
# says in the program too. A prefork worker (-c 2, Redis broker on a loopback
# port, examples/celery_worker) runs 20 ordinary tasks with `memfence` on
# PATH and in MEMFENCE_BIN being a wrapper that logs each start of the
# command; the Python side must not start it once:
#
#   (a) memfence run --no-quarantine: no check, no store file created;
#   (b) memfence run, quarantine on: checks in-process; with no death
#       recorded they create no store file (a check answers "no record"
#       from its absence);
#   (c) no supervisor, MEMFENCE_QUARANTINE=off: install() checks nothing.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
[ -f "$MF_BUILD/python/memfence/celery.py" ] || fail "the Python package is not built (make python)"
command -v redis-server >/dev/null || skip "redis-server is not installed"
$PY -c 'import celery, redis' 2>/dev/null || skip "python3-celery / python3-redis are not installed"
mf_need_cgroup celeryp 512M

EX=$MF_ROOT_DIR/examples/celery_worker
mkdir -p "$MF_TMP/bin"
CALLS=$MF_TMP/calls
cat >"$MF_TMP/bin/memfence" <<WRAP
#!/bin/sh
echo "\$*" >>"$CALLS"
exec "$MEMFENCE" "\$@"
WRAP
chmod +x "$MF_TMP/bin/memfence"
export PATH=$MF_TMP/bin:$PATH MEMFENCE_BIN=$MF_TMP/bin/memfence
export PYTHONPATH=$MF_BUILD/python:$EX
unset LD_PRELOAD MEMFENCE_QUARANTINE MEMFENCE_QUARANTINE_THRESHOLD MEMFENCE_QUARANTINE_RECORDER
PORT=$(mf_free_port)
mf_redis_start "$PORT"

W=
# variant NAME DB [command...]: a worker in the cgroup on broker database DB,
# 20 tasks, then the worker is stopped. Leaves the send.py answer in $OUT.
variant() {
	local name=$1 db=$2
	shift 2
	export EXAMPLE_STARTS=$MF_TMP/$name.starts
	export CELERY_BROKER=redis://127.0.0.1:$PORT/$db MEMFENCE_STATE_DIR=$MF_TMP/state-$name
	mkdir -p "$MEMFENCE_STATE_DIR"
	: >"$EXAMPLE_STARTS"
	: >"$CALLS"
	mf_celery_spawn "$name" "$@"
	W=$MF_SPAWNED
	OUT=$(cd "$EX" && timeout 120 "$PY" send.py --normal 20 --poison 0 --timeout 90)
	mf_cgroup_stop "$W" "$MF_CG"
	echo "$name: $OUT" >&2
	local ok
	ok=$($PY -c 'import json,sys; print(len(json.loads(sys.argv[1])["ok"]))' "$OUT")
	[ "$ok" = 20 ] || { tail -n 30 "$MF_TMP/$name.log" >&2; fail "$name: $ok of 20 tasks succeeded"; }
	local n
	n=$(wc -l <"$CALLS")
	[ "$n" = 0 ] || fail "$name: the memfence command was started $n time(s) for 20 tasks: $(sort "$CALLS" | uniq -c | head -n 3)"
}

variant a 1 "$MEMFENCE" run --http off --no-quarantine --
[ ! -e "$MF_TMP/state-a/quarantine.db" ] || fail "(a) --no-quarantine: a quarantine store was created"
echo "ok (a) --no-quarantine: no process started, no store"

variant b 2 "$MEMFENCE" run --http off --
[ ! -e "$MF_TMP/state-b/quarantine.db" ] || fail "(b) no death, yet the checks created the store"
echo "ok (b) quarantine on: checked in-process, no process started, no store created"

export MEMFENCE_QUARANTINE=off
variant c 3
[ ! -e "$MF_TMP/state-c/quarantine.db" ] || fail "(c) MEMFENCE_QUARANTINE=off: a quarantine store was created"
echo "ok (c) MEMFENCE_QUARANTINE=off without memfence run: no process started, no store"
