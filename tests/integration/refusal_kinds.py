"""A server whose calls are refused in the two ways a client must tell
apart (tests/integration/refusal_kinds.sh), counting every run of each:
  Huge / GET /huge          asks for 1 GiB, more than the container holds:
                            permanent;
  Budgeted / POST /upload   crosses its budget of 16 MiB: permanent;
  Flaky / GET /flaky        a MemoryError in its first two runs only (what
                            memory held by others looks like): transient;
  Count / GET /count        the runs so far, as JSON.

    refusal_kinds.py grpc PORT       a grpc.server
    refusal_kinds:wsgi_app           for gunicorn
    refusal_kinds:asgi_app           for uvicorn
"""
import json
import sys
import threading

MIB = 1 << 20
runs = {"huge": 0, "budgeted": 0, "flaky": 0}
lock = threading.Lock()


def run(kind):
    with lock:
        runs[kind] += 1
        n = runs[kind]
    if kind == "huge":
        return len(bytearray(1 << 30))
    if kind == "budgeted":
        rows = [bytearray(MIB) for _ in range(64)]
        return len(rows)
    if n <= 2:
        raise MemoryError("held by others")
    return n


def counts():
    with lock:
        return json.dumps(runs).encode()


def wsgi_app_raw(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/count":
        body = counts()
    else:
        if environ.get("REQUEST_METHOD") == "POST":
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        body = b"%d" % run({"/huge": "huge", "/upload": "budgeted"}.get(path, "flaky"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app_raw(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    while True:
        m = await receive()
        if not m.get("more_body"):
            break
    if path == "/count":
        body = counts()
    else:
        body = b"%d" % run({"/huge": "huge", "/upload": "budgeted"}.get(path, "flaky"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


import memfence.asgi  # noqa: E402
import memfence.wsgi  # noqa: E402

wsgi_app = memfence.wsgi.Middleware(wsgi_app_raw, budgets={"POST /upload": "16M"})
asgi_app = memfence.asgi.Middleware(asgi_app_raw, budgets={"POST /upload": "16M"})


def grpc_main(port):
    from concurrent import futures

    import grpc
    import memfence.grpc as mg

    def handler(kind):
        def call(request, context):
            return b"%d" % run(kind)
        return grpc.unary_unary_rpc_method_handler(call)

    handlers = {"Huge": handler("huge"), "Budgeted": handler("budgeted"),
                "Flaky": handler("flaky"),
                "Count": grpc.unary_unary_rpc_method_handler(lambda r, c: counts())}
    icpt = mg.ServerInterceptor(budgets={"/modelserver.Features/Budgeted": "16M"})
    server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[icpt])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("modelserver.Features", handlers),))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    grpc_main(int(sys.argv[2]))
