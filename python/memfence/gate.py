"""The admission gate: a request waits for the memory it needs before it
starts, instead of failing halfway through (docs/gate.md).

    with memfence.gate.admit("GetFeatures", timeout=2.0):   # in a scope
        ...
    async with memfence.gate.admit_async("GetFeatures", timeout=2.0):
        ...

The need is the kind's learned need (published by `memfence run`'s
supervisor), else the scope's budget, else a default; need= overrides it.
When the wait runs out, GateTimeout (a MemoryError: every integration
answers it as it answers an allocation failure, RESOURCE_EXHAUSTED or 503
with a retry hint) is raised before any work was done. Without the gate
(not under `memfence run`, or --gate off) admit() admits at once.

Used by memfence.grpc, memfence.wsgi, memfence.asgi and memfence.celery.
"""
import asyncio
import time

from memfence import _core
from memfence import _memfence

__all__ = ["admit", "admit_async", "GateTimeout", "enabled", "max_wait", "grpc_wait"]

_OK, _EOFF, _EWAIT, _ETOOBIG = 0, -1, -4, -5


class GateTimeout(MemoryError):
    """The memory this request needs did not free up in time (or it needs
    more than the whole budget: too_big). Nothing of the request ran."""

    def __init__(self, name, need, waited, too_big=False):
        self.name, self.need, self.waited, self.too_big = name, need, waited, too_big
        if too_big:
            msg = "admission gate: %s needs more memory than the whole budget" % name
        else:
            msg = "admission gate: %s waited %.0f ms for memory that did not free up" % (
                name, waited * 1000)
        super().__init__(msg)


def enabled():
    """True when the shim's gate is on in this process."""
    return _memfence.gate_max_wait() is not None


def max_wait():
    """The gate's configured maximum wait in seconds, or None when it is off."""
    ms = _memfence.gate_max_wait()
    return None if ms is None else ms / 1000.0


def grpc_wait(context):
    """How long a gRPC call may wait: half the time its deadline leaves (the
    other half is for the work), else the gate's maximum wait."""
    mw = max_wait()
    if mw is None:
        return None
    try:
        left = context.time_remaining()
    except Exception:
        left = None
    if left is None:
        return mw
    return max(0.0, min(mw, left / 2.0))


# The C int of memfence_gate_enter: a longer wait is the longest it takes.
_MS_MAX = 2 ** 31 - 1


def _ms(timeout):
    if timeout is None:
        return -1
    if not timeout > 0:  # 0, negative or NaN: do not wait
        return 0
    return int(min(timeout * 1000, _MS_MAX))


def _need(need):
    # 0: the shim chooses (the learned need of the name, else the budget of
    # the scope on the thread, else the default), in that order.
    return _core.parse_size(need, "need") if need else 0


class admit:
    """Context manager: wait at the gate (timeout seconds; None: the gate's
    maximum wait), run the block admitted, leave when it ends."""

    def __init__(self, name, need=None, timeout=None):
        self.name = str(name)
        self.need = need
        self.timeout = timeout
        self._g = None

    def __enter__(self):
        self._g = _memfence.gate_new()
        t0 = time.monotonic()
        need = _need(self.need)
        rc = _memfence.gate_enter(self._g, self.name, need, _ms(self.timeout))
        if rc in (None, _OK, _EOFF):
            return self
        waited = time.monotonic() - t0
        _memfence.gate_leave(self._g)
        raise GateTimeout(self.name, need, waited, too_big=rc == _ETOOBIG)

    def __exit__(self, *exc):
        if self._g is not None:
            _memfence.gate_leave(self._g)
            self._g = None
        return False


class admit_async:
    """admit() for coroutines: waits without blocking the event loop (the
    place in the queue is kept between polls)."""

    def __init__(self, name, need=None, timeout=None):
        self.name = str(name)
        self.need = need
        self.timeout = timeout
        self._g = None

    async def __aenter__(self):
        self._g = g = _memfence.gate_new()
        t0 = time.monotonic()
        need = _need(self.need)
        rc = _memfence.gate_enter(g, self.name, need, 0)
        limit = self.timeout if self.timeout is not None else (max_wait() or 0.0)
        pause = 0.001
        try:
            while rc == _EWAIT and time.monotonic() - t0 < limit:
                await asyncio.sleep(min(pause, max(0.0, limit - (time.monotonic() - t0))))
                pause = min(pause * 2, 0.008)
                rc = _memfence.gate_wait(g, 0)
        except BaseException:
            # Cancelled while waiting (the client went away): give up the
            # place now, not when the capsule is collected.
            _memfence.gate_leave(g)
            self._g = None
            raise
        if rc in (None, _OK, _EOFF):
            return self
        _memfence.gate_leave(g)
        self._g = None
        raise GateTimeout(self.name, need, time.monotonic() - t0, too_big=rc == _ETOOBIG)

    async def __aexit__(self, *exc):
        if self._g is not None:
            _memfence.gate_leave(self._g)
            self._g = None
        return False
