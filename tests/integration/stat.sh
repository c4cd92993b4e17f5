#!/usr/bin/env bash
# memfence stat: a live process by PID (its own memfd segment), a segment
# file while its writer runs and after it was killed, JSON, --watch, and
# clear errors for bad input.
. "$(dirname "$0")/../lib.sh"

SHIM=$MF_BUILD/libmemfence.so
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -x "$PY" ] || skip "$PY is not installed"

# A program that finishes one scope, opens another holding 5 MiB, says
# so, and waits to be killed.
cat >"$MF_TMP/hold.py" <<'PYEOF'
import ctypes, sys, time
lib = ctypes.CDLL(None)
lib.memfence_scope_begin.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
assert lib.memfence_active() == 1
lib.memfence_scope_begin(b"warmup", b"w-1", 0)
x = bytearray(3 << 20)
lib.memfence_scope_end(None)
lib.memfence_scope_begin(b"upload", b"req-42", 100 << 20)
held = bytearray(5 << 20)
lib.memfence_process_stats(None)  # flush this thread's counts
open(sys.argv[1], "w").write("ready")
time.sleep(120)
PYEOF

start_holder() { # start_holder READYFILE [env...]
	local ready=$1
	shift
	env "$@" LD_PRELOAD="$SHIM" "$PY" "$MF_TMP/hold.py" "$ready" &
	MF_PIDS+=($!)
	HOLDER=$!
	for _ in $(seq 100); do [ -s "$ready" ] && return 0; sleep 0.1; done
	fail "the program under the shim did not start"
}

jq_py() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- by PID: the shim's own segment, found through /proc/PID/fd
start_holder "$MF_TMP/ready1"
out=$("$MEMFENCE" stat "$HOLDER") || fail "stat PID failed"
echo "$out"
expect_match "slot line" "^ +0 live +$HOLDER python3" "$(echo "$out" | grep ' live ')"
expect_match "scope in flight" "tid $HOLDER  upload req-42  net 5.0 MiB .* budget 100 MiB" "$out"
expect_match "finished scope" "warmup w-1  ok  allocated 3.0 MiB" "$out"
json=$("$MEMFENCE" stat --json "$HOLDER") || fail "stat --json failed"
expect_eq "json pid" "$HOLDER" "$(echo "$json" | jq_py 'd["processes"][0]["pid"]')"
expect_eq "json scope id" "req-42" "$(echo "$json" | jq_py 'd["processes"][0]["in_flight"][0]["id"]')"
expect_eq "json scope net" $((5 << 20)) "$(echo "$json" | jq_py 'd["processes"][0]["in_flight"][0]["net"] - d["processes"][0]["in_flight"][0]["net"] % 4096')"
expect_eq "json finished" "warmup" "$(echo "$json" | jq_py 'd["finished"][0]["name"]')"
live=$(echo "$json" | jq_py 'd["processes"][0]["live"]')
[ "$live" -ge $((8 << 20)) ] || fail "live bytes $live below what the program holds"
# --watch with a count: that many snapshots
n=$("$MEMFENCE" stat --json --watch=0.1 --count 3 "$HOLDER" | wc -l)
expect_eq "watch snapshots" 3 "$n"
kill -9 "$HOLDER"; wait "$HOLDER" 2>/dev/null

# --- a segment file, live and after the writer was killed
SEG=$MF_TMP/app.seg
start_holder "$MF_TMP/ready2" MEMFENCE_SEGMENT="$SEG"
[ -f "$SEG" ] || fail "the shim did not create $SEG"
out=$("$MEMFENCE" stat "$SEG") || fail "stat SEGMENT failed"
expect_match "live writer" "^ +0 live +$HOLDER" "$(echo "$out" | grep " $HOLDER ")"
out=$("$MEMFENCE" stat "$HOLDER") || fail "stat PID with a segment file failed"
expect_match "PID finds the file" "^segment $SEG " "$out"
kill -9 "$HOLDER"; wait "$HOLDER" 2>/dev/null
out=$("$MEMFENCE" stat "$SEG") || fail "stat after the writer died failed"
echo "$out"
expect_match "dead writer" "^ +0 dead +$HOLDER" "$(echo "$out" | grep " $HOLDER ")"
expect_match "its scope is still there" "upload req-42  net 5.0 MiB" "$out"
# stat never marks anything: still dead, not read
expect_eq "stat is read-only" dead "$("$MEMFENCE" stat --json "$SEG" | jq_py 'd["processes"][0]["state"]')"
# a second process takes another slot; an exited one says so
MEMFENCE_SEGMENT="$SEG" LD_PRELOAD="$SHIM" "$PY" -c 'import ctypes; l=ctypes.CDLL(None); l.memfence_scope_begin(b"x", b"y", 0); l.memfence_scope_end(None)'
out=$("$MEMFENCE" stat --json "$SEG")
expect_eq "second slot exited" exited "$(echo "$out" | jq_py 'd["processes"][1]["state"]')"
expect_eq "two finished scopes" 2 "$(echo "$out" | jq_py 'd["scopes_finished"]')"
# --last: how many of the newest finished scopes to list
MEMFENCE_SEGMENT="$SEG" LD_PRELOAD="$SHIM" "$PY" -c '
import ctypes; l=ctypes.CDLL(None)
for i in range(30): l.memfence_scope_begin(b"many", b"m-%d" % i, 0); l.memfence_scope_end(None)'
out=$("$MEMFENCE" stat --json "$SEG")
expect_eq "default: 20 finished listed" 20 "$(echo "$out" | jq_py 'len(d["finished"])')"
out=$("$MEMFENCE" stat --json --last 25 "$SEG")
expect_eq "--last 25" 25 "$(echo "$out" | jq_py 'len(d["finished"])')"
expect_eq "--last 25 newest last" m-29 "$(echo "$out" | jq_py 'd["finished"][-1]["id"]')"
out=$("$MEMFENCE" stat --json --last 0 "$SEG")
expect_eq "--last 0" 0 "$(echo "$out" | jq_py 'len(d["finished"])')"
"$MEMFENCE" stat --last many "$SEG" 2>"$MF_TMP/err"; expect_eq "bad --last" 2 $?

# an exec'd program replaces its slot: the image before exec shows exited
SEG2=$MF_TMP/exec.seg
MEMFENCE_SEGMENT="$SEG2" LD_PRELOAD="$SHIM" sh -c 'exec '"$PY"' -c "import ctypes; ctypes.CDLL(None).memfence_process_stats(None)"'
out=$("$MEMFENCE" stat --json "$SEG2")
expect_eq "slot before exec" "exited sh" "$(echo "$out" | jq_py 'd["processes"][0]["state"] + " " + d["processes"][0]["comm"]')"
expect_eq "slot after exec" "exited python3" "$(echo "$out" | jq_py 'd["processes"][1]["state"] + " " + d["processes"][1]["comm"]')"

# --- bad input
"$MEMFENCE" stat 2>"$MF_TMP/err"; expect_eq "no target" 2 $?
"$MEMFENCE" stat /etc/hostname 2>"$MF_TMP/err"; expect_eq "not a segment" 1 $?
expect_match "not a segment message" "not a memfence stats segment" "$(cat "$MF_TMP/err")"
"$MEMFENCE" stat "$MF_TMP/none.seg" 2>"$MF_TMP/err"; expect_eq "missing file" 1 $?
expect_match "missing file message" "no such segment file" "$(cat "$MF_TMP/err")"
"$MEMFENCE" stat $$ 2>"$MF_TMP/err"; expect_eq "process without the shim" 1 $?
expect_match "no segment message" "has no memfence stats segment" "$(cat "$MF_TMP/err")"
"$MEMFENCE" stat --watch=fast 1 2>"$MF_TMP/err"; expect_eq "bad interval" 2 $?
"$MEMFENCE" stat --count 2 1 2>"$MF_TMP/err"; expect_eq "count without watch" 2 $?
echo "stat: ok"
