"""gRPC server integration: one memfence scope per call, and allocation
failures answered with RESOURCE_EXHAUSTED and retry pushback.

    import grpc, memfence.grpc
    server = grpc.server(executor, interceptors=[memfence.grpc.ServerInterceptor()])
    server = grpc.aio.server(interceptors=[memfence.grpc.AioServerInterceptor()])

Each call runs in a scope named after the method ("/pkg.Service/Method") with
the request id from the x-request-id metadata when the client sent one. When
the handler (or the request's deserializer) fails on an allocation — see
memfence.is_allocation_failure — the call ends with RESOURCE_EXHAUSTED, a
message naming the method and what failed, and the trailing metadata
grpc-retry-pushback-ms, which gRPC clients with a retry policy honour: the
retry delay when the call was refused for memory that others held, -1 (do
not retry, gRFC A6) when no replica could serve it (over its budget, or
more than the whole line; memfence._respond.permanent).
Under `memfence run` each call first waits at the admission gate
(memfence.gate) for the memory its method needs, at most half the time its
deadline leaves (else the gate's maximum wait); a call that cannot be
admitted in time gets the same RESOURCE_EXHAUSTED before its handler runs.
Under the accounting shim the failed scope is recorded with outcome
FAILED_ALLOC, which the supervisor's liveness rule counts.

Under `memfence run`, :func:`follow_drain` moves clients away from a server
that is drained (memfence/auto.py calls it for every server it patches): see
its docstring and docs/python.md.
"""
import asyncio
import inspect
import logging
import os
import signal
import threading
import time
import weakref

import grpc

from memfence import _core
from memfence import gate as _gate
from memfence import quarantine as mq
from memfence._log import say as _say
from memfence._memfence import ENV
from memfence._respond import DEFAULT_RETRY_AFTER, Policy, permanent, release
from memfence.failures import is_allocation_failure

__all__ = ["ServerInterceptor", "AioServerInterceptor", "RETRY_SERVICE_CONFIG",
           "retry_service_config", "PUSHBACK_KEY", "protect_server_poller", "follow_drain",
           "HEALTH_SERVICE"]

_log = logging.getLogger("memfence")
_protect_lock = threading.Lock()


def protect_server_poller():
    """Keep grpc.server()'s polling thread alive through a MemoryError.

    grpc (1.51 at least) turns each inbound message into a Python bytes object
    inside its completion-queue poll, on the one thread that drives the whole
    server. When that allocation fails the MemoryError ends the thread: the
    process stays up, holds its port and never answers again. This wraps the
    thread's loop (grpc._server._serve, looked up when a server starts) so
    that it logs the failure and polls on. The call whose message could not
    be built gets no answer; its client's deadline ends it. Servers started
    before this call are not protected. Returns True when in place."""
    try:
        from grpc import _server
    except ImportError:
        return False
    with _protect_lock:
        orig = getattr(_server, "_serve", None)
        if orig is None:
            return False
        if getattr(orig, "memfence_protected", False):
            return True

        def _serve(state):
            while True:
                try:
                    return orig(state)
                except MemoryError:
                    _say(_log, logging.WARNING,
                         "memfence: an inbound gRPC message could not be built (out "
                         "of memory); its call is dropped, the server goes on")
                    # Memory may stay short for a while: do not spin.
                    time.sleep(0.05)

        _serve.memfence_protected = True
        _serve.__wrapped__ = orig
        _server._serve = _serve
        return True

PUSHBACK_KEY = "grpc-retry-pushback-ms"
REQUEST_ID_KEY = "x-request-id"


def retry_service_config(service="", max_attempts=4, initial_backoff="0.5s", max_backoff="5s"):
    """A client service config (JSON-able dict) that retries RESOURCE_EXHAUSTED
    (and UNAVAILABLE) on every method of `service` ("" = all services), and
    checks the servers' grpc.health.v1 so that a drained server is left
    before it stops (with round_robin; docs/python.md, "gRPC drain").
    Pass json.dumps(...) as the channel option "grpc.service_config"."""
    name = {"service": service} if service else {}
    return {
        "healthCheckConfig": {"serviceName": ""},
        "methodConfig": [{
            "name": [name],
            "retryPolicy": {
                "maxAttempts": max_attempts,
                "initialBackoff": initial_backoff,
                "maxBackoff": max_backoff,
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["RESOURCE_EXHAUSTED", "UNAVAILABLE"],
            },
        }]
    }


RETRY_SERVICE_CONFIG = retry_service_config()


class _Refused:
    """Stands in for a request whose deserialization ran out of memory."""

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _wrap_deserializer(deser):
    if deser is None:
        return None

    def deserialize(data):
        try:
            return deser(data)
        except BaseException as e:
            if not is_allocation_failure(e):
                raise
            release(e)
            return _Refused(e)
    return deserialize


def _request_id(context, key):
    try:
        for k, v in context.invocation_metadata() or ():
            if k == key:
                return v if isinstance(v, str) else v.decode("utf-8", "replace")
    except Exception:
        pass
    return None


_KINDS = (("unary_unary", False, False), ("unary_stream", False, True),
          ("stream_unary", True, False), ("stream_stream", True, True))


def _rebuild(handler, behavior, kind):
    deser = handler.request_deserializer
    if not handler.request_streaming:
        deser = _wrap_deserializer(deser)
    make = getattr(grpc, kind + "_rpc_method_handler")
    return make(behavior, request_deserializer=deser,
                response_serializer=handler.response_serializer)


def _intercepted(icpt, handler, method):
    """handler with its behaviour wrapped by the interceptor icpt (sync or
    aio: both have _wrap_unary and _wrap_stream)."""
    for kind, _req_stream, resp_stream in _KINDS:
        behavior = getattr(handler, kind)
        if behavior is not None:
            wrap = icpt._wrap_stream if resp_stream else icpt._wrap_unary
            return _rebuild(handler, wrap(behavior, method), kind)
    return handler


HEALTH_SERVICE = "grpc.health.v1.Health"
_HEALTH_PREFIX = "/%s/" % HEALTH_SERVICE
# grpc/health/v1/health.proto's ServingStatus: wire values, fixed.
_SERVING, _NOT_SERVING = 1, 2
# The Watch calls of the health service in flight in this process (sync
# servers): a stop ends them (_end_watches).
_watches = weakref.WeakSet()
_watches_lock = threading.Lock()


def _health_handler(handler, method):
    """The health service's calls are no requests: no scope, no admission
    gate, no quarantine (a Watch lasts as long as its connection: a scope
    open that long would hold every drain for its whole timeout). Its Watch
    calls are noted so that a stop can end them."""
    if method != _HEALTH_PREFIX + "Watch" or handler.unary_stream is None:
        return handler
    behavior = handler.unary_stream

    def watch(request, context, *args, **kwargs):
        with _watches_lock:
            _watches.add(context)
        return behavior(request, context, *args, **kwargs)

    # grpc_health's servicer answers without holding a thread when the
    # server allows it (grpc reads these attributes off the behaviour).
    for attr in ("experimental_non_blocking", "experimental_thread_pool"):
        if hasattr(behavior, attr):
            setattr(watch, attr, getattr(behavior, attr))
    return grpc.unary_stream_rpc_method_handler(
        watch, request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer)


def _end_watches():
    """Cancel the health Watch calls in flight: they never end by themselves
    and would hold a graceful stop for its whole grace. Their clients have
    had NOT_SERVING already; a health-checking client counts the end of its
    Watch as the address being unhealthy, not as a failed call."""
    with _watches_lock:
        watches = list(_watches)
        _watches.clear()
    for context in watches:
        try:
            context.cancel()
        except Exception:    # the call ended meanwhile
            pass


class _Base:
    def __init__(self, budgets=None, default_budget=None, retry_after=DEFAULT_RETRY_AFTER,
                 request_id_key=REQUEST_ID_KEY, on_failure=None, quarantine=None):
        self.policy = Policy(budgets, default_budget, retry_after, on_failure)
        self.request_id_key = request_id_key
        self.quarantine = mq.requests_enabled() if quarantine is None else quarantine
        self.memfence_interceptor = True

    def _pushback(self, exc, figures):
        # gRFC A6: a negative pushback tells the client not to retry at all,
        # for a call that no replica could serve.
        if permanent(exc, figures):
            return ((PUSHBACK_KEY, "-1"),)
        return ((PUSHBACK_KEY, str(int(self.policy.retry_after * 1000))),)


class ServerInterceptor(_Base, grpc.ServerInterceptor):
    """For grpc.server(). budgets: {"/pkg.Svc/Method": "256M", "/pkg.Svc/*": ...};
    default_budget: for other methods; retry_after: seconds sent as
    grpc-retry-pushback-ms; on_failure(method, request_id, what, figures).
    Making one also calls protect_server_poller() (protect_poller=False to
    leave grpc's polling thread as it is)."""

    def __init__(self, *args, protect_poller=True, **kwargs):
        super().__init__(*args, **kwargs)
        if protect_poller:
            protect_server_poller()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if handler_call_details.method.startswith(_HEALTH_PREFIX):
            return _health_handler(handler, handler_call_details.method)
        return _intercepted(self, handler, handler_call_details.method)

    def _refuse(self, context, method, rid, exc, figures):
        msg = self.policy.refused(method, rid, exc, figures)
        context.set_trailing_metadata(self._pushback(exc, figures))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, msg)

    def _wrap_unary(self, behavior, method):
        def call(request, context):
            if isinstance(request, _Refused):
                return self._refuse(context, method, None, request.exc, None)
            rid = _request_id(context, self.request_id_key)
            if self.quarantine:
                mq.grpc_gate(context, rid)
            failure = None
            sc = _core.scope(method, rid, self.policy.budget(method))
            with sc:
                try:
                    with _gate.admit(method, timeout=_gate.grpc_wait(context)):
                        return behavior(request, context)
                except BaseException as e:
                    if not is_allocation_failure(e):
                        raise
                    release(e)
                    failure = e
            # Outside the scope and the except block, so that the request's
            # memory is gone before the answer is built.
            return self._refuse(context, method, rid, failure, sc.figures)
        return call

    def _wrap_stream(self, behavior, method):
        def call(request, context):
            if isinstance(request, _Refused):
                self._refuse(context, method, None, request.exc, None)
                return
            rid = _request_id(context, self.request_id_key)
            if self.quarantine:
                mq.grpc_gate(context, rid)
            st = _core._Stepper(_core.scope(method, rid, self.policy.budget(method)))
            failure = None
            admitted = _gate.admit(method, timeout=_gate.grpc_wait(context))
            try:
                it = None
                while True:
                    # The scope is on the thread for each step (the handler's
                    # work for one response) only: between items gRPC runs on
                    # this thread, and an abandoned generator may be closed
                    # on another one. The gate is asked in the first step, so
                    # that it knows the call's scope.
                    st.resume()
                    try:
                        if it is None:
                            admitted.__enter__()
                            it = iter(behavior(request, context))
                        item = next(it)
                    except StopIteration:
                        return
                    finally:
                        st.suspend()
                    yield item
            except BaseException as e:
                if not is_allocation_failure(e):
                    raise
                release(e)
                failure = e
            finally:
                admitted.__exit__(None, None, None)
                figures = st.finish(failed=failure is not None)
            if failure is not None:
                self._refuse(context, method, rid, failure, figures)
        return call


class AioServerInterceptor(_Base, grpc.aio.ServerInterceptor):
    """For grpc.aio.server(). Same options as ServerInterceptor. Many calls
    interleave on the event loop's thread: each call's scope follows it
    across awaits and counts only what its own steps allocate."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_HEALTH_PREFIX):
            return handler
        return _intercepted(self, handler, handler_call_details.method)

    async def _refuse(self, context, method, rid, exc, figures):
        msg = self.policy.refused(method, rid, exc, figures)
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, msg,
                            trailing_metadata=self._pushback(exc, figures))

    def _wrap_unary(self, behavior, method):
        async def call(request, context):
            if isinstance(request, _Refused):
                return await self._refuse(context, method, None, request.exc, None)
            rid = _request_id(context, self.request_id_key)
            if self.quarantine:
                await mq.grpc_gate_async(context, rid)
            got = {}
            failure = None
            wait = _gate.grpc_wait(context)

            async def admitted():
                # In the call's scope: the gate links the call to it.
                async with _gate.admit_async(method, timeout=wait):
                    result = behavior(request, context)
                    if inspect.isawaitable(result):
                        result = await result
                    return result

            try:
                return await _core.scoped(admitted(), method, rid, self.policy.budget(method),
                                          on_figures=lambda f, e: got.setdefault("f", f))
            except BaseException as e:
                if not is_allocation_failure(e):
                    raise
                release(e)
                failure = e
            return await self._refuse(context, method, rid, failure, got.get("f"))
        return call

    def _wrap_stream(self, behavior, method):
        async def call(request, context):
            if isinstance(request, _Refused):
                await self._refuse(context, method, None, request.exc, None)
                return
            rid = _request_id(context, self.request_id_key)
            if self.quarantine:
                await mq.grpc_gate_async(context, rid)
            st = _core._Stepper(_core.scope(method, rid, self.policy.budget(method)))
            failure = None
            admitted = _gate.admit_async(method, timeout=_gate.grpc_wait(context))
            try:
                # Its polls are steps of the call, in the call's scope.
                await _core._StepAwaitable(admitted.__aenter__(), st)
                out = behavior(request, context)
                if inspect.isasyncgen(out):
                    while True:
                        try:
                            item = await _core._StepAwaitable(out.__anext__(), st)
                        except StopAsyncIteration:
                            break
                        yield item
                elif inspect.isawaitable(out):
                    await _core._StepAwaitable(_as_coro(out), st)
            except BaseException as e:
                if not is_allocation_failure(e):
                    raise
                release(e)
                failure = e
            finally:
                await _core._StepAwaitable(admitted.__aexit__(None, None, None), st)
                figures = st.finish(failed=failure is not None)
            if failure is not None:
                await self._refuse(context, method, rid, failure, figures)
        return call


async def _as_coro(awaitable):
    return await awaitable


_DRAIN_POLL_S = 0.2    # the supervisor rewrites the file within one of its ticks
_DRAIN_LINE_MAX = 256
# NOT_SERVING this long before a stop: a client that checks health (a
# healthCheckConfig in its service config) stops picking this address once
# its Watch call reads NOT_SERVING, within milliseconds. Stopping at once
# would race it: grpc core cancels (CANCELLED) a call that reaches a server
# whose stop has begun before its client has read the GOAWAY, and that call
# is not retried.
_LEAD_S = 1.0


def find_health(handlers):
    """The grpc.health.v1 servicer among generic handlers, else None (what
    grpc_health's add_HealthServicer_to_server registers: its Check method
    is a bound method of the servicer)."""
    class _Details:
        method = "/%s/Check" % HEALTH_SERVICE
        invocation_metadata = ()

    for h in handlers or ():
        try:
            if h.service_name() != HEALTH_SERVICE:
                continue
            check = h.service(_Details())
            return getattr(check.unary_unary, "__self__", None)
        except Exception:    # a handler of another kind
            continue
    return None


def _read_drain(path):
    """The drain file's line ("" when absent): "unready REASON",
    "recycling GRACE_MS REASON" or "stopping GRACE_MS SIGNAL"."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        return os.read(fd, _DRAIN_LINE_MAX).decode("utf-8", "replace").split("\n", 1)[0]
    except OSError:
        return ""
    finally:
        os.close(fd)


class _Drain:
    """Follows the drain file for one server (a daemon thread)."""

    def __init__(self, server, health, path, loop):
        self.server, self.health, self.path, self.loop = server, health, path, loop
        self.saved = None

    def _run(self, result):
        if self.loop is not None and inspect.isawaitable(result):
            asyncio.run_coroutine_threadsafe(result, self.loop)

    def _statuses(self):
        # grpc_health keeps what the app set per service (and "" overall).
        return dict(getattr(self.health, "_server_status", None) or {"": None})

    def not_serving(self):
        if self.health is None:
            return
        if self.saved is None:
            self.saved = self._statuses()
        for svc in self.saved:
            self._run(self.health.set(svc, _NOT_SERVING))

    def serving_again(self):
        if self.health is None or self.saved is None:
            return
        for svc, status in self.saved.items():
            self._run(self.health.set(svc, _SERVING if status is None else status))
        self.saved = None

    def stop(self, grace_s):
        """A threading.Event (grpc.server) or a concurrent future
        (grpc.aio), done once the server has stopped."""
        eg = getattr(self.health, "enter_graceful_shutdown", None)
        if eg is not None:
            self._run(eg())
        # grpc core sends GOAWAY on every connection: clients open no new
        # call here and pick another address, while calls in flight get
        # grace_s to finish.
        done = self.server.stop(grace_s)
        _end_watches()
        if self.loop is not None and inspect.isawaitable(done):
            return asyncio.run_coroutine_threadsafe(done, self.loop)
        return done

    def watch(self):
        said = ""
        while True:
            line = _read_drain(self.path)
            word = line.split(" ", 1)[0]
            if word != said:
                try:
                    if word == "recycling":
                        parts = line.split(" ", 2) + ["", ""]
                        grace = int(parts[1]) / 1000.0 if parts[1].isdigit() else None
                        _say(_log, logging.WARNING,
                             "memfence: the program is recycled (%s): the gRPC server "
                             "stops, calls in flight get %ss", parts[2], grace)
                        self.not_serving()
                        _lead((self,))
                        self.stop(grace)
                        return
                    if word == "unready":
                        self.not_serving()
                    elif word == "stopping":
                        pass    # the stop signal's to act on (_on_stop), or the app's
                    else:
                        self.serving_again()
                except Exception as e:    # never let the watcher end the program
                    _say(_log, logging.WARNING, "memfence: gRPC drain: %s: %s", type(e).__name__, e)
                said = word
            time.sleep(_DRAIN_POLL_S)


def follow_drain(server, health=None):
    """Move clients away from `server` when `memfence run` drains it.

    The supervisor writes MEMFENCE_DRAIN_FILE while the program is drained:
    "unready" while readiness fails for memory (it may come back), and
    "recycling" once the program is about to be replaced. Readiness only
    keeps new connections away; gRPC clients keep theirs, so:
      - unready: every service the grpc.health.v1 servicer `health` knows
        (and the server as a whole) is set NOT_SERVING, and back as it was
        when readiness returns; calls that still come are served under the
        memory rules (the admission gate, RESOURCE_EXHAUSTED with pushback);
      - recycling: health NOT_SERVING for good, then (_LEAD_S later when
        there is a health servicer: clients that check health leave first)
        server.stop(grace): GOAWAY on every connection, so that clients
        send no new call here and move to another address, while calls in
        flight get the supervisor's drain timeout to finish, and the
        health Watch calls are cancelled;
      - stopping (memfence run got SIGTERM or SIGINT and passes it on):
        when the app left that signal to its default, the same drain as a
        recycle on the signal, then the process ends of it (_on_stop).
    `health`: the servicer (found by memfence/auto.py when the app adds one).
    Works for grpc.server and grpc.aio.server (call it from the server's
    event loop). Returns True when it follows the file, False outside
    `memfence run`."""
    path = os.environ.get(ENV["DRAIN_FILE"])
    if not path:
        return False
    if health is None:
        health = getattr(server, "memfence_health", None)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    drain = _Drain(server, health, path, loop)
    threading.Thread(target=drain.watch, name="memfence-grpc-drain", daemon=True).start()
    _drain_on_stop(drain)
    return True


_DEFAULT_STOP_GRACE_S = 30.0    # --drain-timeout's default, when the file says none
_stopping = []                  # the _Drain of every server _on_stop stops


def _on_stop(signum, frame):
    """SIGTERM or SIGINT left to their default (the process dies, calls in
    flight are lost): drain every followed server as a recycle does, then
    die of the signal as the default would, so that `memfence run` sees the
    same end (128+N)."""
    # A second signal acts at once.
    signal.signal(signum, signal.SIG_DFL)
    # "stopping GRACE_MS ...", or "recycling GRACE_MS ..." when this is a
    # recycle's SIGTERM.
    parts = _read_drain(_stopping[0].path).split(" ") + ["", ""]
    grace = int(parts[1]) / 1000.0 if parts[0] in ("stopping", "recycling") and \
        parts[1].isdigit() else _DEFAULT_STOP_GRACE_S
    _say(_log, logging.WARNING, "memfence: %s: the gRPC server stops, calls in flight get %ss",
         signal.Signals(signum).name, grace)
    for d in _stopping:
        try:
            d.not_serving()
        except Exception as e:    # the signal's end comes whatever happens
            _say(_log, logging.WARNING, "memfence: gRPC drain: %s: %s", type(e).__name__, e)

    def die():
        _lead(_stopping)
        dones = []
        for d in _stopping:
            try:
                dones.append(d.stop(grace))
            except Exception as e:
                _say(_log, logging.WARNING, "memfence: gRPC drain: %s: %s", type(e).__name__, e)
        for done in dones:
            try:
                done.wait(grace + 1) if hasattr(done, "wait") else done.result(grace + 1)
            except Exception:
                pass
        os.kill(os.getpid(), signum)

    if any(d.loop is not None for d in _stopping):
        # This handler runs on the event loop's thread (the main one): the
        # aio server stops on that loop, and NOT_SERVING goes out from it
        # while the lead runs, so the wait is another thread's.
        threading.Thread(target=die, name="memfence-grpc-stop", daemon=True).start()
    else:
        die()


def _lead(drains):
    """Wait _LEAD_S when a health service said NOT_SERVING (without one no
    client can have heard it: nothing to wait for)."""
    if any(d.health is not None for d in drains):
        time.sleep(_LEAD_S)


def _drain_on_stop(drain):
    """Drain on SIGTERM and SIGINT when the app left them to their default
    action; an app's own handler is left alone. Signal handlers are set from
    the main thread only: a server started in another one keeps the default."""
    if threading.current_thread() is not threading.main_thread():
        return
    _stopping.append(drain)
    for sig, default in ((signal.SIGTERM, signal.SIG_DFL),
                         (signal.SIGINT, signal.default_int_handler)):
        if signal.getsignal(sig) is default:
            signal.signal(sig, _on_stop)
