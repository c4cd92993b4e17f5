#!/usr/bin/env python3
"""A gRPC service for the diagnose tests: each call does what its request
(JSON bytes) says, so that one server plays every case. The same calls as
a WSGI app (wsgi_app: POST the JSON to /do) for gunicorn.

    {"mib": 8, "hold_ms": 50}   allocate 8 MiB one MiB row at a time (written,
                                so really resident), hold it, free it
    {"keep_kib": 128}           and keep 128 KiB for ever (a leak)
    {"shm_mib": 16}             and map 16 MiB of shared memory (memfd) and keep
                                it: memory the heap accounting does not see

No memfence code here: `memfence run` adds the interceptor (one scope per
call, named after the method, with the x-request-id metadata as its id),
or wraps the app gunicorn loads (one scope per route, "POST /do", with the
X-Request-Id header as its id).
"""
import argparse
import json
import mmap
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

MIB = 1 << 20
METHOD = "/diagtest.Work/Do"
KEPT = []
SHARED = []
LOCK = threading.Lock()


def do(request, context):
    req = json.loads(request or b"{}")
    rows = [bytes([i & 0xFF]) * MIB for i in range(int(req.get("mib", 0)))]
    if req.get("hold_ms"):
        time.sleep(req["hold_ms"] / 1000.0)
    if req.get("keep_kib"):
        with LOCK:
            KEPT.append(b"k" * (int(req["keep_kib"]) << 10))
    if req.get("shm_mib"):
        size = int(req["shm_mib"]) * MIB
        fd = os.memfd_create("diagtest")
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size)    # MAP_SHARED: shmem, charged to the cgroup
        os.close(fd)
        chunk = b"s" * MIB
        for off in range(0, size, MIB):
            m[off:off + MIB] = chunk
        with LOCK:
            SHARED.append(m)
    return json.dumps({"rows": len(rows)}).encode()


def wsgi_app(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = do(environ["wsgi.input"].read(n) if n else b"", None)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--ready-file")
    args = ap.parse_args()
    handler = grpc.method_handlers_generic_handler("diagtest.Work", {
        "Do": grpc.unary_unary_rpc_method_handler(do),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         handlers=(handler,), maximum_concurrent_rpcs=args.workers)
    server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.ready_file + ".tmp", args.ready_file)
    while not done.wait(0.5):
        pass
    server.stop(1).wait()


if __name__ == "__main__":
    sys.exit(main())
