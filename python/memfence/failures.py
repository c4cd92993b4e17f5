"""Recognising allocation failures, whatever type they were raised as.

A request that ran out of memory should be answered with a retriable error,
and the same request failing for another reason should not. The failure is
rarely a bare MemoryError at the top: frameworks wrap it (``raise
ServiceError(...) from exc``), asyncio and trio group it, and libraries with
their own allocators report it as RuntimeError or OSError text.
"""
import errno
import re

__all__ = ["is_allocation_failure", "allocation_failure_kind", "describe_failure"]

# Library messages that mean "an allocation was refused":
#   PyTorch CPU:  "[enforce fail at alloc_cpu.cpp:75] ... DefaultCPUAllocator:
#                  can't allocate memory: you tried to allocate 8000000000 bytes.
#                  Error code 12 (Cannot allocate memory)"
#   C++ (pybind11 maps std::bad_alloc to MemoryError; other binders keep the
#   text): "std::bad_alloc", "bad allocation"
#   CUDA/cuDNN:   "CUDA out of memory. Tried to allocate 20.00 MiB ..."
_MESSAGES = re.compile(
    r"can(?:no|')t allocate memory|cannot allocate memory|std::bad_alloc|"
    r"\bbad_alloc\b|bad allocation|out of memory|failed to allocate|"
    r"memory allocation failed|error code 12\b",
    re.IGNORECASE,
)

_THREAD_START = "can't start new thread"

# Walking a hostile chain must stay cheap: a bound on the exceptions looked at.
_MAX_VISITED = 1000


def _kind_of(exc):
    """The kind of a single exception, not looking at its chain."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, RuntimeError) and _THREAD_START in str(exc):
        # Python gives the same message for every pthread_create error. The
        # shim keeps the errno: EPERM is a seccomp policy, not memory (glibc
        # reports a stack that does not fit as EAGAIN, like a pids limit, so
        # EAGAIN stays ambiguous and counts).
        if _thread_errno() == errno.EPERM:
            return None
        return "thread"
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return "enomem"
    if isinstance(exc, (RuntimeError, OSError, SystemError, ValueError)):
        try:
            text = str(exc)
        except Exception:
            return None
        if _MESSAGES.search(text[:4096]):
            return "library"
    return None


def _thread_errno():
    from memfence import _memfence
    return _memfence.thread_errno()


def _walk(exc):
    """Every exception reachable through __cause__, __context__ and
    exception groups, each once (chains can form cycles)."""
    seen = set()
    todo = [exc]
    while todo and len(seen) < _MAX_VISITED:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        sub = getattr(e, "exceptions", None)
        if isinstance(sub, (tuple, list)) and _is_group(e):
            todo.extend(reversed(sub))
        todo.append(e.__context__)
        todo.append(e.__cause__)


def _is_group(e):
    try:
        return isinstance(e, BaseExceptionGroup)  # noqa: F821 (3.11+)
    except NameError:
        # Before 3.11 the backport (exceptiongroup) has the same shape.
        return type(e).__name__ in ("ExceptionGroup", "BaseExceptionGroup")


def allocation_failure_kind(exc):
    """'memory', 'thread', 'enomem' or 'library' for the first allocation
    failure found in exc and its chain, else None."""
    if not isinstance(exc, BaseException):
        return None
    for e in _walk(exc):
        kind = _kind_of(e)
        if kind is not None:
            return kind
    return None


def is_allocation_failure(exc):
    """True when exc is, wraps, or groups an allocation failure: MemoryError
    (and subclasses) anywhere in __cause__/__context__ or inside exception
    groups; "can't start new thread"; OSError ENOMEM; and the allocation
    failures libraries report as other types (PyTorch's "can't allocate
    memory ... Error code 12", std::bad_alloc text). Budget refusals of a
    memfence scope are MemoryError, so they count too."""
    return allocation_failure_kind(exc) is not None


def _failure(exc):
    for e in _walk(exc):
        if _kind_of(e) is not None:
            return e
    return None


def describe_failure(exc):
    """One line saying what failed, for error messages and logs."""
    e = _failure(exc)
    if e is None:
        return None
    kind = _kind_of(e)
    text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
    if kind == "thread":
        err = _thread_errno()
        if err:
            text += " (pthread_create: %s)" % errno.errorcode.get(err, err)
    name = type(e).__name__
    return "%s: %s" % (name, text) if text else name
