"""Tell `memfence run` when this program serves: ready means serving.

Under `memfence run`, /readyz answers 200 only once the program serves, not
only while memory allows. A program says so by writing one line,
``PID starting|serving WHAT``, to the file MEMFENCE_SERVING_FILE names
(through a temporary file and a rename, so that the supervisor never reads
half a line). memfence's integrations write it for the servers they know
(memfence/auto.py): gunicorn (a worker loaded its application), uvicorn
(lifespan startup complete and listening), gRPC (server started with a port
bound), Celery (worker ready and consuming). Any program may call
:func:`starting` early and :func:`serving` when it serves.

The supervisor honours the file only for programs that use it: a program
that never writes it keeps memory-only readiness. Outside `memfence run`
(no MEMFENCE_SERVING_FILE) both functions do nothing.
"""
import os

from memfence._memfence import ENV

__all__ = ["starting", "serving", "STARTING"]

# What a server the integration knows is waiting for, said as it starts.
STARTING = {
    "gunicorn": "gunicorn: no worker has loaded the application yet",
    "uvicorn": "uvicorn: lifespan startup not complete",
    "celery": "celery: worker not ready yet",
}

_LINE_MAX = 200  # the supervisor reads 255 bytes


def _write(state, what, only_first):
    path = os.environ.get(ENV["SERVING_FILE"])
    if not path:
        return
    if only_first and os.path.lexists(path):
        return
    what = " ".join(str(what).split())
    line = ("%d %s %s" % (os.getpid(), state, what)).encode("utf-8", "replace")
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            os.write(fd, line[:_LINE_MAX] + b"\n")
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def starting(what):
    """Declare that this program will say when it serves (the supervisor
    then holds readiness until :func:`serving`). Only the first declaration
    of a start counts: a later one must not take back a "serving"."""
    _write("starting", what, True)


def serving(what):
    """Say that the program accepts and answers work."""
    _write("serving", what, False)
