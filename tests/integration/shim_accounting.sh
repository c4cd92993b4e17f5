#!/usr/bin/env bash
# The accounting shim under LD_PRELOAD: exact counts for known sequences,
# budgets and the heap limit at the crossing byte, threads, fork, signals,
# fault injection, and harmlessness when it is not active.
. "$(dirname "$0")/../lib.sh"

SHIM=$MF_BUILD/libmemfence.so
T=$MF_BUILD/tests/shim
[ -f "$SHIM" ] || fail "$SHIM is not built (run make)"

run() { LD_PRELOAD=$SHIM timeout 60 "$@" || fail "$* (exit $?)"; }

run "$T/shim_basic"
run "$T/shim_budget"
run env MEMFENCE_HEAP_LIMIT=$((32 << 20)) "$T/shim_budget" heap $((32 << 20))
run "$T/shim_threads"
run "$T/shim_fork"
run "$T/shim_suspend"
"$T/shim_suspend" off || fail "suspend/resume without the shim preloaded"
run "$T/shim_signals"

# Zero collateral: near the limit the largest scope is refused first.
run env MEMFENCE_PRESSURE=256M "$T/shim_pressure" policy 256
run env MEMFENCE_PRESSURE=2G "$T/shim_pressure" below 512
# Default lines under a 512 MiB RLIMIT_DATA: soft 384 MiB, hard 448 MiB.
(ulimit -d $((512 << 10)) && run "$T/shim_pressure" default 384) || exit 1
(ulimit -d $((256 << 10)) && run env MEMFENCE_PRESSURE=off "$T/shim_pressure" off) || exit 1
run env MEMFENCE_PRESSURE=off MEMFENCE_SEGMENT="$MF_TMP/pressure.seg" "$T/shim_pressure" container
# glibc's mmap threshold: fixed by the first scope, not before, and never
# over the program's own.
(
	ulimit -d $((512 << 10))
	run "$T/shim_threshold" dynamic
	run "$T/shim_threshold" scope
	run "$T/shim_threshold" user
	run env MALLOC_MMAP_THRESHOLD_=$((16 << 20)) "$T/shim_threshold" env
	# Big blocks the shim serves itself, and its cache of freed ones.
	for mode in reuse calloc realloc aligned bound release refused fork threads user; do
		run "$T/shim_large" $mode
	done
	run env MALLOC_MMAP_THRESHOLD_=$((16 << 20)) "$T/shim_large" env
) || exit 1
err=$(MEMFENCE_PRESSURE=lots LD_PRELOAD=$SHIM /bin/true 2>&1)
expect_match "bad MEMFENCE_PRESSURE message" '^memfence: invalid MEMFENCE_PRESSURE' "$err"

# Fault injection: each mode with its spec.
run env MEMFENCE_FAULT='nth=3,scope=req*' "$T/shim_fault" nth-scope
run env MEMFENCE_FAULT='size>=1M' "$T/shim_fault" size
run env MEMFENCE_FAULT='after=1M,scope=job' "$T/shim_fault" after
run env MEMFENCE_FAULT='every=4,scope=s' "$T/shim_fault" every
run env MEMFENCE_FAULT='thread=EAGAIN,scope=spawn' "$T/shim_fault" thread 11
run env MEMFENCE_FAULT='thread=EPERM,scope=spawn' "$T/shim_fault" thread 1
run env MEMFENCE_FAULT='thread=ENOMEM,scope=spawn' "$T/shim_fault" thread 12

# Not active: linked but not preloaded, or switched off.
"$T/shim_basic" off || fail "API without the shim preloaded"
MEMFENCE_ACCOUNT=0 LD_PRELOAD=$SHIM "$T/shim_basic" off || fail "API with MEMFENCE_ACCOUNT=0"

# Bad values: one line naming the problem, the program still runs.
err=$(MEMFENCE_FAULT='nth=x' LD_PRELOAD=$SHIM /bin/echo ok 2>&1 >/dev/null)
expect_match "bad MEMFENCE_FAULT message" '^memfence: invalid MEMFENCE_FAULT: .*nth=' "$err"
out=$(MEMFENCE_FAULT='bogus=1' LD_PRELOAD=$SHIM /bin/echo ok 2>/dev/null)
expect_eq "program runs despite a bad spec" ok "$out"
err=$(MEMFENCE_HEAP_LIMIT=12Q LD_PRELOAD=$SHIM /bin/true 2>&1)
expect_match "bad MEMFENCE_HEAP_LIMIT message" '^memfence: invalid MEMFENCE_HEAP_LIMIT' "$err"
err=$(MEMFENCE_SEGMENT=$MF_TMP/no/such/dir.seg LD_PRELOAD=$SHIM /bin/true 2>&1)
expect_match "unusable segment message" 'cannot open or create MEMFENCE_SEGMENT' "$err"
err=$(MEMFENCE_SEGMENT=/etc/hostname LD_PRELOAD=$SHIM /bin/true 2>&1)
expect_match "not a segment message" 'is not a memfence segment' "$err"

# Ordinary programs are unaffected, and leave no file behind (their own
# segment is a memfd): shells end with _exit(), which runs no destructor.
out=$(LD_PRELOAD=$SHIM sh -c 'echo $$; echo hello | tr a-z A-Z; ls / >/dev/null; sort </dev/null')
expect_eq "shell pipeline under the shim" HELLO "$(echo "$out" | tail -n1)"
[ ! -e "/dev/shm/memfence-$(echo "$out" | head -n1).seg" ] || fail "a segment file was left behind"

# The shim calls nothing that allocates or locks behind its back: no stdio,
# no getenv family (libc's environment may not be set up yet), nothing of
# the malloc family it wraps. Checked on every object that goes into
# libmemfence.so (its own files and the base built for it), and on the
# imports of the linked libraries, so that a call hidden in a base file or
# brought in by a later change cannot slip through.
# Allowed on purpose: the profiler (src/shim/prof*.c) imports dlopen, dlsym and
# dl_iterate_phdr, which allocate, and rename(), declared in stdio.h but a
# plain system call; they run in its constructor or while it writes a
# snapshot under its own lock and reentry guard, never inside a hook's
# bookkeeping (docs/profiler.md). The hooks resolve the real functions with
# dlsym, through their bootstrap buffer.
forbidden='(printf|fprintf|dprintf|sprintf|snprintf|vprintf|vfprintf|vsprintf|vsnprintf|asprintf|vasprintf|puts|fputs|fputc|putc|putchar|fopen|fdopen|fclose|fflush|fread|fwrite|fgets|fscanf|sscanf|perror|strerror|setvbuf|getenv|secure_getenv|setenv|putenv|unsetenv|strdup|strndup|malloc|calloc|realloc|free|backtrace|backtrace_symbols|setlocale|localtime|syslog)'
objs="$(ls "$MF_BUILD"/obj/src/shim/*.o) $(ls "$MF_BUILD"/obj/shim-base/src/base/*.o)"
bad=$(nm -u $objs | grep -Ew "$forbidden" || true)
[ -z "$bad" ] || fail "the shim's objects call functions they must not: $bad"
for lib in "$SHIM" "$MF_BUILD/libmemfence-stack.so"; do
	bad=$(nm -D --undefined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | grep -Exw "$forbidden" || true)
	[ -z "$bad" ] || fail "$(basename "$lib") imports functions it must not: $bad"
done

# A static binary ignores LD_PRELOAD: nothing happens, nothing breaks.
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
	out=$(LD_PRELOAD=$SHIM /bin/busybox echo static)
	expect_eq "static binary" static "$out"
fi
echo "shim accounting: ok"
