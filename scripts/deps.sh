#!/usr/bin/env bash
# Install the Debian packages a make target needs, when they are missing.
#
#   scripts/deps.sh build|check|demo|bench|runtime
#   scripts/deps.sh --list LIST      print the packages of LIST, one a line
#
# Only Debian packages are installed (apt-get); nothing else is downloaded.
# Not root, or no apt-get: print what is missing and go on, so the build
# itself reports what it cannot find.
set -eu

# Why each package is there:
#   gcc make pkg-config        the build
#   libjansson-dev             JSON for inspect/stat/status output and reports
#   libmicrohttpd-dev          the supervisor's HTTP endpoints (bounded connections)
#   libsqlite3-dev             the embedded quarantine store
#   libhiredis-dev             the shared quarantine store on Redis
#   zlib1g-dev                 gzip of pprof profiles
#   libcurl4-openssl-dev       run --profile-push (libcurl, loaded only by a push)
#   python3-dev                the Python package's C extension
#   python3-grpcio             gRPC interceptor, example server, tests
#   gunicorn python3-gunicorn uvicorn python3-uvicorn   the HTTP example server and its tests
#   python3-celery python3-redis redis-server   Celery integration and its tests
#   python3-rq                 the RQ adapter's test
#   python3-flask python3-starlette python3-django   route templates as scope names (metrics_routes.sh)
#   prometheus                 promtool: checks the scrape and docs/monitoring's rules
#   procps                     ps/pkill used by tests
#   python3-venv python3-setuptools            the test that pip-installs the package
#   dpkg-dev                   dpkg-shlibdeps, for the Depends of `make deb` (tests/integration/deb.sh)
#   python3-protobuf           decodes pprof output in the profiler's tests
#   curl                       HTTP probes in tests and the demo
#   user-mode-linux            a real cgroup v2 kernel for tests/integration/v2_*
#                              (this machine's memory controller is on cgroup v1)
#   chromium                   loads the page of `memfence diagnose --html` in a real
#                              browser (headless) in its test
#   strace                     counts the shim's write() calls per warning (failure_output.sh)
#   clang libclang-rt-14-dev   libFuzzer, ASan and UBSan for the fuzz targets (`make fuzz`,
#                              tests/integration/fuzz.sh); gcc has no libFuzzer
#   hyperfine heaptrack python3-numpy time       benchmarks (and python3-grpcio: the server;
#                              python3-celery python3-redis redis-server: Celery throughput)
#   python3-yaml               reads the Kubernetes example (tests/integration/manifest_restricted.sh)
# What an installed memfence needs to run (the container image's last stage,
# examples/model_server/Dockerfile; tests/integration/container_example.sh
# checks it against the libraries the build links and loads):
#   python3 python3-venv       the interpreter, and the virtual environment the wheel goes in
#   libjansson4                linked by the command and the Python extension
#   libmicrohttpd12 libsqlite3-0 libhiredis0.14 libcurl4 zlib1g   loaded by soname when the HTTP
#                              server, a quarantine store, a push or a pprof profile starts
#                              (src/host/dynlib.c)
build=(gcc make pkg-config libjansson-dev libmicrohttpd-dev libsqlite3-dev libhiredis-dev zlib1g-dev libcurl4-openssl-dev python3-dev)
check=("${build[@]}" python3-grpcio gunicorn python3-gunicorn uvicorn python3-uvicorn python3-celery python3-redis python3-rq python3-flask python3-starlette python3-django prometheus redis-server procps python3-venv python3-setuptools dpkg-dev python3-protobuf curl user-mode-linux chromium strace clang libclang-rt-14-dev python3-yaml)
demo=("${build[@]}" python3-grpcio procps curl)
bench=("${build[@]}" hyperfine heaptrack python3-numpy time python3-grpcio python3-protobuf python3-gunicorn python3-uvicorn python3-celery python3-redis redis-server)
runtime=(python3 python3-venv libjansson4 zlib1g libmicrohttpd12 libsqlite3-0 libhiredis0.14 libcurl4)

list=0
[ "${1:-}" = --list ] && { list=1; shift; }
case "${1:-}" in
build) want=("${build[@]}") ;;
check) want=("${check[@]}") ;;
demo) want=("${demo[@]}") ;;
bench) want=("${bench[@]}") ;;
runtime) want=("${runtime[@]}") ;;
*) echo "usage: $0 [--list] build|check|demo|bench|runtime" >&2; exit 2 ;;
esac
[ "$list" = 1 ] && { printf '%s\n' "${want[@]}"; exit 0; }

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "memfence: these Debian packages are missing: ${missing[*]}" >&2
	echo "memfence: install them with: sudo apt-get install ${missing[*]}" >&2
	exit 0
fi
echo "memfence: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts redis-server as a system service where it can; the tests run
# their own on a loopback port and need no system instance.
