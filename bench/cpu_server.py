#!/usr/bin/env python3
"""A CPU-bound gRPC server for the benchmarks: the example model server's
service (same messages, bench/server_client.py drives both), with no
wait in a call and mixed objects instead of MiB rows.

    python3 cpu_server.py --port PORT [--workers 8] [--ready-file FILE]

A call of history_mib N builds N MiB of bytearrays of 256 KiB to 2 MiB
(either side of the shim's and glibc's 1 MiB line) and a few thousand
small objects (tuples, floats, a dict) per MiB, works on all of it and
drops it: what an allocation-heavy request server does between two
waits, so that the cost of the allocator shows undiluted.
"""
import argparse
import hashlib
import os
import signal
import sys
import threading
from concurrent import futures

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples", "model_server"))
import features_pb  # noqa: E402

KIB = 1 << 10
# Sizes of a call's buffers, in turn: half of them at or above 1 MiB.
SIZES = (256 * KIB, 1536 * KIB, 512 * KIB, 2048 * KIB, 768 * KIB, 1024 * KIB + 512)


def compute(request, context):
    want = request.history_mib << 20
    bufs, objs, made, k = [], {}, 0, 0
    while made < want:
        n = SIZES[k % len(SIZES)]
        b = bytearray(n)
        b[::4096] = bytes([k & 0xFF]) * len(b[::4096])  # every page written
        bufs.append(b)
        made += n
        for j in range(n // 512):
            objs[(k, j)] = (float(j), k * j, str(j))
        k += 1
    digest = hashlib.blake2b(digest_size=8)
    for b in bufs:
        digest.update(b[:65536])
    score = sum(v[0] for v in objs.values()) / max(1, len(objs))
    return features_pb.FeatureResponse(customer_id=request.customer_id + digest.hexdigest()[:4],
                                       rows=len(bufs), score=score, peak_bytes=made)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--ready-file")
    args = ap.parse_args()
    handler = grpc.method_handlers_generic_handler(features_pb.SERVICE, {
        "Compute": grpc.unary_unary_rpc_method_handler(
            compute, request_deserializer=features_pb.FeatureRequest.FromString,
            response_serializer=features_pb.FeatureResponse.SerializeToString),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         handlers=(handler,))
    server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("%d\n" % os.getpid())
    while not done.wait(1.0):
        pass
    server.stop(2).wait()


if __name__ == "__main__":
    main()
