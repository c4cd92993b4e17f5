#!/usr/bin/env bash
# Overhead of memfence's counting mode (accounting shim preloaded, scopes,
# budgets and stats on, no sampling) against no shim, on four workloads:
#
#   c-1t     C malloc/free microbenchmark, mixed sizes, 1 thread
#   c-8t     the same with 8 threads
#   py-alloc allocation-heavy pure Python (dicts, lists, strings, json)
#   py-array large array allocations (numpy, 1-64 MiB)
#
# Each pair runs with hyperfine in one invocation (same warm-up, same number
# of runs), then a table of medians and ratios is printed and written to
# build/bench/overhead.md. Peak RSS comes from /usr/bin/time -v.
#
#   bench/run.sh [RUNS]        (default 7 runs of each command)
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
RUNS=${1:-7}
PY=/usr/bin/python3
out=$B/bench
mkdir -p "$out"

. bench/workloads.sh

for w in "${order[@]}"; do
	echo "== $w: ${cmd[$w]}" >&2
	hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/$w.json" \
		-n "no shim" "${cmd[$w]}" -n "memfence" "$SHIM ${cmd[$w]}" >&2
	for variant in base shim; do
		c=${cmd[$w]}
		[ $variant = shim ] && c="$SHIM $c"
		/usr/bin/time -f '%M' -o "$out/$w.$variant.rss" $c >/dev/null
	done
done
$PY bench/table.py "$out" "${order[@]}" | tee "$out/overhead.md"
