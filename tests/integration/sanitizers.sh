#!/usr/bin/env bash
# The shim's test programs under AddressSanitizer+UBSan and ThreadSanitizer.
#
# What runs where (an interposing malloc and a sanitizer runtime cannot
# both come first in the library list, so the split is deliberate):
#  - The test programs are built with the sanitizer (make B=build-asan
#    SAN='-fsanitize=address,undefined ...' OPT='-O1 -g', and B=build-tsan
#    SAN=-fsanitize=thread): every block the shim hands out, every copy it
#    makes (realloc near a budget) and every thread/fork/signal sequence of
#    the tests goes through ASan's allocator and checks, or TSan's race
#    detection, with the shim preloaded in front of the sanitizer runtime
#    (ASAN_OPTIONS=verify_asan_link_order=0), so that its hooks really sit
#    between the program and the sanitizer's malloc.
#  - The preloaded shim itself is built with UBSan only (B=build-asan/ubsan):
#    ASan- or TSan-instrumented code in a library that runs before the
#    sanitizer runtime initialises (the dynamic loader's first malloc calls
#    our hook) faults on shadow memory that is not mapped yet. The shim's
#    own memory safety is covered by ASan's checks of what it passes on
#    (sizes, copies, frees) rather than by instrumenting its code.
# The sanitizers' allocators return exact usable sizes, which the tests
# take into account; huge requests return NULL (allocator_may_return_null).
. "$(dirname "$0")/../lib.sh"

cd "$MF_ROOT_DIR"
PROGS=$(for p in tests/shim/*.c; do basename "$p" .c; done)

build() { # build DIR SAN TARGET...
	local dir=$1 san=$2
	shift 2
	make -s -j2 B="$dir" SAN="$san" OPT='-O1 -g' "$@" >"$MF_TMP/build.log" 2>&1 ||
		{ tail -n 30 "$MF_TMP/build.log"; fail "sanitizer build in $dir failed"; }
}

gcc -fsanitize=thread -x c -o "$MF_TMP/tsan-probe" - <<<'int main(void){return 0;}' 2>/dev/null &&
	"$MF_TMP/tsan-probe" 2>/dev/null || skip "this compiler or kernel cannot run ThreadSanitizer programs"

UB='-fsanitize=undefined -fno-sanitize-recover=all'
build build-asan/ubsan "$UB" build-asan/ubsan/libmemfence.so build-asan/ubsan/libmemfence.so.0
build build-asan "-fsanitize=address,undefined -fno-sanitize-recover=all" \
	build-asan/libmemfence.so build-asan/libmemfence.so.0 $(for p in $PROGS; do echo build-asan/tests/shim/$p; done)
# -Wno-tsan: the segment's seqlocks use standalone fences, which are
# correct C11 but which TSan does not model (gcc warns, and CI makes
# warnings errors); the shim is not run TSan-instrumented anyway (above).
build build-tsan "-fsanitize=thread -Wno-tsan" \
	build-tsan/libmemfence.so build-tsan/libmemfence.so.0 $(for p in $PROGS; do echo build-tsan/tests/shim/$p; done)

SHIM=$MF_ROOT_DIR/build-asan/ubsan/libmemfence.so
export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0:allocator_may_return_null=1:abort_on_error=0
export TSAN_OPTIONS=halt_on_error=1:report_signal_unsafe=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_all() { # run_all BUILD
	local b=$1 t
	# Generous timeouts: TSan runs the thread storms 5-15x slower, more on
	# a busy machine; a timeout here is a hang, not a slow run.
	# Not shim_pressure: it measures the process's data size, which the
	# sanitizers' shadow memory and allocators make meaningless.
	for t in shim_basic shim_budget shim_threads shim_fork shim_suspend; do
		echo "== $b $t"
		LD_PRELOAD=$SHIM timeout 400 "$b/tests/shim/$t" || fail "$t under $b (exit $?)"
	done
	echo "== $b shim_signals"
	LD_PRELOAD=$SHIM timeout 400 "$b/tests/shim/shim_signals" 400000 || fail "shim_signals under $b"
	LD_PRELOAD=$SHIM MEMFENCE_HEAP_LIMIT=$((64 << 20)) timeout 60 "$b/tests/shim/shim_budget" heap $((64 << 20)) ||
		fail "heap limit under $b"
	LD_PRELOAD=$SHIM MEMFENCE_FAULT='nth=3,scope=req*' timeout 60 "$b/tests/shim/shim_fault" nth-scope ||
		fail "fault injection under $b"
	LD_PRELOAD=$SHIM MEMFENCE_FAULT='thread=EAGAIN,scope=spawn' timeout 60 "$b/tests/shim/shim_fault" thread 11 ||
		fail "thread fault under $b"
}

run_all build-asan
run_all build-tsan
echo "sanitizers: ok"
