#!/usr/bin/env bash
# A full filesystem under the stats segment (a small tmpfs as the state
# directory; /dev/shm is 64 MiB in a Docker container and shared with the
# program) must not kill anything with SIGBUS: the segment's pages are
# reserved when it is made, and when they cannot be, the program runs
# without the supervisor's accounting, after one warning (docs/failure.md).
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root"
MNT=$MF_TMP/mnt
mkdir -p "$MNT"
mount -t tmpfs -o size=64k tmpfs "$MNT" 2>"$MF_TMP/mount.err" ||
	skip "cannot mount a tmpfs: $(cat "$MF_TMP/mount.err")"
trap 'umount "$MNT" 2>/dev/null; mf_cleanup' EXIT

# Too small for the segment from the start: the run goes on, one warning,
# nothing left behind.
timeout 20 "$MEMFENCE" run --http off --state-dir "$MNT/st" -- sh -c 'echo ran' \
	>"$MF_TMP/out" 2>"$MF_TMP/err"
rc=$?
expect_eq "status on a 64k tmpfs (stderr: $(cat "$MF_TMP/err"))" 0 "$rc"
expect_eq "program output" "ran" "$(cat "$MF_TMP/out")"
expect_eq "warnings about the segment" 1 "$(grep -c 'stats segment' "$MF_TMP/err")"
grep 'stats segment' "$MF_TMP/err" | grep -q 'accounting is off' ||
	fail "the warning does not say accounting is off: $(cat "$MF_TMP/err")"
left=$(ls -A "$MNT/st" | grep -c tmp)
expect_eq "temporary files left in $MNT/st ($(ls -A "$MNT/st"))" 0 "$left"
umount "$MNT"

# Room for the segment at the start, then the filesystem fills while the
# program's processes write to it: nobody gets SIGBUS.
mount -t tmpfs -o size=2m tmpfs "$MNT" || fail "cannot mount again"
cat >"$MF_TMP/prog.py" <<'PY'
import os, sys, time
open(sys.argv[1], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
kids = []
for i in range(20):
    pid = os.fork()
    if pid == 0:
        blocks = [bytearray(64 << 10) for _ in range(32)]
        time.sleep(0.2)
        os._exit(0)
    kids.append(pid)
bad = 0
for pid in kids:
    _, ws = os.waitpid(pid, 0)
    if ws != 0:
        bad += 1
        print("child", pid, "ended with wait status", ws, file=sys.stderr)
sys.exit(3 if bad else 0)
PY
timeout 60 "$MEMFENCE" run --http off --state-dir "$MNT/st" -- \
	$PY "$MF_TMP/prog.py" "$MF_TMP/started" "$MF_TMP/go" 2>"$MF_TMP/err2" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 100); do [ -f "$MF_TMP/started" ] && break; sleep 0.1; done
[ -f "$MF_TMP/started" ] || fail "the program did not start: $(cat "$MF_TMP/err2")"
dd if=/dev/zero of="$MNT/fill" bs=64k 2>/dev/null   # until the tmpfs is full
touch "$MF_TMP/go"
wait "$SUP"
rc=$?
expect_eq "status with a full tmpfs (stderr: $(cat "$MF_TMP/err2"))" 0 "$rc"
exit 0
