#!/usr/bin/env bash
# The sampling profiler finds allocation sites in known proportions, within
# bounds computed from the sampling math (tests/integration/profile_check.py):
# a C program (4 threads, 60/30/10 sites, a leak, a forked child) and a
# Python program (function names and lines of the Python frames); reports
# in every format; bad input.
. "$(dirname "$0")/../lib.sh"

T=$MF_BUILD/tests/shim/prof_sites
CHECK="$PY $MF_ROOT_DIR/tests/integration/profile_check.py"
[ -x "$T" ] || fail "$T is not built (run make)"
cd "$MF_TMP" || fail "no temp dir"

# --- C: shares of allocated bytes, the leak in the live view, the child ---
timeout 60 "$MEMFENCE" profile --rate 64K -o c.prof -- "$T" 3000 4 >c.out 2>c.err ||
	fail "profile of prof_sites failed: $(cat c.err)"
"$MEMFENCE" profile report c.prof --format json >c.json || fail "json report"
$CHECK c-alloc c.json c.out || fail "C sites: estimates out of bounds"
"$MEMFENCE" profile report c.prof --format json --view live >c-live.json || fail "live report"
$CHECK c-live c-live.json 12000 4008 || fail "C leak: live estimate out of bounds"
child=$(awk '$1 == "child" { print $2 }' c.out)
[ -f "c.prof.$child" ] || fail "the forked child ($child) wrote no profile: $(ls)"
"$MEMFENCE" profile report "c.prof.$child" --format json >child.json || fail "child report"
$CHECK child child.json 256 65544 || fail "forked child: site_child out of bounds"

# --- every format reads back; the text report names the top site ---
out=$("$MEMFENCE" profile report c.prof --top 3)
expect_match "text report top site" '^ +[0-9.]+ MiB +5[0-9]\.[0-9]% +[0-9]+  site_a ' "$(echo "$out" | grep site_a)"
"$MEMFENCE" profile report c.prof --format collapsed >c.folded || fail "collapsed"
grep -q ';worker;site_a [0-9]*$' c.folded || fail "collapsed stacks lack worker;site_a: $(head -3 c.folded)"
"$MEMFENCE" profile report c.prof --format svg -o c.svg || fail "svg"
xmllint --noout c.svg 2>/dev/null || $PY -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' c.svg ||
	fail "the SVG is not well-formed XML"
grep -q '<title>site_a ' c.svg || fail "the SVG has no site_a frame"

# --- Python: right function and line, shares within bounds ---
cat >p.py <<'PYEOF'
def a():
    return bytearray(8000)  # SITE-a
def b():
    return bytearray(2000)  # SITE-b
def c():
    return bytearray(1000)  # SITE-c
for i in range(15000):
    for k in range(3): a()
    for k in range(6): b()
    for k in range(4): c()
PYEOF
# Each call: the 56-byte object (pymalloc, seen through the allocator hook
# at its requested size; or malloc's usable size under PYTHONMALLOC=malloc,
# also 56) and the n+1-byte buffer (malloc, usable size).
for mode in hook pythonmalloc; do
	opt=
	[ $mode = pythonmalloc ] && opt=--pythonmalloc
	timeout 60 "$MEMFENCE" profile --rate 64K $opt -o p.prof -- $PY p.py 2>p.err ||
		fail "python profile ($mode): $(cat p.err)"
	"$MEMFENCE" profile report p.prof --format json >p.json || fail "python json"
	$CHECK python p.json p.py a:45000:56,8008 b:90000:56,2008 c:60000:56,1016 ||
		fail "Python sites ($mode): wrong frames or estimates out of bounds"
done
expect_match "python domains" 'PYTHONMALLOC=malloc' "$("$MEMFENCE" profile report p.prof)"
"$MEMFENCE" profile --rate 64K -o p.prof -- $PY p.py 2>/dev/null
expect_match "python domains" 'pymalloc arenas \(allocator hook\)' "$("$MEMFENCE" profile report p.prof)"
# Native unwinding stops at the interpreter's eval loop, which reports drop
# anyway: the busiest Python site (a's buffer) keeps the few frames from the
# allocation up to it, not the 16 and more of the whole stack.
n=$(awk -F'\t' '/^s / && $2 ~ /(^| )p/ { split($1, h, " "); k = gsub(/(^| )n/, "&", $2);
	if (h[4] + 0 > best) { best = h[4] + 0; nat = k } } END { print nat + 0 }' p.prof)
[ "$n" -ge 1 ] && [ "$n" -le 10 ] || fail "native frames of the busiest Python site: $n, expected 1 to 10"

# --- bad input: one line, non-zero ---
"$MEMFENCE" profile report nosuch.prof 2>e.txt; rc=$?
[ $rc = 1 ] && [ "$(wc -l <e.txt)" = 1 ] || fail "missing file: rc $rc, $(cat e.txt)"
echo garbage >g.prof
"$MEMFENCE" profile report g.prof 2>e.txt; [ $? = 1 ] || fail "garbage accepted"
expect_match "garbage message" 'not a memfence profile' "$(cat e.txt)"
head -c 300 c.prof >t.prof
"$MEMFENCE" profile report t.prof 2>e.txt; [ $? = 1 ] || fail "truncated file accepted"
"$MEMFENCE" profile report c.prof --format nope 2>/dev/null; [ $? = 2 ] || fail "bad format accepted"
"$MEMFENCE" profile --rate 0 -- true 2>/dev/null; [ $? = 2 ] || fail "rate 0 accepted"
"$MEMFENCE" profile report c.prof --scope nosuch 2>e.txt; [ $? = 1 ] || fail "unknown scope accepted"
echo "profile_sites: ok"
