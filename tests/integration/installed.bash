# Helpers of the tests of an installed memfence (wheel.sh, deb.sh), sourced
# after lib.sh. Nothing of the build tree is in the environment they give a
# command: PATH is PREFIX/bin and the system's, no PYTHONPATH, no
# LD_LIBRARY_PATH, no MEMFENCE_*.

# mf_clean PREFIX CMD...: CMD in that environment.
mf_clean() {
	local prefix=$1
	shift
	env -i PATH="$prefix/bin:/usr/bin:/bin" HOME="$MF_TMP/home" TMPDIR="$MF_TMP" "$@"
}

# mf_installed_run PREFIX PYTHON PACKAGE_DIR: PREFIX/bin/memfence run, in
# the cgroup $MF_CG, of PYTHON importing memfence and asking for 1 GiB; the
# package comes from PACKAGE_DIR, the bootstrap and the shim from
# PREFIX/lib/memfence, and the allocation is a MemoryError.
mf_installed_run() {
	local prefix=$1 python=$2 pkg=$3
	mf_bounded 120 "memfence run from $prefix/bin" bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
		"$MF_CG" env -i PATH="$prefix/bin:/usr/bin:/bin" HOME="$MF_TMP/home" \
		memfence run --http off -- "$python" -c '
import os, memfence
print(memfence.__file__, memfence.shim_active())
print(os.environ["PYTHONPATH"], os.environ["LD_PRELOAD"])
try:
    b = bytearray(1 << 30)
    print("allocated")
except MemoryError:
    print("MemoryError")
'
	[ "$rc" = 0 ] || fail "memfence run from $prefix/bin: exit $rc: $(cat "$MF_TMP/err")"
	expect_eq "memfence run from $prefix/bin" "$pkg/__init__.py True
$prefix/lib/memfence/python/memfence/_bootstrap $prefix/lib/memfence/libmemfence.so
MemoryError" "$(cat "$MF_TMP/out")"
}
