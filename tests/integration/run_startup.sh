#!/usr/bin/env bash
# What `memfence run` does at start-up and exit that a short program pays
# for: the command does not load libmicrohttpd (and GnuTLS behind it) unless
# its HTTP server starts, and the supervisor writes its files (the model,
# the journal) whole, not one JSON token per write(2). Counted with strace;
# no timing.
. "$(dirname "$0")/../lib.sh"

command -v strace >/dev/null || skip "strace is not installed"
[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"

# trace ARGS...: the run under strace -f, its trace in $MF_TMP/trace.
trace() {
	strace -f -qq -e trace=openat,write -o "$MF_TMP/trace" \
		"$MEMFENCE" run --report-dir "$MF_TMP/reports" --state-dir "$MF_TMP/state" "$@" \
		-- true 2>"$MF_TMP/err" || fail "run $*: $(cat "$MF_TMP/err")"
}

trace --http off
if grep -q 'libmicrohttpd' "$MF_TMP/trace"; then
	fail "--http off: libmicrohttpd was loaded: $(grep -m1 libmicrohttpd "$MF_TMP/trace")"
fi
echo "ok --http off: libmicrohttpd not loaded"

# Every write(2) of the run (the supervisor's files; true writes nothing).
n=$(grep -c ' write(' "$MF_TMP/trace")
[ "$n" -le 20 ] || fail "--http off: $n write() calls for a run of true (at most 20 expected): \
$(grep ' write(' "$MF_TMP/trace" | head -n 5)"
$PY -c 'import json, sys; assert json.load(open(sys.argv[1]))["memfence_model"] == 1' \
	"$MF_TMP/state/model.json" || fail "the model file is not whole: $(ls -l "$MF_TMP/state")"
echo "ok $n write() calls for the run's files"

port=$(mf_free_port)
trace --http "127.0.0.1:$port"
grep -q 'libmicrohttpd' "$MF_TMP/trace" || fail "--http on: libmicrohttpd was not loaded"
echo "ok --http 127.0.0.1:$port: libmicrohttpd loaded when the server starts"
