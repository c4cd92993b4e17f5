#!/usr/bin/env bash
# The profiler reads Python frames and samples pymalloc's objects on each
# CPython it supports (3.11, 3.12, 3.13): the same script, profiled under
# every such interpreter found here, has the same top Python function, the
# same frames and, within 10 %, the python-heap bytes of 3.11. Interpreters
# are Debian's python3 and pyenv's (or, without pyenv, the usual places);
# an absent version is named and skipped, but with MEMFENCE_TEST_STRICT=1
# a 3.12 or 3.13 that pyenv has and the test could not use is a failure.
# Interpreters it does not read (free-threaded builds, unknown versions)
# are told apart in the profile's header, with a stand-in program. The
# script is profile_rows.py.
. "$(dirname "$0")/../lib.sh"

CHECK="$PY $MF_ROOT_DIR/tests/integration/profile_check.py"
cd "$MF_TMP" || fail "no temp dir"

# --- the interpreters: one per minor version, the newest patch release ---
cands=("$PY")
pyenv_root=
command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root 2>/dev/null)
[ -n "$pyenv_root" ] || pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for m in 11 12 13; do
	# sort -V puts 3.13.10 after 3.13.9; "t" directories are free-threaded.
	d=$(ls -d "$pyenv_root"/versions/3.$m.[0-9]* 2>/dev/null | grep -v 't$' | sort -V | tail -n1)
	if [ -n "$d" ]; then
		cands+=("$d/bin/python3.$m")
	else
		for c in /usr/bin/python3.$m /usr/local/bin/python3.$m /opt/python/3.$m*/bin/python3.$m; do
			[ -x "$c" ] && { cands+=("$c"); break; }
		done
	fi
done
declare -A by_minor
for c in "${cands[@]}"; do
	v=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
	[ -n "${by_minor[$v]:-}" ] || by_minor[$v]=$c
done
for v in 3.11 3.12 3.13; do
	[ -n "${by_minor[$v]:-}" ] && continue
	ls -d "$pyenv_root/versions/$v".[0-9]* >/dev/null 2>&1 && [ "${MEMFENCE_TEST_STRICT:-0}" = 1 ] &&
		fail "pyenv ($pyenv_root) has Python $v but it could not be run"
	echo "note: no Python $v found here; it is not tested" >&2
done

ROWS=$MF_ROOT_DIR/tests/integration/profile_rows.py

# --- each interpreter, 3.11 (the reference) first ---
ref=-
ran=0
for v in 3.11 3.12 3.13; do
	py=${by_minor[$v]:-}
	[ -n "$py" ] || continue
	timeout 120 "$MEMFENCE" profile --rate 16K -o "$v.prof" -- "$py" "$ROWS" 2>"$v.err" ||
		fail "profile under Python $v ($py): $(cat "$v.err")"
	"$MEMFENCE" profile report "$v.prof" --format json >"$v.json" || fail "json report ($v)"
	$CHECK pyversion "$v.json" "$ROWS" "$ref" >"$v.check" ||
		fail "Python $v ($py): $(cat "$v.check")"
	sed "s/^/$v: /" "$v.check"
	[ "$ref" = - ] && ref=$(awk '$1 == "python-heap" { print $2 }' "$v.check")
	expect_match "domains line ($v)" "allocator hook\); frames of Python $v\." \
		"$("$MEMFENCE" profile report "$v.prof" --top 1)"
	ran=$((ran + 1))
done
[ "$ran" -ge 1 ] || fail "no Python interpreter could be profiled"

# A free-threaded build, where there is one: not read, and said so.
ft=$(ls "$pyenv_root"/versions/3.1[3-9]*t/bin/python3.1[3-9]t 2>/dev/null | head -n1)
if [ -n "$ft" ]; then
	timeout 120 "$MEMFENCE" profile -o ft.prof -- "$ft" "$ROWS" 2>ft.err || fail "profile under $ft: $(cat ft.err)"
	expect_match "python line ($ft)" '^python 0 3\.[0-9.]+ free-threaded$' "$(grep -a '^python ' ft.prof)"
fi

# --- interpreters whose frames are not read: no crash, a header that says why ---
cat >stand-in.c <<'CEOF'
/* Exports what the profiler looks at in a CPython: Py_Version and the head
 * of 3.13's _Py_DebugOffsets at the start of _PyRuntime. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const unsigned long Py_Version = PYV;
struct {
	char cookie[8];
	uint64_t version, free_threaded;
	uint64_t rest[64];
} _PyRuntime = {COOKIE, PYV, FT, {0}};

int main(void)
{
	for (int i = 0; i < 200; i++) {
		char *volatile p = malloc(1 << 20);
		memset(p, 1, 1 << 20);
		free(p);
	}
	return 0;
}
CEOF
# Py_Version, cookie, free_threaded | the profile's "python" line | its reason in the report
while IFS='|' read -r spec line why; do
	read -r hex cookie ft <<<"$spec"
	${CC:-cc} -rdynamic -DPYV="$hex" -DCOOKIE="\"$cookie\"" -DFT="$ft" -o stand-in stand-in.c ||
		fail "cannot build the stand-in interpreter"
	timeout 60 "$MEMFENCE" profile -o s.prof -- ./stand-in 2>s.err || fail "stand-in $spec: $(cat s.err)"
	expect_eq "python line ($spec)" "python $line" "$(grep -a '^python ' s.prof)"
	expect_match "domains line ($spec)" "$why.*; no Python frames or small objects\)" \
		"$("$MEMFENCE" profile report s.prof --top 1)"
done <<'EOF'
0x030d00f0 xdebugpy 1|0 3.13.0 free-threaded|Python 3.13.0: a free-threaded build
0x030e00a1 xdebugpy 0|0 3.14.0 unsupported|Python 3.14.0: a version whose frame layout
0x030d01f0 xdebugpy 0|0 3.13.1 mismatch|Python 3.13.1: it does not match the layout
0x030d00f0 nocookie 0|0 3.13.0 mismatch|Python 3.13.0: it does not match the layout
EOF
if [ -z "${by_minor[3.12]:-}${by_minor[3.13]:-}" ]; then
	echo "skipped: neither Python 3.12 nor 3.13 is here; only ${!by_minor[*]} was profiled" >&2
	exit 77
fi
echo "profile_pyversions: ok (Python ${!by_minor[*]})"
