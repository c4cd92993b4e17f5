"""ASGI middleware: one memfence scope per HTTP request, following the
request across awaits, and allocation failures answered with 503 and
Retry-After when the response has not started.

    app = memfence.asgi.Middleware(app, budgets={"/report": "512M"})

Many requests interleave on the event loop's thread. Under the accounting
shim each request is one scope, put on the thread for each step of the
application's coroutine (between two awaits) and suspended before the next
task runs: its figures count what this request's own code allocated, not
its neighbours', and while it waits it stays in flight as large as it is,
so the shim's pressure policy refuses the largest request first, as it
does for requests on threads. Work the request hands to other tasks or
threads is not counted in it.

Lifespan and websocket connections pass through without a scope. When an
allocation fails after the response has started, no status can be sent any
more: the failure is logged and counted (on_failure, the scope's refused
allocations) and re-raised, and the server closes the connection.

Under `memfence run` the request first waits at the admission gate
(memfence.gate, docs/gate.md) for the memory its route needs, in its own
scope and without blocking the event loop (it polls between awaits), at
most the gate's maximum wait (--gate-wait); when that runs out it gets 503
with Retry-After before the application ran.
"""
from memfence import _core
from memfence import _routes
from memfence import gate as _gate
from memfence import quarantine as mq
from memfence._respond import (DEFAULT_MAX_ROUTES, DEFAULT_RETRY_AFTER, Policy, Routes,
                               has_middleware, http_answer, in_request,
                               release)
from memfence.failures import is_allocation_failure

__all__ = ["Middleware", "wrap"]


class Middleware:
    """budgets, default_budget, retry_after, on_failure: see memfence.wsgi.
    max_routes: distinct scope names ("METHOD /route" for Starlette and
    FastAPI, else "METHOD /path") before new ones are named "METHOD other"
    (the names must stay few)."""

    memfence_middleware = True

    def __init__(self, app, budgets=None, default_budget=None, retry_after=DEFAULT_RETRY_AFTER,
                 on_failure=None, request_id_header="x-request-id", quarantine=None,
                 max_routes=DEFAULT_MAX_ROUTES):
        self.app = app
        self.quarantine = mq.requests_enabled() if quarantine is None else quarantine
        self.policy = Policy(budgets, default_budget, retry_after, on_failure)
        self.routes = Routes(max_routes, _routes.asgi_resolver(app))
        self.rid_key = request_id_header.lower().encode("latin-1")

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or in_request.get():
            return await self.app(scope, receive, send)
        endpoint = self.routes.name(scope.get("method", "GET"), scope.get("path", "/"), scope)
        rid = None
        for k, v in scope.get("headers") or ():
            if k.lower() == self.rid_key:
                rid = v.decode("latin-1")
                break
        if self.quarantine and await mq.asgi_gate(rid, send):
            return
        started = []

        async def tracking_send(message):
            if message.get("type") == "http.response.start":
                started.append(True)
            await send(message)

        async def admitted():
            # Inside the scope: the gate links the request to it, and its
            # polls between awaits are steps of the request like any other.
            async with _gate.admit_async(endpoint):
                return await self.app(scope, receive, tracking_send)

        got = {}
        failure = None
        token = in_request.set(True)
        try:
            return await _core.scoped(admitted(), endpoint, rid, self.policy.budget(endpoint),
                                      on_figures=lambda f, e: got.setdefault("f", f))
        except BaseException as e:
            if not is_allocation_failure(e):
                raise
            release(e)
            if started:
                self.policy.refused(endpoint, rid, e, got.get("f"), started=True)
                raise
            failure = e
        finally:
            in_request.reset(token)
        msg = self.policy.refused(endpoint, rid, failure, got.get("f"))
        code, _reason, extra = http_answer(self.policy, failure, got.get("f"), _has_body(scope))
        failure = None
        body = (msg + "\n").encode("utf-8")
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())] +
                    [(k.lower().encode(), v.encode()) for k, v in extra]})
        await send({"type": "http.response.body", "body": body})


def _has_body(scope):
    for k, v in scope.get("headers") or ():
        k = k.lower()
        if k == b"transfer-encoding":
            return True
        if k == b"content-length":
            return v.strip() not in (b"", b"0")
    return False


def wrap(app, **options):
    """app in a Middleware, unless it is one already (or wraps one)."""
    if has_middleware(app):
        return app
    return Middleware(app, **options)
