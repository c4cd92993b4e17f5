#!/usr/bin/env bash
# memfence run --profile --profile-push URL posts the heap profile to a
# Pyroscope-compatible /ingest at each interval: a receiver started here on
# 127.0.0.1 takes the requests as Pyroscope's ingest API would (POST
# /ingest?name=...&from=...&until=...&format=pprof, multipart field
# "profile"), and the profiles it got decode with the program's top site. A
# server that is not there costs one warning, never the run.
. "$(dirname "$0")/../lib.sh"

CHECK="$PY $MF_ROOT_DIR/tests/integration/profile_pprof.py"
R=$MF_TMP/reports
RPORT=$(mf_free_port)
mkdir -p "$MF_TMP/got"
$PY - "$RPORT" "$MF_TMP/got" <<'PY' >"$MF_TMP/receiver.log" 2>&1 &
import http.server, sys, urllib.parse
from email.parser import BytesParser
from email.policy import HTTP

port, out = int(sys.argv[1]), sys.argv[2]
n = 0

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global n
        u = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                 for p in msg.iter_parts()}
        n += 1
        with open("%s/%d.query" % (out, n), "w") as f:
            f.write(u.path + "?" + u.query + "\n" + " ".join(sorted(parts)) + "\n")
        with open("%s/%d.pb.gz" % (out, n), "wb") as f:
            f.write(parts.get("profile", b""))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
MF_PIDS+=($!)
for _ in $(seq 50); do curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$RPORT/" && break; sleep 0.1; done

cat >"$MF_TMP/app.py" <<'PY'
import sys, time

def build_features():
    out = []
    for _ in range(240):
        out.append(bytearray(256 << 10))
    return out

kept = build_features()
time.sleep(float(sys.argv[1]))
PY
mf_bounded 60 "run --profile-push" "$MEMFENCE" run --http off --profile --report-dir "$R" \
	--profile-push "http://127.0.0.1:$RPORT/" --profile-push-interval 1s --profile-push-name 'features{env=test}' \
	-- $PY "$MF_TMP/app.py" 4.5
[ "$rc" = 0 ] || fail "run: exit $rc ($(cat "$MF_TMP/err"))"
n=$(ls "$MF_TMP"/got/*.query 2>/dev/null | wc -l)
[ "$n" -ge 2 ] || fail "$n pushes in 4.5 s at 1s: $(cat "$MF_TMP/receiver.log" "$MF_TMP/err")"
q=$(head -n1 "$MF_TMP/got/2.query")
expect_match "push path" '^/ingest\?' "$q"
expect_match "push name" '[?&]name=features%7Benv%3Dtest%7D(&|$)' "$q"
expect_match "push format" '[?&]format=pprof(&|$)' "$q"
from=$(echo "$q" | sed -n 's/.*[?&]from=\([0-9]*\).*/\1/p')
until=$(echo "$q" | sed -n 's/.*[?&]until=\([0-9]*\).*/\1/p')
[ -n "$from" ] && [ -n "$until" ] && [ "$from" -le "$until" ] || fail "from/until: $q"
expect_eq "first push's fields" "profile sample_type_config" "$(sed -n 2p "$MF_TMP/got/1.query")"
expect_eq "second push's fields" "prev_profile profile sample_type_config" "$(sed -n 2p "$MF_TMP/got/2.query")"
$CHECK "$MF_TMP/got/2.pb.gz" build_features inuse_space >"$MF_TMP/pushed.txt" ||
	fail "pushed profile: $(cat "$MF_TMP/pushed.txt")"

# Nobody listens there: one warning, and the run ends as the program does.
DEAD=$(mf_free_port)
mf_bounded 60 "run --profile-push to nobody" "$MEMFENCE" run --http off --profile --report-dir "$R" \
	--profile-push "http://127.0.0.1:$DEAD" --profile-push-interval 1s -- $PY "$MF_TMP/app.py" 3.5
[ "$rc" = 0 ] || fail "run with an absent server: exit $rc ($(cat "$MF_TMP/err"))"
expect_eq "warnings for an absent server" 1 "$(grep -c -- '--profile-push' "$MF_TMP/err")"

# Bad values: exit 2 naming the option, before anything starts.
for args in "--profile-push ftp://x" "--profile-push http://a<b" "--profile-push-interval 0s --profile-push http://x" \
	"--profile-push-interval 2h --profile-push http://x" "--profile-push-name a/b --profile-push http://x"; do
	# shellcheck disable=SC2086
	"$MEMFENCE" run --http off --profile $args -- true 2>"$MF_TMP/err"
	expect_eq "run $args" 2 $?
	grep -q -- "--profile-push" "$MF_TMP/err" || fail "run $args: no option named: $(cat "$MF_TMP/err")"
done
"$MEMFENCE" run --http off --profile-push http://127.0.0.1:1 -- true 2>"$MF_TMP/err"
expect_eq "push without --profile" 2 $?
# Only a run that pushes loads libcurl.
if command -v strace >/dev/null; then
	strace -f -qq -e trace=openat -o "$MF_TMP/trace" "$MEMFENCE" run --http "127.0.0.1:$(mf_free_port)" --profile \
		--report-dir "$R" -- true 2>/dev/null
	grep -q libcurl "$MF_TMP/trace" && fail "a run without a push loaded libcurl: $(grep -m1 libcurl "$MF_TMP/trace")"
	strace -f -qq -e trace=openat -o "$MF_TMP/trace" "$MEMFENCE" run --http off --profile \
		--profile-push "http://127.0.0.1:$DEAD" --report-dir "$R" -- true 2>/dev/null
	grep -q libcurl "$MF_TMP/trace" || fail "a run with a push did not load libcurl"
fi
echo "profile push: ok"
