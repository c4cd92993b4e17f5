#!/usr/bin/env bash
# The report and state directories stay bounded: profile snapshots are
# pruned like post-mortems (the newest 100 of each kind, at most 16 MiB of
# each: src/supervisor/report.h), and quarantine records expire
# (--quarantine-ttl, default 7d) in SQLite and in Redis, after which they
# no longer quarantine.
. "$(dirname "$0")/../lib.sh"

unset MEMFENCE_QUARANTINE MEMFENCE_STATE_DIR MEMFENCE_QUARANTINE_THRESHOLD MEMFENCE_QUARANTINE_TTL
KEEP_FILES=100
KEEP_BYTES=$((16 << 20))
R=$MF_TMP/reports
mkdir -p "$R"

# Leftovers of earlier runs: 40 profiles of 1 MiB (40 MiB, past the bytes
# bound) and 130 post-mortems (past the count bound), all older than now.
for i in $(seq 1 40); do
	head -c $((1 << 20)) /dev/zero >"$R/memfence-$((100000 + i)).prof"
	touch -d "-$((2 * i)) minutes" "$R/memfence-$((100000 + i)).prof"
done
for i in $(seq 1 130); do
	printf '{}\n' >"$R/memfence-report-20260101T0000$(printf %02d $((i % 60)))Z-1-$i.json"
	touch -d "-$((3 * i)) minutes" "$R/memfence-report-20260101T0000$(printf %02d $((i % 60)))Z-1-$i.json"
done
# Decoys the pruning must leave alone.
echo keep >"$R/notes.txt"
echo keep >"$R/memfence-12x.prof"

count_prof() {
	nprof=$(find "$R" -maxdepth 1 -regex '.*/memfence-[0-9]+\.prof' | wc -l)
	bprof=$(find "$R" -maxdepth 1 -regex '.*/memfence-[0-9]+\.prof' -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }')
}

# A run whose program starts 20 short processes, each writing its exit
# snapshot under its own pid: with the leftovers, 60 files but 40 MiB.
mf_bounded 120 "run --profile with 20 processes" "$MEMFENCE" run --http off --profile --report-dir "$R" -- \
	sh -c 'for i in $(seq 20); do /bin/true; done'
[ "$rc" = 0 ] || fail "run: exit $rc ($(tail -n 3 "$MF_TMP/err"))"
count_prof
[ "$bprof" -le "$KEEP_BYTES" ] || fail "$bprof bytes of profiles kept, bound $KEEP_BYTES"
[ "$nprof" -ge 20 ] || fail "only $nprof profiles kept: the new ones must stay"
[ -e "$R/memfence-100001.prof" ] || fail "the newest old profile went, though within the bounds"
[ -e "$R/memfence-100040.prof" ] && fail "the oldest 1 MiB profile survived the pruning"

# Then 150 processes, and a death by SIGKILL (a post-mortem).
mf_bounded 120 "run --profile with 150 processes" "$MEMFENCE" run --http off --profile --report-dir "$R" -- \
	sh -c 'for i in $(seq 150); do /bin/true; done; kill -9 $$'
[ "$rc" = 137 ] || fail "run: exit $rc, expected 137 ($(tail -n 3 "$MF_TMP/err"))"
count_prof
nrep=$(find "$R" -maxdepth 1 -name 'memfence-report-*.json' | wc -l)
[ "$nprof" -ge 1 ] && [ "$nprof" -le "$KEEP_FILES" ] || fail "$nprof profiles kept, bound $KEEP_FILES"
[ "$bprof" -le "$KEEP_BYTES" ] || fail "$bprof bytes of profiles kept, bound $KEEP_BYTES"
[ "$nrep" -le "$KEEP_FILES" ] || fail "$nrep post-mortems kept, bound $KEEP_FILES"
# The newest of each kind are the ones kept: this run's.
newest=$(ls -t "$R"/memfence-report-*.json | head -n1)
grep -q '"memfence_report"' "$newest" || fail "the newest post-mortem is not this run's: $newest"
[ -e "$R/notes.txt" ] && [ -e "$R/memfence-12x.prof" ] || fail "pruning removed a file that is not memfence's"
total=$(du -sb "$R" | awk '{ print $1 }')
[ "$total" -le $((2 * KEEP_BYTES + 65536)) ] || fail "the report directory holds $total bytes"
echo "report directory: $nprof profiles ($bprof bytes), $nrep post-mortems, $total bytes in all"

# ---- quarantine records expire ----
Q=$MF_TMP/q.db
q() { "$MEMFENCE" quarantine --quarantine "$Q" "$@"; }
now=$(date +%s%3N)
old=$((now - 2 * 3600 * 1000))
week=$((now - 8 * 86400 * 1000))
for i in $(seq 1 300); do
	q record "old-$i" --at "$old" >/dev/null || fail "record old-$i"
done
q record poison --at "$week" >/dev/null && q record poison --at "$week" >/dev/null || fail "record poison"
q record fresh >/dev/null && q record fresh >/dev/null || fail "record fresh"
rows() { $PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from quarantine").fetchone()[0])' "$Q"; }

# The default, 7 days: poison (8 days old) no longer quarantines, fresh does.
q check poison >/dev/null
expect_eq "check of a record 8 days old (default ttl)" 0 $?
q check fresh >/dev/null
expect_eq "check of a fresh record" 3 $?
q list | grep -q poison && fail "an expired record is listed"
expect_eq "records left after the default ttl" 301 "$(rows)"

# 1h: the 300 records of 2 hours ago are deleted when the store is opened.
q --quarantine-ttl 1h check old-7 >/dev/null
expect_eq "check under --quarantine-ttl 1h" 0 $?
expect_eq "records left under 1h" 1 "$(rows)"
MEMFENCE_QUARANTINE_TTL=off q record poison --at "$week" >/dev/null
MEMFENCE_QUARANTINE_TTL=off q record poison --at "$week" >/dev/null
MEMFENCE_QUARANTINE_TTL=off q check poison >/dev/null
expect_eq "check with expiry off" 3 $?
for bad in 0 500ms 1x -1d; do
	q --quarantine-ttl "$bad" list >/dev/null 2>"$MF_TMP/err"
	expect_eq "--quarantine-ttl '$bad'" 2 $?
	grep -q "quarantine time to live\|invalid" "$MF_TMP/err" || fail "no reason for '$bad': $(cat "$MF_TMP/err")"
done
"$MEMFENCE" run --http off --quarantine-ttl 5x -- true 2>"$MF_TMP/err"
expect_eq "run --quarantine-ttl 5x" 2 $?
grep -q -- "--quarantine-ttl" "$MF_TMP/err" || fail "no option named: $(cat "$MF_TMP/err")"

# Redis: each record's key expires its time to live after its last death.
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	PORT=$(mf_free_port)
	mf_redis_start "$PORT"
	URL=redis://127.0.0.1:$PORT/3
	qr() { MEMFENCE_STATE_DIR=$MF_TMP/rstate "$MEMFENCE" quarantine --quarantine "$URL" --quarantine-ttl 1h "$@"; }
	qr record fresh >/dev/null && qr record fresh >/dev/null || fail "redis: record fresh"
	ttl=$(redis-cli -p "$PORT" -n 3 pttl "memfence:q:r:fresh")
	[ "$ttl" -gt $((3500 * 1000)) ] && [ "$ttl" -le $((3600 * 1000)) ] || fail "redis: fresh key pttl $ttl"
	qr check fresh >/dev/null
	expect_eq "redis: check fresh" 3 $?
	qr record old --at "$old" >/dev/null && qr record old --at "$old" >/dev/null || fail "redis: record old"
	expect_eq "redis: expired key" 0 "$(redis-cli -p "$PORT" -n 3 exists "memfence:q:r:old")"
	qr check old >/dev/null
	expect_eq "redis: check of an expired record" 0 $?
	qr list | grep -q '^old' && fail "redis: an expired record is listed"
	[ "$(redis-cli -p "$PORT" -n 3 sismember memfence:q:index old)" = 0 ] ||
		fail "redis: the expired id stays in the index"
else
	echo "redis-server not installed: the Redis part is not run" >&2
fi
echo "bounded state: ok"
