#!/usr/bin/env bash
# cgroup v2 in a real kernel (user-mode Linux, tests/uml): the limit memfence
# resolves in a Kubernetes-like tree (nested memory.max, "max", memory.high
# below memory.max, memory.swap.max), and OOM counters of a pod whose own
# limit is hit: memory.events (with the children) against memory.events.local.
if [ -z "${MF_UML_SCRIPT:-}" ]; then
	. "$(dirname "$0")/../lib.sh"
	mf_v2_boot "$0"
	exit
fi
. "$MF_ROOT_DIR/tests/uml/guest.sh"
unset MEMFENCE_LIMIT MEMFENCE_RESERVE MEMFENCE_RLIMIT MEMFENCE_STACK MEMFENCE_ROOT
M=$((1 << 20))

# inspect_in DIR: inspect --json of a process in DIR, into $MF_SCRATCH/i.json.
inspect_in() { v2_in "$1" "$MEMFENCE" inspect --json >"$MF_SCRATCH/i.json" 2>"$MF_SCRATCH/i.err"; }

# The container's own limit is the smallest (init: ctr 256M < pod 320M < 384M).
inspect_in "$CTR"
expect_eq "nested: ctr's memory.max" "$((256 * M)) cgroup v2 2 /kubepods/pod1/ctr $CTR/memory.max" \
	"$(jget "$MF_SCRATCH/i.json" '" ".join(map(str, [d["limit_bytes"], d["limit_source"],
		d["cgroup"]["version"], d["cgroup"]["path"], d["limit_file"]]))')"
expect_eq "nested: no swap" 0 "$(jget "$MF_SCRATCH/i.json" 'd["swap_max_bytes"]')"
# Debian's user-mode Linux is built without PSI (CONFIG_PSI): said so, not guessed.
expect_eq "no memory.pressure in this kernel" "null" "$(jget "$MF_SCRATCH/i.json" 'd["memory_pressure"]')"
expect_match "inspect says why" "memory.pressure +none \(this kernel has no PSI\)" \
	"$(v2_in "$CTR" "$MEMFENCE" inspect 2>&1)"

# "max" in the container: the pod's limit applies.
c=$(v2_container big max)
inspect_in "$c"
expect_eq "max: the pod's memory.max" "$((320 * M)) $POD/memory.max" \
	"$(jget "$MF_SCRATCH/i.json" '"%d %s" % (d["limit_bytes"], d["limit_file"])')"
# "max" up to the root: the machine's memory.
echo max >"$POD/memory.max"
echo max >"$CG/kubepods/memory.max"
inspect_in "$c"
expect_eq "max everywhere: MemTotal" "MemTotal unlimited" \
	"$(jget "$MF_SCRATCH/i.json" '"%s %s" % (d["limit_source"], d["cgroup_limit_bytes"])')"
echo 384M >"$CG/kubepods/memory.max"
echo 320M >"$POD/memory.max"

# memory.high below memory.max is shown; the limit stays memory.max.
echo 200M >"$c/memory.high"
echo 300M >"$c/memory.max"
inspect_in "$c"
expect_eq "high below max" "$((300 * M)) $((200 * M))" \
	"$(jget "$MF_SCRATCH/i.json" '"%d %s" % (d["limit_bytes"], d["high_bytes"])')"
v2_in "$c" "$MEMFENCE" inspect >"$MF_SCRATCH/i.txt" 2>&1
expect_match "high in the text" "memory.high +200 MiB" "$(cat "$MF_SCRATCH/i.txt")"

# memory.swap.max: a number, and "max".
echo 64M >"$c/memory.swap.max"
inspect_in "$c"
expect_eq "swap.max 64M" "$((64 * M))" "$(jget "$MF_SCRATCH/i.json" 'd["swap_max_bytes"]')"
echo max >"$c/memory.swap.max"
inspect_in "$c"
expect_eq "swap.max max" unlimited "$(jget "$MF_SCRATCH/i.json" 'd["swap_max_bytes"]')"
rmdir "$c"

# --- the pod's limit is hit: pod1 (which has children) counts the kill in
# memory.events, not in memory.events.local; the victim's container counts it
# in both, and memfence reads the victim's container.
a=$(v2_container a 256M)
b=$(v2_container b 256M)
# b holds 150 MiB of anonymous memory; a then asks for 250: 400 > 320 (pod).
v2_in "$b" $PY -c 'import sys, time; x = bytearray(150 << 20); x[::4096] = b"x" * len(x[::4096]); open(sys.argv[1], "w").close(); time.sleep(60)' "$MF_SCRATCH/b-ready" &
B=$!
wait_for 20 test -f "$MF_SCRATCH/b-ready" || bad "the 150 MiB holder did not start"
v2_in "$a" $PY -c 'x = bytearray(250 << 20); x[::4096] = b"x" * len(x[::4096]); print("not killed")'
expect_eq "the 250 MiB program was OOM-killed" 137 $?
expect_eq "pod1 memory.events: oom, oom_kill" "1 1" "$(v2_key "$POD/memory.events" oom) $(v2_key "$POD/memory.events" oom_kill)"
expect_eq "pod1 memory.events.local: oom, oom_kill" "1 0" \
	"$(v2_key "$POD/memory.events.local" oom) $(v2_key "$POD/memory.events.local" oom_kill)"
expect_eq "a memory.events.local: oom, oom_kill" "0 1" \
	"$(v2_key "$a/memory.events.local" oom) $(v2_key "$a/memory.events.local" oom_kill)"
expect_eq "b: no kill" 0 "$(v2_key "$b/memory.events" oom_kill)"
inspect_in "$a"
expect_eq "inspect in a: oom_kill 1 (the pod's oom is not a's)" "1 0" \
	"$(jget "$MF_SCRATCH/i.json" '"%d %d" % (d["events"]["oom_kill"], d["events"]["oom"])')"
inspect_in "$b"
expect_eq "inspect in b: no kill" 0 "$(jget "$MF_SCRATCH/i.json" 'd["events"]["oom_kill"]')"
kill "$B"
wait "$B" 2>/dev/null
v2_done
