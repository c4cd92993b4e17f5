"""memfence for Python: memory errors as recoverable, per-request failures.

    import memfence
    memfence.install()                        # limits from the container
    with memfence.scope("GetFeatures", id=request_id, budget="256M") as s:
        ...
    s.figures                                  # A, freed, net, peak, failed, source
    memfence.is_allocation_failure(exc)
    memfence.isolate(fn, *args, limit="1G", timeout=30)
    memfence.recover(exc)                      # after a failure: release, trim, check
    memfence.stats()

Servers: memfence.grpc (ServerInterceptor, AioServerInterceptor),
memfence.wsgi.Middleware, memfence.asgi.Middleware.
"""
from memfence import _memfence
from memfence._core import (Figures, current_scope, install, parse_size, scope, scoped,
                            shim_active, stats, thread_errno)
from memfence.failures import allocation_failure_kind, describe_failure, is_allocation_failure
from memfence.isolate import IsolatedResult, IsolationError, IsolationTimeout, isolate
from memfence.recovery import Recovery, recover

__version__ = _memfence.VERSION  # the memfence tree's VERSION file

__all__ = ["install", "scope", "scoped", "current_scope", "Figures", "stats", "shim_active",
           "thread_errno", "parse_size", "is_allocation_failure", "allocation_failure_kind",
           "describe_failure", "isolate", "IsolatedResult", "IsolationError",
           "IsolationTimeout", "recover", "Recovery"]
