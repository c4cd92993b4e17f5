"""WSGI and ASGI middleware, called directly with a request the way a
server would call them; the applications are real small apps."""
import asyncio
import io
import os
import unittest
from urllib.parse import parse_qs

import memfence.asgi
import memfence.gate
import memfence.wsgi

MIB = 1 << 20
# Under the shim 4 EiB is a permanent refusal (more than the whole line or
# the heap limit): no Retry-After. Without it a MemoryError is a MemoryError.
SHIM = os.environ.get("MEMFENCE_EXPECT_SHIM") == "1"


def compute(mib):
    if mib < 0:
        raise MemoryError("held by others")  # what a transient refusal looks like
    if mib > 1 << 20:
        return bytes(bytearray(1 << 62))  # a real refusal
    return sum(len(c) for c in [b"\x06" * MIB for _ in range(mib)])


def wsgi_app(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    mib = int(q.get("mib", ["1"])[0])
    if environ["PATH_INFO"] == "/stream":
        # The work happens while the body is produced, after start_response.
        def body():
            yield b"%d\n" % compute(mib)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    n = compute(mib)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d\n" % n]


def wsgi_call(app, path, query="", headers=None):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.input": io.BytesIO(),
               "wsgi.errors": io.StringIO(), "wsgi.url_scheme": "http"}
    environ.update(headers or {})
    got = {}

    def start_response(status, hdrs, exc_info=None):
        got["status"], got["headers"] = status, dict(hdrs)
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return got["status"], got["headers"], body


class FakeGate:
    """Stands in for memfence.gate.admit / admit_async (the real gate needs
    `memfence run`): records when a request enters and leaves, and times
    out when told to."""

    def __init__(self, timeout=False):
        self.timeout = timeout
        self.log = []
        self.saved = None

    def install(self, test):
        self.saved = (memfence.gate.admit, memfence.gate.admit_async)
        gate = self

        class admit:
            def __init__(self, name, need=None, timeout=None):
                self.name = name

            def __enter__(self):
                gate.log.append(("enter", self.name, memfence.current_scope() is not None))
                if gate.timeout:
                    raise memfence.gate.GateTimeout(self.name, 0, 0.01)
                return self

            def __exit__(self, *exc):
                gate.log.append(("leave", self.name))
                return False

        class admit_async(admit):
            async def __aenter__(self):
                await asyncio.sleep(0)   # a poll: the loop goes on
                return self.__enter__()

            async def __aexit__(self, *exc):
                return self.__exit__(*exc)

        memfence.gate.admit, memfence.gate.admit_async = admit, admit_async
        test.addCleanup(self.restore)
        return self

    def restore(self):
        memfence.gate.admit, memfence.gate.admit_async = self.saved


class TestWSGI(unittest.TestCase):
    def setUp(self):
        self.failures = []
        self.app = memfence.wsgi.Middleware(wsgi_app, retry_after=3,
                                            on_failure=lambda *a: self.failures.append(a))

    def test_ok(self):
        status, headers, body = wsgi_call(self.app, "/features", "mib=2")
        self.assertEqual(status, "200 OK")
        self.assertEqual(body, b"%d\n" % (2 * MIB))

    def test_memory_error_is_503(self):
        status, headers, body = wsgi_call(self.app, "/features", "mib=%d" % (1 << 30),
                                          {"HTTP_X_REQUEST_ID": "w-9"})
        self.assertEqual(status, "503 Service Unavailable")
        self.assertEqual(headers.get("Retry-After"), None if SHIM else "3")
        self.assertIn(b"GET /features", body)
        self.assertIn(b"w-9", body)
        self.assertEqual(self.failures[0][:2], ("GET /features", "w-9"))
        self.assertEqual(self.failures[0][3].failed, 1)

    def test_transient_keeps_retry_after(self):
        status, headers, body = wsgi_call(self.app, "/features", "mib=-1")
        self.assertEqual(status, "503 Service Unavailable")
        self.assertEqual(headers["Retry-After"], "3")
        self.assertIn(b"retry later", body)

    def test_failure_in_first_chunk_is_503(self):
        status, headers, _ = wsgi_call(self.app, "/stream", "mib=%d" % (1 << 30))
        self.assertEqual(status, "503 Service Unavailable")
        status, _, body = wsgi_call(self.app, "/stream", "mib=1")
        self.assertEqual((status, body), ("200 OK", b"%d\n" % MIB))

    def test_waits_at_the_gate_in_its_scope(self):
        gate = FakeGate().install(self)
        seen = []

        def app(environ, start_response):
            seen.append(list(gate.log))
            start_response("200 OK", [])

            def body():
                yield b"a"
                seen.append(list(gate.log))
                yield b"b"
            return body()
        status, _, body = wsgi_call(memfence.wsgi.Middleware(app), "/g")
        self.assertEqual((status, body), ("200 OK", b"ab"))
        # Admitted before the application ran, in the request's scope; held
        # until the last chunk.
        self.assertEqual(seen, [[("enter", "GET /g", True)]] * 2)
        self.assertEqual(gate.log, [("enter", "GET /g", True), ("leave", "GET /g")])

    def test_gate_timeout_is_503_before_the_app(self):
        FakeGate(timeout=True).install(self)
        ran = []

        def app(environ, start_response):
            ran.append(1)
            start_response("200 OK", [])
            return [b"x"]
        status, headers, body = wsgi_call(memfence.wsgi.Middleware(app, retry_after=2), "/g")
        self.assertEqual(status, "503 Service Unavailable")
        self.assertEqual(headers["Retry-After"], "2")
        self.assertIn(b"admission gate", body)
        self.assertEqual(ran, [])

    def test_other_errors_propagate(self):
        def broken(environ, start_response):
            raise KeyError("nope")
        with self.assertRaises(KeyError):
            wsgi_call(memfence.wsgi.Middleware(broken), "/")


async def asgi_app(scope, receive, send):
    q = parse_qs(scope.get("query_string", b"").decode())
    mib = int(q.get("mib", ["1"])[0])
    await receive()
    kept = []
    for _ in range(min(mib, 64)):
        kept.append(b"\x07" * MIB)
        await asyncio.sleep(0)
    if scope["path"] == "/late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
    n = compute(mib)
    if scope["path"] != "/late":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"%d\n" % n})


def asgi_call(app, path, query=b"", headers=()):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": list(headers), "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


class TestASGI(unittest.TestCase):
    def setUp(self):
        self.app = memfence.asgi.Middleware(asgi_app, retry_after=2)

    def test_ok(self):
        status, _, body = asgi_call(self.app, "/features", b"mib=3")
        self.assertEqual((status, body), (200, b"%d\n" % (3 * MIB)))

    def test_memory_error_is_503(self):
        status, headers, body = asgi_call(self.app, "/features", b"mib=%d" % (1 << 30),
                                          [(b"x-request-id", b"a-5")])
        self.assertEqual(status, 503)
        self.assertEqual(headers.get(b"retry-after"), None if SHIM else b"2")
        self.assertIn(b"a-5", body)

    def test_transient_keeps_retry_after(self):
        status, headers, _ = asgi_call(self.app, "/features", b"mib=-1")
        self.assertEqual((status, headers[b"retry-after"]), (503, b"2"))

    def test_waits_at_the_gate_in_its_scope(self):
        gate = FakeGate().install(self)
        seen = []

        async def app(scope, receive, send):
            seen.append(list(gate.log))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        status, _, body = asgi_call(memfence.asgi.Middleware(app), "/g")
        self.assertEqual((status, body), (200, b"ok"))
        self.assertEqual(seen, [[("enter", "GET /g", True)]])
        self.assertEqual(gate.log, [("enter", "GET /g", True), ("leave", "GET /g")])

    def test_gate_timeout_is_503_before_the_app(self):
        FakeGate(timeout=True).install(self)
        ran = []

        async def app(scope, receive, send):
            ran.append(1)
        status, headers, body = asgi_call(memfence.asgi.Middleware(app, retry_after=2), "/g")
        self.assertEqual(status, 503)
        self.assertEqual(headers[b"retry-after"], b"2")
        self.assertIn(b"admission gate", body)
        self.assertEqual(ran, [])

    def test_after_start_it_propagates(self):
        with self.assertRaises(MemoryError):
            asgi_call(self.app, "/late", b"mib=%d" % (1 << 30))

    def test_lifespan_passes_through(self):
        seen = []

        async def app(scope, receive, send):
            seen.append(scope["type"])

        async def main():
            await memfence.asgi.Middleware(app)({"type": "lifespan"}, None, None)
        asyncio.run(main())
        self.assertEqual(seen, ["lifespan"])

    def test_concurrent_requests(self):
        """A refused request among normal ones on one event loop: only it
        gets 503."""
        async def one(path, query):
            sent = []

            async def receive():
                return {"type": "http.request", "body": b""}

            async def send(m):
                sent.append(m)
            await self.app({"type": "http", "method": "GET", "path": path, "query_string": query,
                            "headers": []}, receive, send)
            return sent[0]["status"]

        async def main():
            qs = [b"mib=4"] * 6 + [b"mib=%d" % (1 << 30)] + [b"mib=2"] * 6
            return await asyncio.gather(*(one("/f", q) for q in qs))

        statuses = asyncio.run(main())
        self.assertEqual(statuses.count(503), 1)
        self.assertEqual(statuses[6], 503)
        self.assertEqual(statuses.count(200), 12)


class TestRouteNames(unittest.TestCase):
    def test_raw_paths_bounded(self):
        mw = memfence.wsgi.Middleware(wsgi_app, max_routes=2)
        names = [mw.routes.name("GET", "/u/%d" % i) for i in range(5)]
        self.assertEqual(names, ["GET /u/0", "GET /u/1"] + ["GET other"] * 3)

    def test_flask_rule(self):
        try:
            import flask
        except ImportError:
            self.skipTest("python3-flask is not installed")
        app = flask.Flask("t")
        app.add_url_rule("/users/<int:uid>", "user", lambda uid: "u")
        mw = memfence.wsgi.Middleware(app)
        for path, name in (("/users/7", "GET /users/<int:uid>"),
                           ("/users/14", "GET /users/<int:uid>"), ("/nope", "GET other")):
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "h",
                       "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
            self.assertEqual(mw.routes.name("GET", path, environ), name)

    def test_starlette_route(self):
        try:
            from starlette.applications import Starlette
            from starlette.responses import PlainTextResponse
            from starlette.routing import Mount, Route
        except ImportError:
            self.skipTest("python3-starlette is not installed")

        async def h(request):
            return PlainTextResponse("x")
        app = Starlette(routes=[Route("/users/{uid:int}", h),
                                Mount("/api", routes=[Route("/items/{id}", h)])])
        mw = memfence.asgi.Middleware(app)
        for path, name in (("/users/7", "GET /users/{uid:int}"),
                           ("/api/items/3", "GET /api/items/{id}"), ("/nope", "GET other")):
            scope = {"type": "http", "method": "GET", "path": path, "root_path": "",
                     "headers": [], "query_string": b""}
            self.assertEqual(mw.routes.name("GET", path, scope), name)


if __name__ == "__main__":
    unittest.main()
