#!/usr/bin/env bash
# memfence run as PID 1 of its own PID namespace, as in a container: orphans
# are reparented to it and reaped, signals reach the program, and the exit
# status is the program's.
. "$(dirname "$0")/../lib.sh"

command -v unshare >/dev/null || skip "unshare(1) is not installed"
unshare -pf --mount-proc true 2>/dev/null || skip "cannot make a PID namespace here (needs root)"

cat >"$MF_TMP/inside.sh" <<'EOF2'
#!/bin/sh
# Runs as the program: PID 2, memfence is PID 1.
[ "$(cut -d' ' -f4 /proc/$$/stat)" = 1 ] || { echo "parent is not PID 1"; exit 10; }
sh -c 'sleep 0.5 & echo $! > "$0"' "$0.orphan" &
wait
orphan=$(cat "$0.orphan")
[ "$(cut -d' ' -f4 /proc/$orphan/stat)" = 1 ] || { echo "orphan not reparented to PID 1"; exit 11; }
i=0
while [ -e /proc/$orphan ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
[ -e /proc/$orphan ] && { echo "orphan $orphan left as: $(cat /proc/$orphan/stat)"; exit 12; }
trap 'exit 42' TERM
kill -TERM 1             # the runtime stopping the container
sleep 5 & wait
exit 13
EOF2
chmod +x "$MF_TMP/inside.sh"
timeout 20 unshare -pf --mount-proc "$MEMFENCE" run --http off --no-account --report-dir "$MF_TMP/r" \
	-- "$MF_TMP/inside.sh" >"$MF_TMP/out" 2>"$MF_TMP/err"
rc=$?
expect_eq "status (42: the program got the forwarded SIGTERM as a child of PID 1) $(cat "$MF_TMP/out")" 42 "$rc"
echo ok
