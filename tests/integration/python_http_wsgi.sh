#!/usr/bin/env bash
# The model server's computation as a WSGI app (a pool of 8 threads) with memfence's middleware under
# `memfence exec` in a real 512 MiB memory cgroup: ~300 calls at concurrency
# 16 with five oversized ones; no death, no OOM kill, the oversized calls get
# 503 + Retry-After, nothing else goes wrong. See python_model_server.sh.
. "$(dirname "$0")/python_model_server.sh"
run_mode exec wsgi
