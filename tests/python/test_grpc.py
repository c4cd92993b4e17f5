"""The gRPC interceptors in-process: a real server on 127.0.0.1, a real
client, handlers that run out of memory."""
import asyncio
import os
import signal
import subprocess
import sys
import time
import unittest
from concurrent import futures

import grpc

import memfence.grpc as mg

SERVICE = "test.Features"
MIB = 1 << 20
SHIM = os.environ.get("MEMFENCE_EXPECT_SHIM") == "1"
# The shim sees that 4 EiB could never be had (more than the whole line or
# the heap limit): do not retry. Without it a MemoryError is a MemoryError.
HUGE_PUSHBACK = "-1" if SHIM else None


def oom_handler(request, context):
    kept = [b"\x05" * MIB for _ in range(4)]
    # A real refusal: more than any address space holds.
    return bytes(bytearray(1 << 62)) + kept[0]


def wrapped_oom_handler(request, context):
    try:
        oom_handler(request, context)
    except MemoryError as e:
        raise RuntimeError("feature store failed") from e


def budgeted_handler(request, context):
    rows = [b"\x0a" * MIB for _ in range(32)]
    return b"%d" % len(rows)


def transient_handler(request, context):
    # What a refusal for memory that other calls hold looks like.
    raise MemoryError("held by others")


def ok_handler(request, context):
    return b"ok:" + request


def value_error_handler(request, context):
    raise ValueError("bad customer id")


def stream_handler(request, context):
    yield b"first"
    yield bytes(bytearray(1 << 62))


def exploding_deserializer(data):
    # A request whose decoding needs more memory than there is.
    return bytes(bytearray(1 << 62)) if data == b"huge" else data


HANDLERS = {
    "Budgeted": grpc.unary_unary_rpc_method_handler(budgeted_handler),
    "Decode": grpc.unary_unary_rpc_method_handler(ok_handler,
                                                  request_deserializer=exploding_deserializer),
    "Oom": grpc.unary_unary_rpc_method_handler(oom_handler),
    "Wrapped": grpc.unary_unary_rpc_method_handler(wrapped_oom_handler),
    "Ok": grpc.unary_unary_rpc_method_handler(ok_handler),
    "Transient": grpc.unary_unary_rpc_method_handler(transient_handler),
    "Bad": grpc.unary_unary_rpc_method_handler(value_error_handler),
    "Stream": grpc.unary_stream_rpc_method_handler(stream_handler),
}


async def aio_oom(request, context):
    await asyncio.sleep(0)
    return bytes(bytearray(1 << 62))


async def aio_ok(request, context):
    await asyncio.sleep(0)
    return b"ok:" + request


AIO_HANDLERS = {
    "Budgeted": grpc.unary_unary_rpc_method_handler(budgeted_handler),
    "Oom": grpc.unary_unary_rpc_method_handler(aio_oom),
    "Ok": grpc.unary_unary_rpc_method_handler(aio_ok),
}


def call(channel, method, data=b"x", metadata=None):
    return channel.unary_unary("/%s/%s" % (SERVICE, method))(data, timeout=20, metadata=metadata)


class TestSyncInterceptor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.failures = []
        icpt = mg.ServerInterceptor(retry_after=2.5, budgets={"/test.Features/Budgeted": "8M"},
                                    on_failure=lambda *a: cls.failures.append(a))
        cls.server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[icpt])
        cls.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
        port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % port)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop(None)

    def assert_exhausted(self, method, rid=None, pushback=None):
        md = (("x-request-id", rid),) if rid else None
        with self.assertRaises(grpc.RpcError) as cm:
            call(self.channel, method, metadata=md)
        e = cm.exception
        self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
        self.assertIn("/%s/%s" % (SERVICE, method), e.details())
        self.assertIn("MemoryError", e.details())
        trailers = dict(e.trailing_metadata() or ())
        self.assertEqual(trailers.get(mg.PUSHBACK_KEY), pushback or "2500")
        if pushback == "-1":
            self.assertIn("do not retry", e.details())
        return e

    def test_memory_error_is_resource_exhausted(self):
        e = self.assert_exhausted("Oom", rid="req-17", pushback=HUGE_PUSHBACK)
        self.assertIn("req-17", e.details())
        self.assertTrue(any(f[1] == "req-17" for f in self.failures))

    def test_method_budget(self):
        if os.environ.get("MEMFENCE_EXPECT_SHIM") == "1":
            # 32 MiB against a budget of 8 MiB: refused in this call only.
            # Over its own budget: no retry could pass.
            self.assert_exhausted("Budgeted", pushback="-1")
            self.assertEqual(call(self.channel, "Ok", b"b"), b"ok:b")
        else:
            # Without the shim a budget cannot be enforced (and a warning says so).
            self.assertEqual(call(self.channel, "Budgeted"), b"32")

    def test_wrapped_memory_error(self):
        self.assert_exhausted("Wrapped", pushback=HUGE_PUSHBACK)

    def test_transient_keeps_pushback(self):
        self.assert_exhausted("Transient")

    def test_streaming(self):
        it = self.channel.unary_stream("/%s/Stream" % SERVICE)(b"", timeout=20)
        self.assertEqual(next(it), b"first")
        with self.assertRaises(grpc.RpcError) as cm:
            next(it)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_deserializer_memory_error(self):
        with self.assertRaises(grpc.RpcError) as cm:
            call(self.channel, "Decode", b"huge")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(call(self.channel, "Decode", b"small"), b"ok:small")

    def test_oversized_inbound_message(self):
        # gRPC's own receive limit (4 MiB by default) refuses it before any
        # memory is spent; the server keeps serving.
        with self.assertRaises(grpc.RpcError) as cm:
            call(self.channel, "Ok", b"x" * (8 << 20))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(call(self.channel, "Ok", b"y"), b"ok:y")

    def test_others_untouched(self):
        self.assertEqual(call(self.channel, "Ok", b"abc"), b"ok:abc")
        with self.assertRaises(grpc.RpcError) as cm:
            call(self.channel, "Bad")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNKNOWN)
        # The server is still serving after the refusals.
        self.assertEqual(call(self.channel, "Ok", b"z"), b"ok:z")


class TestAioInterceptor(unittest.TestCase):
    def test_aio(self):
        async def main():
            server = grpc.aio.server(interceptors=[mg.AioServerInterceptor(retry_after=1)])
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE, AIO_HANDLERS),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as ch:
                    ok = await ch.unary_unary("/%s/Ok" % SERVICE)(b"q", timeout=20)
                    try:
                        await ch.unary_unary("/%s/Oom" % SERVICE)(
                            b"", timeout=20, metadata=(("x-request-id", "aio-1"),))
                    except grpc.aio.AioRpcError as e:
                        err = e
                    else:
                        err = None
                    return ok, err
            finally:
                await server.stop(None)

        ok, err = asyncio.run(main())
        self.assertEqual(ok, b"ok:q")
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("aio-1", err.details())
        self.assertEqual(err.trailing_metadata().get(mg.PUSHBACK_KEY), HUGE_PUSHBACK or "1000")


class TestPolicy(unittest.TestCase):
    def test_budgets(self):
        i = mg.ServerInterceptor(budgets={"/a.B/C": "1M", "/a.B/*": 2048}, default_budget="4K")
        self.assertEqual(i.policy.budget("/a.B/C"), 1 << 20)
        self.assertEqual(i.policy.budget("/a.B/D"), 2048)
        self.assertEqual(i.policy.budget("/x.Y/Z"), 4096)
        with self.assertRaises(ValueError):
            mg.ServerInterceptor(budgets={"/a.B/C": "huge"})

    def test_retry_config(self):
        cfg = mg.retry_service_config("pkg.Svc")
        codes = cfg["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"]
        self.assertIn("RESOURCE_EXHAUSTED", codes)
        self.assertEqual(cfg["healthCheckConfig"], {"serviceName": ""})


AUTO_PROG = r"""
import sys
from concurrent import futures
import grpc
s = grpc.server(futures.ThreadPoolExecutor(1))
icpts = s._state.interceptor_pipeline.interceptors if s._state.interceptor_pipeline else ()
print(",".join(type(i).__name__ for i in icpts))
print("sitecustomize=" + sys.modules["sitecustomize"].__file__)
"""


class TestAutoBootstrap(unittest.TestCase):
    def run_prog(self, auto):
        import memfence as pkg
        root = os.path.dirname(os.path.dirname(pkg.__file__))
        boot = os.path.join(os.path.dirname(pkg.__file__), "_bootstrap")
        env = dict(os.environ, PYTHONPATH=boot + os.pathsep + root,
                   MEMFENCE_AUTO_PYTHON="1" if auto else "0")
        out = subprocess.run([sys.executable, "-c", AUTO_PROG], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.splitlines()

    def test_patched(self):
        lines = self.run_prog(True)
        self.assertEqual(lines[0], "ServerInterceptor")
        # Debian's own sitecustomize still ran after ours.
        self.assertNotIn("_bootstrap", lines[1])

    def test_opt_out(self):
        self.assertEqual(self.run_prog(False)[0], "")


class _FakeHealth:
    """Stands for grpc_health's HealthServicer (not installed with Debian's
    grpcio): what the app set per service, and what was set since."""

    def __init__(self):
        self._server_status = {"": 1, "pkg.Svc": 1}
        self.calls = []
        self.graceful = False

    def Check(self, request, context):
        return b""

    def set(self, service, status):
        self.calls.append((service, status))
        self._server_status[service] = status

    def enter_graceful_shutdown(self):
        self.graceful = True

    def Watch(self, request, context):
        """HealthCheckResponse {status = 1} for "" whenever it changes, for
        as long as the call lasts."""
        said = None
        while context.is_active():
            now = self._server_status.get("", 0)
            if now != said:
                said = now
                yield bytes([8, now])
            time.sleep(0.05)


class TestDrain(unittest.TestCase):
    """follow_drain: NOT_SERVING while unready, back after; GOAWAY (a
    graceful stop) when recycled."""

    def setUp(self):
        import tempfile
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "drain")
        os.environ["MEMFENCE_DRAIN_FILE"] = self.path
        self.handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def tearDown(self):
        os.environ.pop("MEMFENCE_DRAIN_FILE", None)
        # follow_drain took the stop signals of this process.
        for s, h in self.handlers.items():
            signal.signal(s, h)
        del mg._stopping[:]
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)

    def say(self, line):
        if line is None:
            os.unlink(self.path)
            return
        with open(self.path + ".tmp", "w") as f:
            f.write(line + "\n")
        os.rename(self.path + ".tmp", self.path)

    def wait_for(self, cond, what):
        for _ in range(100):    # 10 s at most
            if cond():
                return
            time.sleep(0.1)
        self.fail("not within 10 s: " + what)

    def test_drain(self):
        health = _FakeHealth()
        handlers = (grpc.method_handlers_generic_handler(mg.HEALTH_SERVICE, {
            "Check": grpc.unary_unary_rpc_method_handler(health.Check)}),)
        self.assertIs(mg.find_health(handlers), health)
        self.assertIsNone(mg.find_health(()))
        server = grpc.server(futures.ThreadPoolExecutor(2))
        server.add_generic_rpc_handlers(handlers)
        server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.assertTrue(mg.follow_drain(server, health))
        self.say("unready not ready: process 1 at its budget")
        self.wait_for(lambda: sorted(health.calls) == [("", 2), ("pkg.Svc", 2)],
                      "NOT_SERVING while unready: %s" % health.calls)
        self.say(None)
        self.wait_for(lambda: health._server_status == {"": 1, "pkg.Svc": 1},
                      "SERVING again: %s" % health.calls)
        self.assertFalse(health.graceful)
        self.say("recycling 1000 leak: test")
        self.wait_for(lambda: health.graceful, "graceful shutdown of the health service")
        self.assertFalse(server.wait_for_termination(timeout=10), "the server did not stop")

    def test_health_is_no_request(self):
        """The health service's calls get no scope, gate or quarantine."""
        health = _FakeHealth()
        check = grpc.unary_unary_rpc_method_handler(health.Check)
        icpt = mg.ServerInterceptor(protect_poller=False)

        class Details:
            invocation_metadata = ()

        Details.method = "/%s/Check" % mg.HEALTH_SERVICE
        self.assertIs(icpt.intercept_service(lambda d: check, Details), check)
        Details.method = "/pkg.Svc/Check"
        self.assertIsNot(icpt.intercept_service(lambda d: check, Details), check)

    def test_recycle_ends_health_watches(self):
        """A client watching health reads NOT_SERVING, then its Watch ends
        once the server stops: the stop does not wait the grace for it."""
        health = _FakeHealth()
        server = grpc.server(futures.ThreadPoolExecutor(4),
                             interceptors=[mg.ServerInterceptor(protect_poller=False)])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            mg.HEALTH_SERVICE, {
                "Check": grpc.unary_unary_rpc_method_handler(health.Check),
                "Watch": grpc.unary_stream_rpc_method_handler(health.Watch)}),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.assertTrue(mg.follow_drain(server, health))
        with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
            watch = ch.unary_stream("/%s/Watch" % mg.HEALTH_SERVICE)(b"", timeout=30)
            self.assertEqual(next(watch), bytes([8, 1]))
            # The grace (60 s) is far longer than the wait below.
            self.say("recycling 60000 unclean: test")
            self.assertEqual(next(watch), bytes([8, 2]))
            # Cancelled, or cut with the connection when the server is gone.
            with self.assertRaises(grpc.RpcError) as end:
                next(watch)
            self.assertIn(end.exception.code(),
                          (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE))
        self.assertTrue(server.wait_for_termination(timeout=20) is False,
                        "the server still waits for the health Watch")

    _STOPPED = r"""
import signal, sys, time
from concurrent import futures
import grpc
import memfence.grpc as mg
if sys.argv[1] == "own":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))
def slow(request, context):
    time.sleep(1)
    return b"done"
server = grpc.server(futures.ThreadPoolExecutor(2))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "t.W", {"Slow": grpc.unary_unary_rpc_method_handler(slow)}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
mg.follow_drain(server)
print(port, flush=True)
server.wait_for_termination()
"""

    _STOPPED_AIO = r"""
import asyncio
import grpc
import memfence.grpc as mg
async def slow(request, context):
    await asyncio.sleep(1)
    return b"done"
async def main():
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.W", {"Slow": grpc.unary_unary_rpc_method_handler(slow)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    mg.follow_drain(server)
    print(port, flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""

    def stopped(self, how, script=_STOPPED):
        """A server whose process gets SIGTERM while a call is in flight:
        (the call's answer or its error, the process's return code)."""
        self.say("stopping 5000 SIGTERM")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        p = subprocess.Popen([sys.executable, "-c", script, how], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            port = int(p.stdout.readline())
            with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
                call = ch.unary_unary("/t.W/Slow").future(b"", timeout=10)
                time.sleep(0.3)    # the call is in the handler's sleep
                p.send_signal(signal.SIGTERM)
                try:
                    got = call.result()
                except grpc.RpcError as e:
                    got = e.code()
            return got, p.wait(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()

    def test_stop_signal_drains(self):
        self.assertEqual(self.stopped("default"), (b"done", -signal.SIGTERM))

    def test_stop_signal_drains_aio(self):
        # The program may end by itself once its server has stopped.
        got, code = self.stopped("default", self._STOPPED_AIO)
        self.assertEqual(got, b"done")
        self.assertIn(code, (0, -signal.SIGTERM))

    def test_stop_signal_of_the_app(self):
        # The app's own handler ends the process at once: not ours.
        self.assertEqual(self.stopped("own")[1], 3)

    def test_outside_memfence_run(self):
        os.environ.pop("MEMFENCE_DRAIN_FILE", None)
        self.assertFalse(mg.follow_drain(object()))


if __name__ == "__main__":
    unittest.main()
