#!/usr/bin/env bash
# `pip install ./python` with Debian's pip and setuptools (offline: no build
# isolation), into a throw-away virtual environment; the installed package
# imports, has the limits and the quarantine store (_host, which answers a
# check without starting a process), finds no shim, and has the tree's
# version.
. "$(dirname "$0")/../lib.sh"
"$PY" -m venv --help >/dev/null 2>&1 || skip "python3-venv is not installed"
src=$MF_TMP/src
mkdir -p "$src/src"
cp -r "$MF_ROOT_DIR/python" "$MF_ROOT_DIR/include" "$MF_ROOT_DIR/VERSION" "$src/"
cp -r "$MF_ROOT_DIR/src/base" "$MF_ROOT_DIR/src/host" "$MF_ROOT_DIR/src/store" "$src/src/"
rm -rf "$src/python/build" "$src/python/"*.egg-info
"$PY" -m venv --system-site-packages "$MF_TMP/venv" || fail "cannot make a virtual environment"
( cd "$src" && timeout 120 "$MF_TMP/venv/bin/pip" install --no-index --no-build-isolation ./python ) \
	>"$MF_TMP/pip.log" 2>&1 || { tail -20 "$MF_TMP/pip.log"; fail "pip install ./python failed"; }
out=$(cd "$MF_TMP" && "$MF_TMP/venv/bin/python" -c '
import memfence
print(memfence.__file__.startswith("'"$MF_TMP"'/venv/"), memfence._memfence.HAVE_LIMITS, memfence.shim_active())
with memfence.scope("x") as s:
    pass
print(s.figures.source)
from memfence import quarantine
st = quarantine.Store("sqlite:'"$MF_TMP"'/q.db")
print(quarantine._host is not None, st.check("t-1"), st.lookups + st.skipped)
import importlib.metadata
print(memfence.__version__, importlib.metadata.version("memfence"))')
v=$(cat "$MF_ROOT_DIR/VERSION")
expect_eq "installed package" "True 1 False
rss
True (False, None) 1
$v $v" "$out"
