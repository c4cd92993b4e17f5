#!/usr/bin/env bash
# `memfence diagnose` given what a hostile or unlucky user has at hand
# (docs/failure.md, "What memfence promises"):
#   - --html FILE writes through no link planted beside FILE, replaces no
#     device node, refuses a directory;
#   - a state directory is read where it is now (moved, from another working
#     directory); a copy of a live run is not "running" and not lost; pids
#     recorded in the files are never this host's unrelated processes;
#   - PIDs out of range are "invalid PID" (exit 2), never another process;
#   - a crash is not "no death"; files beyond their bound are refused.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
export MEMFENCE_PRESSURE=off
unset MEMFENCE_QUARANTINE MEMFENCE_STATE_DIR
cd "$MF_TMP" || fail "cannot enter $MF_TMP"

bounded() { mf_bounded 30 "$@"; }
# diagnosed WHAT: the last command gave a verdict (0 healthy, 3 a problem).
diagnosed() { [ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "$1: status $rc ($(cat "$MF_TMP/err"))"; }

# A run whose program was SIGKILLed: one post-mortem.
"$MEMFENCE" run --http off --state-dir sd -- sh -c 'kill -9 $$' 2>/dev/null
ls sd/reports/*.json >/dev/null 2>&1 || fail "no post-mortem to diagnose"

# 4. --html: a link planted at every name beside FILE receives nothing.
echo "not yours" >victim
for i in $(seq 0 20); do ln -s victim "page.html.tmp$( [ "$i" = 0 ] || echo ".$i")"; done
ln -s victim page.html.tmp
bounded "diagnose --html with planted links" "$MEMFENCE" diagnose --html page.html sd
diagnosed "--html with planted links"
expect_eq "--html: the link's target" "not yours" "$(cat victim)"
grep -q "<!DOCTYPE html>" page.html || fail "--html: no page written"
[ -L page.html.tmp ] || fail "--html: the planted link was removed"
# A device node is written in place, never replaced by a regular file.
mknod dev-null c 1 3 2>/dev/null || skip "cannot make a device node here"
bounded "diagnose --html to a device" "$MEMFENCE" diagnose --html dev-null sd
diagnosed "--html to a device"
[ -c dev-null ] || fail "--html replaced the device node with $(stat -c %F dev-null)"
mkdir page-dir
bounded "diagnose --html to a directory" "$MEMFENCE" diagnose --html page-dir sd
expect_eq "--html to a directory: status ($(cat err))" 1 "$rc"
grep -q "page-dir: Is a directory" err || fail "--html to a directory: $(cat err)"
[ -z "$(ls page-dir)" ] || fail "--html wrote into the directory: $(ls page-dir)"

# 7. Moved and read from another working directory: its post-mortem counts.
mv sd moved
mkdir elsewhere
(cd elsewhere && timeout 30 "$MEMFENCE" diagnose ../moved) >out 2>err
grep -q ", 1 post-mortem(s)" out || fail "moved state directory: $(cat out err)"

# A copy of a live run's directory: not "running" here, no death made up.
"$MEMFENCE" run --http off --state-dir live -- sh -c 'while [ ! -e stop ]; do sleep 0.1; done' 2>/dev/null &
LIVE=$!
MF_PIDS+=("$LIVE")
for _ in $(seq 300); do grep -q '"program_pid"' live/model.json 2>/dev/null && [ -e live/journal.json ] && break; sleep 0.1; done
[ -e live/journal.json ] || fail "the live run wrote no journal"
cp -r live copy
bounded "diagnose a copy of a live run" "$MEMFENCE" diagnose copy
expect_eq "copy of a live run: status ($(cat err))" 0 "$rc"
grep -q "the run has ended" out || fail "copy of a live run: $(cat out)"
grep -q ", 0 OOM kill(s), 0 post-mortem(s)" out || fail "copy of a live run: $(cat out)"
# As PID 1 in its container: this host's PID 1 is not its supervisor.
$PY -c 'import json,sys; p=sys.argv[1]; j=json.load(open(p)); j["run"]["supervisor_pid"]=1; json.dump(j,open(p,"w"))' copy/model.json
bounded "diagnose a copy with supervisor_pid 1" "$MEMFENCE" diagnose --json copy
grep -q '"running": false' out || fail "copy with supervisor_pid 1: $(cat out)"
touch stop
wait "$LIVE"

# 15. PIDs out of range.
for pid in 4294967920 99999999999999999999 2147483648 0; do
	bounded "diagnose $pid" "$MEMFENCE" diagnose "$pid"
	expect_eq "diagnose $pid: status ($(cat err))" 2 "$rc"
	grep -q "invalid PID '$pid'" err || fail "diagnose $pid: $(cat err)"
done

# 16. A crash is a death, not "no death" beside its post-mortem.
"$MEMFENCE" run --http off --state-dir segv -- sh -c 'kill -SEGV $$' 2>/dev/null
bounded "diagnose after SIGSEGV" "$MEMFENCE" diagnose segv
grep -q "no death" out && fail "\"no death\" after a SIGSEGV: $(cat out)"
grep -q ", 1 post-mortem(s)" out || fail "after SIGSEGV: $(cat out)"

# 11. Files far beyond what memfence writes are refused, not read whole.
mkdir big
$PY -c 'import json; print(json.dumps({"memfence_model": 1, "pad": "x" * (6 << 20)}))' >big/model.json
bounded "diagnose a 6 MiB model" "$MEMFENCE" diagnose big
expect_eq "6 MiB model: status ($(cat err))" 1 "$rc"
grep -q "too large" err || fail "6 MiB model: $(cat err)"
cp moved/model.json big/model.json
mkdir -p big/reports
$PY -c 'import json; print(json.dumps({"memfence_report": 1, "pad": "x" * (6 << 20)}))' \
	>big/reports/memfence-report-20260101T000000Z-1-0.json
bounded "diagnose with a 6 MiB post-mortem" "$MEMFENCE" diagnose big
diagnosed "6 MiB post-mortem"
grep -q "memfence-report-20260101T000000Z-1-0.json: too large" err || fail "6 MiB post-mortem: $(cat err)"
exit 0
