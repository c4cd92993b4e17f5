"""WSGI middleware: one memfence scope per request, and allocation failures
answered with 503 Service Unavailable and Retry-After.

    app = memfence.wsgi.Middleware(app, budgets={"/report": "512M"})

The scope is named "METHOD /path" and carries the X-Request-Id header when
present. It covers the application call and the production of the first
body chunk, where a WSGI application does its work; later chunks of a
streamed body are not counted, and a failure there cannot become a 503
(the status line has been sent) and propagates to the server. Under
`memfence run` the request first waits at the admission gate
(memfence.gate) for what its endpoint needs, at most the gate's maximum
wait; then 503.
"""
import sys

from memfence import _core
from memfence import gate as _gate
from memfence import quarantine as mq
from memfence._respond import DEFAULT_RETRY_AFTER, Policy, release
from memfence.failures import is_allocation_failure

__all__ = ["Middleware"]


class Middleware:
    def __init__(self, app, budgets=None, default_budget=None, retry_after=DEFAULT_RETRY_AFTER,
                 on_failure=None, request_id_header="X-Request-Id", quarantine=None):
        self.app = app
        self.quarantine = mq.requests_enabled() if quarantine is None else quarantine
        self.policy = Policy(budgets, default_budget, retry_after, on_failure)
        self.rid_key = "HTTP_" + request_id_header.upper().replace("-", "_")

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        endpoint = "%s %s" % (environ.get("REQUEST_METHOD", "GET"), path)
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

        failure = None
        sc = _core.scope(endpoint, rid, self.policy.budget(endpoint))
        first, it, result = None, None, None
        with sc:
            try:
                with _gate.admit(endpoint):
                    result = self.app(environ, deferred_start)
                    it = iter(result)
                    try:
                        first = next(it)
                    except StopIteration:
                        first = None
                        it = None
            except BaseException as e:
                if not is_allocation_failure(e):
                    raise
                release(e)
                failure = e
        if failure is not None:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    pass
            if sent:
                raise failure
            msg = self.policy.refused(endpoint, rid, failure, sc.figures)
            body = (msg + "\n").encode("utf-8")
            retry = str(max(1, int(round(self.policy.retry_after))))
            start_response("503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), ("Retry-After", retry)],
                           sys.exc_info() if sys.exc_info()[0] else None)
            return [body]
        flush()
        return _Body(first, it, result)


class _Body:
    """The rest of the application's body, closed as WSGI asks."""

    def __init__(self, first, it, result):
        self.first, self.it, self.result = first, it, result

    def __iter__(self):
        if self.first is not None:
            yield self.first
        if self.it is not None:
            yield from self.it

    def close(self):
        if hasattr(self.result, "close"):
            self.result.close()
