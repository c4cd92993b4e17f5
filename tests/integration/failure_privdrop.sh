#!/usr/bin/env bash
# A program that drops its privileges keeps its accounting: `memfence run
# -- setpriv --reuid=65534 ...` runs the program as nobody, which cannot
# open the segment (mode 0600, root's). The supervisor hands the program
# the segment's open descriptor (MEMFENCE_SEGMENT_FD, checked against the
# file's device and inode): /status shows the scopes of the program and of
# a child it exec'd keeping the descriptor, and their deaths reach the
# quarantine. A child exec'd with its descriptors closed counts in private
# memory (docs/failure.md).
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
mf_need_setpriv
command -v curl >/dev/null || skip "no curl"
chmod 755 "$MF_TMP"
unset MEMFENCE_QUARANTINE MEMFENCE_STATE_DIR MEMFENCE_QUARANTINE_RECORDER

cat >"$MF_TMP/prog.py" <<'PY'
import ctypes, os, subprocess, sys, time
lib = ctypes.CDLL(None)
assert os.getuid() == 65534, os.getuid()
role = sys.argv[1]
lib.memfence_scope_begin(("task " + role).encode(), ("t-priv-" + role).encode(), ctypes.c_size_t(0))
x = b"\x01" * (8 << 20)
if role == "main":
    kids = [subprocess.Popen([sys.executable, __file__, "kept"], close_fds=False),
            subprocess.Popen([sys.executable, __file__, "closed"], close_fds=True)]
    print("kids", " ".join(str(k.pid) for k in kids), flush=True)
time.sleep(60)
PY
PORT=$(mf_free_port)
SD=$MF_TMP/state
"$MEMFENCE" run --http 127.0.0.1:$PORT --state-dir "$SD" -- \
	setpriv --reuid=65534 --regid=65534 --clear-groups $PY "$MF_TMP/prog.py" main \
	>"$MF_TMP/out" 2>"$MF_TMP/err" &
SUP=$!
MF_PIDS+=("$SUP")
status() { curl -s --max-time 2 "http://127.0.0.1:$PORT/status"; }
for i in $(seq 100); do
	status >"$MF_TMP/status" 2>/dev/null
	grep -q t-priv-main "$MF_TMP/status" && grep -q t-priv-kept "$MF_TMP/status" && break
	sleep 0.1
done
kids=$(sed -n 's/^kids //p' "$MF_TMP/out")
for k in $kids; do MF_PIDS+=("$k"); done
$PY - "$MF_TMP/status" <<'PY' || fail "scopes after a privilege drop: $(cat "$MF_TMP/err")"
import json, sys
st = json.load(open(sys.argv[1]))
ids = sorted(s["id"] for s in st["in_flight"])
assert st["heap"]["accounting"] is True, st["heap"]
assert ids == ["t-priv-kept", "t-priv-main"], ids
assert st["heap"]["live"] >= 16 << 20, st["heap"]
PY
[ -f "$SD/segment.seg" ] || fail "no segment in the state directory"
expect_eq "segment mode" 600 "$(stat -c %a "$SD/segment.seg")"
# The descriptor went where it was needed only.
main=$(pgrep -P "$SUP")
set -- $kids
for p in "$main" "$1"; do
	ls -l /proc/$p/fd | grep -q "segment.seg" || fail "pid $p has no descriptor of the segment"
done
ls -l /proc/$2/fd | grep -q "segment.seg" && fail "the child exec'd with close_fds has the segment's descriptor"

# Deaths reach the quarantine: the exec'd child's, then the program's.
kill -KILL "$1"
sleep 1
kill -KILL "$main"
for i in $(seq 50); do kill -0 "$SUP" 2>/dev/null || break; sleep 0.1; done
wait "$SUP"
kill -KILL "$2" 2>/dev/null
"$MEMFENCE" quarantine --state-dir "$SD" list >"$MF_TMP/q" 2>&1 || fail "quarantine list: $(cat "$MF_TMP/q")"
grep -q "t-priv-main" "$MF_TMP/q" || fail "the program's death is not in the quarantine: $(cat "$MF_TMP/q") $(cat "$MF_TMP/err")"
grep -q "t-priv-kept" "$MF_TMP/q" || fail "the exec'd child's death is not in the quarantine: $(cat "$MF_TMP/q") $(cat "$MF_TMP/err")"
exit 0
