"""memfence.celery and memfence.quarantine without a broker: Celery's eager
mode runs the same tracer a pool process runs, and the store is a real
SQLite file behind the real `memfence quarantine` command (found in the
build tree next to the package)."""
import logging
import os
import pickle
import shutil
import tempfile
import unittest

from celery import Celery

import memfence
import memfence.celery as mc
from memfence import _tasks as mt
from memfence import quarantine as mq

logging.getLogger("memfence.celery").setLevel(logging.CRITICAL)


class StoreTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mf-q-")
        self.store = mq.Store(state_dir=self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_binary_found(self):
        self.assertTrue(mq.find_binary(), "the memfence command is not found")

    def test_check_record_threshold(self):
        self.assertEqual(self.store.check("t-1"), (False, None))
        doc = self.store.record("t-1", name="tasks.x", cause="oom_kill", peak=300 << 20)
        self.assertFalse(doc["quarantined"])
        self.assertEqual(doc["record"]["deaths"], 1)
        bad, rec = self.store.check("t-1")
        self.assertFalse(bad)
        self.assertEqual(rec["name"], "tasks.x")
        doc = self.store.record("t-1", cause="sigkill")
        self.assertTrue(doc["quarantined"])
        bad, rec = self.store.check("t-1")
        self.assertTrue(bad)
        self.assertEqual((rec["deaths"], rec["cause"], rec["peak"]), (2, "sigkill", 300 << 20))
        self.assertEqual([r["id"] for r in self.store.list(quarantined_only=True)], ["t-1"])

    def test_forked_child_uses_its_own_connection(self):
        # A pool process forked after the parent checked: its checks and
        # records open the store again (the parent's handle is the parent's).
        self.store.record("t-f", cause="oom_kill")
        self.assertFalse(self.store.check("t-f")[0])
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                self.store.record("t-f", cause="oom_kill")
                bad, rec = self.store.check("t-f")
                os.write(w, b"%d %d %d" % (bad, rec["deaths"], mq._pid == os.getpid()))
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read()
        os.waitpid(pid, 0)
        self.assertEqual(out, b"1 2 1")
        self.assertEqual(self.store.check("t-f")[1]["deaths"], 2)

    def test_threshold_option(self):
        st = mq.Store(state_dir=self.dir, threshold=1)
        st.record("t-2", cause="oom_kill")
        self.assertTrue(st.check("t-2")[0])
        self.assertFalse(mq.Store(state_dir=self.dir, threshold=3).check("t-2")[0])

    def test_ids_that_look_like_options(self):
        self.store.record("-x", cause="oom_kill")
        self.assertEqual(self.store.check("-x")[1]["deaths"], 1)

    def test_errors_are_clear(self):
        # A directory where the store file should be: the command's message.
        with self.assertRaisesRegex(mq.QuarantineError, "is not a regular file"):
            mq.Store(store="sqlite:" + self.dir).check("a")
        with self.assertRaisesRegex(mq.QuarantineError, "cannot run"):
            mq.Store(binary="/nonexistent/memfence").list()
        with self.assertRaisesRegex(mq.QuarantineError, "redis|store|URL|url"):
            mq.Store(store="redis://[bad", state_dir=self.dir).check("a")
        with self.assertRaises(mq.QuarantineError):
            self.store.check("")   # not a valid id

    def test_command_runs_without_the_accounting_library(self):
        saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "MEMFENCE_SEGMENT")}
        try:
            os.environ["LD_PRELOAD"] = "/opt/lib/libmemfence.so:/opt/lib/libother.so"
            os.environ["MEMFENCE_SEGMENT"] = "/tmp/seg"
            env = mq.child_env()
            self.assertEqual(env["LD_PRELOAD"], "/opt/lib/libother.so")
            self.assertNotIn("MEMFENCE_SEGMENT", env)
            os.environ["LD_PRELOAD"] = "/opt/lib/libmemfence.so"
            self.assertNotIn("LD_PRELOAD", mq.child_env())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_request_check(self):
        self.assertIsNone(mq.check_request(None, store=self.store))
        self.assertIsNone(mq.check_request("r-9", prefix="grpc:", store=self.store))
        for _ in range(2):
            mq.record_request("r-9", prefix="grpc:", name="/pkg.Svc/Get", cause="oom_kill",
                              store=self.store)
        with self.assertRaises(mq.Quarantined) as cm:
            mq.check_request("r-9", prefix="grpc:", store=self.store)
        self.assertIn("grpc:r-9 is quarantined after 2 death(s)", str(cm.exception))
        self.assertEqual(cm.exception.record["name"], "/pkg.Svc/Get")
        # Another prefix is another record.
        self.assertEqual(self.store.check("r-9"), (False, None))
        # A broken store lets the request run and says why.
        err = mq.check_request("r-1", store=mq.Store(store="sqlite:" + self.dir))
        self.assertIn("is not a regular file", err)

    def test_request_check_async(self):
        import asyncio
        mq.record_request("r-a", store=self.store, cause="oom_kill")
        mq.record_request("r-a", store=self.store, cause="oom_kill")
        with self.assertRaises(mq.Quarantined):
            asyncio.run(mq.check_request_async("r-a", store=self.store))
        self.assertIsNone(asyncio.run(mq.check_request_async("r-b", store=self.store)))

    def test_requests_are_opt_in(self):
        old = os.environ.pop("MEMFENCE_REQUEST_QUARANTINE", None)
        try:
            self.assertFalse(mq.requests_enabled())
            os.environ["MEMFENCE_REQUEST_QUARANTINE"] = "1"
            self.assertTrue(mq.requests_enabled())
        finally:
            os.environ.pop("MEMFENCE_REQUEST_QUARANTINE", None)
            if old is not None:
                os.environ["MEMFENCE_REQUEST_QUARANTINE"] = old


def make_app(state_dir, **kw):
    app = Celery("t", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = True
    app.conf.task_store_eager_result = True
    runs = []

    @app.task(name="t.ok", bind=True)
    def ok(self, x):
        runs.append(("t.ok", self.request.id))
        with_scope = memfence.current_scope()
        return (x * 2, with_scope.name if with_scope else None,
                with_scope.id if with_scope else None)

    @app.task(name="t.oom", bind=True)
    def oom(self, size=1):
        runs.append(("t.oom", self.request.id))
        raise MemoryError()

    @app.task(name="t.wrapped", bind=True)
    def wrapped(self):
        try:
            raise MemoryError()
        except MemoryError as e:
            raise ValueError("could not build the report") from e

    @app.task(name="t.other", bind=True)
    def other(self):
        raise KeyError("nope")

    mc.install(app, store=mq.Store(state_dir=state_dir), **kw)
    return app, runs


class CeleryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mf-c-")
        self.app, self.runs = make_app(self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_scope_per_task(self):
        r = self.app.tasks["t.ok"].apply(args=(21,), task_id="id-ok")
        self.assertEqual(r.get(), (42, "t.ok", "id-ok"))
        self.assertEqual(mc.counters["checked"] >= 1, True)

    def test_direct_call_is_untouched(self):
        self.assertEqual(self.app.tasks["t.ok"](1)[0], 2)

    def test_memory_error_becomes_task_failure(self):
        r = self.app.tasks["t.oom"].apply(task_id="id-oom")
        self.assertEqual(r.state, "FAILURE")
        exc = r.result
        self.assertIsInstance(exc, mc.TaskOutOfMemory)
        # Not a MemoryError: Celery's worker would re-raise it and crash.
        self.assertNotIsInstance(exc, MemoryError)
        self.assertIsInstance(exc.__cause__, MemoryError)
        self.assertTrue(memfence.is_allocation_failure(exc))
        self.assertRegex(str(exc), r"task t.oom\[id-oom\] ran out of memory \(MemoryError")
        # What crosses the pool's pipe and the result backend keeps its text.
        back = pickle.loads(pickle.dumps(exc))
        self.assertEqual((str(back), back.task_id, back.task_name),
                         (str(exc), "id-oom", "t.oom"))
        # Not counted toward quarantine unless asked.
        self.assertEqual(mq.Store(state_dir=self.dir).check("id-oom"), (False, None))

    def test_wrapped_allocation_failure(self):
        r = self.app.tasks["t.wrapped"].apply(task_id="id-w")
        self.assertIsInstance(r.result, mc.TaskOutOfMemory)

    def test_gate_timeout_retries_the_task_unrun(self):
        """A task that times out at the admission gate has not run: it is
        retried (here at once: eager), not failed."""
        import memfence.gate as mg
        calls = []

        class admit:
            def __init__(self, name, need=None, timeout=None):
                self.name = name

            def __enter__(self):
                calls.append((self.name, memfence.current_scope() is not None))
                if len(calls) == 1:
                    raise mg.GateTimeout(self.name, 0, 0.01)
                return self

            def __exit__(self, *exc):
                return False
        saved = mg.admit
        mg.admit = admit
        self.addCleanup(setattr, mg, "admit", saved)
        before = mc.counters["gate_timed_out"]
        r = self.app.tasks["t.ok"].apply(args=(4,), task_id="id-gate")
        self.assertEqual(r.get()[0], 8)
        self.assertEqual(calls, [("t.ok", True), ("t.ok", True)])
        self.assertEqual(mc.counters["gate_timed_out"], before + 1)

    def test_other_errors_pass_through(self):
        r = self.app.tasks["t.other"].apply(task_id="id-k")
        self.assertIsInstance(r.result, KeyError)

    def test_counted_allocation_failures(self):
        app, _ = make_app(self.dir, count_allocation_failures=True)
        app.tasks["t.oom"].apply(task_id="id-c")
        self.assertEqual(mq.Store(state_dir=self.dir).check("id-c")[1]["cause"],
                         "allocation_failure")

    def test_quarantined_task_is_rejected_not_run(self):
        st = mq.Store(state_dir=self.dir)
        st.record("id-poison", name="t.oom", cause="oom_kill")
        r = self.app.tasks["t.oom"].apply(task_id="id-poison")
        self.assertIsInstance(r.result, mc.TaskOutOfMemory)  # one death: still runs
        st.record("id-poison", name="t.oom", cause="oom_kill")
        before = len(self.runs)
        rejected = mc.counters["rejected"]
        r = self.app.tasks["t.oom"].apply(task_id="id-poison")
        self.assertEqual(r.state, "REJECTED")
        self.assertEqual(len(self.runs), before, "a quarantined task ran")
        self.assertEqual(mc.counters["rejected"], rejected + 1)

    def test_dead_letter_queue(self):
        # Configured the Celery way, after install().
        app, runs = make_app(self.dir)
        app.conf.memfence_dead_letter_queue = "memfence-dead"
        st = mq.Store(state_dir=self.dir)
        for _ in range(2):
            st.record("id-dlq", name="t.oom", cause="oom_kill")
        with app.connection_for_write() as conn:
            q = conn.SimpleQueue("memfence-dead")
            try:
                r = app.tasks["t.oom"].apply(kwargs={"size": 3}, task_id="id-dlq")
                self.assertEqual(r.state, "REJECTED")
                self.assertEqual(runs, [])
                msg = q.get(timeout=5)
                h = msg.headers
                self.assertEqual((h["id"], h["task"]), ("id-dlq", "t.oom"))
                self.assertIn("quarantined after 2 death(s)", h["memfence_quarantined"])
                self.assertEqual(msg.payload[1], {"size": 3})
                msg.ack()
            finally:
                q.close()

    def test_unusable_store_runs_the_task(self):
        app, runs = make_app(self.dir)
        mc._configs[id(app)].store = mq.Store(store="sqlite:" + self.dir)
        errors = mc.counters["store_errors"]
        self.assertEqual(app.tasks["t.ok"].apply(args=(1,), task_id="id-s").get()[0], 2)
        self.assertEqual(mc.counters["store_errors"], errors + 1)

    def test_cause_of_a_lost_worker(self):
        from billiard.exceptions import WorkerLostError
        e = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 3.")
        self.assertEqual(mc._cause(e, None), "sigkill")
        oom = mt.oom_kills()
        if oom is not None:
            self.assertEqual(mc._cause(e, oom - 1), "oom_kill")
            self.assertEqual(mc._cause(e, oom), "sigkill")
        e = WorkerLostError("Worker exited prematurely: signal 11 (SIGSEGV) Job: 3.")
        self.assertEqual(mc._cause(e, None), "signal")
        e = WorkerLostError("Worker exited prematurely: exitcode 70 Job: 3.")
        self.assertEqual(mc._cause(e, None), "exit")


class ParentTest(unittest.TestCase):
    """Celery's worker-side Request, as the main process uses it."""

    def test_celery_reraises_memory_error_but_not_ours(self):
        from billiard.einfo import ExceptionInfo
        from celery.worker.request import Request
        from celery.exceptions import Reject  # noqa: F401  (the patched module imports it)

        class Stub(Request):
            def __init__(self):  # only what on_failure touches before MemoryError
                pass

        def info(exc):
            try:
                raise exc
            except BaseException:
                return ExceptionInfo()

        import celery.worker.request as creq
        orig = getattr(creq.Request.on_failure, "__wrapped__", creq.Request.on_failure)
        saved = creq.task_ready
        creq.task_ready = lambda req: None
        try:
            with self.assertRaises(MemoryError):
                orig(Stub(), info(MemoryError()))
            # TaskOutOfMemory goes on to the ordinary failure path instead.
            with self.assertRaises(AttributeError):  # Stub has no task: past the re-raise
                orig(Stub(), info(mc.TaskOutOfMemory("x")))
        finally:
            creq.task_ready = saved


if __name__ == "__main__":
    unittest.main()
