#!/usr/bin/env bash
# The model server's WSGI app with memfence's middleware added in code
# (http_server:wsgi_with_middleware) on gunicorn's gthread worker, under
# `memfence exec --account` (the shim, no supervisor) in a real 512 MiB
# memory cgroup: the same load and assertions as tests/http_servers.sh.
. "$(dirname "$0")/../http_servers.sh"
run_server gunicorn-gthread account
echo ok
