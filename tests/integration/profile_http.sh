#!/usr/bin/env bash
# memfence run --profile serves the program's heap profile where Parca and
# Grafana Alloy scrape it: /debug/pprof/heap (in use) and /debug/pprof/allocs
# (allocated), gzipped pprof with Go's four sample types, every process of
# the program merged or one with ?pid=N, scopes as labels. A program whose
# processes do not answer costs a scrape the documented bound, not a hang,
# and the probes keep answering meanwhile; hostile queries get 400.
. "$(dirname "$0")/../lib.sh"

CHECK="$PY $MF_ROOT_DIR/tests/integration/profile_pprof.py"
R=$MF_TMP/reports
PORT=$(mf_free_port)
URL=http://127.0.0.1:$PORT
cat >"$MF_TMP/app.py" <<'PY'
import os, sys, time
import memfence

def build_features():
    out = []
    for _ in range(240):
        out.append(bytearray(256 << 10))   # 60 MiB held, in one place
    return out

def small_talk():
    return [bytearray(4096) for _ in range(100)]

with memfence.scope("/features/<id>"):
    kept = build_features()
chat = small_talk()
# A second process of the program, holding its own memory.
def child_cache():
    out = []
    for _ in range(64):
        out.append(bytearray(64 << 10))
    return out

if os.fork() == 0:
    more = child_cache()
    time.sleep(120)
    os._exit(0)
open(sys.argv[1], "w").write("ready")
time.sleep(120)
PY
"$MEMFENCE" run --http "127.0.0.1:$PORT" --profile --report-dir "$R" -- \
	$PY "$MF_TMP/app.py" "$MF_TMP/ready" >"$MF_TMP/out" 2>&1 &
SUP=$!
MF_PIDS+=("$SUP")
for _ in $(seq 100); do [ -s "$MF_TMP/ready" ] && break; sleep 0.1; done
[ -s "$MF_TMP/ready" ] || fail "the program did not start: $(cat "$MF_TMP/out")"
# Both processes are in the segment once each has allocated.
for _ in $(seq 50); do
	n=$(curl -s --max-time 5 "$URL/status" | $PY -c 'import json,sys; print(sum(p["alive"] for p in json.load(sys.stdin)["processes"]))' 2>/dev/null)
	[ "${n:-0}" -ge 2 ] && break
	sleep 0.1
done
[ "${n:-0}" -ge 2 ] || fail "the program's two processes are not in /status"

scrape() { # PATH FILE: the HTTP status, the body into FILE, headers into FILE.h
	curl -s --max-time 30 -D "$2.h" -o "$2" -w '%{http_code}' "$URL$1"
}
expect_eq "heap status" 200 "$(scrape /debug/pprof/heap "$MF_TMP/heap.pb.gz")"
grep -qi '^content-type: application/octet-stream' "$MF_TMP/heap.pb.gz.h" || fail "heap content type: $(cat "$MF_TMP/heap.pb.gz.h")"
grep -qi '^x-memfence-snapshot-age: 0' "$MF_TMP/heap.pb.gz.h" || fail "the heap profile is not fresh: $(cat "$MF_TMP/heap.pb.gz.h")"
$CHECK "$MF_TMP/heap.pb.gz" build_features >"$MF_TMP/heap.txt" || fail "heap profile: $(cat "$MF_TMP/heap.txt")"
grep -qx "default inuse_space" "$MF_TMP/heap.txt" || fail "heap default type: $(cat "$MF_TMP/heap.txt")"
grep -qx "label scope" "$MF_TMP/heap.txt" || fail "no scope label: $(cat "$MF_TMP/heap.txt")"
grep -qx "label pid" "$MF_TMP/heap.txt" || fail "no pid label: $(cat "$MF_TMP/heap.txt")"
expect_eq "allocs status" 200 "$(scrape /debug/pprof/allocs "$MF_TMP/allocs.pb.gz")"
$CHECK "$MF_TMP/allocs.pb.gz" build_features >"$MF_TMP/allocs.txt" || fail "allocs profile: $(cat "$MF_TMP/allocs.txt")"
grep -qx "default alloc_space" "$MF_TMP/allocs.txt" || fail "allocs default type: $(cat "$MF_TMP/allocs.txt")"

# Merged: both processes' samples; ?pid=N: the forked child's alone.
read -r MAIN CHILD < <(curl -s --max-time 5 "$URL/status" | $PY -c '
import json, sys
ps = [p for p in json.load(sys.stdin)["processes"] if p["alive"]]
ps.sort(key=lambda p: p["ppid"] in [q["pid"] for q in ps])
print(ps[0]["pid"], ps[1]["pid"])')
[ -n "$CHILD" ] || fail "no child pid in /status"
pids_of() { # FILE: the pid labels of its samples, sorted, on one line
	PYTHONPATH=$MF_ROOT_DIR/tests/integration $PY - "$1" <<'PY'
import gzip, sys
from profile_pprof import build
p = build()()
p.ParseFromString(gzip.decompress(open(sys.argv[1], "rb").read()))
print(*sorted({l.num for s in p.sample for l in s.label if p.string_table[l.key] == "pid"}))
PY
}
expect_eq "processes merged" "$(printf '%s\n' "$MAIN" "$CHILD" | sort -n | xargs)" "$(pids_of "$MF_TMP/heap.pb.gz")"
grep -q '^child_cache ' "$MF_TMP/heap.txt" || fail "the merged profile misses the child's site: $(cat "$MF_TMP/heap.txt")"
expect_eq "one process" 200 "$(scrape "/debug/pprof/heap?pid=$CHILD" "$MF_TMP/child.pb.gz")"
expect_eq "one process's samples" "$CHILD" "$(pids_of "$MF_TMP/child.pb.gz")"
$CHECK "$MF_TMP/child.pb.gz" build_features >"$MF_TMP/child.txt" || fail "child profile: $(cat "$MF_TMP/child.txt")"
grep -q '^child_cache ' "$MF_TMP/child.txt" || fail "?pid=$CHILD misses its site: $(cat "$MF_TMP/child.txt")"
expect_eq "the other process" 200 "$(scrape "/debug/pprof/heap?pid=$MAIN" "$MF_TMP/main.pb.gz")"
$CHECK "$MF_TMP/main.pb.gz" build_features >"$MF_TMP/main.txt" || fail "main profile: $(cat "$MF_TMP/main.txt")"
grep -q '^child_cache ' "$MF_TMP/main.txt" && fail "?pid=$MAIN holds the child's site: $(cat "$MF_TMP/main.txt")"

# Hostile or odd queries: 400 with a reason, and the server goes on.
for q in "pid=1" "pid=0" "pid=-5" "pid=99999999999999999999" "pid=12a" "pid=" "pid" \
	"pid=$MAIN&pid=$CHILD" "seconds=30" "x=%1b%5b31m" "$(printf 'a%.0s' $(seq 2000))=1"; do
	code=$(curl -s --max-time 10 -o "$MF_TMP/body" -w '%{http_code}' "$URL/debug/pprof/heap?$q")
	expect_eq "query '${q:0:40}'" 400 "$code"
	[ "$(wc -l <"$MF_TMP/body")" = 1 ] || fail "query '${q:0:40}': not one line: $(head -c 300 "$MF_TMP/body")"
	grep -q $'\x1b' "$MF_TMP/body" && fail "query '${q:0:40}': the reason echoes an escape"
done
expect_eq "unknown profile" 404 "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$URL/debug/pprof/goroutine")"
expect_eq "POST" 405 "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$URL/debug/pprof/heap")"

# Processes that do not answer (stopped): every concurrent scrape gets the
# newest snapshots with their age once the bound has passed, and /livez
# answers meanwhile.
kill -STOP "$MAIN" "$CHILD"
sleep 1.2
for i in 1 2 3; do
	curl -s --max-time 30 -D "$MF_TMP/s$i.h" -o "$MF_TMP/s$i" -w '%{http_code}' "$URL/debug/pprof/heap" >"$MF_TMP/s$i.code" &
	MF_PIDS+=($!)
done
sleep 0.3
code=$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$URL/livez")
[ "$code" = 200 ] || [ "$code" = 503 ] || fail "/livez did not answer while profiles were taken ($code)"
wait "${MF_PIDS[@]: -3}"
kill -CONT "$MAIN" "$CHILD"
for i in 1 2 3; do
	expect_eq "scrape $i of a stopped program" 200 "$(cat "$MF_TMP/s$i.code")"
	age=$(awk -F': ' 'tolower($1) == "x-memfence-snapshot-age" { print $2 + 0 }' "$MF_TMP/s$i.h")
	[ "${age:-0}" -ge 1 ] || fail "scrape $i: no age on an old snapshot: $(cat "$MF_TMP/s$i.h")"
	$CHECK "$MF_TMP/s$i" build_features >/dev/null || fail "scrape $i: not the program's profile"
done
kill "$SUP"
wait "$SUP" 2>/dev/null

# Without --profile: 404 with its reason.
"$MEMFENCE" run --http "127.0.0.1:$PORT" --report-dir "$R" -- sleep 60 >/dev/null 2>&1 &
SUP=$!
MF_PIDS+=("$SUP")
for _ in $(seq 100); do curl -s --max-time 1 "$URL/livez" >/dev/null && break; sleep 0.1; done
code=$(curl -s --max-time 10 -o "$MF_TMP/body" -w '%{http_code}' "$URL/debug/pprof/heap")
expect_eq "without --profile" 404 "$code"
grep -q -- "--profile" "$MF_TMP/body" || fail "no reason: $(cat "$MF_TMP/body")"
kill "$SUP"
wait "$SUP" 2>/dev/null
echo "profile over HTTP: ok"
