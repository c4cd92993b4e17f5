"""A gRPC server for python_shim.sh: prints its port, serves until killed.
argv[1]: "memfence" to add the interceptor, "plain" for none."""
import sys
import time
from concurrent import futures

import grpc


def echo_len(request, context):
    return b"%d" % len(request)


interceptors = []
if sys.argv[1] == "memfence":
    import memfence.grpc
    interceptors.append(memfence.grpc.ServerInterceptor())
server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=interceptors,
                     options=[("grpc.max_receive_message_length", 256 << 20)])
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "t.Inbound", {"Echo": grpc.unary_unary_rpc_method_handler(echo_len)}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
time.sleep(120)
