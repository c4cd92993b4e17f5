#!/usr/bin/env bash
# Files that are not what memfence writes, where it reads: FIFOs, devices,
# directories, endless or huge files. Every reader refuses them at once with
# one line, exit 1, and creates nothing (docs/failure.md).
. "$(dirname "$0")/../lib.sh"

FIFO=$MF_TMP/fifo
mkfifo "$FIFO"

# run_bounded WHAT CMD...: CMD must end within 10 s, with status 1 and one
# line on stderr, in at most 64 MiB of memory.
run_bounded() {
	local what=$1 rc
	shift
	(ulimit -v $((256 * 1024)); timeout 10 "$@") >"$MF_TMP/out" 2>"$MF_TMP/err"
	rc=$?
	[ "$rc" = 124 ] && fail "$what: still running after 10 s"
	expect_eq "$what: status (stderr: $(cat "$MF_TMP/err"))" 1 "$rc"
	expect_eq "$what: lines on stderr ($(cat "$MF_TMP/err"))" 1 "$(wc -l <"$MF_TMP/err")"
}

run_bounded "report FIFO" "$MEMFENCE" report "$FIFO"
grep -q "not a regular file" "$MF_TMP/err" || fail "report FIFO: $(cat "$MF_TMP/err")"
run_bounded "profile report FIFO" "$MEMFENCE" profile report "$FIFO"
grep -q "not a regular file" "$MF_TMP/err" || fail "profile report FIFO: $(cat "$MF_TMP/err")"
run_bounded "stat FIFO" "$MEMFENCE" stat "$FIFO"
run_bounded "profile report /dev/zero" "$MEMFENCE" profile report /dev/zero
run_bounded "report /dev/zero" "$MEMFENCE" report /dev/zero

# A profile that is one endless line, as a regular file: bounded too.
head -c $((80 << 20)) /dev/zero >"$MF_TMP/big.prof" 2>/dev/null
run_bounded "profile report of an 80 MiB file" "$MEMFENCE" profile report "$MF_TMP/big.prof"

# A module path in a profile naming a FIFO: the report does not wait on it.
printf 'memfence-profile 1\npid 1\nrate 65536\nm 0\t%s\ns 0 0 10 1 10 1 10 1 0 0\tn0:10\nend\n' "$FIFO" \
	>"$MF_TMP/fifo.prof"
timeout 10 "$MEMFENCE" profile report "$MF_TMP/fifo.prof" >/dev/null 2>"$MF_TMP/err"
rc=$?
[ "$rc" = 124 ] && fail "profile naming a FIFO as a module: still running after 10 s"
expect_eq "profile naming a FIFO: status ($(cat "$MF_TMP/err"))" 0 "$rc"

# Misleading messages: a directory, a missing file.
run_bounded "report of a directory" "$MEMFENCE" report /tmp
grep -q "Is a directory" "$MF_TMP/err" || fail "report /tmp: $(cat "$MF_TMP/err")"
run_bounded "profile report of a directory" "$MEMFENCE" profile report /tmp
grep -q "Is a directory" "$MF_TMP/err" || fail "profile report /tmp: $(cat "$MF_TMP/err")"
run_bounded "report of a missing file" "$MEMFENCE" report "$MF_TMP/nonexistent"
grep -q "line -1" "$MF_TMP/err" && fail "report of a missing file: $(cat "$MF_TMP/err")"
grep -q "No such file" "$MF_TMP/err" || fail "report of a missing file: $(cat "$MF_TMP/err")"

# The quarantine store is a regular file or nothing: no /dev/zero-journal.
for dev in /dev/zero /dev/null; do
	rm -f "$dev-journal"
	run_bounded "quarantine --quarantine $dev list" \
		"$MEMFENCE" quarantine --quarantine "$dev" list
	[ -e "$dev-journal" ] && { rm -f "$dev-journal"; fail "$dev-journal was created"; }
done
run_bounded "quarantine on a FIFO" "$MEMFENCE" quarantine --quarantine "$FIFO" list

# A FIFO named journal.json in the state directory: the supervisor starts,
# says so, and runs the program.
SD=$MF_TMP/state
mkdir -p "$SD"
mkfifo "$SD/journal.json"
timeout 20 "$MEMFENCE" run --http off --no-account --state-dir "$SD" -- echo ran \
	>"$MF_TMP/out" 2>"$MF_TMP/err"
rc=$?
[ "$rc" = 124 ] && fail "run with a FIFO as journal: still running after 20 s"
expect_eq "run with a FIFO as journal: status ($(cat "$MF_TMP/err"))" 0 "$rc"
expect_eq "run with a FIFO as journal: output" ran "$(cat "$MF_TMP/out")"
grep -q "journal.*not a regular file" "$MF_TMP/err" || fail "no word of the FIFO: $(cat "$MF_TMP/err")"
mkfifo "$SD/journal.json.tmp"
timeout 20 "$MEMFENCE" run --http off --no-account --state-dir "$SD" -- sleep 1.5 \
	>"$MF_TMP/out" 2>"$MF_TMP/err"
rc=$?
[ "$rc" = 124 ] && fail "run with a FIFO as journal.json.tmp: still running after 20 s"
expect_eq "run with a FIFO as journal.json.tmp: status ($(cat "$MF_TMP/err"))" 0 "$rc"
exit 0
