#!/usr/bin/env bash
# The profiler's snapshots and views: per-scope reports, the snapshot at the
# first refused allocation (what filled memory), the peak snapshot that is
# on disk when the process is SIGKILLed, SIGUSR2 on demand, bounded tables
# (overflow counted, memory fixed) with more stacks than they hold, and the
# pprof output decoded against profile.proto's schema.
. "$(dirname "$0")/../lib.sh"

T=$MF_BUILD/tests/shim/prof_scopes
SHIM=$MF_BUILD/libmemfence.so
CHECK="$PY $MF_ROOT_DIR/tests/integration/profile_pprof.py"
[ -x "$T" ] || fail "$T is not built (run make)"
cd "$MF_TMP" || fail "no temp dir"
top_leaf() { # FILE VIEW [SCOPE]: the top site's leaf function
	"$MEMFENCE" profile report "$1" --view "$2" ${3:+--scope "$3"} --top 1 |
		awk 'f { print $5; exit } /site \(callers\)/ { f = 1 }'
}

# --- scopes: each request name has its own sites ---
timeout 60 "$MEMFENCE" profile --rate 64K -o s.prof -- "$T" scopes 2>/dev/null || fail "scopes run"
expect_eq "top site of req-small" site_small "$(top_leaf s.prof allocated req-small)"
expect_eq "top site of req-big" site_big "$(top_leaf s.prof allocated req-big)"
"$MEMFENCE" profile report s.prof --scope req-small --format collapsed | grep -q site_big &&
	fail "req-small's report shows site_big"
"$MEMFENCE" profile report s.prof --format collapsed | grep -q '^\[scope req-big\];.*;site_big ' ||
	fail "collapsed stacks carry no scope frame"

# --- failure: the snapshot taken at the first refused allocation ---
timeout 60 "$MEMFENCE" profile --rate 64K -o f.prof -- "$T" fail 2>/dev/null || fail "fail run"
expect_eq "failure view: what filled memory" site_fill "$(top_leaf f.prof failure)"
out=$("$MEMFENCE" profile report f.prof --view failure --format json)
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["totals"]["failure"] > 8 << 20, d["totals"]' "$out" ||
	fail "failure view total below the 16 MiB held"

# --- SIGUSR2 on demand, and the peak on disk after SIGKILL ---
mkdir -p pd
LD_PRELOAD=$SHIM MEMFENCE_ACCOUNT=1 MEMFENCE_PROFILE_DIR=$MF_TMP/pd MEMFENCE_PROFILE_RATE=64K \
	MEMFENCE_PROFILE_SIGNAL=1 "$T" hold >hold.out &
pid=$!
MF_PIDS+=("$pid")
for i in $(seq 100); do grep -q ready hold.out 2>/dev/null && break; sleep 0.1; done
grep -q ready hold.out || fail "hold did not start"
sleep 1.5 # past the once-a-second limit on peak writes
kill -USR2 "$pid"
for i in $(seq 50); do grep -q '^reason signal' "pd/memfence-$pid.prof" 2>/dev/null && break; sleep 0.1; done
grep -q '^reason signal' "pd/memfence-$pid.prof" || fail "no snapshot after SIGUSR2"
kill -9 "$pid"
wait "$pid" 2>/dev/null
expect_eq "peak view after SIGKILL" site_hold "$(top_leaf "pd/memfence-$pid.prof" peak)"
expect_eq "live view after SIGKILL" site_hold "$(top_leaf "pd/memfence-$pid.prof" live)"

# --- bounded: more stacks than the site table holds; memory stays fixed ---
/usr/bin/time -f %M -o base.rss env LD_PRELOAD=$SHIM MEMFENCE_ACCOUNT=1 "$T" many 300000 ||
	fail "many (accounting only)"
/usr/bin/time -f %M -o prof.rss env LD_PRELOAD=$SHIM MEMFENCE_ACCOUNT=1 MEMFENCE_PROFILE_DIR=$MF_TMP/pd \
	MEMFENCE_PROFILE_RATE=1K "$T" many 300000 || fail "many (profiled)"
over=$(awk '$1 == "overflow" { print $3 }' pd/memfence-*.prof | sort -n | tail -1)
[ "${over:-0}" -gt 0 ] || fail "more stacks than sites, yet no overflow counted"
extra=$(( $(cat prof.rss) - $(cat base.rss) ))
echo "profiler RSS with a full site table: +$extra KiB (overflowed samples: $over)"
[ "$extra" -lt $((8 * 1024)) ] || fail "profiler used $extra KiB (bound 8 MiB)"

# --- pprof: decoded against the schema, consistent, the right top site ---
"$MEMFENCE" profile report s.prof --format pprof -o s.pb.gz || fail "pprof report"
$CHECK s.pb.gz site_big || fail "pprof output invalid"
"$MEMFENCE" profile report f.prof --view failure --format pprof -o f.pb.gz || fail "pprof failure view"
$CHECK f.pb.gz site_fill || fail "pprof failure view invalid"
echo "profile_snapshots: ok"
