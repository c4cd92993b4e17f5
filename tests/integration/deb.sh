#!/usr/bin/env bash
# make deb, then the package installed with dpkg -i, used from /usr/bin
# with Debian's python3 importing the installed package (no build tree on
# any path), removed and purged: nothing of it is left.
#
# dpkg runs for real, but in a mount namespace of this test's own, over
# overlays of /usr, /var and /etc: the test sees an installed system, while
# every other process (the other tests, which must not import memfence from
# dist-packages) sees the system unchanged, and the namespace with all it
# holds ends with the test however the test ends.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/installed.bash"

if [ "${1:-}" != --inside ]; then
	for t in dpkg-deb dpkg-shlibdeps unshare; do
		command -v "$t" >/dev/null || skip "$t is not installed (dpkg-dev, util-linux)"
	done
	[ "$(id -u)" = 0 ] || skip "installing a package needs root"
	grep -qw overlay /proc/filesystems || skip "the kernel has no overlay file system"
	v=$(cat "$MF_ROOT_DIR/VERSION")
	make -s -C "$MF_ROOT_DIR" B="$MF_BUILD" deb DIST="$MF_TMP/dist" >"$MF_TMP/log" 2>&1 ||
		fail "make deb failed: $(tail -n 20 "$MF_TMP/log")"
	deb=$MF_TMP/dist/memfence_${v}-1_$(dpkg --print-architecture).deb
	[ -f "$deb" ] || fail "make deb made $(ls "$MF_TMP/dist"), not $(basename "$deb")"
	grep -q "install ./$(basename "$deb")" "$MF_ROOT_DIR/README.md" ||
		fail "README.md does not say: apt-get install ./$(basename "$deb")"

	# Depends: the linked libraries, and the ones loaded by soname; the
	# README names each as a prerequisite of the wheel.
	dep=$(dpkg-deb -f "$deb" Depends)
	for p in libjansson4 zlib1g libmicrohttpd12 libsqlite3-0 libhiredis0.14 python3; do
		expect_match "Depends" "(^|, )$p( |,|$)" "$dep"
	done
	for p in $(echo "$dep" | tr ',' '\n' | awk '{ print $1 }'); do
		case $p in libc6 | python3) continue ;; esac
		grep -q "\`$p\`" "$MF_ROOT_DIR/README.md" || fail "README.md does not name $p, a Depends of the package"
	done
	dpkg-deb -c "$deb" >"$MF_TMP/contents" || fail "dpkg-deb -c failed"
	for f in ./usr/bin/memfence ./usr/lib/memfence/libmemfence.so ./usr/lib/memfence/libmemfence-stack.so \
		./usr/lib/python3/dist-packages/memfence/_memfence.abi3.so \
		./usr/share/man/man1/memfence.1.gz ./usr/share/doc/memfence/copyright; do
		grep -q " $f\( \|$\)" "$MF_TMP/contents" || fail "the package has no $f"
	done

	unshare --mount --propagation private -- env MF_DEB="$deb" bash "$0" --inside ||
		exit $?
	# The overlays were the namespace's: the system was never changed.
	[ ! -e /usr/bin/memfence ] || [ "$(dpkg-query -W -f='${Status}' memfence 2>/dev/null)" = "install ok installed" ] ||
		fail "/usr/bin/memfence exists outside the test's namespace"
	echo ok
	exit 0
fi

# --- inside the namespace -------------------------------------------------
trap 'umount -l /etc /var /usr 2>/dev/null; mf_cleanup' EXIT
for d in usr var etc; do
	mkdir -p "$MF_TMP/ovl/$d/up" "$MF_TMP/ovl/$d/work"
	mount -t overlay "overlay-$d" -o "lowerdir=/$d,upperdir=$MF_TMP/ovl/$d/up,workdir=$MF_TMP/ovl/$d/work" "/$d" ||
		skip "cannot mount an overlay on /$d"
done
# A package of this name installed here before would hide what this one
# leaves behind.
dpkg-query -W -f='${Status}' memfence 2>/dev/null | grep -q 'ok installed' &&
	skip "a package named memfence is installed on this system"

dpkg_bounded() {
	mf_bounded 300 "dpkg $*" env DEBIAN_FRONTEND=noninteractive dpkg "$@"
	[ "$rc" = 0 ] || fail "dpkg $* failed: $(tail -n 20 "$MF_TMP/err") $(tail -n 20 "$MF_TMP/out")"
}
dpkg_bounded -i "$MF_DEB"
mkdir -p "$MF_TMP/home" "$MF_TMP/work"
cd "$MF_TMP/work" || fail "cd"
expect_eq "command" /usr/bin/memfence "$(mf_clean /usr sh -c 'command -v memfence')"
expect_eq "--version" "memfence $(cat "$MF_ROOT_DIR/VERSION")" "$(mf_clean /usr memfence --version)"
man -w memfence >/dev/null 2>&1 || [ ! -x /usr/bin/man ] || fail "man cannot find memfence(1)"

mf_need_cgroup deb $((256 << 20))
mf_installed_run /usr /usr/bin/python3 /usr/lib/python3/dist-packages/memfence

dpkg -L memfence >"$MF_TMP/installed" || fail "dpkg -L memfence failed"
dpkg_bounded -r memfence
dpkg_bounded -P memfence
dpkg-query -W -f='${Status}' memfence 2>/dev/null | grep -q 'ok installed' && fail "memfence is still installed"
left=
while read -r path; do
	case $path in /. | /usr | /usr/bin | /usr/lib | /usr/lib/python3 | /usr/lib/python3/dist-packages | \
		/usr/share | /usr/share/doc | /usr/share/man | /usr/share/man/man1) continue ;; esac
	{ [ -e "$path" ] || [ -L "$path" ]; } && left="$left $path"
done <"$MF_TMP/installed"
[ -z "$left" ] || fail "dpkg -r left:$left"
# Nothing it made either (byte code, caches): no new file in the overlays'
# upper layers but dpkg's own records and logs and man-db's index.
new=$(for d in usr var etc; do (cd "$MF_TMP/ovl/$d/up" && find . -type f | sed "s|^\.|/$d|"); done |
	grep -v -e '^/var/lib/dpkg/' -e '^/var/log/' -e '^/var/cache/man/' -e '^/var/cache/debconf/' || true)
[ -z "$new" ] || fail "files left after purge: $new"
exit 0
