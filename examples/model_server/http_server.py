"""The model server's feature computation over HTTP, as a plain WSGI app and
a plain ASGI app (no framework, no memfence code), served by gunicorn or
uvicorn. From this directory:

    memfence run -- gunicorn -w 4 -b 127.0.0.1:8080 http_server:wsgi_app
    memfence run -- gunicorn -k gthread -w 2 --threads 8 -b 127.0.0.1:8080 http_server:wsgi_app
    memfence run -- gunicorn -k uvicorn.workers.UvicornWorker -w 2 -b 127.0.0.1:8080 http_server:asgi_app
    memfence run -- uvicorn --port 8080 http_server:asgi_app
    curl '127.0.0.1:8080/features?customer=c1&history_mib=20'

200 with a JSON body. Under `memfence run` the bootstrap wraps the app in
memfence's middleware; a request that runs out of memory gets 503 with
Retry-After while the others go on. Without the supervisor (`memfence exec
--account`, or no memfence), serve wsgi_with_middleware or
asgi_with_middleware: the same apps, wrapped in code.
"""
import asyncio
import json
import time
from urllib.parse import parse_qs

MIB = 1 << 20


def _params(query):
    """customer, history_mib (-1 when invalid), wait_ms (a slow data store)."""
    q = parse_qs(query)
    try:
        mib = int(q.get("history_mib", ["0"])[0])
        wait = min(60000, max(0, int(q.get("wait_ms", ["0"])[0])))
    except ValueError:
        mib, wait = -1, 0
    return q.get("customer", [""])[0], mib, wait


def _row(i):
    # A request's history: 1 MiB of bytes and 64 floats per row, built one
    # row at a time, as mixed Python objects.
    row = bytes([i & 0xFF]) * MIB
    return row, [float(row[0]) * k for k in range(64)]


def _answer(customer, rows, stats):
    score = sum(s[1] for s in stats) / max(1, len(stats))
    return json.dumps({"customer": customer, "rows": len(rows), "score": score}).encode()


def wsgi_app(environ, start_response):
    if environ.get("PATH_INFO") != "/features":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    customer, mib, wait = _params(environ.get("QUERY_STRING", ""))
    if mib < 0:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"history_mib and wait_ms must be numbers\n"]
    time.sleep(wait / 1000)
    rows, stats = [], []
    for i in range(mib):
        row, st = _row(i)
        rows.append(row)
        stats.append(st)
    body = _answer(customer, rows, stats)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return

    async def reply(status, body, ctype=b"text/plain"):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    if scope["path"] != "/features":
        return await reply(404, b"not found\n")
    customer, mib, wait = _params(scope.get("query_string", b"").decode("latin-1"))
    if mib < 0:
        return await reply(400, b"history_mib and wait_ms must be numbers\n")
    await asyncio.sleep(wait / 1000)
    rows, stats = [], []
    for i in range(mib):
        row, st = _row(i)
        rows.append(row)
        stats.append(st)
        await asyncio.sleep(0)   # as a real handler awaits its data store
    await reply(200, _answer(customer, rows, stats), b"application/json")


def __getattr__(name):
    # wsgi_with_middleware, asgi_with_middleware: made when asked for, so
    # that the plain apps need no memfence installed.
    if name in ("wsgi_with_middleware", "asgi_with_middleware"):
        import memfence.asgi
        import memfence.wsgi
        if name == "wsgi_with_middleware":
            app = memfence.wsgi.Middleware(wsgi_app)
        else:
            app = memfence.asgi.Middleware(asgi_app)
        globals()[name] = app
        return app
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
