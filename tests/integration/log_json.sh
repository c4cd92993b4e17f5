#!/usr/bin/env bash
# --log-format json (and MEMFENCE_LOG_FORMAT=json): every line memfence
# writes on stderr -- the command's, the supervisor's, the shim's and the
# Python package's in the program -- is one JSON object with time, level,
# msg, pid and source (and request/task when the line names one); the
# program's own lines are left as they are. The default stays the text
# lines, and a bad format is a usage error.
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/libmemfence.so" ] || fail "libmemfence.so is not built"
[ -d "$MF_BUILD/python/memfence" ] || fail "the Python package is not built"

# A request over its budget (refused by the shim, logged by the package),
# a line of the program's own, then a SIGKILL (post-mortem, restart); the
# second run ends the supervisor, which stops the program.
cat >"$MF_TMP/prog.py" <<'PY'
import io, os, signal, sys
from memfence.wsgi import Middleware

def app(environ, start_response):
    b = bytearray(64 << 20)
    start_response("200 OK", [])
    return [bytes(b[:1])]

mw = Middleware(app, budgets={"GET /big": "8M"})
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/big", "HTTP_X_REQUEST_ID": "req-42",
           "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.input": io.BytesIO(),
           "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1"}
got = []
for chunk in mw(environ, lambda status, headers, exc_info=None: got.append(status)):
    pass
print("the program's own line:", got[0], file=sys.stderr, flush=True)
if not os.path.exists(sys.argv[1]):
    open(sys.argv[1], "w").close()
    os.kill(os.getpid(), signal.SIGKILL)
os.kill(os.getppid(), signal.SIGTERM)
PY

# run_prog NAME [ENV...] -- [OPTIONS...]: the program under run, its stderr
# in $MF_TMP/NAME.err. MEMFENCE_FAULT=bad makes the shim warn.
run_prog() {
	local name=$1 envs=()
	shift
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	rm -f "$MF_TMP/$name.mark"
	mkdir -p "$MF_TMP/$name.state"
	env "${envs[@]}" PYTHONPATH="$MF_BUILD/python" MEMFENCE_FAULT=bad timeout 120 "$MEMFENCE" run \
		--http off --restart always --restart-delay 0 --state-dir "$MF_TMP/$name.state" \
		--report-dir "$MF_TMP/$name.state" "$@" -- "$PY" "$MF_TMP/prog.py" "$MF_TMP/$name.mark" \
		>"$MF_TMP/$name.out" 2>"$MF_TMP/$name.err"
	rc=$?
	[ "$rc" = 124 ] && fail "$name: still running after 120 s: $(cat "$MF_TMP/$name.err")"
	[ -f "$MF_TMP/$name.mark" ] || fail "$name: the program did not run: $(cat "$MF_TMP/$name.err")"
}

# check_json FILE SOURCE...: every line memfence wrote is JSON with the
# fields, and one at least comes from each SOURCE.
check_json() {
	local f=$1
	shift
	"$PY" - "$f" "$@" <<'PY' || fail "$f: $(cat "$f")"
import json, re, sys
path, want = sys.argv[1], set(sys.argv[2:])
seen, problems = set(), []
for n, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1):
    if line.startswith("memfence:"):
        problems.append("line %d is text: %s" % (n, line))
        continue
    try:
        d = json.loads(line)
    except ValueError:
        continue  # the program's own
    if not isinstance(d, dict):
        problems.append("line %d is not an object" % n)
        continue
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(d.get("time"))):
        problems.append("line %d: time %r" % (n, d.get("time")))
    if d.get("level") not in ("error", "warning", "info"):
        problems.append("line %d: level %r" % (n, d.get("level")))
    if not isinstance(d.get("pid"), int) or d["pid"] <= 0:
        problems.append("line %d: pid %r" % (n, d.get("pid")))
    msg = d.get("msg")
    if not isinstance(msg, str) or not msg or msg.startswith(("memfence:", "warning:")):
        problems.append("line %d: msg %r" % (n, msg))
    if d.get("source") not in ("cli", "supervisor", "shim", "python"):
        problems.append("line %d: source %r" % (n, d.get("source")))
    seen.add(d.get("source"))
    if d.get("source") == "python" and "out of memory" in (msg or "") and d.get("request") != "req-42":
        problems.append("line %d: the refusal names no request: %s" % (n, line))
missing = want - seen
if missing:
    problems.append("no line from %s" % ", ".join(sorted(missing)))
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

# The option, then the variable: the same lines, all JSON.
run_prog opt -- --log-format json
check_json "$MF_TMP/opt.err" supervisor shim python
grep -q '"msg":"restarting the program' "$MF_TMP/opt.err" || fail "no restart line: $(cat "$MF_TMP/opt.err")"
grep -q '"msg":"cause: sigkill' "$MF_TMP/opt.err" || fail "no post-mortem line: $(cat "$MF_TMP/opt.err")"
grep -q '"source":"python".*"request":"req-42"' "$MF_TMP/opt.err" ||
	fail "no refusal from the package: $(cat "$MF_TMP/opt.err")"
grep -q "^the program's own line: 503" "$MF_TMP/opt.err" ||
	fail "the program's own line changed: $(cat "$MF_TMP/opt.err")"
run_prog env MEMFENCE_LOG_FORMAT=json --
check_json "$MF_TMP/env.err" supervisor shim python

# The default: the text lines, none JSON.
run_prog text --
grep -q '^{' "$MF_TMP/text.err" && fail "JSON in the text format: $(cat "$MF_TMP/text.err")"
for want in "memfence: invalid MEMFENCE_FAULT" "memfence: out of memory while serving GET /big request req-42" \
	"memfence:   cause: sigkill" "memfence: restarting the program in"; do
	grep -qF "$want" "$MF_TMP/text.err" || fail "text: no '$want': $(cat "$MF_TMP/text.err")"
done

# exec: the command's own error, the shim's and the stack library's
# warnings.
"$MEMFENCE" exec --log-format json --heap-limit 1M -- true 2>"$MF_TMP/exec1.err"
expect_eq "exec --heap-limit without --account" 2 "$?"
check_json "$MF_TMP/exec1.err" cli
"$MEMFENCE" exec --log-format json --account -- env MEMFENCE_FAULT=bad true 2>"$MF_TMP/exec2.err" ||
	fail "exec --account: $(cat "$MF_TMP/exec2.err")"
check_json "$MF_TMP/exec2.err" shim
MEMFENCE_LOG_FORMAT=json "$MEMFENCE" exec -- env MEMFENCE_STACK=1 true 2>"$MF_TMP/exec3.err" ||
	fail "exec: $(cat "$MF_TMP/exec3.err")"
check_json "$MF_TMP/exec3.err" shim
grep -q 'MEMFENCE_STACK' "$MF_TMP/exec3.err" || fail "no stack library warning: $(cat "$MF_TMP/exec3.err")"

# A format of no meaning: exit 2, named.
"$MEMFENCE" run --log-format xml -- true 2>"$MF_TMP/bad.err"
expect_eq "run --log-format xml" 2 "$?"
grep -q "invalid --log-format 'xml' (text or json)" "$MF_TMP/bad.err" || fail "bad format: $(cat "$MF_TMP/bad.err")"
MEMFENCE_LOG_FORMAT=xml "$MEMFENCE" exec -- true 2>"$MF_TMP/bad.err"
expect_eq "MEMFENCE_LOG_FORMAT=xml" 2 "$?"
grep -q "invalid MEMFENCE_LOG_FORMAT 'xml'" "$MF_TMP/bad.err" || fail "bad variable: $(cat "$MF_TMP/bad.err")"
echo ok
