#!/usr/bin/env bash
# Cost of memfence's sampling heap profiler against the exact tracers, on the
# workloads of bench/run.sh:
#
#   none              the program alone
#   account           memfence's accounting shim, no profiler
#   profile           accounting + profiler at its default rate (512 KiB),
#                     as `memfence profile` runs it (Python's small objects
#                     sampled through the pymalloc allocator hook)
#   profile-pythonmalloc  the same with PYTHONMALLOC=malloc (every Python
#                     object through malloc, as `--pythonmalloc` and Fil do)
#   tracemalloc-1     python -X tracemalloc=1   (Python workloads only)
#   tracemalloc-25    python -X tracemalloc=25  (Python workloads only)
#   heaptrack         Debian's heaptrack, every allocation traced
#
# Wall time: hyperfine, medians of RUNS runs, all variants of a workload in
# one invocation. Peak RSS: /usr/bin/time -v, one run each. A table of
# medians, ratios to "none" and peak RSS is printed and written to
# $B/bench/profile.md.
#
#   bench/profile_bench.sh [RUNS]     (default 5)
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
RUNS=${1:-5}
PY=/usr/bin/python3
out=$B/bench/profile
mkdir -p "$out" "$B/bench"
for t in hyperfine heaptrack /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "profile_bench: $t is not installed" >&2; exit 1; }
done
[ -x "$B/bench/malloc_bench" ] || make -s B="$B" "$B/bench/malloc_bench"
pdir=$(mktemp -d "${TMPDIR:-/tmp}/memfence-bench.XXXXXX")
trap 'rm -rf "$pdir"' EXIT

. bench/workloads.sh
PROF="$SHIM MEMFENCE_PROFILE_DIR=$pdir"

variants() { # WORKLOAD -> "name|command" lines
	local c=${cmd[$1]}
	echo "none|$c"
	echo "account|$SHIM $c"
	case $1 in
	py-*)
		local script=${c#"$PY "}
		echo "profile|$PROF $c"
		echo "profile-pythonmalloc|$PROF PYTHONMALLOC=malloc $c"
		echo "tracemalloc-1|$PY -X tracemalloc=1 $script"
		echo "tracemalloc-25|$PY -X tracemalloc=25 $script"
		;;
	*) echo "profile|$PROF $c" ;;
	esac
	echo "heaptrack|heaptrack -o $pdir/ht $c"
}

for w in "${order[@]}"; do
	echo "== $w" >&2
	args=()
	while IFS='|' read -r name c; do args+=(-n "$name" "$c"); done < <(variants "$w")
	hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/$w.json" "${args[@]}" >&2
	while IFS='|' read -r name c; do
		/usr/bin/time -v -o "$out/$w.$name.time" $c >/dev/null 2>&1 || true
		rm -f "$pdir"/ht* "$pdir"/*.prof
	done < <(variants "$w")
done
$PY bench/profile_table.py "$out" "${order[@]}" | tee "$B/bench/profile.md"
