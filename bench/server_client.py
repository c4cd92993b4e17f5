"""A fixed-concurrency client for the example model server, over gRPC or
HTTP: the server's steady state, as requests per second and latency
percentiles.

    server_client.py --target 127.0.0.1:PORT [--http] [--calls N] [--concurrency C]

C threads call without pause; the first calls (a tenth, at least C) warm
the server up and are not counted. Every call asks for 1 to 4 MiB of
history (rows of 1 MiB: around glibc's mmap threshold), the same sequence
every time. --http: GET /features of examples/model_server/http_server.py
on one kept-alive connection per thread. Prints one JSON object: rps,
p50_ms, p99_ms, calls, errors.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples", "model_server"))
import features_pb  # noqa: E402


def grpc_caller(target):
    """call(i) -> ok, and a function that closes the channel."""
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=20)
    stub = channel.unary_unary(features_pb.COMPUTE,
                               request_serializer=features_pb.FeatureRequest.SerializeToString,
                               response_deserializer=features_pb.FeatureResponse.FromString)

    def call(i):
        try:
            stub(features_pb.FeatureRequest(customer_id="c-%d" % i, history_mib=1 + i % 4),
                 timeout=60)
            return True
        except grpc.RpcError:
            return False
    return call, channel.close


def http_caller(target):
    host, port = target.rsplit(":", 1)
    local = threading.local()

    def call(i):
        try:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection(host, int(port), timeout=60)
            local.conn.request("GET", "/features?customer=c-%d&history_mib=%d" % (i, 1 + i % 4))
            r = local.conn.getresponse()
            r.read()
            if r.getheader("connection", "").lower() == "close":
                del local.conn
            return r.status == 200
        except (OSError, http.client.HTTPException):
            local.__dict__.pop("conn", None)
            return False
    return call, lambda: None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--calls", type=int, default=1500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--http", action="store_true", help="HTTP instead of gRPC")
    args = ap.parse_args()
    warm = max(args.concurrency, args.calls // 10)
    total = warm + args.calls
    call, close = (http_caller if args.http else grpc_caller)(args.target)
    lock = threading.Lock()
    state = {"next": 0, "errors": 0, "start": None}
    lat = []

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= total:
                    return
                state["next"] = i + 1
                if i == warm:
                    state["start"] = time.monotonic()
            t0 = time.monotonic()
            ok = call(i)
            dt = time.monotonic() - t0
            if i >= warm:
                with lock:
                    lat.append(dt)
                    state["errors"] += not ok

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - state["start"]
    close()
    lat.sort()
    pct = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(json.dumps({"rps": len(lat) / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                      "calls": len(lat), "errors": state["errors"]}))


if __name__ == "__main__":
    main()
