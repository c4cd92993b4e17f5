#!/usr/bin/env bash
# The model server with no code change under `memfence run` (the Python
# bootstrap on PYTHONPATH adds the interceptor), and without memfence at all
# (OOM-killed). See python_model_server.sh.
. "$(dirname "$0")/python_model_server.sh"
for m in auto plain; do run_mode "$m"; done
