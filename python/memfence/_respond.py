"""What the servers' integrations share: naming scopes, budgets per
endpoint, and turning an allocation failure into a retriable answer."""
import logging
import os
import threading
import time
import traceback
from contextvars import ContextVar

from memfence import _core
from memfence._log import say as _say
from memfence._memfence import ENV
from memfence.failures import describe_failure, is_allocation_failure

log = logging.getLogger("memfence")

# How long a client should wait before retrying, by default: long enough for
# the requests that were using the memory to finish.
DEFAULT_RETRY_AFTER = 1.0

# Distinct HTTP scope names a process makes before the rest share one per
# method: the supervisor keeps figures for a few dozen names in all, and a
# raw path may carry ids.
DEFAULT_MAX_ROUTES = 24
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT",
                      "TRACE"))


class Routes:
    """Scope names for HTTP requests: "METHOD TEMPLATE" when the
    application's router names the route (template(request): Flask,
    Django, Starlette, FastAPI; see memfence._routes), else "METHOD /path" (the raw
    path, without its query). At most max_routes distinct names per
    process; requests past them, and those no route matched, are named
    "METHOD other", so that the names stay bounded whatever the clients
    send."""

    def __init__(self, max_routes=DEFAULT_MAX_ROUTES, template=None):
        if max_routes is None or max_routes < 0:
            raise ValueError("invalid max_routes %r: 0 or more" % (max_routes,))
        self.max_routes = max_routes
        self.template = template
        self.known = set()
        self.lock = threading.Lock()

    def name(self, method, path, request=None):
        method = method if method in _METHODS else "OTHER"
        if self.template is not None:
            path = self.template(request)
            if not path:
                return "%s other" % method
        name = "%s %s" % (method, path or "/")
        if name in self.known:
            return name
        with self.lock:
            if len(self.known) < self.max_routes:
                self.known.add(name)
                return name
        return "%s other" % method


def has_middleware(app):
    """Whether app is memfence's middleware, or wraps it within a few layers
    that keep the wrapped app as .app (uvicorn's proxy-headers middleware
    around an app the user wrapped): wrapping it again would put a scope
    without the user's budgets outside theirs."""
    for _ in range(8):
        if app is None:
            return False
        if getattr(app, "memfence_middleware", False):
            return True
        app = getattr(app, "app", None)
    return False


# True while a request runs inside one of memfence's HTTP middlewares: an
# application wrapped twice (by hand, and by `memfence run`) gets one scope.
in_request = ContextVar("memfence_http_request", default=False)


class Policy:
    """budgets: {endpoint: size} (exact name, or a prefix ending in '*');
    default_budget: for the others (None: no budget). retry_after: seconds
    (float). on_failure(endpoint, request_id, description, figures): called
    once per refused request (metrics, logs)."""

    def __init__(self, budgets=None, default_budget=None, retry_after=DEFAULT_RETRY_AFTER,
                 on_failure=None):
        self.exact, self.prefixes = {}, []
        for name, size in (budgets or {}).items():
            b = _core.parse_size(size, "budget of %s" % name)
            if name.endswith("*"):
                self.prefixes.append((name[:-1], b))
            else:
                self.exact[name] = b
        self.prefixes.sort(key=lambda p: -len(p[0]))
        self.default_budget = _core.parse_size(default_budget, "default budget")
        if retry_after is None or retry_after < 0:
            raise ValueError("invalid retry_after %r: seconds, 0 or more" % (retry_after,))
        self.retry_after = float(retry_after)
        self.on_failure = on_failure

    def budget(self, endpoint):
        if endpoint in self.exact:
            return self.exact[endpoint]
        for prefix, b in self.prefixes:
            if endpoint.startswith(prefix):
                return b
        return self.default_budget

    def refused(self, endpoint, request_id, exc, figures, started=False):
        """Log and report one refused request; returns the client's message.
        started: the response had begun, so the connection is closed
        instead of answered."""
        if figures is not None and figures.source == "rss" and not figures.failed:
            # The shim counts refused allocations itself; /proc cannot.
            figures.failed = 1
        what = describe_failure(exc) or type(exc).__name__
        msg = "out of memory while serving %s%s (%s); %s" % (
            endpoint, " request %s" % request_id if request_id else "", what,
            "response already started, connection closed" if started else
            "too large to serve, do not retry" if permanent(exc, figures) else "retry later")
        _say(log, logging.WARNING, "memfence: %s; figures %r", msg, figures,
             request=request_id or endpoint)
        if self.on_failure is not None:
            try:
                self.on_failure(endpoint, request_id, what, figures)
            except Exception:
                _say(log, logging.ERROR, "memfence: on_failure callback failed", exc_info=True,
                     request=request_id or endpoint)
        _check_clean(endpoint)
        return msg


def permanent(exc, figures):
    """Whether a refused request could never be served, here or on another
    replica: the gate found its need above the whole line, or the shim
    refused it for crossing its own budget or for asking more than the whole
    line. Clients are then told not to retry; other refusals are for memory
    that others held, and a retry may pass."""
    return bool(getattr(exc, "too_big", False) or
                (figures is not None and getattr(figures, "permanent", False)))


def http_answer(policy, exc, figures, has_body):
    """(status code, reason, extra headers) for a refused HTTP request. A
    transient refusal is 503 with Retry-After. A permanent one carries no
    Retry-After, so that clients and proxies do not send it again: 413 when
    the request has a body (what it sent is what made it too large), else
    503."""
    if permanent(exc, figures):
        if has_body:
            return 413, "Content Too Large", []
        return 503, "Service Unavailable", []
    return 503, "Service Unavailable", [("Retry-After",
                                          str(max(1, int(round(policy.retry_after)))))]


# Under `memfence run` with recycling on: after a refused request, is the
# process clean again (memfence.recover)? If not, the supervisor drains and
# replaces it. At most once per _CHECK_EVERY seconds: a storm of refusals
# is one question, and gc.collect() is not free.
_CHECK_EVERY = 5.0
_checked = [0.0]
_check_lock = threading.Lock()


def _check_clean(endpoint):
    if not os.environ.get(ENV["RECYCLE_DIR"]):
        return
    now = time.monotonic()
    with _check_lock:
        if now - _checked[0] < _CHECK_EVERY:
            return
        _checked[0] = now
    from memfence import recovery
    try:
        r = recovery.recover()
    except Exception as e:  # never turn an answer into a crash
        _say(log, logging.ERROR, "memfence: recovery after %s failed: %s", endpoint, e,
             request=endpoint)
        return
    if not r.clean and recovery.request_recycle("after %s: %s" % (endpoint, r.reason)):
        _say(log, logging.ERROR,
             "memfence: not clean after %s (%s); asked memfence run to recycle process %d",
             endpoint, r.reason, os.getpid(), request=endpoint)


def release(exc):
    """Drop the frames an exception holds: the locals of the request that
    ran out of memory (its half-built data) are freed before we answer."""
    tb = exc.__traceback__
    if tb is not None:
        traceback.clear_frames(tb)
    for e in (exc.__cause__, exc.__context__):
        if e is not None and e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)


__all__ = ["Policy", "Routes", "release", "permanent", "http_answer", "has_middleware", "is_allocation_failure", "in_request",
           "DEFAULT_RETRY_AFTER", "DEFAULT_MAX_ROUTES"]
