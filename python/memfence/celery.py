"""Celery integration: per-task scopes, allocation failures as task
failures, and the poison-task quarantine.

    app = Celery("proj", broker=...)
    import memfence.celery
    memfence.celery.install(app)

What it does, per task run (in the pool process that runs it):

1. **Quarantine check** first: a task id that the quarantine store holds as
   quarantined (it was in flight when a worker died ``threshold`` times) is
   not run. It is rejected without requeue (``celery.exceptions.Reject``),
   its result is marked failed with :class:`TaskQuarantined` so callers
   waiting on it get an answer, it is copied to the dead-letter queue when
   one is configured, and it is logged and counted (:data:`counters`).
2. **Scope** named after the task, with the task id: its memory figures
   (allocated, retained, peak) appear in the supervisor's records, and a
   post-mortem names it when the process dies with it in flight.
3. **Allocation failures** (anything :func:`memfence.is_allocation_failure`
   recognises) become :class:`TaskOutOfMemory`, a plain ``Exception`` that
   carries the MemoryError as its ``__cause__``. Celery's parent process
   re-raises a task's ``MemoryError`` and crashes ("Parent must re-raise
   MemoryError and crash", celery/worker/request.py) before acknowledging
   the message, so a plain MemoryError would cost the whole worker and
   redeliver the task; TaskOutOfMemory fails the task once, is acknowledged
   like any other failure, and the worker goes on. The task's half-built
   data is released before the failure is reported (:func:`memfence.recover`:
   frames cleared, ``gc.collect()``, ``malloc_trim``), and the pool process is
   measured: when its heap or ``VmData`` is still above
   ``MEMFENCE_MAX_MEMORY_PER_CHILD`` (default 50 % of ``RLIMIT_DATA``), the
   pool replaces it once the task's failure is sent and acknowledged
   (billiard's ``max_memory_per_child`` check, which memfence turns on and
   answers; ``MEMFENCE_RECYCLE=off`` keeps the process).

4. **Admission gate** (under ``memfence run``, docs/gate.md): before the
   task starts it waits, in its scope, for the memory its kind needs, at
   most the gate's maximum wait; when that runs out nothing of the task has
   run, and it is retried a second later (``task.retry``, counted as
   ``gate_timed_out``); a task whose need is above the whole line fails
   once with TaskOutOfMemory, not retried (``too_big``). Every pool process shares one gate. Prefetch does
   not let one child hoard memory: a child asks for its need only when a
   task starts, one task at a time, and prefetched messages ask for
   nothing; with Celery's default fair scheduling the parent hands
   messages to idle children only, so a child waiting at the gate holds no
   other task back.

And in the worker's main process: when a pool process dies with a task in
flight (Celery's ``WorkerLostError``: the kernel OOM-killed it, or any
other abnormal end) the death is recorded in the store for that task id
*before* Celery requeues it (``task_reject_on_worker_lost``), with the cause
(``oom_kill`` when the cgroup's OOM-kill counter rose while the task ran)
and, under the accounting library, the task's memory at death read from the
stats segment. So the next delivery's check sees it.

The stable id is Celery's task id: it travels in the message, and a
redelivery (requeue after a lost worker, Redis' visibility timeout, AMQP
redelivery) is the same message with the same id. A task re-sent by the
*application* (``apply_async`` again, ``retry()`` counts as the same id)
under a new id starts a new count.

When the whole worker dies (a group OOM kill on cgroup v2 takes the main
process too) no Python code is left to record anything: that death is the
supervisor's (``memfence run``) to record. Set
``MEMFENCE_QUARANTINE_RECORDER=supervisor`` when the supervisor records the
deaths of pool processes as well, so that one death is not counted twice.
"""
import functools
import logging
import os
import re
import threading

from memfence import _tasks
from memfence._log import say as _say
from memfence._memfence import ENV
from memfence import quarantine as _q
from memfence import recovery as _recover
from memfence import serving

__all__ = ["install", "TaskOutOfMemory", "TaskQuarantined", "counters", "enable_auto"]

log = logging.getLogger("memfence.celery")

#: What this process has done so far (the worker's main process counts
#: deaths; pool processes count checks, rejections and out-of-memory tasks).
#: The queue-generic core's counts (memfence._tasks), under Celery's name.
counters = _tasks.counters


class TaskOutOfMemory(_tasks.TaskOutOfMemory):
    """A task failed because an allocation was refused.

    Deliberately not a MemoryError (see the module's documentation); the
    MemoryError is its ``__cause__`` in the process that ran the task.
    """


class TaskQuarantined(_tasks.TaskQuarantined):
    """The task was not run: its id is quarantined (poison task)."""


class _Config(_tasks.Guard):
    def __init__(self, app, store, dead_letter_queue, record_deaths,
                 count_allocation_failures):
        super().__init__(store, log, record_deaths, count_allocation_failures,
                         TaskOutOfMemory)
        self.app = app
        self.dlq = dead_letter_queue


_configs = {}          # id(app) -> _Config
# A task of an app install() has not seen: fenced, not checked or recorded.
_unconfigured = _tasks.Guard(_q.Store(store=_q.OFF), log, False, False, TaskOutOfMemory)
_patched_request = False
# Whether an installed app records the deaths of its pool processes here.
_recorder = False
_patch_lock = threading.Lock()


def install(app, store=None, threshold=None, dead_letter_queue=None, record_deaths="auto",
            count_allocation_failures=False):
    """Enable memfence for every task of ``app`` (call once, where the app is
    made, before the worker starts).

    store: quarantine store spec (``sqlite:PATH``, ``redis://HOST:PORT/DB``)
    or a :class:`memfence.quarantine.Store`; default: the environment's
    (``MEMFENCE_QUARANTINE``, else the state directory's SQLite file).
    threshold: deaths that quarantine a task (default 2).
    dead_letter_queue: a queue name; quarantined tasks are re-sent there
    (same id, arguments and headers, plus ``memfence_quarantined``) before
    being rejected. Without it they are rejected without requeue, which on
    RabbitMQ goes to the queue's dead-letter exchange when it has one.
    record_deaths: record pool-process deaths from the worker's main process
    ("auto": yes, unless ``MEMFENCE_QUARANTINE_RECORDER=supervisor``).
    count_allocation_failures: also count a task that failed on an allocation
    (without a death) toward its quarantine.
    Returns the app.
    """
    global _recorder
    if isinstance(store, _q.Store):
        st = store
        if threshold is not None:
            st.threshold = threshold
    else:
        st = _q.Store(store=store, threshold=threshold)
    if record_deaths == "auto":
        record_deaths = os.environ.get(ENV["QUARANTINE_RECORDER"], "") != "supervisor"
    cfg = _Config(app, st, dead_letter_queue, bool(record_deaths),
                  bool(count_allocation_failures))
    if cfg.records_deaths:
        _recorder = True
    first = id(app) not in _configs
    _configs[id(app)] = cfg
    if first:
        # Tasks are bound to the app when it is finalized (the worker does it
        # before forking its pool, so pool processes inherit the wrapping);
        # the pool rebuilds its tracers from app.tasks after the fork.
        app.on_after_finalize.connect(lambda sender=None, **kw: _wrap_all(app), weak=False)
        if app.finalized:
            _wrap_all(app)
        _patch_request_class()
        from celery import signals

        def on_worker_init(sender=None, **kw):
            if getattr(sender, "app", None) is app:
                _prepare_pool(sender)

        signals.worker_init.connect(on_worker_init, weak=False)

    # Ready means serving (memfence.serving): declared as the worker starts,
    # said once it consumes.
    def on_worker_ready(sender=None, **kw):
        serving.serving("celery: worker ready, consuming")

    signals.worker_ready.connect(on_worker_ready, weak=False)
    return app


def _wrap_all(app):
    # app._tasks, not app.tasks: inside on_after_finalize the latter would
    # finalize again and deadlock on the app's finalize lock.
    for task in list(app._tasks.values()):
        _wrap_task(app, task)


def _wrap_task(app, task):
    name = getattr(task, "name", "") or ""
    if name.startswith("celery.") or getattr(task, "_memfence_wrapped", False):
        return  # Celery's own (chord unlock, backend cleanup): nothing to fence.
    orig = task.run

    @functools.wraps(orig)
    def run(*args, **kwargs):
        return _run(app, task, orig, args, kwargs)

    task.run = run
    task._memfence_wrapped = True


def _run(app, task, orig, args, kwargs):
    req = task.request
    tid = getattr(req, "id", None)
    if tid is None or getattr(req, "called_directly", True):
        return orig(*args, **kwargs)  # a plain function call, not a task run
    cfg = _configs.get(id(app)) or _unconfigured
    name = task.name
    _check_or_reject(cfg, task, req, tid, name)

    def retry(e):
        # Nothing of the task ran: send it again later rather than fail it.
        raise task.retry(exc=e, countdown=1, max_retries=None)

    return cfg.run(name, tid, orig, args, kwargs, retry, _pool_recycle())


def _check_or_reject(cfg, task, req, tid, name):
    bad = cfg.check(tid, name)
    if bad is None:
        return
    from celery.exceptions import Reject
    reason, rec = bad
    dlq = cfg.dlq
    if dlq is None:
        # Read here, not in install(): touching app.conf there would load the
        # configuration before the app's own config_from_object() call.
        dlq = task.app.conf.get("memfence_dead_letter_queue")
    if dlq:
        try:
            headers = dict(getattr(req, "headers", None) or {})
            headers["memfence_quarantined"] = reason
            task.app.send_task(name, args=req.args, kwargs=req.kwargs, task_id=tid,
                               queue=dlq, headers=headers)
        except Exception as e:
            _say(log, logging.ERROR,
                 "memfence: could not send %s[%s] to the dead-letter queue %s: %s",
                 name, tid, dlq, e, task=tid)
    try:
        deaths = (rec or {}).get("deaths")
        task.backend.mark_as_failure(tid, TaskQuarantined(reason, name, tid, deaths),
                                     request=req)
    except Exception as e:  # no result backend, or it is down: the log says enough
        _say(log, logging.DEBUG, "memfence: could not store the quarantine failure of %s: %s",
             tid, e, task=tid)
    raise Reject(reason, requeue=False)


# --- recovery: a clean pool process, or a new one ---------------------------------

# The pool's own way to replace a process after a task: billiard's worker loop
# (billiard/pool.py, Worker.workloop) sends the task's result, then, when the
# pool has a max_memory_per_child (Celery's worker_max_memory_per_child),
# compares billiard.pool.mem_rss() with it and ends the process with
# EX_RECYCLE; the main process acknowledges the task (acks_late) when the
# result arrives and starts a new pool process. Nothing is lost or redelivered.
# memfence turns that check on (a limit nobody reaches, when the user set
# none) and answers it: over the limit when the process did not recover,
# else what billiard measures (the peak resident set on Linux) when the user
# set a limit of their own.
_NEVER_KIB = 1 << 50
_recycle_reason = None
_user_limit = None
_orig_mem_rss = None


def _mem_rss():
    if _recycle_reason is not None:
        return _NEVER_KIB + 1
    if _user_limit:
        return _orig_mem_rss()
    return 1  # billiard logs an error for 0: "unable to determine memory usage"


def _prepare_pool(worker):
    """Called in the worker's main process at worker_init, before the pool
    starts: turn billiard's per-task memory check on and answer it."""
    global _user_limit, _orig_mem_rss
    if not _recover.recycle_enabled():
        return
    try:
        import billiard.pool as bpool
    except ImportError:
        return
    if bpool.mem_rss is not _mem_rss:
        _orig_mem_rss = bpool.mem_rss
        bpool.mem_rss = _mem_rss
    if not getattr(worker, "max_memory_per_child", None):
        _user_limit = None
        worker.max_memory_per_child = _NEVER_KIB
    else:
        _user_limit = worker.max_memory_per_child


def _pool_recycle():
    """The pool's way to replace this process after the task, for the core's
    after_failure; None outside a prefork pool (no billiard check to answer)."""
    return None if _orig_mem_rss is None else _recycle


def _recycle(reason):
    global _recycle_reason
    _recycle_reason = reason


# --- the worker's main process ------------------------------------------------

_SIGNAL = re.compile(r"signal (\d+)")
_EXITCODE = re.compile(r"exitcode (-?\d+)")


def _cause(exc, oom_before):
    """The death's cause from billiard's WorkerLostError ("... signal 9
    (SIGKILL) ..." or "... exitcode 70 ...") and the OOM-kill counter."""
    text = str(exc)
    m = _SIGNAL.search(text)
    sig = int(m.group(1)) if m else None
    if sig is None:
        m = _EXITCODE.search(text)
        if m and int(m.group(1)) < 0:
            sig = -int(m.group(1))
    return _tasks.death_cause(sig, "exitcode" in text, oom_before)


def _patch_request_class():
    """Hook the worker's Request (main process) to see pool processes die."""
    global _patched_request
    with _patch_lock:
        if _patched_request:
            return
        _patched_request = True
    from celery.worker import request as creq
    from billiard.exceptions import WorkerLostError

    base = creq.Request
    orig_accepted = base.on_accepted
    orig_failure = base.on_failure

    def on_accepted(self, pid, time_accepted):
        # The counter tells the cause of a death this process records; when
        # it records none (the supervisor does) it is not read: this process
        # hands every task to the pool, and its time is the worker's rate.
        self._memfence_oom = None
        if _recorder:
            try:
                self._memfence_oom = _tasks.oom_kills()
            except Exception:
                pass
        return orig_accepted(self, pid, time_accepted)

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # billiard's ExceptionWithTraceback wraps it
        if isinstance(exc, WorkerLostError):
            try:
                _on_worker_lost(self, exc)
            except Exception as e:  # never break Celery's own bookkeeping
                _say(log, logging.ERROR, "memfence: recording a lost worker failed: %s", e)
        return orig_failure(self, exc_info, send_failed_event=send_failed_event,
                            return_ok=return_ok)

    on_accepted.__wrapped__ = orig_accepted
    on_failure.__wrapped__ = orig_failure
    base.on_accepted = on_accepted
    base.on_failure = on_failure


def _on_worker_lost(req, exc):
    task = getattr(req, "task", None)
    app = getattr(task, "app", None) if task is not None else None
    cfg = _configs.get(id(app)) if app is not None else None
    if cfg is None or not cfg.records_deaths:
        return
    cfg.record_death(req.id, req.name, _cause(exc, getattr(req, "_memfence_oom", None)),
                     getattr(req, "worker_pid", None))


# --- no code change under `memfence run` ---------------------------------------

_auto_done = False


def enable_auto():
    """Install on every Celery worker's app as the worker starts (what
    memfence's automatic Python integration calls once celery is imported).
    Idempotent."""
    global _auto_done
    with _patch_lock:
        if _auto_done:
            return
        _auto_done = True
    from celery import signals

    def on_worker_init(sender=None, **kw):
        serving.starting(serving.STARTING["celery"])
        app = getattr(sender, "app", None)
        if app is not None and id(app) not in _configs:
            install(app)
            _prepare_pool(sender)  # install()'s own handler missed this signal

    signals.worker_init.connect(on_worker_init, weak=False)

    # Ready means serving (memfence.serving): declared as the worker starts,
    # said once it consumes.
    def on_worker_ready(sender=None, **kw):
        serving.serving("celery: worker ready, consuming")

    signals.worker_ready.connect(on_worker_ready, weak=False)
