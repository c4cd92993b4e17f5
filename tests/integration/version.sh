#!/usr/bin/env bash
# One version: VERSION, and what is made from it, agree (the installed
# Python package's metadata is checked by python_pip_install.sh).
. "$(dirname "$0")/../lib.sh"
v=$(cat "$MF_ROOT_DIR/VERSION")
expect_match "VERSION" '^[0-9]+\.[0-9]+\.[0-9]+$' "$v"
expect_eq "memfence --version" "memfence $v" "$("$MEMFENCE" --version)"
expect_eq "memfence -V" "memfence $v" "$("$MEMFENCE" -V)"
expect_eq "pkg-config file" "Version: $v" "$(grep '^Version:' "$MF_BUILD/memfence.pc")"
out=$(PYTHONPATH=$MF_BUILD/python "$PY" -c 'import memfence; print(memfence.__version__)') ||
	fail "the Python package does not import (make python)"
expect_eq "memfence.__version__" "$v" "$out"
# The man page is installed as it is: its header says the version in words.
expect_eq "man page header" "memfence $v" \
	"$(sed -n 's/^\.TH MEMFENCE 1 "[^"]*" "\([^"]*\)".*/\1/p' "$MF_ROOT_DIR/docs/memfence.1")"
# No copy of the number where a file could read it instead.
grep -n '^version *=' "$MF_ROOT_DIR/python/pyproject.toml" && fail "pyproject.toml writes the version"
grep -n '__version__ = "' "$MF_ROOT_DIR/python/memfence/__init__.py" && fail "__init__.py writes the version"
exit 0
