"""memfence._tasks, the queue-generic core under memfence.celery, on its
own: no queue framework is imported. A plain function plays the task; the
store is a real SQLite file through the package's extension."""
import logging
import os
import pickle
import shutil
import sys
import tempfile
import unittest
from unittest import mock

import memfence
from memfence import _tasks as mt
from memfence import gate as mg
from memfence import quarantine as mq

log = logging.getLogger("test.tasks")
log.setLevel(logging.CRITICAL)


class Retry(Exception):
    """What a framework's 'send it again later' raises."""


def retry(e):
    raise Retry(str(e))


def _admit_timing_out(too_big=False):
    """A stand-in for memfence.gate.admit whose wait runs out (or whose
    need is above the whole line)."""
    class admit:
        def __init__(self, name, need=None, timeout=None):
            self.name = name

        def __enter__(self):
            raise mg.GateTimeout(self.name, 1 << 40 if too_big else 0, 0.01, too_big=too_big)

        def __exit__(self, *exc):
            return False
    return admit


class GuardTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mf-t-")
        self.store = mq.Store(state_dir=self.dir)
        self.guard = mt.Guard(self.store, log)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_runs_in_a_scope_named_after_the_task(self):
        def task(x):
            s = memfence.current_scope()
            return x * 2, s.name, s.id
        self.assertEqual(self.guard.run("jobs.double", "j-1", task, (21,), {}, retry),
                         (42, "jobs.double", "j-1"))
        self.assertIsNone(memfence.current_scope())

    def test_allocation_failure_becomes_task_out_of_memory(self):
        def task():
            try:
                raise MemoryError()
            except MemoryError as e:
                raise ValueError("could not build the report") from e
        before = mt.counters["out_of_memory"]
        with self.assertRaises(mt.TaskOutOfMemory) as cm:
            self.guard.run("jobs.big", "j-2", task, (), {}, retry)
        exc = cm.exception
        self.assertNotIsInstance(exc, MemoryError)
        self.assertIsInstance(exc.__cause__, ValueError)
        self.assertTrue(memfence.is_allocation_failure(exc))
        self.assertRegex(str(exc), r"^task jobs.big\[j-2\] ran out of memory \(MemoryError")
        self.assertEqual(mt.counters["out_of_memory"], before + 1)
        back = pickle.loads(pickle.dumps(exc))
        self.assertEqual((type(back), str(back), back.task_name, back.task_id),
                         (mt.TaskOutOfMemory, str(exc), "jobs.big", "j-2"))
        # Not counted toward quarantine unless asked.
        self.assertEqual(self.store.check("j-2"), (False, None))

    def test_adapter_names_its_own_exception(self):
        class Mine(mt.TaskOutOfMemory):
            pass
        g = mt.Guard(self.store, log, out_of_memory=Mine)

        def task():
            raise MemoryError()
        with self.assertRaises(Mine):
            g.run("jobs.big", "j-3", task, (), {}, retry)

    def test_other_errors_pass_through(self):
        def task():
            raise KeyError("nope")
        with self.assertRaises(KeyError):
            self.guard.run("jobs.k", "j-4", task, (), {}, retry)

    def test_counted_allocation_failures(self):
        g = mt.Guard(self.store, log, count_allocation_failures=True)

        def task():
            raise MemoryError()
        with self.assertRaises(mt.TaskOutOfMemory):
            g.run("jobs.big", "j-5", task, (), {}, retry)
        self.assertEqual(self.store.check("j-5")[1]["cause"], "allocation_failure")

    def test_gate_timeout_goes_to_the_adapter_unrun(self):
        ran = []
        before = mt.counters["gate_timed_out"]
        with mock.patch.object(mg, "admit", _admit_timing_out()):
            with self.assertRaises(Retry):
                self.guard.run("jobs.g", "j-6", ran.append, (1,), {}, retry)
            # An adapter may also answer with a value.
            self.assertEqual(self.guard.run("jobs.g", "j-6", ran.append, (1,), {},
                                            lambda e: "later"), "later")
        self.assertEqual(ran, [])
        self.assertEqual(mt.counters["gate_timed_out"], before + 2)

    def test_too_big_fails_once_not_retried(self):
        ran = []
        before = mt.counters["too_big"]
        with mock.patch.object(mg, "admit", _admit_timing_out(too_big=True)):
            # Its need is above the whole line: waiting or retrying cannot help.
            with self.assertRaises(mt.TaskOutOfMemory) as cm:
                self.guard.run("jobs.b", "j-7", ran.append, (1,), {}, retry)
        self.assertIsInstance(cm.exception.__cause__, mg.GateTimeout)
        self.assertEqual(ran, [])
        self.assertEqual(mt.counters["too_big"], before + 1)

    def test_check_record_and_reject(self):
        self.assertIsNone(self.guard.check("j-7", "jobs.poison"))
        before = mt.counters["deaths_recorded"]
        doc = self.guard.record_death("j-7", "jobs.poison", "oom_kill")
        self.assertFalse(doc["quarantined"])
        self.assertIsNone(self.guard.check("j-7", "jobs.poison"))
        doc = self.guard.record_death("j-7", "jobs.poison", "sigkill", pid=12345)
        self.assertTrue(doc["quarantined"])
        self.assertEqual(mt.counters["deaths_recorded"], before + 2)
        rejected = mt.counters["rejected"]
        reason, rec = self.guard.check("j-7", "jobs.poison")
        self.assertEqual(reason, "memfence: rejected, not run: task jobs.poison[j-7] is "
                         "quarantined after 2 death(s), last cause sigkill, name jobs.poison")
        self.assertEqual((rec["deaths"], rec["cause"]), (2, "sigkill"))
        self.assertEqual(mt.counters["rejected"], rejected + 1)

    def test_check_creates_no_store(self):
        # No store file yet: no record anywhere, answered from one stat.
        # Opening it would create it, and a pool's processes would all race
        # to at their first check, each waiting on the others' locks.
        path = os.path.join(self.dir, "quarantine.db")
        self.assertEqual(self.store.check("j-11"), (False, None))
        self.assertIsNone(self.guard.check("j-11", "jobs.x"))
        self.assertFalse(os.path.exists(path), "a check created the store")
        self.guard.record_death("j-11", "jobs.x", "oom_kill")
        self.assertTrue(os.path.exists(path))
        self.assertEqual(self.store.check("j-11")[1]["deaths"], 1)

    def test_deaths_left_to_the_supervisor(self):
        g = mt.Guard(self.store, log, record_deaths=False)
        self.assertFalse(g.records_deaths)
        self.assertIsNone(g.record_death("j-8", "jobs.x", "oom_kill"))
        self.assertEqual(self.store.check("j-8"), (False, None))

    def test_quarantine_off(self):
        g = mt.Guard(mq.Store(store=mq.OFF), log)
        checked = mt.counters["checked"]
        self.assertFalse(g.records_deaths)
        self.assertIsNone(g.check("j-9", "jobs.x"))
        self.assertIsNone(g.record_death("j-9", "jobs.x", "oom_kill"))
        self.assertEqual(mt.counters["checked"], checked)  # nothing checked while off
        self.assertIsNone(self.guard.check("j-9", "jobs.x"))
        self.assertEqual(mt.counters["checked"], checked + 1)

    def test_unusable_store_runs_the_task(self):
        g = mt.Guard(mq.Store(store="sqlite:" + self.dir), log)
        errors, checked = mt.counters["store_errors"], mt.counters["checked"]
        self.assertIsNone(g.check("j-10", "jobs.x"))
        self.assertIsNone(g.record_death("j-10", "jobs.x", "oom_kill"))
        self.assertEqual(mt.counters["store_errors"], errors + 2)
        self.assertEqual(mt.counters["checked"], checked + 1)


class AfterFailureTest(unittest.TestCase):
    """Released and measured; replaced by the pool when there is one."""

    def after(self, clean, enabled, pool):
        r = memfence.Recovery(clean=clean, reason="live heap 1.0 MiB")
        asked = []
        with mock.patch.object(mt._recover, "recover", return_value=r), \
                mock.patch.object(mt._recover, "recycle_enabled", return_value=enabled), \
                mock.patch.object(mt._recover, "request_recycle",
                                  side_effect=lambda why: asked.append(why) or True):
            mt.after_failure("jobs.big", "j-1", MemoryError(), log, pool)
        return asked

    def test_clean(self):
        before = mt.counters["recovered"]
        self.assertEqual(self.after(True, True, None), [])
        self.assertEqual(mt.counters["recovered"], before + 1)

    def test_pool_replaces_the_process(self):
        reasons = []
        before = mt.counters["recycled"]
        self.assertEqual(self.after(False, True, reasons.append), [])
        self.assertEqual(reasons, ["live heap 1.0 MiB"])
        self.assertEqual(mt.counters["recycled"], before + 1)

    def test_no_pool_asks_the_supervisor(self):
        self.assertEqual(self.after(False, True, None),
                         ["after jobs.big[j-1]: live heap 1.0 MiB"])

    def test_recycling_off(self):
        reasons = []
        before = mt.counters["recycled"]
        self.assertEqual(self.after(False, False, reasons.append), [])
        self.assertEqual((reasons, mt.counters["recycled"]), ([], before))


class DeathCauseTest(unittest.TestCase):
    def test_causes(self):
        self.assertEqual(mt.death_cause(9, False, None), "sigkill")
        self.assertEqual(mt.death_cause(11, False, None), "signal")
        self.assertEqual(mt.death_cause(None, True, None), "exit")
        self.assertEqual(mt.death_cause(None, False, None), "unknown")
        oom = mt.oom_kills()
        if oom is not None:
            self.assertEqual(mt.death_cause(9, False, oom - 1), "oom_kill")
            self.assertEqual(mt.death_cause(9, False, oom), "sigkill")

    def test_oom_counter_file_opened_once(self):
        # Read as each task is accepted: the cgroup's file is found and
        # opened once per process, then only read (one pread a task).
        if mt.oom_kills() is None:
            self.skipTest("no memory cgroup OOM-kill counter here")
        self.assertGreaterEqual(mt._oom_fd, 0)
        with mock.patch.object(mt, "_oom_counter_file",
                               side_effect=AssertionError("looked for again")), \
                mock.patch.object(mt.os, "open", side_effect=AssertionError("opened again")):
            self.assertIsInstance(mt.oom_kills(), int)
            self.assertIsInstance(mt.oom_kills(), int)

    def test_oom_counter_looked_for_again_in_a_child(self):
        if mt.oom_kills() is None:
            self.skipTest("no memory cgroup OOM-kill counter here")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the parent's descriptor is not its own
            ok = mt._oom_fd is None and isinstance(mt.oom_kills(), int)
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
        os.close(w)
        try:
            self.assertEqual(os.read(r, 1), b"1")
        finally:
            os.close(r)
            os.waitpid(pid, 0)

    def test_figures_without_the_accounting_library(self):
        with mock.patch.dict(os.environ, {}, clear=False):
            os.environ.pop("MEMFENCE_SEGMENT", None)
            self.assertEqual(mt.figures_at_death(1, "j-1"), (None, None, None))


class NoFrameworkTest(unittest.TestCase):
    def test_core_imports_no_queue_framework(self):
        for m in ("celery", "billiard", "kombu", "rq", "dramatiq"):
            self.assertNotIn(m, sys.modules)


if __name__ == "__main__":
    unittest.main()
