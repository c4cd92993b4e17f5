#!/usr/bin/env bash
# The model server under `memfence exec --account` (the accounting shim) with
# the interceptor, in a real 512 MiB memory cgroup. See python_model_server.sh.
. "$(dirname "$0")/python_model_server.sh"
run_mode account
