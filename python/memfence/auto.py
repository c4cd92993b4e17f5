"""What `memfence run` changes in a Python program without a code change.

The bootstrap the supervisor puts first on PYTHONPATH
(memfence/_bootstrap/sitecustomize.py; MEMFENCE_AUTO_PYTHON=0, or
`--no-auto-python`, turns it off) imports this module only when the program
imports one of the modules below, and calls the function that patches it.
Exactly this is patched, and nothing else:

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
- gunicorn.workers.base.Worker.load_wsgi: the application a sync or gthread
  worker loads (in every forked worker, or once before the fork with
  --preload) is wrapped in memfence.wsgi.Middleware. Other worker classes
  are left alone: gevent and eventlet run many requests on one thread in
  greenlets, which a thread's scope cannot follow; uvicorn's worker is
  covered by the next item.
- uvicorn.config.Config.load: the application uvicorn loads (uvicorn alone,
  its --workers processes, gunicorn's uvicorn.workers.UvicornWorker) is
  wrapped in memfence.asgi.Middleware; with --interface wsgi, the WSGI
  application inside uvicorn's WSGI adapter is wrapped in
  memfence.wsgi.Middleware instead, since it runs on threads.

An application already wrapped in memfence's middleware is not wrapped
twice. No limit is applied here: the supervisor has already applied them.

Each patch also tells the supervisor when the server serves
(memfence.serving; ready means serving): gunicorn when a worker has loaded
its application, uvicorn when lifespan startup is complete and it listens,
a gRPC server once started with a port bound, a Celery worker when it is
ready and consuming (memfence.celery.enable_auto).
"""
import os
import threading

__all__ = ["patch_grpc", "patch_celery", "patch_gunicorn", "patch_uvicorn"]

_lock = threading.Lock()
_patched = set()


def _once(what):
    with _lock:
        if what in _patched:
            return False
        _patched.add(what)
        return True


def _has_ours(interceptors):
    return any(getattr(i, "memfence_interceptor", False) for i in interceptors)


def patch_grpc(grpc_module):
    """Wrap grpc.server and grpc.aio.server (idempotent)."""
    if not _once("grpc"):
        return
    import memfence.grpc as mg
    from memfence import serving
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
        srv = orig(*args, **kwargs)
        serving.starting("grpc: server made, not started")
        _say_when_started(srv, serving, False)
        return srv

    server.__wrapped__ = orig
    server.__doc__ = orig.__doc__
    grpc_module.server = server

    aio = getattr(grpc_module, "aio", None)
    if aio is not None and hasattr(aio, "server"):
        aorig = aio.server

        def aio_server(*args, **kwargs):
            args, kwargs = with_ours(args, kwargs, mg.AioServerInterceptor)
            srv = aorig(*args, **kwargs)
            serving.starting("grpc.aio: server made, not started")
            _say_when_started(srv, serving, True)
            return srv

        aio_server.__wrapped__ = aorig
        aio_server.__doc__ = aorig.__doc__
        aio.server = aio_server


def _say_when_started(srv, serving, is_aio):
    """Say "serving" once srv has started with at least one port bound, and
    follow the supervisor's drain file from then on (memfence.grpc)."""
    import memfence.grpc as mg
    ports = []
    try:
        add_handlers = srv.add_generic_rpc_handlers

        def add_generic_rpc_handlers(handlers):
            health = mg.find_health(handlers)
            if health is not None:
                srv.memfence_health = health
            return add_handlers(handlers)

        srv.add_generic_rpc_handlers = add_generic_rpc_handlers
        for name in ("add_insecure_port", "add_secure_port"):
            add = getattr(srv, name)

            def bound(*a, _add=add, **kw):
                port = _add(*a, **kw)
                if port:
                    ports.append(port)
                return port

            setattr(srv, name, bound)
        start = srv.start
        if is_aio:
            async def started():
                await start()
                mg.follow_drain(srv)
                if ports:
                    serving.serving("grpc.aio: server started on port %s" % ports[0])
        else:
            def started():
                start()
                mg.follow_drain(srv)
                if ports:
                    serving.serving("grpc: server started on port %s" % ports[0])
        srv.start = started
    except AttributeError:
        pass  # a server of another kind: memory-only readiness


def patch_celery(celery_module):
    """Install memfence.celery on every Celery worker as it starts (idempotent)."""
    import memfence.celery
    memfence.celery.enable_auto()


_WSGI_WORKERS = ("gunicorn.workers.sync", "gunicorn.workers.gthread")


def patch_gunicorn(base_module):
    """Wrap the WSGI application of gunicorn's sync and gthread workers."""
    if not _once("gunicorn"):
        return
    # Imported now, in the arbiter, so that forked workers inherit it.
    import memfence.wsgi as mw
    from memfence import serving

    serving.starting(serving.STARTING["gunicorn"])
    worker = base_module.Worker
    orig = worker.load_wsgi

    def load_wsgi(self):
        orig(self)
        if any(c.__module__ in _WSGI_WORKERS for c in type(self).__mro__):
            self.wsgi = mw.wrap(self.wsgi)
        # uvicorn's worker serves after its lifespan startup: patch_uvicorn.
        if not type(self).__module__.startswith("uvicorn"):
            serving.serving("gunicorn: worker %d loaded the application" % os.getpid())

    load_wsgi.__wrapped__ = orig
    load_wsgi.__doc__ = orig.__doc__
    worker.load_wsgi = load_wsgi


def patch_uvicorn(config_module):
    """Wrap the application uvicorn's Config loads."""
    if not _once("uvicorn"):
        return
    import memfence.asgi as ma
    import memfence.wsgi as mw
    from memfence import serving

    config = config_module.Config
    orig = config.load

    def load(self):
        serving.starting(serving.STARTING["uvicorn"])
        _patch_uvicorn_startup(serving)
        orig(self)
        if self.interface != "wsgi":
            self.loaded_app = ma.wrap(self.loaded_app)
            return
        # uvicorn's WSGIMiddleware runs the application on a thread pool:
        # a thread's scope follows a request there.
        app = self.loaded_app
        for _ in range(16):
            if type(app).__name__ == "WSGIMiddleware" and hasattr(app, "app"):
                app.app = mw.wrap(app.app)
                return
            app = getattr(app, "app", None)
            if app is None:
                return

    load.__wrapped__ = orig
    load.__doc__ = orig.__doc__
    config.load = load


def _patch_uvicorn_startup(serving):
    """Say "serving" once uvicorn's Server.startup has run the lifespan
    startup and opened its sockets (uvicorn.server imports uvicorn.config,
    so it is patched at the first Config.load, not at import)."""
    if not _once("uvicorn.server"):
        return
    import uvicorn.server
    srv = uvicorn.server.Server
    orig = srv.startup

    async def startup(self, *args, **kwargs):
        await orig(self, *args, **kwargs)
        if not self.should_exit:
            serving.serving("uvicorn: lifespan startup complete, listening")

    startup.__wrapped__ = orig
    srv.startup = startup
