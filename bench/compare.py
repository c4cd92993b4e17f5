"""Compare variants of one workload in interleaved rounds.

    compare.py [--rounds N] [--build DIR] [--old DIR] [--only NAME,...] [--python PATH]
               [--json FILE]

Round r runs every variant of a workload once, always in the same order
(plain, exec, exec --account, run, profile, the anchors; then plain again),
so that what a shared machine does meanwhile touches every variant alike
instead of the one that happened to run then. Each run is measured from
fork to os.wait4():

    wall      the monotonic clock around the run
    CPU       user + system time of the whole process tree (wait4's rusage
              counts every descendant that was waited for: the supervisor
              and its program, heaptrack and its interpreter)
    peak RSS  ru_maxrss: the largest resident set of any process of the tree
    faults    minor page faults of the tree (ru_minflt): what glibc's mmap
              threshold changes, counted the same on a busy machine

A table of medians follows, with ratios to plain (and, for profile, to
run). The server workloads start a request server under each variant
(also `run --gate off`), drive it at a fixed concurrency
(bench/server_client.py) and report requests/s and p50 and p99 latency as
well; their CPU and RSS are the server's (every worker of a pre-fork
server):

    server        the example gRPC model server (examples/model_server)
    grpc-cpu      a CPU-bound gRPC server, 1-4 MiB of mixed objects a call
                  and no wait (bench/cpu_server.py)
    http-gthread  the example's HTTP app on gunicorn gthread, 2 x 4 threads
    http-uvicorn  the example's HTTP app on uvicorn (asyncio)

The celery workload is a prefork worker (concurrency 2, Redis broker
started here on a loopback port, task_acks_late) running 1,000 queued small
tasks (bench/celery_app.py); its rate is tasks/s between the first task's
start and the last one's end, and its variants are its own: plain,
exec --account, run (quarantine and gate on), run --no-quarantine,
run --gate off (giving the gate's cost per task) and run --no-auto-python
(giving the Python integration's); --old BUILD adds run of another build to
the same rounds. A second table splits the worker's CPU between its main
process and its pool processes.

Nothing here needs more than the standard library; the variants need the
build (memfence, libmemfence.so), heaptrack, numpy, grpcio, gunicorn,
uvicorn, Celery and redis (Debian's heaptrack, python3-numpy, python3-grpcio,
python3-gunicorn, python3-uvicorn, python3-celery, python3-redis and
redis-server: scripts/deps.sh bench).
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
# Measured in the first rounds only (--anchor-rounds): heaptrack takes 10 to
# 40 times the plain program's time, and these rows are there for scale.
ANCHORS = ("tracemalloc-1", "heaptrack")


# glibc's thresholds as `memfence exec` and `run` used to set them for every
# program: the cost the first scope now brings to a program with scopes.
FIXED = {"MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "2097152"}


def variants(build, tmp, python, thresholds):
    """(name, argv prefix, extra env) for every variant; python: the workload
    is a Python program (tracemalloc applies); thresholds: add the plain
    program with glibc's thresholds fixed."""
    mf = os.path.join(build, "memfence")
    reports = os.path.join(tmp, "reports")
    run = [mf, "run", "--http", "off", "--no-quarantine", "--report-dir", reports]
    out = [
        ("plain", [], {}),
        ("exec", [mf, "exec", "--"], {}),
        ("exec --account", [mf, "exec", "--account", "--"], {}),
        ("run", run + ["--"], {}),
        ("profile", run + ["--profile", "--"], {}),
    ]
    if thresholds:
        out.append(("plain, thresholds fixed", [], FIXED))
    if python:
        out.append(("tracemalloc-1", [], {"PYTHONTRACEMALLOC": "1"}))
    if shutil.which("heaptrack"):
        out.append(("heaptrack", ["heaptrack", "-o", os.path.join(tmp, "ht")], {}))
    return out


def workloads(build):
    """name -> (argv, is Python, kind); a server's argv holds {port} and,
    when it writes one, {ready}: a file that exists once it serves."""
    out = {
        "py-alloc": ([PY, os.path.join(HERE, "py_alloc.py"), "40"], True, "batch"),
        "py-numpy": ([PY, os.path.join(HERE, "py_numpy.py"), "5"], True, "batch"),
        "c-8t": ([os.path.join(build, "bench", "malloc_bench"), "8", "1000000"], False, "batch"),
        "celery": ([PY, "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork",
                    "-c", "2", "--loglevel", "WARNING", "--without-heartbeat",
                    "--without-mingle", "--without-gossip"], True, "celery"),
    }
    out.update(server_workloads())
    return out


def server_workloads():
    example = os.path.join(ROOT, "examples", "model_server")
    ready = ["--port", "{port}", "--ready-file", "{ready}"]
    return {
        "server": ([PY, os.path.join(example, "server.py")] + ready, True, "server"),
        "grpc-cpu": ([PY, os.path.join(HERE, "cpu_server.py")] + ready, True, "server"),
        "http-gthread": ([PY, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "4",
                          "-b", "127.0.0.1:{port}", "--chdir", example, "http_server:wsgi_app"],
                         True, "http"),
        "http-uvicorn": ([PY, "-m", "uvicorn", "--port", "{port}", "--app-dir", example,
                          "--log-level", "warning", "http_server:asgi_app"], True, "http"),
    }


def server_variants(vs, workload):
    """A server's variants: no heaptrack (it would be the whole run), and
    run with the gate off beside run; the new servers only the variants
    their rows compare."""
    out = []
    for v in vs:
        if v[0] == "heaptrack":
            continue
        if workload != "server" and v[0] not in ("plain", "exec --account", "run"):
            continue
        out.append(v)
        if v[0] == "run":
            out.append(("run --gate off", v[1][:-1] + ["--gate", "off", "--"], {}))
    return out


# --- celery: throughput of a prefork worker ---------------------------------------

CELERY_TASKS = 1000  # per run, unless --tasks says otherwise


def celery_variants(build, tmp):
    """The celery workload's variants: the quarantine and the gate on, as
    users run it, and each turned off."""
    mf = os.path.join(build, "memfence")
    run = [mf, "run", "--http", "off", "--report-dir", os.path.join(tmp, "reports")]
    state = {"MEMFENCE_STATE_DIR": os.path.join(tmp, "state")}
    return [
        ("plain", [], {}),
        ("exec --account", [mf, "exec", "--account", "--"], {}),
        ("run", run + ["--"], state),
        ("run --no-quarantine", run + ["--no-quarantine", "--"], state),
        ("run --gate off", run + ["--gate", "off", "--"], state),
        # The supervisor and the accounting without the Python integration:
        # what the integration's per-task work costs, apart.
        ("run --no-auto-python", run + ["--no-auto-python", "--"], state),
    ]


class CeleryBroker:
    """A redis-server of the benchmark's own on a loopback port: database 0
    the broker, 1 the tasks' counter."""

    def __init__(self, tmp):
        import redis
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.db = redis.Redis(port=self.port, db=1)
        for _ in range(100):
            try:
                self.db.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def env(self):
        return {"CELERY_BROKER": "redis://127.0.0.1:%d/0" % self.port,
                "BENCH_COUNTER": "redis://127.0.0.1:%d/1" % self.port}

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def run_celery(argv, extra, broker, tasks):
    """Queue the tasks, start the worker, wait for the last one, stop it."""
    broker.db.flushall()
    env = dict(extra, **broker.env())
    sys.path.insert(0, HERE)
    try:
        os.environ.update(broker.env())
        import celery_app
        celery_app.app.conf.broker_url = env["CELERY_BROKER"]
        with celery_app.app.connection_for_write() as conn:
            for i in range(tasks):
                celery_app.work.apply_async((i, tasks), connection=conn)
    finally:
        sys.path.remove(HERE)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env_for(env), cwd=HERE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        # At least 120 s, and 20 ms a task: a run ten times the default
        # is not cut short on a slow host.
        limit = max(120, tasks // 50)
        for _ in range(limit * 10):
            if broker.db.get("bench:t1") is not None or p.poll() is not None:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the Celery worker did not finish %d tasks in %d s"
                               % (tasks, limit))
        if p.poll() is not None:
            raise RuntimeError("the Celery worker ended before its tasks were done")
        split = worker_cpu(p.pid)
    finally:
        if p.returncode is None:
            p.send_signal(signal.SIGTERM)
    r = wait_tree(p.pid, t0)
    r["main_cpu"], r["pool_cpu"] = split
    p.returncode = 0
    first, last = float(broker.db.get("bench:t0")), float(broker.db.get("bench:t1"))
    r["rps"] = (tasks - 1) / (last - first)
    return r


def worker_cpu(pid):
    """CPU seconds so far of the Celery worker under pid: its main process
    (the interpreter nearest pid) and its pool processes (the
    interpreter's children), read from /proc before the worker is stopped.
    The main process's figure includes its start (importing Celery); a
    pool process is forked and starts with little."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm, rest = st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2:].split()
        procs[int(d)] = (int(rest[1]), comm, (int(rest[11]) + int(rest[12])) / tick)
    main, todo = None, [pid]
    while todo and main is None:
        q = todo.pop(0)
        if procs.get(q, (0, ""))[1].startswith("python"):
            main = q
        todo += [k for k, v in procs.items() if v[0] == q]
    if main is None:
        return float("nan"), float("nan")
    pool = sum(v[2] for v in procs.values() if v[0] == main and v[1].startswith("python"))
    return procs[main][2], pool


def celery_notes(results, tasks):
    """Each variant's tasks/s over plain's in the same round (the rounds
    interleave, so a drifting load weighs on both alike); the gate's and
    the Python integration's cost per task, from the time per task of two
    variants times the two pool processes that run tasks at once; and the
    CPU split."""
    runs = results.get("celery")
    if not runs or not runs.get("plain"):
        return
    print("Celery: %d tasks, prefork concurrency 2, Redis broker, task_acks_late; the "
          "× plain column is plain's tasks/s over the variant's." % tasks, end="")
    rps = {name: [r["rps"] for r in rs] for name, rs in runs.items()}
    if runs.get("run") and runs.get("run --gate off"):
        on, off = median(runs["run"], "rps"), median(runs["run --gate off"], "rps")
        print(" The gate costs %+.0f µs per task (run against run --gate off)."
              % (2e6 * (1.0 / on - 1.0 / off)), end="")
    if runs.get("run") and runs.get("run --no-auto-python"):
        on, bare = median(runs["run"], "rps"), median(runs["run --no-auto-python"], "rps")
        print(" The Python integration costs %+.0f µs per task (run against run "
              "--no-auto-python)." % (2e6 * (1.0 / on - 1.0 / bare)), end="")
    print()
    print()
    print("| variant | tasks/s ÷ plain's, same round: median | min | max | main process CPU s "
          "| µs per task | pool processes CPU s | µs per task |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        per = [v / p for v, p in zip(rps[name], rps["plain"])]
        m, p = median(rs, "main_cpu"), median(rs, "pool_cpu")
        print("| %s | %.3f | %.3f | %.3f | %.2f | %.0f | %.2f | %.0f |"
              % (name, statistics.median(per), min(per), max(per), m, 1e6 * m / tasks, p,
                 1e6 * p / tasks))
    print()
    print("CPU of the worker's processes as its last task ended (medians; the main "
          "process's includes its start, importing Celery and the app).")


def env_for(extra):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # run's bootstrap only, nothing of ours
    env.update(extra)
    return env


def wait_tree(pid, t0):
    _, status, ru = os.wait4(pid, 0)
    return {
        "wall": time.monotonic() - t0,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mib": ru.ru_maxrss / 1024.0,
        "minflt": ru.ru_minflt,
        "status": status,
    }


def run_batch(argv, extra):
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env_for(extra), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    r = wait_tree(p.pid, t0)
    p.returncode = 0  # reaped by wait4
    if r["status"] != 0:
        raise RuntimeError("%s exited with status %d" % (" ".join(argv), r["status"]))
    return r


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(ready, port):
    """Whether the server is up: its ready file written, or (without one)
    its port accepting."""
    import socket
    if ready is not None:
        return os.path.exists(ready) and os.path.getsize(ready) > 0
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def run_server(argv, extra, tmp, calls, concurrency, http=False):
    port = free_port()
    ready = os.path.join(tmp, "ready")
    if os.path.exists(ready):
        os.unlink(ready)
    if not any("{ready}" in a for a in argv):
        ready = None
    t0 = time.monotonic()
    p = subprocess.Popen([a.format(port=port, ready=ready) for a in argv],
                         env=env_for(extra), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if serving(ready, port):
                break
            if p.poll() is not None:
                raise RuntimeError("the server ended before it was ready")
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start within 30 s")
        out = subprocess.run([PY, os.path.join(HERE, "server_client.py"),
                              "--target", "127.0.0.1:%d" % port, "--calls", str(calls),
                              "--concurrency", str(concurrency)] + (["--http"] if http else []),
                             capture_output=True, text=True, timeout=600, check=True)
        load = json.loads(out.stdout)
        if load["errors"]:
            print("%s: %d calls failed" % (" ".join(argv), load["errors"]), file=sys.stderr)
    finally:
        if p.returncode is None:
            p.send_signal(signal.SIGTERM)
    try:
        r = wait_tree(p.pid, t0)
    except ChildProcessError:
        r = {"wall": 0, "cpu": float("nan"), "rss_mib": float("nan"), "status": 0}
    p.returncode = 0
    r.update(load)
    return r


def median(rs, key):
    v = [r[key] for r in rs if key in r]
    return statistics.median(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", help="comma-separated workloads")
    ap.add_argument("--calls", type=int, default=1500, help="server: calls measured")
    ap.add_argument("--concurrency", type=int, default=8, help="server: calls in flight")
    ap.add_argument("--tasks", type=int, default=CELERY_TASKS,
                    help="celery: tasks per run (start-up weighs less in longer runs)")
    ap.add_argument("--anchor-rounds", type=int, default=3,
                    help="rounds that also run tracemalloc and heaptrack")
    ap.add_argument("--python", default=PY,
                    help="the interpreter of the Python workloads (default %(default)s)")
    ap.add_argument("--old", metavar="BUILD",
                    help="celery: a second build, whose run variant joins the rounds")
    ap.add_argument("--variants", metavar="NAMES",
                    help="comma-separated variants to run (plain is always run); more "
                         "rounds of fewer variants in the same time")
    ap.add_argument("--json", help="write every run here")
    ap.add_argument("--table", metavar="JSON",
                    help="only print the table of a run saved with --json")
    ap.add_argument("--startup", metavar="HYPERFINE_JSON",
                    help="only print the start-up table from hyperfine's export")
    args = ap.parse_args()
    if args.startup:
        return startup_table(args.startup)
    if args.table:
        with open(args.table) as f:
            saved = json.load(f)
        args.rounds = len(next(iter(saved["results"].values()))["plain"])
        args.tasks = saved.get("tasks", CELERY_TASKS)
        return print_table(saved["results"], args, *saved["load"])
    build = os.path.abspath(args.build)
    # The workloads' interpreter; the servers' load client keeps Debian's.
    wl = {w: ([args.python if a == PY else a for a in argv], py, kind)
          for w, (argv, py, kind) in workloads(build).items()}
    names = args.only.split(",") if args.only else list(wl)
    results = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="memfence-bench.") as tmp:
        for w in names:
            argv, python, kind = wl[w]
            vs = variants(build, tmp, python, w in ("py-numpy", "c-8t", "server"))
            if kind == "celery":
                vs = celery_variants(build, tmp)
                if args.old:
                    # The same variant of another build, in the same rounds.
                    old = [v for v in celery_variants(os.path.abspath(args.old), tmp)
                           if v[0] == "run"][0]
                    vs.append(("run, old build",) + old[1:])
                broker = CeleryBroker(tmp)
            elif kind != "batch":
                vs = server_variants(vs, w)
            if args.variants:
                keep = set(args.variants.split(",")) | {"plain"}
                unknown = keep - {v[0] for v in vs}
                if unknown:
                    sys.exit("compare: %s has no variant %s (it has: %s)"
                             % (w, ", ".join(sorted(unknown)), ", ".join(v[0] for v in vs)))
                vs = [v for v in vs if v[0] in keep]
            runs = {v[0]: [] for v in vs}
            # One warm-up of each (page cache, .pyc files), not counted.
            for rnd in range(args.rounds + 1):
                for name, pre, extra in vs:
                    if name in ANCHORS and rnd > args.anchor_rounds:
                        continue
                    if kind == "celery":
                        r = run_celery(pre + argv, extra, broker, args.tasks)
                    elif kind != "batch":
                        r = run_server(pre + argv, extra, tmp, args.calls, args.concurrency,
                                       kind == "http")
                    else:
                        r = run_batch(pre + argv, extra)
                    if rnd > 0:
                        runs[name].append(r)
                    for f in os.listdir(tmp):
                        if f.startswith("ht"):
                            os.unlink(os.path.join(tmp, f))
                print("%s: round %d of %d done (load %.1f)" % (w, rnd, args.rounds,
                                                              os.getloadavg()[0]),
                      file=sys.stderr)
            results[w] = runs
            if kind == "celery":
                broker.stop()
            # After each workload, so that a failure later keeps what was
            # measured (--table prints it).
            save(args.json, results, args.tasks, load_before)
    load_after = os.getloadavg()
    save(args.json, results, args.tasks, load_before, load_after)
    print_table(results, args, load_before, load_after)


def save(path, results, tasks, load_before, load_after=None):
    if path:
        with open(path, "w") as f:
            json.dump({"results": results, "tasks": tasks,
                       "load": [load_before, load_after or os.getloadavg()]}, f, indent=1)


def ratio(a, b):
    return a / b if b and b == b else float("nan")


def print_table(results, args, load_before, load_after):
    print("| workload | variant | wall s | × plain | CPU s | CPU range s | × plain "
          "| peak RSS MiB | vs plain | faults k | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w, runs in results.items():
        base = runs["plain"]
        bw, bc, br = median(base, "wall"), median(base, "cpu"), median(base, "rss_mib")
        server = "rps" in base[0]
        for name, rs in runs.items():
            if not rs:
                continue
            wall, cpu, rss = median(rs, "wall"), median(rs, "cpu"), median(rs, "rss_mib")
            if server:
                # The server's wall time is the length of the run, not a
                # cost: the client's figures are its steady state.
                rps, p50, p99 = median(rs, "rps"), median(rs, "p50_ms"), median(rs, "p99_ms")
                wcol = "–", "%.3f" % ratio(median(base, "rps"), rps)
                extra = "%.0f | %s | %s" % (rps, *("%.1f" % v if v == v else "–" for v in (p50, p99)))
            else:
                wcol = "%.3f" % wall, "%.3f" % ratio(wall, bw)
                extra = "– | – | –"
            note = ""
            if name == "profile" and "run" in runs:
                r = runs["run"]
                if server:
                    note = " (%.3f × run)" % ratio(median(r, "rps"), median(rs, "rps"))
                else:
                    note = " (%.3f × run)" % ratio(wall, median(r, "wall"))
            cpus = [r["cpu"] for r in rs]
            print("| %s | %s | %s | %s%s | %.3f | %.2f–%.2f | %.3f | %.1f | %+.1f | %.0f | %s |"
                  % (w, name, wcol[0], wcol[1], note, cpu, min(cpus), max(cpus),
                     ratio(cpu, bc), rss, rss - br, median(rs, "minflt") / 1000, extra))
    print()
    print("Medians of %d interleaved rounds after one warm-up round (the anchors, "
          "tracemalloc-1 and heaptrack: the first %d); %d CPUs, %s, Linux %s; "
          "load average %.1f before, %.1f after (1 min)."
          % (args.rounds, min(args.rounds, args.anchor_rounds), os.cpu_count(),
             platform.machine(), platform.release(), load_before[0], load_after[0]))
    celery_notes(results, args.tasks)
    if "server" in results:
        print("Server: %d calls at concurrency %d after a warm-up; its × plain column is "
              "plain's requests/s over the variant's (time per request)."
              % (args.calls, args.concurrency))


def startup_table(path):
    with open(path) as f:
        res = json.load(f)["results"]
    base = res[0]
    cpu = lambda r: 1000 * (r["user"] + r["system"])  # noqa: E731
    print("| start-up of `python3 -c pass` | median ms | added ms | min ms | added ms "
          "| CPU ms (user+sys, mean) | added ms |")
    print("|---|---|---|---|---|---|---|")
    for r in res:
        print("| %s | %.1f | %+.1f | %.1f | %+.1f | %.1f | %+.1f |"
              % (r["command"], 1000 * r["median"], 1000 * (r["median"] - base["median"]),
                 1000 * r["min"], 1000 * (r["min"] - base["min"]), cpu(r), cpu(r) - cpu(base)))
    print()
    print("hyperfine, %d runs of each after 3 warm-ups; load average %.1f (1 min). CPU "
          "counts the supervisor too." % (len(base["times"]), os.getloadavg()[0]))


if __name__ == "__main__":
    main()
