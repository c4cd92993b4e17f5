"""WSGI middleware: one memfence scope per request, and allocation failures
answered with 503 Service Unavailable and Retry-After.

    app = memfence.wsgi.Middleware(app, budgets={"/report": "512M"})

The scope is named "METHOD /route" (Flask's rule, "/users/<int:uid>"; for
other applications the raw path) and carries the X-Request-Id header when
present. It covers the whole request: the application call, and every
chunk of its body until the last one or close(). Under the accounting shim
it is suspended while the server has control between two chunks (writing
to the client counts in no request), and stays in flight meanwhile.

The status line is held back until the first chunk exists, so a failure up
to there becomes a 503. A failure in a later chunk cannot (the status has
been sent): it is logged and counted (on_failure, the scope's refused
allocations) and propagates to the server, which closes the connection.

Under `memfence run` the request first waits at the admission gate
(memfence.gate, docs/gate.md), in its scope, for the memory its route
needs, at most the gate's maximum wait (--gate-wait); when that runs out it
gets the same 503 with Retry-After, before the application ran. It holds
its admission until its last chunk or close().
"""
import sys

from memfence import _core
from memfence import _routes
from memfence import gate as _gate
from memfence import quarantine as mq
from memfence._respond import (DEFAULT_MAX_ROUTES, DEFAULT_RETRY_AFTER, Policy, Routes,
                               has_middleware, http_answer, in_request,
                               release)
from memfence.failures import is_allocation_failure

__all__ = ["Middleware", "wrap"]


class _Request:
    """The request's scope, entered for each step (the call, each chunk)."""

    def __init__(self, name, rid, budget):
        sc = _core.scope(name, rid, budget)
        if sc.budget and not _core.shim_active():
            _core._warn_budget_unenforced(sc.name)
        self.stepper = _core._Stepper(sc)
        self.handle = _core._ScopeHandle(sc.name, sc.id, sc.budget, self.stepper)
        self.done = False
        self.admission = None

    def admit(self):
        """Wait at the gate; called in a step, so that the gate knows the
        request's scope (what it already holds, the need it came in with).
        GateTimeout (a MemoryError) when the wait runs out."""
        a = _gate.admit(self.handle.name)
        a.__enter__()
        self.admission = a

    def step(self, fn, *args):
        self.stepper.resume()
        token = _core._current.set(self.handle)
        try:
            return fn(*args)
        finally:
            _core._current.reset(token)
            self.stepper.suspend()

    def finish(self, failed=False):
        if not self.done:
            self.done = True
            if self.admission is not None:
                self.admission.__exit__(None, None, None)
                self.admission = None
            self.handle.figures = self.stepper.finish(failed)
        return self.handle.figures


class Middleware:
    """budgets: {"METHOD /path": size} (exact, or a prefix ending in '*');
    default_budget; retry_after (seconds); on_failure(endpoint, request_id,
    description, figures), called once per failed request; quarantine (see
    docs/python.md); max_routes: distinct scope names ("METHOD /route" for
    Flask, else "METHOD /path") before new ones are named "METHOD other"
    (the names must stay few)."""

    memfence_middleware = True

    def __init__(self, app, budgets=None, default_budget=None, retry_after=DEFAULT_RETRY_AFTER,
                 on_failure=None, request_id_header="X-Request-Id", quarantine=None,
                 max_routes=DEFAULT_MAX_ROUTES):
        self.app = app
        self.quarantine = mq.requests_enabled() if quarantine is None else quarantine
        self.policy = Policy(budgets, default_budget, retry_after, on_failure)
        self.routes = Routes(max_routes, _routes.wsgi_resolver(app))
        self.rid_key = "HTTP_" + request_id_header.upper().replace("-", "_")

    def __call__(self, environ, start_response):
        if in_request.get():
            return self.app(environ, start_response)
        endpoint = self.routes.name(environ.get("REQUEST_METHOD", "GET"),
                                    environ.get("PATH_INFO", "") or "/", environ)
        rid = environ.get(self.rid_key)
        refused = mq.wsgi_gate(rid, start_response) if self.quarantine else None
        if refused is not None:
            return refused
        pending = []
        sent = []

        def deferred_start(status, headers, exc_info=None):
            # Held back until the first chunk exists, so that a failure while
            # producing it can still become a 503.
            if exc_info is not None and sent:
                raise exc_info[1].with_traceback(exc_info[2])
            pending[:] = [(status, headers, exc_info)]
            return lambda data: write(data)

        def flush():
            if not sent and pending:
                sent.append(True)
                status, headers, exc_info = pending[0]
                real_write[:] = [start_response(status, headers, exc_info)]

        real_write = []

        def write(data):
            flush()
            real_write[0](data)

        req = _Request(endpoint, rid, self.policy.budget(endpoint))
        box = {}

        def first_chunk():
            req.admit()
            box["result"] = result = self.app(environ, deferred_start)
            it = iter(result)
            try:
                return next(it), it
            except StopIteration:
                return None, None

        failure = None
        token = in_request.set(True)
        try:
            first, it = req.step(first_chunk)
        except BaseException as e:
            if not is_allocation_failure(e):
                req.finish()
                raise
            release(e)
            failure = e
        finally:
            in_request.reset(token)
        if failure is not None:
            result = box.get("result")
            if result is not None and hasattr(result, "close"):
                try:
                    req.step(result.close)
                except Exception:
                    pass
            figures = req.finish(True)
            if sent:
                self.policy.refused(endpoint, rid, failure, figures, started=True)
                raise failure
            msg = self.policy.refused(endpoint, rid, failure, figures)
            body = (msg + "\n").encode("utf-8")
            code, reason, extra = http_answer(self.policy, failure, figures, _has_body(environ))
            start_response("%d %s" % (code, reason),
                           [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))] + extra,
                           sys.exc_info() if sys.exc_info()[0] else None)
            return [body]
        flush()
        if it is None or isinstance(box["result"], (list, tuple)):
            # Nothing left to produce, only to send.
            req.finish()
        return _Body(first, it, box.get("result"), req, self.policy, endpoint, rid)


class _Body:
    """The rest of the application's body, produced inside the request's
    scope, and closed as WSGI asks."""

    def __init__(self, first, it, result, req, policy, endpoint, rid):
        self.first, self.it, self.result = first, it, result
        self.req, self.policy, self.endpoint, self.rid = req, policy, endpoint, rid

    def __iter__(self):
        if self.first is not None:
            yield self.first
        if self.it is None:
            return
        nxt = self.it.__next__
        while True:
            try:
                chunk = nxt() if self.req.done else self.req.step(nxt)
            except StopIteration:
                self.req.finish()
                return
            except BaseException as e:
                if is_allocation_failure(e):
                    release(e)
                    self.policy.refused(self.endpoint, self.rid, e, self.req.finish(True),
                                        started=True)
                else:
                    self.req.finish()
                raise
            yield chunk

    def close(self):
        try:
            if hasattr(self.result, "close"):
                if self.req.done:
                    self.result.close()
                else:
                    self.req.step(self.result.close)
        finally:
            self.req.finish()


def _has_body(environ):
    try:
        return int(environ.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False


def wrap(app, **options):
    """app in a Middleware, unless it is one already (or wraps one)."""
    if has_middleware(app):
        return app
    return Middleware(app, **options)
