#!/usr/bin/env bash
# Ready means serving. Each program below takes 3 s before it serves, under
# `memfence run` in a real memory cgroup; /readyz is polled every 50 ms and
# every 200 is followed at once by a call to the program, which must be
# answered:
#   1. any program, --ready-tcp PORT: a plain socket server; then its
#      process is killed and restarted (--restart always): the new start
#      goes through the same gate;
#   2. gunicorn (2 sync workers) whose app takes 3 s to import: served once
#      a worker has loaded it (the integration says so);
#   3. uvicorn whose lifespan startup takes 3 s; a Celery worker whose app
#      takes 3 s to import (served once ready and consuming);
#   4. no integration and no option: memory-only readiness, as before
#      (/readyz is 200 before the program listens);
#   5. a "serving" line in the file that is not from a process of the
#      program is not believed;
#   6. bad --ready-tcp values: a clear error, exit 2.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"

cat >"$MF_TMP/slow_tcp.py" <<'PY'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
time.sleep(3)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
cat >"$MF_TMP/slow_wsgi.py" <<'PY'
import time
time.sleep(3)    # a heavy import
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
PY
cat >"$MF_TMP/slow_asgi.py" <<'PY'
import asyncio
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await asyncio.sleep(3)
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok\n"})
PY
cat >"$MF_TMP/watch.py" <<'PY'
"""Poll /readyz every 50 ms for SECONDS (or until UNTIL_READY 200s were
seen); after each 200, GET the app (APP "log:FILE": FILE says the Celery
worker is ready). Print one JSON line."""
import json, re, sys, time, urllib.request, urllib.error
sup, app, seconds, until = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])

def answered():
    if app.startswith("log:"):
        with open(app[4:], errors="replace") as f:
            return (200, "") if " ready." in f.read() else (None, "the worker is not ready")
    return get("http://%s/" % app)

def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:
        return None, "%s: %s" % (type(e).__name__, e)

out = {"ready": 0, "unready": 0, "answered": 0, "not_answered": [], "reasons": []}
start = time.monotonic()
while time.monotonic() - start < seconds and out["ready"] < until:
    code, body = get("http://%s/readyz" % sup)
    if code == 200:
        out["ready"] += 1
        acode, abody = answered()
        if acode == 200:
            out["answered"] += 1
        else:
            out["not_answered"].append([round(time.monotonic() - start, 2), acode, abody[:100]])
    else:
        out["unready"] += 1
        r = re.sub(r" \(started [0-9.]+s ago\)$", "", body.strip())
        if r not in out["reasons"] and len(out["reasons"]) < 10:
            out["reasons"].append(r)
    time.sleep(0.05)
print(json.dumps(out))
PY

field() { $PY -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$out" "$1"; }
# check NAME HTTP APP: /readyz never 200 before the app answers, and ready in the end.
check() {
	out=$($PY "$MF_TMP/watch.py" "127.0.0.1:$2" "$3" 30 20)
	echo "$1: $out"
	expect_eq "$1: calls unanswered while ready" "[]" "$(field 'd["not_answered"]')"
	[ "$(field 'd["ready"]')" = 20 ] || fail "$1: not ready in the end: $(tail -n 20 "$MF_TMP/err$CUR")"
	[ "$(field 'd["unready"]')" -ge 10 ] || fail "$1: ready at once, before it serves: $out"
}
start() { # NAME MEMFENCE-ARGS... -- CMD...: in a fresh cgroup
	local name=$1
	shift
	CUR=$name
	mf_need_cgroup "ready$name" $((512 << 20))
	mf_cgroup_spawn "$MF_CG" "$MEMFENCE" run --http "127.0.0.1:$HP" "$@" >"$MF_TMP/out$name" 2>"$MF_TMP/err$name"
	SUP=$MF_SPAWNED
}

# 1. --ready-tcp, and a restart through the same gate.
HP=$(mf_free_port) APP=$(mf_free_port)
start tcp --restart always --ready-tcp "$APP" -- $PY "$MF_TMP/slow_tcp.py" "$APP"
check "tcp" "$HP" "127.0.0.1:$APP"
expect_match "tcp: reason" "not ready: not serving yet: port $APP accepts no connection" "$(field 'd["reasons"]')"
child=$(pgrep -P "$SUP" -f slow_tcp.py)
[ -n "$child" ] || fail "tcp: no program under the supervisor"
kill -KILL "$child"
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HP/readyz")" = 200 ] || break
	sleep 0.05
done
check "tcp restarted" "$HP" "127.0.0.1:$APP"
[ "$(grep -c "memfence: the program serves after" "$MF_TMP/errtcp")" -ge 2 ] ||
	fail "tcp: serving not logged at each start: $(cat "$MF_TMP/errtcp")"
mf_cgroup_stop "$SUP" "$MF_CG"

# 2. gunicorn: a worker loaded the app.
if $PY -c 'import gunicorn' 2>/dev/null; then
	HP=$(mf_free_port) APP=$(mf_free_port)
	start gunicorn -- $PY -m gunicorn -w 2 --chdir "$MF_TMP" -b "127.0.0.1:$APP" slow_wsgi:app
	check "gunicorn" "$HP" "127.0.0.1:$APP"
	expect_match "gunicorn: reason" "not ready: not serving yet: gunicorn: no worker has loaded the application yet" \
		"$(field 'd["reasons"]')"
	mf_cgroup_stop "$SUP" "$MF_CG"
else
	echo "gunicorn is not installed: its case is not run" >&2
fi

# 3. uvicorn: lifespan startup complete.
if $PY -c 'import uvicorn' 2>/dev/null; then
	HP=$(mf_free_port) APP=$(mf_free_port)
	start uvicorn -- $PY -m uvicorn --app-dir "$MF_TMP" --lifespan on --host 127.0.0.1 --port "$APP" \
		slow_asgi:app
	check "uvicorn" "$HP" "127.0.0.1:$APP"
	expect_match "uvicorn: reason" "not ready: not serving yet: uvicorn: lifespan startup not complete" \
		"$(field 'd["reasons"]')"
	mf_cgroup_stop "$SUP" "$MF_CG"
else
	echo "uvicorn is not installed: its case is not run" >&2
fi

# 3b. Celery: the worker is ready and consuming.
if $PY -c 'import celery, redis' 2>/dev/null && command -v redis-server >/dev/null; then
	RP=$(mf_free_port)
	mf_redis_start "$RP"
	cat >"$MF_TMP/slow_celery.py" <<PY
import time
from celery import Celery
time.sleep(3)    # a heavy import
app = Celery("slow", broker="redis://127.0.0.1:$RP/0")
PY
	HP=$(mf_free_port)
	start celery -- $PY -m celery --workdir "$MF_TMP" -A slow_celery worker --pool solo \
		--loglevel INFO --without-heartbeat --without-mingle --without-gossip
	check "celery" "$HP" "log:$MF_TMP/errcelery"
	expect_match "celery: reason" "not ready: not serving yet: (the program has not said it serves|celery: worker not ready yet)" \
		"$(field 'd["reasons"]')"
	mf_cgroup_stop "$SUP" "$MF_CG"
else
	echo "celery, redis or redis-server is missing: the Celery case is not run" >&2
fi

# 4. Nothing says what serving is: memory only, ready before it listens.
HP=$(mf_free_port) APP=$(mf_free_port)
start plain -- $PY "$MF_TMP/slow_tcp.py" "$APP"
out=$($PY "$MF_TMP/watch.py" "127.0.0.1:$HP" "127.0.0.1:$APP" 30 5)
echo "plain: $out"
[ "$(field 'len(d["not_answered"])')" -ge 1 ] || fail "plain: readiness waited without being asked to: $out"
mf_cgroup_stop "$SUP" "$MF_CG"

# 5. A line of another process is not believed.
HP=$(mf_free_port)
start foreign --state-dir "$MF_TMP/state" -- $PY -c '
import time, memfence.serving
memfence.serving.starting("test: never serves")
time.sleep(60)'
for _ in $(seq 100); do
	[ -n "$(pgrep -P "$SUP")" ] && grep -q starting "$MF_TMP/state/serving" 2>/dev/null && break
	sleep 0.1
done
grep -q "starting test: never serves" "$MF_TMP/state/serving" || fail "foreign: the program wrote no line"
echo "$$ serving not the program" >"$MF_TMP/state/serving.x" && mv "$MF_TMP/state/serving.x" "$MF_TMP/state/serving"
sleep 1
r=$(curl -s -w ' %{http_code}' --max-time 2 "http://127.0.0.1:$HP/readyz" | tr -d '\n')
expect_match "foreign: readiness" "^not ready: not serving yet: test: never serves .* 503$" "$r"
mf_cgroup_stop "$SUP" "$MF_CG"

# 6. Bad values.
for v in 0 65536 x 127.0.0.1: :80 999.1.1.1:80 "127.0.0.1:80 "; do
	"$MEMFENCE" run --ready-tcp "$v" -- true 2>"$MF_TMP/bad" && fail "--ready-tcp '$v' was accepted"
	st=$?
	expect_eq "--ready-tcp '$v': exit status" 2 "$st"
	grep -q "ready-tcp" "$MF_TMP/bad" || fail "--ready-tcp '$v': the error does not name the option: $(cat "$MF_TMP/bad")"
done
echo "ok"
