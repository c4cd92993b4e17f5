#!/usr/bin/env python3
"""Calls for the diagnose tests' service (diagnose_server.py): CALLS calls,
CONCURRENCY at a time, each allocating a size drawn from MIB (e.g. 2-10),
plus BIG calls of BIG_MIB (of shared memory with --big-shm) after the
first BIG_AFTER. Stops at DURATION
seconds or when the server is gone. Prints a JSON summary. With --http the
calls are POST /do to the WSGI app of diagnose_server.py (gunicorn); with
--celery BROKER they are tasks of diagnose_celery.py, each waited for."""
import argparse
import http.client
import json
import random
import sys
import threading
import time
from concurrent import futures

import grpc

METHOD = "/diagtest.Work/Do"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--mib", default="4-8")
    ap.add_argument("--hold-ms", type=int, default=0)
    ap.add_argument("--keep-kib", type=int, default=0)
    ap.add_argument("--shm-mib", type=int, default=0)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--big-mib", type=int, default=0)
    ap.add_argument("--big-after", type=int, default=50)
    ap.add_argument("--big-shm", action="store_true",
                    help="big calls map shared memory instead of allocating heap")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--http", action="store_true", help="HTTP (WSGI) instead of gRPC")
    ap.add_argument("--celery", metavar="BROKER", help="Celery tasks instead of gRPC")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    lo, _, hi = args.mib.partition("-")
    lo, hi = int(lo), int(hi or lo)
    rnd = random.Random(args.seed)
    big_at = set()
    if args.big:
        step = max(1, (args.calls - args.big_after) // (args.big + 1))
        big_at = {args.big_after + step * (k + 1) for k in range(args.big)}
    counts = {}
    lock = threading.Lock()
    deadline = time.time() + args.duration
    gone = threading.Event()
    channel = grpc.insecure_channel(args.target)
    grpc_call = channel.unary_unary(METHOD)
    host, _, port = args.target.rpartition(":")
    local = threading.local()
    task = None
    if args.celery:
        import os
        os.environ["CELERY_BROKER"] = args.celery
        os.environ["DIAG_NO_MEMFENCE"] = "1"
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import diagnose_celery
        task = diagnose_celery.do

    def celery_call(req, rid):
        """One task, waited for; a task refused for memory is
        RESOURCE_EXHAUSTED, a lost worker UNAVAILABLE."""
        try:
            task.apply_async(args=[req], task_id=rid).get(timeout=60, propagate=True)
        except Exception as e:                  # the task's own exception, re-raised
            name = type(e).__name__
            return "RESOURCE_EXHAUSTED" if "OutOfMemory" in name or name == "MemoryError" \
                else "UNAVAILABLE" if "Timeout" in name else name
        return "OK"

    def http_call(body, rid):
        """One POST; the code as gRPC names it (503: refused, UNAVAILABLE
        when the server is gone)."""
        try:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
            local.conn.request("POST", "/do", body, {"X-Request-Id": rid,
                                                     "Content-Type": "application/json"})
            r = local.conn.getresponse()
            r.read()
            if r.getheader("Connection", "").lower() == "close":
                del local.conn
        except (OSError, http.client.HTTPException):
            if hasattr(local, "conn"):
                del local.conn
            return "UNAVAILABLE"
        return "OK" if r.status == 200 else "RESOURCE_EXHAUSTED" if r.status == 503 else \
            "HTTP_%d" % r.status

    def one(i):
        if gone.is_set() or time.time() > deadline:
            return
        if i in big_at:
            req = {"shm_mib" if args.big_shm else "mib": args.big_mib}
            rid = "big-%d" % i
        else:
            req, rid = {"mib": rnd.randint(lo, hi), "hold_ms": args.hold_ms,
                        "keep_kib": args.keep_kib, "shm_mib": args.shm_mib}, "req-%d" % i
        if task is not None:
            code = celery_call(req, rid)
        elif args.http:
            code = http_call(json.dumps(req).encode(), rid)
        else:
            try:
                grpc_call(json.dumps(req).encode(), timeout=30,
                          metadata=(("x-request-id", rid),))
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
        if code == "UNAVAILABLE":
            gone.set()
        with lock:
            counts[code] = counts.get(code, 0) + 1
            if rid.startswith("big"):
                counts["big_" + code] = counts.get("big_" + code, 0) + 1

    with futures.ThreadPoolExecutor(max_workers=args.concurrency) as ex:
        list(ex.map(one, range(args.calls)))
    print(json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
