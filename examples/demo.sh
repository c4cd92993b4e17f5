#!/usr/bin/env bash
# The demonstration behind `make demo`: the same service, the same batch of
# requests, in the same 256 MiB memory cgroup — once as it is, once under
# `memfence exec`. Needs root (to make the cgroup); without it, it shows what
# an explicit --limit still does.
set -u
cd "$(dirname "$0")/.."
MEMFENCE=${MEMFENCE:-build/memfence}
PY=/usr/bin/python3
SERVICE=examples/batch_service.py
LIMIT_MIB=256

if [ -t 1 ]; then bold() { printf '\033[1m%s\033[0m\n' "$*"; }; else bold() { printf '%s\n' "$*"; }; fi
answered() { grep -c '^  r' "$1"; }
rule() { printf '%s\n' "------------------------------------------------------------------------"; }

cg_dir() {
	local path
	grep -q ':memory:' /proc/self/cgroup || return 1
	[ -d /sys/fs/cgroup/memory ] || return 1
	path=$(grep ':memory:' /proc/self/cgroup | head -n1 | cut -d: -f3-)
	echo "/sys/fs/cgroup/memory$path/memfence-demo-$$"
}
oom_kills() { awk '$1 == "oom_kill" { print $2 }' "$1/memory.oom_control"; }

OUT1=$(mktemp) OUT2=$(mktemp)
CG=""
if [ "$(id -u)" = 0 ] && CG=$(cg_dir) && mkdir "$CG" 2>/dev/null; then
	trap 'for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 $p; done; sleep 0.2; rmdir "$CG" 2>/dev/null; rm -f "$OUT1" "$OUT2"' EXIT
	echo $((LIMIT_MIB << 20)) >"$CG/memory.limit_in_bytes"
	[ -f "$CG/memory.memsw.limit_in_bytes" ] && echo $((LIMIT_MIB << 20)) >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
	in_cg() { bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }
else
	CG=""
fi

bold "memfence demo: one oversized request in a container with ${LIMIT_MIB} MiB of memory"
echo
if [ -z "$CG" ]; then
	echo "No memory cgroup can be made here (this needs root and a cgroup v1 memory"
	echo "controller), so there is no container limit for the kernel to enforce."
	echo "What memfence still does: with an explicit --limit, the oversized request"
	echo "gets a MemoryError and the others complete."
	echo
	rule
	"$MEMFENCE" exec -v --limit ${LIMIT_MIB}M -- $PY "$SERVICE"
	exit $?
fi

rule
bold "1. Without memfence"
rule
k0=$(oom_kills "$CG")
in_cg $PY "$SERVICE" 2>&1 | tee "$OUT1"
rc1=${PIPESTATUS[0]}
k1=$(oom_kills "$CG")
echo
if [ $rc1 -ge 128 ]; then
	echo "=> the process died: exit status $rc1 (signal $((rc1 - 128))), cgroup oom_kill $k0 -> $k1"
else
	echo "=> exit status $rc1, cgroup oom_kill $k0 -> $k1"
fi
echo
rule
bold "2. Under memfence exec (no code change)"
rule
in_cg "$MEMFENCE" exec -v -- $PY "$SERVICE" 2>&1 | tee "$OUT2"
rc2=${PIPESTATUS[0]}
k2=$(oom_kills "$CG")
echo
echo "=> exit status $rc2, cgroup oom_kill $k1 -> $k2"
echo
rule
bold "Before and after"
rule
printf '%-28s %-22s %-22s\n' "" "without memfence" "with memfence exec"
printf '%-28s %-22s %-22s\n' "process" \
	"$([ $rc1 -ge 128 ] && echo "killed (signal $((rc1 - 128)))" || echo "exit $rc1")" \
	"$([ $rc2 -ge 128 ] && echo "killed (signal $((rc2 - 128)))" || echo "exit $rc2")"
printf '%-28s %-22s %-22s\n' "kernel OOM kills" "$((k1 - k0))" "$((k2 - k1))"
printf '%-28s %-22s %-22s\n' "requests answered" "$(answered "$OUT1") of 13" "$(answered "$OUT2") of 13"
printf '%-28s %-22s %-22s\n' "oversized request" \
	"$(grep -q 'r-oversized.*MemoryError' "$OUT1" && echo MemoryError || echo "lost, no error")" \
	"$(grep -q 'r-oversized.*MemoryError' "$OUT2" && echo MemoryError || echo "lost, no error")"
echo
[ $rc2 -eq 0 ] && [ "$k2" = "$k1" ]
