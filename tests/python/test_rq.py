"""memfence.rq: the queue-generic core (memfence._tasks) as a short RQ
adapter, with real RQ workers on a redis-server of our own (127.0.0.1)
and a real quarantine store: a job that kills its work horse runs at most
`threshold` times, even with retries left."""
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import redis
    import rq
    from rq import Retry
except ImportError:
    rq = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
logging.getLogger("rq.worker").setLevel(logging.ERROR)
logging.getLogger("memfence.rq").setLevel(logging.CRITICAL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@unittest.skipIf(rq is None, "python3-rq is not installed")
@unittest.skipIf(shutil.which("redis-server") is None, "redis-server is not installed")
class RqTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.redis = subprocess.Popen(["redis-server", "--port", str(cls.port), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.conn = redis.Redis(host="127.0.0.1", port=cls.port)
        for _ in range(100):
            try:
                cls.conn.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            cls.redis.kill()
            raise RuntimeError("redis-server did not start on 127.0.0.1:%d" % cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.redis.kill()
        cls.redis.wait()

    def setUp(self):
        import memfence.rq as mr
        from memfence import quarantine as mq
        self.mr = mr
        self.dir = tempfile.mkdtemp(prefix="mf-rq-")
        self.runs = os.path.join(self.dir, "runs")
        os.environ["MF_RQ_RUNS"] = self.runs
        self.store = mq.Store(state_dir=self.dir)
        mr.configure(store=self.store, record_deaths=True)
        self.conn.flushall()
        self.queue = rq.Queue("mf", connection=self.conn)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def work(self):
        # A burst worker takes every job queued (retries too), then returns.
        w = self.mr.Worker([self.queue], connection=self.conn)
        w.work(burst=True, with_scheduler=False)

    def ran(self):
        try:
            with open(self.runs) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def test_job_in_its_scope(self):
        job = self.queue.enqueue("rq_jobs.double", 21, job_id="rq-ok")
        self.work()
        job.refresh()
        self.assertEqual(job.get_status(), "finished")
        self.assertEqual(job.return_value(), (42, "rq_jobs.double", "rq-ok"))

    def test_allocation_failure_fails_the_job_once(self):
        job = self.queue.enqueue("rq_jobs.too_big", job_id="rq-big", retry=Retry(max=3))
        self.work()
        job.refresh()
        self.assertEqual(job.get_status(), "failed")
        self.assertIn("memfence.rq.TaskOutOfMemory: task rq_jobs.too_big[rq-big] ran out of memory",
                      job.exc_info)
        # Retried as any failing job is (RQ's Retry), each time a clean failure.
        self.assertEqual(self.ran(), ["too_big"] * 4)
        self.assertEqual(self.store.check("rq-big"), (False, None))

    def test_poison_job_runs_threshold_times(self):
        job = self.queue.enqueue("rq_jobs.poison", job_id="rq-poison", retry=Retry(max=5))
        ok = self.queue.enqueue("rq_jobs.double", 1, job_id="rq-after")
        self.work()
        self.assertEqual(self.ran().count("poison"), 2)
        bad, rec = self.store.check("rq-poison")
        self.assertTrue(bad)
        self.assertEqual((rec["deaths"], rec["cause"], rec["name"]),
                         (2, "sigkill", "rq_jobs.poison"))
        job.refresh()
        self.assertEqual(job.get_status(), "failed")
        self.assertIn("memfence.rq.TaskQuarantined: memfence: rejected, not run: task "
                      "rq_jobs.poison[rq-poison] is quarantined after 2 death(s)", job.exc_info)
        ok.refresh()
        self.assertEqual(ok.get_status(), "finished")


if __name__ == "__main__":
    unittest.main()
