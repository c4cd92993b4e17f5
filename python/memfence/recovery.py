"""After a request or task failed on memory: release what it built, and say
whether the process is clean again.

    try:
        handle(request)
    except Exception as e:
        if memfence.is_allocation_failure(e):
            r = memfence.recover(e)
            if not r.clean:
                ...  # replace this process (memfence.celery does it for you)

What :func:`recover` does, in order:

1. **References.** Every frame of the failure's traceback, and of every
   exception chained to it (``__cause__``, ``__context__``, groups), is
   cleared: the frames of the failed code hold what it built in their
   locals, and an exception kept for logging or a result backend would keep
   all of it alive.
2. **Cycles.** ``gc.collect()``: objects in reference cycles are only freed
   by a collection, which may be far away.
3. **Free heap back to the kernel.** ``malloc_trim(0)``: glibc keeps freed
   memory in its arenas, resident (the container counts it) and, at the top
   of the heap, inside ``RLIMIT_DATA``.
4. **Measure.** The live heap (from the accounting library when it is
   loaded, else the resident set) and ``VmData`` (what ``RLIMIT_DATA``
   counts) against the threshold ``MEMFENCE_MAX_MEMORY_PER_CHILD`` (bytes, a
   size like ``300M``, or a percentage of ``RLIMIT_DATA``; default 50 %;
   ``off`` never asks for a replacement). Above it, the process is not clean:
   memory it cannot give back (fragmentation, a leak of the failed code into
   globals) would make the next request fail.

Named after Celery's ``worker_max_memory_per_child``: the same question,
asked after a failure instead of after every task.

A process that is not clean and cannot be replaced by its own pool asks the
supervisor (``memfence run``) to do it: :func:`request_recycle` writes one
line of reason in a file named after its pid in ``MEMFENCE_RECYCLE_DIR``;
the supervisor drains the process and replaces it (the whole program, or
this one process of a pre-fork server).
"""
import gc
import os
import resource
import traceback

from memfence import _memfence
from memfence._memfence import ENV
from memfence.failures import _walk

__all__ = ["recover", "Recovery", "max_memory_per_child", "recycle_enabled",
           "request_recycle"]

DEFAULT_THRESHOLD = "50%"


class Recovery:
    """What :func:`recover` found: ``clean`` (bool), ``reason`` (one line),
    ``live`` (heap bytes still allocated, or resident bytes without the
    accounting library), ``data`` (VmData bytes), ``rlimit`` (RLIMIT_DATA or
    None), ``threshold`` (bytes or None), ``trimmed`` (malloc_trim released
    memory), ``collected`` (objects gc.collect() freed)."""

    __slots__ = ("clean", "reason", "live", "data", "rlimit", "threshold", "trimmed",
                 "collected", "source")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def __repr__(self):
        return "Recovery(clean=%r, reason=%r)" % (self.clean, self.reason)


def _rlimit_data():
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return None if soft == resource.RLIM_INFINITY else soft


def max_memory_per_child(rlimit=None):
    """The threshold in bytes from MEMFENCE_MAX_MEMORY_PER_CHILD (default
    50 % of RLIMIT_DATA), or None when off or nothing to take a share of."""
    text = os.environ.get(ENV["MAX_MEMORY_PER_CHILD"], "").strip() or DEFAULT_THRESHOLD
    if text.lower() in ("off", "0"):
        return None
    if rlimit is None:
        rlimit = _rlimit_data()
    if text.endswith("%") and not rlimit:
        return None
    try:
        return _memfence.parse_size(text, rlimit or 0)
    except ValueError:
        return None


def recycle_enabled():
    """False when ``memfence run --recycle off`` (MEMFENCE_RECYCLE=off)."""
    return os.environ.get(ENV["RECYCLE"], "auto").strip().lower() not in ("off", "0", "no")


def request_recycle(reason):
    """Ask the supervisor to drain and replace this process. True when the
    request was written (under ``memfence run`` with recycling on), False
    otherwise."""
    d = os.environ.get(ENV["RECYCLE_DIR"])
    if not d or not recycle_enabled():
        return False
    line = " ".join(str(reason).split())[:150] + "\n"
    tmp = os.path.join(d, "%d.tmp" % os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode("ascii", "replace"))
        finally:
            os.close(fd)
        # Whole or absent: the supervisor reads only files named PID.
        os.rename(tmp, os.path.join(d, "%d" % os.getpid()))
    except OSError:
        return False
    return True


def release(exc):
    """Clear the frames of exc's traceback and of every exception chained to
    it, so that the locals of the failed code are freed."""
    if exc is None:
        return
    for e in _walk(exc):
        try:
            traceback.clear_frames(e.__traceback__)
        except Exception:
            pass


def _vm_data():
    """VmData of /proc/self/status in bytes (what RLIMIT_DATA counts):
        VmData:   123456 kB
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _live():
    d = _memfence.process_stats()
    if d is not None:
        return d.get("live"), "shim"
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * resource.getpagesize(), "rss"
    except (OSError, ValueError, IndexError):
        return None, "rss"


def _mib(n):
    return "%.1f MiB" % (n / 1048576.0)


def recover(exc=None, threshold=None):
    """Release what a failed request or task built, give free heap back to
    the kernel, and measure. threshold: bytes (default: see the module).
    Returns a :class:`Recovery`."""
    release(exc)
    exc = None
    collected = gc.collect()
    trimmed = bool(_memfence.trim())
    rlimit = _rlimit_data()
    if threshold is None:
        threshold = max_memory_per_child(rlimit)
    live, source = _live()
    data = _vm_data()
    r = Recovery(live=live, data=data, rlimit=rlimit, threshold=threshold, trimmed=trimmed,
                 collected=collected, source=source, clean=True)
    if threshold is None:
        r.reason = "no threshold (%s off or no RLIMIT_DATA)" % ENV["MAX_MEMORY_PER_CHILD"]
        return r
    over = []
    if live is not None and live > threshold:
        over.append("live heap %s" % _mib(live) if source == "shim" else "resident %s" % _mib(live))
    if data is not None and data > threshold:
        over.append("VmData %s" % _mib(data))
    if over:
        r.clean = False
        r.reason = "%s above %s after release" % (" and ".join(over), _mib(threshold))
    else:
        r.reason = "live heap %s, VmData %s, below %s" % (
            _mib(live or 0), _mib(data or 0), _mib(threshold))
    return r
