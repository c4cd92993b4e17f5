#!/usr/bin/env bash
# memfence exec: rlimits seen by the program, stack size of new threads,
# exit status and signals passed through, and clear errors for bad input.
. "$(dirname "$0")/../lib.sh"

limits() { "$MEMFENCE" exec "$@" -- cat /proc/self/limits; }
soft() { awk -v what="$1" 'index($0, what) == 1 { print $(NF-2) }'; }

# Budget = limit - reserve; the default reserve is max(64M, 5%).
out=$(limits --limit 1G) || fail "exec --limit 1G failed"
expect_eq "RLIMIT_DATA with --limit 1G" $((1024*1024*1024 - 64*1024*1024)) "$(echo "$out" | soft 'Max data size')"
out=$(limits --limit 4G --reserve 10%) || fail "exec --reserve 10% failed"
expect_eq "RLIMIT_DATA with 10% reserve" $((4*1024*1024*1024 - 429496729)) "$(echo "$out" | soft 'Max data size')"
out=$(MEMFENCE_LIMIT=2GiB MEMFENCE_RESERVE=512M limits) || fail "exec with MEMFENCE_* failed"
expect_eq "RLIMIT_DATA from the environment" $((1536*1024*1024)) "$(echo "$out" | soft 'Max data size')"
out=$(limits --limit 1G --reserve 100M --limit 2G) || fail "later option should win"
expect_eq "last --limit wins" $((2048*1024*1024 - 100*1024*1024)) "$(echo "$out" | soft 'Max data size')"

# --rlimit as: address space instead, a warning, and fewer malloc arenas.
out=$("$MEMFENCE" exec --limit 1G --rlimit as -- sh -c 'cat /proc/self/limits; echo "arenas=$MALLOC_ARENA_MAX"' 2>"$MF_TMP/err") ||
	fail "exec --rlimit as failed"
expect_eq "RLIMIT_AS" $((960*1024*1024)) "$(echo "$out" | soft 'Max address space')"
expect_eq "RLIMIT_DATA untouched under --rlimit as" unlimited "$(echo "$out" | soft 'Max data size')"
expect_match "MALLOC_ARENA_MAX set" '^arenas=2$' "$(echo "$out" | tail -n1)"
grep -q 'arena' "$MF_TMP/err" || fail "--rlimit as gave no warning"
out=$(MALLOC_ARENA_MAX=4 "$MEMFENCE" exec --limit 1G --rlimit as -- sh -c 'echo $MALLOC_ARENA_MAX' 2>/dev/null)
expect_eq "user's MALLOC_ARENA_MAX kept" 4 "$out"
# glibc's thresholds are left to glibc: fixed for every program, they make
# each large array a fresh mapping (docs/accounting.md).
out=$("$MEMFENCE" exec --limit 1G -- sh -c 'echo "${MALLOC_MMAP_THRESHOLD_-none} ${MALLOC_TRIM_THRESHOLD_-none}"')
expect_eq "no malloc thresholds under exec" "none none" "$out"
out=$("$MEMFENCE" exec --account --limit 1G -- sh -c 'echo "${MALLOC_MMAP_THRESHOLD_-none} ${MALLOC_TRIM_THRESHOLD_-none}"')
expect_eq "no malloc thresholds under exec --account" "none none" "$out"
out=$(limits --limit 1G --rlimit none) || fail "exec --rlimit none failed"
expect_eq "no rlimit under --rlimit none" unlimited "$(echo "$out" | soft 'Max data size')"

# New threads get the smaller stack; the main thread keeps its own.
ulimit -s 8192
out=$("$MEMFENCE" exec --limit 1G -- "$MF_BUILD/tests/progs/threadstack") || fail "threadstack failed"
expect_eq "main stack unchanged" "main 8388608" "$(echo "$out" | head -n1)"
expect_eq "default thread stack" "thread 2097152" "$(echo "$out" | tail -n1)"
out=$("$MEMFENCE" exec --limit 1G --stack 512K -- "$MF_BUILD/tests/progs/threadstack") || fail "threadstack --stack failed"
expect_eq "thread stack --stack 512K" "thread 524288" "$(echo "$out" | tail -n1)"
out=$("$MF_BUILD/tests/progs/threadstack")
expect_eq "without memfence" "thread 8388608" "$(echo "$out" | tail -n1)"
# Python threads too (CPython asks for the default size).
out=$("$MEMFENCE" exec --limit 1G --stack 1M -- $PY -c '
import threading, ctypes, ctypes.util
libc = ctypes.CDLL(None)
def f():
    attr = ctypes.create_string_buffer(64)
    size = ctypes.c_size_t()
    libc.pthread_getattr_np(ctypes.c_ulong(threading.get_ident()), attr)
    libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
    print(size.value)
t = threading.Thread(target=f); t.start(); t.join()')
expect_eq "Python thread stack" 1048576 "$out"

# exec replaces itself: same PID, the program's exit status and signals.
out=$(bash -c 'echo $$; exec "$0" exec --limit 1G -- sh -c "echo \$\$"' "$MEMFENCE")
expect_eq "same PID" "$(echo "$out" | head -n1)" "$(echo "$out" | tail -n1)"
"$MEMFENCE" exec --limit 1G -- sh -c 'exit 42'
expect_eq "exit status" 42 $?
"$MEMFENCE" exec --limit 1G -- sh -c 'kill -TERM $$'
expect_eq "death by SIGTERM" 143 $?
"$MEMFENCE" exec --limit 1G -- sh -c 'kill -KILL $$'
expect_eq "death by SIGKILL" 137 $?
out=$("$MEMFENCE" exec --limit 1G -- sh -c 'echo "$0 $1"' -x --limit)
expect_eq "program's own options untouched" "-x --limit" "$out"

# Bad input: one line naming the problem, exit status 2.
bad() {
	local want=$1
	shift
	"$MEMFENCE" "$@" >"$MF_TMP/out" 2>"$MF_TMP/err"
	local rc=$?
	[ $rc -eq 2 ] || fail "'$*' exited $rc, expected 2"
	[ "$(wc -l <"$MF_TMP/err")" -ge 1 ] || fail "'$*' printed no error"
	grep -q -- "$want" "$MF_TMP/err" || fail "'$*': error '$(cat "$MF_TMP/err")' does not mention '$want'"
}
bad "no program" exec --limit 1G
bad "invalid limit '12Q'" exec --limit 12Q -- true
bad "invalid limit" exec --limit -5M -- true
bad "too large" exec --limit 99999999999999999999 -- true
bad "no budget" exec --limit 32M -- true
bad "no budget" exec --limit 1G --reserve 100% -- true
bad "invalid reserve" exec --limit 1G --reserve lots -- true
bad "invalid rlimit" exec --limit 1G --rlimit stack -- true
bad "256K" exec --limit 1G --stack 100K -- true
bad "invalid stack size" exec --limit 1G --stack 10% -- true
bad "unrecognized option" exec --bogus -- true
MEMFENCE_LIMIT=abc "$MEMFENCE" exec -- true 2>"$MF_TMP/err"
expect_eq "bad MEMFENCE_LIMIT" 2 $?
grep -q "invalid limit 'abc' (--limit, MEMFENCE_LIMIT)" "$MF_TMP/err" || fail "bad MEMFENCE_LIMIT not named: $(cat "$MF_TMP/err")"
"$MEMFENCE" exec --limit 1G -- /nonexistent/program 2>"$MF_TMP/err"
expect_eq "missing program" 127 $?
grep -q "/nonexistent/program" "$MF_TMP/err" || fail "missing program not named"
"$MEMFENCE" bogus 2>/dev/null
expect_eq "unknown command" 2 $?

# --help and --version answer on stdout with status 0.
"$MEMFENCE" --help | grep -q "exec" || fail "--help lacks exec"
"$MEMFENCE" exec --help | grep -q -- "--reserve" || fail "exec --help lacks --reserve"
expect_match "--version" '^memfence [0-9]+\.[0-9]+\.[0-9]+$' "$("$MEMFENCE" --version)"
exit 0
