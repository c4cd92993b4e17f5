"""What `memfence run` changes in a Python program without a code change.

Loaded from memfence/_bootstrap/sitecustomize.py, which the supervisor puts
first on PYTHONPATH (MEMFENCE_AUTO_PYTHON=0, or `--no-auto-python`, turns it
off). Exactly this is patched, and nothing else:

- grpc.server and grpc.aio.server: when the program imports grpc, these two
  functions are replaced by wrappers that put memfence's interceptor first
  in the `interceptors` argument (unless one is already there). Servers the
  program made before grpc was patched, and servers made through other
  entry points, are left alone.
- grpc._server._serve, once the first such server is made: the loop of
  grpc's polling thread, so that a MemoryError while an inbound message is
  built does not end it (memfence.grpc.protect_server_poller).
- celery: when the program imports it, a receiver of Celery's worker_init
  signal is connected, which calls memfence.celery.install(app) on the app
  of every worker that starts (unless the app already has it). Celery
  clients that only send tasks are unchanged (memfence.celery.enable_auto).

No limit is applied here: the supervisor has already applied them.
"""
import importlib.abc
import os
import sys
import threading

__all__ = ["enable", "patch_grpc", "patch_celery", "enabled"]

_lock = threading.Lock()
_patched = set()


def enabled():
    return os.environ.get("MEMFENCE_AUTO_PYTHON", "1") not in ("0", "no", "false", "off")


def _has_ours(interceptors):
    return any(getattr(i, "memfence_interceptor", False) for i in interceptors)


def patch_grpc(grpc_module):
    """Wrap grpc.server and grpc.aio.server (idempotent)."""
    with _lock:
        if "grpc" in _patched:
            return
        _patched.add("grpc")
    import memfence.grpc as mg

    orig = grpc_module.server

    def with_ours(args, kwargs, make):
        # interceptors is the third positional parameter of both functions.
        if len(args) >= 3:
            icpt = list(args[2] or ())
        else:
            icpt = list(kwargs.get("interceptors") or ())
        if not _has_ours(icpt):
            icpt.insert(0, make())
        if len(args) >= 3:
            args = args[:2] + (icpt,) + tuple(args[3:])
        else:
            kwargs["interceptors"] = icpt
        return args, kwargs

    def server(*args, **kwargs):
        args, kwargs = with_ours(args, kwargs, mg.ServerInterceptor)
        return orig(*args, **kwargs)

    server.__wrapped__ = orig
    server.__doc__ = orig.__doc__
    grpc_module.server = server

    aio = getattr(grpc_module, "aio", None)
    if aio is not None and hasattr(aio, "server"):
        aorig = aio.server

        def aio_server(*args, **kwargs):
            args, kwargs = with_ours(args, kwargs, mg.AioServerInterceptor)
            return aorig(*args, **kwargs)

        aio_server.__wrapped__ = aorig
        aio_server.__doc__ = aorig.__doc__
        aio.server = aio_server


class _Loader(importlib.abc.Loader):
    def __init__(self, inner, after):
        self.inner, self.after = inner, after

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        try:
            self.after(module)
        except Exception as e:  # never break the program's import
            sys.stderr.write("memfence: could not patch %s: %s\n" % (module.__name__, e))

    def __getattr__(self, name):
        return getattr(self.inner, name)


def patch_celery(celery_module):
    """Install memfence.celery on every Celery worker as it starts (idempotent)."""
    import memfence.celery
    memfence.celery.enable_auto()


def _hooks():
    return {"grpc": patch_grpc, "celery": patch_celery}


class _Finder(importlib.abc.MetaPathFinder):
    """Lets the real finders find grpc (celery), then patches it once executed."""

    def find_spec(self, fullname, path=None, target=None):
        after = _hooks().get(fullname)
        if after is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, after)
                return spec
        return None


def enable():
    """Patch grpc and celery now if imported, else when they are imported."""
    if not enabled():
        return False
    for name, patch in _hooks().items():
        if name in sys.modules:
            patch(sys.modules[name])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    return True

