#!/usr/bin/env python3
"""A gRPC "model server" in the shape of the seed's: a ThreadPoolExecutor of
8 workers computing features whose memory grows with the request.

    python3 server.py --port 50051                  # plain: no memfence at all
    python3 server.py --port 50051 --memfence       # with the interceptor (one line)
    memfence run -- python3 server.py --port 50051  # no code change: the
                                                    # interceptor is added for you

Each call loads the customer's "history" progressively, one MiB-sized row at
a time (as a feature computation reading from a store would), derives a
few floats from each row, and answers with a score. history_mib decides how
much memory the call needs.
"""
import argparse
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import features_pb  # noqa: E402

MIB = 1 << 20


def compute(request, context):
    rows = []
    stats = []
    for i in range(request.history_mib):
        row = bytes([i & 0xFF]) * MIB            # the row, written (really resident)
        rows.append(row)
        stats.append([float(row[0]) * k for k in range(64)])
    score = sum(s[1] for s in stats) / max(1, len(stats))
    peak = len(rows) * MIB
    return features_pb.FeatureResponse(customer_id=request.customer_id, rows=len(rows),
                                       score=score, peak_bytes=peak)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=50051, help="TCP port on 127.0.0.1 (default 50051)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--workers", type=int, default=8, help="worker threads (default 8)")
    ap.add_argument("--memfence", action="store_true",
                    help="add memfence's interceptor (RESOURCE_EXHAUSTED on allocation failures)")
    ap.add_argument("--ready-file", help="write this file once the server is serving")
    args = ap.parse_args(argv)
    if not 0 < args.port < 65536:
        ap.error("invalid --port %d: use 1-65535" % args.port)
    if args.workers < 1:
        ap.error("invalid --workers %d: at least 1" % args.workers)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    interceptors = []
    if args.memfence:
        import memfence.grpc
        interceptors.append(memfence.grpc.ServerInterceptor())

    handler = grpc.method_handlers_generic_handler(features_pb.SERVICE, {
        "Compute": grpc.unary_unary_rpc_method_handler(
            compute, request_deserializer=features_pb.FeatureRequest.FromString,
            response_serializer=features_pb.FeatureResponse.SerializeToString),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         handlers=(handler,), interceptors=interceptors)
    try:
        server.add_insecure_port("%s:%d" % (args.host, args.port))
    except RuntimeError as e:
        sys.exit("server: cannot listen on %s:%d: %s" % (args.host, args.port, e))
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("%d\n" % os.getpid())
    print("serving on %s:%d with %d workers%s" % (args.host, args.port, args.workers,
          ", memfence interceptor" if args.memfence else ""), flush=True)
    while not done.wait(1.0):
        pass
    server.stop(2).wait()
    time.sleep(0)


if __name__ == "__main__":
    main()
