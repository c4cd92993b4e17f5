"""RQ integration: memfence's queue-generic core (memfence._tasks) on RQ's
hooks, as memfence.celery is on Celery's.

    rq worker -w memfence.rq.Worker -j memfence.rq.Job QUEUE

or ``memfence.rq.Worker(queues, connection=redis)`` in code (its default
job class is :class:`Job`).

- In the work horse, before a job runs: the quarantine check. A job whose
  id is quarantined fails at once with :class:`TaskQuarantined`, not run
  and not retried (its ``Retry`` is dropped). Then the job runs in a scope
  named after its function, with the job id, past the admission gate; an
  allocation failure becomes :class:`TaskOutOfMemory` once the horse's
  memory is released. A gate that timed out fails the job like any error
  (a ``Retry`` sends it again).
- In the worker: a work horse that dies with its job (the kernel's OOM
  killer, any signal) counts one death for the job id, before RQ retries
  it, unless ``memfence run`` records deaths itself
  (``MEMFENCE_QUARANTINE_RECORDER=supervisor``).

RQ fails a job whose horse died and does not run it again unless it has a
``Retry``, which keeps the job id: that is the loop the quarantine stops.
A horse ends after each job, so a horse that failed on memory is not kept.

Settings: :func:`configure` (store, threshold, record_deaths,
count_allocation_failures), else the environment's, as for Celery.
"""
import logging
import os

import rq

from memfence import _tasks
from memfence._memfence import ENV
from memfence import quarantine as _q

__all__ = ["Job", "Worker", "configure", "TaskOutOfMemory", "TaskQuarantined", "counters"]

log = logging.getLogger("memfence.rq")
counters = _tasks.counters


class TaskOutOfMemory(_tasks.TaskOutOfMemory):
    """A job failed because an allocation was refused (not a MemoryError)."""


class TaskQuarantined(_tasks.TaskQuarantined):
    """The job was not run: its id is quarantined (poison job)."""


_guard = None


def configure(store=None, threshold=None, record_deaths="auto",
              count_allocation_failures=False):
    """Choose the quarantine store and rules (the environment's by default)."""
    global _guard
    st = store if isinstance(store, _q.Store) else _q.Store(store=store, threshold=threshold)
    if record_deaths == "auto":
        record_deaths = os.environ.get(ENV["QUARANTINE_RECORDER"], "") != "supervisor"
    _guard = _tasks.Guard(st, log, bool(record_deaths), bool(count_allocation_failures),
                          TaskOutOfMemory)
    return _guard


def guard():
    return _guard or configure()


def _fail(e):
    raise e


def _horse_ends(reason):
    # RQ forks a new work horse for every job: this one ends with its job.
    pass


class Job(rq.job.Job):
    def _execute(self):
        g = guard()
        bad = g.check(self.id, self.func_name)
        if bad is not None:
            reason, rec = bad
            self.retries_left = None
            raise TaskQuarantined(reason, self.func_name, self.id, (rec or {}).get("deaths"))
        return g.run(self.func_name, self.id, super()._execute, (), {}, _fail, _horse_ends)


class Worker(rq.Worker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("job_class", Job)
        kwargs.setdefault("work_horse_killed_handler", self._horse_killed)
        super().__init__(*args, **kwargs)
        self._memfence_oom = None

    def fork_work_horse(self, job, queue):
        # The OOM-kill counter before the job: a SIGKILL while it rose is
        # the kernel's OOM killer.
        self._memfence_oom = _tasks.oom_kills()
        return super().fork_work_horse(job, queue)

    def _horse_killed(self, job, pid, status, rusage):
        g = guard()
        if not g.records_deaths:
            return
        sig = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None
        exited = status is not None and os.WIFEXITED(status)
        g.record_death(job.id, job.func_name, _tasks.death_cause(sig, exited, self._memfence_oom),
                       pid)
