#!/usr/bin/env bash
# Bad options and variables are said, in one line, with the right status:
# 2 for a bad option or MEMFENCE_* value; booleans read one way everywhere
# (1/0, true/false, yes/no, on/off); restarts are bounded whatever the delay.
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"

status_of() { timeout 20 "$@" >"$MF_TMP/out" 2>"$MF_TMP/err"; echo $?; }

# --http: a bad address is a bad option, whichever way it is given.
expect_eq "--http garbage" 2 "$(status_of "$MEMFENCE" run --http garbage -- true)"
expect_eq "--http garbage: lines ($(cat "$MF_TMP/err"))" 1 "$(wc -l <"$MF_TMP/err")"
expect_eq "MEMFENCE_HTTP=garbage" 2 "$(MEMFENCE_HTTP=garbage status_of "$MEMFENCE" run -- true)"
expect_eq "--http '127.0.0.1: 80'" 2 "$(status_of "$MEMFENCE" run --http '127.0.0.1: 80' -- true)"
expect_eq "--http '127.0.0.1:+80'" 2 "$(status_of "$MEMFENCE" run --http '127.0.0.1:+80' -- true)"

# Booleans: off, false, no turn the profiler off; garbage is an error.
for v in off false no 0; do
	rm -rf "$MF_TMP/r"
	expect_eq "MEMFENCE_PROFILE=$v" 0 \
		"$(MEMFENCE_PROFILE=$v status_of "$MEMFENCE" run --http off --report-dir "$MF_TMP/r" -- true)"
	[ -n "$(ls "$MF_TMP/r" 2>/dev/null)" ] && fail "MEMFENCE_PROFILE=$v profiled: $(ls "$MF_TMP/r")"
done
rm -rf "$MF_TMP/r"
expect_eq "MEMFENCE_PROFILE=yes" 0 \
	"$(MEMFENCE_PROFILE=yes status_of "$MEMFENCE" run --http off --report-dir "$MF_TMP/r" -- true)"
ls "$MF_TMP/r"/*.prof >/dev/null 2>&1 || fail "MEMFENCE_PROFILE=yes did not profile"
expect_eq "MEMFENCE_PROFILE=garbage" 2 \
	"$(MEMFENCE_PROFILE=garbage status_of "$MEMFENCE" run --http off -- true)"
grep -q "MEMFENCE_PROFILE" "$MF_TMP/err" || fail "the error does not name the variable: $(cat "$MF_TMP/err")"
expect_eq "MEMFENCE_ACCOUNT=garbage" 2 "$(MEMFENCE_ACCOUNT=garbage status_of "$MEMFENCE" exec -- true)"
expect_eq "MEMFENCE_AUTO_PYTHON=garbage" 2 \
	"$(MEMFENCE_AUTO_PYTHON=garbage status_of "$MEMFENCE" run --http off -- true)"

# The shim reads the same words, and says what it ignores.
out=$(MEMFENCE_ACCOUNT=yes LD_PRELOAD="$MF_BUILD/libmemfence.so" "$MF_BUILD/tests/shim/shim_basic" 2>&1)
echo "$out" | grep -q "is not" && fail "MEMFENCE_ACCOUNT=yes refused by the shim: $out"
out=$(MEMFENCE_ACCOUNT=maybe LD_PRELOAD="$MF_BUILD/libmemfence.so" /bin/true 2>&1)
expect_match "shim: MEMFENCE_ACCOUNT=maybe" "MEMFENCE_ACCOUNT='maybe' is not" "$out"
out=$(MEMFENCE_STACK=garbage LD_PRELOAD="$MF_BUILD/libmemfence-stack.so" /bin/true 2>&1)
expect_match "MEMFENCE_STACK=garbage" "invalid MEMFENCE_STACK" "$out"
out=$(MEMFENCE_ACCOUNT=1 MEMFENCE_PROFILE_DIR="$MF_TMP/missing" LD_PRELOAD="$MF_BUILD/libmemfence.so" /bin/true 2>&1)
expect_match "missing MEMFENCE_PROFILE_DIR" "MEMFENCE_PROFILE_DIR .*missing.* not a writable directory" "$out"

# exec without accounting: the message says what to add.
expect_eq "exec --heap-limit" 2 "$(status_of "$MEMFENCE" exec --heap-limit 1G -- true)"
grep -q -- "add --account" "$MF_TMP/err" || fail "exec --heap-limit: $(cat "$MF_TMP/err")"

# --restart-delay 0: no underflow in the message, and a crash loop backs off.
timeout 3 "$MEMFENCE" run --http off --no-account --restart always --restart-delay 0 -- /bin/false \
	2>"$MF_TMP/err"
n=$(grep -c "restarting the program" "$MF_TMP/err")
grep -q "restarting the program in 1844" "$MF_TMP/err" && fail "underflow: $(grep -m1 1844 "$MF_TMP/err")"
[ "$n" -ge 2 ] || fail "no restarts: $(cat "$MF_TMP/err")"
[ "$n" -le 10 ] || fail "$n restarts in 3 s with --restart-delay 0"
exit 0
