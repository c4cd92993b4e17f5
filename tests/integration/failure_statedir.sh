#!/usr/bin/env bash
# The state directory and the files beside the segment, planted by someone
# else: memfence never waits on them, never writes or deletes through a
# link, never replaces a file it did not make, and hands the program
# absolute paths only (docs/failure.md, "What memfence promises").
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
cd "$MF_TMP" || fail "cannot enter $MF_TMP"

bounded() { mf_bounded 20 "$@"; }

# 1. A FIFO as model.json: the program starts, the supervisor says why it
# starts a new model; diagnose refuses the FIFO at once.
mkdir fifo-sd
mkfifo fifo-sd/model.json
bounded "run with a FIFO model.json" "$MEMFENCE" run --http off --no-account \
	--state-dir fifo-sd -- echo ran
expect_eq "run with a FIFO model.json: status ($(cat err))" 0 "$rc"
expect_eq "run with a FIFO model.json: the program ran" ran "$(cat out)"
grep -q "model.*not a regular file" err || fail "no word of the FIFO model: $(cat err)"
mkdir fifo-diag
mkfifo fifo-diag/model.json fifo-diag/journal.json
bounded "diagnose of a FIFO model.json" "$MEMFENCE" diagnose fifo-diag
expect_eq "diagnose of a FIFO model.json: status ($(cat err))" 1 "$rc"
grep -q "not a regular file" err || fail "diagnose FIFO: $(cat err)"
bounded "diagnose of a FIFO target" "$MEMFENCE" diagnose fifo-diag/journal.json
expect_eq "diagnose FIFO target: status ($(cat err))" 1 "$rc"
grep -q "not a regular file" err || fail "diagnose FIFO target: $(cat err)"

# 16. A directory as model.json: said so, not a parse error.
mkdir -p dir-diag/model.json
bounded "diagnose of a directory model.json" "$MEMFENCE" diagnose dir-diag
expect_eq "diagnose dir model.json: status ($(cat err))" 1 "$rc"
grep -q "Is a directory" err || fail "diagnose dir model.json: $(cat err)"

# 11. A model.json far larger than memfence writes: said, not read whole;
# the program runs and a new model is started.
mkdir big-sd
$PY -c 'import json; print(json.dumps({"memfence_model": 1, "pad": "x" * (6 << 20)}))' >big-sd/model.json
bounded "run with a 6 MiB model.json" "$MEMFENCE" run --http off --no-account \
	--state-dir big-sd -- echo ran
expect_eq "run with a 6 MiB model.json: status ($(cat err))" 0 "$rc"
expect_eq "run with a 6 MiB model.json: the program ran" ran "$(cat out)"
grep -q "model.*too large" err || fail "no word of the 6 MiB model: $(cat err)"

# 2. STATE_DIR/recycle is a link to a directory of someone else's: nothing
# in it is removed, and the supervisor says it cannot take requests.
mkdir victim link-sd
for f in 1 2 3 4242 4242.tmp notes; do echo "keep $f" >"victim/$f"; done
ln -s ../victim link-sd/recycle
bounded "run with a symlinked recycle directory" "$MEMFENCE" run --http off --no-account \
	--state-dir link-sd --recycle on -- true
expect_eq "symlinked recycle: status ($(cat err))" 0 "$rc"
expect_eq "symlinked recycle: files kept" "1 2 3 4242 4242.tmp notes" "$(ls victim | LC_ALL=C sort | xargs)"
[ -L link-sd/recycle ] || fail "the link itself was replaced"
grep -q "recycle.*symbolic link" err || fail "no word of the symlinked recycle directory: $(cat err)"

# 3. --segment naming a file that is not a segment: refused, untouched.
echo "precious rows" >db.sqlite
bounded "run --segment on a data file" "$MEMFENCE" run --http off --segment db.sqlite -- true
expect_eq "run --segment on a data file: status ($(cat err))" 2 "$rc"
expect_eq "the data file" "precious rows" "$(cat db.sqlite)"
grep -q "not a memfence stats segment" err || fail "run --segment data file: $(cat err)"
mknod null-dev c 1 3 2>/dev/null || skip "cannot make a device node here"
bounded "run --segment on a device" "$MEMFENCE" run --http off --segment null-dev -- true
expect_eq "run --segment on a device: status ($(cat err))" 2 "$rc"
[ -c null-dev ] || fail "the device node was replaced"
ln -s db.sqlite seg-link
bounded "run --segment on a link" "$MEMFENCE" run --http off --segment seg-link -- true
expect_eq "run --segment on a link: status ($(cat err))" 2 "$rc"
[ -L seg-link ] || fail "the link was replaced"
# Its own old segment is fine to replace (and removed at the end).
bounded "run --segment new" "$MEMFENCE" run --http off --segment own.seg -- true
expect_eq "run --segment new: status ($(cat err))" 0 "$rc"
[ -e own.seg ] && fail "own.seg left behind"

# 8. Relative --state-dir, --report-dir and --segment: the program gets
# absolute paths, that still name the same files after it changes directory.
bounded "relative paths" "$MEMFENCE" run --http off --state-dir rel-sd --recycle on --profile \
	-- sh -c 'echo "$MEMFENCE_QUARANTINE"; echo "$MEMFENCE_RECYCLE_DIR"; echo "$MEMFENCE_SEGMENT"; echo "$MEMFENCE_STATE_DIR"; echo "$MEMFENCE_PROFILE_DIR"'
expect_eq "relative paths: status ($(cat err))" 0 "$rc"
expect_eq "relative paths: handed over" \
	"sqlite:$MF_TMP/rel-sd/quarantine.db $MF_TMP/rel-sd/recycle $MF_TMP/rel-sd/segment.seg $MF_TMP/rel-sd $MF_TMP/rel-sd/reports" \
	"$(xargs <out)"
bounded "relative --quarantine" "$MEMFENCE" run --http off --no-account --quarantine sqlite:q.db \
	--report-dir ./reps -- sh -c 'echo "$MEMFENCE_QUARANTINE"'
expect_eq "relative --quarantine: handed over" "sqlite:$MF_TMP/q.db" "$(cat out)"
# 16. The model file of a SIGKILLed supervisor without a state directory
# is swept with its segment; a link of that name is left alone.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	kill -0 "$dead" 2>/dev/null && skip "pid $dead was taken again at once"
	printf '{\n  "memfence_model": 1\n}\n' >"/dev/shm/memfence-run-$dead.model.json"
	echo "not a model" >kept
	sh -c 'exit 0' &
	dead2=$!
	wait "$dead2"
	ln -s "$MF_TMP/kept" "/dev/shm/memfence-run-$dead2.model.json"
	bounded "run sweeping /dev/shm" "$MEMFENCE" run --http off -- true
	expect_eq "run sweeping /dev/shm: status ($(cat err))" 0 "$rc"
	[ -e "/dev/shm/memfence-run-$dead.model.json" ] &&
		fail "the model file of a dead supervisor was left in /dev/shm"
	[ -L "/dev/shm/memfence-run-$dead2.model.json" ] || fail "a link in /dev/shm was removed"
	rm -f "/dev/shm/memfence-run-$dead2.model.json"
fi
exit 0
