"""Scopes, process figures and in-process limits.

Figures come from the accounting shim (libmemfence.so, preloaded by
``memfence run`` or ``memfence exec --account``) when it is active: exact
bytes allocated and freed by the thread inside the scope. Without it they
are deltas of this process's resident memory read from /proc/self, which
include every thread's activity; every figure says which it is (``source``
is "shim" or "rss").
"""
import functools
import inspect
import logging
import threading
import time
import warnings
from contextvars import ContextVar

from memfence import _log
from memfence import _memfence

__all__ = ["scope", "Figures", "stats", "install", "shim_active", "current_scope",
           "parse_size"]

_OK, _EOFF, _EDEPTH = 0, -1, -2


def shim_active():
    """True when the accounting shim is loaded in this process and counting."""
    return bool(_memfence.active())


def thread_errno():
    """errno of this thread's last failed thread start (shim only), or None."""
    return _memfence.thread_errno()


def parse_size(value, what="size"):
    """Bytes from an int or a string such as '512M', '2GiB', '1.5G', parsed as
    the memfence command parses it (K, M, G, T are powers of 1024)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("invalid %s %r: expected bytes or a size like '512M'" % (what, value))
    if isinstance(value, int):
        if value < 0:
            raise ValueError("invalid %s %r: must not be negative" % (what, value))
        return value
    try:
        return _memfence.parse_size(str(value))
    except ValueError as e:
        raise ValueError("invalid %s %r: %s" % (what, value, e)) from None


# --- /proc figures ---------------------------------------------------------

def _proc_memory():
    """rss, uss (private pages) and hwm (peak rss) of this process, bytes.

    /proc/self/smaps_rollup (Linux 4.14) sums every mapping:
        Rss:              123456 kB
        Private_Clean:       100 kB
        Private_Dirty:     98765 kB
    /proc/self/status gives VmHWM, the peak resident set.
    """
    out = {"rss": 0, "uss": 0, "hwm": 0}
    try:
        with open("/proc/self/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Rss:"):
                    out["rss"] = int(line.split()[1]) * 1024
                elif line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                    out["uss"] += int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    out["hwm"] = int(line.split()[1]) * 1024
                elif line.startswith(b"VmRSS:") and not out["rss"]:
                    out["rss"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


class Figures:
    """Memory figures of a scope.

    allocated (A), freed (B), net (A - B, retained), peak (highest net),
    failed (allocations refused), duration (seconds), source ("shim" or
    "rss"). With source "rss" they are deltas of the whole process's
    resident memory over the scope (net from private pages; peak from the
    process's peak resident set, when it rose during the scope; allocated =
    peak and freed = peak - net, lower bounds), so concurrent work in other
    threads is included and untouched allocations are not.
    """

    __slots__ = ("allocated", "freed", "net", "peak", "failed", "calls", "duration", "source",
                 "permanent")

    def __init__(self, source, allocated=0, freed=0, net=0, peak=0, failed=0, calls=0,
                 duration=0.0):
        self.source = source
        self.allocated = allocated
        self.freed = freed
        self.net = net
        self.peak = peak
        self.failed = failed
        self.calls = calls
        self.duration = duration
        # The shim found the request asked for more than it could ever get
        # (over its budget, over the whole line): a retry would fail again.
        self.permanent = False

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return ("Figures(source=%r, allocated=%d, freed=%d, net=%d, peak=%d, failed=%d)"
                % (self.source, self.allocated, self.freed, self.net, self.peak, self.failed))


def _from_shim(d):
    return Figures("shim", d["allocated"], d["freed"], d["net"], d["peak"], d["failed"],
                   d["calls"], d["duration_ns"] / 1e9)


# enum memfence_refusal (include/memfence.h)
_REFUSAL_PERMANENT = 2


def _end_shim_scope():
    """Close the innermost shim scope: (its figures' dict or None, whether
    its refusal was permanent), asked before it closes."""
    permanent = _memfence.scope_refusal() == _REFUSAL_PERMANENT
    return _memfence.scope_end(), permanent


_warned_budget = False
_warn_lock = threading.Lock()


_warn_log = logging.getLogger("memfence")


def _warn_budget_unenforced(name):
    global _warned_budget
    with _warn_lock:
        if _warned_budget:
            return
        _warned_budget = True
    msg = ("memfence: the accounting shim is not loaded in this process, so the budget "
           "of scope %r (and of every other scope) cannot be enforced; run the program "
           "under `memfence run` or `memfence exec --account`" % name)
    if _log.json_lines():
        _log.say(_warn_log, logging.WARNING, msg, request=name)
        return
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


_current = ContextVar("memfence_scope", default=None)


def current_scope():
    """The innermost memfence scope of this request (follows asyncio tasks
    across awaits), or None."""
    return _current.get()


class _Stepper:
    """Accumulates figures of a unit of work that runs in steps, possibly
    interleaved with other work on the same thread (an asyncio task between
    awaits, a response generator between items). With the shim, it is one
    scope, put on the thread that runs each step and suspended in between
    (memfence_scope_suspend): it stays in flight as large as it is, so the
    pressure policy ranks it like a request on a thread of its own. A shim
    without suspend gets one scope per step, whose figures add up."""

    def __init__(self, sc):
        self.sc = sc
        self.fig = Figures("shim" if shim_active() else "rss")
        self.saved = None
        if self.fig.source == "shim" and _memfence.suspend_supported():
            self.saved = _memfence.Saved()
        self.t0 = time.monotonic()
        self.base = None
        self.open = False
        self.begun = False

    def resume(self):
        sc = self.sc
        if self.saved is not None:
            if self.begun:
                rc = self.saved.resume()
            else:
                self.begun = True
                rc = _memfence.scope_begin(sc.name, sc.id, sc.budget)
            self.open = rc == _OK
        elif self.fig.source == "shim":
            budget = 0
            if sc.budget:
                budget = max(1, sc.budget - max(0, self.fig.net))
            rc = _memfence.scope_begin(sc.name, sc.id, budget)
            self.open = rc == _OK
        elif self.base is None:
            self.base = _proc_memory()

    def suspend(self):
        f = self.fig
        if self.saved is not None:
            if self.open:
                self.open = False
                self.saved.suspend()
        elif f.source == "shim" and self.open:
            self.open = False
            d, permanent = _end_shim_scope()
            f.permanent = f.permanent or permanent
            if d is not None:
                f.peak = max(f.peak, f.net + d["peak"])
                f.allocated += d["allocated"]
                f.freed += d["freed"]
                f.net += d["net"]
                f.failed += d["failed"]
                f.calls += d["calls"]

    def current(self):
        if self.saved is not None and self.open:
            d = _memfence.scope_current()
            if d is not None:
                return _from_shim(d)
        return self.fig

    def finish(self, failed=False):
        f = self.fig
        if self.saved is not None and self.begun:
            self.begun = False
            if not self.open and self.saved.resume() == _OK:
                self.open = True
            if self.open:
                self.open = False
                d, permanent = _end_shim_scope()
                if d is not None:
                    self.fig = f = _from_shim(d)
                    f.permanent = permanent
                    return f
        if f.source == "rss":
            _rss_figures(f, self.base or _proc_memory(), _proc_memory())
            if failed:
                f.failed += 1
        f.duration = time.monotonic() - self.t0
        return f


def _rss_figures(f, before, after):
    f.net = after["uss"] - before["uss"]
    grew = after["hwm"] > before["hwm"]
    f.peak = max(0, (after["hwm"] if grew else after["rss"]) - before["rss"], f.net)
    f.allocated = f.peak
    f.freed = max(0, f.allocated - f.net)


class scope:
    """A named unit of work (request, task) whose memory is measured, and
    optionally capped.

        with memfence.scope("GetFeatures", id=request_id, budget="256M") as s:
            ...
        print(s.figures)

    Also a decorator, for plain functions and for coroutine functions
    (``async def``): for a coroutine the scope follows it across awaits,
    counting only what its own steps allocate on the event loop's thread,
    not the other tasks running in between.

    budget: bytes (or '256M') the scope's net memory may grow by; the
    allocation that would cross it fails with MemoryError in this request
    only. Budgets need the accounting shim; without it a warning says once
    that they are not enforced.

    A ``with`` block must not contain an ``await`` (the shim's scopes belong
    to a thread, and other tasks would run inside it): in coroutines use the
    decorator or ``await memfence.scoped(coro, name)``.
    """

    def __init__(self, name, id=None, budget=None):
        self.name = str(name)
        self.id = None if id is None else str(id)
        self.budget = parse_size(budget, "budget") or 0
        self.figures = None
        self._token = None
        self._before = None
        self._t0 = 0.0
        self._shim = False
        self._thread = None

    # -- context manager ---------------------------------------------------
    def __enter__(self):
        self._t0 = time.monotonic()
        self._thread = threading.get_ident()
        rc = _memfence.scope_begin(self.name, self.id, self.budget)
        self._shim = rc == _OK
        if not self._shim:
            if self.budget:
                _warn_budget_unenforced(self.name)
            self._before = _proc_memory()
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:
                pass  # exited in another context: nothing to restore
            self._token = None
        if self._shim:
            if threading.get_ident() != self._thread:
                raise RuntimeError("memfence.scope %r closed on another thread than the one "
                                   "that opened it" % self.name)
            d, permanent = _end_shim_scope()
            self.figures = _from_shim(d) if d is not None else Figures("shim")
            self.figures.permanent = permanent
        else:
            f = Figures("rss")
            _rss_figures(f, self._before, _proc_memory())
            f.duration = time.monotonic() - self._t0
            if exc is not None and _is_alloc_failure(exc):
                f.failed = 1
            self.figures = f
        return False

    def current(self):
        """Figures so far, without closing the scope."""
        if self._shim:
            d = _memfence.scope_current()
            return _from_shim(d) if d is not None else None
        if self._before is None:
            return None
        f = Figures("rss")
        _rss_figures(f, self._before, _proc_memory())
        f.duration = time.monotonic() - self._t0
        return f

    # -- decorator ----------------------------------------------------------
    def __call__(self, fn):
        name, id_, budget = self.name, self.id, self.budget
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*a, **kw):
                return await scoped(fn(*a, **kw), name, id_, budget)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            with scope(name, id_, budget):
                return fn(*a, **kw)
        return wrapper


def _is_alloc_failure(exc):
    from memfence.failures import is_allocation_failure
    return is_allocation_failure(exc)


class _StepAwaitable:
    """Drives a coroutine step by step, each step inside the scope."""

    def __init__(self, coro, stepper):
        self.coro = coro
        self.st = stepper

    def __await__(self):
        coro, st = self.coro, self.st
        value, error = None, None
        while True:
            st.resume()
            try:
                if error is not None:
                    yielded = coro.throw(error)
                else:
                    yielded = coro.send(value)
            except StopIteration as stop:
                st.suspend()
                return stop.value
            except BaseException:
                st.suspend()
                raise
            st.suspend()
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:  # thrown in by the task (cancellation)
                value, error = None, e


class _ScopeHandle:
    """What current_scope() returns inside a scoped coroutine."""

    def __init__(self, name, id_, budget, stepper):
        self.name, self.id, self.budget = name, id_, budget
        self._st = stepper
        self.figures = None

    def current(self):
        return self._st.current()


async def scoped(coro, name, id=None, budget=None, on_figures=None):
    """Await coro inside a scope that follows it across awaits. Figures go
    to on_figures(figures, exc) when given."""
    sc = scope(name, id, budget)
    if sc.budget and not shim_active():
        _warn_budget_unenforced(sc.name)
    st = _Stepper(sc)
    handle = _ScopeHandle(sc.name, sc.id, sc.budget, st)
    token = _current.set(handle)
    exc = None
    try:
        return await _StepAwaitable(coro, st)
    except BaseException as e:
        exc = e
        raise
    finally:
        _current.reset(token)
        handle.figures = st.finish(failed=exc is not None and _is_alloc_failure(exc))
        if on_figures is not None:
            on_figures(handle.figures, exc)
        exc = None


def stats():
    """Process figures. With the shim: live and peak heap bytes, bytes
    allocated and freed, failed allocations by cause, failed thread starts,
    scopes open. Always: rss, uss, hwm (peak rss) from /proc, the soft
    RLIMIT_DATA, and the memory limit found (when the build has the limits).
    'source' says where the heap figures come from."""
    import resource

    d = _memfence.process_stats()
    out = dict(d) if d is not None else {}
    out["source"] = "shim" if d is not None else "rss"
    out.update(_proc_memory())
    soft, _hard = resource.getrlimit(resource.RLIMIT_DATA)
    out["rlimit_data"] = None if soft == resource.RLIM_INFINITY else soft
    if getattr(_memfence, "HAVE_LIMITS", 0):
        try:
            m = _memfence.memory()
            out["limit"] = m["limit"]
            out["limit_source"] = m["limit_source"]
            out["cgroup_usage"] = m["usage"]
            out["headroom"] = m["headroom"]
        except OSError:
            pass
    return out


_installed = None


def install(limit="auto", reserve=None, stack=getattr(_memfence, "STACK_DEFAULT", None),
            rlimit="data"):
    """Apply memfence's limits to this process, from inside it.

    limit: "auto" (the cgroup's limit, else physical memory), bytes, or a
    size such as '1G' or '80%'. reserve: what is kept out of the budget for
    the C runtime and libraries (default: RESERVE_RULE, as for `memfence
    exec`). rlimit: "data" (default), "as" or "none". stack: default stack
    of threads started from now on (default: as for `memfence exec`; the
    main thread keeps its own); None leaves it.

    The soft RLIMIT_DATA becomes limit - reserve, so allocations beyond it
    raise MemoryError in the thread that asked instead of the kernel killing
    the process. Returns the plan applied (a dict). Raises ValueError for bad
    sizes, OSError when the limit cannot be applied.
    """
    global _installed
    if not getattr(_memfence, "HAVE_LIMITS", 0):
        raise RuntimeError("memfence.install: this build of memfence has no limit support "
                           "(built without the core library's limits)")
    def arg(v, what):
        if v is None:
            return None
        if isinstance(v, bool):
            raise ValueError("invalid %s %r" % (what, v))
        return str(v)
    want_stack = stack is not None and stack is not False
    plan = _memfence.plan(arg(limit, "limit"), arg(reserve, "reserve"), arg(rlimit, "rlimit"),
                          arg(stack, "stack") if want_stack else None, True)
    if want_stack:
        _memfence.set_default_stack(plan["stack"])
    else:
        plan["stack"] = None
    _installed = plan
    return plan


if install.__doc__ is not None:
    install.__doc__ = install.__doc__.replace(
        "RESERVE_RULE", getattr(_memfence, "RESERVE_RULE", "the command's rule"))
