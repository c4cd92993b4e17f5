#!/usr/bin/env bash
# Metrics that alert right, on the issue's scenario: under `memfence run`, a
# Flask app with /users/<int:uid> on gunicorn (2 workers), the same route in
# Django on gunicorn, and a Starlette app with /users/{uid:int} on uvicorn,
# 60 requests to distinct ids each:
#   - one name label value for the route, its template, in every series
#     (no raw path /users/7, /users/14, ...), and the per-route histogram of
#     peak bytes counts the 60 requests;
#   - memfence_build_info carries the VERSION file's version;
#   - no leak, so no memfence_leak_forecast_seconds series (no sentinel);
#   - `promtool check metrics` passes on the real scrape, and every memfence
#     metric the shipped alert rules and dashboard (docs/monitoring/) use is
#     one the supervisor serves; `promtool check rules` passes on the rules.
. "$(dirname "$0")/../lib.sh"

[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
$PY -c 'import flask, starlette, yaml, django' 2>/dev/null ||
	skip "python3-flask, python3-starlette, python3-django or python3-yaml is not installed"
HERE=$MF_ROOT_DIR/tests/integration
MON=$MF_ROOT_DIR/docs/monitoring
VERSION=$(cat "$MF_ROOT_DIR/VERSION")

# The rules file: the PrometheusRule's spec is a Prometheus rules file.
$PY -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["kind"] == "PrometheusRule", d["kind"]
yaml.safe_dump(d["spec"], open(sys.argv[2], "w"))' "$MON/prometheusrule.yaml" "$MF_TMP/rules.yml" ||
	fail "docs/monitoring/prometheusrule.yaml is not a PrometheusRule"
promtool check rules "$MF_TMP/rules.yml" >"$MF_TMP/promtool.out" 2>&1 ||
	fail "promtool check rules: $(cat "$MF_TMP/promtool.out")"
$PY -c 'import json, sys; json.load(open(sys.argv[1]))' "$MON/grafana-dashboard.json" ||
	fail "docs/monitoring/grafana-dashboard.json is not JSON"

# series PORT SERIES: its value on /metrics (labels may hold spaces, which
# mf_metric's fields do not).
series() {
	curl -s --max-time 10 "http://127.0.0.1:$1/metrics" | grep -F "$2 " | awk '{ print $NF }'
}

# check KIND TEMPLATE: the app of KIND (gunicorn: Flask, django: Django on
# gunicorn, uvicorn: Starlette) under memfence run in a 512 MiB cgroup, 60 requests to
# distinct ids, then the scrape.
check() {
	local kind=$1 template=$2 port hport cmd i n names
	port=$(mf_free_port)
	hport=$(mf_free_port)
	case $kind in
	gunicorn) cmd=(-m gunicorn -w 2 --chdir "$HERE" -b "127.0.0.1:$port" routes_app:flask_app) ;;
	django) cmd=(-m gunicorn -w 2 --chdir "$HERE" -b "127.0.0.1:$port" routes_django:django_app) ;;
	uvicorn) cmd=(-m uvicorn --app-dir "$HERE" --host 127.0.0.1 --port "$port" --no-access-log
		routes_app:starlette_app) ;;
	esac
	mf_need_cgroup "routes-$kind" $((512 << 20))
	mf_cgroup_spawn "$MF_CG" env -u PYTHONPATH "$MEMFENCE" run --http "127.0.0.1:$hport" \
		--report-dir "$MF_TMP/r-$kind" -- "$PY" "${cmd[@]}" 2>"$MF_TMP/$kind.err"
	for i in $(seq 1 600); do
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/started" && break
		kill -0 "$MF_SPAWNED" 2>/dev/null || fail "$kind did not start: $(tail -n 20 "$MF_TMP/$kind.err")"
		sleep 0.1
	done
	for i in $(seq 1 60); do
		curl -sf -o /dev/null --max-time 10 "http://127.0.0.1:$port/users/$((i * 7))" ||
			fail "$kind: GET /users/$((i * 7)) failed"
	done
	# The supervisor reads finished scopes a few times a second: wait (10 s
	# at most) until it has all 60.
	for i in $(seq 1 100); do
		n=$(series "$hport" "memfence_scope_peak_bytes_count{name=\"GET $template\"}")
		[ "${n:-0}" -ge 60 ] && break
		sleep 0.1
	done
	expect_eq "$kind: requests in the peak histogram of GET $template" 60 "${n:-0}"
	curl -s --max-time 10 "http://127.0.0.1:$hport/metrics" >"$MF_TMP/$kind.metrics"
	names=$(grep -o 'name="[^"]*"' "$MF_TMP/$kind.metrics" | grep users | sort -u | tr '\n' ' ')
	expect_eq "$kind: route label values" "name=\"GET $template\" " "$names"
	expect_eq "$kind: build_info" 1 "$(mf_metric "127.0.0.1:$hport" "memfence_build_info{version=\"$VERSION\"}")"
	grep -q '^memfence_leak_forecast_seconds ' "$MF_TMP/$kind.metrics" &&
		fail "$kind: a forecast without a leak: $(grep '^memfence_leak' "$MF_TMP/$kind.metrics")"
	promtool check metrics <"$MF_TMP/$kind.metrics" >"$MF_TMP/promtool.out" 2>&1 ||
		fail "$kind: promtool check metrics: $(cat "$MF_TMP/promtool.out")"
	# Every memfence metric the rules and the dashboard use is served (the
	# memory-pressure ones on cgroup v2 with PSI only).
	for n in $(grep -oh 'memfence_[a-z0-9_]*' "$MON/prometheusrule.yaml" "$MON/grafana-dashboard.json" |
			sed -E 's/_(bucket|sum|count)$//' | sort -u); do
		case $n in memfence_memory_pressure_*) continue ;; esac
		grep -q "^# TYPE $n " "$MF_TMP/$kind.metrics" ||
			fail "docs/monitoring uses $n, which /metrics does not serve"
	done
	mf_cgroup_stop "$MF_SPAWNED" "$MF_CG"
}

check gunicorn '/users/<int:uid>'
check django '/users/<int:uid>'
check uvicorn '/users/{uid:int}'
echo ok
