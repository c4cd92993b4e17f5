#!/usr/bin/env bash
# memfence run --profile: the program's heap is sampled and its snapshots
# land beside the post-mortems, where `memfence profile report` reads them
# after the program has gone.
. "$(dirname "$0")/../lib.sh"

R=$MF_TMP/reports
cat >"$MF_TMP/app.py" <<'PY'
def build_features():
    return [bytearray(256 << 10) for _ in range(400)]   # 100 MiB in one place

def small_talk():
    return [bytearray(4096) for _ in range(100)]

kept = build_features()
chat = small_talk()
print("done", len(kept), len(chat))
PY
"$MEMFENCE" run --http off --profile --report-dir "$R" -- $PY "$MF_TMP/app.py" >"$MF_TMP/out" 2>&1 ||
	fail "run --profile failed: $(cat "$MF_TMP/out")"
prof=$(ls "$R"/memfence-*.prof 2>/dev/null | head -n1)
[ -n "$prof" ] || fail "no profile in $R: $(ls -la "$R"; cat "$MF_TMP/out")"
"$MEMFENCE" profile report "$prof" --format text --view allocated >"$MF_TMP/report" ||
	fail "profile report failed on $prof"
grep -q "build_features" "$MF_TMP/report" || fail "the top site is not named: $(head -30 "$MF_TMP/report")"

# MEMFENCE_PROFILE=1 is the same switch; profiling needs the accounting library.
rm -rf "$R"
MEMFENCE_PROFILE=1 "$MEMFENCE" run --http off --report-dir "$R" -- $PY -c 'x = bytearray(8 << 20)' >/dev/null 2>&1 ||
	fail "run with MEMFENCE_PROFILE=1 failed"
ls "$R"/memfence-*.prof >/dev/null 2>&1 || fail "MEMFENCE_PROFILE=1 wrote no profile"
"$MEMFENCE" run --http off --profile --no-account -- true 2>"$MF_TMP/err"
expect_eq "--profile --no-account" 2 $?
grep -q "needs accounting" "$MF_TMP/err" || fail "no reason given: $(cat "$MF_TMP/err")"
echo "run --profile: ok"
