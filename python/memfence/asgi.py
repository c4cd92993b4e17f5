"""ASGI middleware: one memfence scope per HTTP request, following the
request across awaits, and allocation failures answered with 503 and
Retry-After when the response has not started.

    app = memfence.asgi.Middleware(app, budgets={"/report": "512M"})

Many requests interleave on the event loop's thread. The request's scope is
opened around each step of the application's coroutine (between two
awaits) and closed before the next task runs, so its figures count what
this request's own code allocated, not its neighbours. Work the request
hands to other tasks or threads is not counted in it. Under `memfence run`
the request first waits at the admission gate (memfence.gate, without
blocking the loop) for what its endpoint needs, at most the gate's maximum
wait; then 503.
"""
from memfence import _core
from memfence import gate as _gate
from memfence import quarantine as mq
from memfence._respond import DEFAULT_RETRY_AFTER, Policy, release
from memfence.failures import is_allocation_failure

__all__ = ["Middleware"]


class Middleware:
    def __init__(self, app, budgets=None, default_budget=None, retry_after=DEFAULT_RETRY_AFTER,
                 on_failure=None, request_id_header="x-request-id", quarantine=None):
        self.app = app
        self.quarantine = mq.requests_enabled() if quarantine is None else quarantine
        self.policy = Policy(budgets, default_budget, retry_after, on_failure)
        self.rid_key = request_id_header.lower().encode("latin-1")

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        endpoint = "%s %s" % (scope.get("method", "GET"), scope.get("path", "/") or "/")
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

        got = {}
        failure = None
        budget = self.policy.budget(endpoint)
        try:
            async with _gate.admit_async(endpoint, budget):
                return await _core.scoped(self.app(scope, receive, tracking_send), endpoint,
                                          rid, budget,
                                          on_figures=lambda f, e: got.setdefault("f", f))
        except BaseException as e:
            if started or not is_allocation_failure(e):
                raise
            release(e)
            failure = e
        msg = self.policy.refused(endpoint, rid, failure, got.get("f"))
        failure = None
        body = (msg + "\n").encode("utf-8")
        retry = str(max(1, int(round(self.policy.retry_after)))).encode()
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"retry-after", retry)]})
        await send({"type": "http.response.body", "body": body})
