"""What the first quarantine check of a pool costs: two processes started
together, each importing memfence.quarantine and making its first
Store.check on a SQLite store that no death has created yet, as a Celery
prefork pool's processes do. Prints the median over ROUNDS (default 20) of
the slower process's import of the package and of its first check, with
their ranges; a check that fails is counted and its error printed once.

    PYTHONPATH=build/python /usr/bin/python3 bench/quarantine_first.py [ROUNDS]
"""
import os
import statistics
import sys
import tempfile
import time


def child(path, go_r, out_w):
    os.read(go_r, 1)               # both start at once
    t0 = time.perf_counter()
    from memfence.quarantine import Store
    t1 = time.perf_counter()
    try:
        Store("sqlite:" + path).check("task-1")
        line = "%f %f\n" % (t1 - t0, time.perf_counter() - t1)
    except Exception as e:          # the failure is the figure
        line = "error %s\n" % str(e).replace("\n", " ")
    os.write(out_w, line.encode())
    os._exit(0)


def one_round():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "quarantine.db")
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                child(path, go_r, out_w)
            pids.append(pid)
        os.write(go_w, b"xx")
        for pid in pids:
            os.waitpid(pid, 0)
        os.close(out_w)
        lines = os.read(out_r, 65536).decode().splitlines()
        for fd in (go_r, go_w, out_r):
            os.close(fd)
        errors = [x[6:] for x in lines if x.startswith("error ")]
        figs = [[float(v) * 1e3 for v in x.split()] for x in lines if not x.startswith("error ")]
        if errors:
            return None, errors[0]
        return (max(f[0] for f in figs), max(f[1] for f in figs)), None


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    results = [one_round() for _ in range(rounds)]
    ok = [r for r, _ in results if r is not None]
    errors = [e for _, e in results if e is not None]
    for i, what in enumerate(("import", "first check")):
        if ok:
            ms = [r[i] for r in ok]
            print("slower %s of 2 processes: median %.1f ms (%.1f to %.1f)"
                  % (what, statistics.median(ms), min(ms), max(ms)))
    print("%d of %d rounds failed%s" % (len(errors), rounds, ": " + errors[0] if errors else ""))


if __name__ == "__main__":
    main()
