#!/usr/bin/env bash
# The example HTTP model server on uvicorn with 2 worker processes (ASGI), under
# `memfence run` with no code change, in a real 512 MiB memory cgroup. See
# tests/http_servers.sh.
. "$(dirname "$0")/../http_servers.sh"
run_server uvicorn-workers
echo ok
