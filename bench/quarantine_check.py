"""What a quarantine check costs a task: memfence.quarantine.Store.check in
a loop, for a task without a record and for one with a record, in
interleaved rounds; on a Redis store also a bare GET of a missing key from
the same process, the round trip's floor.

    PYTHONPATH=build/python python3 bench/quarantine_check.py STORE [ROUNDS] [CALLS]

STORE as --quarantine takes it: sqlite:PATH (a fresh file is made) or
redis://HOST:PORT/DB (a test database: one record is written to it).
Prints the median µs per call of each kind, one line each.
"""
import os
import statistics
import sys
import tempfile
import time

from memfence.quarantine import Store


def per_call(fn, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def main():
    spec = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    with tempfile.TemporaryDirectory(prefix="memfence-qcheck.") as state:
        st = Store(store=spec, state_dir=state)
        st.record("bench-recorded", cause="oom_kill")
        kinds = {"check, no record": lambda: st.check("bench-fresh"),
                 "check, one record": lambda: st.check("bench-recorded")}
        if spec.startswith("redis://"):
            import redis
            r = redis.Redis.from_url(spec)
            kinds["bare GET (floor)"] = lambda: r.get("memfence-bench:missing")
        times = {k: [] for k in kinds}
        for _ in range(rounds):
            for k, fn in kinds.items():
                times[k].append(per_call(fn, calls))
    print("%s, %d interleaved rounds of %d calls, load average %.1f:"
          % (spec.split(":")[0], rounds, calls, os.getloadavg()[0]))
    for k, v in times.items():
        print("  %-18s %7.1f µs (median; %.1f to %.1f)" % (k, statistics.median(v), min(v), max(v)))


if __name__ == "__main__":
    main()
