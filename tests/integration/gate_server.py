#!/usr/bin/env python3
"""A gRPC server for the gate's tests: /gate.Test/Hold sleeps for the
seconds given in the request (text), holding its admission meanwhile.
Run under `memfence run`, which adds memfence's interceptor."""
import sys
import time
from concurrent import futures

import grpc


def hold(request, context):
    time.sleep(float(request.decode() or "0"))
    return b"ok"


def main():
    port, ready = sys.argv[1], sys.argv[2]
    handler = grpc.method_handlers_generic_handler("gate.Test", {
        "Hold": grpc.unary_unary_rpc_method_handler(hold)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=(handler,))
    server.add_insecure_port("127.0.0.1:%s" % port)
    server.start()
    with open(ready, "w") as f:
        f.write("ready\n")
    server.wait_for_termination(timeout=120)


if __name__ == "__main__":
    main()
