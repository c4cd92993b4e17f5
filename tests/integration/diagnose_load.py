#!/usr/bin/env python3
"""Calls for the diagnose tests' service (diagnose_server.py): CALLS calls,
CONCURRENCY at a time, each allocating a size drawn from MIB (e.g. 2-10),
plus BIG calls of BIG_MIB (of shared memory with --big-shm) after the
first BIG_AFTER. Stops at DURATION
seconds or when the server is gone. Prints a JSON summary."""
import argparse
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
    args = ap.parse_args()
    lo, _, hi = args.mib.partition("-")
    lo, hi = int(lo), int(hi or lo)
    rnd = random.Random(7)
    big_at = set()
    if args.big:
        step = max(1, (args.calls - args.big_after) // (args.big + 1))
        big_at = {args.big_after + step * (k + 1) for k in range(args.big)}
    counts = {}
    lock = threading.Lock()
    deadline = time.time() + args.duration
    gone = threading.Event()
    channel = grpc.insecure_channel(args.target)
    call = channel.unary_unary(METHOD)

    def one(i):
        if gone.is_set() or time.time() > deadline:
            return
        if i in big_at:
            req = {"shm_mib" if args.big_shm else "mib": args.big_mib}
            rid = "big-%d" % i
        else:
            req, rid = {"mib": rnd.randint(lo, hi), "hold_ms": args.hold_ms,
                        "keep_kib": args.keep_kib, "shm_mib": args.shm_mib}, "req-%d" % i
        try:
            call(json.dumps(req).encode(), timeout=30, metadata=(("x-request-id", rid),))
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
