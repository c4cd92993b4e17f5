#!/usr/bin/env python3
"""The model server's feature computation over HTTP, as a WSGI app (served
by the standard library's WSGI server on a pool of threads) or an ASGI app (served by a
small asyncio HTTP/1.1 server below), to show memfence's HTTP middleware.

    python3 http_server.py --app wsgi --port 8080 --memfence
    python3 http_server.py --app asgi --port 8080 --memfence
    curl '127.0.0.1:8080/features?customer=c1&history_mib=20'

200 with a JSON body; with --memfence, a request that runs out of memory gets
503 with Retry-After while the others go on.
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from concurrent import futures
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

MIB = 1 << 20


def _params(query):
    q = parse_qs(query)
    try:
        mib = int(q.get("history_mib", ["0"])[0])
    except ValueError:
        mib = -1
    return q.get("customer", [""])[0], mib


def _row(i):
    row = bytes([i & 0xFF]) * MIB
    return row, [float(row[0]) * k for k in range(64)]


def _answer(customer, rows, stats):
    score = sum(s[1] for s in stats) / max(1, len(stats))
    return json.dumps({"customer": customer, "rows": len(rows), "score": score}).encode()


def wsgi_app(environ, start_response):
    if environ.get("PATH_INFO") != "/features":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    customer, mib = _params(environ.get("QUERY_STRING", ""))
    if mib < 0:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"history_mib must be a number\n"]
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
    if scope["type"] != "http":
        return
    async def reply(status, body, ctype=b"text/plain"):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    if scope["path"] != "/features":
        return await reply(404, b"not found\n")
    customer, mib = _params(scope.get("query_string", b"").decode("latin-1"))
    if mib < 0:
        return await reply(400, b"history_mib must be a number\n")
    rows, stats = [], []
    for i in range(mib):
        row, st = _row(i)
        rows.append(row)
        stats.append(st)
        await asyncio.sleep(0)   # as a real handler awaits its data store
    await reply(200, _answer(customer, rows, stats), b"application/json")


class _PooledWSGIServer(WSGIServer):
    """Requests served by a fixed pool of threads, as gunicorn's gthread
    worker or a gRPC server's executor do."""

    threads = 8

    def server_activate(self):
        super().server_activate()
        self.pool = futures.ThreadPoolExecutor(self.threads)

    def process_request(self, request, client_address):
        self.pool.submit(self._serve, request, client_address)

    def _serve(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve_wsgi(app, host, port, ready, threads):
    _PooledWSGIServer.threads = threads
    httpd = make_server(host, port, app, server_class=_PooledWSGIServer,
                        handler_class=_QuietHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    ready()
    httpd.serve_forever()


# Built before memory runs short: answering must not need an allocation.
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
         b"Content-Length: 0\r\n\r\n")


async def _handle(app, reader, writer):
    """The middleware turns a MemoryError inside the app into a 503; this
    does the same for one that strikes the server's own reading, parsing or
    writing of the connection (one event loop serves every request, so the
    allocation that fails can be anywhere), instead of resetting it."""
    try:
        await _handle_request(app, reader, writer)
    except MemoryError:
        try:
            writer.write(_BUSY)
            await writer.drain()
        except Exception:
            pass
        writer.close()


async def _handle_request(app, reader, writer):
    """One request per connection (Connection: close), GET/HEAD without a
    body: enough for the demonstration and the tests."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    path, _, query = target.partition("?")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower().encode("latin-1"), v.strip().encode("latin-1")))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "headers": headers, "server": writer.get_extra_info("sockname")[:2],
             "client": writer.get_extra_info("peername")[:2]}
    sent = {"started": False}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["started"] = True
            out = ["HTTP/1.1 %d %s" % (message["status"], _REASONS.get(message["status"], "Status"))]
            out += ["%s: %s" % (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])]
            out.append("Connection: close")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        elif message["type"] == "http.response.body":
            writer.write(message.get("body", b""))
            await writer.drain()

    try:
        await app(scope, receive, send)
    except Exception as e:
        if not sent["started"]:
            body = ("internal error: %s\n" % type(e).__name__).encode()
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        print("request failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
    try:
        await writer.drain()
    finally:
        writer.close()


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
            503: "Service Unavailable"}


def serve_asgi(app, host, port, ready, threads):
    async def main():
        server = await asyncio.start_server(lambda r, w: _handle(app, r, w), host, port,
                                            backlog=128)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        ready()
        async with server:
            await stop.wait()
    asyncio.run(main())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", choices=("wsgi", "asgi"), default="wsgi")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--threads", type=int, default=8, help="WSGI worker threads (default 8)")
    ap.add_argument("--memfence", action="store_true", help="wrap the app in memfence's middleware")
    ap.add_argument("--ready-file", help="write this file once the server is serving")
    args = ap.parse_args(argv)
    if not 0 < args.port < 65536:
        ap.error("invalid --port %d: use 1-65535" % args.port)
    if args.threads < 1:
        ap.error("invalid --threads %d: at least 1" % args.threads)
    app = wsgi_app if args.app == "wsgi" else asgi_app
    if args.memfence:
        import memfence.asgi
        import memfence.wsgi
        app = (memfence.wsgi if args.app == "wsgi" else memfence.asgi).Middleware(app)

    def ready():
        if args.ready_file:
            with open(args.ready_file, "w") as f:
                f.write("%d\n" % os.getpid())
        print("serving %s on %s:%d%s" % (args.app, args.host, args.port,
              " with memfence" if args.memfence else ""), flush=True)

    try:
        (serve_wsgi if args.app == "wsgi" else serve_asgi)(app, args.host, args.port, ready,
                                                           args.threads)
    except OSError as e:
        sys.exit("http_server: cannot listen on %s:%d: %s" % (args.host, args.port, e))


if __name__ == "__main__":
    main()
