#!/usr/bin/env bash
# make install / uninstall under DESTDIR and PREFIX, and the installed files
# in use: the command finds its preload libraries, pkg-config builds a program
# against the public header and library.
. "$(dirname "$0")/../lib.sh"

dest=$MF_TMP/dest
make -s -C "$MF_ROOT_DIR" B="$MF_BUILD" install DESTDIR="$dest" PREFIX=/opt/mf >"$MF_TMP/log" 2>&1 ||
	fail "make install failed: $(tail -n 20 "$MF_TMP/log")"
for f in bin/memfence lib/libmemfence.so lib/libmemfence.so.0 lib/memfence/libmemfence-stack.so \
	include/memfence.h lib/pkgconfig/memfence.pc share/man/man1/memfence.1; do
	[ -e "$dest/opt/mf/$f" ] || fail "install did not create $f"
done

# The relocated command finds the stack library beside it (PREFIX/lib/memfence).
out=$(env -u MEMFENCE_LIBDIR "$dest/opt/mf/bin/memfence" exec --limit 1G -- sh -c 'echo "$LD_PRELOAD"')
expect_eq "preload from the installed tree" "$dest/opt/mf/lib/memfence/libmemfence-stack.so" "$out"

# pkg-config: compile and run a program that uses the API.
cat >"$MF_TMP/use.c" <<'C'
#include <memfence.h>
#include <stdio.h>
int main(void)
{
	/* Linked but not preloaded with accounting on: calls report it. */
	printf("%d %d\n", memfence_active(), memfence_scope_begin("x", NULL, 0));
	return 0;
}
C
pc=$dest/opt/mf/lib/pkgconfig
expect_eq "pkg-config prefix" /opt/mf "$(PKG_CONFIG_PATH=$pc pkg-config --variable=prefix memfence)"
gcc -o "$MF_TMP/use" "$MF_TMP/use.c" -I"$dest/opt/mf/include" -L"$dest/opt/mf/lib" -lmemfence ||
	fail "cannot build against the installed header and library"
out=$(MEMFENCE_ACCOUNT=0 LD_LIBRARY_PATH="$dest/opt/mf/lib" "$MF_TMP/use") || fail "program using the API failed"
expect_eq "API with accounting off" "0 -1" "$out"

make -s -C "$MF_ROOT_DIR" B="$MF_BUILD" uninstall DESTDIR="$dest" PREFIX=/opt/mf >"$MF_TMP/log" 2>&1 ||
	fail "make uninstall failed: $(cat "$MF_TMP/log")"
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left files: $left"
exit 0
