#!/usr/bin/env bash
# The page of `memfence diagnose --html` in a real browser (headless
# Chromium): a run with oversized requests under --profile, so that the
# page has every part (verdict, timeline with refusals, per-name
# distributions, the oversized requests, the flame graph). The page must
# load with no console error, run its script (it marks <body> when it did),
# and make a screenshot (kept as $MF_DIAG_SHOT when that is set).
. "$(dirname "$0")/diagnose_lib.bash"
CHROME=$(command -v chromium || command -v chromium-browser) || skip "chromium is not installed"
diag_start html 384 --profile
diag_load --calls 200 --concurrency 4 --mib 2-10 --hold-ms 20 --big 2 --big-mib 2000 --big-after 60 >/dev/null
sleep 2.5
diag_stop
ls "$STATE"/reports/memfence-*.prof >/dev/null 2>&1 || fail "--profile wrote no profile"
diag_json "$STATE"
diag_expect "after the run" oversized
diag_text_html "$STATE"
grep -q 'memfence heap profile' "$DIAG_PAGE" || fail "the page has no flame graph"
grep -q 'id="timeline"' "$DIAG_PAGE" || fail "the page has no timeline"
# The page agrees with the verdict: as many rows called oversized as the
# verdict names, and each refused one says by what rule.
expect_eq "oversized rows" "$(diag_get 'len(d["evidence"]["oversized"]["scopes"])')" \
	"$(grep -o '<td><b>oversized</b></td>' "$DIAG_PAGE" | wc -l)"
grep -q 'refused by the admission gate\|refused at its own budget\|refused under memory pressure' "$DIAG_PAGE" ||
	fail "the table does not say what refused the requests"
# The flame graph holds no tower of frames too narrow to read above the
# wide stacks (that made the picture mostly empty): every frame drawn on
# its own is at least 1 % of the width; the smaller ones share one box.
$PY - "$DIAG_PAGE" <<'PY' || fail "the flame graph draws frames under 1 % of its width"
import re, sys
page = open(sys.argv[1]).read()
svg = page[page.index("memfence heap profile"):]
svg = svg[:svg.index("</svg>")]
narrow = [w for w, fill in re.findall(r'<rect x="[^"]*" y="[^"]*" width="([0-9.]+)" height="[0-9]+" fill="([^"]+)"', svg)
          if fill != "#d8d8d0" and float(w) < 11.7]
print("frames under 1 %%: %d" % len(narrow))
sys.exit(1 if narrow else 0)
PY

chrome() {
	timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$(mktemp -d "$MF_TMP/chrome.XXXXXX")" --window-size=1200,1600 \
		--enable-logging=stderr --v=0 "$@" "file://$DIAG_PAGE"
}
chrome --dump-dom >"$MF_TMP/dom.html" 2>"$MF_TMP/chrome-dom.log" || {
	tail -20 "$MF_TMP/chrome-dom.log"; fail "chromium could not load the page"; }
grep -q 'data-rendered="ok"' "$MF_TMP/dom.html" || fail "the page's script did not run"
chrome --screenshot="$MF_TMP/page.png" >/dev/null 2>"$MF_TMP/chrome-shot.log" || {
	tail -20 "$MF_TMP/chrome-shot.log"; fail "chromium could not take the screenshot"; }
[ "$(stat -c %s "$MF_TMP/page.png")" -gt 20000 ] || fail "the screenshot is (nearly) empty"
if grep -E 'CONSOLE|Uncaught' "$MF_TMP/chrome-dom.log" "$MF_TMP/chrome-shot.log"; then
	fail "the page logged to the console"
fi
[ -n "${MF_DIAG_SHOT:-}" ] && cp "$MF_TMP/page.png" "$MF_DIAG_SHOT" && cp "$DIAG_PAGE" "${MF_DIAG_SHOT%.png}.html"
echo "ok"
