"""A small Celery app with ordinary tasks and one poison task.

    CELERY_BROKER=redis://127.0.0.1:6379/0 \\
        python3 -m celery -A app worker --pool prefork -c 2 --loglevel INFO

`tasks.crunch` allocates a little and returns; `tasks.explode` builds a
list of blocks until it holds `mib` MiB (2 GiB by default), as a task fed an
oversized input does. Without memfence the kernel OOM-kills the pool process
running it, Celery requeues it (task_reject_on_worker_lost), and it kills the
next one, and the next. With memfence.celery.install(app) it either fails
once with TaskOutOfMemory (the limits turned the OOM kill into a refused
allocation), or, where the kernel still kills the process, it runs at most
twice and is then rejected as quarantined.

Environment: CELERY_BROKER (and CELERY_BACKEND, default: the broker);
EXAMPLE_MEMFENCE=0 leaves memfence out, to see the difference;
EXAMPLE_STARTS=FILE appends one line per task start ("name id pid"), so a
test can count how often each task ran.
"""
import os

from celery import Celery

broker = os.environ.get("CELERY_BROKER", "redis://127.0.0.1:6379/0")
app = Celery("example", broker=broker, backend=os.environ.get("CELERY_BACKEND", broker))
app.conf.update(
    # As users set them so that a task lost with its worker is not lost:
    # acknowledge after the run, requeue when the pool process died.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)

if os.environ.get("EXAMPLE_MEMFENCE", "1") != "0":
    import memfence.celery
    memfence.celery.install(app)

MIB = 1 << 20


def _started(name, task_id):
    path = os.environ.get("EXAMPLE_STARTS")
    if path:
        # O_APPEND: one write per line, so parallel pool processes do not mix lines.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, ("%s %s %d\n" % (name, task_id, os.getpid())).encode())
        finally:
            os.close(fd)


@app.task(bind=True, name="tasks.crunch")
def crunch(self, n, mib=4):
    _started(self.name, self.request.id)
    rows = [bytes([n % 251]) * MIB for _ in range(mib)]
    return n * 2 + len(rows) - mib


@app.task(name="tasks.memory")
def memory():
    """What the pool process that runs it holds: its pid, live heap bytes
    (from memfence's accounting library, else the resident set) and VmData
    (what RLIMIT_DATA counts)."""
    out = {"pid": os.getpid(), "live": None, "vm_data": None}
    try:
        import memfence
        st = memfence.stats()
        out["live"] = st.get("live", st.get("rss"))
    except ImportError:
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmData:"):
                out["vm_data"] = int(line.split()[1]) * 1024
    return out


@app.task(bind=True, name="tasks.explode")
def explode(self, mib=2048, kind="blocks"):
    """Build `mib` MiB: 8 MiB blocks ("blocks"), or ("mixed") what a task
    decoding a large input builds: lists of ints, small dicts and 1 MiB
    bytearrays, about 2 MiB per round, which leaves the heap fragmented."""
    _started(self.name, self.request.id)
    blocks = []
    if kind == "mixed":
        for i in range(mib // 2):
            blocks.append(list(range(i, i + 20000)))                        # ~0.7 MiB of ints
            blocks.append([{"k": j, "v": str(j)} for j in range(1000)])     # ~0.3 MiB of dicts
            blocks.append(bytearray(MIB))
        return len(blocks)
    for i in range(mib // 8):
        blocks.append(bytes([i % 251]) * (8 * MIB))   # touched: really resident
    return len(blocks)
