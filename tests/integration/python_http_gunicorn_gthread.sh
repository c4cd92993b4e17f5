#!/usr/bin/env bash
# The example HTTP model server on gunicorn with 2 gthread workers of 8 threads, under
# `memfence run` with no code change, in a real 512 MiB memory cgroup. See
# tests/http_servers.sh.
. "$(dirname "$0")/../http_servers.sh"
run_server gunicorn-gthread
echo ok
