# The workloads every benchmark here runs, sourced by bench/run.sh and
# bench/profile_bench.sh so that their tables compare the same commands.
# Needs B (the build directory) and PY (the interpreter) set.
SHIM="env LD_PRELOAD=$PWD/$B/libmemfence.so MEMFENCE_ACCOUNT=1"
declare -A cmd=(
	[c-1t]="$B/bench/malloc_bench 1 4000000"
	[c-8t]="$B/bench/malloc_bench 8 1000000"
	[py-alloc]="$PY bench/py_alloc.py 40"
	[py-array]="$PY bench/py_arrays.py 150"
)
order=(c-1t c-8t py-alloc py-array)
