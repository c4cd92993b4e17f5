#!/usr/bin/env bash
# The example HTTP model server on uvicorn alone, one process (ASGI), under
# `memfence run` with no code change, in a real 512 MiB memory cgroup. See
# tests/http_servers.sh.
. "$(dirname "$0")/../http_servers.sh"
run_server uvicorn
echo ok
