"""What memfence does around a queue task, whatever the queue framework.

An adapter (memfence.celery) binds these to its framework's hooks; this
module knows no framework:

- :meth:`Guard.check`: the quarantine check before a task runs (a store
  that cannot answer lets the task run; a quarantined id gets the reason
  to reject it with);
- :meth:`Guard.run`: the task in a scope named after it, with its id, past
  the admission gate, its allocation failures turned into
  :class:`TaskOutOfMemory` once the process is released and measured
  (:func:`after_failure`);
- :meth:`Guard.record_death`: one death of a task whose process died with
  it, with its cause (:func:`death_cause`, from the cgroup's OOM-kill
  counter, :func:`oom_kills`) and its memory at death from the stats
  segment (:func:`figures_at_death`).

What the adapter supplies: when to call these (before a task, around it,
when its process is lost), how to reject a task without requeue and answer
whoever waits on its result, how to send a task again later (a gate that
timed out), and, where the framework has one, a pool that replaces a
process after a task (``pool_recycle``).

The stable id is the framework's task id, which must travel in the message
so that every redelivery carries it (docs/quarantine.md).
"""
import logging
import os
import threading

from memfence import gate as _gate
from memfence._core import scope
from memfence._log import say as _say
from memfence._memfence import ENV
from memfence.failures import describe_failure, is_allocation_failure
from memfence import quarantine as _q
from memfence import recovery as _recover

#: What this process has done so far (the process that sees workers die
#: counts deaths; the processes that run tasks count checks, rejections and
#: out-of-memory tasks).
counters = {"checked": 0, "rejected": 0, "out_of_memory": 0, "deaths_recorded": 0,
            "store_errors": 0, "recovered": 0, "recycled": 0, "gate_timed_out": 0,
            "too_big": 0}
_count_lock = threading.Lock()


def count(key, n=1):
    with _count_lock:
        counters[key] += n


class TaskOutOfMemory(Exception):
    """A task failed because an allocation was refused.

    Deliberately not a MemoryError: a queue's worker may treat that as its
    own death (Celery's parent re-raises it and crashes); the MemoryError is
    its ``__cause__`` in the process that ran the task.
    """

    def __init__(self, message, task_name=None, task_id=None, peak=None):
        super().__init__(message)
        self.task_name, self.task_id, self.peak = task_name, task_id, peak

    def __reduce__(self):
        # Crosses process pipes and result backends: plain arguments only.
        return (type(self), (str(self), self.task_name, self.task_id, self.peak))


class TaskQuarantined(Exception):
    """The task was not run: its id is quarantined (poison task)."""

    def __init__(self, message, task_name=None, task_id=None, deaths=None):
        super().__init__(message)
        self.task_name, self.task_id, self.deaths = task_name, task_id, deaths

    def __reduce__(self):
        return (type(self), (str(self), self.task_name, self.task_id, self.deaths))


def mib(n):
    return "%.1f MiB" % (n / 1048576.0)


class Guard:
    """One queue app's quarantine store and choices.

    store: a :class:`memfence.quarantine.Store`. log: the adapter's logger
    (its name is what users filter on). record_deaths: record the deaths
    this process sees (False when the supervisor records them, one death
    must count once). count_allocation_failures: also count a task that
    failed on an allocation, without a death, toward its quarantine.
    out_of_memory: the :class:`TaskOutOfMemory` class to raise (an adapter
    may name its own).
    """

    def __init__(self, store, log, record_deaths=True, count_allocation_failures=False,
                 out_of_memory=TaskOutOfMemory):
        self.store = store
        self.log = log
        self.record_deaths = record_deaths
        self.count_alloc = count_allocation_failures
        self.out_of_memory = out_of_memory

    def check(self, tid, name):
        """None when task tid may run (also when the store cannot answer:
        logged, an unusable quarantine must not stop the queue); else
        ``(reason, record)`` of a quarantined task, logged and counted, for
        the adapter to reject it without requeue."""
        try:
            answer = self.store._check_on(tid)
        except _q.QuarantineError as e:
            answer = e
        if answer is None:
            return None  # the quarantine is off
        count("checked")
        if isinstance(answer, _q.QuarantineError):
            count("store_errors")
            _say(self.log, logging.ERROR,
                 "memfence: quarantine check of %s[%s] failed, running it: %s", name, tid,
                 answer, task=tid)
            return None
        bad, rec = answer
        self._warn()
        if not bad:
            return None
        reason = "memfence: rejected, not run: task %s" % _q.describe("%s[%s]" % (name, tid), rec)
        count("rejected")
        _say(self.log, logging.ERROR, reason, task=tid)
        return reason, rec

    def run(self, name, tid, fn, args, kwargs, on_gate_timeout, pool_recycle=None):
        """fn(*args, **kwargs) as task tid: in its scope, past the admission
        gate. A gate that timed out (nothing of the task ran) is counted,
        logged and handed to on_gate_timeout(exc), which sends the task
        again later (it raises, or returns the run's value). An allocation
        failure becomes ``self.out_of_memory`` once the process is released
        and measured (:func:`after_failure`)."""
        sc = scope(name, id=tid)
        try:
            with sc:
                with _gate.admit(name):
                    return fn(*args, **kwargs)
        except _gate.GateTimeout as e:
            if e.too_big:
                # It would wait for ever: fail it once, not retried.
                count("too_big")
                msg = "task %s[%s] not run: %s" % (name, tid, e)
                _say(self.log, logging.ERROR, "memfence: %s", msg, task=tid)
                raise self.out_of_memory(msg, name, tid, None) from e
            count("gate_timed_out")
            _say(self.log, logging.WARNING, "memfence: task %s[%s]: %s; retried later", name,
                 tid, e, task=tid)
            return on_gate_timeout(e)
        except Exception as e:
            if not is_allocation_failure(e):
                raise
            what = describe_failure(e) or type(e).__name__
            f = sc.figures
            peak = f.peak if f is not None else None
            msg = "task %s[%s] ran out of memory (%s)" % (name, tid, what)
            if f is not None and f.peak:
                msg += "; peak %s (%s)" % (mib(f.peak), f.source)
            count("out_of_memory")
            _say(self.log, logging.ERROR, "memfence: %s", msg, task=tid)
            # The frames of the failed task hold what it built: let go of
            # them now, not when the failure has travelled through the
            # result backend; then check that this process can take the
            # next task.
            after_failure(name, tid, e, self.log, pool_recycle)
            if self.count_alloc and self.store.enabled:
                self._record(tid, name, "allocation_failure", f and f.peak, f and f.allocated,
                             f and f.net)
            raise self.out_of_memory(msg, name, tid, peak) from e

    @property
    def records_deaths(self):
        """Whether this process records the deaths it sees."""
        return self.record_deaths and self.store.enabled

    def record_death(self, tid, name, cause, pid=None):
        """Count one death of task tid, whose process pid died with it; its
        memory at death from the stats segment. None when this process
        does not record deaths or the store could not (logged)."""
        if not self.records_deaths:
            return None
        peak, allocated, net = figures_at_death(pid, tid)
        return self._record(tid, name, cause, peak, allocated, net)

    def _warn(self):
        # The store's own warning (Redis away: answered from the local
        # copy) already starts with "memfence:".
        if self.store.last_warning:
            _say(self.log, logging.WARNING, "%s", self.store.last_warning.splitlines()[-1])

    def _record(self, tid, name, cause, peak=None, allocated=None, net=None):
        try:
            doc = self.store.record(tid, name=name, cause=cause, peak=peak,
                                    allocated=allocated, net=net)
        except _q.QuarantineError as e:
            count("store_errors")
            _say(self.log, logging.ERROR, "memfence: could not record the death of %s[%s]: %s",
                 name, tid, e, task=tid)
            return None
        count("deaths_recorded")
        self._warn()
        rec = doc.get("record") or {}
        _say(self.log, logging.ERROR,
             "memfence: task %s[%s] died with its worker (%s%s): death %s of %s%s",
             name, tid, cause, ", peak %s" % mib(peak) if peak else "",
             rec.get("deaths"), rec.get("threshold"),
             "; quarantined, it will not run again" if doc.get("quarantined") else "", task=tid)
        return doc


# --- after a task failed on memory: the same process, clean, or a new one -------

def after_failure(name, tid, exc, log, pool_recycle=None):
    """Release what the failed task built and check this process; when it is
    still not clean, have it replaced: by the framework's pool after this
    task when there is one (pool_recycle(reason)), else by `memfence run`."""
    _recover.release(exc)
    exc = None
    try:
        r = _recover.recover()
    except Exception as e:  # never turn a task failure into a crash
        _say(log, logging.ERROR, "memfence: recovery after %s[%s] failed: %s", name, tid, e,
             task=tid)
        return
    if r.clean:
        count("recovered")
        _say(log, logging.INFO, "memfence: recovered after %s[%s]: %s", name, tid, r.reason,
             task=tid)
        return
    if _recover.recycle_enabled() and pool_recycle is None and \
            _recover.request_recycle("after %s[%s]: %s" % (name, tid, r.reason)):
        # No pool to replace it: the supervisor drains and replaces the worker.
        count("recycled")
        _say(log, logging.ERROR, "memfence: not clean after %s[%s] (%s); asked memfence run to "
             "recycle process %d", name, tid, r.reason, os.getpid(), task=tid)
        return
    if not _recover.recycle_enabled() or pool_recycle is None:
        _say(log, logging.ERROR, "memfence: not clean after %s[%s] (%s); recycling is %s", name,
             tid, r.reason, "off" if not _recover.recycle_enabled() else
             "not available outside a prefork pool and memfence run", task=tid)
        return
    pool_recycle(r.reason)
    count("recycled")
    _say(log, logging.ERROR, "memfence: recycling pool process %d after %s[%s]: %s", os.getpid(),
         name, tid, r.reason, task=tid)


# --- why a task's process died --------------------------------------------------

def oom_kills():
    """The OOM-kill counter of this process's memory cgroup, or None.

    cgroup v1 memory.oom_control:   oom_kill_disable 0 / under_oom 0 / oom_kill 3
    cgroup v2 memory.events:        low 0 / high 0 / max 12 / oom 2 / oom_kill 2

    Read as each task is accepted, in the process that sees workers die: the
    file is found and opened once per process (finding it reads
    /proc/self/cgroup and tries paths, 0.3 ms), then read from its start
    with one pread, which the kernel answers with the counter as it is now;
    an open, a read and a close per task cost three times as many system
    calls.
    """
    global _oom_fd
    if _oom_fd is None:
        _oom_fd = _oom_counter_open()
    if _oom_fd < 0:
        return None
    try:
        data = os.pread(_oom_fd, 4096, 0)
    except OSError:
        _oom_close()  # found again next time
        return None
    return _oom_kill_value(data)


# The counter file's descriptor in this process: None not looked for yet, -1
# none found. A forked child looks again (its cgroup may differ).
_oom_fd = None


def _oom_close():
    global _oom_fd
    if _oom_fd is not None and _oom_fd >= 0:
        try:
            os.close(_oom_fd)
        except OSError:
            pass
    _oom_fd = None


os.register_at_fork(after_in_child=_oom_close)


def _oom_counter_open():
    path = _oom_counter_file()
    if path is None:
        return -1
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def _oom_kill_value(data):
    for line in data.split(b"\n"):
        k, _, v = line.partition(b" ")
        if k == b"oom_kill":
            try:
                return int(v)
            except ValueError:
                return None
    return None


def _oom_counter_file():
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    cands = []
    for line in lines:
        hid, ctrls, path = (line.split(":", 2) + ["", ""])[:3]
        if "memory" in ctrls.split(","):
            cands.append("/sys/fs/cgroup/memory%s/memory.oom_control" % path)
        elif hid == "0":
            cands.append("/sys/fs/cgroup%s/memory.events" % path)
            cands.append("/sys/fs/cgroup/unified%s/memory.events" % path)
    for p in cands:
        try:
            with open(p, "rb") as f:
                if _oom_kill_value(f.read()) is not None:
                    return p
        except OSError:
            continue
    return None


def death_cause(sig, exited, oom_before):
    """The quarantine's cause of a task's process death: the signal that
    ended it (None: none known), whether it exited instead, and the OOM-kill
    counter when the task was accepted (:func:`oom_kills`). A SIGKILL while
    the counter rose is the kernel's OOM killer."""
    after = oom_kills()
    if sig == 9 and oom_before is not None and after is not None and after > oom_before:
        return "oom_kill"
    if sig == 9:
        return "sigkill"
    if sig is not None:
        return "signal"
    return "exit" if exited else "unknown"


def figures_at_death(pid, tid):
    """(peak, allocated, net) of task tid in process pid from the stats
    segment, which outlives the process; Nones without the accounting
    library. Read in this process, as `memfence stat` reads it."""
    seg = os.environ.get(ENV["SEGMENT"])
    if not seg or _q._host is None:
        return None, None, None
    try:
        scopes = _q._host.scopes_in_flight(seg, str(tid)) or []
    except Exception:
        return None, None, None
    # The dead process's slot, else any slot still holding the task (the
    # supervisor may already have handed the slot to a new process); the
    # outermost scope of the task.
    mine = [s for s in scopes if s[0] == pid] or scopes
    if not mine:
        return None, None, None
    _, _, peak, allocated, net = min(mine, key=lambda s: s[1])
    return peak, allocated, net

