"""The request side of the quarantine (the store Celery tasks use, shared
with gRPC/HTTP requests that carry an idempotency id): the gates that the
interceptors and middleware call, against a real gRPC server on 127.0.0.1, a
WSGI call and an ASGI call, with a real SQLite store behind the memfence
command."""
import asyncio
import logging
import os
import shutil
import tempfile
import unittest
from concurrent import futures

import grpc

from memfence import quarantine as mq

logging.getLogger("memfence.quarantine").setLevel(logging.CRITICAL)


class Gates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mf-qr-")
        cls.old = os.environ.get("MEMFENCE_STATE_DIR")
        os.environ["MEMFENCE_STATE_DIR"] = cls.dir
        mq._default = None
        st = mq.default_store()
        for _ in range(2):
            st.record("bad-1", name="/t.Svc/Get", cause="oom_kill", peak=900 << 20)
        st.record("once-1", name="/t.Svc/Get", cause="oom_kill")

    @classmethod
    def tearDownClass(cls):
        if cls.old is None:
            os.environ.pop("MEMFENCE_STATE_DIR", None)
        else:
            os.environ["MEMFENCE_STATE_DIR"] = cls.old
        mq._default = None
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_grpc(self):
        ran = []

        def get(request, context):
            rid = dict(context.invocation_metadata()).get("x-request-id")
            mq.grpc_gate(context, rid)          # the hook, as the interceptor calls it
            ran.append(rid)
            return b"ok:" + request

        handler = grpc.method_handlers_generic_handler(
            "t.Svc", {"Get": grpc.unary_unary_rpc_method_handler(get)})
        server = grpc.server(futures.ThreadPoolExecutor(2), handlers=(handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
                call = ch.unary_unary("/t.Svc/Get")
                self.assertEqual(call(b"x", timeout=10, metadata=(("x-request-id", "ok-1"),)),
                                 b"ok:x")
                self.assertEqual(call(b"y", timeout=10, metadata=(("x-request-id", "once-1"),)),
                                 b"ok:y")
                self.assertEqual(call(b"z", timeout=10), b"ok:z")
                before = mq.request_counters["refused"]
                with self.assertRaises(grpc.RpcError) as cm:
                    call(b"w", timeout=10, metadata=(("x-request-id", "bad-1"),))
                e = cm.exception
                self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
                self.assertIn("bad-1 is quarantined after 2 death(s)", e.details())
                self.assertIn("peak 900.0 MiB", e.details())
                self.assertEqual(mq.request_counters["refused"], before + 1)
        finally:
            server.stop(None)
        self.assertEqual(ran, ["ok-1", "once-1", None])

    def test_wsgi(self):
        got = []

        def start_response(status, headers, exc_info=None):
            got.append((status, dict(headers)))

        self.assertIsNone(mq.wsgi_gate("ok-2", start_response))
        self.assertIsNone(mq.wsgi_gate(None, start_response))
        self.assertEqual(got, [])
        body = mq.wsgi_gate("bad-1", start_response)
        self.assertEqual(got[0][0], "422 Unprocessable Entity")
        self.assertNotIn("Retry-After", got[0][1])
        self.assertIn(b"bad-1 is quarantined", b"".join(body))

    def test_asgi(self):
        sent = []

        async def send(m):
            sent.append(m)

        async def run():
            self.assertFalse(await mq.asgi_gate("ok-3", send))
            self.assertFalse(await mq.asgi_gate(None, send))
            self.assertEqual(sent, [])
            self.assertTrue(await mq.asgi_gate("bad-1", send))

        asyncio.run(run())
        self.assertEqual(sent[0]["status"], 422)
        self.assertIn(b"bad-1 is quarantined", sent[1]["body"])

    def test_grpc_aio(self):
        async def get(request, context):
            rid = dict(context.invocation_metadata()).get("x-request-id")
            await mq.grpc_gate_async(context, rid)
            return b"ok"

        async def run():
            handler = grpc.method_handlers_generic_handler(
                "t.Svc", {"Get": grpc.unary_unary_rpc_method_handler(get)})
            server = grpc.aio.server()
            server.add_generic_rpc_handlers((handler,))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as ch:
                    call = ch.unary_unary("/t.Svc/Get")
                    self.assertEqual(await call(b"", timeout=10,
                                                metadata=(("x-request-id", "ok-4"),)), b"ok")
                    with self.assertRaises(grpc.aio.AioRpcError) as cm:
                        await call(b"", timeout=10, metadata=(("x-request-id", "bad-1"),))
                    self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            finally:
                await server.stop(None)

        asyncio.run(run())

    def test_broken_store_serves(self):
        old = os.environ.get("MEMFENCE_QUARANTINE")
        mq._default = None
        # A directory where the store file should be: the store cannot answer.
        os.environ["MEMFENCE_QUARANTINE"] = "sqlite:" + self.dir
        try:
            before = mq.request_counters["store_errors"]
            self.assertIsNone(mq.wsgi_gate("bad-1", lambda *a: None))
            self.assertEqual(mq.request_counters["store_errors"], before + 1)
        finally:
            if old is None:
                os.environ.pop("MEMFENCE_QUARANTINE", None)
            else:
                os.environ["MEMFENCE_QUARANTINE"] = old
            mq._default = None


class Wired(unittest.TestCase):
    setUpClass = Gates.setUpClass
    tearDownClass = Gates.tearDownClass
    """The same gates as the interceptors and middleware call them when
    quarantine=True (MEMFENCE_REQUEST_QUARANTINE=1 does the same)."""

    def test_grpc_interceptor(self):
        import memfence.grpc as mg

        ran = []

        def get(request, context):
            ran.append(dict(context.invocation_metadata()).get("x-request-id"))
            return b"ok"

        def chunks(request, context):
            ran.append("stream")
            yield b"a"

        handler = grpc.method_handlers_generic_handler(
            "t.Svc", {"Get": grpc.unary_unary_rpc_method_handler(get),
                      "List": grpc.unary_stream_rpc_method_handler(chunks)})
        server = grpc.server(futures.ThreadPoolExecutor(2), handlers=(handler,),
                             interceptors=(mg.ServerInterceptor(protect_poller=False,
                                                                quarantine=True),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
                call = ch.unary_unary("/t.Svc/Get")
                self.assertEqual(call(b"", timeout=10, metadata=(("x-request-id", "ok-5"),)),
                                 b"ok")
                with self.assertRaises(grpc.RpcError) as cm:
                    call(b"", timeout=10, metadata=(("x-request-id", "bad-1"),))
                self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
                with self.assertRaises(grpc.RpcError) as cm:
                    list(ch.unary_stream("/t.Svc/List")(
                        b"", timeout=10, metadata=(("x-request-id", "bad-1"),)))
                self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        finally:
            server.stop(None)
        self.assertEqual(ran, ["ok-5"])
        self.assertFalse(mg.ServerInterceptor(protect_poller=False, quarantine=False).quarantine)

    def test_grpc_aio_interceptor(self):
        import memfence.grpc as mg

        async def get(request, context):
            return b"ok"

        async def run():
            handler = grpc.method_handlers_generic_handler(
                "t.Svc", {"Get": grpc.unary_unary_rpc_method_handler(get)})
            server = grpc.aio.server(interceptors=(mg.AioServerInterceptor(quarantine=True),))
            server.add_generic_rpc_handlers((handler,))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as ch:
                    call = ch.unary_unary("/t.Svc/Get")
                    self.assertEqual(await call(b"", timeout=10,
                                                metadata=(("x-request-id", "ok-6"),)), b"ok")
                    with self.assertRaises(grpc.aio.AioRpcError) as cm:
                        await call(b"", timeout=10, metadata=(("x-request-id", "bad-1"),))
                    self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            finally:
                await server.stop(None)

        asyncio.run(run())

    def test_wsgi_middleware(self):
        import memfence.wsgi as mw

        ran = []

        def app(environ, start_response):
            ran.append(environ.get("HTTP_X_REQUEST_ID"))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        got = []
        m = mw.Middleware(app, quarantine=True)
        body = m({"PATH_INFO": "/x", "REQUEST_METHOD": "GET", "HTTP_X_REQUEST_ID": "bad-1"},
                 lambda status, headers, exc_info=None: got.append(status))
        self.assertEqual(got, ["422 Unprocessable Entity"])
        self.assertIn(b"bad-1 is quarantined", b"".join(body))
        body = m({"PATH_INFO": "/x", "REQUEST_METHOD": "GET", "HTTP_X_REQUEST_ID": "ok-7"},
                 lambda status, headers, exc_info=None: got.append(status))
        self.assertEqual(b"".join(body), b"ok")
        self.assertEqual(ran, ["ok-7"])

    def test_asgi_middleware(self):
        import memfence.asgi as ma

        ran, sent = [], []

        async def app(scope, receive, send):
            ran.append(True)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        async def send(m):
            sent.append(m)

        async def receive():
            return {"type": "http.request", "body": b""}

        m = ma.Middleware(app, quarantine=True)
        asyncio.run(m({"type": "http", "method": "GET", "path": "/x",
                       "headers": [(b"x-request-id", b"bad-1")]}, receive, send))
        self.assertEqual(ran, [])
        self.assertEqual(sent[0]["status"], 422)
        sent.clear()
        asyncio.run(m({"type": "http", "method": "GET", "path": "/x",
                       "headers": [(b"x-request-id", b"ok-8")]}, receive, send))
        self.assertEqual(ran, [True])
        self.assertEqual(sent[0]["status"], 200)


if __name__ == "__main__":
    unittest.main()
