#!/usr/bin/env bash
# Recycling, as a hostile or unlucky program meets it (docs/failure.md,
# "What memfence promises"):
#   - a crash or an exit during the drain is the program's own end: its
#     post-mortem, its exit status, --restart decides (not a silent restart);
#   - memfence's own recycle kill is never a quarantine death;
#   - files memfence did not make in the recycle directory hide no request
#     and are left alone; a request that is a symbolic link is not followed.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
[ -f "$MF_BUILD/python/memfence/__init__.py" ] || fail "the Python package is not built (make python)"
export PYTHONPATH=$MF_BUILD/python MEMFENCE_PRESSURE=off
unset MEMFENCE_QUARANTINE MEMFENCE_STATE_DIR MEMFENCE_RECYCLE MEMFENCE_RESTART
cd "$MF_TMP" || fail "cannot enter $MF_TMP"

bounded() { mf_bounded 60 "$@"; }

# 5. The program asks to be recycled, waits until the supervisor took the
# request (the drain has begun: 10 s), then crashes.
# shellcheck disable=SC2016
ask='d=$MEMFENCE_RECYCLE_DIR; echo unclean >"$d/$$.tmp" && mv "$d/$$.tmp" "$d/$$"
i=0; while [ -e "$d/$$" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done'
bounded "crash while draining" "$MEMFENCE" run --http off --state-dir sd5 --recycle on \
	--restart never --drain-delay 10s -- sh -c "echo run >>runs5; $ask; kill -SEGV \$\$"
expect_eq "crash while draining: status ($(cat err))" 139 "$rc"
expect_eq "crash while draining: runs" 1 "$(wc -l <runs5)"
grep -q "recycling the program" err || fail "crash while draining: no recycle began ($(cat err))"
ls sd5/reports/*.json >/dev/null 2>&1 || fail "crash while draining: no post-mortem ($(cat err))"
# The same with an exit: a job that finished is not run again.
bounded "exit while draining" "$MEMFENCE" run --http off --state-dir sd5e --restart on-oom \
	--drain-delay 10s -- sh -c "echo run >>runs5e; $ask; exit 7"
expect_eq "exit while draining: status ($(cat err))" 7 "$rc"
expect_eq "exit while draining: runs" 1 "$(wc -l <runs5e)"

# 12. 1,000 files of other names and a symbolic link named like a request
# before the real request: it is seen, the link is not followed, the
# other files stay. The second start ends at once.
echo "secret-hostname-line" >secret
# shellcheck disable=SC2016
prog='echo run >>runs12
[ "$(wc -l <runs12)" -gt 1 ] && exit 0
d=$MEMFENCE_RECYCLE_DIR
i=0; while [ $i -lt 1000 ]; do : >"$d/junk$i"; i=$((i + 1)); done
ln -s "$PWD/secret" "$d/$$"
sleep 1
rm -f "$d/$$"
echo "asked for real" >"$d/$$.tmp"
mv "$d/$$.tmp" "$d/$$"
sleep 30'
bounded "junk in the recycle directory" "$MEMFENCE" run --http off --state-dir sd12 --recycle on \
	--restart never --drain-delay 0s --recycle-grace 2s --recycle-min-interval 1s -- sh -c "$prog"
expect_eq "junk: status ($(cat err))" 0 "$rc"
expect_eq "junk: runs" 2 "$(wc -l <runs12)"
grep -q "recycling the program .*asked for real" err || fail "junk: the request was not seen: $(cat err)"
grep -q secret-hostname-line err && fail "junk: the linked request was followed: $(cat err)"
expect_eq "junk: other files kept" 1000 "$(find sd12/recycle -name 'junk*' | wc -l)"
expect_eq "the linked file" secret-hostname-line "$(cat secret)"

# 6. A program that ignores SIGTERM with a scope open, recycled twice:
# killed by memfence both times, never a death of the scope's id.
cat >ignore.py <<'PY'
import os, signal, sys, time
import memfence
from memfence import recovery

with open("runs6", "a") as f:
    f.write("run\n")
if sum(1 for _ in open("runs6")) > 2:
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with memfence.scope("tasks.long", id="long-task-7"):
    recovery.request_recycle("asked")
    for _ in range(600):
        time.sleep(0.1)
PY
bounded "recycle kill" "$MEMFENCE" run --http off --state-dir sd6 --recycle on --restart never \
	--drain-delay 0s --drain-timeout 0s --recycle-grace 1s --recycle-min-interval 1s \
	-- "$PY" ignore.py
expect_eq "recycle kill: status ($(cat err))" 0 "$rc"
expect_eq "recycle kill: runs" 3 "$(wc -l <runs6)"
grep -c "SIGKILL" err | grep -qx 2 || fail "recycle kill: not killed twice: $(cat err)"
"$MEMFENCE" quarantine check long-task-7 --state-dir sd6 >out 2>&1
expect_eq "quarantine check after two recycle kills ($(cat out))" 0 "$?"
"$MEMFENCE" quarantine show long-task-7 --state-dir sd6 --json >out 2>&1 &&
	fail "a death was recorded for the recycle kill: $(cat out)"
exit 0
