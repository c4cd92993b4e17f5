"""The Celery throughput workload of bench/compare.py.

Each task builds a few KiB of objects and increments a counter in Redis;
the task that takes the counter to 1 stores the time it started, the one
that takes it to N the time it ended, so that the rate is measured between
the first and the last task, without the worker's start and stop. No
memfence code here: under `memfence run` the automatic integration wraps
the task, as it would any user's.

    CELERY_BROKER=redis://127.0.0.1:PORT/0 BENCH_COUNTER=redis://127.0.0.1:PORT/1

Celery's default prefetch (4 messages per pool process) is kept: with a
prefetch of 1 and late acknowledgement, a worker on a Redis broker waits
for its poll between tasks and runs a few tasks a second, memfence or not.
"""
import os
import time

import redis
from celery import Celery

app = Celery("bench", broker=os.environ["CELERY_BROKER"])
app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True,
                task_serializer="json",
                accept_content=["json"], broker_connection_retry_on_startup=True,
                task_ignore_result=True)
_counter = None


@app.task(name="bench.work")
def work(i, n):
    global _counter
    t = time.time()
    rows = [{"i": i, "k": k, "s": "x" * 32} for k in range(40)]
    if _counter is None:
        _counter = redis.Redis.from_url(os.environ["BENCH_COUNTER"])
    c = _counter.incr("bench:done")
    if c == 1:
        _counter.set("bench:t0", repr(t))
    if c == n:
        _counter.set("bench:t1", repr(time.time()))
    return len(rows)
