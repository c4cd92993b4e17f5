#!/usr/bin/env bash
# Every reader of a file someone else may have written, under libFuzzer
# with AddressSanitizer and UBSan (`make fuzz`, tests/fuzz): post-mortems,
# the journal, profiles, stats segments, the quarantine database, the
# model, recycle requests and what `diagnose` reads. Each target runs for MF_FUZZ_SECONDS (default 15) from its seed
# corpus in tests/fuzz/corpus/NAME; a crash, a sanitizer report, a leak, a
# timeout (10 s for one input) or an out-of-memory (1 GiB) fails the test
# and leaves the input beside the log. Reproduce one with
#   build/fuzz/fuzz_NAME FILE
. "$(dirname "$0")/../lib.sh"
cd "$MF_ROOT_DIR"
command -v clang >/dev/null || skip "no clang (scripts/deps.sh check installs it)"
SECONDS_EACH=${MF_FUZZ_SECONDS:-15}
make -s -j2 fuzz >"$MF_TMP/build.log" 2>&1 ||
	{ tail -n 30 "$MF_TMP/build.log" >&2; fail "make fuzz"; }
ran=0
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	t=${name#fuzz_}
	[ -d "tests/fuzz/corpus/$t" ] || fail "$name has no seed corpus (tests/fuzz/corpus/$t)"
	# New inputs go to a scratch corpus; the seeds stay as they are.
	mkdir -p "$MF_TMP/corpus-$t"
	(cd "$MF_TMP" && TMPDIR=$MF_TMP timeout $((SECONDS_EACH + 60)) "$MF_BUILD/fuzz/$name" \
		-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 -close_fd_mask=3 \
		-artifact_prefix="$MF_TMP/$t-" "$MF_TMP/corpus-$t" "$MF_ROOT_DIR/tests/fuzz/corpus/$t" \
		>"$MF_TMP/$t.log" 2>&1)
	rc=$?
	if [ $rc != 0 ]; then
		grep -E "ERROR|SUMMARY|runtime error|#[0-9]+ 0x" "$MF_TMP/$t.log" | head -n 25 >&2
		cp "$MF_TMP"/$t-* "${TMPDIR:-/tmp}/" 2>/dev/null
		fail "$name: exit $rc; input kept in ${TMPDIR:-/tmp}: $(cd "$MF_TMP" && ls $t-* 2>/dev/null)"
	fi
	echo "$name: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$MF_TMP/$t.log")"
	ran=$((ran + 1))
done
[ "$ran" -ge 8 ] || fail "only $ran fuzz targets ran"
exit 0
