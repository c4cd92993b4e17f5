"""Sends one 40 MiB message, then a small one; prints each outcome."""
import sys

import grpc

ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1],
                           options=[("grpc.max_send_message_length", 256 << 20)])
call = ch.unary_unary("/t.Inbound/Echo")
for data, deadline in ((b"x" * (40 << 20), 5), (b"small", 5)):
    try:
        print(call(data, timeout=deadline).decode())
    except grpc.RpcError as e:
        print(e.code().name)
