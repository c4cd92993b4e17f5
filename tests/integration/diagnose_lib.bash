# Helpers of the diagnose_*.sh tests: a gRPC service (diagnose_server.py)
# under `memfence run` in a real memory cgroup, calls from
# diagnose_load.py, and `memfence diagnose` asked live (by PID) and after
# the run (the state directory).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "memfence is not built"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"
$PY -c 'import grpc' 2>/dev/null || skip "python3-grpcio is not installed"
DIAG_HERE=$MF_ROOT_DIR/tests/integration

# diag_start NAME LIMIT_MIB [memfence run options...]: sets PORT STATE PROG SUP.
# Floor windows of 2 s (DIAG_WINDOW), so that a leak shows within the
# test's seconds. DIAG_SERVER=gunicorn serves the same calls over HTTP
# (2 gthread workers of 8 threads) instead of gRPC; DIAG_SERVER=celery as
# tasks of a prefork worker (DIAG_CELERY_C processes, 4) with a
# redis-server of its own as the broker.
diag_start() {
	local name=$1 limit=$2 i srv
	shift 2
	mf_need_cgroup "diag-$name" $((limit << 20))
	PORT=$(mf_free_port)
	STATE=$MF_TMP/state-$name
	mkdir -p "$STATE"
	if [ "${DIAG_SERVER:-grpc}" = celery ]; then
		command -v redis-server >/dev/null || skip "redis-server is not installed"
		$PY -c 'import celery, redis' 2>/dev/null || skip "python3-celery / python3-redis are not installed"
		DIAG_BROKER=redis://127.0.0.1:$PORT/0
		mf_redis_start "$PORT"
		srv=(-m celery -A diagnose_celery worker --pool prefork -c "${DIAG_CELERY_C:-4}"
			--loglevel INFO --without-heartbeat --without-mingle --without-gossip)
	elif [ "${DIAG_SERVER:-grpc}" = gunicorn ]; then
		$PY -c 'import gunicorn' 2>/dev/null || skip "python3-gunicorn is not installed"
		srv=(-m gunicorn -k gthread -w 2 --threads 8 --chdir "$DIAG_HERE" -b "127.0.0.1:$PORT"
			--timeout 60 diagnose_server:wsgi_app)
	else
		srv=("$DIAG_HERE/diagnose_server.py" --port "$PORT" --ready-file "$STATE/ready")
	fi
	# Nothing on PYTHONPATH: the supervisor adds the interceptor (the
	# Celery app installs memfence.celery itself, from the build).
	local pp=()
	[ "${DIAG_SERVER:-grpc}" = celery ] && pp=(PYTHONPATH="$MF_BUILD/python:$DIAG_HERE"
		CELERY_BROKER="$DIAG_BROKER")
	(cd "$DIAG_HERE" && MEMFENCE_MODEL_WINDOW=${DIAG_WINDOW:-2s} mf_cgroup_run "$MF_CG" \
		env -u PYTHONPATH "${pp[@]}" "$MEMFENCE" run --http off --state-dir "$STATE" "$@" -- \
		"$PY" "${srv[@]}" >"$MF_TMP/server-$name.log" 2>&1) &
	MF_PIDS+=($!)
	if [ "${DIAG_SERVER:-grpc}" != grpc ]; then
		# Up: Celery says so in its log, gunicorn listens; their imports
		# take seconds on a loaded machine.
		for i in $(seq 1 300); do
			if [ "$DIAG_SERVER" = celery ]; then
				grep -q "ready" "$MF_TMP/server-$name.log" 2>/dev/null && break
			else
				$PY -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
					"$PORT" 2>/dev/null && break
			fi
			sleep 0.2
		done
		# The supervisor is the memfence process of the cgroup; the
		# program (gunicorn's arbiter, Celery's main process) its child.
		SUP=
		for i in $(cat "$MF_CG/cgroup.procs"); do
			[ "$(cat "/proc/$i/comm" 2>/dev/null)" = memfence ] && SUP=$i && break
		done
		PROG=$([ -n "$SUP" ] && pgrep -o -P "$SUP")
		[ -n "$PROG" ] || { cat "$MF_TMP/server-$name.log"; fail "$name: the service did not start"; }
		MF_PIDS+=("$SUP")
		return 0
	fi
	for i in $(seq 1 100); do [ -s "$STATE/ready" ] && break; sleep 0.1; done
	[ -s "$STATE/ready" ] || { cat "$MF_TMP/server-$name.log"; fail "$name: the service did not start"; }
	PROG=$(cat "$STATE/ready")
	SUP=$(ps -o ppid= -p "$PROG" | tr -d ' ')
	[ -n "$SUP" ] && grep -q memfence "/proc/$SUP/cmdline" || fail "$name: no supervisor above $PROG"
	MF_PIDS+=("$SUP")
}

# diag_load ARGS...: calls against the service; prints the summary.
diag_load() {
	local http=()
	[ "${DIAG_SERVER:-grpc}" = gunicorn ] && http=(--http)
	[ "${DIAG_SERVER:-grpc}" = celery ] && http=(--celery "$DIAG_BROKER")
	PYTHONPATH= timeout 90 "$PY" "$DIAG_HERE/diagnose_load.py" --target "127.0.0.1:$PORT" \
		"${http[@]}" "$@" || fail "the load generator failed"
}

# diag_stop: stop the run the way a container runtime does, wait for its end.
diag_stop() {
	local i
	kill -TERM "$SUP" 2>/dev/null
	for i in $(seq 1 100); do kill -0 "$SUP" 2>/dev/null || return 0; sleep 0.1; done
	fail "the supervisor did not stop"
}

# diag_json TARGET [options]: the JSON document into $DIAG, exit status into $DIAG_RC.
diag_json() {
	local out=$MF_TMP/diag-$RANDOM.json
	"$MEMFENCE" diagnose --json "$@" >"$out" 2>"$out.err"
	DIAG_RC=$?
	DIAG=$(cat "$out")
	[ -s "$out" ] || { cat "$out.err"; fail "diagnose $* printed nothing (exit $DIAG_RC)"; }
}

# jq-like: diag_get PYTHON-EXPRESSION-ON-d
diag_get() {
	echo "$DIAG" | "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# diag_expect WHAT FIRST [ABSENT...]: the first verdict is FIRST, none of ABSENT appears.
diag_expect() {
	local what=$1 first=$2 v verdicts
	shift 2
	verdicts=$(diag_get '",".join(d["verdict"])')
	echo "$what: verdict $verdicts (exit $DIAG_RC)"
	expect_eq "$what: first verdict" "$first" "${verdicts%%,*}"
	for v in "$@"; do
		case ",$verdicts," in *",$v,"*) fail "$what: '$v' among the verdicts ($verdicts)" ;; esac
	done
	if [ "$first" = healthy ]; then
		expect_eq "$what: exit status" 0 "$DIAG_RC"
	else
		expect_eq "$what: exit status" 3 "$DIAG_RC"
	fi
	[ "$(diag_get 'len(d["evidence"][d["verdict"][0]]["summary"])')" -ge 1 ] ||
		fail "$what: no evidence for $first"
}

# diag_text_html TARGET: the text form names the verdict; the page is one
# self-contained file (nothing fetched).
diag_text_html() {
	local target=$1 page=$MF_TMP/page-$RANDOM.html out
	out=$("$MEMFENCE" diagnose --html "$page" "$target")
	echo "$out"
	echo "$out" | grep -q "^verdict: $(diag_get 'd["verdict"][0]')" || fail "text: no verdict line"
	[ -s "$page" ] || fail "no page written"
	grep -q '<svg' "$page" || fail "the page has no picture"
	if grep -Eiq '<(script|img|link|iframe)[^>]+(src|href)=|@import|url\(' "$page"; then
		fail "the page fetches something"
	fi
	DIAG_PAGE=$page
}
