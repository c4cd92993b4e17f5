#!/usr/bin/env bash
# What memfence costs, as one table: every workload under every variant
# (plain, exec, exec --account, run, profile, and the anchors tracemalloc
# with 1 frame and heaptrack; the request servers under plain, exec
# --account, run and run --gate off; a Celery worker's tasks/s under its
# own variants), in interleaved rounds (bench/compare.py);
# then the start-up of an interpreter, apart (hyperfine). Both tables are
# printed and written to $B/bench/overhead.md.
#
#   bench/run.sh [ROUNDS]     (default 7; `make bench` runs this)
#   B=build-x bench/run.sh    another build directory
#
# The machine's load average is printed beside each table: on a shared
# machine read the ratios of one table only, and prefer the CPU columns.
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
ROUNDS=${1:-7}
PY=/usr/bin/python3
out=$B/bench
mkdir -p "$out"
for t in hyperfine heaptrack redis-server; do
	command -v "$t" >/dev/null || { echo "bench: $t is not installed (scripts/deps.sh bench)" >&2; exit 1; }
done
$PY -c 'import numpy, grpc, gunicorn, uvicorn, celery, redis' 2>/dev/null ||
	{ echo "bench: $PY needs numpy, grpcio, gunicorn, uvicorn, celery and redis (scripts/deps.sh bench)" >&2; exit 1; }
[ -x "$B/bench/malloc_bench" ] || make -s B="$B" "$B/bench/malloc_bench"

$PY bench/compare.py --build "$B" --rounds "$ROUNDS" --json "$out/compare.json" >"$out/overhead.md"

MF=$B/memfence
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memfence-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
RUN="$MF run --http off --no-quarantine --report-dir $tmp"
hyperfine -N --warmup 3 --runs 60 --export-json "$out/startup.json" \
	-n plain "$PY -c pass" \
	-n exec "$MF exec -- $PY -c pass" \
	-n "exec --account" "$MF exec --account -- $PY -c pass" \
	-n run "$RUN -- $PY -c pass" \
	-n profile "$RUN --profile -- $PY -c pass" >&2
{
	echo
	$PY bench/compare.py --startup "$out/startup.json"
} >>"$out/overhead.md"
cat "$out/overhead.md"
