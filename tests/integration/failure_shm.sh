#!/usr/bin/env bash
# A process of the program that outlives the supervisor (a background job)
# must not make the supervisor's segment again once it is removed: that file
# would be owned by a pid no later sweep recognises, and stay in /dev/shm
# (1 MiB of shared memory each time).
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
[ -w /dev/shm ] || skip "/dev/shm is not writable"

"$MEMFENCE" run --http off -- sh -c 'sleep 1.5 & echo x' >"$MF_TMP/out" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
for i in $(seq 50); do [ -s "$MF_TMP/out" ] && break; sleep 0.1; done
wait "$SUP"
sleep 2.5   # the background sleep has ended too
left=$(ls /dev/shm | grep -c "^memfence-run-$SUP.seg")
if [ "$left" != 0 ]; then
	rm -f "/dev/shm/memfence-run-$SUP.seg"
	fail "the segment of supervisor $SUP was made again after its end"
fi
exit 0
