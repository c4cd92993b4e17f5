#!/usr/bin/env bash
# The model server's ASGI app with memfence's middleware added in code
# (http_server:asgi_with_middleware) on uvicorn, under `memfence exec
# --account` (the shim, no supervisor) in a real 512 MiB memory cgroup: the
# same load and assertions as tests/http_servers.sh. Requests interleave on
# one event loop; each is one scope across its awaits, so the shim refuses
# the largest request first.
#
# With the rlimit alone (exec without --account) the allocation that fails
# can be in asyncio's own transport code, which then resets a connection:
# the shim refuses the oversized request's allocations before the rlimit is
# reached, so that the event loop keeps its room.
. "$(dirname "$0")/../http_servers.sh"
run_server uvicorn account
echo ok
