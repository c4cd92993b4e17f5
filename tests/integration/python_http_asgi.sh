#!/usr/bin/env bash
# The model server's computation as an ASGI app (requests interleaved on one
# event loop) with memfence's middleware under `memfence exec --account` in
# a real 512 MiB memory cgroup: ~300 calls at concurrency 16 with five
# oversized ones; no death, no OOM kill, the oversized calls get
# 503 + Retry-After, nothing else goes wrong. See python_model_server.sh.
#
# With the rlimit alone (exec without --account) the allocation that fails
# can be in asyncio's own transport code, which then resets a connection:
# the shim refuses the oversized request's allocations before the rlimit is
# reached, so that the event loop keeps its room.
. "$(dirname "$0")/python_model_server.sh"
run_mode account asgi
