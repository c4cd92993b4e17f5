"""The diagnose tests' service as a Celery app: the task diagtest.do does
what a call of diagnose_server.py does (its request as a dict), so that the
same loads run on a prefork worker.

    CELERY_BROKER=redis://127.0.0.1:PORT/0 \\
        python3 -m celery -A diagnose_celery worker --pool prefork -c 4

memfence.celery.install(app) makes each task a scope named after the task,
with the task id as its id (docs/celery.md).
"""
import json
import os

from celery import Celery

import diagnose_server

broker = os.environ["CELERY_BROKER"]
app = Celery("diagtest", broker=broker, backend=broker)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)

if os.environ.get("DIAG_NO_MEMFENCE") != "1":
    import memfence.celery
    memfence.celery.install(app)


@app.task(name="diagtest.do")
def do(req):
    return diagnose_server.do(json.dumps(req).encode(), None).decode()
