"""Run a function in a forked child with its own memory limit.

The seed's debugging method (run one request alone in a worker and watch its
memory) as one call: the child applies RLIMIT_DATA, runs the function, and
sends back its result or exception with pickle over a pipe, together with
its memory figures. A child that hits its limit raises MemoryError here; a
child the kernel OOM-killed (SIGKILL) does too.

fork() copies only the calling thread. Functions that need locks other
threads held at the fork (logging handlers, gRPC's core) may hang in the
child; the timeout bounds that.
"""
import os
import pickle
import resource
import select
import signal
import time
import traceback

from memfence import _core, _memfence

__all__ = ["isolate", "IsolatedResult", "IsolationError", "IsolationTimeout"]


class IsolationError(RuntimeError):
    """The isolated child died or could not report (crash, bad pickle)."""


class IsolationTimeout(IsolationError, TimeoutError):
    """The isolated child did not finish in time; it was killed."""


class IsolatedResult:
    """value: what fn returned; figures: memfence Figures of the child's run
    (allocated A, freed, net = retained, peak; source "shim" or "rss");
    pid and exit status of the child."""

    __slots__ = ("value", "figures", "pid", "status")

    def __init__(self, value, figures, pid, status):
        self.value, self.figures, self.pid, self.status = value, figures, pid, status

    def __repr__(self):
        return "IsolatedResult(value=%r, figures=%r)" % (self.value, self.figures)


def _child(fn, args, kwargs, limit, wfd):
    # Nothing may escape this function: the child must end in os._exit and
    # never run the parent's cleanup (atexit, finally blocks up the stack).
    try:
        _memfence.set_pdeathsig(signal.SIGKILL)
        if os.getppid() == 1:
            os._exit(70)
        if limit is not None:
            soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
            want = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
            resource.setrlimit(resource.RLIMIT_DATA, (want, hard))
        sc = _core.scope("isolate:%s" % getattr(fn, "__qualname__", "fn"))
        try:
            if not _core.shim_active():
                # Peak resident set since now, not since the parent started:
                # "5" resets VmHWM (proc(5), Linux 4.0).
                try:
                    with open("/proc/self/clear_refs", "w") as f:
                        f.write("5")
                except OSError:
                    pass
            with sc:
                value = fn(*args, **kwargs)
            msg = ("ok", value, sc.figures.as_dict())
        except BaseException as e:  # noqa: B902 - everything crosses back
            figs = sc.figures.as_dict() if sc.figures is not None else None
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            e.__traceback__ = None
            msg = ("exc", e, figs, tb)
        try:
            data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as pe:  # noqa: B902
            e = msg[1] if msg[0] == "exc" else None
            data = pickle.dumps(("unpicklable", msg[0], repr(e if e is not None else msg[1])[:2000],
                                 "%s: %s" % (type(pe).__name__, pe), msg[2]))
        view = memoryview(data)
        while view:
            n = os.write(wfd, view)
            view = view[n:]
        os._exit(0)
    except BaseException:  # noqa: B902
        os._exit(71)


def _figures(d):
    if d is None:
        return None
    f = _core.Figures(d["source"])
    for k, v in d.items():
        setattr(f, k, v)
    return f


def _oom_kills():
    """The memory cgroup's OOM-kill counter, or None."""
    if not getattr(_memfence, "HAVE_LIMITS", 0):
        return None
    try:
        return _memfence.memory().get("oom_kill")
    except OSError:
        return None


def isolate(fn, *args, limit=None, timeout=None, **kwargs):
    """Run fn(*args, **kwargs) in a forked child limited to `limit` bytes of
    data (RLIMIT_DATA; int or '512M'), and return an IsolatedResult with its
    value and figures. fn's own exception is raised here (with the child's
    traceback added as a note). MemoryError when the child ran out of memory
    or was killed by SIGKILL (the kernel's OOM killer); IsolationTimeout
    after `timeout` seconds (the child is killed); IsolationError when it
    crashed. No child is left behind, whatever happens here."""
    limit = _core.parse_size(limit, "limit")
    if limit is not None and limit <= 0:
        raise ValueError("invalid limit %r: must be more than 0" % (limit,))
    if timeout is not None and timeout <= 0:
        raise ValueError("invalid timeout %r: must be more than 0 seconds" % (timeout,))
    ooms_before = _oom_kills()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _child(fn, args, kwargs, limit, wfd)
        os._exit(71)  # not reached
    os.close(wfd)
    status = None
    chunks = []
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([rfd], [], [], wait)
            if not ready:
                raise IsolationTimeout("isolated %s did not finish within %gs; the child (pid %d) "
                                       "was killed" % (_fname(fn), timeout, pid))
            data = os.read(rfd, 1 << 20)
            if not data:
                break
            chunks.append(data)
        _, status = _waitpid(pid)
    finally:
        os.close(rfd)
        if status is None:
            _kill_and_reap(pid)
    return _outcome(fn, pid, status, b"".join(chunks), ooms_before)


def _fname(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)


def _waitpid(pid):
    while True:
        try:
            return os.waitpid(pid, 0)
        except InterruptedError:
            continue


def _kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        _waitpid(pid)
    except ChildProcessError:
        pass


def _outcome(fn, pid, status, data, ooms_before):
    name = _fname(fn)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGKILL:
            after = _oom_kills()
            why = ("the kernel's OOM killer killed it (memory cgroup oom_kill rose)"
                   if ooms_before is not None and after is not None and after > ooms_before
                   else "it was killed by SIGKILL, most likely by the kernel's OOM killer")
            raise MemoryError("isolated %s ran out of memory: %s" % (name, why))
        raise IsolationError("isolated %s crashed: killed by signal %d (%s)"
                             % (name, sig, signal.Signals(sig).name))
    code = os.WEXITSTATUS(status)
    if code != 0 or not data:
        raise IsolationError("isolated %s ended without a result (exit status %d)" % (name, code))
    try:
        msg = pickle.loads(data)
    except Exception as e:
        raise IsolationError("isolated %s sent back a result that cannot be unpickled here: "
                             "%s: %s" % (name, type(e).__name__, e)) from None
    if msg[0] == "ok":
        return IsolatedResult(msg[1], _figures(msg[2]), pid, status)
    if msg[0] == "exc":
        exc = msg[1]
        if hasattr(exc, "add_note"):
            exc.add_note("raised in the isolated child (pid %d):\n%s" % (pid, msg[3].rstrip()))
        try:
            exc.memfence_figures = _figures(msg[2])
        except (AttributeError, TypeError):
            pass
        raise exc
    _, what, text, why, figs = msg
    if what == "exc" and ("MemoryError" in text):
        raise MemoryError("isolated %s ran out of memory: %s" % (name, text))
    raise IsolationError("isolated %s %s could not be pickled (%s): %s"
                         % (name, "result" if what == "ok" else "exception", why, text))

