#!/usr/bin/env bash
# The demonstration behind `make demo`: the example gRPC model server
# (examples/model_server) in a 512 MiB memory cgroup, under the same load —
# ordinary requests of 5-40 MiB at concurrency 16, and three requests that
# need 3000 MiB — once as it is, once under `memfence run` with no code
# change. Needs root to make the cgroup; without it, it shows what an
# explicit --limit still does.
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
B=${B:-build}
MEMFENCE=$TOP/$B/memfence
PY=/usr/bin/python3
EX=$TOP/examples/model_server
LIMIT_MIB=512
CALLS=${DEMO_CALLS:-160}
OVERSIZED=3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/memfence-demo.XXXXXX")
CG=""
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		sleep 0.3
		rmdir "$CG" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

if [ -t 1 ]; then bold() { printf '\033[1m%s\033[0m\n' "$*"; }; else bold() { printf '%s\n' "$*"; }; fi
rule() { printf '%s\n' "--------------------------------------------------------------------------"; }
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
oom_kills() { awk '$1 == "oom_kill" { print $2 }' "$CG/memory.oom_control"; }
in_cg() { bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }

make_cgroup() {
	local path
	[ "$(id -u)" = 0 ] || return 1
	grep -q ':memory:' /proc/self/cgroup && [ -d /sys/fs/cgroup/memory ] || return 1
	path=$(grep ':memory:' /proc/self/cgroup | head -n1 | cut -d: -f3-)
	CG=/sys/fs/cgroup/memory$path/memfence-demo-$$
	mkdir "$CG" 2>/dev/null || { CG=""; return 1; }
	echo $((LIMIT_MIB << 20)) >"$CG/memory.limit_in_bytes"
	[ -f "$CG/memory.memsw.limit_in_bytes" ] && echo $((LIMIT_MIB << 20)) >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
	return 0
}

# serve NAME CMD...: start the server (inside the cgroup when there is one),
# wait until it listens; sets SERVER_PID (the Python process) and PORT.
serve() {
	local name=$1 i
	shift
	PORT=$(free_port)
	rm -f "$TMP/ready"
	if [ -n "$CG" ]; then
		in_cg "$@" "$PY" "$EX/server.py" --port "$PORT" --ready-file "$TMP/ready" >"$TMP/$name.log" 2>&1 &
	else
		"$@" "$PY" "$EX/server.py" --port "$PORT" --ready-file "$TMP/ready" >"$TMP/$name.log" 2>&1 &
	fi
	PIDS+=($!)
	LAUNCHER=$!
	for i in $(seq 1 150); do [ -s "$TMP/ready" ] && break; sleep 0.2; done
	[ -s "$TMP/ready" ] || { cat "$TMP/$name.log"; echo "demo: the server did not start"; exit 1; }
	SERVER_PID=$(cat "$TMP/ready")
}

load() {
	timeout 300 "$PY" "$EX/loadgen.py" --target "127.0.0.1:$PORT" --calls "$CALLS" --concurrency 16 \
		--oversized "$OVERSIZED" --oversized-mib 3000 --server-pid "$SERVER_PID" --json "$TMP/$1.json" |
		sed 's/^/  /'
}

bold "memfence demo: a gRPC model server, ${LIMIT_MIB} MiB of memory, $OVERSIZED requests that need 3000 MiB"
echo
echo "Load: $CALLS calls at concurrency 16; each ordinary call builds 5-40 MiB of features,"
echo "the oversized ones keep loading history until memory runs out."
echo

if ! make_cgroup; then
	echo "No memory cgroup can be made here (that needs root and a cgroup v1 memory"
	echo "controller), so there is no container limit for the kernel to enforce. What"
	echo "memfence still does with an explicit limit:"
	echo
	rule
	bold "memfence run --limit ${LIMIT_MIB}M -- python3 server.py"
	rule
	serve run "$MEMFENCE" run --http off --limit ${LIMIT_MIB}M --
	load run
	kill -TERM "$LAUNCHER" 2>/dev/null
	wait "$LAUNCHER" 2>/dev/null
	exit 0
fi

rule
bold "1. Without memfence: python3 server.py"
rule
k0=$(oom_kills)
serve plain
load plain
wait "$LAUNCHER" 2>/dev/null
rc1=$?
k1=$(oom_kills)
echo "  => server exit status $rc1$([ $rc1 -gt 128 ] && echo " (signal $((rc1 - 128)))"), kernel OOM kills $((k1 - k0))"
echo

rule
bold "2. Under memfence run, no code change: memfence run -- python3 server.py"
rule
HTTP_PORT=$(free_port)
serve run "$MEMFENCE" run --http 127.0.0.1:$HTTP_PORT --report-dir "$TMP/reports" --
load run
curl -fsS "127.0.0.1:$HTTP_PORT/status" >"$TMP/status.json" 2>/dev/null || true
"$MEMFENCE" stat --json --last 1024 "$SERVER_PID" >"$TMP/stat.json" 2>/dev/null || true
k2=$(oom_kills)
alive=$(field "$TMP/run.json" server_alive)
echo "  => server $([ "$alive" = True ] && echo alive || echo dead), kernel OOM kills $((k2 - k1))"
echo
echo "  What memfence saw of the refused requests (memfence stat):"
"$PY" - "$TMP/stat.json" <<'EOF'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit("    (no figures: memfence stat could not read the segment)")
rows = [r for r in doc.get("finished", []) if r.get("outcome") != "ok"]
mib = lambda b: "%.0f MiB" % (b / 1048576)
for r in rows[:10]:
    print("    %-32s %-8s allocated %9s  peak %9s  refused allocations %d" % (
        r.get("name", "?"), r.get("id", "?"), mib(r.get("allocated", 0)), mib(r.get("peak", 0)),
        r.get("failed", 0)))
if not rows:
    print("    (none)")
EOF
echo
echo "  Why memory ran short (memfence diagnose, on the running server):"
sleep 3   # the supervisor saves what it learned every 2 s
{ "$MEMFENCE" diagnose "$SERVER_PID" 2>&1 || true; } | head -n 14 | sed 's/^/    /'
kill -TERM "$LAUNCHER" 2>/dev/null
wait "$LAUNCHER" 2>/dev/null
echo

rule
bold "Before and after"
rule
row() { printf '  %-34s %-20s %-20s\n' "$@"; }
row "" "without memfence" "memfence run"
row "server process" "$([ "$(field "$TMP/plain.json" server_alive)" = True ] && echo alive || echo "killed (OOM)")" \
	"$([ "$alive" = True ] && echo alive || echo "killed")"
row "kernel OOM kills" "$((k1 - k0))" "$((k2 - k1))"
row "ordinary calls answered OK" "$(field "$TMP/plain.json" ok) of $((CALLS - OVERSIZED))" \
	"$(field "$TMP/run.json" ok) of $((CALLS - OVERSIZED))"
row "calls lost with the process" "$(field "$TMP/plain.json" lost_to_death)" "$(field "$TMP/run.json" lost_to_death)"
row "oversized calls" "lost, no error" "$(field "$TMP/run.json" oversized_failed) x RESOURCE_EXHAUSTED"
echo
echo "RESOURCE_EXHAUSTED carries grpc-retry-pushback-ms: a client with the retry policy in"
echo "examples/model_server/retry_service_config.json retries it, here or on another replica."
[ "$alive" = True ] && [ "$k2" = "$k1" ]
