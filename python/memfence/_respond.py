"""What the servers' integrations share: naming scopes, budgets per
endpoint, and turning an allocation failure into a retriable answer."""
import logging
import traceback

from memfence import _core
from memfence.failures import describe_failure, is_allocation_failure

log = logging.getLogger("memfence")

# How long a client should wait before retrying, by default: long enough for
# the requests that were using the memory to finish.
DEFAULT_RETRY_AFTER = 1.0


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

    def refused(self, endpoint, request_id, exc, figures):
        """Log and report one refused request; returns the client's message."""
        if figures is not None and figures.source == "rss" and not figures.failed:
            # The shim counts refused allocations itself; /proc cannot.
            figures.failed = 1
        what = describe_failure(exc) or type(exc).__name__
        msg = "out of memory while serving %s%s (%s); retry later" % (
            endpoint, " request %s" % request_id if request_id else "", what)
        log.warning("memfence: %s; figures %r", msg, figures)
        if self.on_failure is not None:
            try:
                self.on_failure(endpoint, request_id, what, figures)
            except Exception:
                log.exception("memfence: on_failure callback failed")
        return msg


def release(exc):
    """Drop the frames an exception holds: the locals of the request that
    ran out of memory (its half-built data) are freed before we answer."""
    tb = exc.__traceback__
    if tb is not None:
        traceback.clear_frames(tb)
    for e in (exc.__cause__, exc.__context__):
        if e is not None and e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)


__all__ = ["Policy", "release", "is_allocation_failure", "DEFAULT_RETRY_AFTER"]
